/**
 * Evaluating conditional request headers against an object's ETag and Last-Modified (RFC 7232 with S3's
 * precedence). Pure, shared by backends and by the gateway for HEAD.
 */
import type { Conditions, WriteConditions } from './backend.ts';
import { NoSuchKeyError, NotModifiedError, PreconditionFailedError } from './errors.ts';

/**
 * How a failed "not modified" condition is reported: `read` (GET/HEAD) answers NotModified, `copy` (the
 * x-amz-copy-source-if-* forms) answers PreconditionFailed, as S3 does.
 */
export type ConditionMode = 'read' | 'copy';

/** The parts of an object conditions look at. */
export interface ConditionTarget {
  etag: string;
  lastModified: Date;
}

/** Strips quotes and a weak-validator prefix so `"abc"`, `W/"abc"` and `abc` compare equal. */
export function normalizeEtag(etag: string): string {
  let e = etag.trim();
  if (e.startsWith('W/')) e = e.slice(2);
  if (e.length >= 2 && e.startsWith('"') && e.endsWith('"')) e = e.slice(1, -1);
  return e;
}

/** True when an If-Match / If-None-Match header value (a list, or `*`) names the ETag. */
export function etagMatches(header: string, etag: string): boolean {
  const want = normalizeEtag(etag);
  return header.split(',').some((item) => {
    const t = item.trim();
    return t === '*' || (t !== '' && normalizeEtag(t) === want);
  });
}

/**
 * The one ETag (or `*`) an If-Match / If-None-Match value names, in strong quoted form (`W/"abc"` → `"abc"`), or
 * undefined when it names several or none. An upstream that compares the header as one literal tag (MinIO) answers
 * like etagMatches() only for this form; lists have to be evaluated here.
 */
export function singleEtag(header: string): string | undefined {
  const items = header.split(',').map((t) => t.trim()).filter((t) => t !== '');
  if (items.length !== 1) return undefined;
  return items[0] === '*' ? '*' : `"${normalizeEtag(items[0]!)}"`;
}

/** Whole seconds, because HTTP dates carry no milliseconds and Last-Modified is sent truncated. */
function seconds(d: Date): number {
  return Math.floor(d.getTime() / 1000);
}

/**
 * Throws PreconditionFailedError or NotModifiedError when the conditions reject the object; returns otherwise.
 * If-Match, when present, overrides If-Unmodified-Since; If-None-Match, when present, overrides If-Modified-Since.
 */
export function checkConditions(conditions: Conditions | undefined, target: ConditionTarget, mode: ConditionMode = 'read'): void {
  if (!conditions) return;
  const { ifMatch, ifNoneMatch, ifModifiedSince, ifUnmodifiedSince } = conditions;
  if (ifMatch !== undefined) {
    if (!etagMatches(ifMatch, target.etag)) throw new PreconditionFailedError('If-Match failed');
  } else if (ifUnmodifiedSince !== undefined && isValidDate(ifUnmodifiedSince)) {
    if (seconds(target.lastModified) > seconds(ifUnmodifiedSince)) {
      throw new PreconditionFailedError('If-Unmodified-Since failed', 'If-Unmodified-Since');
    }
  }
  const notModified = (): Error =>
    mode === 'read'
      ? new NotModifiedError(target.etag, target.lastModified)
      : new PreconditionFailedError('copy source not modified', ifNoneMatch !== undefined ? 'If-None-Match' : 'If-Modified-Since');
  if (ifNoneMatch !== undefined) {
    if (etagMatches(ifNoneMatch, target.etag)) throw notModified();
  } else if (ifModifiedSince !== undefined && isValidDate(ifModifiedSince)) {
    if (seconds(target.lastModified) <= seconds(ifModifiedSince)) throw notModified();
  }
}

/** RFC 7232 says an unparseable date is ignored; a Date built from garbage is NaN. */
function isValidDate(d: Date): boolean {
  return !Number.isNaN(d.getTime());
}

/**
 * Checks a write's conditions against the object it would replace (`existing`, undefined when there is none), as
 * S3 does for PutObject, CompleteMultipartUpload and CopyObject: `If-None-Match: *` fails when an object exists;
 * `If-Match` fails with NoSuchKeyError when none does and PreconditionFailedError when the ETag differs. Backends
 * call it inside the commit, so no concurrent writer can slip between the check and the write.
 */
export function checkWriteConditions(conditions: WriteConditions | undefined, existing: { etag: string } | undefined): void {
  if (!conditions) return;
  if (conditions.ifNoneMatch !== undefined && existing && etagMatches(conditions.ifNoneMatch, existing.etag)) {
    throw new PreconditionFailedError('If-None-Match failed: the object exists', 'If-None-Match');
  }
  if (conditions.ifMatch !== undefined) {
    if (!existing) throw new NoSuchKeyError('If-Match: no object to match');
    if (!etagMatches(conditions.ifMatch, existing.etag)) throw new PreconditionFailedError('If-Match failed', 'If-Match');
  }
}

/**
 * Evaluating conditional request headers against an object's ETag and Last-Modified (RFC 9110 §13.1, formerly RFC
 * 7232, with S3's precedence). Pure, shared by backends and by the gateway for HEAD.
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

/**
 * How an If-Match / If-None-Match value is compared with the object's ETag (RFC 9110 §8.8.3.2): If-Match uses the
 * strong comparison, which a weak entity tag (`W/"…"`) never passes (§13.1.1); If-None-Match the weak one, which
 * ignores the weak prefix (§13.1.2). S3's references send conditional requests to RFC 7232, which says the same.
 */
export type EtagComparison = 'strong' | 'weak';

/** One member of an If-Match / If-None-Match value: `*`, or an entity tag's opaque part and whether it is weak. */
type ListedTag = { any: true } | { any: false; weak: boolean; opaque: string };

/**
 * The members of an If-Match / If-None-Match value (RFC 9110 §13.1.1: `*` or a comma-separated list of entity tags
 * `"…"` / `W/"…"`, where a comma inside the quotes belongs to the tag). A bare token counts as the strong tag it
 * names, as S3 accepts ETags without their quotes. Hand-written: HTTP's list grammar with quoted members is S3
 * semantics the gateway must get exactly right, and no maintained library parses entity-tag lists alone.
 */
function listedTags(header: string): ListedTag[] {
  const out: ListedTag[] = [];
  let i = 0;
  while (i < header.length) {
    const c = header[i]!;
    if (c === ',' || c === ' ' || c === '\t') {
      i++;
      continue;
    }
    const weak = header.startsWith('W/"', i);
    if (weak || c === '"') {
      const start = i + (weak ? 3 : 1);
      const end = header.indexOf('"', start);
      const stop = end < 0 ? header.length : end;
      out.push({ any: false, weak, opaque: header.slice(start, stop) });
      i = stop + 1;
      continue;
    }
    const comma = header.indexOf(',', i);
    const token = header.slice(i, comma < 0 ? header.length : comma).trim();
    out.push(token === '*' ? { any: true } : { any: false, weak: false, opaque: token });
    i = comma < 0 ? header.length : comma;
  }
  return out;
}

/** True when an If-Match / If-None-Match value (a list, or `*`) names the ETag under `comparison`. */
export function etagMatches(header: string, etag: string, comparison: EtagComparison): boolean {
  const want = normalizeEtag(etag);
  return listedTags(header).some((tag) => tag.any || (tag.opaque === want && (comparison === 'weak' || !tag.weak)));
}

/**
 * The one ETag (or `*`) an If-Match / If-None-Match value names, in strong quoted form (`W/"abc"` → `"abc"` for the
 * weak comparison), or undefined when it names several or none, or a weak tag under the strong comparison. An
 * upstream that compares the header as one literal tag (MinIO) answers like etagMatches() only for this form; the
 * others have to be evaluated here.
 */
export function singleEtag(header: string, comparison: EtagComparison): string | undefined {
  const tags = listedTags(header);
  if (tags.length !== 1) return undefined;
  const tag = tags[0]!;
  if (tag.any) return '*';
  return tag.weak && comparison === 'strong' ? undefined : `"${tag.opaque}"`;
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
    if (!etagMatches(ifMatch, target.etag, 'strong')) throw new PreconditionFailedError('If-Match failed');
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
    if (etagMatches(ifNoneMatch, target.etag, 'weak')) throw notModified();
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
  if (conditions.ifNoneMatch !== undefined && existing && etagMatches(conditions.ifNoneMatch, existing.etag, 'weak')) {
    throw new PreconditionFailedError('If-None-Match failed: the object exists', 'If-None-Match');
  }
  if (conditions.ifMatch !== undefined) {
    if (!existing) throw new NoSuchKeyError('If-Match: no object to match');
    if (!etagMatches(conditions.ifMatch, existing.etag, 'strong')) throw new PreconditionFailedError('If-Match failed', 'If-Match');
  }
}

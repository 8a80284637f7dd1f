/**
 * Conditions put in a form every upstream evaluates as S3 does. MinIO compares an If-Match / If-None-Match value as
 * one literal tag: a list (`"x", "<etag>"`) or a weak tag (`W/"<etag>"`) never matches there, while S3 and the
 * embedded store (conditions.ts) read lists, compare If-None-Match weakly and If-Match strongly (a weak tag never
 * matches). A single tag is sent in its strong form (a weak one in If-Match is not sent: it can match nothing); the
 * rest is evaluated here against a HEAD of the object, and the request is then pinned upstream with `If-Match` to the
 * ETag that was evaluated, so a replacement in between is still caught upstream (RFC 9110 §13.1.1, §13.1.2).
 */
import type { Conditions, ObjectMeta, WriteConditions } from '../backend.ts';
import { checkConditions, checkWriteConditions, singleEtag, type ConditionMode } from '../conditions.ts';
import { NoSuchKeyError } from '../errors.ts';

/** Sendable read or copy-source conditions, and whether they were evaluated here and pinned to one ETag. */
export interface SendableConditions {
  conditions: Conditions | undefined;
  pinned: boolean;
}

/**
 * Read (GetObject) or copy-source conditions as they can go upstream. `head` is asked only for a list; it throws
 * NoSuchKeyError for a missing object. Throws NotModifiedError / PreconditionFailedError as checkConditions does.
 */
export async function sendableConditions(c: Conditions | undefined, head: () => Promise<ObjectMeta>, mode: ConditionMode): Promise<SendableConditions> {
  if (!c) return { conditions: c, pinned: false };
  const ifMatch = c.ifMatch === undefined ? undefined : singleEtag(c.ifMatch, 'strong');
  const ifNoneMatch = c.ifNoneMatch === undefined ? undefined : singleEtag(c.ifNoneMatch, 'weak');
  if ((c.ifMatch === undefined || ifMatch) && (c.ifNoneMatch === undefined || ifNoneMatch)) {
    return { conditions: { ...c, ifMatch, ifNoneMatch }, pinned: false };
  }
  const target = await head();
  checkConditions(c, target, mode);
  return { conditions: { ifMatch: `"${target.etag}"` }, pinned: true };
}

/**
 * Write conditions (PutObject, CompleteMultipartUpload, CopyObject destination) as they can go upstream: an If-Match
 * list is evaluated against the object the write would replace (`head`, NoSuchKeyError when there is none) and sent
 * as If-Match on that object's ETag, so the upstream still checks atomically that nothing replaced it meanwhile.
 */
export async function sendableWriteConditions(c: WriteConditions | undefined, head: () => Promise<ObjectMeta>): Promise<WriteConditions | undefined> {
  if (c?.ifMatch === undefined) return c;
  const one = singleEtag(c.ifMatch, 'strong');
  if (one !== undefined) return { ...c, ifMatch: one };
  const existing = await head().catch((err: unknown) => (err instanceof NoSuchKeyError ? undefined : Promise.reject(err)));
  checkWriteConditions(c, existing);
  return { ...c, ifMatch: `"${existing!.etag}"` };
}

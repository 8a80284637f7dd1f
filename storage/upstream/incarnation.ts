/**
 * Bucket incarnations upstream: a value that changes whenever a gateway bucket is (re-)created through the gateway,
 * so a write that was authorized against one bucket and was still in flight while that bucket was deleted and
 * created again (perhaps for another tenant) is found out after the upstream acknowledged it, undone, and refused
 * with NoSuchBucket, as S3 answers a write into a missing bucket. Without it the write lands in the new bucket:
 * authority would grow from the old bucket's owner to the new one's.
 *
 * The value is random, written when the bucket is created:
 * - `prefix` mapping: the ETag of the bucket's marker (layout.ts marker()), whose body is random; markers written
 *   before incarnations existed are empty and share the empty body's ETag, which a re-created bucket's never has;
 * - `bucket` mapping: the upstream bucket's tag INCARNATION_TAG (the gateway keeps its buckets' own tag sets under
 *   `_anvil/config/`, so the upstream tag set is free). Not an object: the bucket would no longer be empty to the
 *   upstream (a DeleteBucket straight on it would fail) nor to the backend's listings, and a full upstream refuses
 *   object writes. A bucket created before incarnations existed has no tag, and "none" is then its incarnation;
 *   so has one whose upstream tag set an operator replaced.
 */
import { DeleteObjectCommand, PutBucketTaggingCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { XMLParser } from 'fast-xml-parser';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { normalizeEtag } from '../conditions.ts';
import { NoSuchBucketError } from '../errors.ts';
import type { UpstreamClients } from './client.ts';
import { faultCode, faultStatus, translate } from './errors.ts';
import type { Layout, Location } from './layout.ts';

/** The upstream bucket tag holding a bucket-mapped bucket's incarnation. */
export const INCARNATION_TAG = 'anvil-incarnation';
/** The incarnation of a bucket-mapped bucket created before incarnations existed (it has no INCARNATION_TAG). */
export const NO_INCARNATION = 'none';

const xml = new XMLParser({ parseTagValue: false, isArray: (name) => name === 'Tag' });

/**
 * A fresh value: the creation time (epoch milliseconds), then 128 random bits, so no two incarnations (or marker
 * ETags) are ever equal, and a bucket-mapped one tells when its bucket was created (see createdBefore()).
 */
export function incarnationBody(): string {
  return `${Date.now()}-${randomBytes(16).toString('hex')}`;
}

/** How far apart two gateway nodes' clocks may be for createdBefore() to hold: NTP keeps them far closer. */
const CLOCK_MARGIN_MS = 1_000;

/**
 * True when incarnation `value` (a bucket-mapped one, which carries its creation time) is of a bucket created well
 * before `at` (epoch milliseconds): a write that started at `at` was authorized against that bucket, whatever older
 * value a node's cache started it under. False for values without a time (markers' ETags, "none").
 */
export function createdBefore(value: string, at: number): boolean {
  const created = writtenAt(value);
  return created !== undefined && created < at - CLOCK_MARGIN_MS;
}

/** When bucket-mapped incarnation `value` was written (epoch milliseconds); undefined for values without a time. */
export function writtenAt(value: string): number | undefined {
  const at = /^(\d{13})-[0-9a-f]{32}$/.exec(value)?.[1];
  return at === undefined ? undefined : Number(at);
}

/**
 * Gives a newly created gateway bucket its incarnation and returns it (one request). Prefix mapping: writes the
 * marker with a random body and If-None-Match: *, which is also the atomic "name is free" check (412 if taken).
 * Bucket mapping: tags the upstream bucket CreateBucket just made.
 */
export async function writeIncarnation(clients: UpstreamClients, layout: Layout, bucket: string): Promise<string> {
  const value = incarnationBody();
  if (layout.mapping === 'bucket') {
    const Tagging = { TagSet: [{ Key: INCARNATION_TAG, Value: value }] };
    try {
      await clients.retrying.send(new PutBucketTaggingCommand({ Bucket: layout.bucketOf(bucket), Tagging }));
    } catch (err) {
      // An upstream without bucket tags (501) or a credential not allowed them (403): the bucket has none, as one
      // from before incarnations, rather than a bucket that cannot be created.
      if (faultStatus(err) === 501 || faultStatus(err) === 403) return NO_INCARNATION;
      throw err;
    }
    return value;
  }
  const out = await clients.retrying.send(new PutObjectCommand({ ...layout.marker(bucket), Body: value, ContentLength: value.length, IfNoneMatch: '*' }));
  return normalizeEtag(out.ETag ?? '');
}

/**
 * The bucket's incarnation as the upstream has it now (one request, never cached); NoSuchBucketError when the bucket
 * is gone: a HEAD of the marker (prefix mapping) or GetBucketTagging (bucket mapping).
 */
export async function readIncarnation(clients: UpstreamClients, layout: Layout, bucket: string): Promise<string> {
  try {
    if (layout.mapping === 'prefix') {
      const out = await clients.lean.send({ method: 'HEAD', loc: layout.marker(bucket) });
      out.body.resume();
      return normalizeEtag(String(out.headers.etag ?? ''));
    }
    const out = await clients.lean.send({ method: 'GET', loc: { Bucket: layout.bucketOf(bucket), Key: '' }, query: { tagging: '' } });
    const doc = xml.parse(await text(out.body)) as { Tagging?: { TagSet?: { Tag?: Array<{ Key?: string; Value?: string }> } } };
    return doc.Tagging?.TagSet?.Tag?.find((tag) => tag.Key === INCARNATION_TAG)?.Value ?? NO_INCARNATION;
  } catch (err) {
    const status = faultStatus(err) ?? 0;
    if (faultCode(err) === 'NoSuchBucket' || (layout.mapping === 'prefix' && status === 404)) throw new NoSuchBucketError(`bucket ${bucket} does not exist`);
    // No tag set (NoSuchTagSet, or another 404 than NoSuchBucket), or an upstream that keeps no bucket tags (501) or
    // does not let this credential read them (403): no incarnation, as a bucket from before incarnations. Any other
    // answer is an error of its own, never taken for "none".
    if (layout.mapping === 'bucket' && [403, 404, 501].includes(status)) return NO_INCARNATION;
    throw translate(err);
  }
}

/** A small answer body as text (a tag set: at most 50 tags). */
async function text(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Deletes the object at `loc` if it is still the version with `etag`, so a newer object someone else wrote to the
 * same key meanwhile stays. MinIO ignores If-Match on DeleteObject (it deletes whatever is there), so the version is
 * checked by a HEAD with If-Match first: a write landing between that HEAD and the delete is lost, a window of one
 * request on a key that was just written into a bucket being re-created.
 */
export async function removeIfUnchanged(clients: UpstreamClients, loc: Location, etag: string): Promise<void> {
  try {
    const out = await clients.lean.send({ method: 'HEAD', loc, headers: { 'if-match': `"${normalizeEtag(etag)}"` } });
    out.body.resume();
  } catch (err) {
    // Replaced (412) or already gone (404): nothing of this write is there to remove.
    if (faultStatus(err) === 412 || faultStatus(err) === 404) return;
    throw translate(err);
  }
  try {
    await clients.retrying.send(new DeleteObjectCommand(loc));
  } catch (err) {
    if (faultStatus(err) !== 404) throw translate(err);
  }
}

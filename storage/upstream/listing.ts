/**
 * Listings paged from the upstream. Objects: ListObjectsV2 with prefix, delimiter and start-after passed through,
 * then the contract's rule S3 does not follow: a common prefix <= startAfter is dropped (S3 rolls the keys after
 * startAfter up into the prefix that contains it). Uploads: the upload records of layout.ts, rolled up here.
 */
import { GetObjectCommand, ListObjectsV2Command, type ListObjectsV2CommandInput, type ListObjectsV2CommandOutput, type S3Client } from '@aws-sdk/client-s3';
import type { ListEntry, ListObjectsInput, ListObjectsResult, ListUploadsInput, ListUploadsResult, UploadListEntry } from '../backend.ts';
import type { UpstreamClients } from './client.ts';
import { translate } from './errors.ts';
import { UPLOADS, parseRecordName, recordName, recordPrefix, type Layout } from './layout.ts';
import { compareUtf8 } from '../utf8-order.ts';

/** Largest page S3 returns. */
const MAX_PAGE = 1000;

/** Decodes one key of an encoding-type=url listing; S3 and MinIO encode a space as `+` and a `+` as `%2B`. */
function urlDecoded(s: string): string {
  return decodeURIComponent(s.replace(/\+/g, ' '));
}

/**
 * ListObjectsV2 with encoding-type=url, keys and common prefixes decoded: XML 1.0 cannot carry every character a
 * key may hold (`\x01`, `\x1b`; `\r` is normalised away), so S3 and MinIO url-encode keys when asked
 * (ListObjectsV2 API reference, EncodingType). The SDK leaves them encoded, so they are decoded here.
 */
export async function listObjectsV2(s3: S3Client, input: ListObjectsV2CommandInput): Promise<ListObjectsV2CommandOutput> {
  const out = await s3.send(new ListObjectsV2Command({ ...input, EncodingType: 'url' }));
  for (const o of out.Contents ?? []) if (o.Key !== undefined) o.Key = urlDecoded(o.Key);
  for (const p of out.CommonPrefixes ?? []) if (p.Prefix !== undefined) p.Prefix = urlDecoded(p.Prefix);
  return out;
}

/** Sorts after every key that starts with what precedes it: U+10FFFF is the largest code point. */
const PAST = '\u{10FFFF}';

/**
 * One page of objects in the contract's terms, in as few upstream requests as the limit allows: one page of up to
 * 1,000 (S3's and MinIO's cap), then only what is still missing plus one entry to answer isTruncated exactly (the
 * upstream's own IsTruncated is not exact: MinIO says true on a last page that ends at max-keys).
 *
 * Every request resumes with StartAfter (the last name seen, or past a rolled-up prefix), never with the upstream's
 * continuation token, so the position a gateway continuation token or v1 marker names is passed through as it is,
 * and consecutive gateway pages read consecutive upstream pages. Measured against MinIO (test/bench/listing.ts): a
 * StartAfter listing that follows a continuation-token listing of the same bucket costs MinIO about five times the
 * CPU of one that follows another StartAfter listing (it starts its bucket walk afresh, and the cost grows with the
 * bucket), which is what made a 100,000-key walk through the gateway ten times slower than MinIO direct; StartAfter
 * pages alone cost MinIO no more than its own token walk.
 *
 * Delimiter `/` is passed upstream; other delimiters are rolled up here (MinIO ignores them), jumping past each
 * rolled-up prefix by restarting the listing after it.
 */
export async function listObjects(clients: UpstreamClients, layout: Layout, input: ListObjectsInput): Promise<ListObjectsResult> {
  const base = layout.prefixOf(input.bucket);
  const Bucket = layout.bucketOf(input.bucket);
  const prefix = input.prefix ?? '';
  const delimiter = input.delimiter || undefined;
  const local = delimiter !== undefined && delimiter !== '/';
  const entries: ListEntry[] = [];
  const after = input.startAfter;
  let startAfter = after;
  let lastPrefix: string | undefined;
  if (input.limit <= 0) return { entries, isTruncated: false };
  const fetch = (MaxKeys: number) =>
    listObjectsV2(clients.retrying, {
      Bucket,
      Prefix: base + prefix,
      Delimiter: local ? undefined : delimiter,
      StartAfter: startAfter ? base + startAfter : undefined,
      MaxKeys,
    }).catch((err: unknown) => {
      throw translate(err);
    });
  for (;;) {
    const asked = Math.min(MAX_PAGE, input.limit - entries.length + 1);
    let page = await fetch(asked);
    // MinIO counts names at StartAfter's own position (a directory object such as `a/` next to an object `a`)
    // against a small MaxKeys, then answers a short page with IsTruncated false although names follow (StartAfter
    // `a/`, MaxKeys 2: nothing, not truncated). A short last page after StartAfter is asked again as a whole page.
    if (startAfter && !page.IsTruncated && asked < MAX_PAGE && (page.Contents?.length ?? 0) + (page.CommonPrefixes?.length ?? 0) < asked) {
      page = await fetch(MAX_PAGE);
    }
    const batch: ListEntry[] = [
      ...(page.Contents ?? []).map((o): ListEntry => {
        const key = layout.keyOf(input.bucket, o.Key ?? '');
        const cut = local ? key.indexOf(delimiter, prefix.length) : -1;
        if (cut >= 0) return { kind: 'prefix', prefix: key.slice(0, cut + delimiter!.length) };
        return { kind: 'object', key, size: o.Size ?? 0, etag: (o.ETag ?? '').replace(/^"|"$/g, ''), lastModified: o.LastModified ?? new Date(0) };
      }),
      ...(page.CommonPrefixes ?? []).map((p): ListEntry => ({ kind: 'prefix', prefix: layout.keyOf(input.bucket, p.Prefix ?? '') })),
    ];
    batch.sort((a, b) => compareUtf8(nameOf(a), nameOf(b)));
    let jump: string | undefined;
    for (const e of batch) {
      if (local && e.kind === 'prefix') {
        const seen = e.prefix === lastPrefix || (after !== undefined && compareUtf8(e.prefix, after) <= 0);
        if (!seen) {
          if (entries.length === input.limit) return { entries, isTruncated: true };
          entries.push(e);
          lastPrefix = e.prefix;
        }
        // Everything further under this prefix rolls into it too: list again from past it (when that moves on).
        const past = e.prefix + PAST;
        if (startAfter === undefined || compareUtf8(past, startAfter) > 0) {
          jump = past;
          break;
        }
        continue;
      }
      if (after !== undefined && compareUtf8(nameOf(e), after) <= 0) continue;
      if (entries.length === input.limit) return { entries, isTruncated: true };
      entries.push(e);
    }
    if (jump) {
      startAfter = jump;
      continue;
    }
    const last = batch.at(-1);
    if (!page.IsTruncated || last === undefined) return { entries, isTruncated: false };
    // Resume after the last name of this page; past it when it is a common prefix, which S3 would roll up again.
    const resume = last.kind === 'prefix' ? last.prefix + PAST : last.key;
    if (startAfter !== undefined && compareUtf8(resume, startAfter) <= 0) return { entries, isTruncated: false };
    startAfter = resume;
  }
}

function nameOf(e: ListEntry): string {
  return e.kind === 'object' ? e.key : e.prefix;
}

/** One page of multipart uploads, read from the upload records. */
export async function listUploads(clients: UpstreamClients, layout: Layout, input: ListUploadsInput): Promise<ListUploadsResult> {
  const { Bucket, Key: root } = layout.object(input.bucket, UPLOADS);
  const prefix = input.prefix ?? '';
  const entries: UploadListEntry[] = [];
  let startAfter: string | undefined;
  if (input.keyMarker !== undefined && input.keyMarker !== '') {
    // After one upload of the marker key, or past every upload of it.
    startAfter =
      input.uploadIdMarker !== undefined && input.uploadIdMarker !== ''
        ? `${root}${recordName(input.keyMarker)}!${input.uploadIdMarker}`
        : `${root}${recordName(input.keyMarker)}!\u{10FFFF}`;
  }
  let token: string | undefined;
  let lastPrefix: string | undefined;
  if (input.limit <= 0) return { entries, isTruncated: false };
  for (;;) {
    const page = await listObjectsV2(clients.retrying, { Bucket, Prefix: root + recordPrefix(prefix), StartAfter: token ? undefined : startAfter, ContinuationToken: token }).catch((err: unknown) => {
        throw translate(err);
      });
    for (const o of page.Contents ?? []) {
      const parsed = parseRecordName(o.Key!.slice(root.length));
      const key = parsed.key ?? (await recordKey(clients, Bucket, o.Key!));
      if (!key.startsWith(prefix)) continue;
      if (input.keyMarker && !input.uploadIdMarker && compareUtf8(key, input.keyMarker) <= 0) continue;
      const cut = input.delimiter ? key.indexOf(input.delimiter, prefix.length) : -1;
      if (cut >= 0) {
        const p = key.slice(0, cut + input.delimiter!.length);
        if (p === lastPrefix || (input.keyMarker && compareUtf8(p, input.keyMarker) <= 0)) continue;
        if (entries.length === input.limit) return { entries, isTruncated: true };
        entries.push({ kind: 'prefix', prefix: p });
        lastPrefix = p;
        continue;
      }
      if (entries.length === input.limit) return { entries, isTruncated: true };
      entries.push({ kind: 'upload', key, uploadId: parsed.uploadId, initiated: o.LastModified ?? new Date(0) });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
    if (!token) return { entries, isTruncated: false };
  }
}

/** The key of a long-key record, which its name holds only in part. */
async function recordKey(clients: UpstreamClients, Bucket: string, Key: string): Promise<string> {
  try {
    const out = await clients.retrying.send(new GetObjectCommand({ Bucket, Key }));
    return (JSON.parse(await out.Body!.transformToString()) as { key: string }).key;
  } catch (err) {
    throw translate(err);
  }
}

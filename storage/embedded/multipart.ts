/**
 * Multipart uploads of the embedded store. Parts are blobs with index rows until completion, when the object
 * becomes the list of its part blobs: nothing is copied, and reads stream across the part files.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  MIN_PART_SIZE,
  type CompleteUploadInput,
  type CreateUploadInput,
  type ListPartsResult,
  type ListUploadsInput,
  type ListUploadsResult,
  type ObjectMeta,
  type PartInfo,
  type StoredChecksum,
  type UploadInfo,
  type UploadPartCopyInput,
  type UploadPartInput,
} from '../backend.ts';
import { checkConditions, normalizeEtag } from '../conditions.ts';
import {
  EntityTooSmallError,
  InvalidPartError,
  InvalidPartOrderError,
  InvalidRequestError,
  NoSuchUploadError,
} from '../errors.ts';
import type { WrittenBlob } from './blobs.ts';
import { decodeChecksum, encodeChecksum, type PartRow, type UploadRow } from './index-db.ts';
import { walk, type WalkSource } from './listing.ts';
import { cleanMeta, keyBytes, rowToMeta, type StoreContext } from './store-context.ts';

/** S3's largest part number. */
const MAX_PART_NUMBER = 10_000;

/** Upload ids sort roughly by initiation time (listings order by key, then upload id). */
function newUploadId(): string {
  return Date.now().toString(16).padStart(12, '0') + randomBytes(10).toString('hex');
}

/** The upload row, or NoSuchBucketError / NoSuchUploadError when it is gone or belongs to another key. */
function requireUpload(ctx: StoreContext, bucket: string, key: string, uploadId: string): UploadRow {
  const row = ctx.index.q.getUpload.get(uploadId);
  if (row && row.bucket === bucket && row.key.equals(keyBytes(key))) return row;
  ctx.requireBucket(bucket);
  throw new NoSuchUploadError(`no upload ${uploadId}`);
}

function checkPartNumber(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_PART_NUMBER) throw new InvalidRequestError(`bad part number ${n}`);
}

function partInfo(row: PartRow): PartInfo {
  const info: PartInfo = { partNumber: row.part_number, etag: row.etag, size: row.size, lastModified: new Date(row.last_modified) };
  const checksum = decodeChecksum(row.checksum);
  if (checksum) info.checksum = checksum;
  return info;
}

/** Starts an upload; its metadata and tags wait in the index for completion. */
export function createMultipartUpload(ctx: StoreContext, input: CreateUploadInput): UploadInfo {
  ctx.requireBucket(input.bucket);
  const uploadId = newUploadId();
  const initiated = Date.now();
  const tags = input.tags && Object.keys(input.tags).length > 0 ? JSON.stringify(input.tags) : null;
  ctx.index.q.insertUpload.run(uploadId, input.bucket, keyBytes(input.key), initiated, JSON.stringify(cleanMeta(input.meta)), tags);
  return { key: input.key, uploadId, initiated: new Date(initiated) };
}

/** Indexes a written part blob, replacing any earlier upload of the same part number. */
function commitPart(ctx: StoreContext, input: { bucket: string; key: string; uploadId: string; partNumber: number }, blob: WrittenBlob, checksum?: StoredChecksum): PartInfo {
  const row: PartRow = {
    upload_id: input.uploadId,
    part_number: input.partNumber,
    blob: blob.id,
    size: blob.size,
    etag: blob.md5.toString('hex'),
    last_modified: Date.now(),
    checksum: encodeChecksum(checksum),
  };
  let replaced: string | undefined;
  try {
    replaced = ctx.index.transaction(() => {
      requireUpload(ctx, input.bucket, input.key, input.uploadId);
      const old = ctx.index.q.getPart.get(input.uploadId, input.partNumber);
      ctx.index.q.upsertPart.run(row.upload_id, row.part_number, row.blob, row.size, row.etag, row.last_modified, row.checksum);
      return old?.blob;
    });
  } catch (err) {
    ctx.blobs.discard([blob.id]);
    throw err;
  }
  if (replaced) ctx.release([replaced]);
  return partInfo(row);
}

/** Streams one part into a blob. */
export async function uploadPart(ctx: StoreContext, input: UploadPartInput): Promise<PartInfo> {
  checkPartNumber(input.partNumber);
  requireUpload(ctx, input.bucket, input.key, input.uploadId);
  const blob = await ctx.blobs.write(input.body, input.size, input.contentMd5);
  return commitPart(ctx, input, blob, input.checksum);
}

/** Streams (a range of) an existing object into a new part blob. */
export async function uploadPartCopy(ctx: StoreContext, input: UploadPartCopyInput): Promise<PartInfo> {
  checkPartNumber(input.partNumber);
  requireUpload(ctx, input.bucket, input.key, input.uploadId);
  const src = ctx.requireObject(input.source.bucket, input.source.key);
  checkConditions(input.source.conditions, rowToMeta(src), 'copy');
  const r = input.source.range ?? { start: 0, end: src.size - 1 };
  if (input.source.range && (r.start < 0 || r.end < r.start || r.end >= src.size)) {
    throw new InvalidRequestError(`copy range ${r.start}-${r.end} outside object of ${src.size} bytes`);
  }
  const body = ctx.blobs.read(ctx.index.q.segments.all(src.id), r.start, r.end);
  let blob: WrittenBlob;
  try {
    blob = await ctx.blobs.write(body, r.end - r.start + 1);
  } finally {
    body.destroy();
  }
  return commitPart(ctx, input, blob);
}

/** Checks the client's part list and turns the upload into an object made of the listed part blobs. */
export function completeMultipartUpload(ctx: StoreContext, input: CompleteUploadInput): ObjectMeta {
  const { index } = ctx;
  const { meta, released } = index.transaction(() => {
    const upload = requireUpload(ctx, input.bucket, input.key, input.uploadId);
    if (input.parts.length === 0) throw new InvalidRequestError('no parts listed');
    for (let i = 1; i < input.parts.length; i++) {
      if (input.parts[i]!.partNumber <= input.parts[i - 1]!.partNumber) throw new InvalidPartOrderError('parts out of order');
    }
    const stored = new Map(index.q.allParts.all(input.uploadId).map((p) => [p.part_number, p]));
    const chosen = input.parts.map((p) => {
      const row = stored.get(p.partNumber);
      if (!row || normalizeEtag(p.etag).toLowerCase() !== row.etag) throw new InvalidPartError(`part ${p.partNumber} missing or changed`);
      return row;
    });
    chosen.forEach((row, i) => {
      if (i < chosen.length - 1 && row.size < MIN_PART_SIZE) throw new EntityTooSmallError(`part ${row.part_number} too small`);
    });
    const md5s = Buffer.concat(chosen.map((r) => Buffer.from(r.etag, 'hex')));
    const obj = {
      bucket: input.bucket,
      key: upload.key,
      size: chosen.reduce((n, r) => n + r.size, 0),
      etag: `${createHash('md5').update(md5s).digest('hex')}-${chosen.length}`,
      lastModified: Date.now(),
      meta: JSON.parse(upload.meta),
      partSizes: chosen.map((r) => r.size),
      tags: upload.tags ? (JSON.parse(upload.tags) as Record<string, string>) : undefined,
    };
    const released = index.replaceObject(obj, chosen.map((r) => ({ blob: r.blob, size: r.size })));
    index.q.deleteParts.run(input.uploadId);
    index.q.deleteUpload.run(input.uploadId);
    const used = new Set(chosen.map((r) => r.blob));
    for (const p of stored.values()) if (!used.has(p.blob)) released.push(p.blob);
    return { meta: rowToMeta(index.q.getObject.get(input.bucket, upload.key)!), released };
  });
  ctx.release(released);
  return meta;
}

/** Drops the upload and its parts. */
export function abortMultipartUpload(ctx: StoreContext, bucket: string, key: string, uploadId: string): void {
  const blobs = ctx.index.transaction(() => {
    requireUpload(ctx, bucket, key, uploadId);
    const parts = ctx.index.q.allParts.all(uploadId).map((p) => p.blob);
    ctx.index.q.deleteParts.run(uploadId);
    ctx.index.q.deleteUpload.run(uploadId);
    return parts;
  });
  ctx.release(blobs);
}

/** One page of an upload's parts, after `partNumberMarker`. */
export function listParts(
  ctx: StoreContext,
  input: { bucket: string; key: string; uploadId: string; partNumberMarker?: number; limit: number },
): ListPartsResult {
  const upload = requireUpload(ctx, input.bucket, input.key, input.uploadId);
  const limit = Math.max(0, input.limit);
  const rows = ctx.index.q.listParts.all(input.uploadId, input.partNumberMarker ?? 0, limit + 1);
  return {
    upload: { key: input.key, uploadId: upload.upload_id, initiated: new Date(upload.initiated), meta: JSON.parse(upload.meta) },
    parts: rows.slice(0, limit).map(partInfo),
    isTruncated: rows.length > limit,
  };
}

/** One page of in-progress uploads, by key then upload id, with prefixes rolled up at the delimiter. */
export function listMultipartUploads(ctx: StoreContext, input: ListUploadsInput): ListUploadsResult {
  ctx.requireBucket(input.bucket);
  const { q } = ctx.index;
  const source: WalkSource<UploadRow> = {
    fetch: (from, below, n) =>
      from.after === undefined
        ? q.listUploadsFrom.iterate(input.bucket, from.key, below, n)
        : q.listUploadsAfter.iterate(input.bucket, from.key, from.after, below, n),
    first: (from, below) =>
      from.after === undefined
        ? q.listUploadsFrom.get(input.bucket, from.key, below, 1)
        : q.listUploadsAfter.get(input.bucket, from.key, from.after, below, 1),
    next: (row) => ({ key: row.key, after: row.upload_id }),
  };
  const start =
    input.keyMarker === undefined
      ? undefined
      : { key: keyBytes(input.keyMarker), ...(input.uploadIdMarker !== undefined ? { after: input.uploadIdMarker } : {}) };
  const { entries, isTruncated } = walk(source, {
    prefix: keyBytes(input.prefix ?? ''),
    delimiter: input.delimiter ? keyBytes(input.delimiter) : undefined,
    start,
    limit: input.limit,
  });
  return {
    entries: entries.map((e) =>
      e.kind === 'prefix'
        ? { kind: 'prefix' as const, prefix: e.prefix.toString('utf8') }
        : { kind: 'upload' as const, key: e.row.key.toString('utf8'), uploadId: e.row.upload_id, initiated: new Date(e.row.initiated) },
    ),
    isTruncated,
  };
}

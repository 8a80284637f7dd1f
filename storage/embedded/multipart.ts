/**
 * Multipart uploads of the embedded store. Parts are blobs with index rows until completion, when the object
 * becomes the list of its part blobs: nothing is copied, and reads stream across the part files.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Transform } from 'node:stream';
import {
  MIN_PART_SIZE,
  type UploadChecksum,
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
import { combineCrcs, compositeChecksum, createHasher } from '../checksums.ts';
import { checkConditions, checkWriteConditions, normalizeEtag } from '../conditions.ts';
import {
  BadDigestError,
  EntityTooSmallError,
  InvalidPartError,
  InvalidPartOrderError,
  InvalidRangeError,
  InvalidRequestError,
  missingPartChecksumError,
  NoSuchUploadError,
} from '../errors.ts';
import { Readable } from 'node:stream';
import type { WrittenBlob } from './blobs.ts';
import { decodeChecksum, encodeChecksum, UnsyncedCommitError, type PartRow, type StoredMeta, type UploadRow } from './index-db.ts';
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

/** What an upload row's meta column holds: the final object's metadata and the upload's checksum settings. */
type UploadMeta = StoredMeta & { uploadChecksum?: UploadChecksum };

function uploadMetaOf(row: UploadRow): UploadMeta {
  return JSON.parse(row.meta) as UploadMeta;
}

/** Starts an upload; its metadata, tags and checksum settings wait in the index for completion. */
export async function createMultipartUpload(ctx: StoreContext, input: CreateUploadInput): Promise<UploadInfo> {
  const uploadId = newUploadId();
  const initiated = Date.now();
  const tags = input.tags && Object.keys(input.tags).length > 0 ? JSON.stringify(input.tags) : null;
  const meta: UploadMeta = { ...cleanMeta(input.meta), ...(input.checksum ? { uploadChecksum: { ...input.checksum } } : {}) };
  const bucket = ctx.requireBucket(input.bucket);
  await input.beforeCommit?.();
  await ctx.index.commit(() => {
    ctx.requireSameBucket(input.bucket, bucket);
    ctx.index.q.insertUpload.run(uploadId, input.bucket, keyBytes(input.key), initiated, JSON.stringify(meta), tags);
  });
  return { key: input.key, uploadId, initiated: new Date(initiated), ...(input.checksum ? { checksum: input.checksum } : {}) };
}

/**
 * The body of a part, and the part's checksum in the upload's algorithm: the one the client sent (verified by the
 * gateway, and refused when it is of another algorithm, as S3 does), or one computed here while the part streams.
 */
function partChecksumPlan(upload: UploadRow, input: UploadPartInput): { body: Readable; checksum: () => Promise<StoredChecksum | undefined> } {
  const wanted = uploadMetaOf(upload).uploadChecksum?.algorithm;
  const sent = (): StoredChecksum | undefined => input.finalChecksum?.() ?? input.checksum;
  if (!wanted || input.announcedChecksum) {
    return {
      body: input.body,
      checksum: async () => {
        const c = sent();
        if (wanted && c && c.algorithm !== wanted) {
          throw new InvalidRequestError(`Checksum Type mismatch occurred, expected checksum Type: ${wanted.toLowerCase()}, actual checksum Type: ${c.algorithm.toLowerCase()}`);
        }
        return c;
      },
    };
  }
  const hasher = createHasher(wanted);
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hasher.update(chunk);
      done(null, chunk);
    },
  });
  input.body.on('error', (err) => tap.destroy(err));
  input.body.pipe(tap);
  return { body: tap, checksum: async () => ({ algorithm: wanted, value: (await hasher.digest()).toString('base64') }) };
}

/** Indexes a written part blob, replacing any earlier upload of the same part number. */
async function commitPart(
  ctx: StoreContext,
  input: { bucket: string; key: string; uploadId: string; partNumber: number; beforeCommit?: () => Promise<void> },
  blob: WrittenBlob,
  checksum?: StoredChecksum,
): Promise<PartInfo> {
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
    // An upload ends with its bucket, so finding it inside the commit binds the part to one incarnation.
    await input.beforeCommit?.();
    replaced = await ctx.index.commit(() => {
      requireUpload(ctx, input.bucket, input.key, input.uploadId);
      const old = ctx.index.q.getPart.get(input.uploadId, input.partNumber);
      ctx.index.q.upsertPart.run(row.upload_id, row.part_number, row.blob, row.size, row.etag, row.last_modified, row.checksum);
      return old?.blob;
    });
  } catch (err) {
    if (!(err instanceof UnsyncedCommitError)) ctx.blobs.discard([blob.id]);
    throw err;
  }
  if (replaced) void ctx.release([replaced]);
  return partInfo(row);
}

/** Streams one part into a blob. */
export async function uploadPart(ctx: StoreContext, input: UploadPartInput): Promise<PartInfo> {
  checkPartNumber(input.partNumber);
  const upload = requireUpload(ctx, input.bucket, input.key, input.uploadId);
  const plan = partChecksumPlan(upload, input);
  const blob = await ctx.blobs.write(plan.body, input.size, input.contentMd5);
  let checksum: StoredChecksum | undefined;
  try {
    checksum = await plan.checksum();
  } catch (err) {
    ctx.blobs.discard([blob.id]);
    throw err;
  }
  return commitPart(ctx, input, blob, checksum);
}

/** Streams (a range of) an existing object into a new part blob. */
export async function uploadPartCopy(ctx: StoreContext, input: UploadPartCopyInput): Promise<PartInfo> {
  checkPartNumber(input.partNumber);
  const { upload, start, end, body: read } = await ctx.readBody(() => {
    const upload = requireUpload(ctx, input.bucket, input.key, input.uploadId);
    const row = ctx.requireObject(input.source.bucket, input.source.key, true);
    checkConditions(input.source.conditions, rowToMeta(row), 'copy');
    const r = input.source.range ?? { start: 0, end: row.size - 1 };
    // S3 answers a copy range past the source's end with InvalidRange (UploadPartCopy, x-amz-copy-source-range).
    if (input.source.range && (r.start < 0 || r.end < r.start || r.end >= row.size)) throw new InvalidRangeError(row.size);
    return { upload, row, start: r.start, end: r.end };
  });
  const body = Buffer.isBuffer(read) ? Readable.from([read], { objectMode: false }) : read;
  const plan = partChecksumPlan(upload, { ...input, body, size: end - start + 1 });
  let blob: WrittenBlob;
  try {
    blob = await ctx.blobs.write(plan.body, end - start + 1);
  } finally {
    body.destroy();
  }
  return commitPart(ctx, input, blob, await plan.checksum());
}

/**
 * The object's checksum from its parts' (S3 User Guide, "Checking object integrity"): composite uploads take the
 * checksum of the part digests, full-object ones combine the part CRCs. Checks what the Complete request said about
 * each part and the whole object; undefined when the upload kept no checksum.
 */
function objectChecksum(
  upload: UploadMeta,
  chosen: PartRow[],
  input: CompleteUploadInput,
): { checksum: StoredChecksum; partChecksums: string[] } | undefined {
  const settings = upload.uploadChecksum;
  if (!settings) return undefined;
  const values = chosen.map((row, i) => {
    const stored = decodeChecksum(row.checksum);
    if (!stored || stored.algorithm !== settings.algorithm) throw new InvalidPartError(`part ${row.part_number} has no ${settings.algorithm} checksum`);
    const listed = input.parts[i]!.checksum;
    if (listed === undefined && settings.type === 'COMPOSITE') {
      throw missingPartChecksumError(settings.algorithm, row.part_number);
    }
    if (listed !== undefined && listed !== stored.value) throw new InvalidPartError(`part ${row.part_number} checksum does not match`);
    return stored.value;
  });
  const value =
    settings.type === 'COMPOSITE'
      ? compositeChecksum(settings.algorithm, values)
      : combineCrcs(settings.algorithm, values.map((v, i) => ({ value: v, size: chosen[i]!.size })));
  if (value === undefined) throw new InvalidRequestError(`${settings.algorithm} cannot be a ${settings.type} checksum`);
  const checksum: StoredChecksum = { algorithm: settings.algorithm, value, type: settings.type };
  if (input.checksum && (input.checksum.algorithm !== checksum.algorithm || input.checksum.value !== value)) {
    throw new BadDigestError(`the ${input.checksum.algorithm} of the object does not match`);
  }
  return { checksum, partChecksums: values };
}

/** Checks the client's part list and turns the upload into an object made of the listed part blobs. */
export async function completeMultipartUpload(ctx: StoreContext, input: CompleteUploadInput): Promise<ObjectMeta> {
  const { index } = ctx;
  // An upload ends with its bucket (deleteBucket), so finding it inside the commit binds this to one incarnation.
  await input.beforeCommit?.();
  const { meta, released } = await index.commit(() => {
    const upload = requireUpload(ctx, input.bucket, input.key, input.uploadId);
    checkWriteConditions(input.writeConditions, index.q.getObject.get(input.bucket, upload.key));
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
    const { uploadChecksum: _settings, ...uploadMeta } = uploadMetaOf(upload);
    const sums = objectChecksum(uploadMetaOf(upload), chosen, input);
    const obj = {
      bucket: input.bucket,
      key: upload.key,
      size: chosen.reduce((n, r) => n + r.size, 0),
      etag: `${createHash('md5').update(md5s).digest('hex')}-${chosen.length}`,
      lastModified: Date.now(),
      meta: { ...uploadMeta, ...(sums ? { checksum: sums.checksum, partChecksums: sums.partChecksums } : {}) },
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
  void ctx.release(released);
  return meta;
}

/** Drops the upload and its parts. */
export async function abortMultipartUpload(ctx: StoreContext, bucket: string, key: string, uploadId: string): Promise<void> {
  const blobs = await ctx.index.commit(() => {
    requireUpload(ctx, bucket, key, uploadId);
    const parts = ctx.index.q.allParts.all(uploadId).map((p) => p.blob);
    ctx.index.q.deleteParts.run(uploadId);
    ctx.index.q.deleteUpload.run(uploadId);
    return parts;
  });
  void ctx.release(blobs);
}

/** One page of an upload's parts, after `partNumberMarker`. */
export function listParts(
  ctx: StoreContext,
  input: { bucket: string; key: string; uploadId: string; partNumberMarker?: number; limit: number },
): ListPartsResult {
  const upload = requireUpload(ctx, input.bucket, input.key, input.uploadId);
  const limit = Math.max(0, input.limit);
  const rows = ctx.index.q.listParts.all(input.uploadId, input.partNumberMarker ?? 0, limit + 1);
  const { uploadChecksum, ...meta } = uploadMetaOf(upload);
  return {
    upload: { key: input.key, uploadId: upload.upload_id, initiated: new Date(upload.initiated), meta, ...(uploadChecksum ? { checksum: uploadChecksum } : {}) },
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

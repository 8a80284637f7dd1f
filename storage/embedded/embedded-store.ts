/**
 * The embedded backend: bodies in durable blob files (small ones inline in the index), everything else in one SQLite
 * index. A write becomes visible only with its index commit, after its blob is fsynced and renamed, and is
 * acknowledged only once that commit is on disk, so a crash leaves the old object or the new one. Blobs a commit
 * stops referencing are unlinked only after it is durable. Several worker processes may share one store; only the
 * opener that is not a worker sweeps (see openEmbeddedStore).
 */
import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type {
  Backend,
  BackendHealth,
  BucketInfo,
  CompleteUploadInput,
  CopyObjectInput,
  CreateUploadInput,
  GetObjectInput,
  ListedChecksum,
  ListObjectsInput,
  ListObjectsResult,
  ListPartsResult,
  ListUploadsInput,
  ListUploadsResult,
  ObjectMeta,
  ObjectRead,
  PartInfo,
  PutObjectInput,
  UploadInfo,
  UploadPartCopyInput,
  UploadPartInput,
} from '../backend.ts';
import { checkConditions, checkWriteConditions } from '../conditions.ts';
import { BucketAlreadyExistsError, BucketNotEmptyError, InvalidPartError, NoSuchBucketError, ServiceUnavailableError } from '../errors.ts';
import { partRange, resolveRange, type ResolvedRange } from '../range.ts';
import { lockDataDir, lockWorkers, type DataDirLock } from '../data-dir-lock.ts';
import { SpaceReserve } from '../space-reserve.ts';
import { BlobStore, type InlineBody, type WrittenBlob } from './blobs.ts';
import { INLINE_MAX, openIndex, UnsyncedCommitError, type ListingRow, type NewObject, type ObjectRow } from './index-db.ts';
import { successor, walk, type WalkSource } from './listing.ts';
import * as multipart from './multipart.ts';
import { StoreContext, cleanMeta, keyBytes, parseTags, rowToMeta } from './store-context.ts';

/** Options of openEmbeddedStore. */
export interface EmbeddedStoreOptions {
  /** Directory holding index.db, blobs/ and tmp/; created when missing. One process owns it at a time. */
  dataDir: string;
  /**
   * The directory's exclusive lock when the caller (the gateway, which locks before opening anything else) already
   * holds it; the caller keeps it. Absent: the store takes the lock itself and drops it on close().
   */
  lock?: DataDirLock;
  /** The data volume's metadata reserve (the gateway's); absent: none is kept, a full volume is still StorageFullError. */
  space?: SpaceReserve;
  /**
   * A worker process of a gateway whose primary holds the exclusive lock and has swept the directory: the worker
   * takes no lock (kernel locks are per process) and never sweeps, since other workers' writes are in flight.
   */
  worker?: boolean;
  /** Segments a read opens ahead; reads over more lease their blobs in the index (default EAGER_OPEN_MAX). */
  eagerOpenMax?: number;
  /** How long the sweep waits for worker processes of an earlier gateway to exit (default 2 s). */
  workersWaitMs?: number;
}

/**
 * Opens (creating if needed) the store in `dataDir`, first removing temp files, read leases and unreferenced blobs
 * (not as a worker). Throws DataDirInUseError when another process holds the directory.
 */
export async function openEmbeddedStore(options: EmbeddedStoreOptions): Promise<EmbeddedStore> {
  const { dataDir, lock, worker } = options;
  if (lock && (lock.mode !== 'exclusive' || lock.dataDir !== dataDir)) {
    throw new Error(`the embedded store needs the exclusive lock of ${dataDir}, not a ${lock.mode} lock of ${lock.dataDir}`);
  }
  const space = options.space ?? SpaceReserve.none(dataDir);
  const blobs = new BlobStore(dataDir, space);
  await mkdir(dataDir, { recursive: true });
  const own = lock || worker ? undefined : lockDataDir(dataDir, 'exclusive');
  // A worker marks itself alive for as long as the store is open; the sweeper waits until no worker is.
  const workers = worker ? lockWorkers(dataDir, 'shared') : undefined;
  const release = () => {
    workers?.release();
    own?.release();
  };
  try {
    const index = openIndex(join(dataDir, 'index.db'), space);
    if (!worker) {
      const alone = lockWorkers(dataDir, 'exclusive', options.workersWaitMs);
      try {
        // Nobody reads or writes but this opener: every lease is a dead reader's, every unreferenced blob garbage.
        index.db.exec('DELETE FROM blob_leases');
        await blobs.sweep((id) => index.isReferenced(id));
      } finally {
        alone.release();
      }
    }
    return new EmbeddedStore(new StoreContext(index, blobs, options.eagerOpenMax), release);
  } catch (err) {
    release();
    throw err;
  }
}

/**
 * Clears what a worker process that died left in the store: its temp files and its read leases (unlinking the blobs
 * only those leases kept). Called by the gateway's primary, which holds the directory's lock, once the worker is gone.
 */
export async function reapWorker(dataDir: string, pid: number): Promise<void> {
  const blobs = new BlobStore(dataDir);
  await blobs.removeTempOf(pid);
  const index = openIndex(join(dataDir, 'index.db'));
  try {
    const ctx = new StoreContext(index, blobs);
    const leased = await index.commitVolatile(() => {
      const ids = index.db.prepare<[string], { blob: string }>('SELECT blob FROM blob_leases WHERE lease LIKE ?').all(`${pid}.%`);
      index.db.prepare<[string]>('DELETE FROM blob_leases WHERE lease LIKE ?').run(`${pid}.%`);
      return ids.map((r) => r.blob);
    });
    await ctx.release(leased);
  } finally {
    await index.close();
  }
}

/** A copy keeps the source's checksum (and part checksums) with its bytes, whatever metadata it replaces. */
function checksumKept(src: ObjectMeta): { checksum?: ObjectMeta['checksum']; partChecksums?: string[] } {
  return { ...(src.checksum ? { checksum: src.checksum } : {}), ...(src.partChecksums ? { partChecksums: src.partChecksums } : {}) };
}

function bucketInfo(row: { name: string; created_at: number }): BucketInfo {
  return { name: row.name, createdAt: new Date(row.created_at) };
}

/** A read whose bytes are already in memory: `bytes` to send as they are, `body` streaming them only if asked for. */
function readOf(meta: ObjectMeta, range: ResolvedRange | undefined, body: Buffer | Readable): ObjectRead {
  const base = range ? { meta, range } : { meta };
  if (!Buffer.isBuffer(body)) return { ...base, body };
  let stream: Readable | undefined;
  return {
    ...base,
    bytes: body,
    get body() {
      return (stream ??= Readable.from([body], { objectMode: false }));
    },
  };
}

/** The embedded store; see openEmbeddedStore. */
export class EmbeddedStore implements Backend {
  readonly kind = 'embedded';
  private readonly openedAt = new Date();

  constructor(
    private readonly ctx: StoreContext,
    private readonly release: () => void = () => {},
  ) {}

  private get q() {
    return this.ctx.index.q;
  }

  async listBuckets(): Promise<BucketInfo[]> {
    return this.q.listBuckets.all().map(bucketInfo);
  }

  async createBucket(name: string): Promise<BucketInfo> {
    const createdAt = Date.now();
    const created = await this.ctx.index.commit(() => {
      const incarnation = Number(this.q.newIncarnation.run().lastInsertRowid);
      this.q.dropIncarnationsBefore.run(incarnation);
      return this.q.insertBucket.run(name, createdAt, incarnation).changes;
    });
    if (created === 0) throw new BucketAlreadyExistsError(`bucket ${name} exists`);
    return { name, createdAt: new Date(createdAt) };
  }

  /**
   * Unfinished multipart uploads do not keep a general purpose bucket alive in S3 (only directory buckets refuse, per
   * the AbortMultipartUpload API reference): they are aborted with the bucket. Objects do keep it (BucketNotEmpty).
   */
  async deleteBucket(name: string): Promise<void> {
    const released = await this.ctx.index.commit(() => {
      this.ctx.requireBucket(name);
      if (this.q.anyObject.get(name)) throw new BucketNotEmptyError(`bucket ${name} not empty`);
      const blobs: string[] = [];
      for (const { upload_id } of this.q.bucketUploads.all(name)) {
        blobs.push(...this.q.allParts.all(upload_id).map((p) => p.blob));
        this.q.deleteParts.run(upload_id);
        this.q.deleteUpload.run(upload_id);
      }
      this.q.deleteAllBucketConfig.run(name);
      this.q.deleteBucket.run(name);
      return blobs;
    });
    void this.ctx.release(released);
  }

  async headBucket(name: string): Promise<BucketInfo> {
    const row = this.q.getBucket.get(name);
    if (!row) throw new NoSuchBucketError(`no bucket ${name}`);
    return bucketInfo(row);
  }

  async putObject(input: PutObjectInput): Promise<ObjectMeta> {
    const { ctx } = this;
    const bucket = ctx.requireBucket(input.bucket);
    // Checked before the body is read (no point storing what will be refused) and again inside the commit.
    checkWriteConditions(input.writeConditions, this.q.getObject.get(input.bucket, keyBytes(input.key)));
    const small = input.size !== undefined && input.size <= INLINE_MAX;
    const body: InlineBody | WrittenBlob = small
      ? await ctx.blobs.readSmall(input.body, input.size!, input.contentMd5)
      : await ctx.blobs.write(input.body, input.size, input.contentMd5);
    const checksum = input.finalChecksum?.() ?? input.meta.checksum;
    const obj: NewObject = {
      bucket: input.bucket,
      key: keyBytes(input.key),
      size: body.size,
      etag: body.md5.toString('hex'),
      lastModified: Date.now(),
      meta: cleanMeta({ ...input.meta, ...(checksum ? { checksum } : {}) }),
      tags: input.tags,
      ...('inline' in body ? { body: body.inline } : {}),
    };
    const segments = 'id' in body ? [{ blob: body.id, size: body.size }] : [];
    let released: string[];
    try {
      await input.beforeCommit?.();
      released = await ctx.index.commit(() => {
        ctx.requireSameBucket(input.bucket, bucket);
        checkWriteConditions(input.writeConditions, this.q.getObject.get(obj.bucket, obj.key));
        return ctx.index.replaceObject(obj, segments);
      });
    } catch (err) {
      if ('id' in body && !(err instanceof UnsyncedCommitError)) ctx.blobs.discard([body.id]);
      throw err;
    }
    void ctx.release(released);
    return { key: input.key, size: obj.size, etag: obj.etag, lastModified: new Date(obj.lastModified), ...obj.meta, tagCount: Object.keys(obj.tags ?? {}).length };
  }

  async getObject(input: GetObjectInput): Promise<ObjectRead> {
    const { meta, range, body } = await this.ctx.readBody(() => {
      const row = this.ctx.requireObject(input.bucket, input.key, true);
      const meta = rowToMeta(row);
      checkConditions(input.conditions, meta, 'read');
      let range: ResolvedRange | undefined;
      if (input.partNumber !== undefined) {
        range = partRange(meta.partSizes ?? [meta.size], input.partNumber);
        if (!range) throw new InvalidPartError(`no part ${input.partNumber}`);
        if (range.end < range.start) range = undefined; // part 1 of an empty object: nothing to range over
      } else if (input.range) {
        range = resolveRange(input.range, meta.size);
      }
      return { row, meta, range, start: range?.start ?? 0, end: range?.end ?? meta.size - 1 };
    });
    return readOf(meta, range, body);
  }

  async headObject(bucket: string, key: string): Promise<ObjectMeta> {
    return rowToMeta(this.ctx.requireObject(bucket, key));
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    await this.deleteObjects(bucket, [key]);
  }

  async deleteObjects(bucket: string, keys: string[]): Promise<Array<{ key: string; error?: Error }>> {
    const { ctx } = this;
    const released = await ctx.index.commit(() => {
      ctx.requireBucket(bucket);
      const out: string[] = [];
      for (const key of keys) {
        const row = this.q.getObject.get(bucket, keyBytes(key));
        if (row) out.push(...ctx.index.removeObject(row));
      }
      return out;
    });
    void ctx.release(released);
    return keys.map((key) => ({ key }));
  }

  async copyObject(input: CopyObjectInput): Promise<ObjectMeta> {
    const { ctx } = this;
    const dest = ctx.requireBucket(input.dest.bucket);
    await input.beforeCommit?.();
    // The copy shares the source's blobs (or copies its inline body): one transaction, no blob bytes moved.
    const { meta, released } = await ctx.index.commit(() => {
      const src = ctx.requireObject(input.source.bucket, input.source.key, true);
      const srcMeta = rowToMeta(src);
      checkConditions(input.source.conditions, srcMeta, 'copy');
      ctx.requireSameBucket(input.dest.bucket, dest);
      checkWriteConditions(input.writeConditions, this.q.getObject.get(input.dest.bucket, keyBytes(input.dest.key)));
      const segments = this.q.segments.all(src.id);
      const obj: NewObject = {
        bucket: input.dest.bucket,
        key: keyBytes(input.dest.key),
        size: src.size,
        etag: src.etag,
        lastModified: Date.now(),
        meta: input.replaceMeta ? cleanMeta({ ...input.replaceMeta, ...checksumKept(srcMeta) }) : JSON.parse(src.meta),
        partSizes: srcMeta.partSizes,
        tags: input.replaceTags ?? parseTags(src.tags),
        ...(src.body ? { body: src.body } : {}),
      };
      const released = ctx.index.replaceObject(obj, segments);
      return { meta: rowToMeta(this.q.getObject.get(obj.bucket, obj.key)!), released };
    });
    void ctx.release(released);
    return meta;
  }

  async listObjects(input: ListObjectsInput): Promise<ListObjectsResult> {
    this.ctx.requireBucket(input.bucket);
    const source: WalkSource<ListingRow> = {
      fetch: (from, below, n) => this.q.listObjects.iterate(input.bucket, from.key, below, n),
      first: (from, below) => this.q.listObjects.get(input.bucket, from.key, below, 1),
      next: (row) => ({ key: successor(row.key) }),
    };
    const { entries, isTruncated } = walk(source, {
      prefix: keyBytes(input.prefix ?? ''),
      delimiter: input.delimiter ? keyBytes(input.delimiter) : undefined,
      start: input.startAfter !== undefined ? { key: keyBytes(input.startAfter) } : undefined,
      limit: input.limit,
    });
    return {
      entries: entries.map((e) =>
        e.kind === 'prefix'
          ? { kind: 'prefix' as const, prefix: e.prefix.toString('utf8') }
          : {
              kind: 'object' as const,
              key: e.row.key.toString('utf8'),
              size: e.row.size,
              etag: e.row.etag,
              lastModified: new Date(e.row.last_modified),
              ...(e.row.checksum !== null ? { checksum: e.row.checksum as ListedChecksum } : {}),
            },
      ),
      isTruncated,
    };
  }

  async getObjectTagging(bucket: string, key: string): Promise<Record<string, string>> {
    return parseTags(this.ctx.requireObject(bucket, key).tags);
  }

  async putObjectTagging(bucket: string, key: string, tags: Record<string, string>): Promise<void> {
    await this.ctx.index.commit(() => {
      const row = this.ctx.requireObject(bucket, key);
      this.q.setTags.run(Object.keys(tags).length > 0 ? JSON.stringify(tags) : null, row.id);
    });
  }

  async deleteObjectTagging(bucket: string, key: string): Promise<void> {
    await this.putObjectTagging(bucket, key, {});
  }

  async getBucketTagging(bucket: string): Promise<Record<string, string>> {
    this.ctx.requireBucket(bucket);
    return parseTags(this.q.getBucketConfig.get(bucket, 'tagging')?.value ?? null);
  }

  async putBucketTagging(bucket: string, tags: Record<string, string>): Promise<void> {
    await this.setBucketConfig(bucket, 'tagging', Object.keys(tags).length > 0 ? JSON.stringify(tags) : undefined);
  }

  async getBucketCors(bucket: string): Promise<string | undefined> {
    this.ctx.requireBucket(bucket);
    return this.q.getBucketConfig.get(bucket, 'cors')?.value;
  }

  async putBucketCors(bucket: string, document: string | undefined): Promise<void> {
    await this.setBucketConfig(bucket, 'cors', document);
  }

  private async setBucketConfig(bucket: string, name: string, value: string | undefined): Promise<void> {
    await this.ctx.index.commit(() => {
      this.ctx.requireBucket(bucket);
      if (value === undefined) this.q.deleteBucketConfig.run(bucket, name);
      else this.q.setBucketConfig.run(bucket, name, value);
    });
  }

  async createMultipartUpload(input: CreateUploadInput): Promise<UploadInfo> {
    return multipart.createMultipartUpload(this.ctx, input);
  }

  async uploadPart(input: UploadPartInput): Promise<PartInfo> {
    return multipart.uploadPart(this.ctx, input);
  }

  async uploadPartCopy(input: UploadPartCopyInput): Promise<PartInfo> {
    return multipart.uploadPartCopy(this.ctx, input);
  }

  async completeMultipartUpload(input: CompleteUploadInput): Promise<ObjectMeta> {
    return multipart.completeMultipartUpload(this.ctx, input);
  }

  async abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    await multipart.abortMultipartUpload(this.ctx, bucket, key, uploadId);
  }

  async listParts(input: { bucket: string; key: string; uploadId: string; partNumberMarker?: number; limit: number }): Promise<ListPartsResult> {
    return multipart.listParts(this.ctx, input);
  }

  async listMultipartUploads(input: ListUploadsInput): Promise<ListUploadsResult> {
    return multipart.listMultipartUploads(this.ctx, input);
  }

  async ping(): Promise<void> {
    if (!this.ctx.index.db.open) throw new ServiceUnavailableError('the embedded store is closed');
    this.ctx.index.db.prepare('SELECT 1 FROM buckets LIMIT 1').get();
    await access(this.ctx.blobs.blobDir, constants.W_OK);
  }

  health(): BackendHealth {
    const up = this.ctx.index.db.open;
    return { up, since: this.openedAt, retryAfterSeconds: 1, ...(up ? {} : { reason: 'closed' }) };
  }

  async close(): Promise<void> {
    await this.ctx.index.close();
    this.release();
  }
}

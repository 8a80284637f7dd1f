/**
 * The Backend over an upstream S3 service. Bodies stream both ways, ranges and conditions are sent upstream (with
 * RFC 7232 precedence applied first), copies are server-side, and every SDK failure leaves as a neutral error.
 */
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  DeleteObjectTaggingCommand,
  GetObjectTaggingCommand,
  PutObjectTaggingCommand,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import type {
  Backend,
  BackendHealth,
  BucketInfo,
  CompleteUploadInput,
  CopyObjectInput,
  CreateUploadInput,
  GetObjectInput,
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
import { checkConditions, normalizeEtag } from '../conditions.ts';
import { partRange } from '../range.ts';
import {
  InvalidPartError,
  InvalidRangeError,
  NoSuchBucketError,
  NoSuchKeyError,
  NotModifiedError,
  PreconditionFailedError,
  UpstreamRefusalError,
} from '../errors.ts';
import type { WriteConditions } from '../backend.ts';
import { sendBody } from './body.ts';
import { BucketConfig } from './bucket-config.ts';
import { Buckets, isNotFound, type WriteStart } from './buckets.ts';
import type { UpstreamClients } from './client.ts';
import { callerCheck, faultCode, faultStatus, isCallerRefusal, translate } from './errors.ts';
import type { UpstreamHealth } from './health.ts';
import { unfaithfulKeyError, type Layout } from './layout.ts';
import { listObjects, listUploads } from './listing.ts';
import { Multipart } from './multipart.ts';
import { conditionalCopy, partSizes, putUnsized } from './objects.ts';
import { sendableConditions, sendableWriteConditions, type SendableConditions } from './preconditions.ts';
import { bytesRead, headerValue, SMALL_BODY, smallBody, trailerOf, verifiedBody } from './lean-wire.ts';
import {
  checksumHeaders,
  conditionHeaders,
  objectFieldsOf,
  writeHeaders,
  copyConditionFields,
  metaOf,
  parseContentRange,
  partsCountOf,
  rangeHeader,
  tagRecord,
  taggingHeader,
  writeConditionFields,
  writeFields,
} from './wire.ts';

/** Keys per DeleteObjects call, S3's maximum. */
const DELETE_BATCH = 1000;

/** What sendableConditions answers for a read without conditions. */
const NO_CONDITIONS: SendableConditions = Object.freeze({ conditions: undefined, pinned: false });

/** The upstream S3 backend. */
export class UpstreamBackend implements Backend {
  readonly kind = 'upstream';
  private readonly buckets: Buckets;
  private readonly multipart: Multipart;
  private readonly config: BucketConfig;

  constructor(
    private readonly clients: UpstreamClients,
    private readonly layout: Layout,
    /** Reachability; the backend's clients fail fast through it while the upstream is down. */
    private readonly reachability: UpstreamHealth,
  ) {
    this.buckets = new Buckets(clients, layout);
    this.multipart = new Multipart(clients, layout, this.buckets);
    this.config = new BucketConfig(clients, layout, this.buckets);
    reachability.attach(clients.retrying);
    reachability.attach(clients.streaming);
    clients.lean.watch(reachability);
  }

  ping(signal?: AbortSignal): Promise<void> {
    return this.reachability.check(signal);
  }

  /** Forgets what the bucket cache knows of `bucket`: the upstream answered that it does not exist. */
  forgetBucket(bucket: string): void {
    this.buckets.forget(bucket);
  }

  health(): BackendHealth {
    return this.reachability.current();
  }

  listBuckets(): Promise<BucketInfo[]> {
    return this.buckets.list();
  }
  createBucket(name: string): Promise<BucketInfo> {
    return this.buckets.create(name);
  }
  deleteBucket(name: string): Promise<void> {
    return this.buckets.delete(name, () => this.abortAllUploads(name));
  }

  /** Aborts every upload in progress in the bucket (DeleteBucket takes them with it, as S3 does). */
  private async abortAllUploads(bucket: string): Promise<void> {
    for (;;) {
      const page = await listUploads(this.clients, this.layout, { bucket, limit: 1000 });
      const uploads = page.entries.flatMap((e) => (e.kind === 'upload' ? [e] : []));
      if (uploads.length === 0) return;
      for (const u of uploads) {
        await this.multipart.abort(bucket, u.key, u.uploadId).catch((err: unknown) => {
          if (!(err instanceof Error && err.name === 'NoSuchUploadError')) throw err;
        });
      }
    }
  }
  headBucket(name: string, options: { fresh?: boolean } = {}): Promise<BucketInfo> {
    return this.buckets.head(name, options);
  }

  /** The neutral error for an upstream "not found": the bucket's absence wins over the key's. */
  private async missing(err: unknown, bucket: string, key: string): Promise<Error> {
    if (isCallerRefusal(err)) return err as Error;
    if (faultCode(err) === 'NoSuchBucket') return new NoSuchBucketError(`bucket ${bucket} does not exist`);
    if (!isNotFound(err)) return translate(err);
    // Asked now: a bucket deleted through another worker or node a moment ago is NoSuchBucket, not NoSuchKey.
    await this.buckets.head(bucket, { fresh: true });
    return new NoSuchKeyError(`no such key ${key}`);
  }

  /**
   * A conditional write the upstream refused, translated as S3 answers it: 412 names the failed condition, and an
   * If-Match on a key that does not exist is NoSuchKey (some upstreams answer 412 there; a HEAD tells them apart).
   */
  private async conditionFailure(err: unknown, conditions: WriteConditions | undefined, bucket: string, key: string): Promise<Error> {
    if (isCallerRefusal(err)) return err as Error;
    const status = err instanceof PreconditionFailedError ? 412 : err instanceof NoSuchKeyError ? 404 : faultStatus(err);
    if (!conditions || (status !== 412 && status !== 404)) return translate(err);
    if (status === 404) return this.missing(err, bucket, key);
    if (conditions.ifMatch !== undefined) {
      const exists = await this.headObject(bucket, key).then(() => true, (e: unknown) => (e instanceof NoSuchKeyError ? false : Promise.reject(e)));
      if (!exists) return new NoSuchKeyError(`If-Match: no object ${key}`);
    }
    return new PreconditionFailedError('upstream: precondition failed', conditions.ifNoneMatch !== undefined ? 'If-None-Match' : 'If-Match');
  }

  /** Write conditions as the upstream can check them (preconditions.ts), with this backend's HEAD. */
  private sendableWrite(c: WriteConditions | undefined, bucket: string, key: string): Promise<WriteConditions | undefined> {
    return sendableWriteConditions(c, () => this.headObject(bucket, key));
  }

  /**
   * The incarnation a write that creates data starts under; NoSuchBucketError when the bucket is missing (with
   * prefix mapping nothing upstream would refuse the write). See Buckets.writable and incarnation.ts.
   */
  private writable(bucket: string): Promise<WriteStart> {
    return this.buckets.writable(bucket);
  }

  /**
   * `work` (a delete or listing, which creates nothing), answered only if the bucket exists now. With bucket mapping
   * the upstream refuses a missing bucket itself; with prefix mapping nothing upstream would, so the marker is asked
   * alongside: a bucket deleted through another worker or node is NoSuchBucket at once, not an empty listing.
   */
  private async present<T>(bucket: string, work: () => Promise<T>): Promise<T> {
    if (this.layout.mapping !== 'prefix') return work();
    const [exists, done] = await Promise.allSettled([this.buckets.head(bucket, { fresh: true }), work()]);
    if (exists.status === 'rejected') throw exists.reason;
    if (done.status === 'rejected') throw done.reason;
    return done.value;
  }

  /** PutObject; once the upstream acknowledged it, refused and undone if the bucket was re-created meanwhile. */
  async putObject(original: PutObjectInput): Promise<ObjectMeta> {
    original = { ...original, beforeCommit: callerCheck(original.beforeCommit) };
    const started = await this.writable(original.bucket);
    const meta = await this.putStarted(original);
    await this.buckets.confirmObject(original.bucket, started, meta);
    return meta;
  }

  private async putStarted(original: PutObjectInput): Promise<ObjectMeta> {
    // An unconditional write (the usual one) is sent as it came: no await and no copy of its input ({ ...input, x }
    // costs V8 microseconds).
    const input = original.writeConditions === undefined
      ? original
      : { ...original, writeConditions: await this.sendableWrite(original.writeConditions, original.bucket, original.key) };
    const { size } = input;
    // A conditional PutObject makes MinIO hold the key's lock from the request's start until its body has arrived,
    // so a reader would wait on the client's upload speed: it goes up as putUnsized sends it, in whole parts.
    if (size === undefined || input.writeConditions) {
      const common = {
        ...this.layout.object(input.bucket, input.key),
        ...writeFields(input.meta),
        Tagging: taggingHeader(input.tags),
        ...writeConditionFields(input.writeConditions),
      };
      return putUnsized(this.clients, common, input).catch(async (err: unknown) => {
        throw input.writeConditions ? await this.conditionFailure(err, input.writeConditions, input.bucket, input.key) : err;
      });
    }
    // Added to writeHeaders' fresh object rather than spread into another: a spread followed by more properties costs
    // V8 microseconds per request.
    const headers = writeHeaders(input.meta);
    headers['x-amz-tagging'] = taggingHeader(input.tags);
    Object.assign(headers, checksumHeaders(input.meta.checksum));
    headers['content-md5'] = input.contentMd5?.toString('base64');
    const out = await sendBody({
      body: input.body,
      size,
      send: (stream, signal) =>
        this.clients.lean.send({
          method: 'PUT',
          loc: this.layout.object(input.bucket, input.key),
          headers,
          body: { stream, size, trailer: trailerOf(input, input.meta.checksum) },
          signal,
        }),
      beforeEnd: input.beforeCommit,
    }).catch(async (err: unknown) => {
      if (faultCode(err) === 'NoSuchBucket') throw await this.missing(err, input.bucket, input.key);
      throw input.writeConditions ? await this.conditionFailure(err, input.writeConditions, input.bucket, input.key) : err;
    });
    out.body.resume();
    return {
      key: input.key,
      size,
      etag: normalizeEtag(headerValue(out.headers.etag) ?? ''),
      // PutObject does not answer with Last-Modified; the local clock is within a request of it.
      lastModified: new Date(),
      headers: input.meta.headers,
      userMetadata: input.meta.userMetadata,
      checksum: input.finalChecksum?.() ?? input.meta.checksum,
    };
  }

  getObject(input: GetObjectInput): Promise<ObjectRead> {
    if (input.partNumber !== undefined) return this.getPart(input, input.partNumber, 1);
    return this.getWhole(input, 1);
  }

  /** A GetObject without partNumber; `attempt` 2 is the retry of a read whose list conditions were pinned to a replaced version. */
  private async getWhole(input: GetObjectInput, attempt: number): Promise<ObjectRead> {
    const loc = this.layout.object(input.bucket, input.key);
    const range = rangeHeader(input.range);
    if (range === null) throw new InvalidRangeError((await this.headObject(input.bucket, input.key)).size);
    // A read without conditions (the usual one) skips the asynchronous step that only conditions need.
    const sendable = input.conditions === undefined ? NO_CONDITIONS : await sendableConditions(input.conditions, () => this.headObject(input.bucket, input.key), 'read');
    let out;
    try {
      // The usual read has no conditions: no header object of four undefined values built and spread for it.
      const headers = sendable.conditions === undefined
        ? { range, 'x-amz-checksum-mode': 'ENABLED' }
        : { range, 'x-amz-checksum-mode': 'ENABLED', ...conditionHeaders(sendable.conditions) };
      out = await this.clients.lean.send({ method: 'GET', loc, headers });
    } catch (err) {
      const status = faultStatus(err);
      // Replaced between the HEAD that evaluated the list and the GET: evaluate again against the new version.
      if (status === 412 && sendable.pinned && attempt === 1) return this.getWhole(input, 2);
      if (status === 304) {
        const head = await this.headObject(input.bucket, input.key);
        // MinIO answers 304 for a matching If-None-Match or a false If-Modified-Since even when If-Match fails, where
        // If-Match is evaluated first and fails the request with 412 (RFC 9110 §13.2.2): evaluated again here.
        checkConditions(input.conditions, head, 'read');
        throw new NotModifiedError(head.etag, head.lastModified);
      }
      if (status === 416) throw new InvalidRangeError((await this.headObject(input.bucket, input.key)).size);
      throw await this.missing(err, input.bucket, input.key);
    }
    const fields = objectFieldsOf(out.headers);
    const served = parseContentRange(headerValue(out.headers['content-range']));
    const meta = metaOf(input.key, fields, served?.size ?? fields.ContentLength ?? 0);
    let read: ObjectRead['range'];
    if (served) read = { start: served.start, end: served.end };
    else if (range && meta.size > 0) read = { start: 0, end: meta.size - 1 };
    // A suffix range of an empty object is answered whole (README, "Ranges on an empty object"), so with the whole
    // object's checksum as on the embedded store; MinIO leaves it out of any answer to a ranged request.
    else if (range && meta.checksum === undefined) await this.checksumOfEmpty(input, meta);
    // A whole object's full-object checksum is checked as the body streams, as the SDK did with ChecksumMode; a small
    // body is read whole first (and checked at once), so the gateway answers it in one write (lean-wire.ts smallBody).
    const checksum = !served && out.status === 200 && meta.checksum?.type === 'FULL_OBJECT' ? meta.checksum : undefined;
    const length = Number(headerValue(out.headers['content-length']));
    if (Number.isSafeInteger(length) && length <= SMALL_BODY) return bytesRead({ meta, range: read }, await smallBody(out.body, length, checksum));
    return { meta, range: read, body: checksum ? verifiedBody(out.body, checksum) : out.body };
  }

  /** Sets `meta`'s checksum from a HEAD of the object, when that HEAD still finds the version `meta` describes. */
  private async checksumOfEmpty(input: GetObjectInput, meta: ObjectMeta): Promise<void> {
    const head = await this.headObject(input.bucket, input.key).catch(() => undefined);
    if (head?.etag === meta.etag && head.checksum) meta.checksum = head.checksum;
  }

  /**
   * A partNumber read. The contract's N is the N-th part of the object, while MinIO reads part *number* N (an object
   * completed from parts 1 and 3 has no part 2 there), so the part's bytes are resolved here and read as a range,
   * pinned with If-Match to the version whose part sizes were read.
   */
  private async getPart(input: GetObjectInput, partNumber: number, attempt: number): Promise<ObjectRead> {
    const head = await this.headObject(input.bucket, input.key);
    checkConditions(input.conditions, head);
    if (head.size === 0 && partNumber === 1) return this.getObject({ ...input, partNumber: undefined });
    const span = partRange(head.partSizes ?? [head.size], partNumber);
    if (!span) throw new InvalidPartError(`no part ${partNumber}`);
    try {
      const out = await this.clients.lean.send({
        method: 'GET',
        loc: this.layout.object(input.bucket, input.key),
        headers: { range: `bytes=${span.start}-${span.end}`, 'if-match': `"${head.etag}"` },
      });
      return { meta: head, range: span, body: out.body };
    } catch (err) {
      // Replaced between the HEAD and the GET: S3 would have served one version or the other; serve the new one.
      if (faultStatus(err) === 412 && attempt === 1) return this.getPart(input, partNumber, 2);
      throw await this.missing(err, input.bucket, input.key);
    }
  }

  async headObject(bucket: string, key: string): Promise<ObjectMeta> {
    const loc = this.layout.object(bucket, key);
    try {
      const out = await this.clients.lean.send({ method: 'HEAD', loc, headers: { 'x-amz-checksum-mode': 'ENABLED' } });
      out.body.resume();
      const meta = metaOf(key, objectFieldsOf(out.headers));
      const parts = partsCountOf(meta.etag);
      if (parts > 0) {
        const found = await partSizes(this.clients, loc, parts);
        meta.partSizes = found.sizes;
        if (found.checksums && meta.checksum) meta.partChecksums = found.checksums;
      }
      return meta;
    } catch (err) {
      throw await this.missing(err, bucket, key);
    }
  }

  deleteObject(bucket: string, key: string): Promise<void> {
    return this.present(bucket, async () => {
      await this.clients.retrying.send(new DeleteObjectCommand(this.layout.object(bucket, key))).catch(async (err: unknown) => {
        throw await this.missing(err, bucket, key);
      });
    });
  }

  deleteObjects(bucket: string, keys: string[]): Promise<Array<{ key: string; error?: Error }>> {
    return this.present(bucket, () => this.deleteBatches(bucket, keys));
  }

  /** DeleteObjects upstream, a thousand keys per call, each key with its own answer. */
  private async deleteBatches(bucket: string, keys: string[]): Promise<Array<{ key: string; error?: Error }>> {
    const failed = new Map<string, Error>();
    const base = this.layout.prefixOf(bucket);
    // Keys the upstream would read as other names fail alone, as layout.object refuses them everywhere else.
    for (const key of keys) {
      const error = unfaithfulKeyError(key);
      if (error !== undefined) failed.set(key, error);
    }
    const sendable = keys.filter((key) => !failed.has(key));
    for (let i = 0; i < sendable.length; i += DELETE_BATCH) {
      const batch = sendable.slice(i, i + DELETE_BATCH);
      try {
        const out = await this.clients.retrying.send(
          new DeleteObjectsCommand({
            Bucket: this.layout.bucketOf(bucket),
            Delete: { Objects: batch.map((k) => ({ Key: base + k })), Quiet: true },
          }),
        );
        for (const e of out.Errors ?? []) failed.set((e.Key ?? '').slice(base.length), translate({ Code: e.Code, message: e.Message }));
      } catch (err) {
        const refused = await this.missing(err, bucket, '');
        if (!(refused instanceof UpstreamRefusalError)) throw refused;
        // The upstream refused the batch as a whole (no DeleteObjects, a limit of its own): key by key instead, so
        // each key gets its own answer and one bad key does not fail the rest.
        for (const key of batch) {
          await this.deleteObject(bucket, key).catch((e: unknown) => failed.set(key, e instanceof Error ? e : translate(e)));
        }
      }
    }
    return keys.map((key) => (failed.has(key) ? { key, error: failed.get(key) } : { key }));
  }

  async copyObject(original: CopyObjectInput): Promise<ObjectMeta> {
    original = { ...original, beforeCommit: callerCheck(original.beforeCommit) };
    const { dest } = original;
    const started = await this.writable(dest.bucket);
    const { bucket, key } = original.source;
    const sourceConditions = (await sendableConditions(original.source.conditions, () => this.headObject(bucket, key), 'copy')).conditions;
    const input = {
      ...original,
      source: { ...original.source, conditions: sourceConditions },
      writeConditions: await this.sendableWrite(original.writeConditions, dest.bucket, dest.key),
    };
    const { source } = input;
    await input.beforeCommit?.();
    let etag: string;
    if (input.writeConditions) {
      etag = await conditionalCopy(this.clients, this.layout, input).catch(async (err: unknown) => {
        if (err instanceof NoSuchKeyError && input.writeConditions?.ifMatch === undefined) throw await this.missing(err, source.bucket, source.key);
        throw await this.conditionFailure(err, input.writeConditions, dest.bucket, dest.key);
      });
    } else {
      etag = await this.plainCopy(input);
    }
    await this.buckets.confirmObject(dest.bucket, started, { key: dest.key, etag });
    return this.headObject(dest.bucket, dest.key);
  }

  /** A CopyObject without destination conditions, server-side upstream; the new object's ETag. */
  private async plainCopy(input: CopyObjectInput): Promise<string> {
    const { source, dest } = input;
    try {
      const out = await this.clients.retrying.send(
        new CopyObjectCommand({
          ...this.layout.object(dest.bucket, dest.key),
          CopySource: this.layout.copySource(source.bucket, source.key),
          MetadataDirective: input.replaceMeta ? 'REPLACE' : 'COPY',
          ...(input.replaceMeta ? writeFields(input.replaceMeta) : {}),
          TaggingDirective: input.replaceTags ? 'REPLACE' : 'COPY',
          Tagging: input.replaceTags ? (taggingHeader(input.replaceTags) ?? '') : undefined,
          ...copyConditionFields(source.conditions),
        }),
      );
      return normalizeEtag(out.CopyObjectResult?.ETag ?? '');
    } catch (err) {
      throw await this.missing(err, source.bucket, source.key);
    }
  }

  listObjects(input: ListObjectsInput): Promise<ListObjectsResult> {
    return this.present(input.bucket, () => listObjects(this.clients, this.layout, input));
  }

  async getObjectTagging(bucket: string, key: string): Promise<Record<string, string>> {
    try {
      const out = await this.clients.retrying.send(new GetObjectTaggingCommand(this.layout.object(bucket, key)));
      return tagRecord(out.TagSet);
    } catch (err) {
      throw await this.missing(err, bucket, key);
    }
  }

  async putObjectTagging(bucket: string, key: string, tags: Record<string, string>): Promise<void> {
    const TagSet = Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
    await this.clients.retrying.send(new PutObjectTaggingCommand({ ...this.layout.object(bucket, key), Tagging: { TagSet } })).catch(async (err: unknown) => {
      throw await this.missing(err, bucket, key);
    });
  }

  async deleteObjectTagging(bucket: string, key: string): Promise<void> {
    await this.clients.retrying.send(new DeleteObjectTaggingCommand(this.layout.object(bucket, key))).catch(async (err: unknown) => {
      throw await this.missing(err, bucket, key);
    });
  }

  async getBucketTagging(bucket: string): Promise<Record<string, string>> {
    const doc = await this.config.get(bucket, 'tagging.json');
    return doc ? (JSON.parse(doc) as Record<string, string>) : {};
  }

  putBucketTagging(bucket: string, tags: Record<string, string>): Promise<void> {
    return this.config.set(bucket, 'tagging.json', Object.keys(tags).length > 0 ? JSON.stringify(tags) : undefined);
  }

  getBucketCors(bucket: string): Promise<string | undefined> {
    return this.config.get(bucket, 'cors.xml');
  }

  putBucketCors(bucket: string, document: string | undefined): Promise<void> {
    return this.config.set(bucket, 'cors.xml', document);
  }

  createMultipartUpload(input: CreateUploadInput): Promise<UploadInfo> {
    return this.multipart.create({ ...input, beforeCommit: callerCheck(input.beforeCommit) });
  }
  uploadPart(input: UploadPartInput): Promise<PartInfo> {
    return this.multipart.uploadPart({ ...input, beforeCommit: callerCheck(input.beforeCommit) });
  }
  uploadPartCopy(input: UploadPartCopyInput): Promise<PartInfo> {
    return this.multipart.uploadPartCopy({ ...input, beforeCommit: callerCheck(input.beforeCommit) });
  }
  async completeMultipartUpload(original: CompleteUploadInput): Promise<ObjectMeta> {
    original = { ...original, beforeCommit: callerCheck(original.beforeCommit) };
    const started = await this.writable(original.bucket);
    const input = { ...original, writeConditions: await this.sendableWrite(original.writeConditions, original.bucket, original.key) };
    await input.beforeCommit?.();
    const etag = await this.multipart.complete(input).catch(async (err: unknown) => {
      throw await this.conditionFailure(err, input.writeConditions, input.bucket, input.key);
    });
    await this.buckets.confirmObject(input.bucket, started, { key: input.key, etag });
    return this.headObject(input.bucket, input.key);
  }
  abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    return this.multipart.abort(bucket, key, uploadId);
  }
  listParts(input: { bucket: string; key: string; uploadId: string; partNumberMarker?: number; limit: number }): Promise<ListPartsResult> {
    return this.multipart.listParts(input);
  }
  listMultipartUploads(input: ListUploadsInput): Promise<ListUploadsResult> {
    return this.present(input.bucket, () => listUploads(this.clients, this.layout, input));
  }

  async close(): Promise<void> {
    this.reachability.close();
    this.clients.retrying.destroy();
    this.clients.streaming.destroy();
    this.clients.probe.destroy();
    this.clients.lean.close();
  }
}

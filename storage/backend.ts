/**
 * The one storage contract. The embedded store and the upstream S3 backend both implement it, and one conformance
 * suite (test/storage/conformance.ts) runs against each. Storage knows nothing of HTTP, SigV4 or policy: keys here
 * are plain UTF-8 strings exactly as S3 sees them, and errors are the neutral classes of ./errors.ts.
 */
import type { Readable } from 'node:stream';

/** A bucket as storage knows it: a name and when it was created. Ownership lives in policy/. */
export interface BucketInfo {
  name: string;
  createdAt: Date;
}

/** The standard headers S3 stores with an object and returns on GET/HEAD. */
export interface ObjectHeaders {
  contentType?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  cacheControl?: string;
  expires?: string;
}

/** Checksum algorithms S3 accepts in x-amz-checksum-* headers and trailers. */
export type ChecksumAlgorithm = 'CRC32' | 'CRC32C' | 'CRC64NVME' | 'SHA1' | 'SHA256';

/** A checksum stored with an object: base64 of the digest, as S3 returns it. */
export interface StoredChecksum {
  algorithm: ChecksumAlgorithm;
  value: string;
}

/** What the client sets on an object when writing it. */
export interface ObjectWriteMeta {
  headers: ObjectHeaders;
  /** x-amz-meta-* without the prefix, names lower-cased. */
  userMetadata: Record<string, string>;
  checksum?: StoredChecksum;
}

/** Everything storage knows about a committed object. */
export interface ObjectMeta extends ObjectWriteMeta {
  key: string;
  size: number;
  /** Hex MD5 for single-part objects, `<hex>-<N>` for multipart ones; never quoted. */
  etag: string;
  lastModified: Date;
  /** Sizes of the parts in order, for objects completed by multipart upload (partNumber reads). */
  partSizes?: number[];
}

/** A byte range as the client asked for it; resolved against the object's size by storage. */
export type RangeRequest =
  | { kind: 'bounded'; start: number; end: number }
  | { kind: 'open'; start: number }
  | { kind: 'suffix'; length: number };

/** Conditional request headers (If-Match & co, or their x-amz-copy-source-if-* forms). */
export interface Conditions {
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: Date;
  ifUnmodifiedSince?: Date;
}

/** A streamed write: the body is consumed once; a body stream that errors aborts the write and stores nothing. */
export interface BodyInput {
  body: Readable;
  /** Expected body length when the client declared one; a shorter or longer body is IncompleteBodyError. */
  size?: number;
  /** Content-MD5 as the raw 16-byte digest; a mismatch is BadDigestError and nothing is stored. */
  contentMd5?: Buffer;
  /**
   * The checksum the gateway verified (x-amz-checksum-* header or trailer), known only once the body has ended;
   * storage calls it after the body is consumed and keeps the value with the object.
   */
  finalChecksum?: () => StoredChecksum | undefined;
}

export interface PutObjectInput extends BodyInput {
  bucket: string;
  key: string;
  meta: ObjectWriteMeta;
  tags?: Record<string, string>;
}

export interface GetObjectInput {
  bucket: string;
  key: string;
  range?: RangeRequest;
  partNumber?: number;
  conditions?: Conditions;
}

/** An open object: its metadata, the resolved byte range served, and the body stream for exactly that range. */
export interface ObjectRead {
  meta: ObjectMeta;
  /** Inclusive byte range of the body, when a range or partNumber was asked for. */
  range?: { start: number; end: number };
  body: Readable;
}

export interface CopyObjectInput {
  source: { bucket: string; key: string; conditions?: Conditions };
  dest: { bucket: string; key: string };
  /** Metadata to set on the copy (REPLACE); absent means copy the source's metadata (COPY). */
  replaceMeta?: ObjectWriteMeta;
  /** Tags to set on the copy; absent means copy the source's tags. */
  replaceTags?: Record<string, string>;
}

/** One entry of a listing: an object, or a common prefix rolled up at the delimiter. */
export type ListEntry =
  | { kind: 'object'; key: string; size: number; etag: string; lastModified: Date }
  | { kind: 'prefix'; prefix: string };

/**
 * A listing page. Entries come in UTF-8 byte order of their name (key or prefix), each strictly greater than
 * startAfter; a common prefix P that is <= startAfter is never emitted, so resuming from a prefix skips it whole.
 * `limit` counts objects and prefixes together, as S3's max-keys does.
 */
export interface ListObjectsInput {
  bucket: string;
  prefix?: string;
  delimiter?: string;
  startAfter?: string;
  limit: number;
}

export interface ListObjectsResult {
  entries: ListEntry[];
  /** True when more entries follow the last one returned. */
  isTruncated: boolean;
}

export interface UploadInfo {
  key: string;
  uploadId: string;
  initiated: Date;
}

export type UploadListEntry = ({ kind: 'upload' } & UploadInfo) | { kind: 'prefix'; prefix: string };

/** Upload listing, ordered by key then uploadId; the same prefix/delimiter rules as ListObjectsInput. */
export interface ListUploadsInput {
  bucket: string;
  prefix?: string;
  delimiter?: string;
  keyMarker?: string;
  uploadIdMarker?: string;
  limit: number;
}

export interface ListUploadsResult {
  entries: UploadListEntry[];
  isTruncated: boolean;
}

export interface PartInfo {
  partNumber: number;
  etag: string;
  size: number;
  lastModified: Date;
  checksum?: StoredChecksum;
}

export interface ListPartsResult {
  upload: UploadInfo & { meta: ObjectWriteMeta };
  parts: PartInfo[];
  isTruncated: boolean;
}

export interface CreateUploadInput {
  bucket: string;
  key: string;
  meta: ObjectWriteMeta;
  tags?: Record<string, string>;
}

export interface UploadPartInput extends BodyInput {
  bucket: string;
  key: string;
  uploadId: string;
  partNumber: number;
  checksum?: StoredChecksum;
}

export interface UploadPartCopyInput {
  bucket: string;
  key: string;
  uploadId: string;
  partNumber: number;
  source: { bucket: string; key: string; range?: { start: number; end: number }; conditions?: Conditions };
}

export interface CompleteUploadInput {
  bucket: string;
  key: string;
  uploadId: string;
  /** Parts as the client listed them; storage checks order, existence, ETags and minimum sizes. */
  parts: Array<{ partNumber: number; etag: string }>;
}

/** Smallest size of every part but the last, as S3 enforces it. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;

/** Whether a backend can serve, as last observed: what readiness and the gateway's fail-fast read, without I/O. */
export interface BackendHealth {
  up: boolean;
  /** When it last went up or down. */
  since: Date;
  /** Why it is down (the last fault seen), for logs and readiness answers. */
  reason?: string;
  /** What clients are told to wait (Retry-After, seconds) while it is down. */
  retryAfterSeconds: number;
}

/** The storage contract every backend implements. */
export interface Backend {
  /** Human-readable name for logs and benchmarks ("embedded", "upstream"). */
  readonly kind: string;

  listBuckets(): Promise<BucketInfo[]>;
  /** Throws BucketAlreadyExistsError when the name is taken. */
  createBucket(name: string): Promise<BucketInfo>;
  /** Throws NoSuchBucketError, or BucketNotEmptyError when objects or uploads remain. */
  deleteBucket(name: string): Promise<void>;
  /** Throws NoSuchBucketError. */
  headBucket(name: string): Promise<BucketInfo>;

  putObject(input: PutObjectInput): Promise<ObjectMeta>;
  /** Throws NoSuchKeyError, InvalidRangeError, PreconditionFailedError or NotModifiedError. */
  getObject(input: GetObjectInput): Promise<ObjectRead>;
  headObject(bucket: string, key: string): Promise<ObjectMeta>;
  /** Deleting a missing key succeeds, as in S3. */
  deleteObject(bucket: string, key: string): Promise<void>;
  /** Deletes each key; the result lists, per key, success or the neutral error that stopped it. */
  deleteObjects(bucket: string, keys: string[]): Promise<Array<{ key: string; error?: Error }>>;
  copyObject(input: CopyObjectInput): Promise<ObjectMeta>;
  listObjects(input: ListObjectsInput): Promise<ListObjectsResult>;

  getObjectTagging(bucket: string, key: string): Promise<Record<string, string>>;
  putObjectTagging(bucket: string, key: string, tags: Record<string, string>): Promise<void>;
  deleteObjectTagging(bucket: string, key: string): Promise<void>;

  createMultipartUpload(input: CreateUploadInput): Promise<UploadInfo>;
  uploadPart(input: UploadPartInput): Promise<PartInfo>;
  uploadPartCopy(input: UploadPartCopyInput): Promise<PartInfo>;
  completeMultipartUpload(input: CompleteUploadInput): Promise<ObjectMeta>;
  abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void>;
  listParts(input: {
    bucket: string;
    key: string;
    uploadId: string;
    partNumberMarker?: number;
    limit: number;
  }): Promise<ListPartsResult>;
  listMultipartUploads(input: ListUploadsInput): Promise<ListUploadsResult>;

  /**
   * Resolves when the backend can serve, throws (ServiceUnavailableError, or the fault) when it cannot: the embedded
   * store's index answers a query; the upstream answers one cheap authenticated call. Updates health().
   */
  ping(signal?: AbortSignal): Promise<void>;
  /** Availability as last observed, without I/O; an upstream that is down fails every call at once while it is. */
  health(): BackendHealth;

  /** Releases files, databases and sockets. */
  close(): Promise<void>;
}

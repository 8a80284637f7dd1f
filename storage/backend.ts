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

/**
 * How an object's checksum covers it: FULL_OBJECT is the checksum of all its bytes; COMPOSITE (multipart only) is the
 * checksum of the parts' concatenated digests, written `<base64>-<N>` (S3 User Guide, "Checking object integrity").
 */
export type ChecksumType = 'FULL_OBJECT' | 'COMPOSITE';

/** A checksum stored with an object: base64 of the digest, as S3 returns it (with `-N` when COMPOSITE). */
export interface StoredChecksum {
  algorithm: ChecksumAlgorithm;
  value: string;
  /** Absent means FULL_OBJECT. */
  type?: ChecksumType;
}

/**
 * Conditions on the object a write would replace: `If-None-Match: *` (only if absent) and `If-Match: "<etag>"` (only
 * if present with that ETag), checked atomically with the commit (S3 API reference, PutObject "Conditional writes").
 * A failed check is PreconditionFailedError (condition `If-None-Match` or `If-Match`), or NoSuchKeyError for If-Match
 * when no object exists; nothing is written.
 */
export interface WriteConditions {
  ifMatch?: string;
  ifNoneMatch?: string;
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
  /** Base64 checksums of the parts in order, in `checksum.algorithm`, when the upload kept them. */
  partChecksums?: string[];
  /** How many tags the object carries (x-amz-tagging-count), when the backend knows it without another call. */
  tagCount?: number;
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

/**
 * The caller's last check of a write that creates data, run once the write is bound to one incarnation of its bucket
 * (one creation of the name: a bucket deleted and created again is another) and before it is acknowledged. The
 * gateway passes one that confirms the bucket still belongs to the tenant it authorized: a bucket deleted and created
 * again for another tenant (or moved to one) between the authorization and the storage call is refused there, the
 * window the incarnation check alone cannot see. Awaited before the write can take effect: the embedded store awaits
 * it before its commit; the upstream backend holds a body's last bytes back until it resolves (for an empty body,
 * and for copies, completions and new uploads, it is awaited before the upstream request), so the upstream never
 * completes a refused write. A rejection abandons the write, stores nothing, and is thrown as it is.
 */
export interface CommitCheck {
  beforeCommit?: () => Promise<void>;
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
  /** The algorithm of the checksum finalChecksum will return, when the client named one. */
  announcedChecksum?: ChecksumAlgorithm;
}

export interface PutObjectInput extends BodyInput, CommitCheck {
  bucket: string;
  key: string;
  meta: ObjectWriteMeta;
  tags?: Record<string, string>;
  writeConditions?: WriteConditions;
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
  /**
   * The same bytes as `body`, when the backend already holds them in memory (small objects): a caller that uses
   * them need not touch `body`, which is then never created.
   */
  bytes?: Buffer;
}

export interface CopyObjectInput extends CommitCheck {
  source: { bucket: string; key: string; conditions?: Conditions };
  dest: { bucket: string; key: string };
  /** Metadata to set on the copy (REPLACE); absent means copy the source's metadata (COPY). */
  replaceMeta?: ObjectWriteMeta;
  /** Tags to set on the copy; absent means copy the source's tags. */
  replaceTags?: Record<string, string>;
  /** Conditions on the destination object the copy would replace. */
  writeConditions?: WriteConditions;
}

/** One entry of a listing: an object, or a common prefix rolled up at the delimiter. */
/** A stored checksum as a listing names it: `ALGORITHM/TYPE` (ListObjectsV2 Object: ChecksumAlgorithm, ChecksumType). */
export type ListedChecksum = `${ChecksumAlgorithm}/${ChecksumType}`;

/**
 * One listing entry. `checksum` is there when the backend knows the stored checksum from its listing alone (the
 * embedded index; MinIO's listing does not carry it, and no per-key request is made for it).
 */
export type ListEntry =
  | { kind: 'object'; key: string; size: number; etag: string; lastModified: Date; checksum?: ListedChecksum }
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
  /** The upload's checksum settings, when CreateMultipartUpload named an algorithm. */
  checksum?: UploadChecksum;
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

/** The checksum a multipart upload keeps (x-amz-checksum-algorithm and x-amz-checksum-type of CreateMultipartUpload). */
export interface UploadChecksum {
  algorithm: ChecksumAlgorithm;
  type: ChecksumType;
}

export interface CreateUploadInput extends CommitCheck {
  bucket: string;
  key: string;
  meta: ObjectWriteMeta;
  tags?: Record<string, string>;
  checksum?: UploadChecksum;
}

export interface UploadPartInput extends BodyInput, CommitCheck {
  bucket: string;
  key: string;
  uploadId: string;
  partNumber: number;
  checksum?: StoredChecksum;
}

export interface UploadPartCopyInput extends CommitCheck {
  bucket: string;
  key: string;
  uploadId: string;
  partNumber: number;
  source: { bucket: string; key: string; range?: { start: number; end: number }; conditions?: Conditions };
}

export interface CompleteUploadInput extends CommitCheck {
  bucket: string;
  key: string;
  uploadId: string;
  /**
   * Parts as the client listed them; storage checks order, existence, ETags, minimum sizes and, where given, that
   * each part's checksum is the one stored for it (InvalidPartError otherwise).
   */
  parts: Array<{ partNumber: number; etag: string; checksum?: string }>;
  writeConditions?: WriteConditions;
  /** The full-object checksum the client sent for the whole upload; a mismatch is BadDigestError. */
  checksum?: StoredChecksum;
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
  /**
   * Throws NoSuchBucketError. `fresh`: the answer must hold a change made through any other process sharing the
   * storage (a backend that remembers buckets for a while asks again); without it a bucket deleted elsewhere a moment
   * ago may still be answered, for checks whose next step finds a missing bucket itself.
   */
  headBucket(name: string, options?: { fresh?: boolean }): Promise<BucketInfo>;

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

  /** Throws NoSuchBucketError; an empty record when the bucket has no tags. */
  getBucketTagging(bucket: string): Promise<Record<string, string>>;
  /** Replaces the bucket's tag set (an empty set removes it). */
  putBucketTagging(bucket: string, tags: Record<string, string>): Promise<void>;
  /** The bucket's CORS configuration as S3's XML document, or undefined when it has none. */
  getBucketCors(bucket: string): Promise<string | undefined>;
  /** Stores (or, with undefined, removes) the bucket's CORS configuration document. */
  putBucketCors(bucket: string, document: string | undefined): Promise<void>;

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

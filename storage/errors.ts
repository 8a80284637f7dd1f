/**
 * Neutral storage errors. Backends throw these (the upstream backend translates SDK exceptions into them); only
 * gateway/ maps them to S3 error codes.
 */

/** Base class of every error a backend throws on purpose. */
export class StorageError extends Error {
  override name = 'StorageError';
}

/** The bucket does not exist. */
export class NoSuchBucketError extends StorageError {
  override name = 'NoSuchBucketError';
}

/** The bucket name is already taken. */
export class BucketAlreadyExistsError extends StorageError {
  override name = 'BucketAlreadyExistsError';
}

/** The bucket still holds objects or uploads. */
export class BucketNotEmptyError extends StorageError {
  override name = 'BucketNotEmptyError';
}

/** The key does not exist. */
export class NoSuchKeyError extends StorageError {
  override name = 'NoSuchKeyError';
}

/** The multipart upload does not exist (never did, completed or aborted). */
export class NoSuchUploadError extends StorageError {
  override name = 'NoSuchUploadError';
}

/** A part named in CompleteMultipartUpload is missing or its ETag does not match. */
export class InvalidPartError extends StorageError {
  override name = 'InvalidPartError';
}

/** Parts in CompleteMultipartUpload are not in ascending order. */
export class InvalidPartOrderError extends StorageError {
  override name = 'InvalidPartOrderError';
}

/** A part other than the last is smaller than MIN_PART_SIZE. */
export class EntityTooSmallError extends StorageError {
  override name = 'EntityTooSmallError';
}

/** The requested range cannot be satisfied; carries the object size for Content-Range. */
export class InvalidRangeError extends StorageError {
  override name = 'InvalidRangeError';
  constructor(readonly size: number) {
    super('The requested range is not satisfiable');
  }
}

/** An If-Match / If-Unmodified-Since (or copy-source form, or a write condition) failed; `condition` names it. */
export class PreconditionFailedError extends StorageError {
  override name = 'PreconditionFailedError';
  constructor(message: string, readonly condition = 'If-Match') {
    super(message);
  }
}

/** A conditional write met a concurrent write to the same key upstream; the client should retry (S3 answers 409). */
export class ConditionalRequestConflictError extends StorageError {
  override name = 'ConditionalRequestConflictError';
}

/** An If-None-Match / If-Modified-Since condition says the client's copy is current (GET/HEAD only). */
export class NotModifiedError extends StorageError {
  override name = 'NotModifiedError';
  constructor(readonly etag: string, readonly lastModified: Date) {
    super('Not Modified');
  }
}

/** The body's MD5 does not match Content-MD5. */
export class BadDigestError extends StorageError {
  override name = 'BadDigestError';
}

/** The body ended before (or ran past) its declared length. */
export class IncompleteBodyError extends StorageError {
  override name = 'IncompleteBodyError';
}

/** A request storage cannot honour as asked (for example a bad part number or range on a copy). */
export class InvalidRequestError extends StorageError {
  override name = 'InvalidRequestError';
}

/**
 * CompleteMultipartUpload of a composite-checksum upload that leaves out a part's checksum: S3 answers
 * InvalidRequest with this message, whichever backend holds the upload.
 */
export function missingPartChecksumError(algorithm: string, partNumber: number): InvalidRequestError {
  return new InvalidRequestError(
    `The upload was created using a ${algorithm.toLowerCase()} checksum. The complete request must include the checksum for each part. It was missing for part ${partNumber} in the request.`,
  );
}

/** The backing service is unreachable or failing; the client should retry after `retryAfterSeconds`. */
export class ServiceUnavailableError extends StorageError {
  override name = 'ServiceUnavailableError';
  constructor(message: string, readonly retryAfterSeconds = 1) {
    super(message);
  }
}

/** The backing service is throttling; the client should slow down. */
export class SlowDownError extends StorageError {
  override name = 'SlowDownError';
  constructor(message: string, readonly retryAfterSeconds = 1) {
    super(message);
  }
}

/**
 * The backing service refused a request with a client error (4xx) that none of the classes above names. Its S3 error
 * `code` and HTTP `status` are kept so the gateway answers the client with the same refusal, never a 500.
 */
export class UpstreamRefusalError extends StorageError {
  override name = 'UpstreamRefusalError';
  constructor(
    message: string,
    readonly code: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** The volume holding the data is full (or nearly: the metadata reserve is in use); data writes are refused. */
export class StorageFullError extends StorageError {
  override name = 'StorageFullError';
}

/** Errors that mean "no space left": the system call's and SQLite's. */
const NO_SPACE_CODES = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL']);

/** True when `err` says the volume (or the quota) is full: StorageFullError, or a file system or SQLite error. */
export function isNoSpace(err: unknown): boolean {
  return err instanceof StorageFullError || NO_SPACE_CODES.has((err as { code?: string } | null)?.code ?? '');
}

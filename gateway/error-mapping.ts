/**
 * Which S3 error a neutral storage error, an upstream refusal or an unavailable policy database is, for the response
 * writer (middleware/respond.ts) and for operations that answer per key (DeleteObjects).
 */
import { isPolicyUnavailable } from '../policy/index.ts';
import * as storage from '../storage/errors.ts';
import { S3_ERRORS, S3Error, type S3ErrorCode } from './errors.ts';
import { httpDate } from './s3-headers.ts';

/** Maps a neutral storage error to the S3 error a client expects. */
export function toS3Error(err: unknown): S3Error | undefined {
  if (err instanceof S3Error) return err;
  if (err instanceof storage.NoSuchBucketError) return new S3Error('NoSuchBucket');
  if (err instanceof storage.NoSuchKeyError) return new S3Error('NoSuchKey');
  if (err instanceof storage.BucketAlreadyExistsError) return new S3Error('BucketAlreadyExists');
  if (err instanceof storage.BucketNotEmptyError) return new S3Error('BucketNotEmpty');
  if (err instanceof storage.NoSuchUploadError) return new S3Error('NoSuchUpload');
  if (err instanceof storage.InvalidPartError) return new S3Error('InvalidPart');
  if (err instanceof storage.InvalidPartOrderError) return new S3Error('InvalidPartOrder');
  if (err instanceof storage.EntityTooSmallError) return new S3Error('EntityTooSmall');
  if (err instanceof storage.InvalidRangeError) {
    return new S3Error('InvalidRange', undefined, { headers: { 'content-range': `bytes */${err.size}` }, fields: { ActualObjectSize: String(err.size) } });
  }
  if (err instanceof storage.PreconditionFailedError) return new S3Error('PreconditionFailed', undefined, { fields: { Condition: err.condition } });
  if (err instanceof storage.ConditionalRequestConflictError) return new S3Error('ConditionalRequestConflict');
  if (err instanceof storage.NotModifiedError) {
    return new S3Error('NotModified', undefined, { headers: { etag: `"${err.etag}"`, 'last-modified': httpDate(err.lastModified) } });
  }
  if (err instanceof storage.BadDigestError) return new S3Error('BadDigest');
  if (err instanceof storage.IncompleteBodyError) return new S3Error('IncompleteBody');
  if (err instanceof storage.InvalidRequestError) return new S3Error('InvalidRequest', err.message);
  if (err instanceof storage.ServiceUnavailableError) {
    return new S3Error('ServiceUnavailable', undefined, { headers: { 'retry-after': String(err.retryAfterSeconds) } });
  }
  if (err instanceof storage.SlowDownError) {
    return new S3Error('SlowDown', undefined, { headers: { 'retry-after': String(err.retryAfterSeconds) } });
  }
  if (err instanceof storage.UpstreamRefusalError) return upstreamRefusal(err);
  // Policy and relationship stores write to the same volume; their "disk full" is the client's 507 too, never a 500.
  if (storage.isNoSpace(err)) return new S3Error('XMinioStorageFull');
  // The policy database (PostgreSQL) is away: nothing was decided, and a retry may find it back.
  if (isPolicyUnavailable(err)) return new S3Error('ServiceUnavailable', undefined, { headers: { 'retry-after': '1' } });
  return undefined;
}

/** S3 codes standing in for an upstream refusal whose own code the gateway does not know, by HTTP status. */
const REFUSAL_BY_STATUS: Record<number, S3ErrorCode> = { 403: 'AccessDenied', 405: 'MethodNotAllowed', 409: 'OperationAborted', 411: 'MissingContentLength', 416: 'InvalidRange' };

/** The upstream's own refusal: its code when S3 defines it, else the closest code for its status (400 InvalidRequest). */
function upstreamRefusal(err: storage.UpstreamRefusalError): S3Error {
  if (Object.hasOwn(S3_ERRORS, err.code)) return new S3Error(err.code as S3ErrorCode);
  return new S3Error(REFUSAL_BY_STATUS[err.status] ?? 'InvalidRequest', `The storage behind the gateway refused the request: ${err.code || err.status}.`);
}

/**
 * Upstream faults → neutral storage errors. Every SDK call goes through translate(), so no SDK exception ever
 * leaves storage/upstream: codes S3 documents map to their neutral class, a full upstream (MinIO's 507
 * XMinioStorageFull) becomes StorageFullError, network trouble and other 5xx answers become ServiceUnavailableError,
 * throttling becomes SlowDownError, other client errors (4xx, or a per-key error of a batch) UpstreamRefusalError
 * with the upstream's code, and anything else a plain StorageError (InternalError).
 */
import {
  BadDigestError,
  ConditionalRequestConflictError,
  BucketAlreadyExistsError,
  BucketNotEmptyError,
  EntityTooSmallError,
  IncompleteBodyError,
  InvalidPartError,
  InvalidPartOrderError,
  InvalidRequestError,
  NoSuchBucketError,
  NoSuchKeyError,
  NoSuchUploadError,
  PreconditionFailedError,
  ServiceUnavailableError,
  SlowDownError,
  StorageError,
  StorageFullError,
  UpstreamRefusalError,
} from '../errors.ts';

/** Seconds a client is told to wait when the upstream is unreachable or failing. */
export const RETRY_AFTER_SECONDS = 2;

/** What an SDK exception or a Node network error looks like from here. */
interface UpstreamFault {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

const BY_CODE: Record<string, (message: string) => StorageError> = {
  NoSuchKey: (m) => new NoSuchKeyError(m),
  NoSuchBucket: (m) => new NoSuchBucketError(m),
  NoSuchUpload: (m) => new NoSuchUploadError(m),
  InvalidPart: (m) => new InvalidPartError(m),
  InvalidPartOrder: (m) => new InvalidPartOrderError(m),
  EntityTooSmall: (m) => new EntityTooSmallError(m),
  PreconditionFailed: (m) => new PreconditionFailedError(m),
  ConditionalRequestConflict: (m) => new ConditionalRequestConflictError(m),
  BucketNotEmpty: (m) => new BucketNotEmptyError(m),
  BucketAlreadyExists: (m) => new BucketAlreadyExistsError(m),
  BucketAlreadyOwnedByYou: (m) => new BucketAlreadyExistsError(m),
  BadDigest: (m) => new BadDigestError(m),
  InvalidDigest: (m) => new BadDigestError(m),
  XAmzContentChecksumMismatch: (m) => new BadDigestError(m),
  IncompleteBody: (m) => new IncompleteBodyError(m),
  InvalidRequest: (m) => new InvalidRequestError(m),
  InvalidArgument: (m) => new InvalidRequestError(m),
  XMinioStorageFull: (m) => new StorageFullError(m),
  // MinIO refuses names it reads as bad paths (`..`, `.`, `//`, `\`): the client's input, so 400, never 500.
  XMinioInvalidResourceName: (m) => new InvalidRequestError(m),
  XMinioInvalidObjectName: (m) => new InvalidRequestError(m),
};

const THROTTLING = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequests', 'RequestThrottled']);

/** Refusals of the gateway's own signature or upstream credentials. */
const UPSTREAM_AUTH = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'RequestTimeTooSkewed',
  'ExpiredToken',
  'InvalidToken',
  'AuthorizationHeaderMalformed',
  'AuthorizationQueryParametersError',
]);

/** Node and SDK signs that the upstream could not be reached or stopped answering. */
const NETWORK = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
]);

/** The S3 error code of an SDK exception (`name`), or a Node error's `code`. */
export function faultCode(err: unknown): string | undefined {
  const e = err as UpstreamFault;
  return e?.Code ?? (e?.$metadata ? e.name : (e?.code ?? e?.name));
}

/** The HTTP status the upstream answered with, when it answered. */
export function faultStatus(err: unknown): number | undefined {
  return (err as UpstreamFault)?.$metadata?.httpStatusCode;
}

/** Rejections of a caller's beforeCommit (storage/backend.ts CommitCheck), which are thrown as they are. */
const callerRefusals = new WeakSet<object>();

/** The caller's beforeCommit, its rejections marked so that no translation here touches them; undefined stays so. */
export function callerCheck(check: (() => Promise<void>) | undefined): (() => Promise<void>) | undefined {
  if (check === undefined) return undefined;
  return () =>
    check().catch((err: unknown) => {
      if (typeof err === 'object' && err !== null) callerRefusals.add(err);
      throw err;
    });
}

/** Whether `err` is a caller's beforeCommit rejection (callerCheck). */
export function isCallerRefusal(err: unknown): boolean {
  return typeof err === 'object' && err !== null && callerRefusals.has(err);
}

/**
 * Turns anything an SDK call threw into a neutral storage error; neutral errors and a caller's beforeCommit
 * rejections pass through unchanged.
 */
export function translate(err: unknown): Error {
  if (err instanceof StorageError || isCallerRefusal(err)) return err as Error;
  const code = faultCode(err) ?? '';
  const status = faultStatus(err);
  const message = `upstream: ${code || 'error'}${(err as UpstreamFault)?.message ? ` (${(err as UpstreamFault).message})` : ''}`;
  if (THROTTLING.has(code) || status === 429) return new SlowDownError(message, RETRY_AFTER_SECONDS);
  const known = BY_CODE[code];
  if (known) return known(message);
  if (status === 412) return new PreconditionFailedError(message);
  // 507 Insufficient Storage: the upstream's volume is full. Never ServiceUnavailable, which clients retry. MinIO
  // answers a write that races its own free-space check with 500 InternalError whose message names the cause
  // ("... cause(no space left on device)"): the same full volume, so the same answer.
  if (status === 507 || (status !== undefined && status >= 500 && /no space left on device/i.test(message))) {
    return new StorageFullError(message);
  }
  if (NETWORK.has(code) || (status !== undefined && status >= 500) || isNetworkError(err)) {
    return new ServiceUnavailableError(message, RETRY_AFTER_SECONDS);
  }
  // The gateway's own upstream credentials failing is the operator's fault, not the client's: InternalError, logged.
  if (UPSTREAM_AUTH.has(code)) return new StorageError(message);
  // Any other client error keeps its code and status: a 4xx stays the same 4xx, never an InternalError.
  if (status !== undefined && status >= 400 && status < 500) return new UpstreamRefusalError(message, code, status);
  // A per-key <Error> of a batch answer (DeleteObjects) has a Code and no status of its own.
  if (status === undefined && (err as UpstreamFault)?.Code) return new UpstreamRefusalError(message, code, 400);
  return new StorageError(message);
}

/** True when the upstream could not be reached at all (no HTTP answer): what marks it down (see health.ts). */
export function isUnreachable(err: unknown): boolean {
  if (err instanceof ServiceUnavailableError) return true;
  if (err instanceof StorageError || faultStatus(err) !== undefined) return false;
  return NETWORK.has(faultCode(err) ?? '') || isNetworkError(err);
}

/** Errors thrown before any HTTP status existed: refused or reset sockets, DNS failures, aborted streams. */
function isNetworkError(err: unknown): boolean {
  const e = err as UpstreamFault & { cause?: UpstreamFault; errno?: number };
  if (e?.$metadata?.httpStatusCode !== undefined) return false;
  if (typeof e?.errno === 'number' || (e?.cause && NETWORK.has(e.cause.code ?? ''))) return true;
  return /socket hang up|ECONNREFUSED|ECONNRESET|connect/i.test(e?.message ?? '');
}

/** True when a request used up its whole timeout (ANVIL_UPSTREAM_TIMEOUT_MS): the SDK's and lean.ts's TimeoutError. */
export function timedOut(err: unknown): boolean {
  const e = err as { name?: string; code?: string } | undefined;
  return e?.name === 'TimeoutError' || e?.code === 'ETIMEDOUT';
}

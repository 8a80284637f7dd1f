/**
 * The admin API's error vocabulary: a code, an HTTP status and a message the caller may read, rendered as JSON
 * `{ "error": { code, message, requestId } }`. Policy and S3 errors are mapped here, and nowhere else.
 */
import { ConflictError, InvalidInputError, isPolicyUnavailable, NotFoundError } from '../../policy/index.ts';
import { isNoSpace } from '../../storage/errors.ts';
import { S3Error } from '../errors.ts';

/** HTTP status of each admin error code. */
export const ADMIN_ERRORS = {
  InvalidInput: 400,
  AccessDenied: 403,
  NotFound: 404,
  MethodNotAllowed: 405,
  Conflict: 409,
  PayloadTooLarge: 413,
  InternalError: 500,
  PolicyUnavailable: 503,
  StorageFull: 507,
} as const;

/** One admin error code. */
export type AdminErrorCode = keyof typeof ADMIN_ERRORS;

/** An error the admin caller is meant to see. */
export class AdminError extends Error {
  override name = 'AdminError';
  readonly status: number;

  constructor(readonly code: AdminErrorCode | string, message: string, status?: number) {
    super(message);
    this.status = status ?? ADMIN_ERRORS[code as AdminErrorCode] ?? 500;
  }
}

/** Shorthand for a 400 with a message saying what is wrong with the input. */
export function invalidInput(message: string): AdminError {
  return new AdminError('InvalidInput', message);
}

/** Maps anything thrown to an AdminError, or undefined for unexpected errors (which must expose nothing). */
export function toAdminError(err: unknown): AdminError | undefined {
  if (err instanceof AdminError) return err;
  if (err instanceof NotFoundError) return new AdminError('NotFound', err.message);
  if (err instanceof ConflictError) return new AdminError('Conflict', err.message);
  if (err instanceof InvalidInputError) return new AdminError('InvalidInput', err.message);
  // Failures before the admin middleware (signature, credential) keep S3's code and status.
  if (err instanceof S3Error) return new AdminError(err.code, err.message, err.status);
  // Only when even the metadata reserve is spent (storage/space-reserve.ts); retrying later, after freeing space, works.
  if (isNoSpace(err)) return new AdminError('StorageFull', 'the data volume is full: free space (delete objects) and retry');
  if (isPolicyUnavailable(err)) return new AdminError('PolicyUnavailable', 'the policy database cannot be reached: retry shortly');
  return undefined;
}

/** The JSON error document. */
export function adminErrorBody(err: AdminError, requestId: string): string {
  return JSON.stringify({ error: { code: err.code, message: err.message, requestId } });
}

/**
 * Neutral policy errors. policy/ throws these; only gateway/ maps them to S3 or admin-API responses.
 */

import type { DenialLayer } from './types.ts';

/** Base class of every error policy/ throws on purpose. */
export class PolicyError extends Error {
  override name = 'PolicyError';
}

/** The named tenant or credential does not exist. */
export class NotFoundError extends PolicyError {
  override name = 'NotFoundError';
}

/** The change conflicts with existing state (name taken, bucket owned elsewhere, tenant still owns buckets). */
export class ConflictError extends PolicyError {
  override name = 'ConflictError';
}

/** An argument is malformed (bad name, unknown family, invalid grant, bad master key). */
export class InvalidInputError extends PolicyError {
  override name = 'InvalidInputError';
}

/** The master key cannot decrypt the secrets already stored in the data directory. */
export class MasterKeyMismatchError extends PolicyError {
  override name = 'MasterKeyMismatchError';
}

/** The master key file exists but holds no key (empty or truncated); the message names the file and the recovery. */
export class MasterKeyFileError extends PolicyError {
  override name = 'MasterKeyFileError';
}

/** An authorization question was answered no; carries the layer that refused and why. */
export class DeniedError extends PolicyError {
  override name = 'DeniedError';
  constructor(readonly layer: DenialLayer, readonly reason: string) {
    super(reason);
  }
}

/**
 * Network errors and PostgreSQL's connection, shutdown and resource classes (SQLSTATE 08, 57P, 53), and 57014
 * query_canceled: a statement that outlived statement_timeout (waiting on a lock a stalled node holds, say).
 */
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

/**
 * Whether an error means the policy database could not be reached or served the request now (PostgreSQL down,
 * restarting, out of connections, or not answering within the node's timeout: node-postgres's connection, pool and
 * query timeouts), as opposed to a fault of the request: the gateway answers 503 and the client
 * retries, and nothing was decided on stale policy.
 */
export function isPolicyUnavailable(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (UNAVAILABLE_CODES.has(code) || /^(08|57P|53)/.test(code) || code === '57014') return true;
  return typeof e?.message === 'string' && /^Connection terminated|^timeout exceeded when trying to connect|^Query read timeout$|Client has encountered a connection error/.test(e.message);
}

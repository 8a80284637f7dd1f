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

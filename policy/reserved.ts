/**
 * The reserved namespace: keys under `_anvil/` hold the gateway's own metadata and no credential, root included, may
 * read, write, delete or list them. Checks run on the already-decoded key; S3 keys are exact strings, so only a key
 * that begins with the prefix is reserved (`/_anvil` and `a/_anvil/x` are ordinary keys).
 */

/** The key prefix no client may touch. */
export const RESERVED_PREFIX = '_anvil/';

/** The bare name a listing without delimiter would roll up into the reserved prefix. */
export const RESERVED_NAME = '_anvil';

/** Whether an object key lies in the reserved namespace. */
export function isReservedKey(key: string): boolean {
  return key === RESERVED_NAME || key.startsWith(RESERVED_PREFIX);
}

/**
 * Whether a listing prefix asks into the reserved namespace (AccessDenied). A prefix of exactly `_anvil` is also
 * reported: it would surface `_anvil/` as a common prefix, which the listing filter hides.
 */
export function listPrefixTouchesReserved(prefix: string): boolean {
  return prefix === RESERVED_NAME || prefix.startsWith(RESERVED_PREFIX);
}

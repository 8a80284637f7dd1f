/**
 * The reserved namespace: keys under `_anvil/` hold the gateway's own metadata and no credential, root included, may
 * read, write, delete or list them. Checks run on the already-decoded key, in two forms: the key as spelled (S3 keys
 * are exact strings) and the key as a path-normalising store would name it (pathForm: MinIO and other S3 servers on
 * a file system drop a leading `/` and empty segments and resolve `.` and `..`), so `/_anvil/x`, `//_anvil/x` and
 * `a/../_anvil/x` are reserved on every backend. `a/_anvil/x` and `_anvilish` are ordinary keys.
 */

/** The key prefix no client may touch. */
export const RESERVED_PREFIX = '_anvil/';

/** The bare name a listing without delimiter would roll up into the reserved prefix. */
export const RESERVED_NAME = '_anvil';

/**
 * A key as a store that reads keys as paths would name it: segments split on `/` (and `\`, a separator on some),
 * empty and `.` segments dropped, `..` taking back the segment before it, joined with `/`.
 */
export function pathForm(key: string): string {
  const out: string[] = [];
  for (const segment of key.split(/[/\\]/)) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') out.pop();
    else out.push(segment);
  }
  return out.join('/');
}

function reservedAsSpelled(key: string): boolean {
  return key === RESERVED_NAME || key.startsWith(RESERVED_PREFIX);
}

/** Whether an object key lies in the reserved namespace, as spelled or in its path form. */
export function isReservedKey(key: string): boolean {
  // Every spelling of a reserved key, in either form, contains the name: the common case costs one scan.
  if (!key.includes(RESERVED_NAME)) return false;
  return reservedAsSpelled(key) || reservedAsSpelled(pathForm(key));
}

/**
 * Whether a listing prefix asks into the reserved namespace (AccessDenied), as spelled or in its path form. A prefix
 * of exactly `_anvil` is also reported: it would surface `_anvil/` as a common prefix, which the listing filter hides.
 */
export function listPrefixTouchesReserved(prefix: string): boolean {
  return isReservedKey(prefix);
}

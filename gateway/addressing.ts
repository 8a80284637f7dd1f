/**
 * Addressing: turns the request target into bucket and key, path-style or virtual-hosted-style. The key is the
 * path decoded exactly once, as S3 does; nothing normalizes dot segments or slashes, so the key seen by policy is
 * the key storage will store.
 */
import { S3Error, type S3ErrorCode } from './errors.ts';

/** Longest key S3 accepts, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

/** Where a request points. */
export interface Target {
  bucket: string;
  key: string;
  /** Path as received, still percent-encoded (what SigV4 signs). */
  rawPath: string;
  rawQuery: string;
  query: URLSearchParams;
  /** True when the bucket came from the Host header (virtual-hosted style), not from the path. */
  virtualHost?: boolean;
}

/** An admin API request, addressed: the path after `/_anvil/admin/v1`, decoded once, and the query. */
export interface AdminTarget {
  path: string;
  query: URLSearchParams;
}

/** Decodes a path once; malformed escapes or bytes that are not UTF-8 are InvalidURI. */
function decodePath(raw: string): string {
  // Nothing escaped, nothing to decode (decodeURIComponent would return it unchanged).
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new S3Error('InvalidURI');
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The error a key deserves, or undefined when S3 would accept it. */
export function keyError(key: string): { code: S3ErrorCode; message: string } | undefined {
  if (key.length === 0) return { code: 'InvalidArgument', message: 'Object key must not be empty' };
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) return { code: 'KeyTooLongError', message: 'Your key is too long' };
  // Lone surrogates cannot be stored as UTF-8; decodeURIComponent already rejects them, XML bodies may not.
  if (LONE_SURROGATE.test(key)) return { code: 'InvalidArgument', message: 'Object key is not valid UTF-8' };
  return undefined;
}

/**
 * The shape of every bucket name S3 has ever allowed (current rules: 3 to 63 lower-case letters, digits, `.` and `-`,
 * starting with a letter or digit; legacy us-east-1 names added upper case and `_`, up to 255 characters). Source:
 * Amazon S3 User Guide, "General purpose bucket naming rules". A name outside it names no bucket anywhere: it is
 * refused here, before it can reach a backend that would read a decoded `/` (`/a%2F_anvil/x`) as a path separator,
 * `..` as the parent, or a space or NUL as bytes no request line may carry.
 */
const BUCKET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{2,254}$/;

/** The first path segment of the gateway's own endpoints (no bucket can be named so: it starts with `_`). */
const GATEWAY_ROOT = '_anvil';

/**
 * True when `name` has the shape of some bucket name S3 has allowed: 3 to 255 of those characters, starting with a
 * letter or digit — never `.` or `..`, which a backend on a file system (MinIO) would resolve as a path segment.
 */
export function plausibleBucketName(name: string): boolean {
  return BUCKET_NAME.test(name);
}

/** Splits the request target (req.url) and Host into bucket, key and query; InvalidBucketName for a name no bucket has. */
export function resolveTarget(url: string, host: string | undefined, domain: string): Target {
  const q = url.indexOf('?');
  const rawPath = q >= 0 ? url.slice(0, q) : url;
  const rawQuery = q >= 0 ? url.slice(q + 1) : '';
  if (!rawPath.startsWith('/')) throw new S3Error('InvalidURI');
  const query = new URLSearchParams(rawQuery);

  let bucket = '';
  let keyPath: string;
  // Without a domain (the default) the Host header names no bucket, and is not looked at.
  const hostname = domain ? (host ?? '').replace(/:\d+$/, '').toLowerCase() : '';
  const virtualHost = Boolean(domain && hostname.endsWith(`.${domain}`));
  if (virtualHost) {
    bucket = hostname.slice(0, -(domain.length + 1));
    keyPath = rawPath.slice(1);
  } else {
    const rest = rawPath.slice(1);
    const slash = rest.indexOf('/');
    bucket = decodePath(slash >= 0 ? rest.slice(0, slash) : rest);
    keyPath = slash >= 0 ? rest.slice(slash + 1) : '';
  }
  // An empty bucket is only the service (`/`): `//key` or a Host of just `.<domain>` names no bucket.
  // `/_anvil/…` is the gateway's own root (admin API, console, health, metrics), routed on this target: kept.
  if (bucket === '' ? virtualHost || rawPath !== '/' : !BUCKET_NAME.test(bucket) && bucket !== GATEWAY_ROOT) throw new S3Error('InvalidBucketName');
  const key = decodePath(keyPath);
  if (key !== '') {
    const bad = keyError(key);
    if (bad) throw new S3Error(bad.code, bad.message);
  }
  return virtualHost ? { bucket, key, rawPath, rawQuery, query, virtualHost } : { bucket, key, rawPath, rawQuery, query };
}

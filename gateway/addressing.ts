/**
 * Addressing: turns the request target into bucket and key, path-style or virtual-hosted-style. The key is the
 * path decoded exactly once, as S3 does; nothing normalizes dot segments or slashes, so the key seen by policy is
 * the key storage will store.
 */
import { plausibleBucketName } from '../storage/bucket-names.ts';
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

/** The first path segment of the gateway's own endpoints (no bucket can be named so: it starts with `_`). */
const GATEWAY_ROOT = '_anvil';

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
  // An empty bucket is only the service (`/`): `//key` or a Host of just `.<domain>` names no bucket. A name without a
  // bucket name's shape is refused before any backend could read a decoded `/` or `..` in it as a path.
  // `/_anvil/…` is the gateway's own root (admin API, console, health, metrics), routed on this target: kept.
  if (bucket === '' ? virtualHost || rawPath !== '/' : !plausibleBucketName(bucket) && bucket !== GATEWAY_ROOT) throw new S3Error('InvalidBucketName');
  const key = decodePath(keyPath);
  if (key !== '') {
    const bad = keyError(key);
    if (bad) throw new S3Error(bad.code, bad.message);
  }
  return virtualHost ? { bucket, key, rawPath, rawQuery, query, virtualHost } : { bucket, key, rawPath, rawQuery, query };
}

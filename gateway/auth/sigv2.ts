/**
 * AWS Signature Version 2 as S3 checks it (S3 Developer Guide, "Signing and authenticating REST requests", the
 * legacy SigV2 page): `Authorization: AWS <AccessKeyId>:<Signature>` or the presigned query form
 * `AWSAccessKeyId=…&Expires=…&Signature=…` (what aws-cli v1's `s3 presign` makes against a custom endpoint).
 * Written by hand, like SigV4, because signature verification is what this product is about. The signature is
 * base64 HMAC-SHA1 over: method, Content-MD5, Content-Type, Date (or Expires), canonical x-amz-* headers and the
 * canonical resource (bucket, raw path, sub-resources). SigV2 signs no payload hash, so bodies count as unsigned.
 */
import { createHmac } from 'node:crypto';
import { S3Error } from '../errors.ts';
import { getHeader, parsePayloadHash, parseQuery, refuseRepeatedHeaders, signaturesEqual, type PayloadMode, type SignedRequest, type VerifiedAuth } from './sigv4.ts';

/** What verifySigV2 needs besides the request. */
export interface SigV2Options {
  lookupSecrets: (accessKeyId: string) => Promise<string[] | undefined>;
  now: Date;
  /** The bucket named by the Host header (virtual-hosted style), which the canonical resource starts with. */
  hostBucket?: string;
  /** Allowed clock difference for header auth; default 15 minutes. */
  maxSkewMs?: number;
}

/** Sub-resources that are part of the canonical resource, in the order S3 sorts them (lexicographic). */
const SUB_RESOURCES = new Set([
  'acl', 'attributes', 'cors', 'delete', 'lifecycle', 'location', 'logging', 'notification', 'partNumber', 'policy',
  'requestPayment', 'response-cache-control', 'response-content-disposition', 'response-content-encoding',
  'response-content-language', 'response-content-type', 'response-expires', 'restore', 'tagging', 'torrent',
  'uploadId', 'uploads', 'versionId', 'versioning', 'versions', 'website',
]);

/**
 * Query parameters the V2 path acts on. Each may be given once: the V2 string to sign covers none of them (Expires
 * only as its value), so a second copy would be one the gateway never verified; refused as SigV4 refuses a repeated
 * X-Amz-* parameter (sigv4.ts verifySigV4), 400 InvalidArgument naming it.
 */
const V2_QUERY = new Set(['AWSAccessKeyId', 'Signature', 'Expires', 'x-amz-security-token']);

const DEFAULT_SKEW_MS = 15 * 60 * 1000;
/** Longest a presigned V2 URL may live, as for SigV4 (S3 itself sets no bound; an unbounded link is a leak). */
const MAX_EXPIRES_S = 604800;

/** True when the request carries SigV2 auth (header or query). */
export function isSigV2(req: Pick<SignedRequest, 'headers' | 'rawQuery'>): boolean {
  const auth = getHeader(req.headers, 'authorization');
  if (auth !== undefined) return /^AWS [^:\s]+:/.test(auth);
  return parseQuery(req.rawQuery).some(([n]) => n === 'AWSAccessKeyId');
}

/** The canonical x-amz-* headers: lower-cased, sorted, values trimmed, repeats joined with ','. */
function canonicalAmzHeaders(headers: Array<[string, string]>): string {
  const byName = new Map<string, string[]>();
  for (const [n, v] of headers) {
    const name = n.toLowerCase();
    if (!name.startsWith('x-amz-')) continue;
    byName.set(name, [...(byName.get(name) ?? []), v.trim().replace(/\s+/g, ' ')]);
  }
  return [...byName.keys()].sort().map((n) => `${n}:${byName.get(n)!.join(',')}\n`).join('');
}

/**
 * A decoded sub-resource value as its UTF-8 bytes, one character per byte, as the rest of the string to sign is (the
 * raw path and Node's header values are one character per byte as on the wire). SigV2 signs the UTF-8 encoding of
 * the string to sign, with response-* override values not URL-encoded (S3 API Reference, "Signing and authenticating
 * REST requests (AWS signature version 2)", RESTAuthentication), and botocore's HmacV1Auth does exactly that: the
 * value unquoted, the whole string encoded as UTF-8. So `é` (sent %C3%A9) is signed as the bytes C3 A9, never E9.
 */
function utf8Bytes(value: string): string {
  return /[^\x00-\x7f]/.test(value) ? Buffer.from(value, 'utf8').toString('latin1') : value;
}

/**
 * The canonical resources a request may have been signed with: `/bucket` when addressed by host, the raw path,
 * then the sorted sub-resources. A path-style bucket request `/bucket` is signed as `/bucket/` by some clients
 * (botocore) and as `/bucket` by others; both name the same bucket, so both are accepted.
 */
function canonicalResources(req: SignedRequest, hostBucket: string | undefined): string[] {
  const subs = parseQuery(req.rawQuery)
    .filter(([n]) => SUB_RESOURCES.has(n))
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([n, v]) => (v === '' ? n : `${n}=${utf8Bytes(v)}`));
  const path = (hostBucket ? `/${hostBucket}` : '') + (req.rawPath || '/');
  const paths = !hostBucket && /^\/[^/]+$/.test(path) ? [path, `${path}/`] : [path];
  return paths.map((p) => (subs.length > 0 ? `${p}?${subs.join('&')}` : p));
}

/** The SigV2 strings to sign (one per accepted canonical resource); `dateLine` is the Date header or Expires. */
export function stringsToSignV2(req: SignedRequest, dateLine: string, hostBucket?: string): string[] {
  const head = [req.method.toUpperCase(), getHeader(req.headers, 'content-md5') ?? '', getHeader(req.headers, 'content-type') ?? '', dateLine].join('\n');
  const amz = canonicalAmzHeaders(req.headers);
  return canonicalResources(req, hostBucket).map((resource) => `${head}\n${amz}${resource}`);
}

/**
 * Base64 HMAC-SHA1 of a string to sign holding one character per byte (stringsToSignV2's, a POST policy); a
 * character above U+00FF, which only a caller's own text can hold, is taken as UTF-8, never truncated to a byte.
 */
export function signV2(secret: string, toSign: string): string {
  return createHmac('sha1', secret).update(Buffer.from(toSign, /[^\x00-\xff]/.test(toSign) ? 'utf8' : 'latin1')).digest('base64');
}

/**
 * How the body travels: SigV2 signs no payload, but a body announced as an aws-chunked trailer stream or with a
 * SHA-256 is still decoded and checked as announced; signed chunks need SigV4's signing key, so they are refused.
 */
function payloadOf(req: SignedRequest): PayloadMode {
  const announced = getHeader(req.headers, 'x-amz-content-sha256');
  const mode = announced === undefined ? undefined : parsePayloadHash(announced);
  if (mode?.mode === 'streaming-signed') throw new S3Error('InvalidRequest', 'Signed aws-chunked payloads require Signature Version 4.');
  return mode ?? { mode: 'unsigned' };
}

/** Verifies SigV2 header or presigned auth; throws S3Error on any failure (never returns undefined for V2 requests). */
export async function verifySigV2(req: SignedRequest, opts: SigV2Options): Promise<VerifiedAuth> {
  const auth = getHeader(req.headers, 'authorization');
  const query = parseQuery(req.rawQuery);
  const q = (name: string) => query.find(([n]) => n === name)?.[1];
  const given = new Set<string>();
  for (const [name] of query) {
    const n = name.toLowerCase() === 'x-amz-security-token' ? 'x-amz-security-token' : name;
    if (!V2_QUERY.has(n)) continue;
    if (given.has(n)) throw new S3Error('InvalidArgument', `The ${name} query parameter must not be given more than once.`, { fields: { ArgumentName: name } });
    given.add(n);
  }
  refuseRepeatedHeaders(req);
  let accessKeyId: string;
  let signature: string;
  let dateLine: string;
  let location: 'header' | 'query';
  if (auth !== undefined) {
    if (q('AWSAccessKeyId') !== undefined || q('Signature') !== undefined || q('X-Amz-Algorithm') !== undefined) {
      throw new S3Error('InvalidArgument', 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified', { fields: { ArgumentName: 'Authorization' } });
    }
    const m = /^AWS ([^:\s]+):(\S+)$/.exec(auth);
    if (!m) throw new S3Error('InvalidArgument', 'Authorization header is invalid -- one and only one \' \' (space) required', { fields: { ArgumentName: 'Authorization' } });
    [, accessKeyId, signature] = m as unknown as [string, string, string];
    const amzDate = getHeader(req.headers, 'x-amz-date');
    const date = getHeader(req.headers, 'date');
    const time = Date.parse(amzDate ?? date ?? '');
    if (Number.isNaN(time)) throw new S3Error('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
    const maxSkew = opts.maxSkewMs ?? DEFAULT_SKEW_MS;
    if (Math.abs(opts.now.getTime() - time) > maxSkew) {
      throw new S3Error('RequestTimeTooSkewed', undefined, { fields: { RequestTime: amzDate ?? date ?? '', ServerTime: opts.now.toISOString(), MaxAllowedSkewMilliseconds: String(maxSkew) } });
    }
    // With x-amz-date, the Date line is empty: the time is signed among the x-amz-* headers.
    dateLine = amzDate !== undefined ? '' : (date ?? '');
    location = 'header';
  } else {
    const ak = q('AWSAccessKeyId');
    const sig = q('Signature');
    const expires = q('Expires');
    if (ak === undefined || sig === undefined || expires === undefined) {
      throw new S3Error('AccessDenied', 'Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters');
    }
    if (!/^\d{1,12}$/.test(expires)) throw new S3Error('AccessDenied', 'Invalid date (should be seconds since epoch)');
    const expiresAt = Number(expires) * 1000;
    if (opts.now.getTime() > expiresAt) {
      throw new S3Error('AccessDenied', 'Request has expired', { fields: { Expires: new Date(expiresAt).toISOString(), ServerTime: opts.now.toISOString() } });
    }
    if (expiresAt - opts.now.getTime() > MAX_EXPIRES_S * 1000) {
      throw new S3Error('AccessDenied', 'Signature V2 presigned URLs may be valid for at most 7 days (604800 seconds)');
    }
    accessKeyId = ak;
    signature = sig;
    dateLine = expires;
    location = 'query';
  }
  // A session token always rides in x-amz-security-token, which SigV2 covers among the x-amz-* headers; as a query
  // parameter (a presigned URL, in any case of its name, which the caller lookup reads) the V2 string to sign does not
  // cover it, so it is refused there.
  if (given.has('x-amz-security-token')) {
    throw new S3Error('InvalidRequest', 'Session tokens cannot be used with Signature V2 presigned URLs; use SigV4.');
  }
  const secrets = await opts.lookupSecrets(accessKeyId);
  if (!secrets || secrets.length === 0) throw new S3Error('InvalidAccessKeyId', undefined, { fields: { AWSAccessKeyId: accessKeyId } });
  const toSign = stringsToSignV2(req, dateLine, opts.hostBucket);
  let matched = false;
  // Every secret and resource form is tried, so timing does not tell which one matched.
  for (const secret of secrets) for (const s of toSign) if (signaturesEqual(signV2(secret, s), signature)) matched = true;
  if (!matched) {
    throw new S3Error('SignatureDoesNotMatch', undefined, { fields: { AWSAccessKeyId: accessKeyId, StringToSign: toSign[0]! } });
  }
  return {
    accessKeyId,
    location,
    payload: payloadOf(req),
    signature,
    signingKey: Buffer.alloc(0),
    scope: '',
    amzDate: '',
    ...(getHeader(req.headers, 'x-amz-security-token') !== undefined ? { sessionToken: getHeader(req.headers, 'x-amz-security-token')! } : {}),
  };
}

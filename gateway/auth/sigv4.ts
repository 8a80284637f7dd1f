/**
 * AWS Signature Version 4 as S3 checks it: canonicalization (no path normalization, path decoded once and encoded
 * once, payload hash from x-amz-content-sha256 or UNSIGNED-PAYLOAD) and verification of header and presigned auth.
 */
import { createHmac, hash, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { S3Error } from '../errors.ts';
import { percentBytes } from '../utf8.ts';

/** The parts of an HTTP request SigV4 covers, as received on the wire. */
export interface SignedRequest {
  method: string;
  /** request target path exactly as received, percent-encoded, without query */
  rawPath: string;
  /** raw query string without '?' ('' if none) */
  rawQuery: string;
  /** Node's req.rawHeaders as [name, value] pairs (names in original case, repeated headers kept) */
  headers: Array<[string, string]>;
}

/** How verifySigV4 finds secrets and what it accepts. */
export interface VerifyOptions {
  /** returns the secret(s) valid for this access key id (several during a rotation grace period), or undefined if unknown */
  lookupSecrets: (accessKeyId: string) => Promise<string[] | undefined>;
  now: Date;
  /** region the gateway answers for; another region in the scope is AuthorizationHeaderMalformed / AuthorizationQueryParametersError */
  region: string;
  /** services accepted in the credential scope: ['s3'] for S3 (the default), ['sts'] for STS requests */
  services?: string[];
  /** allowed clock difference for header auth; default 15 minutes */
  maxSkewMs?: number;
  /**
   * The payload hash of a header-signed request that carries no x-amz-content-sha256 (STS form bodies, which SDKs
   * sign without that header): the caller hashed the body. Without it such a request is InvalidRequest.
   */
  bodySha256?: string;
}

/** How the request body is protected, as announced by x-amz-content-sha256. */
export type PayloadMode =
  | { mode: 'signed'; sha256Hex: string }
  | { mode: 'unsigned' }
  | { mode: 'streaming-signed'; trailer: boolean }
  | { mode: 'streaming-unsigned-trailer' };

/** A request whose SigV4 signature checked out. */
export interface VerifiedAuth {
  accessKeyId: string;
  location: 'header' | 'query';
  payload: PayloadMode;
  /** seed signature (never log it) */
  signature: string;
  /** derived key, for chunk signatures */
  signingKey: Buffer;
  /** e.g. 20130524/us-east-1/s3/aws4_request */
  scope: string;
  /** YYYYMMDDTHHMMSSZ */
  amzDate: string;
  /** X-Amz-Security-Token, which is always covered by the signature when present */
  sessionToken?: string;
}

/** Inputs of the S3 canonical request. */
export interface CanonicalRequestInput extends SignedRequest {
  /** lower-case names from SignedHeaders, in the order given */
  signedHeaders: string[];
  /** last line of the canonical request: hex SHA-256, UNSIGNED-PAYLOAD or a STREAMING-* literal */
  payloadHash: string;
  /** presigned: leave X-Amz-Signature out of the canonical query */
  presigned?: boolean;
}

/** The algorithm name SigV4 uses in headers, query parameters and the string to sign. */
export const ALGORITHM = 'AWS4-HMAC-SHA256';
/** SHA-256 of the empty string, the hash of every chunk-signature's empty "headers" line. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const DEFAULT_SKEW_MS = 15 * 60 * 1000;
const MAX_EXPIRES_S = 604800;
const UNRESERVED = /^[A-Za-z0-9\-._~/]*$/;

// One string per byte, so encoding a key is a table lookup instead of a regex test per character.
const ENCODED = Array.from({ length: 256 }, (_, b) => {
  const c = String.fromCharCode(b);
  return /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
});

/** Encodes every byte except A-Z a-z 0-9 - . _ ~ (and '/' when keepSlash), upper-case hex. */
function uriEncode(bytes: Buffer, keepSlash: boolean): string {
  let out = '';
  for (const b of bytes) out += keepSlash && b === 0x2f ? '/' : ENCODED[b];
  return out;
}

/** S3's canonical URI: decode the wire path once, encode it once, keep '/', '.', '..' and '//' as they are. */
export function canonicalUri(rawPath: string): string {
  if (UNRESERVED.test(rawPath)) return rawPath || '/';
  return uriEncode(percentBytes(rawPath), true) || '/';
}

/**
 * Percent-decodes a query component to text (invalid UTF-8 becomes U+FFFD: only for finding the X-Amz-* parameters;
 * a request with such a value is refused once authenticated, middleware/authenticate.ts). decodeURIComponent gives the same text
 * whenever it accepts the input, natively; only what it refuses (a stray '%', bytes that are no UTF-8) takes the
 * byte-wise path.
 */
function decodeText(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return percentBytes(s).toString('utf8');
  }
}

const UNRESERVED_TEXT = /^[A-Za-z0-9\-._~]*$/;

/**
 * uriEncode of a text's UTF-8 bytes, '/' encoded. encodeURIComponent encodes the same bytes the same way (upper-case
 * hex) except that it leaves ! ' ( ) * as they are, which SigV4 encodes.
 */
function encodeText(s: string): string {
  if (UNRESERVED_TEXT.test(s)) return s;
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => ENCODED[c.charCodeAt(0)]!);
}

/** The query parsed last: authentication asks for the same request's query several times (SigV4, SigV2, session token). */
let lastQuery: { raw: string; pairs: ReadonlyArray<readonly [string, string]> } = { raw: '', pairs: [] };

/**
 * Splits a raw query into decoded [name, value] pairs; '+' means space, as in form encoding. The answer is shared
 * with the next caller asking about the same query string, hence read-only (by its type: freezing each pair cost
 * more than the rest of the parse).
 */
export function parseQuery(rawQuery: string): ReadonlyArray<readonly [string, string]> {
  if (!rawQuery) return [];
  if (rawQuery === lastQuery.raw) return lastQuery.pairs;
  const pairs: Array<readonly [string, string]> = [];
  for (const part of rawQuery.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const n = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? '' : part.slice(eq + 1);
    // replaceAll only where there is a '+': it costs a scan and a copy even when there is none.
    pairs.push([decodeText(n.includes('+') ? n.replaceAll('+', ' ') : n), decodeText(v.includes('+') ? v.replaceAll('+', ' ') : v)]);
  }
  lastQuery = { raw: rawQuery, pairs };
  return pairs;
}

/**
 * A raw query component already in canonical form: unreserved characters, and upper-case escapes of ASCII bytes
 * that are not unreserved (each decodes to one character that encodeText escapes back exactly so).
 */
const CANONICAL_COMPONENT = /^(?:[A-Za-z0-9\-._~]|%(?:[0-7][0-9A-F]))*$/;
const ESCAPED_UNRESERVED = /%(?:2D|2E|3[0-9]|4[1-9A-F]|5[0-9A]|5F|6[1-9A-F]|7[0-9A]|7E)/;

/**
 * The canonical form of a raw query component: its bytes, percent-decoded ('+' a space), encoded again (SigV4: the
 * canonical query encodes each byte). As received when that is canonical already. Bytes that are not UTF-8 (`%FF`)
 * are encoded as the bytes they are, as the client signed them, never through a U+FFFD (that would be %EF%BF%BD).
 */
function canonicalComponent(raw: string): string {
  if (UNRESERVED_TEXT.test(raw)) return raw;
  if (CANONICAL_COMPONENT.test(raw) && !ESCAPED_UNRESERVED.test(raw)) return raw;
  const spaced = raw.replaceAll('+', ' ');
  try {
    // decodeURIComponent and encodeText are native and give the same bytes whenever the input is UTF-8.
    return encodeText(decodeURIComponent(spaced));
  } catch {
    return uriEncode(percentBytes(spaced), false);
  }
}

/** Orders canonical query pairs by name, then value (code units: the components are ASCII once encoded). */
function comparePairs(a: readonly [string, string], b: readonly [string, string]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
}

/**
 * The canonical query string: decoded, re-encoded with '/' encoded, sorted by name then value. Components a client
 * sent in canonical form already (as SDKs send presigned URLs) are taken as they are, without decoding and encoding.
 */
export function canonicalQuery(rawQuery: string, presigned = false): string {
  const pairs: Array<[string, string]> = [];
  if (rawQuery) {
    for (const part of rawQuery.split('&')) {
      if (!part) continue;
      const eq = part.indexOf('=');
      const n = canonicalComponent(eq < 0 ? part : part.slice(0, eq));
      // The encoding is one-to-one and leaves this name as it is: comparing encoded names compares decoded ones.
      if (presigned && n === 'X-Amz-Signature') continue;
      pairs.push([n, eq < 0 ? '' : canonicalComponent(part.slice(eq + 1))]);
    }
  }
  // SDKs send their parameters sorted already (presigned URLs always): a check in one pass, and a sort only if not.
  for (let i = 1; i < pairs.length; i++) {
    if (comparePairs(pairs[i - 1]!, pairs[i]!) > 0) {
      pairs.sort(comparePairs);
      break;
    }
  }
  let out = '';
  for (let i = 0; i < pairs.length; i++) out += `${i > 0 ? '&' : ''}${pairs[i]![0]}=${pairs[i]![1]}`;
  return out;
}

/** Whitespace canonicalValue rewrites: a run of two or more, or any single one that is not a plain space. */
const INNER_WHITESPACE = /\s\s|[^\S ]/;

/** A header value as SigV4 canonicalizes it: trimmed, inner whitespace runs (and obs-folds) collapsed to one space. */
function canonicalValue(value: string): string {
  const trimmed = value.trim();
  // Most values hold no whitespace run to collapse: tested first, without building a copy.
  return INNER_WHITESPACE.test(trimmed) ? trimmed.replace(/\s+/g, ' ') : trimmed;
}

/** First value of a header (case-insensitive), or undefined. */
export function getHeader(headers: Array<[string, string]>, name: string): string | undefined {
  const lower = name.toLowerCase();
  // Only names of the same length are lower-cased: a request asks for half a dozen headers among a dozen or more.
  const found = headers.find(([n]) => n.length === lower.length && n.toLowerCase() === lower);
  return found?.[1].trim();
}

/** Builds S3's canonical request; repeated headers are joined with ',' exactly as received. */
export function canonicalRequest(input: CanonicalRequestInput): string {
  // One pass over the request's headers collects the signed ones (names lower-cased once each), in the order received.
  const names = input.signedHeaders;
  const values: Array<string | undefined> = new Array(names.length).fill(undefined);
  for (const [name, value] of input.headers) {
    const i = names.indexOf(name.toLowerCase());
    if (i < 0) continue;
    const v = canonicalValue(value);
    values[i] = values[i] === undefined ? v : `${values[i]},${v}`;
  }
  let lines = '';
  // A name listed twice (the first of it holds the values) gets its line twice, as the values joined under it did.
  for (let i = 0; i < names.length; i++) lines += `${names[i]}:${values[names.indexOf(names[i]!)] ?? ''}\n`;
  return `${input.method.toUpperCase()}\n${canonicalUri(input.rawPath)}\n${canonicalQuery(input.rawQuery, input.presigned)}\n${lines}\n${names.join(';')}\n${input.payloadHash}`;
}

/** Hex SHA-256 of a string or bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  // The one-shot form: no Hash object per call (one request hashes its canonical request this way).
  return hash('sha256', data, 'hex');
}

/**
 * The string to sign for a canonical request. Node decodes header bytes as latin1, so a canonical request that fits
 * in latin1 is hashed as latin1 to recover the bytes the client signed (UTF-8 x-amz-meta-* values included).
 */
export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  // ASCII (the usual case) is the same bytes in either encoding: hashed as the string, without a copy.
  const bytes = !/[^\x00-\x7f]/.test(canonical) ? canonical : Buffer.from(canonical, /[^\x00-\xff]/.test(canonical) ? 'utf8' : 'latin1');
  return `${ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(bytes)}`;
}

/**
 * Signing keys derived lately, by scope and secret: a key only changes with its day, so each client's requests
 * derive it once a day instead of with four HMACs each. Which secrets are current is decided per request by the
 * caller's lookup (a revoked secret is never looked up), so the cache cannot keep a revoked credential alive.
 */
const signingKeys = new LRUCache<string, Buffer>({ max: 10_000 });

/** Derives the signing key for one day, region and service (SigV4: "Derive a signing key"). */
export function deriveSigningKey(secret: string, scope: { date: string; region: string; service: string }): Buffer {
  const id = `${scope.date}/${scope.region}/${scope.service}/${secret}`;
  const cached = signingKeys.get(id);
  if (cached) return cached;
  const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, scope.date), scope.region), scope.service), 'aws4_request');
  signingKeys.set(id, key);
  return key;
}

/**
 * Whether `secret` is the secret a verified SigV4 request was signed with (its signing key for the request's day,
 * region and service is the one that verified). What derives authority from a signature (a session AssumeRole opens,
 * a watch stream) is bound to that one secret, not to every secret valid at the time: during a rotation's grace the
 * old secret must not open something that outlives the grace. False for SigV2 (it has no signing key).
 */
export function signedWith(auth: Pick<VerifiedAuth, 'scope' | 'signingKey'>, secret: string): boolean {
  const [date, region, service] = auth.scope.split('/');
  if (date === undefined || region === undefined || service === undefined || auth.signingKey.length === 0) return false;
  const key = deriveSigningKey(secret, { date, region, service });
  return key.length === auth.signingKey.length && timingSafeEqual(key, auth.signingKey);
}

/** Hex HMAC-SHA256 of a string to sign with a signing key. */
export function sign(signingKey: Buffer, toSign: string): string {
  return createHmac('sha256', signingKey).update(toSign).digest('hex');
}

/** Constant-time comparison of two hex signatures. */
export function signaturesEqual(expected: string, provided: string): boolean {
  const a = Buffer.from(expected, 'latin1');
  const b = Buffer.from(provided, 'latin1');
  return a.length === b.length && timingSafeEqual(a, b);
}

// ---------------------------------------------------------------------------------------------------------------
// Verification. Kept in this file because the auth folder's file list is fixed; canonicalization above is pure.

interface ParsedAuth {
  location: 'header' | 'query';
  accessKeyId: string;
  scope: { date: string; region: string; service: string };
  signedHeaders: string[];
  signature: string;
  amzDate: string;
  payloadHash: string;
  sessionToken?: string;
}

type ErrorFactory = (detail: string, fields?: Record<string, string>) => S3Error;

const headerMalformed: ErrorFactory = (detail, fields) =>
  new S3Error('AuthorizationHeaderMalformed', `The authorization header is malformed; ${detail}`, { fields });
const queryMalformed: ErrorFactory = (detail, fields) =>
  new S3Error('AuthorizationQueryParametersError', detail, { fields });

const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** The last x-amz-date parsed and its time: a client's requests within one second share it (and every presigned URL
 * signed in one second). */
let lastAmzDate = { text: '', time: NaN };

/** Parses YYYYMMDDTHHMMSSZ into epoch milliseconds, or NaN. */
function parseAmzDate(s: string): number {
  if (s === lastAmzDate.text) return lastAmzDate.time;
  const time = parseAmzDateText(s);
  lastAmzDate = { text: s, time };
  return time;
}

function parseAmzDateText(s: string): number {
  const m = AMZ_DATE.exec(s);
  if (!m) return NaN;
  const [year, month, day, hour, minute, second] = [+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!];
  const t = Date.UTC(year, month, day, hour, minute, second);
  // Date.UTC rolls 31 April over into May (and maps years 0-99 to 1900-1999): such a date names no real time.
  const d = new Date(t);
  const exact = d.getUTCFullYear() === year && d.getUTCMonth() === month && d.getUTCDate() === day &&
    d.getUTCHours() === hour && d.getUTCMinutes() === minute && d.getUTCSeconds() === second;
  return exact ? t : NaN;
}

/** Formats a time as YYYYMMDDTHHMMSSZ. */
export function formatAmzDate(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/** Parses an x-amz-content-sha256 value into a payload mode; undefined if it is none S3 accepts here. */
export function parsePayloadHash(value: string): PayloadMode | undefined {
  switch (value) {
    case 'UNSIGNED-PAYLOAD':
      return { mode: 'unsigned' };
    case 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD':
      return { mode: 'streaming-signed', trailer: false };
    case 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER':
      return { mode: 'streaming-signed', trailer: true };
    case 'STREAMING-UNSIGNED-PAYLOAD-TRAILER':
      return { mode: 'streaming-unsigned-trailer' };
  }
  return /^[0-9a-fA-F]{64}$/.test(value) ? { mode: 'signed', sha256Hex: value.toLowerCase() } : undefined;
}

/**
 * The access key id and scope of a Credential value: two parts, not one object split again with a rest pattern
 * (`{ ak, ...scope }`), which V8 builds slowly.
 */
function parseCredential(value: string, opts: VerifyOptions, fail: ErrorFactory): { ak: string; scope: ParsedAuth['scope'] } {
  const parts = value.split('/');
  if (parts.length !== 5 || !parts[0] || !/^\d{8}$/.test(parts[1]) || parts[4] !== 'aws4_request') {
    throw fail('the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".');
  }
  const [ak, date, region, service] = parts;
  if (region !== opts.region) {
    throw fail(`the region '${region}' is wrong; expecting '${opts.region}'`, { Region: opts.region });
  }
  const services = opts.services ?? ['s3'];
  if (!services.includes(service)) throw fail(`incorrect service "${service}". This endpoint belongs to "${services[0]}".`);
  return { ak, scope: { date, region, service } };
}

function parseSignedHeaders(value: string, fail: ErrorFactory): string[] {
  const names = value.split(';');
  if (names.some((n) => !n || n !== n.toLowerCase())) throw fail('SignedHeaders must be lower-case names separated by ";".');
  // Without Host, a signature could be replayed against another bucket addressed by virtual host.
  if (!names.includes('host')) throw fail('the host header must be signed.');
  return names;
}

function payloadFromHeader(headers: Array<[string, string]>, required: boolean, bodySha256?: string): string {
  const value = getHeader(headers, 'x-amz-content-sha256');
  if (value === undefined) {
    if (bodySha256 !== undefined) return bodySha256;
    if (!required) return 'UNSIGNED-PAYLOAD';
    throw new S3Error('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
  }
  if (!parsePayloadHash(value)) {
    throw new S3Error('InvalidArgument', 'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, ' +
      'STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.',
      { fields: { ArgumentName: 'x-amz-content-sha256', ArgumentValue: value } });
  }
  return value;
}

/**
 * Headers whose single value authentication or the operation acts on. SigV4 joins a repeated header's values with ','
 * in the canonical request, so a signature covers both copies while the gateway would act on one: a request carrying
 * one of these twice is refused (AWS documents no answer for this; InvalidArgument names the header).
 */
const SINGLE_VALUED = [
  'x-amz-date',
  'x-amz-content-sha256',
  'x-amz-security-token',
  'x-amz-decoded-content-length',
  'x-amz-copy-source',
  'x-amz-copy-source-range',
  'x-amz-trailer',
  'x-amz-checksum-algorithm',
  'x-amz-sdk-checksum-algorithm',
  'x-amz-checksum-crc32',
  'x-amz-checksum-crc32c',
  'x-amz-checksum-crc64nvme',
  'x-amz-checksum-sha1',
  'x-amz-checksum-sha256',
  'x-amz-checksum-type',
];
/** Bits of the non-x-amz headers checked in the same pass: Authorization (repeated) and Host (repeated, missing, empty). */
const AUTHORIZATION_BIT = 1 << SINGLE_VALUED.length;
const HOST_BIT = AUTHORIZATION_BIT << 1;

function repeatedHeader(name: string): S3Error {
  return new S3Error('InvalidArgument', `The ${name} header must not be given more than once.`, { fields: { ArgumentName: name } });
}

/**
 * Refuses a repeated Authorization, Host or SINGLE_VALUED header (InvalidArgument naming it), for SigV2 (sigv2.ts):
 * it signs a repeated x-amz-* header's values joined with ',' as SigV4 does, and the gateway would act on one.
 */
export function refuseRepeatedHeaders(req: Pick<SignedRequest, 'headers'>): void {
  const seen = new Set<string>();
  for (const [name] of req.headers) {
    const n = name.toLowerCase();
    if (n !== 'host' && n !== 'authorization' && !SINGLE_VALUED.includes(n)) continue;
    if (seen.has(n)) throw repeatedHeader(n);
    seen.add(n);
  }
}

/**
 * One pass over the request's headers (header and query auth alike) refuses:
 *   - an x-amz-* header present but not among the signed headers (AccessDenied, as S3);
 *   - a repeated Authorization, Host or SINGLE_VALUED header (InvalidArgument naming it);
 *   - a missing or empty Host (InvalidRequest): a signature must be bound to the endpoint it was made for, or it
 *     could be replayed against any other (RFC 9112 §3.2 makes Host required; SigV4 requires it signed).
 * The common request allocates nothing here beyond the lower-cased x-amz-* names (a bit mask records what was seen).
 */
function refuseUnsignedAmzHeaders(req: SignedRequest, signed: string[]): void {
  let unsigned: string[] | undefined;
  let seen = 0;
  for (const [name, value] of req.headers) {
    const first = name.charCodeAt(0) | 0x20;
    if (name.length === 4 && first === 0x68 && name.toLowerCase() === 'host') {
      if (seen & HOST_BIT) throw repeatedHeader('host');
      if (value.trim() === '') break; // refused below as missing
      seen |= HOST_BIT;
      continue;
    }
    if (name.length === 13 && first === 0x61 && name.toLowerCase() === 'authorization') {
      if (seen & AUTHORIZATION_BIT) throw repeatedHeader('authorization');
      seen |= AUTHORIZATION_BIT;
      continue;
    }
    if (name.length <= 6 || first !== 0x78) continue; // not x-amz-…: the usual header
    const n = name.toLowerCase();
    if (!n.startsWith('x-amz-')) continue;
    const single = SINGLE_VALUED.indexOf(n);
    if (single >= 0) {
      if (seen & (1 << single)) throw repeatedHeader(n);
      seen |= 1 << single;
    }
    if (!signed.includes(n) && !unsigned?.includes(n)) (unsigned ??= []).push(n);
  }
  if (!(seen & HOST_BIT)) throw new S3Error('InvalidRequest', 'A signed request must carry a non-empty Host header.');
  if (unsigned !== undefined) {
    throw new S3Error('AccessDenied', 'There were headers present in the request which were not signed', {
      fields: { HeadersNotSigned: unsigned.join(', ') },
    });
  }
}

function parseHeaderAuth(auth: string, req: SignedRequest, opts: VerifyOptions): ParsedAuth {
  if (!auth.startsWith(`${ALGORITHM} `)) {
    if (/^AWS4?-?[A-Z0-9-]* /.test(auth)) {
      throw new S3Error('InvalidRequest', 'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.');
    }
    throw new S3Error('InvalidArgument', 'Unsupported Authorization Type', { fields: { ArgumentName: 'Authorization' } });
  }
  const parts = new Map<string, string>();
  for (const item of auth.slice(ALGORITHM.length + 1).split(',')) {
    const eq = item.indexOf('=');
    const key = item.slice(0, eq).trim();
    if (eq < 0 || parts.has(key)) throw headerMalformed('the authorization header requires three components: Credential, SignedHeaders, and Signature.');
    parts.set(key, item.slice(eq + 1).trim());
  }
  const credential = parts.get('Credential');
  const signedHeaders = parts.get('SignedHeaders');
  const signature = parts.get('Signature');
  if (credential === undefined || signedHeaders === undefined || signature === undefined || parts.size !== 3) {
    throw headerMalformed('the authorization header requires three components: Credential, SignedHeaders, and Signature.');
  }
  const { ak, scope } = parseCredential(credential, opts, headerMalformed);
  const names = parseSignedHeaders(signedHeaders, headerMalformed);

  const amzHeader = getHeader(req.headers, 'x-amz-date');
  const dateHeader = getHeader(req.headers, 'date');
  const time = amzHeader !== undefined ? parseAmzDate(amzHeader) : dateHeader !== undefined ? Date.parse(dateHeader) : NaN;
  if (Number.isNaN(time)) throw new S3Error('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
  // parseAmzDate accepts only the exact YYYYMMDDTHHMMSSZ form of a real time, so a valid x-amz-date is its own format.
  const amzDate = amzHeader !== undefined ? amzHeader : formatAmzDate(new Date(time));
  if (amzDate.slice(0, 8) !== scope.date) throw headerMalformed('Invalid credential date. Date is not the same as X-Amz-Date.');
  const maxSkew = opts.maxSkewMs ?? DEFAULT_SKEW_MS;
  if (Math.abs(opts.now.getTime() - time) > maxSkew) {
    throw new S3Error('RequestTimeTooSkewed', undefined, {
      fields: { RequestTime: amzHeader ?? dateHeader ?? '', ServerTime: opts.now.toISOString(), MaxAllowedSkewMilliseconds: String(maxSkew) },
    });
  }
  // Every x-amz-* header the gateway may act on (copy sources, metadata, tagging, the session token, the payload
  // hash and date themselves) must be covered by the signature, exactly as for presigned URLs; otherwise whoever
  // relays a signed request could add one. Source: Amazon S3 API Reference, "Signature Calculations for the
  // Authorization Header": x-amz-* headers in the request are to be signed.
  refuseUnsignedAmzHeaders(req, names);
  const sessionToken = getHeader(req.headers, 'x-amz-security-token');
  const payloadHash = payloadFromHeader(req.headers, opts.bodySha256 === undefined, opts.bodySha256);
  return { location: 'header', accessKeyId: ak, scope, signedHeaders: names, signature, amzDate, payloadHash, sessionToken };
}

function parseQueryAuth(q: (name: string) => string | undefined, req: SignedRequest, opts: VerifyOptions): ParsedAuth {
  if (q('X-Amz-Algorithm') !== ALGORITHM) throw queryMalformed('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
  const credential = q('X-Amz-Credential');
  const date = q('X-Amz-Date');
  const expires = q('X-Amz-Expires');
  const signedHeaders = q('X-Amz-SignedHeaders');
  const signature = q('X-Amz-Signature');
  if (credential === undefined || date === undefined || expires === undefined || signedHeaders === undefined || signature === undefined) {
    throw queryMalformed('Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, ' +
      'X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.');
  }
  const { ak, scope } = parseCredential(credential, opts, (d, f) => queryMalformed(`Error parsing the X-Amz-Credential parameter; ${d}`, f));
  const names = parseSignedHeaders(signedHeaders, queryMalformed);
  const time = parseAmzDate(date);
  if (Number.isNaN(time)) throw queryMalformed('X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd\'T\'HHmmss\'Z\'"');
  if (date.slice(0, 8) !== scope.date) throw queryMalformed('Invalid credential date. Date is not the same as X-Amz-Date.');
  if (/^-\d+$/.test(expires)) throw queryMalformed('X-Amz-Expires must be non-negative');
  if (!/^\d{1,10}$/.test(expires)) throw queryMalformed('X-Amz-Expires should be a number');
  if (Number(expires) > MAX_EXPIRES_S) throw queryMalformed('X-Amz-Expires must be less than a week (in seconds) that is 604800');
  const now = opts.now.getTime();
  if (now < time - (opts.maxSkewMs ?? DEFAULT_SKEW_MS)) throw new S3Error('AccessDenied', 'Request is not valid yet');
  if (now > time + Number(expires) * 1000) {
    throw new S3Error('AccessDenied', 'Request has expired', {
      fields: { 'X-Amz-Expires': expires, Expires: new Date(time + Number(expires) * 1000).toISOString(), ServerTime: opts.now.toISOString() },
    });
  }
  // Whoever holds a presigned URL must not be able to add x-amz-* headers (ACLs, copy sources, tokens) to it.
  refuseUnsignedAmzHeaders(req, names);
  const payloadHash = payloadFromHeader(req.headers, false);
  return { location: 'query', accessKeyId: ak, scope, signedHeaders: names, signature, amzDate: date, payloadHash, sessionToken: q('X-Amz-Security-Token') };
}

/** Which kind of auth a request carries, without checking it: 'header', 'query' or undefined (anonymous). */
export function authLocation(req: Pick<SignedRequest, 'headers' | 'rawQuery'>): 'header' | 'query' | undefined {
  if (getHeader(req.headers, 'authorization') !== undefined) return 'header';
  return /(^|&)(X-Amz-Algorithm|X-Amz-Signature|X-Amz-Credential|AWSAccessKeyId|Signature)=/.test(req.rawQuery) ? 'query' : undefined;
}

/** Returns undefined when the request carries no SigV4 auth at all (anonymous), throws S3Error on any bad auth. */
export async function verifySigV4(req: SignedRequest, opts: VerifyOptions): Promise<VerifiedAuth | undefined> {
  const auth = getHeader(req.headers, 'authorization');
  // The value of each query parameter, collected in one pass (verification asks for a dozen of them). A repeated
  // X-Amz-* parameter is refused, as a repeated signed header is: the signature covers both values, the check one.
  const first = new Map<string, string>();
  for (const [n, v] of parseQuery(req.rawQuery)) {
    if (!first.has(n)) first.set(n, v);
    else if (n.startsWith('X-Amz-')) {
      throw new S3Error('InvalidArgument', `The ${n} query parameter must not be given more than once.`, { fields: { ArgumentName: n } });
    }
  }
  const q = (name: string) => first.get(name);
  const v4Query = first.has('X-Amz-Algorithm') || first.has('X-Amz-Credential') || first.has('X-Amz-Signature');
  const v2Query = first.has('AWSAccessKeyId') || first.has('Signature');
  if (auth !== undefined && (v4Query || v2Query)) {
    throw new S3Error('InvalidArgument', 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, ' +
      'Signature query string parameter or the Authorization header should be specified', { fields: { ArgumentName: 'Authorization' } });
  }
  let parsed: ParsedAuth;
  if (auth !== undefined) parsed = parseHeaderAuth(auth, req, opts);
  else if (v4Query) parsed = parseQueryAuth(q, req, opts);
  else if (v2Query) {
    throw new S3Error('InvalidRequest', 'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.');
  } else return undefined;

  const secrets = await opts.lookupSecrets(parsed.accessKeyId);
  if (!secrets || secrets.length === 0) {
    throw new S3Error('InvalidAccessKeyId', undefined, { fields: { AWSAccessKeyId: parsed.accessKeyId } });
  }
  // Field by field: in V8 a spread followed by more properties ({ ...req, signedHeaders }) is a slow path; with the
  // rest pattern in parseCredential it cost a presigned verification about 4.5 of its 19 µs (in process, this machine).
  const canonical = canonicalRequest({
    method: req.method,
    rawPath: req.rawPath,
    rawQuery: req.rawQuery,
    headers: req.headers,
    signedHeaders: parsed.signedHeaders,
    payloadHash: parsed.payloadHash,
    presigned: parsed.location === 'query',
  });
  const scope = `${parsed.scope.date}/${parsed.scope.region}/${parsed.scope.service}/aws4_request`;
  const toSign = stringToSign(parsed.amzDate, scope, canonical);
  // Every secret is tried even after a match would be found, so timing does not reveal which one is current.
  let signingKey: Buffer | undefined;
  for (const secret of secrets) {
    const key = deriveSigningKey(secret, parsed.scope);
    if (signaturesEqual(sign(key, toSign), parsed.signature) && !signingKey) signingKey = key;
  }
  if (!signingKey) {
    throw new S3Error('SignatureDoesNotMatch', undefined, {
      fields: { AWSAccessKeyId: parsed.accessKeyId, StringToSign: toSign, CanonicalRequest: canonical },
    });
  }
  const verified: VerifiedAuth = {
    accessKeyId: parsed.accessKeyId,
    location: parsed.location,
    payload: parsePayloadHash(parsed.payloadHash)!,
    signature: parsed.signature,
    signingKey,
    scope,
    amzDate: parsed.amzDate,
  };
  if (parsed.sessionToken !== undefined) verified.sessionToken = parsed.sessionToken;
  return verified;
}

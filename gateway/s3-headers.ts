/**
 * Translation between S3's HTTP headers and storage's neutral types: object metadata in and out, conditional
 * headers, Range, tagging headers. Shared by every operation that reads or writes an object.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ChecksumAlgorithm, Conditions, ObjectHeaders, ObjectMeta, ObjectWriteMeta, RangeRequest, StoredChecksum, WriteConditions } from '../storage/backend.ts';
import { plausibleBucketName } from '../storage/bucket-names.ts';
import { decodeWord, encodeWord } from '../storage/encoded-words.ts';
import { checksumHeaderAlgorithm, parseChecksumAlgorithm } from './auth/checksums.ts';
import { S3Error } from './errors.ts';
import { nonUtf8QueryParam, utf8Text } from './utf8.ts';

/** Response headers as operations return them; undefined entries are skipped. */
export type HeaderMap = Record<string, string | undefined>;

const SYSTEM_HEADERS: Array<[keyof ObjectHeaders, string]> = [
  ['contentType', 'content-type'],
  ['contentEncoding', 'content-encoding'],
  ['contentDisposition', 'content-disposition'],
  ['contentLanguage', 'content-language'],
  ['cacheControl', 'cache-control'],
  ['expires', 'expires'],
];

/** Most user metadata S3 accepts (keys + values), in bytes. */
const MAX_USER_METADATA = 2048;

/** One header value as a string (Node joins most repeats already; arrays only for set-cookie and the like). */
export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** Metadata a PUT, copy (REPLACE) or multipart create sets on the object. */
export function writeMetaFromHeaders(headers: IncomingHttpHeaders): ObjectWriteMeta {
  const out: ObjectHeaders = {};
  for (const [field, name] of SYSTEM_HEADERS) {
    const v = header(headers, name);
    if (v !== undefined) out[field] = v;
  }
  // aws-chunked is a transfer detail of SigV4 streaming, not part of the object's Content-Encoding.
  if (out.contentEncoding !== undefined) {
    const kept = out.contentEncoding
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s && s.toLowerCase() !== 'aws-chunked');
    out.contentEncoding = kept.length ? kept.join(', ') : undefined;
    if (out.contentEncoding === undefined) delete out.contentEncoding;
  }
  const userMetadata: Record<string, string> = {};
  let size = 0;
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith('x-amz-meta-') || value === undefined) continue;
    const key = name.slice('x-amz-meta-'.length);
    // A metadata entry needs a name: `x-amz-meta-` alone would be stored as one nobody can send back as a header name.
    if (key === '') throw new S3Error('InvalidArgument', 'User-defined metadata names must not be empty', { fields: { ArgumentName: name } });
    const v = fromWireText(Array.isArray(value) ? value.join(',') : value);
    userMetadata[key] = v;
    size += Buffer.byteLength(key) + Buffer.byteLength(v);
  }
  if (size > MAX_USER_METADATA) {
    throw new S3Error('MetadataTooLarge');
  }
  return { headers: out, userMetadata };
}

/** HTTP dates formatted lately, by whole second (toUTCString shows no milliseconds); emptied when full. */
const httpDates = new Map<number, string>();
const HTTP_DATES_MAX = 1024;

/**
 * RFC 7231 date, as S3 sends Last-Modified. Formatting costs about half a microsecond; objects written in the same
 * second (a batch of uploads, an object read again and again) share the string.
 */
export function httpDate(d: Date): string {
  const second = Math.floor(d.getTime() / 1000);
  let text = httpDates.get(second);
  if (text === undefined) {
    text = d.toUTCString();
    if (httpDates.size >= HTTP_DATES_MAX) httpDates.clear();
    httpDates.set(second, text);
  }
  return text;
}

/**
 * Headers describing a stored object on GET and HEAD. `partsCount`: the request named a partNumber, the only read S3
 * answers with x-amz-mp-parts-count (GetObject/HeadObject API reference, PartsCount).
 */
export function objectHeaders(meta: ObjectMeta, opts: { checksumMode?: boolean; partsCount?: boolean } = {}): HeaderMap {
  const out: HeaderMap = {
    etag: `"${meta.etag}"`,
    'last-modified': httpDate(meta.lastModified),
    'accept-ranges': 'bytes',
    'content-type': meta.headers.contentType ?? 'binary/octet-stream',
  };
  for (const [field, name] of SYSTEM_HEADERS) {
    if (field !== 'contentType' && meta.headers[field] !== undefined) out[name] = meta.headers[field];
  }
  for (const [k, v] of Object.entries(meta.userMetadata)) out[`x-amz-meta-${k}`] = encodeWord(v);
  if (opts.partsCount && meta.partSizes) out['x-amz-mp-parts-count'] = String(meta.partSizes.length);
  if (opts.checksumMode && meta.checksum) Object.assign(out, checksumHeaders(meta.checksum));
  if (meta.tagCount) out['x-amz-tagging-count'] = String(meta.tagCount);
  return out;
}

/** x-amz-checksum-<algorithm> and x-amz-checksum-type for a stored checksum (GetObject, PutObject, Complete…). */
export function checksumHeaders(c: StoredChecksum): HeaderMap {
  return { [`x-amz-checksum-${c.algorithm.toLowerCase()}`]: c.value, 'x-amz-checksum-type': c.type ?? 'FULL_OBJECT' };
}

/**
 * A header value as text. Node reads header bytes as latin1; S3 takes them as UTF-8 (non-ASCII user metadata), so
 * bytes that form valid UTF-8 are read as such, and RFC 2047 encoded-words (what S3 itself sends) are decoded.
 */
export function fromWireText(v: string): string {
  const decoded = decodeWord(v);
  if (decoded !== v || !/[^\x00-\x7f]/.test(v) || /[^\x00-\xff]/.test(v)) return decoded;
  const utf8 = Buffer.from(v, 'latin1').toString('utf8');
  return utf8.includes('\uFFFD') ? v : utf8;
}

/**
 * If-Match / If-None-Match of a write (PutObject, CompleteMultipartUpload, CopyObject destination). S3 accepts
 * only `*` in If-None-Match on writes; anything else asks for what it does not implement (PutObject API reference).
 */
export function writeConditionsFromHeaders(headers: IncomingHttpHeaders): WriteConditions | undefined {
  const ifMatch = header(headers, 'if-match');
  const ifNoneMatch = header(headers, 'if-none-match');
  if (ifMatch === undefined && ifNoneMatch === undefined) return undefined;
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '*') {
    throw new S3Error('NotImplemented', 'A header you provided implies functionality that is not implemented', { fields: { Header: 'If-None-Match' } });
  }
  if (ifMatch !== undefined && ifMatch.trim() === '') throw new S3Error('InvalidArgument', 'If-Match must name an ETag');
  return { ...(ifMatch !== undefined ? { ifMatch } : {}), ...(ifNoneMatch !== undefined ? { ifNoneMatch: '*' } : {}) };
}

/** The checksum algorithm a request announces (header, trailer or x-amz-sdk-checksum-algorithm), if any. */
export function announcedChecksum(headers: IncomingHttpHeaders): ChecksumAlgorithm | undefined {
  for (const name of Object.keys(headers)) {
    const algorithm = checksumHeaderAlgorithm(name);
    if (algorithm) return algorithm;
  }
  const trailer = header(headers, 'x-amz-trailer');
  const fromTrailer = trailer ? checksumHeaderAlgorithm(trailer.split(',')[0]!) : undefined;
  if (fromTrailer) return fromTrailer;
  const sdk = header(headers, 'x-amz-sdk-checksum-algorithm');
  return sdk ? parseChecksumAlgorithm(sdk) : undefined;
}

/** The checksum value a request carries in an x-amz-checksum-* header (not a trailer), if any. */
export function headerChecksum(headers: IncomingHttpHeaders): StoredChecksum | undefined {
  for (const name of Object.keys(headers)) {
    const algorithm = checksumHeaderAlgorithm(name);
    const value = header(headers, name);
    if (algorithm && value !== undefined) return { algorithm, value: value.trim() };
  }
  return undefined;
}

/** The response-* query overrides S3 allows on GET (signed requests only, which every request here is). */
const RESPONSE_OVERRIDES: Array<[string, string]> = [
  ['response-content-type', 'content-type'],
  ['response-content-language', 'content-language'],
  ['response-expires', 'expires'],
  ['response-cache-control', 'cache-control'],
  ['response-content-disposition', 'content-disposition'],
  ['response-content-encoding', 'content-encoding'],
];

/** A header value HTTP/1.1 can carry: ISO-8859-1 text (tab, printable ASCII, 0x80–0xFF) without CR, LF or NUL. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * The response-* query overrides of a GET/HEAD as response headers. A value that cannot be sent as a header (not
 * ISO-8859-1, or holding CR, LF or another control character) is InvalidArgument (400) before anything is read, as
 * S3 refuses it, never a header-injection or a 500.
 */
export function responseOverrides(query: URLSearchParams): HeaderMap {
  const out: HeaderMap = {};
  for (const [param, name] of RESPONSE_OVERRIDES) {
    const v = query.get(param);
    if (v === null) continue;
    if (!HEADER_VALUE.test(v)) {
      throw new S3Error('InvalidArgument', `${param} must be ISO-8859-1 text without control characters`, {
        fields: { ArgumentName: param },
      });
    }
    out[name] = v;
  }
  return out;
}

function parseDate(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const t = Date.parse(value);
  // S3 ignores an unparseable date condition rather than failing the request.
  return Number.isNaN(t) ? undefined : new Date(t);
}

/** Conditional headers of a GET/HEAD (prefix '') or of a copy source (prefix 'x-amz-copy-source-'). */
export function conditionsFromHeaders(headers: IncomingHttpHeaders, prefix = ''): Conditions | undefined {
  // Most requests carry none of the four: answered without building their names and an object.
  if (prefix === '' && headers['if-match'] === undefined && headers['if-none-match'] === undefined &&
    headers['if-modified-since'] === undefined && headers['if-unmodified-since'] === undefined) return undefined;
  const c: Conditions = {
    ifMatch: header(headers, `${prefix}if-match`),
    ifNoneMatch: header(headers, `${prefix}if-none-match`),
    ifModifiedSince: parseDate(header(headers, `${prefix}if-modified-since`)),
    ifUnmodifiedSince: parseDate(header(headers, `${prefix}if-unmodified-since`)),
  };
  return Object.values(c).some((v) => v !== undefined) ? c : undefined;
}

/**
 * Parses a Range header. Only one `bytes=` range is served; anything S3 would ignore (another unit, several ranges,
 * garbage) yields undefined and the whole object, as S3 does.
 */
export function parseRange(value: string | undefined): RangeRequest | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(value);
  if (!m) return undefined;
  const [, a, b] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') return { kind: 'suffix', length: Number(b) };
  if (b === '') return { kind: 'open', start: Number(a) };
  const start = Number(a);
  const end = Number(b);
  if (end < start) return undefined;
  return { kind: 'bounded', start, end };
}

/**
 * A header value that names something (a key, a tag) as the UTF-8 text its bytes are. Node reads header bytes as
 * latin1, so bytes sent unescaped are read back as the UTF-8 they must be (as x-amz-meta-* values are), never as
 * latin1 characters that would spell another name (`é` as `Ã©`, 0xFF as `ÿ`); throws `bad()` when they are not UTF-8.
 */
function headerUtf8(raw: string, bad: () => S3Error): string {
  if (!/[^\x00-\x7f]/.test(raw)) return raw;
  const text = utf8Text(Buffer.from(raw, 'latin1'));
  if (text === undefined) throw bad();
  return text;
}

/** Parses a URL-encoded tag set (x-amz-tagging header) and checks S3's limits; InvalidTag for text that is not UTF-8. */
export function parseTaggingHeader(value: string | undefined): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  const notUtf8 = () => new S3Error('InvalidTag', 'The x-amz-tagging header must be URL-encoded UTF-8');
  const text = headerUtf8(value, notUtf8);
  // URLSearchParams would decode an escaped byte that is not UTF-8 (`%FF`) to U+FFFD.
  if (nonUtf8QueryParam(text) !== undefined) throw notUtf8();
  const tags: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(text)) {
    if (k in tags) throw new S3Error('InvalidTag', 'Cannot provide multiple Tags with the same key');
    tags[k] = v;
  }
  validateTags(tags);
  return tags;
}

/** Characters S3 allows in tag keys and values: letters, numbers, spaces, and + - = . _ : / @ (Tag data type). */
const TAG_CHARS = /^[\p{L}\p{Z}\p{N}+\-=._:/@]*$/u;

/** Length in Unicode characters (code points), as the Tag data type counts them: not UTF-8 bytes, not UTF-16 units. */
function charCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/**
 * S3's tag rules: at most `limit` tags (10 per object, 50 per bucket), keys 1–128 Unicode characters, values up to
 * 256 (Tag data type), and no key in the reserved `aws:` namespace ("Your TagKey cannot be prefixed with aws:",
 * InvalidTag, as S3 answers PutObjectTagging, PutBucketTagging and x-amz-tagging).
 */
export function validateTags(tags: Record<string, string>, limit = 10): void {
  const keys = Object.keys(tags);
  if (keys.length > limit) throw new S3Error('InvalidTag', `Object tags cannot be greater than ${limit}`);
  for (const k of keys) {
    if (/^aws:/i.test(k)) throw new S3Error('InvalidTag', 'Your TagKey cannot be prefixed with aws:');
    const keyLength = charCount(k);
    if (keyLength === 0 || keyLength > 128 || !TAG_CHARS.test(k)) throw new S3Error('InvalidTag', 'The TagKey you have provided is invalid');
    if (charCount(tags[k]!) > 256 || !TAG_CHARS.test(tags[k]!)) throw new S3Error('InvalidTag', 'The TagValue you have provided is invalid');
  }
}

/** Parses `x-amz-copy-source`: `bucket/key` or `/bucket/key`, URL-encoded, optionally `?versionId=`. */
export function parseCopySource(value: string): { bucket: string; key: string; versionId?: string } {
  let raw = value;
  let versionId: string | undefined;
  const q = raw.indexOf('?');
  if (q >= 0) {
    const params = new URLSearchParams(raw.slice(q + 1));
    versionId = params.get('versionId') ?? undefined;
    raw = raw.slice(0, q);
  }
  const badEncoding = () => new S3Error('InvalidArgument', 'Invalid copy source encoding', { fields: { ArgumentName: 'x-amz-copy-source' } });
  raw = headerUtf8(raw, badEncoding);
  let decoded: string;
  try {
    // decodeURIComponent refuses escapes of bytes that are not UTF-8 (`%FF`), rather than decoding them to U+FFFD.
    decoded = decodeURIComponent(raw);
  } catch {
    throw badEncoding();
  }
  if (decoded.startsWith('/')) decoded = decoded.slice(1);
  const slash = decoded.indexOf('/');
  // An empty bucket segment before a key (`//key`) is a bucket name, as a GET of `//key` reads it: InvalidBucketName.
  if (slash === 0 && decoded.length > 1) throw new S3Error('InvalidBucketName', 'The source bucket name is not valid.');
  if (slash < 0 || slash === decoded.length - 1) {
    throw new S3Error('InvalidArgument', 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey', {
      fields: { ArgumentName: 'x-amz-copy-source' },
    });
  }
  const bucket = decoded.slice(0, slash);
  // As for the request's own bucket (addressing.ts): `..` or a space must never reach a backend as a bucket.
  if (!plausibleBucketName(bucket)) throw new S3Error('InvalidBucketName', 'The source bucket name is not valid.');
  return { bucket, key: decoded.slice(slash + 1), versionId };
}

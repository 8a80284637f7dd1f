/**
 * Translations between the storage contract's shapes and the SDK's request and response fields: write metadata,
 * object metadata, conditions, ranges and tag sets.
 */
import type { HeadObjectCommandOutput, Tag } from '@aws-sdk/client-s3';
import type { IncomingHttpHeaders } from 'node:http';
import type { BodyInput, ChecksumAlgorithm, ChecksumType, Conditions, ObjectMeta, ObjectWriteMeta, RangeRequest, StoredChecksum, WriteConditions } from '../backend.ts';
import { normalizeEtag } from '../conditions.ts';
import { decodeWord, encodeWord } from '../encoded-words.ts';

/**
 * S3's Content-Type for an object written without one (what the embedded store answers, and AWS). Sent upstream
 * rather than left out: MinIO stores application/octet-stream, or a type guessed from the key's extension, instead.
 */
export const DEFAULT_CONTENT_TYPE = 'binary/octet-stream';

/** PutObject / CreateMultipartUpload / CopyObject (REPLACE) fields carrying the client's metadata. */
export function writeFields(meta: ObjectWriteMeta): {
  ContentType: string;
  ContentEncoding?: string;
  ContentDisposition?: string;
  ContentLanguage?: string;
  CacheControl?: string;
  Expires?: Date;
  Metadata: Record<string, string>;
} {
  const h = meta.headers;
  const expires = h.expires !== undefined ? new Date(h.expires) : undefined;
  return {
    ContentType: h.contentType ?? DEFAULT_CONTENT_TYPE,
    ContentEncoding: h.contentEncoding,
    ContentDisposition: h.contentDisposition,
    ContentLanguage: h.contentLanguage,
    CacheControl: h.cacheControl,
    // S3 stores Expires as a date; a value that is not one cannot be sent through the SDK's typed field.
    Expires: expires && !Number.isNaN(expires.getTime()) ? expires : undefined,
    // Node sends header values as latin1 while the SDK signs them as UTF-8, so non-ASCII values go up encoded.
    Metadata: Object.fromEntries(Object.entries(meta.userMetadata).map(([k, v]) => [k, encodeWord(v)])),
  };
}


/** The x-amz-tagging form of a tag set, or undefined for none. */
export function taggingHeader(tags: Record<string, string> | undefined): string | undefined {
  if (!tags || Object.keys(tags).length === 0) return undefined;
  return new URLSearchParams(tags).toString();
}

/** An SDK TagSet as a plain record. */
export function tagRecord(set: Tag[] | undefined): Record<string, string> {
  return Object.fromEntries((set ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
}

const CHECKSUM_FIELDS = [
  ['ChecksumCRC32', 'CRC32'],
  ['ChecksumCRC32C', 'CRC32C'],
  ['ChecksumCRC64NVME', 'CRC64NVME'],
  ['ChecksumSHA1', 'SHA1'],
  ['ChecksumSHA256', 'SHA256'],
] as const;

/** The checksum an upstream response reports, if any; a `-N` value is a composite one. */
export function checksumOf(out: Partial<Record<(typeof CHECKSUM_FIELDS)[number][0], string>> & { ChecksumType?: string }): StoredChecksum | undefined {
  for (const [field, algorithm] of CHECKSUM_FIELDS) {
    const value = out[field];
    if (!value) continue;
    const type: ChecksumType = out.ChecksumType === 'COMPOSITE' || value.includes('-') ? 'COMPOSITE' : 'FULL_OBJECT';
    return { algorithm: algorithm as ChecksumAlgorithm, value, type };
  }
  return undefined;
}

/** The SDK field carrying a checksum of `algorithm` (ChecksumCRC32 and so on). */
export function checksumField(algorithm: ChecksumAlgorithm): (typeof CHECKSUM_FIELDS)[number][0] {
  return CHECKSUM_FIELDS.find(([, a]) => a === algorithm)![0];
}

/**
 * How a verified client checksum travels upstream, so the upstream stores it with the object or part: the value
 * when the client sent it up front, else the algorithm alone (the SDK then computes the same checksum and sends it
 * as a trailer, since a trailing value is known only once the body has streamed).
 */
export function checksumUpload(input: Pick<BodyInput, 'announcedChecksum'>, known: StoredChecksum | undefined): Record<string, string> {
  if (known && (!known.type || known.type === 'FULL_OBJECT')) return { [checksumField(known.algorithm)]: known.value };
  if (input.announcedChecksum) return { ChecksumAlgorithm: input.announcedChecksum };
  return {};
}

/** Write conditions as SDK fields (PutObject, CompleteMultipartUpload, CopyObject destination). */
export function writeConditionFields(c: WriteConditions | undefined): { IfMatch?: string; IfNoneMatch?: string } {
  if (!c) return {};
  return { IfMatch: c.ifMatch, IfNoneMatch: c.ifNoneMatch };
}

/** The response fields metaOf() reads; HeadObject's and GetObject's outputs both have them. */
export type ObjectFields = Pick<
  HeadObjectCommandOutput,
  | 'ContentLength'
  | 'ETag'
  | 'LastModified'
  | 'ContentType'
  | 'ContentEncoding'
  | 'ContentDisposition'
  | 'ContentLanguage'
  | 'CacheControl'
  | 'ExpiresString'
  | 'Metadata'
  | 'ChecksumCRC32'
  | 'ChecksumCRC32C'
  | 'ChecksumCRC64NVME'
  | 'ChecksumSHA1'
  | 'ChecksumSHA256'
  | 'ChecksumType'
  | 'TagCount'
>;

/** ObjectMeta from a HeadObject/GetObject response; `size` overrides ContentLength for ranged reads. */
export function metaOf(key: string, out: ObjectFields, size = out.ContentLength ?? 0): ObjectMeta {
  const headers: ObjectMeta['headers'] = {};
  if (out.ContentType) headers.contentType = out.ContentType;
  if (out.ContentEncoding) headers.contentEncoding = out.ContentEncoding;
  if (out.ContentDisposition) headers.contentDisposition = out.ContentDisposition;
  if (out.ContentLanguage) headers.contentLanguage = out.ContentLanguage;
  if (out.CacheControl) headers.cacheControl = out.CacheControl;
  if (out.ExpiresString) headers.expires = out.ExpiresString;
  const userMetadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(out.Metadata ?? {})) userMetadata[k.toLowerCase()] = decodeWord(v);
  return {
    key,
    size,
    etag: normalizeEtag(out.ETag ?? ''),
    lastModified: out.LastModified ?? new Date(0),
    headers,
    userMetadata,
    checksum: checksumOf(out),
    ...(out.TagCount !== undefined ? { tagCount: out.TagCount } : {}),
  };
}

/** The number of parts a multipart ETag (`<hex>-<N>`) names, or 0 for a single-part object. */
export function partsCountOf(etag: string): number {
  const m = /-(\d+)$/.exec(etag);
  return m ? Number(m[1]) : 0;
}

/**
 * Conditions as upstream headers, with RFC 7232's precedence applied here: If-Unmodified-Since is dropped when
 * If-Match is present and If-Modified-Since when If-None-Match is, so every upstream answers like S3 does.
 */
export function conditionFields(c: Conditions | undefined): {
  IfMatch?: string;
  IfNoneMatch?: string;
  IfModifiedSince?: Date;
  IfUnmodifiedSince?: Date;
} {
  if (!c) return {};
  const valid = (d: Date | undefined) => (d && !Number.isNaN(d.getTime()) ? d : undefined);
  return {
    IfMatch: c.ifMatch,
    IfUnmodifiedSince: c.ifMatch === undefined ? valid(c.ifUnmodifiedSince) : undefined,
    IfNoneMatch: c.ifNoneMatch,
    IfModifiedSince: c.ifNoneMatch === undefined ? valid(c.ifModifiedSince) : undefined,
  };
}

/** The same conditions in their x-amz-copy-source-if-* form. */
export function copyConditionFields(c: Conditions | undefined): {
  CopySourceIfMatch?: string;
  CopySourceIfNoneMatch?: string;
  CopySourceIfModifiedSince?: Date;
  CopySourceIfUnmodifiedSince?: Date;
} {
  const f = conditionFields(c);
  return {
    CopySourceIfMatch: f.IfMatch,
    CopySourceIfNoneMatch: f.IfNoneMatch,
    CopySourceIfModifiedSince: f.IfModifiedSince,
    CopySourceIfUnmodifiedSince: f.IfUnmodifiedSince,
  };
}

/**
 * The Range header for a RangeRequest: `null` when the request selects nothing whatever the size (a zero suffix),
 * undefined when it is to be ignored (end before start: serve the whole object, as S3 does).
 */
export function rangeHeader(range: RangeRequest | undefined): string | undefined | null {
  if (!range) return undefined;
  switch (range.kind) {
    case 'bounded':
      return range.end < range.start ? undefined : `bytes=${range.start}-${range.end}`;
    case 'open':
      return `bytes=${range.start}-`;
    case 'suffix':
      return range.length <= 0 ? null : `bytes=-${range.length}`;
  }
}

/** Parses `bytes <start>-<end>/<size>`. */
export function parseContentRange(value: string | undefined): { start: number; end: number; size: number } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(value?.trim() ?? '');
  return m ? { start: Number(m[1]), end: Number(m[2]), size: Number(m[3]) } : undefined;
}

/** Headers of a value of the request-header table below: undefined leaves the header out. */
type HeaderValues = Record<string, string | undefined>;

/**
 * writeFields() as request headers, serialised as the SDK serialises them (dates in IMF-fixdate, metadata as
 * `x-amz-meta-*`, and S3's default type when the client gave none).
 */
export function writeHeaders(meta: ObjectWriteMeta): HeaderValues {
  const f = writeFields(meta);
  const h: HeaderValues = {
    'content-type': f.ContentType,
    'content-encoding': f.ContentEncoding,
    'content-disposition': f.ContentDisposition,
    'content-language': f.ContentLanguage,
    'cache-control': f.CacheControl,
    expires: f.Expires?.toUTCString(),
  };
  for (const [k, v] of Object.entries(f.Metadata)) h[`x-amz-meta-${k}`] = v;
  return h;
}

/** conditionFields() as request headers. */
export function conditionHeaders(c: Conditions | undefined): HeaderValues {
  const f = conditionFields(c);
  return {
    'if-match': f.IfMatch,
    'if-none-match': f.IfNoneMatch,
    'if-modified-since': f.IfModifiedSince?.toUTCString(),
    'if-unmodified-since': f.IfUnmodifiedSince?.toUTCString(),
  };
}

/** A checksumUpload() value as request headers (`x-amz-checksum-crc32: …`); the algorithm alone is not a header. */
export function checksumHeaders(known: StoredChecksum | undefined): HeaderValues {
  if (!known || (known.type && known.type !== 'FULL_OBJECT')) return {};
  return { [`x-amz-checksum-${known.algorithm.toLowerCase()}`]: known.value };
}

/** The ObjectFields of a HeadObject or GetObject answer's headers, as the SDK would have deserialised them. */
export function objectFieldsOf(h: IncomingHttpHeaders): ObjectFields {
  const one = (name: string): string | undefined => {
    const v = h[name];
    return Array.isArray(v) ? v.join(', ') : v;
  };
  const metadata: Record<string, string> = {};
  // for…in rather than Object.entries(): no array of pairs per answer (every upstream GET and HEAD passes here).
  for (const k in h) {
    const v = h[k];
    if (v !== undefined && k.startsWith('x-amz-meta-')) metadata[k.slice(11)] = Array.isArray(v) ? v.join(', ') : v;
  }
  const length = one('content-length');
  const modified = one('last-modified');
  const tags = one('x-amz-tagging-count');
  return {
    ContentLength: length !== undefined ? Number(length) : undefined,
    ETag: one('etag'),
    LastModified: modified !== undefined ? new Date(modified) : undefined,
    ContentType: one('content-type'),
    ContentEncoding: one('content-encoding'),
    ContentDisposition: one('content-disposition'),
    ContentLanguage: one('content-language'),
    CacheControl: one('cache-control'),
    ExpiresString: one('expires'),
    Metadata: metadata,
    ChecksumCRC32: one('x-amz-checksum-crc32'),
    ChecksumCRC32C: one('x-amz-checksum-crc32c'),
    ChecksumCRC64NVME: one('x-amz-checksum-crc64nvme'),
    ChecksumSHA1: one('x-amz-checksum-sha1'),
    ChecksumSHA256: one('x-amz-checksum-sha256'),
    ChecksumType: one('x-amz-checksum-type') as ObjectFields['ChecksumType'],
    TagCount: tags !== undefined ? Number(tags) : undefined,
  };
}

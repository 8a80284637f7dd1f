/**
 * Where gateway buckets, keys and the backend's own records live upstream.
 *
 * - `bucket` mapping: gateway bucket B is upstream bucket B; key K is K.
 * - `prefix` mapping: everything lives in one upstream bucket; key K of gateway bucket B is `B/K`, and bucket B
 *   itself is the empty marker object `_anvil/buckets/B` (its Last-Modified is the bucket's creation date). Bucket
 *   names cannot contain `_`, so no gateway bucket's prefix ever meets `_anvil/`.
 *
 * Records the backend keeps for itself sit under the gateway bucket's reserved `_anvil/` namespace (`B/_anvil/…`
 * with prefix mapping), which no client can read, write or list through the gateway:
 * - `_anvil/uploads/<hex(key)>!<uploadId>`: one JSON record per multipart upload in progress ({key, uploadId,
 *   initiated, meta}), written at create and removed at complete or abort. Upstream ListParts does not return an
 *   upload's metadata, and MinIO lists uploads of one exact key only, so listMultipartUploads reads these records.
 *   Hex of the UTF-8 bytes keeps byte order and turns key prefixes into name prefixes, so the upstream's own sorted
 *   listing pages uploads by key then uploadId. The hex is cut into 100-character path segments (MinIO refuses
 *   segments over 255 bytes, and the last one also carries the uploadId); `!` sorts below both `/` and hex digits, so a key's records precede those of its extensions.
 *   Keys over LONG_KEY_BYTES keep order only on their first LONG_KEY_BYTES bytes (`<hex(head)>/~<sha256(key)>`),
 *   to stay under the upstream's 1024-byte key limit.
 */
import { createHash } from 'node:crypto';
import { plausibleBucketName } from '../bucket-names.ts';
import { InvalidRequestError } from '../errors.ts';

/** The reserved namespace inside every gateway bucket. */
export const RESERVED = '_anvil/';
/** Where upload records live, relative to a gateway bucket. */
export const UPLOADS = `${RESERVED}uploads/`;
/** Where bucket markers live in the shared upstream bucket (prefix mapping). */
export const BUCKET_MARKERS = `${RESERVED}buckets/`;
/** Longest key, in UTF-8 bytes, whose record name is its full hex form. */
export const LONG_KEY_BYTES = 300;
/** Hex characters per path segment of a record name. */
const SEGMENT = 100;

/**
 * Bucket names a prefix-mapped bucket may have: those the gateway creates (no `_`, so no bucket's prefix meets
 * `_anvil/`). With bucket mapping, any bucket name's shape (bucket-names.ts).
 */
const PREFIX_BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{2,62}$/;

/**
 * Throws InvalidRequestError unless `bucket` may become part of an upstream address with `mapping`: a decoded `/`,
 * or `.` and `..`, which MinIO resolves as path segments into another bucket's keys or the reserved namespace, never
 * reaches the upstream, whatever the caller checked before.
 */
function requireBucketName(bucket: string, mapping: 'bucket' | 'prefix'): void {
  const ok = mapping === 'bucket' ? plausibleBucketName(bucket) : PREFIX_BUCKET_NAME.test(bucket);
  if (!ok) throw new InvalidRequestError('The specified bucket is not valid.');
}

/** An upstream object address. */
export interface Location {
  Bucket: string;
  Key: string;
}

/** How gateway names translate to upstream names for one mapping mode. */
export class Layout {
  constructor(
    readonly mapping: 'bucket' | 'prefix',
    /** The shared upstream bucket (prefix mapping only). */
    readonly shared = '',
  ) {
    if (mapping === 'prefix' && !shared) throw new Error('upstream mapping "prefix" needs ANVIL_UPSTREAM_BUCKET');
  }

  /** The upstream bucket holding gateway bucket `bucket`; InvalidRequestError for a name no bucket can have. */
  bucketOf(bucket: string): string {
    requireBucketName(bucket, this.mapping);
    return this.mapping === 'bucket' ? bucket : this.shared;
  }

  /** The upstream key prefix every key of `bucket` carries ('' with bucket mapping); InvalidRequestError as bucketOf. */
  prefixOf(bucket: string): string {
    requireBucketName(bucket, this.mapping);
    return this.mapping === 'bucket' ? '' : `${bucket}/`;
  }

  /** The upstream address of key `key` in gateway bucket `bucket`; InvalidRequestError for a key no upstream keeps as is. */
  object(bucket: string, key: string): Location {
    requireFaithfulKey(key);
    return { Bucket: this.bucketOf(bucket), Key: this.prefixOf(bucket) + key };
  }

  /** The gateway key of an upstream key listed under `bucket`. */
  keyOf(bucket: string, upstreamKey: string): string {
    return upstreamKey.slice(this.prefixOf(bucket).length);
  }

  /** The x-amz-copy-source value naming key `key` of gateway bucket `bucket`. */
  copySource(bucket: string, key: string): string {
    const loc = this.object(bucket, key);
    return `${loc.Bucket}/${loc.Key.split('/').map(encodeURIComponent).join('/')}`;
  }

  /** The marker object of a gateway bucket (prefix mapping). */
  marker(bucket: string): Location {
    requireBucketName(bucket, this.mapping);
    return { Bucket: this.shared, Key: BUCKET_MARKERS + bucket };
  }

  /** The upstream address of the record of upload `uploadId` of `key`. */
  uploadRecord(bucket: string, key: string, uploadId: string): Location {
    return this.object(bucket, `${UPLOADS}${recordName(key)}!${uploadId}`);
  }
}

/** Hex in path segments of SEGMENT characters; the same cut points for every key keep prefixes prefixes. */
function segmented(hex: string): string {
  return hex.replace(new RegExp(`(.{${SEGMENT}})(?=.)`, 'g'), '$1/');
}

/** The order-keeping name of a key inside the uploads namespace (the record adds `!<uploadId>`). */
export function recordName(key: string): string {
  const bytes = Buffer.from(key, 'utf8');
  if (bytes.length <= LONG_KEY_BYTES) return segmented(bytes.toString('hex'));
  return `${segmented(bytes.subarray(0, LONG_KEY_BYTES).toString('hex'))}/~${createHash('sha256').update(bytes).digest('hex')}`;
}

/** The name prefix every record of a key starting with `prefix` carries (bounded for long prefixes). */
export function recordPrefix(prefix: string): string {
  return segmented(Buffer.from(prefix, 'utf8').subarray(0, LONG_KEY_BYTES).toString('hex'));
}

/** Splits a record name (after UPLOADS) into its key, when the name holds it whole, and its uploadId. */
export function parseRecordName(name: string): { key?: string; uploadId: string } {
  const bang = name.indexOf('!');
  const head = name.slice(0, bang);
  const uploadId = name.slice(bang + 1);
  if (head.includes('~')) return { uploadId };
  return { key: Buffer.from(head.replaceAll('/', ''), 'hex').toString('utf8'), uploadId };
}

/** Matches every key unfaithfulKeyReason() has a reason for: a leading `/`, a `//`, a `.` or `..` segment. */
const MAYBE_UNFAITHFUL = /^\/|\/\/|(?:^|[/\\])\.\.?(?:[/\\]|$)/;

/**
 * Why an upstream may not store `key` under exactly that name, or undefined. S3 servers on a file system (MinIO) read
 * keys as paths: they drop a leading `/` and empty segments and refuse `.` and `..` segments (split on `/` or `\`),
 * so `//_anvil/x` would land on `_anvil/x`, and a `..` would either fail upstream or, elsewhere, climb out of a prefix
 * grant. A trailing `/` (a folder marker) and a backslash inside a segment are kept faithfully and allowed.
 */
export function unfaithfulKeyReason(key: string): string | undefined {
  // Every request's key passes here: one test clears the usual key without splitting it twice.
  if (!MAYBE_UNFAITHFUL.test(key)) return undefined;
  const segments = key.split('/');
  for (const [i, segment] of segments.entries()) {
    if (segment === '' && i < segments.length - 1) return i === 0 ? 'a leading "/"' : 'an empty path segment ("//")';
  }
  const dots = key.split(/[/\\]/).find((segment) => segment === '.' || segment === '..');
  return dots === undefined ? undefined : `a "${dots}" path segment`;
}

/** The InvalidRequestError (400) for a key the upstream would store under another name, or undefined. */
export function unfaithfulKeyError(key: string): InvalidRequestError | undefined {
  const reason = unfaithfulKeyReason(key);
  return reason === undefined ? undefined : new InvalidRequestError(`Object keys with ${reason} cannot be stored upstream under the same name`);
}

function requireFaithfulKey(key: string): void {
  const error = unfaithfulKeyError(key);
  if (error !== undefined) throw error;
}

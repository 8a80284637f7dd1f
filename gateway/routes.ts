/**
 * The routing table: method + level (service, bucket, object) + query marker or header → S3 operation and the API
 * family it needs. Scopes and the denial log read the same table, so the mapping lives once.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Family } from '../policy/types.ts';
import { S3Error } from './errors.ts';
import type { Operation } from './operation.ts';
import { AbortMultipartUpload } from './operations/abort-multipart-upload.ts';
import { CompleteMultipartUpload } from './operations/complete-multipart-upload.ts';
import { CopyObject } from './operations/copy-object.ts';
import { CreateBucket } from './operations/create-bucket.ts';
import { CreateMultipartUpload } from './operations/create-multipart-upload.ts';
import { DeleteBucket } from './operations/delete-bucket.ts';
import { DeleteObject } from './operations/delete-object.ts';
import { DeleteObjects } from './operations/delete-objects.ts';
import { GetBucketLocation } from './operations/get-bucket-location.ts';
import { GetBucketVersioning } from './operations/get-bucket-versioning.ts';
import { GetObject, HeadObject } from './operations/get-object.ts';
import { HeadBucket } from './operations/head-bucket.ts';
import { ListBuckets } from './operations/list-buckets.ts';
import { ListMultipartUploads } from './operations/list-multipart-uploads.ts';
import { ListObjectVersions } from './operations/list-object-versions.ts';
import { ListObjects } from './operations/list-objects.ts';
import { ListObjectsV2 } from './operations/list-objects-v2.ts';
import { ListParts } from './operations/list-parts.ts';
import { DeleteObjectTagging, GetObjectTagging, PutObjectTagging } from './operations/object-tagging.ts';
import { PutObject } from './operations/put-object.ts';
import { UploadPart } from './operations/upload-part.ts';
import { UploadPartCopy } from './operations/upload-part-copy.ts';
import { DeleteBucketTagging, GetBucketTagging, PutBucketTagging } from './operations/bucket-tagging.ts';
import { DeleteBucketCors, GetBucketCors, PutBucketCors } from './operations/bucket-cors.ts';
import { GetObjectAttributes } from './operations/get-object-attributes.ts';
import { PostObject } from './operations/post-object.ts';

/** Where in the URL space a request lands. */
export type Level = 'service' | 'bucket' | 'object';

/** What an operation is, wherever it is routed from. */
export interface OperationSpec {
  /** The API family a scope grant must name for the operation. */
  family: Family;
  /** Whether the request has a body that the operation reads (others get it drained). */
  body?: boolean;
  /** x-amz-checksum-* headers describe the object, not the request body (CompleteMultipartUpload). */
  objectChecksum?: boolean;
  /**
   * The bucket itself or its own configuration (CreateBucket, DeleteBucket, tagging, CORS): only a grant naming the
   * family on the whole bucket covers it, never one limited to a key prefix, and bucket:read is not implied by other
   * grants (policy/scopes.ts).
   */
  wholeBucket?: boolean;
  run: Operation;
}

/**
 * Every supported S3 operation by its AWS name. Tables keyed by OperationName (or by Family) make the compiler flag
 * whatever a new operation forgot; every other operation→family map is derived from this one.
 */
export const OPERATIONS = {
  ListBuckets: { family: 'bucket:read', run: ListBuckets },
  GetBucketLocation: { family: 'bucket:read', run: GetBucketLocation },
  GetBucketVersioning: { family: 'bucket:read', run: GetBucketVersioning },
  HeadBucket: { family: 'bucket:read', run: HeadBucket },
  GetBucketTagging: { family: 'bucket:read', wholeBucket: true, run: GetBucketTagging },
  PutBucketTagging: { family: 'bucket:admin', body: true, wholeBucket: true, run: PutBucketTagging },
  DeleteBucketTagging: { family: 'bucket:admin', wholeBucket: true, run: DeleteBucketTagging },
  GetBucketCors: { family: 'bucket:read', wholeBucket: true, run: GetBucketCors },
  PutBucketCors: { family: 'bucket:admin', body: true, wholeBucket: true, run: PutBucketCors },
  DeleteBucketCors: { family: 'bucket:admin', wholeBucket: true, run: DeleteBucketCors },
  // The bucket itself (AWS: s3:CreateBucket and s3:DeleteBucket apply to the bucket ARN only): deleting it drops its
  // configuration and every principal's uploads, so a grant limited to a key prefix covers neither.
  CreateBucket: { family: 'bucket:admin', body: true, wholeBucket: true, run: CreateBucket },
  DeleteBucket: { family: 'bucket:admin', wholeBucket: true, run: DeleteBucket },
  ListObjects: { family: 'object:list', run: ListObjects },
  ListObjectsV2: { family: 'object:list', run: ListObjectsV2 },
  ListObjectVersions: { family: 'object:list', run: ListObjectVersions },
  ListMultipartUploads: { family: 'object:list', run: ListMultipartUploads },
  GetObject: { family: 'object:read', run: GetObject },
  HeadObject: { family: 'object:read', run: HeadObject },
  GetObjectTagging: { family: 'object:read', run: GetObjectTagging },
  GetObjectAttributes: { family: 'object:read', run: GetObjectAttributes },
  PutObject: { family: 'object:write', body: true, run: PutObject },
  // A browser form upload: the key, the credential and the signature travel in the multipart/form-data body.
  PostObject: { family: 'object:write', body: true, run: PostObject },
  CopyObject: { family: 'object:write', run: CopyObject },
  PutObjectTagging: { family: 'object:write', body: true, run: PutObjectTagging },
  DeleteObjectTagging: { family: 'object:write', run: DeleteObjectTagging },
  CreateMultipartUpload: { family: 'object:write', run: CreateMultipartUpload },
  UploadPart: { family: 'object:write', body: true, run: UploadPart },
  UploadPartCopy: { family: 'object:write', run: UploadPartCopy },
  CompleteMultipartUpload: { family: 'object:write', body: true, objectChecksum: true, run: CompleteMultipartUpload },
  AbortMultipartUpload: { family: 'object:write', run: AbortMultipartUpload },
  ListParts: { family: 'object:write', run: ListParts },
  DeleteObject: { family: 'object:delete', run: DeleteObject },
  DeleteObjects: { family: 'object:delete', body: true, run: DeleteObjects },
} as const satisfies Record<string, OperationSpec>;

/** An S3 operation name as AWS spells it. */
export type OperationName = keyof typeof OPERATIONS;

/**
 * The operation label of a request naming a sub-resource the gateway does not implement: method and sub-resource
 * (`PUT ?acl`), as denial lines, access lines and metrics show it. Bounded: five methods (S3_METHODS) times the
 * names UNSUPPORTED and unimplementedSubresource know.
 */
export type UnimplementedLabel = `${string} ?${string}`;

/** Where an operation is found: method, level, and the query marker or header that tells it from its neighbours. */
interface RouteRow {
  op: OperationName;
  method: string;
  level: Level;
  /** Query parameter that must be present (`uploads`, `tagging`, `list-type=2` as name=value). */
  marker?: string;
  /** The request carries x-amz-copy-source (CopyObject, UploadPartCopy). */
  copy?: boolean;
}

/** One row of the table, with its operation's spec; or an unimplemented sub-resource, routed to be authorized. */
export type Route = (RouteRow | (Omit<RouteRow, 'op'> & { op: UnimplementedLabel })) & OperationSpec;

/** Where each operation is routed. More specific rows (with a marker or copy flag) come before their plain forms. */
const ROWS = [
  { op: 'ListBuckets', method: 'GET', level: 'service' },

  { op: 'GetBucketLocation', method: 'GET', level: 'bucket', marker: 'location' },
  { op: 'GetBucketVersioning', method: 'GET', level: 'bucket', marker: 'versioning' },
  { op: 'GetBucketTagging', method: 'GET', level: 'bucket', marker: 'tagging' },
  { op: 'PutBucketTagging', method: 'PUT', level: 'bucket', marker: 'tagging' },
  { op: 'DeleteBucketTagging', method: 'DELETE', level: 'bucket', marker: 'tagging' },
  { op: 'GetBucketCors', method: 'GET', level: 'bucket', marker: 'cors' },
  { op: 'PutBucketCors', method: 'PUT', level: 'bucket', marker: 'cors' },
  { op: 'DeleteBucketCors', method: 'DELETE', level: 'bucket', marker: 'cors' },
  { op: 'ListObjectVersions', method: 'GET', level: 'bucket', marker: 'versions' },
  { op: 'ListMultipartUploads', method: 'GET', level: 'bucket', marker: 'uploads' },
  { op: 'ListObjectsV2', method: 'GET', level: 'bucket', marker: 'list-type=2' },
  { op: 'ListObjects', method: 'GET', level: 'bucket' },
  { op: 'HeadBucket', method: 'HEAD', level: 'bucket' },
  { op: 'CreateBucket', method: 'PUT', level: 'bucket' },
  { op: 'DeleteBucket', method: 'DELETE', level: 'bucket' },
  { op: 'DeleteObjects', method: 'POST', level: 'bucket', marker: 'delete' },
  { op: 'PostObject', method: 'POST', level: 'bucket' },

  { op: 'ListParts', method: 'GET', level: 'object', marker: 'uploadId' },
  { op: 'GetObjectTagging', method: 'GET', level: 'object', marker: 'tagging' },
  { op: 'GetObjectAttributes', method: 'GET', level: 'object', marker: 'attributes' },
  { op: 'GetObject', method: 'GET', level: 'object' },
  { op: 'HeadObject', method: 'HEAD', level: 'object' },
  { op: 'UploadPartCopy', method: 'PUT', level: 'object', marker: 'uploadId', copy: true },
  { op: 'UploadPart', method: 'PUT', level: 'object', marker: 'uploadId' },
  { op: 'PutObjectTagging', method: 'PUT', level: 'object', marker: 'tagging' },
  { op: 'CopyObject', method: 'PUT', level: 'object', copy: true },
  { op: 'PutObject', method: 'PUT', level: 'object' },
  { op: 'CreateMultipartUpload', method: 'POST', level: 'object', marker: 'uploads' },
  { op: 'CompleteMultipartUpload', method: 'POST', level: 'object', marker: 'uploadId' },
  { op: 'AbortMultipartUpload', method: 'DELETE', level: 'object', marker: 'uploadId' },
  { op: 'DeleteObjectTagging', method: 'DELETE', level: 'object', marker: 'tagging' },
  { op: 'DeleteObject', method: 'DELETE', level: 'object' },
] as const satisfies readonly RouteRow[];

/** Compile-time check: an operation in OPERATIONS that no row routes is an error here, naming the operation. */
type Unrouted = Exclude<OperationName, (typeof ROWS)[number]['op']>;
const EVERY_OPERATION_ROUTED: [Unrouted] extends [never] ? true : Unrouted = true;
void EVERY_OPERATION_ROUTED;

/** The routing table: every row joined with its operation's family, body flag and handler. */
export const ROUTES: readonly Route[] = ROWS.map((row: RouteRow) => {
  const { family, run } = OPERATIONS[row.op];
  const body = 'body' in OPERATIONS[row.op] ? true : undefined;
  const objectChecksum = 'objectChecksum' in OPERATIONS[row.op] ? true : undefined;
  const wholeBucket = 'wholeBucket' in OPERATIONS[row.op] ? true : undefined;
  return { ...row, family, run, ...(body ? { body } : {}), ...(objectChecksum ? { objectChecksum } : {}), ...(wholeBucket ? { wholeBucket } : {}) };
});

/** A route's query marker split once (`list-type=2` → name `list-type`, value `2`), not on every request. */
interface Candidate {
  route: Route;
  markerName?: string;
  markerValue?: string;
}

/** The routes of each level, in table order, with their markers split. */
const BY_LEVEL: Record<Level, Candidate[]> = { service: [], bucket: [], object: [] };
for (const route of ROUTES) {
  const [markerName, markerValue] = route.marker === undefined ? [] : route.marker.split('=');
  BY_LEVEL[route.level].push({ route, markerName, markerValue });
}

/**
 * S3 subresources the gateway does not implement. A request naming one answers NotImplemented instead of falling
 * through to a plain GET/PUT (a PUT ?acl must never overwrite the object with an ACL document).
 */
const UNSUPPORTED = new Set([
  'accelerate', 'acl', 'analytics', 'encryption', 'intelligent-tiering', 'inventory',
  'legal-hold', 'lifecycle', 'logging', 'metadataConfiguration', 'metadataTable', 'metrics', 'notification',
  'object-lock', 'ownershipControls', 'policy', 'policyStatus', 'publicAccessBlock', 'replication', 'requestPayment',
  'restore', 'retention', 'select', 'session', 'torrent', 'website', 'renameObject',
]);

/** Why no route matched: an unsupported method or resource (501) or a method the resource does not take (405). */
export type RouteMiss = { miss: 'NotImplemented' | 'MethodNotAllowed' };

/** Methods S3 operations use; any other is answered by the table (405 or 501), so labels stay few. */
const S3_METHODS = new Set(['GET', 'HEAD', 'PUT', 'POST', 'DELETE']);

/** The unimplemented sub-resource a request names, if any. */
function unimplementedSubresource(method: string, level: Level, query: URLSearchParams): string | undefined {
  if (!S3_METHODS.has(method)) return undefined;
  for (const name of query.keys()) if (UNSUPPORTED.has(name)) return name;
  // Versioning writes are a subresource too, just not implemented; bucket and object subresources stay in their level.
  if (level === 'bucket' && query.has('versioning') && method !== 'GET') return 'versioning';
  if (level === 'object' && query.has('cors')) return 'cors';
  if (level !== 'object' && query.has('attributes')) return 'attributes';
  return undefined;
}

/**
 * The route of a request naming an unimplemented sub-resource. It is authenticated and authorized like the
 * operations it stands beside, so that only a caller who may act on the target learns it is not implemented, and
 * everyone else (anonymous, out of scope, another tenant's or a missing bucket, a reserved key) gets the 403 and the
 * denial line any request would: the same order as an unsupported header (request-features.ts). Reads of an
 * object's sub-resource need object:read, changes object:write; a bucket's are its configuration, so bucket:read
 * (changes bucket:admin) on the whole bucket, as GetBucketCors and PutBucketCors. s3cmd `info` reads `?policy`,
 * `?cors` and `?acl` and accepts 501 from each (403 only from `?policy`).
 */
function unimplementedRoute(method: string, level: Level, subresource: string): Route {
  const reads = method === 'GET' || method === 'HEAD';
  const family = level === 'object' ? (reads ? 'object:read' : 'object:write') : reads ? 'bucket:read' : 'bucket:admin';
  const message = `${method} with the ${subresource} subresource is not implemented by this gateway`;
  return {
    op: `${method} ?${subresource}`,
    method,
    level,
    family,
    ...(level === 'object' ? {} : { wholeBucket: true }),
    run: () => Promise.reject(new S3Error('NotImplemented', message)),
  };
}

/** Finds the route for a request, or says why there is none. */
export function matchRoute(
  method: string,
  level: Level,
  query: URLSearchParams,
  headers: IncomingHttpHeaders,
): Route | RouteMiss {
  const subresource = unimplementedSubresource(method, level, query);
  if (subresource !== undefined) return unimplementedRoute(method, level, subresource);
  const copy = headers['x-amz-copy-source'] !== undefined;
  const candidates = BY_LEVEL[level];
  for (const { route: r, markerName, markerValue } of candidates) {
    if (r.method !== method) continue;
    if (markerName !== undefined) {
      if (!query.has(markerName)) continue;
      if (markerValue !== undefined && query.get(markerName) !== markerValue) continue;
    }
    if (r.copy !== undefined && r.copy !== copy) continue;
    return r;
  }
  if (method === 'POST' || method === 'OPTIONS') return { miss: 'NotImplemented' };
  return { miss: candidates.length > 0 ? 'MethodNotAllowed' : 'NotImplemented' };
}

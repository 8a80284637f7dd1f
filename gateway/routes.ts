/**
 * The routing table: method + level (service, bucket, object) + query marker or header → S3 operation and the API
 * family it needs. Scopes and the denial log read the same table, so the mapping lives once.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Family } from '../policy/types.ts';
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

/** Where in the URL space a request lands. */
export type Level = 'service' | 'bucket' | 'object';

/** One row of the table. */
export interface Route {
  op: string;
  method: string;
  level: Level;
  /** Query parameter that must be present (`uploads`, `tagging`, `list-type=2` as name=value). */
  marker?: string;
  /** The request carries x-amz-copy-source (CopyObject, UploadPartCopy). */
  copy?: boolean;
  family: Family;
  /** Whether the request has a body that the operation reads (others get it drained). */
  body?: boolean;
  run: Operation;
}

/** Every supported operation. More specific rows (with a marker or copy flag) come before their plain forms. */
export const ROUTES: Route[] = [
  { op: 'ListBuckets', method: 'GET', level: 'service', family: 'bucket:read', run: ListBuckets },

  { op: 'GetBucketLocation', method: 'GET', level: 'bucket', marker: 'location', family: 'bucket:read', run: GetBucketLocation },
  { op: 'GetBucketVersioning', method: 'GET', level: 'bucket', marker: 'versioning', family: 'bucket:read', run: GetBucketVersioning },
  { op: 'ListObjectVersions', method: 'GET', level: 'bucket', marker: 'versions', family: 'object:list', run: ListObjectVersions },
  { op: 'ListMultipartUploads', method: 'GET', level: 'bucket', marker: 'uploads', family: 'object:list', run: ListMultipartUploads },
  { op: 'ListObjectsV2', method: 'GET', level: 'bucket', marker: 'list-type=2', family: 'object:list', run: ListObjectsV2 },
  { op: 'ListObjects', method: 'GET', level: 'bucket', family: 'object:list', run: ListObjects },
  { op: 'HeadBucket', method: 'HEAD', level: 'bucket', family: 'bucket:read', run: HeadBucket },
  { op: 'CreateBucket', method: 'PUT', level: 'bucket', family: 'bucket:admin', body: true, run: CreateBucket },
  { op: 'DeleteBucket', method: 'DELETE', level: 'bucket', family: 'bucket:admin', run: DeleteBucket },
  { op: 'DeleteObjects', method: 'POST', level: 'bucket', marker: 'delete', family: 'object:delete', body: true, run: DeleteObjects },

  { op: 'ListParts', method: 'GET', level: 'object', marker: 'uploadId', family: 'object:write', run: ListParts },
  { op: 'GetObjectTagging', method: 'GET', level: 'object', marker: 'tagging', family: 'object:read', run: GetObjectTagging },
  { op: 'GetObject', method: 'GET', level: 'object', family: 'object:read', run: GetObject },
  { op: 'HeadObject', method: 'HEAD', level: 'object', family: 'object:read', run: HeadObject },
  { op: 'UploadPartCopy', method: 'PUT', level: 'object', marker: 'uploadId', copy: true, family: 'object:write', run: UploadPartCopy },
  { op: 'UploadPart', method: 'PUT', level: 'object', marker: 'uploadId', family: 'object:write', body: true, run: UploadPart },
  { op: 'PutObjectTagging', method: 'PUT', level: 'object', marker: 'tagging', family: 'object:write', body: true, run: PutObjectTagging },
  { op: 'CopyObject', method: 'PUT', level: 'object', copy: true, family: 'object:write', run: CopyObject },
  { op: 'PutObject', method: 'PUT', level: 'object', family: 'object:write', body: true, run: PutObject },
  { op: 'CreateMultipartUpload', method: 'POST', level: 'object', marker: 'uploads', family: 'object:write', run: CreateMultipartUpload },
  { op: 'CompleteMultipartUpload', method: 'POST', level: 'object', marker: 'uploadId', family: 'object:write', body: true, run: CompleteMultipartUpload },
  { op: 'AbortMultipartUpload', method: 'DELETE', level: 'object', marker: 'uploadId', family: 'object:write', run: AbortMultipartUpload },
  { op: 'DeleteObjectTagging', method: 'DELETE', level: 'object', marker: 'tagging', family: 'object:write', run: DeleteObjectTagging },
  { op: 'DeleteObject', method: 'DELETE', level: 'object', family: 'object:delete', run: DeleteObject },
];

/**
 * S3 subresources the gateway does not implement. A request naming one answers NotImplemented instead of falling
 * through to a plain GET/PUT (a PUT ?acl must never overwrite the object with an ACL document).
 */
const UNSUPPORTED = new Set([
  'accelerate', 'acl', 'analytics', 'attributes', 'cors', 'encryption', 'intelligent-tiering', 'inventory',
  'legal-hold', 'lifecycle', 'logging', 'metadataConfiguration', 'metadataTable', 'metrics', 'notification',
  'object-lock', 'ownershipControls', 'policy', 'policyStatus', 'publicAccessBlock', 'replication', 'requestPayment',
  'restore', 'retention', 'select', 'session', 'torrent', 'website', 'renameObject',
]);

/** Why no route matched: an unsupported feature (501) or a method the resource does not take (405). */
export type RouteMiss = { miss: 'NotImplemented' | 'MethodNotAllowed' };

/** Finds the route for a request, or says why there is none. */
export function matchRoute(
  method: string,
  level: Level,
  query: URLSearchParams,
  headers: IncomingHttpHeaders,
): Route | RouteMiss {
  for (const name of query.keys()) if (UNSUPPORTED.has(name)) return { miss: 'NotImplemented' };
  // Bucket-level tagging and versioning writes are subresources too, just not implemented at that level.
  if (level === 'bucket' && (query.has('tagging') || (query.has('versioning') && method !== 'GET'))) {
    return { miss: 'NotImplemented' };
  }
  const copy = headers['x-amz-copy-source'] !== undefined;
  let sameResource = false;
  for (const r of ROUTES) {
    if (r.level !== level) continue;
    sameResource = true;
    if (r.method !== method) continue;
    if (r.marker !== undefined) {
      const [name, value] = r.marker.split('=');
      if (!query.has(name!)) continue;
      if (value !== undefined && query.get(name!) !== value) continue;
    }
    if (r.copy !== undefined && r.copy !== copy) continue;
    return r;
  }
  if (method === 'POST' || method === 'OPTIONS') return { miss: 'NotImplemented' };
  return { miss: sameResource ? 'MethodNotAllowed' : 'NotImplemented' };
}

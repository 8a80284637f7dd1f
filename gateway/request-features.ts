/**
 * Request features the gateway does not implement, refused instead of silently ignored: a client that asks for
 * object lock, server-side encryption, a storage class or an ACL it will not get must learn so, not find a plain
 * object later (S3 answers NotImplemented for functionality a header implies and it lacks). Values that mean what
 * the gateway does anyway (`x-amz-acl: private`, `STANDARD`, `BucketOwnerEnforced`) pass.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { S3Error } from './errors.ts';

/** A header that may only carry these values (lower-cased), or none at all when the list is empty. */
interface HeaderRule {
  header: string;
  allowed: readonly string[];
  /** Operations the rule applies to; every operation when absent. */
  ops?: readonly string[];
}

const OBJECT_WRITES = ['PutObject', 'CopyObject', 'CreateMultipartUpload', 'PostObject'];

const HEADER_RULES: readonly HeaderRule[] = [
  { header: 'x-amz-bucket-object-lock-enabled', allowed: ['false'] },
  { header: 'x-amz-object-lock-mode', allowed: [] },
  { header: 'x-amz-object-lock-retain-until-date', allowed: [] },
  { header: 'x-amz-object-lock-legal-hold', allowed: ['off'] },
  { header: 'x-amz-server-side-encryption', allowed: [] },
  { header: 'x-amz-server-side-encryption-customer-algorithm', allowed: [] },
  { header: 'x-amz-server-side-encryption-aws-kms-key-id', allowed: [] },
  { header: 'x-amz-server-side-encryption-context', allowed: [] },
  { header: 'x-amz-server-side-encryption-bucket-key-enabled', allowed: ['false'] },
  { header: 'x-amz-copy-source-server-side-encryption-customer-algorithm', allowed: [] },
  { header: 'x-amz-storage-class', allowed: ['standard'], ops: OBJECT_WRITES },
  { header: 'x-amz-website-redirect-location', allowed: [] },
  { header: 'x-amz-acl', allowed: ['private', 'bucket-owner-full-control'] },
  { header: 'x-amz-grant-full-control', allowed: [] },
  { header: 'x-amz-grant-read', allowed: [] },
  { header: 'x-amz-grant-read-acp', allowed: [] },
  { header: 'x-amz-grant-write', allowed: [] },
  { header: 'x-amz-grant-write-acp', allowed: [] },
  { header: 'x-amz-object-ownership', allowed: ['bucketownerenforced'] },
  { header: 'x-amz-write-offset-bytes', allowed: [] },
  { header: 'x-amz-mfa', allowed: [] },
  // Conditional deletes (If-Match and the directory-bucket forms) would otherwise delete unconditionally.
  { header: 'if-match', allowed: [], ops: ['DeleteObject'] },
  { header: 'if-none-match', allowed: [], ops: ['DeleteObject'] },
  { header: 'x-amz-if-match-last-modified-time', allowed: [], ops: ['DeleteObject'] },
  { header: 'x-amz-if-match-size', allowed: [], ops: ['DeleteObject'] },
];

/** The headers some rule above names: most requests carry none of them, and skip the rules. */
const RULED_HEADERS = new Set(HEADER_RULES.map((r) => r.header));

/** Storage classes S3 knows: any other value is InvalidStorageClass rather than NotImplemented. */
const STORAGE_CLASSES = new Set([
  'standard', 'reduced_redundancy', 'standard_ia', 'onezone_ia', 'intelligent_tiering', 'glacier', 'deep_archive',
  'outposts', 'glacier_ir', 'snow', 'express_onezone', 'fsx_openzfs',
]);

/** Operations that address one version of an object with ?versionId=; only `null` exists in unversioned buckets. */
const VERSIONED_OPS = new Set(['GetObject', 'HeadObject', 'DeleteObject', 'GetObjectTagging', 'PutObjectTagging', 'DeleteObjectTagging', 'GetObjectAttributes']);

/**
 * Throws NotImplemented (or InvalidStorageClass / InvalidArgument where S3 answers so) when the request asks for a
 * feature the gateway lacks; returns otherwise.
 */
export function refuseUnsupportedFeatures(op: string, headers: IncomingHttpHeaders, query: URLSearchParams): void {
  // A request's few headers are looked at instead of the two dozen rules; the rules then decide in their own order.
  let ruled = false;
  for (const name in headers) if (RULED_HEADERS.has(name)) ruled = true;
  if (ruled) refuseUnsupportedHeaders(op, headers);
  const versionId = query.get('versionId');
  if (versionId !== null && VERSIONED_OPS.has(op) && versionId !== 'null') {
    throw new S3Error('InvalidArgument', 'Invalid version id specified', { fields: { ArgumentName: 'versionId', ArgumentValue: versionId } });
  }
}

/** The header half of refuseUnsupportedFeatures: the first rule (in HEADER_RULES' order) a header breaks throws. */
function refuseUnsupportedHeaders(op: string, headers: IncomingHttpHeaders): void {
  for (const rule of HEADER_RULES) {
    const raw = headers[rule.header];
    if (raw === undefined || (rule.ops && !rule.ops.includes(op))) continue;
    const value = (Array.isArray(raw) ? raw.join(',') : raw).trim().toLowerCase();
    if (rule.allowed.includes(value)) continue;
    if (rule.header === 'x-amz-storage-class' && !STORAGE_CLASSES.has(value)) {
      throw new S3Error('InvalidStorageClass');
    }
    throw new S3Error('NotImplemented', `The ${rule.header} header is not implemented by this gateway`, { fields: { Header: rule.header } });
  }
}

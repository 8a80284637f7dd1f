/** DeleteObjects: up to 1000 keys, each authorized on its own; a refused key fails alone, the rest proceed. */
import { createHash } from 'node:crypto';
import { S3Error } from '../errors.ts';
import { xmlResult, type Operation } from '../operation.ts';
import { header } from '../s3-headers.ts';
import { list, parseXmlBody, text } from '../xml.ts';
import { contentMd5 } from './put-object.ts';
import { keyError } from '../addressing.ts';
import { toS3Error } from '../error-mapping.ts';

/** Most keys one DeleteObjects request may name. */
const MAX_KEYS = 1000;

export const DeleteObjects: Operation = async (op) => {
  const md5 = contentMd5(op);
  const hasChecksum = Object.keys(op.headers).some((h) => h.startsWith('x-amz-checksum-'));
  if (!md5 && !hasChecksum) {
    throw new S3Error('InvalidRequest', 'Missing required header for this request: Content-MD5');
  }
  const body = await op.readText(2 * 1024 * 1024);
  // readText decodes strictly, so the text's UTF-8 is byte for byte the body received: the digest is of those bytes.
  if (md5 && !createHash('md5').update(body, 'utf8').digest().equals(md5)) throw new S3Error('BadDigest');
  // Object, Key and VersionId (and S3's ETag/LastModifiedTime/Size conditions) per key, plus Delete and Quiet.
  const doc = parseXmlBody(body, 'Delete', { maxElements: MAX_KEYS * 6 + 2 });
  const quiet = text(doc, 'Quiet')?.trim().toLowerCase() === 'true';
  const objects = list(doc, 'Object');
  if (objects.length === 0 || objects.length > MAX_KEYS) throw new S3Error('MalformedXML');
  await op.services.backend.headBucket(op.bucket);

  const deleted: Array<Record<string, string>> = [];
  const errors: Array<Record<string, string>> = [];
  const allowed: string[] = [];
  for (const o of objects) {
    const key = text(o, 'Key');
    if (key === undefined) throw new S3Error('MalformedXML');
    const versionId = text(o, 'VersionId');
    // Per-object conditions (DeleteObjects API reference: ETag, LastModifiedTime, Size) would be ignored otherwise.
    if (['ETag', 'LastModifiedTime', 'Size'].some((n) => o[n] !== undefined)) {
      throw new S3Error('NotImplemented', 'Conditional deletes are not implemented by this gateway');
    }
    const invalid = keyError(key);
    if (invalid) {
      errors.push({ Key: key, Code: invalid.code, Message: invalid.message });
    } else if (versionId !== undefined && versionId !== 'null') {
      errors.push({ Key: key, Code: 'NoSuchVersion', Message: 'The specified version does not exist.' });
    } else if (!(await op.access.allows('object:delete', op.bucket, key))) {
      errors.push({ Key: key, Code: 'AccessDenied', Message: 'Access Denied' });
    } else {
      allowed.push(key);
    }
  }
  // Decided as the request started; the bucket must still be the caller's tenant's once its (perhaps slow) body came.
  if (allowed.length > 0) await op.access.ownerCheck(op.bucket)?.();
  const results = allowed.length ? await op.services.backend.deleteObjects(op.bucket, allowed) : [];
  for (const r of results) {
    // A key the client got wrong (say, one the upstream cannot store as spelled) says so; anything else is internal.
    const known = r.error ? toS3Error(r.error) : undefined;
    if (known && known.status < 500) errors.push({ Key: r.key, Code: known.code, Message: known.message });
    else if (r.error) errors.push({ Key: r.key, Code: 'InternalError', Message: 'We encountered an internal error. Please try again.' });
    else if (!quiet) deleted.push({ Key: r.key });
  }
  return xmlResult('DeleteResult', { Deleted: deleted, Error: errors });
};

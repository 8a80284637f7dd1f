/** CreateBucket: S3's naming rules, an optional LocationConstraint that must name our region, tenant ownership. */
import { ConflictError } from '../../policy/index.ts';
import { BucketAlreadyExistsError } from '../../storage/errors.ts';
import { S3Error } from '../errors.ts';
import type { Operation } from '../operation.ts';
import { parseXmlBody, text } from '../xml.ts';

/** S3's bucket naming rules for new buckets (general purpose buckets, current rules). */
export function validBucketName(name: string): boolean {
  if (name.length < 3 || name.length > 63) return false;
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name)) return false;
  if (name.includes('..') || name.includes('.-') || name.includes('-.')) return false;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return false;
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(name) || /(-s3alias|--ol-s3|\.mrap|--x-s3)$/.test(name)) return false;
  return true;
}

export const CreateBucket: Operation = async (op) => {
  if (!validBucketName(op.bucket)) throw new S3Error('InvalidBucketName', undefined, { fields: { BucketName: op.bucket } });
  const body = await op.readText(64 * 1024);
  if (body.trim() !== '') {
    const conf = parseXmlBody(body, 'CreateBucketConfiguration', { maxElements: 32 });
    const location = text(conf, 'LocationConstraint');
    if (location && location !== op.services.config.region) {
      throw new S3Error('InvalidLocationConstraint');
    }
  }
  try {
    await op.services.backend.createBucket(op.bucket);
  } catch (err) {
    if (err instanceof BucketAlreadyExistsError) {
      if (!(await op.access.ownsBucket(op.bucket))) throw new S3Error('BucketAlreadyExists', undefined, { fields: { BucketName: op.bucket } });
      // "For legacy compatibility, if you re-create an existing bucket that you already own in the North Virginia
      // Region, Amazon S3 returns 200 OK" (CreateBucket API reference, BucketAlreadyOwnedByYou); elsewhere 409.
      // The bucket, its contents and its owner stay as they are.
      if (op.services.config.region === 'us-east-1') return { headers: { location: `/${op.bucket}` } };
      throw new S3Error('BucketAlreadyOwnedByYou', undefined, { fields: { BucketName: op.bucket } });
    }
    throw err;
  }
  try {
    await op.access.bucketCreated(op.bucket);
  } catch (err) {
    // The bucket exists in storage but its owner could not be recorded (the name was assigned to another tenant after
    // this request was authorized, or the policy database failed): it goes again, so a refusal leaves nothing behind
    // (a bucket without an owner would be root's alone). It is empty: nobody else could reach it yet but root.
    await op.services.backend.deleteBucket(op.bucket).catch(() => {});
    if (err instanceof ConflictError) throw new S3Error('BucketAlreadyExists', undefined, { fields: { BucketName: op.bucket } });
    throw err;
  }
  return { headers: { location: `/${op.bucket}` } };
};

/** GetBucketTagging, PutBucketTagging, DeleteBucketTagging (up to 50 tags; NoSuchTagSet when none, as S3 answers). */
import { S3Error } from '../errors.ts';
import type { Operation } from '../operation.ts';
import { parseTagging, taggingResult } from './object-tagging.ts';

/** Most tags a bucket may carry (PutBucketTagging API reference). */
const MAX_BUCKET_TAGS = 50;

export const GetBucketTagging: Operation = async (op) => {
  const tags = await op.services.backend.getBucketTagging(op.bucket);
  if (Object.keys(tags).length === 0) throw new S3Error('NoSuchTagSet', undefined, { fields: { BucketName: op.bucket } });
  return taggingResult(tags);
};

export const PutBucketTagging: Operation = async (op) => {
  const tags = parseTagging(await op.readText(64 * 1024), MAX_BUCKET_TAGS);
  await op.access.ownerCheck(op.bucket)?.();
  await op.services.backend.putBucketTagging(op.bucket, tags);
  return { status: 204 };
};

export const DeleteBucketTagging: Operation = async (op) => {
  await op.services.backend.putBucketTagging(op.bucket, {});
  return { status: 204 };
};

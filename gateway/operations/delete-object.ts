/** DeleteObject: succeeds whether or not the key existed, as S3 does for unversioned buckets. */
import type { Operation } from '../operation.ts';

export const DeleteObject: Operation = async (op) => {
  await op.services.backend.headBucket(op.bucket);
  await op.services.backend.deleteObject(op.bucket, op.key);
  return { status: 204 };
};

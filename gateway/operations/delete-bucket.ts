/** DeleteBucket: refused while objects or uploads remain (BucketNotEmpty). */
import type { Operation } from '../operation.ts';

export const DeleteBucket: Operation = async (op) => {
  await op.services.backend.deleteBucket(op.bucket);
  await op.access.bucketDeleted(op.bucket);
  return { status: 204 };
};

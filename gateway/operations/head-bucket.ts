/** HeadBucket: 200 when the bucket exists and the caller may use it; errors carry no body, as in S3. */
import type { Operation } from '../operation.ts';

export const HeadBucket: Operation = async (op) => {
  await op.services.backend.headBucket(op.bucket, { fresh: true });
  return { headers: { 'x-amz-bucket-region': op.services.config.region } };
};

/** GetBucketVersioning: buckets here are never versioned, which S3 spells as an empty configuration. */
import { xmlResult, type Operation } from '../operation.ts';

export const GetBucketVersioning: Operation = async (op) => {
  await op.services.backend.headBucket(op.bucket, { fresh: true });
  return xmlResult('VersioningConfiguration', {});
};

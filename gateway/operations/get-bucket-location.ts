/** GetBucketLocation: the gateway's one region; us-east-1 is spelled as an empty constraint, as S3 does. */
import { xmlResult, type Operation } from '../operation.ts';

export const GetBucketLocation: Operation = async (op) => {
  await op.services.backend.headBucket(op.bucket, { fresh: true });
  const region = op.services.config.region;
  return xmlResult('LocationConstraint', region === 'us-east-1' ? {} : { '#text': region });
};

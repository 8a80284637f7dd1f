/** GetBucketCors, PutBucketCors, DeleteBucketCors: the bucket's CORS rules (see gateway/cors.ts). */
import { corsDocument, parseCorsConfiguration } from '../cors.ts';
import { S3Error } from '../errors.ts';
import type { Operation } from '../operation.ts';

export const GetBucketCors: Operation = async (op) => {
  const doc = await op.services.backend.getBucketCors(op.bucket);
  if (doc === undefined) throw new S3Error('NoSuchCORSConfiguration', undefined, { fields: { BucketName: op.bucket } });
  return { headers: { 'content-type': 'application/xml' }, body: doc };
};

export const PutBucketCors: Operation = async (op) => {
  const rules = parseCorsConfiguration(await op.readText(64 * 1024));
  await op.access.ownerCheck(op.bucket)?.();
  await op.services.backend.putBucketCors(op.bucket, corsDocument(rules));
  return {};
};

export const DeleteBucketCors: Operation = async (op) => {
  await op.services.backend.putBucketCors(op.bucket, undefined);
  return { status: 204 };
};

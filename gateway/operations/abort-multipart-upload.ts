/** AbortMultipartUpload: discards the upload and its parts. */
import type { Operation } from '../operation.ts';

export const AbortMultipartUpload: Operation = async (op) => {
  await op.services.backend.abortMultipartUpload(op.bucket, op.key, op.query.get('uploadId') ?? '');
  return { status: 204 };
};

/** CreateMultipartUpload: records the upload with the metadata and tags the final object will carry. */
import { xmlResult, type Operation } from '../operation.ts';
import { header, parseTaggingHeader, writeMetaFromHeaders } from '../s3-headers.ts';

export const CreateMultipartUpload: Operation = async (op) => {
  const upload = await op.services.backend.createMultipartUpload({
    bucket: op.bucket,
    key: op.key,
    meta: writeMetaFromHeaders(op.headers),
    tags: parseTaggingHeader(header(op.headers, 'x-amz-tagging')),
  });
  return xmlResult('InitiateMultipartUploadResult', { Bucket: op.bucket, Key: op.key, UploadId: upload.uploadId });
};

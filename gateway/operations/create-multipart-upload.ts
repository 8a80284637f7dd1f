/** CreateMultipartUpload: records the upload with the metadata, tags and checksum settings the final object carries. */
import type { UploadChecksum } from '../../storage/backend.ts';
import { CHECKSUM_TYPES } from '../../storage/checksums.ts';
import { parseChecksumAlgorithm } from '../auth/checksums.ts';
import { S3Error } from '../errors.ts';
import { xmlResult, type OpContext, type Operation } from '../operation.ts';
import { header, parseTaggingHeader, writeMetaFromHeaders } from '../s3-headers.ts';

/**
 * x-amz-checksum-algorithm and x-amz-checksum-type as S3 validates them (CreateMultipartUpload API reference): a
 * type needs an algorithm, and each algorithm allows only some types (CRC64NVME full-object, SHAs composite).
 */
export function uploadChecksumOf(op: OpContext): UploadChecksum | undefined {
  const name = header(op.headers, 'x-amz-checksum-algorithm');
  const typeName = header(op.headers, 'x-amz-checksum-type')?.trim().toUpperCase();
  if (name === undefined) {
    if (typeName !== undefined) throw new S3Error('InvalidRequest', 'The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.');
    return undefined;
  }
  const algorithm = parseChecksumAlgorithm(name);
  if (!algorithm) throw new S3Error('InvalidRequest', 'Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]');
  const allowed = CHECKSUM_TYPES[algorithm];
  const type = typeName ?? allowed[0]!;
  if (!(allowed as readonly string[]).includes(type)) {
    throw new S3Error('InvalidRequest', `The ${type} checksum type cannot be used with the ${algorithm.toLowerCase()} checksum algorithm.`);
  }
  return { algorithm, type: type as UploadChecksum['type'] };
}

export const CreateMultipartUpload: Operation = async (op) => {
  const checksum = uploadChecksumOf(op);
  const upload = await op.services.backend.createMultipartUpload({
    bucket: op.bucket,
    key: op.key,
    meta: writeMetaFromHeaders(op.headers),
    tags: parseTaggingHeader(header(op.headers, 'x-amz-tagging')),
    checksum,
    beforeCommit: op.access.ownerCheck(op.bucket, op.key),
  });
  const result = xmlResult('InitiateMultipartUploadResult', { Bucket: op.bucket, Key: op.key, UploadId: upload.uploadId });
  if (checksum) result.headers = { ...result.headers, 'x-amz-checksum-algorithm': checksum.algorithm, 'x-amz-checksum-type': checksum.type };
  return result;
};

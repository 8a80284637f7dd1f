/** UploadPart: one part's verified body, replacing an earlier upload of the same part number. */
import { S3Error } from '../errors.ts';
import type { OpContext, Operation } from '../operation.ts';
import { announcedChecksum } from '../s3-headers.ts';
import { contentMd5 } from './put-object.ts';

/** Most bytes one part may hold. */
const MAX_PART_SIZE = 5 * 1024 ** 3;

/** partNumber and uploadId of a part request, validated as S3 does. */
export function partOf(op: OpContext): { partNumber: number; uploadId: string } {
  const raw = op.query.get('partNumber') ?? '';
  const partNumber = Number(raw);
  if (!/^\d+$/.test(raw) || partNumber < 1 || partNumber > 10000) {
    throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive', {
      fields: { ArgumentName: 'partNumber', ArgumentValue: raw },
    });
  }
  return { partNumber, uploadId: op.query.get('uploadId') ?? '' };
}

export const UploadPart: Operation = async (op) => {
  const { partNumber, uploadId } = partOf(op);
  if (op.bodyLength !== undefined && op.bodyLength > MAX_PART_SIZE) throw new S3Error('EntityTooLarge');
  const part = await op.services.backend.uploadPart({
    bucket: op.bucket,
    key: op.key,
    uploadId,
    partNumber,
    body: op.body(),
    size: op.bodyLength,
    contentMd5: contentMd5(op),
    finalChecksum: () => op.bodyChecksum(),
    announcedChecksum: announcedChecksum(op.headers),
    beforeCommit: op.access.ownerCheck(op.bucket, op.key),
  });
  const out: Record<string, string> = { etag: `"${part.etag}"` };
  const sum = part.checksum ?? op.bodyChecksum();
  if (sum) out[`x-amz-checksum-${sum.algorithm.toLowerCase()}`] = sum.value;
  return { headers: out };
};

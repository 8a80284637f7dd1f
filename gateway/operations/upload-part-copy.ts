/** UploadPartCopy: a part copied server-side from another object, optionally a byte range of it. */
import { S3Error } from '../errors.ts';
import { xmlResult, type Operation } from '../operation.ts';
import { conditionsFromHeaders, header } from '../s3-headers.ts';
import { isoTime } from '../xml.ts';
import { copySourceOf, withCopyConditions } from './copy-object.ts';
import { partOf } from './upload-part.ts';

function copyRange(value: string | undefined): { start: number; end: number } | undefined {
  if (value === undefined) return undefined;
  const m = /^bytes=(\d+)-(\d+)$/.exec(value.trim());
  if (!m || Number(m[2]) < Number(m[1])) {
    throw new S3Error('InvalidArgument', 'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy', {
      fields: { ArgumentName: 'x-amz-copy-source-range', ArgumentValue: value },
    });
  }
  return { start: Number(m[1]), end: Number(m[2]) };
}

export const UploadPartCopy: Operation = async (op) => {
  const { partNumber, uploadId } = partOf(op);
  const src = copySourceOf(op);
  const part = await withCopyConditions(() =>
    op.services.backend.uploadPartCopy({
      bucket: op.bucket,
      key: op.key,
      uploadId,
      partNumber,
      source: {
        ...src,
        range: copyRange(header(op.headers, 'x-amz-copy-source-range')),
        conditions: conditionsFromHeaders(op.headers, 'x-amz-copy-source-'),
      },
      beforeCommit: op.access.ownerCheck(op.bucket, op.key),
    }),
  );
  return xmlResult('CopyPartResult', { LastModified: isoTime(part.lastModified), ETag: `"${part.etag}"` });
};

/** PutObject: the verified body streams into storage; it becomes visible only once complete and durable. */
import { S3Error } from '../errors.ts';
import type { OpContext, Operation } from '../operation.ts';
import {
  announcedChecksum,
  checksumHeaders,
  header,
  headerChecksum,
  parseTaggingHeader,
  writeConditionsFromHeaders,
  writeMetaFromHeaders,
} from '../s3-headers.ts';

/** Largest single PUT S3 accepts. */
export const MAX_PUT_SIZE = 5 * 1024 ** 3;

/** Content-MD5 as raw bytes; anything that is not base64 of 16 bytes is InvalidDigest. */
export function contentMd5(op: OpContext): Buffer | undefined {
  return parseContentMd5(header(op.headers, 'content-md5'));
}

/** A Content-MD5 value (header or POST form field) as raw bytes; InvalidDigest unless base64 of 16 bytes. */
export function parseContentMd5(v: string | undefined): Buffer | undefined {
  if (v === undefined) return undefined;
  const raw = Buffer.from(v, 'base64');
  if (raw.length !== 16 || raw.toString('base64') !== v.trim()) throw new S3Error('InvalidDigest');
  return raw;
}

export const PutObject: Operation = async (op) => {
  if (op.bodyLength !== undefined && op.bodyLength > MAX_PUT_SIZE) throw new S3Error('EntityTooLarge');
  const meta = writeMetaFromHeaders(op.headers);
  const sent = headerChecksum(op.headers);
  if (sent) meta.checksum = sent;
  const tags = parseTaggingHeader(header(op.headers, 'x-amz-tagging'));
  const md5 = contentMd5(op);
  const stored = await op.services.backend.putObject({
    bucket: op.bucket,
    key: op.key,
    meta,
    tags,
    body: op.body(),
    size: op.bodyLength,
    contentMd5: md5,
    finalChecksum: () => op.bodyChecksum(),
    announcedChecksum: announcedChecksum(op.headers),
    writeConditions: writeConditionsFromHeaders(op.headers),
    beforeCommit: op.access.ownerCheck(op.bucket, op.key),
  });
  const sum = op.bodyChecksum();
  return { headers: { etag: `"${stored.etag}"`, ...(sum ? checksumHeaders(sum) : {}) } };
};

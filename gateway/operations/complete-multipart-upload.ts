/** CompleteMultipartUpload: assembles the listed parts; the object appears only when the index commits. */
import { createHash } from 'node:crypto';
import type { ObjectMeta, StoredChecksum } from '../../storage/backend.ts';
import { NoSuchUploadError, PreconditionFailedError } from '../../storage/errors.ts';
import { CHECKSUM_ALGORITHMS, assertChecksumValue } from '../auth/checksums.ts';
import { S3Error } from '../errors.ts';
import { xmlResult, type OpContext, type Operation } from '../operation.ts';
import { checksumHeaders, header, headerChecksum, writeConditionsFromHeaders } from '../s3-headers.ts';
import { list, parseXmlBody, text } from '../xml.ts';

/** S3's largest part count; the document is bounded to it (S3 quotas: 10,000 parts per upload). */
const MAX_PARTS = 10_000;
/** Elements a Part may hold: PartNumber, ETag and one checksum per algorithm. */
const ELEMENTS_PER_PART = 8;

export const CompleteMultipartUpload: Operation = async (op) => {
  const uploadId = op.query.get('uploadId') ?? '';
  const doc = parseXmlBody(await op.readText(4 * 1024 * 1024), 'CompleteMultipartUpload', { maxElements: MAX_PARTS * ELEMENTS_PER_PART + 2 });
  const parts = list(doc, 'Part').map((p) => {
    const n = text(p, 'PartNumber');
    const etag = text(p, 'ETag');
    if (n === undefined || etag === undefined || !/^\d+$/.test(n.trim())) throw new S3Error('MalformedXML');
    const sums = CHECKSUM_ALGORITHMS.flatMap((a) => {
      const v = text(p, `Checksum${a}`);
      return v === undefined ? [] : [v.trim()];
    });
    if (sums.length > 1) throw new S3Error('InvalidRequest', 'Expecting a single checksum per part.');
    return { partNumber: Number(n.trim()), etag: etag.trim().replace(/^"|"$/g, ''), ...(sums[0] !== undefined ? { checksum: sums[0] } : {}) };
  });
  if (parts.length === 0 || parts.length > MAX_PARTS) throw new S3Error('MalformedXML');
  const whole = headerChecksum(op.headers);
  const type = header(op.headers, 'x-amz-checksum-type')?.trim().toUpperCase();
  if (type !== undefined && type !== 'FULL_OBJECT' && type !== 'COMPOSITE') throw new S3Error('InvalidRequest', 'Value for x-amz-checksum-type header is invalid.');
  let checksum: StoredChecksum | undefined;
  if (whole) {
    const composite = /-\d+$/.test(whole.value);
    if (!composite) assertChecksumValue(whole.algorithm, whole.value);
    checksum = { ...whole, type: composite ? 'COMPOSITE' : ((type as StoredChecksum['type']) ?? 'FULL_OBJECT') };
  }
  const writeConditions = writeConditionsFromHeaders(op.headers);
  const meta = await op.services.backend
    .completeMultipartUpload({ bucket: op.bucket, key: op.key, uploadId, parts, writeConditions, ...(checksum ? { checksum } : {}), beforeCommit: op.access.ownerCheck(op.bucket, op.key) })
    .catch(async (err: unknown) => (await completedBefore(op, uploadId, parts, err)) ?? Promise.reject(err));
  const sum = meta.checksum;
  const result = xmlResult('CompleteMultipartUploadResult', {
    Location: `/${op.bucket}/${encodeURIComponent(op.key).replace(/%2F/g, '/')}`,
    Bucket: op.bucket,
    Key: op.key,
    ETag: `"${meta.etag}"`,
    ...(sum ? { [`Checksum${sum.algorithm}`]: sum.value, ChecksumType: sum.type ?? 'FULL_OBJECT' } : {}),
  });
  if (sum) result.headers = { ...result.headers, ...checksumHeaders(sum) };
  return result;
};

/**
 * The object a retried CompleteMultipartUpload already made, when `err` is how the backend refused the retry, the
 * upload is gone and the key's current object is exactly what these parts assemble into (its multipart ETag, the MD5
 * of the parts' MD5s with `-N`, matches); undefined otherwise. The API reference tells applications to retry a failed
 * CompleteMultipartUpload, and a retry after a lost answer finds its upload gone: it gets the completed object's
 * answer again instead of NoSuchUpload. Only a caller that names every part's ETag can match.
 * A conditional retry (If-None-Match: *, If-Match) is the same completion: the first attempt's success is what makes
 * its condition fail now (the key exists; its ETag is no longer the one named), so the retry is recognized before the
 * condition counts. The embedded store finds the upload gone first (NoSuchUpload); an upstream may evaluate the
 * condition first (MinIO answers 412), so on a 412 the upload is looked up: one that still exists is a real refusal.
 */
async function completedBefore(op: OpContext, uploadId: string, parts: Array<{ etag: string }>, err: unknown): Promise<ObjectMeta | undefined> {
  const gone = err instanceof NoSuchUploadError;
  if (!gone && !(err instanceof PreconditionFailedError)) return undefined;
  if (!parts.every((p) => /^[0-9a-f]{32}$/i.test(p.etag))) return undefined;
  if (!gone && !(await uploadGone(op, uploadId))) return undefined;
  const md5s = Buffer.concat(parts.map((p) => Buffer.from(p.etag, 'hex')));
  const etag = `${createHash('md5').update(md5s).digest('hex')}-${parts.length}`;
  const current = await op.services.backend.headObject(op.bucket, op.key).catch(() => undefined);
  return current?.etag === etag ? current : undefined;
}

/** Whether the upload no longer exists (ListParts says NoSuchUpload); any other answer keeps the refusal as it was. */
function uploadGone(op: OpContext, uploadId: string): Promise<boolean> {
  return op.services.backend.listParts({ bucket: op.bucket, key: op.key, uploadId, limit: 1 }).then(
    () => false,
    (err: unknown) => err instanceof NoSuchUploadError,
  );
}

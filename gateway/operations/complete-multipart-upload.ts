/** CompleteMultipartUpload: assembles the listed parts; the object appears only when the index commits. */
import { S3Error } from '../errors.ts';
import { xmlResult, type Operation } from '../operation.ts';
import { list, parseXmlBody, text } from '../xml.ts';

export const CompleteMultipartUpload: Operation = async (op) => {
  const uploadId = op.query.get('uploadId') ?? '';
  const doc = parseXmlBody(await op.readText(4 * 1024 * 1024), 'CompleteMultipartUpload');
  const parts = list(doc, 'Part').map((p) => {
    const n = text(p, 'PartNumber');
    const etag = text(p, 'ETag');
    if (n === undefined || etag === undefined || !/^\d+$/.test(n.trim())) throw new S3Error('MalformedXML');
    return { partNumber: Number(n.trim()), etag: etag.trim().replace(/^"|"$/g, '') };
  });
  if (parts.length === 0) {
    throw new S3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.');
  }
  const meta = await op.services.backend.completeMultipartUpload({ bucket: op.bucket, key: op.key, uploadId, parts });
  return xmlResult('CompleteMultipartUploadResult', {
    Location: `/${op.bucket}/${encodeURIComponent(op.key).replace(/%2F/g, '/')}`,
    Bucket: op.bucket,
    Key: op.key,
    ETag: `"${meta.etag}"`,
  });
};

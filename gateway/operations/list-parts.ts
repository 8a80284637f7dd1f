/** ListParts: the parts uploaded so far, paged by part number. */
import { S3Error } from '../errors.ts';
import { parseMaxKeys } from '../listing.ts';
import { xmlResult, type Operation } from '../operation.ts';
import { isoTime } from '../xml.ts';

export const ListParts: Operation = async (op) => {
  const uploadId = op.query.get('uploadId') ?? '';
  const markerRaw = op.query.get('part-number-marker') ?? '0';
  if (!/^\d+$/.test(markerRaw)) {
    throw new S3Error('InvalidArgument', 'Provided part-number-marker not an integer', {
      fields: { ArgumentName: 'part-number-marker', ArgumentValue: markerRaw },
    });
  }
  const maxParts = parseMaxKeys(op.query.get('max-parts'), 'max-parts');
  const res = await op.services.backend.listParts({
    bucket: op.bucket,
    key: op.key,
    uploadId,
    partNumberMarker: Number(markerRaw),
    limit: maxParts,
  });
  const owner = { ID: op.principal.tenant, DisplayName: op.principal.tenant };
  const last = res.parts.at(-1);
  return xmlResult('ListPartsResult', {
    Bucket: op.bucket,
    Key: op.key,
    UploadId: uploadId,
    Initiator: owner,
    Owner: owner,
    StorageClass: 'STANDARD',
    PartNumberMarker: Number(markerRaw),
    NextPartNumberMarker: last ? last.partNumber : 0,
    MaxParts: maxParts,
    IsTruncated: res.isTruncated,
    ...(res.upload.checksum ? { ChecksumAlgorithm: res.upload.checksum.algorithm, ChecksumType: res.upload.checksum.type } : {}),
    Part: res.parts.map((p) => ({
      PartNumber: p.partNumber,
      LastModified: isoTime(p.lastModified),
      ETag: `"${p.etag}"`,
      Size: p.size,
      ...(p.checksum ? { [`Checksum${p.checksum.algorithm}`]: p.checksum.value } : {}),
    })),
  });
};

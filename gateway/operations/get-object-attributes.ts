/**
 * GetObjectAttributes: ETag, Checksum, ObjectParts (paged with x-amz-max-parts / x-amz-part-number-marker),
 * StorageClass and ObjectSize, as named in x-amz-object-attributes (GetObjectAttributes API reference). Parts are
 * listed only for objects that carry an additional checksum, as S3 does for general purpose buckets.
 */
import { S3Error } from '../errors.ts';
import { parseMaxKeys } from '../listing.ts';
import { xmlResult, type Operation } from '../operation.ts';
import { header, httpDate } from '../s3-headers.ts';

const ATTRIBUTES = new Set(['ETag', 'Checksum', 'ObjectParts', 'StorageClass', 'ObjectSize']);

export const GetObjectAttributes: Operation = async (op) => {
  const wanted = new Set((header(op.headers, 'x-amz-object-attributes') ?? '').split(',').map((s) => s.trim()).filter(Boolean));
  if (wanted.size === 0) throw new S3Error('InvalidArgument', 'Missing required header for this request: x-amz-object-attributes', { fields: { ArgumentName: 'x-amz-object-attributes' } });
  for (const a of wanted) {
    if (!ATTRIBUTES.has(a)) throw new S3Error('InvalidArgument', 'Invalid attribute name specified.', { fields: { ArgumentName: 'x-amz-object-attributes', ArgumentValue: a } });
  }
  const markerRaw = header(op.headers, 'x-amz-part-number-marker') ?? '0';
  if (!/^\d+$/.test(markerRaw)) throw new S3Error('InvalidArgument', 'Provided part-number-marker not an integer', { fields: { ArgumentName: 'x-amz-part-number-marker', ArgumentValue: markerRaw } });
  const maxParts = parseMaxKeys(header(op.headers, 'x-amz-max-parts') ?? null, 'x-amz-max-parts');
  const meta = await op.services.backend.headObject(op.bucket, op.key);
  const out: Record<string, unknown> = {};
  if (wanted.has('ETag')) out.ETag = meta.etag;
  const sum = meta.checksum;
  if (wanted.has('Checksum') && sum) out.Checksum = { [`Checksum${sum.algorithm}`]: sum.value, ChecksumType: sum.type ?? 'FULL_OBJECT' };
  if (wanted.has('ObjectParts') && meta.partSizes) {
    const marker = Number(markerRaw);
    const all = meta.partSizes.map((size, i) => ({ PartNumber: i + 1, Size: size, checksum: meta.partChecksums?.[i] }));
    const page = sum && meta.partChecksums ? all.filter((p) => p.PartNumber > marker).slice(0, maxParts) : [];
    const last = page.at(-1);
    out.ObjectParts = {
      PartsCount: meta.partSizes.length,
      PartNumberMarker: marker,
      NextPartNumberMarker: last ? last.PartNumber : marker,
      MaxParts: maxParts,
      IsTruncated: last !== undefined && last.PartNumber < all.length,
      Part: page.map((p) => ({ [`Checksum${sum!.algorithm}`]: p.checksum, PartNumber: p.PartNumber, Size: p.Size })),
    };
  }
  if (wanted.has('StorageClass')) out.StorageClass = 'STANDARD';
  if (wanted.has('ObjectSize')) out.ObjectSize = meta.size;
  const result = xmlResult('GetObjectAttributesResponse', out);
  result.headers = { ...result.headers, 'last-modified': httpDate(meta.lastModified) };
  return result;
};

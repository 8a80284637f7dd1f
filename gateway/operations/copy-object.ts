/** CopyObject: server-side copy with COPY/REPLACE metadata and tagging directives and copy-source conditions. */
import { NotModifiedError, PreconditionFailedError } from '../../storage/errors.ts';
import { S3Error } from '../errors.ts';
import { xmlResult, type OpContext, type Operation } from '../operation.ts';
import {
  conditionsFromHeaders,
  header,
  parseCopySource,
  parseTaggingHeader,
  writeConditionsFromHeaders,
  writeMetaFromHeaders,
} from '../s3-headers.ts';
import { isoTime } from '../xml.ts';

function directive(op: OpContext, name: string): 'COPY' | 'REPLACE' {
  const v = header(op.headers, name)?.toUpperCase() ?? 'COPY';
  if (v !== 'COPY' && v !== 'REPLACE') {
    throw new S3Error('InvalidArgument', `Unknown ${name}`, { fields: { ArgumentName: name, ArgumentValue: v } });
  }
  return v;
}

/** The copy source of this request, with a non-null versionId refused (buckets here are unversioned). */
export function copySourceOf(op: OpContext): { bucket: string; key: string } {
  const src = parseCopySource(header(op.headers, 'x-amz-copy-source') ?? '');
  // As for ?versionId= on the request itself (request-features.ts): buckets here are unversioned, and S3 answers a
  // version id it cannot have issued with InvalidArgument, not NoSuchVersion (S3 API reference, CopyObject, Errors).
  if (src.versionId !== undefined && src.versionId !== 'null') {
    throw new S3Error('InvalidArgument', 'Invalid version id specified', { fields: { ArgumentName: 'x-amz-copy-source', ArgumentValue: src.versionId } });
  }
  return src;
}

/** Copy-source conditions fail with 412 in every case, also where a GET would answer 304. */
export async function withCopyConditions<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof NotModifiedError) throw new PreconditionFailedError('copy source condition failed');
    throw err;
  }
}

export const CopyObject: Operation = async (op) => {
  const src = copySourceOf(op);
  const metaDirective = directive(op, 'x-amz-metadata-directive');
  const tagDirective = directive(op, 'x-amz-tagging-directive');
  if (src.bucket === op.bucket && src.key === op.key && metaDirective === 'COPY') {
    throw new S3Error(
      'InvalidRequest',
      "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
    );
  }
  // A copy keeps its source's checksum; asking for another algorithm would need the bytes re-read, which this
  // gateway does not do, so it is refused rather than answered without the checksum (CopyObject API reference).
  const wanted = header(op.headers, 'x-amz-checksum-algorithm');
  if (wanted !== undefined) {
    const source = await op.services.backend.headObject(src.bucket, src.key);
    if (source.checksum?.algorithm !== wanted.trim().toUpperCase() || (source.checksum.type ?? 'FULL_OBJECT') !== 'FULL_OBJECT') {
      throw new S3Error('NotImplemented', 'Copying with a new checksum algorithm is not implemented by this gateway', { fields: { Header: 'x-amz-checksum-algorithm' } });
    }
  }
  const replaceTags = tagDirective === 'REPLACE' ? (parseTaggingHeader(header(op.headers, 'x-amz-tagging')) ?? {}) : undefined;
  const meta = await withCopyConditions(() =>
    op.services.backend.copyObject({
      source: { ...src, conditions: conditionsFromHeaders(op.headers, 'x-amz-copy-source-') },
      dest: { bucket: op.bucket, key: op.key },
      replaceMeta: metaDirective === 'REPLACE' ? writeMetaFromHeaders(op.headers) : undefined,
      replaceTags,
      writeConditions: writeConditionsFromHeaders(op.headers),
      beforeCommit: op.access.ownerCheck(op.bucket, op.key),
    }),
  );
  const sum = meta.checksum && (meta.checksum.type ?? 'FULL_OBJECT') === 'FULL_OBJECT' ? { [`Checksum${meta.checksum.algorithm}`]: meta.checksum.value, ChecksumType: 'FULL_OBJECT' } : {};
  return xmlResult('CopyObjectResult', { LastModified: isoTime(meta.lastModified), ETag: `"${meta.etag}"`, ...sum });
};

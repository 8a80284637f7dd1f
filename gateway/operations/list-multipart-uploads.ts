/** ListMultipartUploads: in-progress uploads, through the same visibility filter as object listings. */
import { encodingOf, listVisible, parseMaxKeys, type Listed } from '../listing.ts';
import { xmlResult, type Operation } from '../operation.ts';
import type { UploadInfo } from '../../storage/backend.ts';
import { isoTime } from '../xml.ts';

/** Cursor of an upload entry: key and upload id, split again at the last NUL (upload ids never hold one). */
const SEP = '\u0000';

export const ListMultipartUploads: Operation = async (op) => {
  const prefix = op.query.get('prefix') ?? '';
  const delimiter = op.query.get('delimiter') ?? '';
  const keyMarker = op.query.get('key-marker') ?? '';
  const uploadIdMarker = op.query.get('upload-id-marker') ?? '';
  const maxUploads = parseMaxKeys(op.query.get('max-uploads'), 'max-uploads');
  const { e, echo } = encodingOf(op.query);
  const filter = await op.access.listing(op.bucket, prefix);
  await op.services.backend.headBucket(op.bucket);

  const fetch = (pfx: string, delim: string) => async (cursor: string | undefined, limit: number) => {
    const cut = cursor?.lastIndexOf(SEP) ?? -1;
    const res = await op.services.backend.listMultipartUploads({
      bucket: op.bucket,
      prefix: pfx || undefined,
      delimiter: delim || undefined,
      keyMarker: cursor === undefined ? undefined : cut >= 0 ? cursor.slice(0, cut) : cursor,
      uploadIdMarker: cursor !== undefined && cut >= 0 ? cursor.slice(cut + 1) : undefined,
      limit,
    });
    const entries: Listed<UploadInfo>[] = res.entries.map((x) =>
      x.kind === 'prefix' ? x : { kind: 'item', name: x.key + SEP + x.uploadId, key: x.key, item: x },
    );
    return { entries, isTruncated: res.isTruncated };
  };
  const probe = async (narrower: string) =>
    (await listVisible({ fetch: fetch(narrower, ''), filter, probe: async () => false, maxKeys: 1 })).entries.length > 0;
  const start = keyMarker ? (uploadIdMarker ? keyMarker + SEP + uploadIdMarker : keyMarker) : undefined;
  const page =
    maxUploads === 0
      ? { entries: [], isTruncated: false }
      : await listVisible({ fetch: fetch(prefix, delimiter), filter, probe, startAfter: start, maxKeys: maxUploads });
  const owner = { ID: op.principal.tenant, DisplayName: op.principal.tenant };
  const last = page.entries.at(-1);
  const next =
    page.isTruncated && last
      ? last.kind === 'item'
        ? { NextKeyMarker: e(last.item.key), NextUploadIdMarker: last.item.uploadId }
        : { NextKeyMarker: e(last.prefix), NextUploadIdMarker: '' }
      : {};
  return xmlResult('ListMultipartUploadsResult', {
    Bucket: op.bucket,
    KeyMarker: e(keyMarker),
    UploadIdMarker: uploadIdMarker,
    ...next,
    Prefix: e(prefix),
    ...(delimiter ? { Delimiter: e(delimiter) } : {}),
    MaxUploads: maxUploads,
    IsTruncated: page.isTruncated,
    ...echo,
    Upload: page.entries.flatMap((x) =>
      x.kind === 'item'
        ? [{
            Key: e(x.item.key),
            UploadId: x.item.uploadId,
            Initiator: owner,
            Owner: owner,
            StorageClass: 'STANDARD',
            Initiated: isoTime(x.item.initiated),
          }]
        : [],
    ),
    CommonPrefixes: page.entries.flatMap((x) => (x.kind === 'prefix' ? [{ Prefix: e(x.prefix) }] : [])),
  });
};

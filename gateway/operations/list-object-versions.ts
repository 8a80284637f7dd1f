/** ListObjectVersions on unversioned buckets: every object once, VersionId "null", IsLatest true. */
import { encodingOf, nameOf, parseMaxKeys } from '../listing.ts';
import { xmlResult, type Operation } from '../operation.ts';
import { isoTime } from '../xml.ts';
import { listObjectsVisible } from './list-objects-common.ts';

export const ListObjectVersions: Operation = async (op) => {
  const prefix = op.query.get('prefix') ?? '';
  const delimiter = op.query.get('delimiter') ?? '';
  const keyMarker = op.query.get('key-marker') ?? '';
  const versionIdMarker = op.query.get('version-id-marker') ?? '';
  const maxKeys = parseMaxKeys(op.query.get('max-keys'));
  const enc = encodingOf(op.query);
  const e = (s: string) => (enc ? enc(s) : s);
  const page = await listObjectsVisible(op, { prefix, delimiter, startAfter: keyMarker || undefined, maxKeys });
  const owner = { ID: op.principal.tenant, DisplayName: op.principal.tenant };
  const last = page.entries.at(-1);
  return xmlResult('ListVersionsResult', {
    Name: op.bucket,
    Prefix: e(prefix),
    KeyMarker: e(keyMarker),
    VersionIdMarker: versionIdMarker,
    ...(page.isTruncated && last ? { NextKeyMarker: e(nameOf(last)), NextVersionIdMarker: 'null' } : {}),
    MaxKeys: maxKeys,
    ...(delimiter ? { Delimiter: e(delimiter) } : {}),
    IsTruncated: page.isTruncated,
    ...(enc ? { EncodingType: 'url' } : {}),
    Version: page.entries.flatMap((x) =>
      x.kind === 'item'
        ? [{
            Key: e(x.item.key),
            VersionId: 'null',
            IsLatest: true,
            LastModified: isoTime(x.item.lastModified),
            ETag: `"${x.item.etag}"`,
            Size: x.item.size,
            Owner: owner,
            StorageClass: 'STANDARD',
          }]
        : [],
    ),
    CommonPrefixes: page.entries.flatMap((x) => (x.kind === 'prefix' ? [{ Prefix: e(x.prefix) }] : [])),
  });
};

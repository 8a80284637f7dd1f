/** ListObjectVersions on unversioned buckets: every object once, VersionId "null", IsLatest true. */
import { encodingOf, nameOf, parseMaxKeys } from '../listing.ts';
import type { Operation } from '../operation.ts';
import { xmlElements } from '../xml.ts';
import { listObjectsVisible, listResult, renderEntries } from './list-objects-common.ts';

export const ListObjectVersions: Operation = async (op) => {
  const prefix = op.query.get('prefix') ?? '';
  const delimiter = op.query.get('delimiter') ?? '';
  const keyMarker = op.query.get('key-marker') ?? '';
  const versionIdMarker = op.query.get('version-id-marker') ?? '';
  const maxKeys = parseMaxKeys(op.query.get('max-keys'));
  const { e, echo } = encodingOf(op.query);
  const page = await listObjectsVisible(op, { prefix, delimiter, startAfter: keyMarker || undefined, maxKeys });
  const owner = { ID: op.principal.tenant, DisplayName: op.principal.tenant };
  const last = page.entries.at(-1);
  const listed = renderEntries(page.entries, { e, owner, version: true });
  const head = xmlElements({
    Name: op.bucket,
    Prefix: e(prefix),
    KeyMarker: e(keyMarker),
    VersionIdMarker: versionIdMarker,
    ...(page.isTruncated && last ? { NextKeyMarker: e(nameOf(last)), NextVersionIdMarker: 'null' } : {}),
    MaxKeys: maxKeys,
    ...(delimiter ? { Delimiter: e(delimiter) } : {}),
    IsTruncated: page.isTruncated,
    ...echo,
  });
  return listResult('ListVersionsResult', head + listed.items + listed.prefixes);
};

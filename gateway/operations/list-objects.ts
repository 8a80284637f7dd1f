/** ListObjects (v1): marker-based paging; NextMarker is the last visible name when truncated. */
import { encodingOf, nameOf, parseMaxKeys } from '../listing.ts';
import type { Operation } from '../operation.ts';
import { xmlElements } from '../xml.ts';
import { listObjectsVisible, listResult, renderEntries } from './list-objects-common.ts';

export const ListObjects: Operation = async (op) => {
  const prefix = op.query.get('prefix') ?? '';
  const delimiter = op.query.get('delimiter') ?? '';
  const marker = op.query.get('marker') ?? '';
  const maxKeys = parseMaxKeys(op.query.get('max-keys'));
  const { e, echo } = encodingOf(op.query);
  const page = await listObjectsVisible(op, { prefix, delimiter, startAfter: marker || undefined, maxKeys });
  const owner = { ID: op.principal.tenant, DisplayName: op.principal.tenant };
  const last = page.entries.at(-1);
  const listed = renderEntries(page.entries, { e, owner });
  const head = xmlElements({
    Name: op.bucket,
    Prefix: e(prefix),
    Marker: e(marker),
    ...(page.isTruncated && last ? { NextMarker: e(nameOf(last)) } : {}),
    MaxKeys: maxKeys,
    ...(delimiter ? { Delimiter: e(delimiter) } : {}),
    IsTruncated: page.isTruncated,
    ...echo,
  });
  return listResult('ListBucketResult', head + listed.items + listed.prefixes);
};

/** ListObjectsV2: opaque continuation tokens, start-after, fetch-owner, KeyCount over visible entries. */
import { decodeContinuationToken, encodeContinuationToken, encodingOf, nameOf, parseMaxKeys } from '../listing.ts';
import type { Operation } from '../operation.ts';
import { xmlElements } from '../xml.ts';
import { listObjectsVisible, listResult, renderEntries } from './list-objects-common.ts';

export const ListObjectsV2: Operation = async (op) => {
  const prefix = op.query.get('prefix') ?? '';
  const delimiter = op.query.get('delimiter') ?? '';
  const token = op.query.get('continuation-token');
  const startAfter = op.query.get('start-after') ?? '';
  const maxKeys = parseMaxKeys(op.query.get('max-keys'));
  const fetchOwner = op.query.get('fetch-owner') === 'true';
  const { e, echo } = encodingOf(op.query);
  // An empty token starts from the beginning and is echoed back like any other ("If ContinuationToken was sent with
  // the request, it is included in the response": ListObjectsV2 API reference, response elements).
  const cursor = token ? decodeContinuationToken(token) : startAfter || undefined;
  const page = await listObjectsVisible(op, { prefix, delimiter, startAfter: cursor, maxKeys });
  const owner = { ID: op.principal.tenant, DisplayName: op.principal.tenant };
  const last = page.entries.at(-1);
  const listed = renderEntries(page.entries, { e, owner: fetchOwner ? owner : undefined });
  const head = xmlElements({
    Name: op.bucket,
    Prefix: e(prefix),
    ...(delimiter ? { Delimiter: e(delimiter) } : {}),
    MaxKeys: maxKeys,
    KeyCount: page.entries.length,
    IsTruncated: page.isTruncated,
    ...echo,
    ...(token !== null ? { ContinuationToken: token } : {}),
    ...(page.isTruncated && last ? { NextContinuationToken: encodeContinuationToken(nameOf(last)) } : {}),
    ...(startAfter ? { StartAfter: e(startAfter) } : {}),
  });
  return listResult('ListBucketResult', head + listed.items + listed.prefixes);
};

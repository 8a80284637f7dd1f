/** ListObjectsV2: opaque continuation tokens, start-after, fetch-owner, KeyCount over visible entries. */
import { S3Error } from '../errors.ts';
import { encodingOf, nameOf, parseMaxKeys } from '../listing.ts';
import { xmlResult, type Operation } from '../operation.ts';
import { listObjectsVisible, renderEntries } from './list-objects-common.ts';

/** Tokens are the last returned name, base64url-encoded behind a version tag so they stay opaque to clients. */
function encodeToken(name: string): string {
  return Buffer.from(`v1:${name}`, 'utf8').toString('base64url');
}

function decodeToken(token: string): string {
  const raw = Buffer.from(token, 'base64url').toString('utf8');
  if (!raw.startsWith('v1:') || encodeToken(raw.slice(3)) !== token) {
    throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect', {
      fields: { ArgumentName: 'continuation-token' },
    });
  }
  return raw.slice(3);
}

export const ListObjectsV2: Operation = async (op) => {
  const prefix = op.query.get('prefix') ?? '';
  const delimiter = op.query.get('delimiter') ?? '';
  const token = op.query.get('continuation-token');
  const startAfter = op.query.get('start-after') ?? '';
  const maxKeys = parseMaxKeys(op.query.get('max-keys'));
  const fetchOwner = op.query.get('fetch-owner') === 'true';
  const { e, echo } = encodingOf(op.query);
  const cursor = token !== null ? decodeToken(token) : startAfter || undefined;
  const page = await listObjectsVisible(op, { prefix, delimiter, startAfter: cursor, maxKeys });
  const owner = { ID: op.principal.tenant, DisplayName: op.principal.tenant };
  const last = page.entries.at(-1);
  const listed = renderEntries(page.entries, { e, owner: fetchOwner ? owner : undefined });
  return xmlResult('ListBucketResult', {
    Name: op.bucket,
    Prefix: e(prefix),
    ...(delimiter ? { Delimiter: e(delimiter) } : {}),
    MaxKeys: maxKeys,
    KeyCount: page.entries.length,
    IsTruncated: page.isTruncated,
    ...echo,
    ...(token !== null ? { ContinuationToken: token } : {}),
    ...(page.isTruncated && last ? { NextContinuationToken: encodeToken(nameOf(last)) } : {}),
    ...(startAfter ? { StartAfter: e(startAfter) } : {}),
    Contents: listed.items,
    CommonPrefixes: listed.prefixes,
  });
};

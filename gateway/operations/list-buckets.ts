/**
 * ListBuckets: the buckets the caller may learn the names of, and nothing about the others, in name order. Pages
 * as the ListBuckets API reference describes: `max-buckets` (1 to 10,000), an opaque `continuation-token`,
 * `prefix` and `bucket-region`; any of the last three without `max-buckets` pages at 10,000. Without any of them the
 * answer is every bucket, as before pagination existed. Pages are cut after the visibility filter, so a hidden
 * bucket never shapes a page or a token.
 */
import { S3Error } from '../errors.ts';
import { decodeContinuationToken, encodeContinuationToken } from '../listing.ts';
import { xmlResult, type Operation } from '../operation.ts';
import { isoTime } from '../xml.ts';

/** Largest page: the API reference's maximum and the default once any paging parameter is given. */
const MAX_BUCKETS = 10_000;

/** The page size asked for, or undefined for the legacy unpaginated listing. */
function pageSize(query: URLSearchParams): number | undefined {
  const raw = query.get('max-buckets');
  if (raw === null) {
    const paging = ['continuation-token', 'prefix', 'bucket-region'].some((p) => query.has(p));
    return paging ? MAX_BUCKETS : undefined;
  }
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= MAX_BUCKETS)) {
    throw new S3Error('InvalidArgument', 'Provided max-buckets not an integer or within integer range [1, 10000]', {
      fields: { ArgumentName: 'max-buckets', ArgumentValue: raw },
    });
  }
  return n;
}

export const ListBuckets: Operation = async (op) => {
  const limit = pageSize(op.query);
  const prefix = op.query.get('prefix') ?? '';
  const token = op.query.get('continuation-token');
  const after = token ? decodeContinuationToken(token) : undefined;
  const region = op.services.config.region;
  const wantedRegion = op.query.get('bucket-region');
  const all = await op.services.backend.listBuckets();
  const visible = new Set(await op.access.visibleBuckets(all.map((b) => b.name)));
  const matching = all
    .filter((b) => visible.has(b.name) && b.name.startsWith(prefix) && (after === undefined || b.name > after))
    .filter(() => wantedRegion === null || wantedRegion === region)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const page = limit === undefined ? matching : matching.slice(0, limit);
  const more = page.length < matching.length;
  return xmlResult('ListAllMyBucketsResult', {
    Buckets: { Bucket: page.map((b) => ({ Name: b.name, CreationDate: isoTime(b.createdAt), BucketRegion: region })) },
    Owner: { ID: op.principal.tenant, DisplayName: op.principal.tenant },
    ...(more ? { ContinuationToken: encodeContinuationToken(page.at(-1)!.name) } : {}),
    ...(op.query.has('prefix') ? { Prefix: prefix } : {}),
  });
};

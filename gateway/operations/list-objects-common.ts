/** The object listing shared by ListObjects (v1), ListObjectsV2 and ListObjectVersions. */
import type { ListEntry } from '../../storage/backend.ts';
import { listVisible, type Listed, type VisiblePage } from '../listing.ts';
import type { OpContext } from '../operation.ts';
import { isoTime } from '../xml.ts';

/** An object row of a listing. */
export type ObjectRow = Extract<ListEntry, { kind: 'object' }>;

/** Lists visible objects and common prefixes of op.bucket after startAfter. */
export async function listObjectsVisible(
  op: OpContext,
  args: { prefix: string; delimiter: string; startAfter?: string; maxKeys: number },
): Promise<VisiblePage<ObjectRow>> {
  const { backend } = op.services;
  const filter = await op.access.listing(op.bucket, args.prefix);
  await backend.headBucket(op.bucket);
  const probe = async (narrower: string): Promise<boolean> => {
    // Is there at least one visible key under `narrower`? Page through it like any other listing.
    const page = await listVisible<ObjectRow>({
      fetch: fetcher(op, narrower, ''),
      filter,
      probe: async () => false,
      maxKeys: 1,
    });
    return page.entries.length > 0;
  };
  if (args.maxKeys === 0) return { entries: [], isTruncated: false };
  return listVisible<ObjectRow>({
    fetch: fetcher(op, args.prefix, args.delimiter),
    filter,
    probe,
    startAfter: args.startAfter,
    maxKeys: args.maxKeys,
  });
}

function fetcher(op: OpContext, prefix: string, delimiter: string) {
  return async (cursor: string | undefined, limit: number) => {
    const res = await op.services.backend.listObjects({
      bucket: op.bucket,
      prefix: prefix || undefined,
      delimiter: delimiter || undefined,
      startAfter: cursor,
      limit,
    });
    const entries: Listed<ObjectRow>[] = res.entries.map((e) =>
      e.kind === 'prefix' ? e : { kind: 'item', name: e.key, key: e.key, item: e },
    );
    return { entries, isTruncated: res.isTruncated };
  };
}

/** Renders listing entries as S3's Contents (or Version) elements and CommonPrefixes, encoding names with `e`. */
export function renderEntries(
  entries: Listed<ObjectRow>[],
  opts: { e: (s: string) => string; owner?: { ID: string; DisplayName: string }; version?: boolean },
): { items: Record<string, unknown>[]; prefixes: Array<{ Prefix: string }> } {
  const { e, owner, version } = opts;
  const items = entries.flatMap((x) =>
    x.kind === 'item'
      ? [{
          Key: e(x.item.key),
          ...(version ? { VersionId: 'null', IsLatest: true } : {}),
          LastModified: isoTime(x.item.lastModified),
          ETag: `"${x.item.etag}"`,
          Size: x.item.size,
          ...(owner ? { Owner: owner } : {}),
          StorageClass: 'STANDARD',
        }]
      : [],
  );
  const prefixes = entries.flatMap((x) => (x.kind === 'prefix' ? [{ Prefix: e(x.prefix) }] : []));
  return { items, prefixes };
}

/** The object listing shared by ListObjects (v1), ListObjectsV2 and ListObjectVersions. */
import type { ListedChecksum, ListEntry } from '../../storage/backend.ts';
import { listVisible, type Listed, type VisiblePage } from '../listing.ts';
import type { OpContext, OpResult } from '../operation.ts';
import { escapeText, isoTime, xmlElements, xmlListDocument } from '../xml.ts';

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

/** A list response of `root` from rendered content (xmlListDocument). */
export function listResult(root: string, content: string): OpResult {
  return { status: 200, headers: { 'content-type': 'application/xml' }, body: xmlListDocument(root, content) };
}

/** The ChecksumAlgorithm and ChecksumType elements of each listed checksum, rendered once (a handful of values). */
const CHECKSUM_ELEMENTS = new Map<ListedChecksum, string>();

/**
 * `<ChecksumAlgorithm>…</ChecksumAlgorithm><ChecksumType>…</ChecksumType>`, between ETag and Size as S3 writes them
 * (ListObjectsV2 API reference, Object: ChecksumAlgorithm, ChecksumType).
 */
function checksumElements(checksum: ListedChecksum): string {
  let xml = CHECKSUM_ELEMENTS.get(checksum);
  if (xml === undefined) {
    const [algorithm, type] = checksum.split('/');
    xml = `<ChecksumAlgorithm>${escapeText(algorithm!)}</ChecksumAlgorithm><ChecksumType>${escapeText(type!)}</ChecksumType>`;
    if (CHECKSUM_ELEMENTS.size < 64) CHECKSUM_ELEMENTS.set(checksum, xml);
  }
  return xml;
}

/**
 * Renders listing entries as S3's Contents (or Version) elements and CommonPrefixes, encoding names with `e`. A
 * template per entry (see xmlListDocument for why), writing what xmlDocument wrote for the same fields.
 */
export function renderEntries(
  entries: Listed<ObjectRow>[],
  opts: { e: (s: string) => string; owner?: { ID: string; DisplayName: string }; version?: boolean },
): { items: string; prefixes: string } {
  const { e, version } = opts;
  const element = version ? 'Version' : 'Contents';
  const versionFields = version ? '<VersionId>null</VersionId><IsLatest>true</IsLatest>' : '';
  const owner = opts.owner ? xmlElements({ Owner: opts.owner }) : '';
  let items = '';
  let prefixes = '';
  for (const x of entries) {
    if (x.kind === 'prefix') {
      prefixes += `<CommonPrefixes><Prefix>${escapeText(e(x.prefix))}</Prefix></CommonPrefixes>`;
      continue;
    }
    const o = x.item;
    items +=
      `<${element}><Key>${escapeText(e(o.key))}</Key>${versionFields}<LastModified>${isoTime(o.lastModified)}</LastModified>` +
      `<ETag>&quot;${escapeText(o.etag)}&quot;</ETag>${o.checksum ? checksumElements(o.checksum) : ''}<Size>${o.size}</Size>${owner}` +
      `<StorageClass>STANDARD</StorageClass></${element}>`;
  }
  return { items, prefixes };
}

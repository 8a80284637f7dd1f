/**
 * The listing rows: a sequence of 1,000-key ListObjectsV2 pages over a 100,000-key bucket (BENCH_LIST_KEYS), walked
 * with continuation tokens by one client, unfiltered on every server, then filtered by relationships on the two
 * gateways for a caller who may read 10% of the keys, scattered. Pages are fetched with signed raw requests and read
 * with two regular expressions, so the client's own XML parsing does not slow the walk.
 */
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_PREFIX } from '../../gateway/admin/index.ts';
import { signedSend } from '../helpers/raw.ts';
import { run } from './load.ts';
import { sdkClient } from './requests.ts';
import { memoryDir, startGatewayProcess, startMinioProcess, startUpstreamGatewayProcess, type BenchServer, type Credentials } from './servers.ts';
import type { Row } from './table.ts';
import { seeded } from '../helpers/seeded.ts';

/** The bucket holding the listing keys, on every server. */
export const LIST_BUCKET = 'bench-list';

/** The listing keys: ten top-level folders of ten subfolders each. */
export function listingKeys(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `f${i % 10}/d${(i >> 4) % 10}/obj${String(i).padStart(6, '0')}`);
}

/** A POSIX ustar archive of 1-byte files named `names`, for MinIO's snowball auto-extract. */
export function tarOf(names: string[]): Buffer {
  const out = Buffer.alloc((names.length * 2 + 2) * 512);
  names.forEach((name, i) => {
    const h = out.subarray(i * 1024, i * 1024 + 512);
    const field = (offset: number, length: number, value: string) => h.write(value, offset, length, 'latin1');
    field(0, 100, name);
    field(100, 8, '0000644\0');
    field(108, 8, '0000000\0');
    field(116, 8, '0000000\0');
    field(124, 12, '00000000001\0');
    field(136, 12, `${Math.floor(Date.now() / 1000).toString(8).padStart(11, '0')}\0`);
    field(148, 8, '        ');
    field(156, 1, '0');
    field(257, 8, 'ustar\x0000');
    let sum = 0;
    for (const b of h) sum += b;
    field(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
    out[i * 1024 + 512] = 0x78;
  });
  return out;
}

/** Fills LIST_BUCKET in an embedded data directory (before its gateway starts), in a separate process. */
export async function seedEmbedded(dataDir: string, keys: string[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'anvil-bench-keys-'));
  try {
    writeFileSync(join(dir, 'keys'), keys.join('\n'));
    await run(process.execPath, ['--import=tsx', 'test/bench/seed-embedded.ts', dataDir, LIST_BUCKET, join(dir, 'keys')]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Fills LIST_BUCKET in MinIO with one tar that MinIO unpacks into objects (its snowball auto-extract). */
export async function seedMinio(minio: BenchServer, keys: string[]): Promise<void> {
  const s3 = sdkClient(minio);
  try {
    await s3.send(new CreateBucketCommand({ Bucket: LIST_BUCKET }));
    const Body = tarOf(keys);
    await s3.send(new PutObjectCommand({ Bucket: LIST_BUCKET, Key: 'seed.tar', Body, Metadata: { 'snowball-auto-extract': 'true' } }));
  } finally {
    s3.destroy();
  }
}

const unescapeXml = (s: string) =>
  s.replace(/&(lt|gt|quot|apos|amp);/g, (_, e: string) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[e]!);

/** What one walk did: pages fetched, keys returned, the last one, seconds, and whether it stopped at the time limit. */
export interface Walk {
  pages: number;
  keys: number;
  lastKey?: string;
  seconds: number;
  complete: boolean;
}

/** One walk over the pages of the bucket, stopped after `maxSeconds` (a listing that slow is the finding). */
export async function walk(url: string, creds: Credentials, maxSeconds = Infinity): Promise<Walk> {
  const started = performance.now();
  let pages = 0;
  let keys = 0;
  let lastKey: string | undefined;
  let token: string | undefined;
  do {
    if (performance.now() - started > maxSeconds * 1000) return { pages, keys, lastKey, seconds: (performance.now() - started) / 1000, complete: false };
    const query: Record<string, string> = { 'list-type': '2', 'max-keys': '1000' };
    if (token) query['continuation-token'] = token;
    const res = await signedSend({ url, method: 'GET', path: `/${LIST_BUCKET}`, query, creds });
    if (res.status !== 200) throw new Error(`ListObjectsV2 on ${url}: ${res.status} ${res.body.slice(0, 300)}`);
    pages++;
    keys += Number(/<KeyCount>(\d+)<\/KeyCount>/.exec(res.body)?.[1] ?? 0);
    const at = res.body.lastIndexOf('<Key>');
    if (at >= 0) lastKey = unescapeXml(res.body.slice(at + 5, res.body.indexOf('</Key>', at)));
    const next = /<NextContinuationToken>([^<]+)<\/NextContinuationToken>/.exec(res.body)?.[1];
    token = /<IsTruncated>true<\/IsTruncated>/.test(res.body) && next ? unescapeXml(next) : undefined;
  } while (token);
  return { pages, keys, lastKey, seconds: (performance.now() - started) / 1000, complete: true };
}

/** A signed admin API call that must succeed; its JSON answer. */
async function admin(gw: BenchServer, method: string, path: string, body: unknown): Promise<any> {
  const text = JSON.stringify(body);
  const headers = { 'content-type': 'application/json' };
  const res = await signedSend({ url: gw.url, method, path: ADMIN_PREFIX + path, headers, body: text, creds: gw.creds });
  if (res.status >= 300) throw new Error(`${method} ${path} on ${gw.name}: ${res.status} ${res.body.slice(0, 300)}`);
  return res.body ? JSON.parse(res.body) : undefined;
}

/**
 * Governs LIST_BUCKET on a gateway for tenant `bench` and creates a reader who holds `read` on every tenth key,
 * scattered (the same keys on every gateway); returns the reader's credentials.
 */
export async function governForReader(gw: BenchServer, keys: string[]): Promise<Credentials> {
  await admin(gw, 'POST', '/tenants', { name: 'bench' });
  await admin(gw, 'PUT', `/buckets/${LIST_BUCKET}/owner`, { tenant: 'bench', reassign: true });
  const scopes = [{ families: ['object:read', 'object:list'], bucket: LIST_BUCKET }];
  const reader = await admin(gw, 'POST', '/credentials', { tenant: 'bench', name: 'scattered-reader', scopes });
  await admin(gw, 'PUT', `/buckets/${LIST_BUCKET}/governance`, { governed: true });
  const pick = seeded(7);
  const tuples = keys.filter(() => pick(10) === 0).map((k) => `object:${LIST_BUCKET}/${k}#reader@app:${reader.accessKeyId}`);
  // Admin request bodies are limited to 64 KiB.
  for (let i = 0; i < tuples.length; i += 500) {
    const text = tuples.slice(i, i + 500).join('\n');
    await admin(gw, 'POST', '/tuples/import', { tenant: 'bench', text, reason: 'bench: 10% scattered readers' });
  }
  return { accessKeyId: reader.accessKeyId, secretAccessKey: reader.secretKey };
}

/** How many of the (ASCII, so code-unit order is S3's byte order) sorted keys are below `key`. */
function rankOf(sorted: string[], key: string | undefined): number {
  if (key === undefined) return -1;
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Longest a walk may take (BENCH_LIST_MAX_SECONDS): beyond it the rate is reported for the pages fetched. */
const MAX_WALK_SECONDS = Number(process.env.BENCH_LIST_MAX_SECONDS ?? 15);

/**
 * Walks twice (the first warms caches and is reported in the log only) and records the second walk's keys scanned
 * per second in `row`; a walk cut off at the time limit is walked once, and its rate marked partial.
 */
async function measuredWalk(row: Row, server: BenchServer, creds: Credentials, sorted: string[], log: (l: string) => void): Promise<void> {
  const total = sorted.length;
  const walks: Array<[string, Walk]> = [['cold', await walk(server.url, creds, MAX_WALK_SECONDS)]];
  if (walks[0]![1].complete) walks.push(['warm', await walk(server.url, creds, MAX_WALK_SECONDS)]);
  for (const [run, w] of walks) {
    log(`  ${row.workload}: ${server.name} ${run}: ${w.pages} pages, ${w.keys} keys returned in ${w.seconds.toFixed(2)} s` +
      (w.complete ? '' : ` (stopped after ${MAX_WALK_SECONDS} s)`));
  }
  const [, last] = walks[walks.length - 1]!;
  // Keys scanned: the whole bucket for a complete walk, else those up to the last key returned.
  const scanned = last.complete ? total : rankOf(sorted, last.lastKey) + 1;
  row.values[server.name] = scanned / last.seconds;
  if (!last.complete) (row.notes ??= {})[server.name] = `first ${last.pages} pages only`;
}

/**
 * The two listing rows, on servers of their own: MinIO, the embedded gateway and the gateway in front of that MinIO,
 * all with their data in memory (/dev/shm), so `count` keys are written in seconds instead of minutes of fsyncs;
 * every server then lists from memory, as it would from a warm page cache.
 */
export async function listingRows(count: number, log: (l: string) => void): Promise<Row[]> {
  const keys = listingKeys(count);
  const parent = memoryDir();
  const dataDir = mkdtempSync(join(parent, 'anvil-bench-list-'));
  const servers: BenchServer[] = [];
  try {
    const minio = await startMinioProcess(parent);
    servers.push(minio);
    // Before the gateways start: they adopt the filled buckets as root's.
    const timed = async (what: string, seed: Promise<void>) => {
      const t = Date.now();
      await seed;
      log(`  ${count} keys written into ${what} (${parent}) in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    };
    await Promise.all([timed('the embedded store', seedEmbedded(dataDir, keys)), timed('MinIO', seedMinio(minio, keys))]);
    const gateway = await startGatewayProcess({ name: 'gateway', dataDir });
    servers.push(gateway);
    const upstream = await startUpstreamGatewayProcess(minio, parent);
    servers.push(upstream);
    const unfiltered: Row = { workload: `ListObjectsV2, 1,000-key pages over ${count.toLocaleString('en-US')} keys`, unit: 'keys/s', values: {} };
    const filtered: Row = { workload: 'ListObjectsV2, same, filtered by relationships (10% readable, scattered)', unit: 'keys/s', values: {} };
    const sorted = [...keys].sort();
    for (const s of [gateway, minio, upstream]) await measuredWalk(unfiltered, s, s.creds, sorted, log);
    for (const s of [gateway, upstream]) await measuredWalk(filtered, s, await governForReader(s, keys), sorted, log);
    return [unfiltered, filtered];
  } finally {
    for (const s of servers) await s.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * `npm run bench`: each workload through the gateway beside the same client against a baseline in the same process,
 * printed as a ratio. Not a test: numbers vary by machine; the ratio is what to compare across changes.
 */
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { relationships as rel } from '../../policy/index.ts';
import { Agent } from 'node:http';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startTestGateway, ROOT } from '../helpers/gateway.ts';
import { startMinio } from '../helpers/minio.ts';
import { startBareServer } from './bare-server.ts';
import { putGet, type Measurement } from './s3-workloads.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const KiB = 1024;
const MiB = 1024 * KiB;
const only = process.argv[2];

function client(endpoint: string, credentials: { accessKeyId: string; secretAccessKey: string } = ROOT): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    credentials,
    forcePathStyle: true,
    requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets: 64 }) }),
  });
}

function fmt(m: Measurement, large: boolean): string {
  return large ? `${(m.bytes / MiB / m.seconds).toFixed(1)} MiB/s` : `${(m.ops / m.seconds).toFixed(0)} op/s`;
}

/** Prints gateway vs baseline lines with the ratio gateway/baseline. */
export function report(title: string, rows: Array<[Measurement, Measurement]>, large: boolean): void {
  console.log(`\n${title}`);
  for (const [gw, base] of rows) {
    const ratio = gw.bytes / gw.seconds / (base.bytes / base.seconds);
    console.log(`  ${gw.name.padEnd(24)} gateway ${fmt(gw, large).padStart(12)}   baseline ${fmt(base, large).padStart(12)}   ratio ${ratio.toFixed(2)}`);
  }
}

async function embedded(): Promise<void> {
  const gw = await startTestGateway();
  const bare = await startBareServer();
  const g = client(gw.gw.url);
  const b = client(bare.url);
  await g.send(new CreateBucketCommand({ Bucket: 'bench' }));
  for (const [label, size, counts, large] of [
    ['4 KiB', 4 * KiB, { 1: 1000, 32: 4000 }, false],
    ['64 MiB', 64 * MiB, { 1: 4, 32: 32 }, true],
  ] as const) {
    const rows: Array<[Measurement, Measurement]> = [];
    for (const c of [1, 32] as const) {
      const args = { bucket: 'bench', prefix: `${label}/`, size, count: counts[c], concurrency: c, label };
      const base = await putGet({ ...args, client: b });
      const through = await putGet({ ...args, client: g });
      rows.push([through[0]!, base[0]!], [through[1]!, base[1]!]);
    }
    report(`${label} objects: gateway (embedded store) vs bare Node HTTP server`, rows, large);
  }
  g.destroy();
  b.destroy();
  await bare.close();
  await gw.close();
}

/** The same workloads through the gateway to MinIO, beside the same client talking to MinIO directly. */
async function upstream(): Promise<void> {
  const minio = await startMinio();
  const gw = await startTestGateway({
    ANVIL_BACKEND: 'upstream',
    ANVIL_UPSTREAM_ENDPOINT: minio.endpoint,
    ANVIL_UPSTREAM_ACCESS_KEY: minio.accessKey,
    ANVIL_UPSTREAM_SECRET_KEY: minio.secretKey,
  });
  const g = client(gw.gw.url);
  const m = client(minio.endpoint, { accessKeyId: minio.accessKey, secretAccessKey: minio.secretKey });
  await g.send(new CreateBucketCommand({ Bucket: 'bench-up' }));
  for (const [label, size, counts, large] of [
    ['4 KiB', 4 * KiB, { 1: 500, 32: 2000 }, false],
    ['64 MiB', 64 * MiB, { 1: 4, 32: 32 }, true],
  ] as const) {
    const rows: Array<[Measurement, Measurement]> = [];
    for (const c of [1, 32] as const) {
      const base = await putGet({ client: m, bucket: 'bench-up', prefix: `direct/${label}/`, size, count: counts[c], concurrency: c, label });
      const through = await putGet({ client: g, bucket: 'bench-up', prefix: `gw/${label}/`, size, count: counts[c], concurrency: c, label });
      rows.push([through[0]!, base[0]!], [through[1]!, base[1]!]);
    }
    report(`${label} objects: gateway -> MinIO vs the same client -> MinIO directly (ratio = gateway / direct)`, rows, large);
  }
  g.destroy();
  m.destroy();
  await gw.close();
  await minio.close();
}

/** Deterministic pseudo-random integers below n (mulberry32), so runs compare. */
function seeded(seed: number): (n: number) => number {
  return (n) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) % n;
  };
}

const percentile = (sorted: number[], q: number) => (sorted[Math.floor(q * (sorted.length - 1))] as number).toFixed(1);

/**
 * Check latency over BENCH_TUPLES (1,000,000) generated tuples — groups nested 3 deep, folders 4 deep, the default
 * object schema with implicit parents — cold (fresh engine) and warm; then filtered listing throughput through the
 * gateway over a BENCH_LIST_KEYS (100,000) key governed bucket, for a caller reading 10% of keys scattered and one
 * reading one whole folder.
 */
async function relationships(): Promise<void> {
  const total = Number(process.env.BENCH_TUPLES ?? 1_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'anvil-rel-bench-'));
  const rand = seeded(42);
  const setup = rel.Relationships.open({ dataDir: dir });
  setup.writeSchema('bench', rel.DEFAULT_OBJECT_SCHEMA, { actor: 'bench', reason: 'bench' });
  setup.close();
  const raw = new Database(join(dir, 'relationships.db'));
  const insert = raw.prepare(
    `INSERT OR IGNORE INTO tuples (tenant, resource_type, resource_id, relation, subject_relation, subject_type, subject_id, created_revision)
     VALUES ('bench', ?, ?, ?, ?, ?, ?, 1)`,
  );
  let count = 0;
  const add = (rt: string, rid: string, relation: string, st: string, sid: string, srel = '') => {
    count += insert.run(rt, rid, relation, srel, st, sid).changes;
  };
  const pathOf = (i: number) => `f${i % 10}/g${(i >> 4) % 10}/h${(i >> 8) % 10}/k${(i >> 12) % 10}/`;
  const started = Date.now();
  raw.transaction(() => {
    for (let g = 0; g < 1000; g++) for (let m = 0; m < 100; m++) add('group', `leaf${g}`, 'member', 'user', `u${rand(50_000)}`);
    for (let g = 0; g < 1000; g++) add('group', `mid${g % 100}`, 'member', 'group', `leaf${g}`, 'member');
    for (let m = 0; m < 100; m++) add('group', `top${m % 10}`, 'member', 'group', `mid${m}`, 'member');
    for (let b = 0; b < 10; b++) add('bucket', `b${b}`, 'owner', 'group', `top${b}`, 'member');
    for (let i = 0; count < total; i++) {
      const b = i < 100_000 ? 0 : 1 + (i % 9);
      if (i % 50 === 0) add('folder', `b${b}/${pathOf(i)}`, 'reader', 'group', `leaf${rand(1000)}`, 'member');
      add('object', `b${b}/${pathOf(i)}obj${i}`, i % 3 === 0 ? 'writer' : 'reader', i % 2 === 0 ? 'user' : 'group', i % 2 === 0 ? `u${rand(50_000)}` : `leaf${rand(1000)}`, i % 2 === 0 ? '' : 'member');
    }
    raw.prepare("UPDATE tenant_revisions SET revision = revision + 1 WHERE tenant = 'bench'").run();
  })();
  raw.close();
  console.log(`\nrelationships: ${count} tuples generated in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const engine = rel.Relationships.open({ dataDir: dir, cacheSize: 200_000 });
  const queries = Array.from({ length: 5000 }, () => {
    const i = rand(400_000);
    const b = i < 100_000 ? 0 : 1 + (i % 9);
    return { resource: { type: 'object', id: `b${b}/${pathOf(i)}obj${i}` }, subject: `user:u${rand(50_000)}` };
  });
  for (const label of ['cold', 'warm']) {
    const times: number[] = [];
    for (const q of queries) {
      const t0 = process.hrtime.bigint();
      engine.check('bench', q.resource, 'read', q.subject, { context: { now: new Date(), client_ip: '10.0.0.1' } });
      times.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    times.sort((a, b) => a - b);
    console.log(`  check ${label.padEnd(4)}  ${queries.length} checks   p50 ${percentile(times, 0.5)} µs   p99 ${percentile(times, 0.99)} µs`);
  }
  engine.close();
  rmSync(dir, { recursive: true, force: true });

  const keys = Number(process.env.BENCH_LIST_KEYS ?? 100_000);
  const gw = await startTestGateway();
  const { policy, backend, relationships: engineOf } = gw.gw;
  policy.createTenant({ name: 'bench' });
  await gw.s3.send(new CreateBucketCommand({ Bucket: 'rel-bench' }));
  policy.assignBucket('rel-bench', 'bench', { reassign: true });
  const names = Array.from({ length: keys }, (_, i) => `f${i % 10}/d${(i >> 4) % 10}/obj${String(i).padStart(6, '0')}`);
  const t0 = Date.now();
  for (let i = 0; i < names.length; i += 256) {
    await Promise.all(names.slice(i, i + 256).map((key) =>
      backend.putObject({ bucket: 'rel-bench', key, body: Readable.from([Buffer.from('x')]), size: 1, meta: { headers: {}, userMetadata: {} } })));
  }
  console.log(`  ${keys} keys written through the backend in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const scopes = [{ families: ['object:read' as const, 'object:list' as const], bucket: 'rel-bench' }];
  const scattered = policy.createCredential({ tenant: 'bench', name: 'scattered', scopes });
  const folder = policy.createCredential({ tenant: 'bench', name: 'folder', scopes });
  engineOf.writeSchema('bench', rel.DEFAULT_OBJECT_SCHEMA, { actor: 'bench', reason: 'bench' });
  policy.setBucketGoverned('rel-bench', true);
  const pick = seeded(7);
  const chosen = names.filter(() => pick(10) === 0);
  for (let i = 0; i < chosen.length; i += 5000) {
    const updates = chosen.slice(i, i + 5000).map((k) => ({ op: 'touch' as const, tuple: `object:rel-bench/${rel.escapeId(k)}#reader@app:${scattered.accessKeyId}` }));
    engineOf.write('bench', updates, { actor: 'bench', reason: 'bench' });
  }
  engineOf.write('bench', [{ op: 'touch', tuple: `folder:rel-bench/f3/#reader@app:${folder.accessKeyId}` }], { actor: 'bench', reason: 'bench' });
  for (const [label, c, prefix] of [['10% scattered', scattered, ''], ['one folder, whole bucket listed', folder, ''], ['one folder, listed inside it', folder, 'f3/']] as const) {
    const s3 = client(gw.gw.url, { accessKeyId: c.accessKeyId, secretAccessKey: c.secretKey });
    for (const run of ['cold', 'warm']) {
      const start = Date.now();
      let visible = 0;
      let token: string | undefined;
      do {
        const page = await s3.send(new ListObjectsV2Command({ Bucket: 'rel-bench', Prefix: prefix || undefined, ContinuationToken: token }));
        visible += page.KeyCount ?? 0;
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      const seconds = (Date.now() - start) / 1000;
      const scanned = prefix ? visible : keys;
      console.log(`  listing ${label.padEnd(32)} ${run}: ${visible} visible of ${scanned} scanned in ${seconds.toFixed(2)} s = ${Math.round(scanned / seconds)} keys/s`);
    }
    s3.destroy();
  }
  await gw.close();
}

const sections: Record<string, () => Promise<void>> = { embedded, upstream, relationships };
for (const [name, run] of Object.entries(sections)) {
  if (only && only !== name) continue;
  await run();
}

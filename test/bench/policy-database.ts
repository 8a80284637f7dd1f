/**
 * The policy database's benchmark rows, PostgreSQL beside SQLite: credential lookups cold (the first lookup of each
 * key reads the database) and warm (answered from the node's cache, no round trip), and the 4 KiB GET rate through a
 * gateway process whose policy is in PostgreSQL beside one on SQLite (same embedded object store, same credential,
 * each gateway in its own process, driven over keep-alive connections). The relationship check rows over 1,000,000
 * tuples come from test/policy/relationships/bench.ts, run against both engines.
 * Run alone: npx tsx test/bench/policy-database.ts
 */
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { remoteTransport } from '../../gateway/cli/transport.ts';
import { PolicyDatabase, PolicyStore } from '../../policy/index.ts';
import { ROOT } from '../helpers/gateway.ts';
import { startPostgres, type PostgresServer } from '../helpers/postgres.ts';
import { startGatewayProcess } from './servers.ts';

/** One row of the table: a label, an engine and its numbers. */
export interface PolicyBenchRow {
  label: string;
  engine: 'sqlite' | 'postgres';
  p50Us?: number;
  p99Us?: number;
  perSecond?: number;
  count: number;
}

const percentile = (sorted: number[], q: number): number => sorted[Math.floor(q * (sorted.length - 1))] as number;

/** Credential lookups, cold then warm, over `count` credentials of one engine. */
export async function credentialLookups(options: { url?: string; count?: number }): Promise<PolicyBenchRow[]> {
  const count = options.count ?? 2_000;
  const engine = options.url ? 'postgres' : 'sqlite';
  const dir = mkdtempSync(join(tmpdir(), 'anvil-lookup-bench-'));
  const masterKey = randomBytes(32).toString('base64');
  const writer = await PolicyDatabase.open({ url: options.url, dataDir: dir });
  const reader = await PolicyDatabase.open({ url: options.url, dataDir: dir });
  try {
    const store = await PolicyStore.open({ database: writer, dataDir: dir, masterKey });
    await store.createTenant({ name: 'bench' });
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      ids.push((await store.createCredential({ tenant: 'bench', name: `c${i}`, scopes: [{ families: ['object:read'], bucket: 'b' }] })).accessKeyId);
    }
    // Another node's view: every first lookup of a key reaches the database, every later one is its cache.
    const node = await PolicyStore.open({ database: reader, dataDir: dir, masterKey });
    const rows: PolicyBenchRow[] = [];
    for (const label of ['credential lookup cold', 'credential lookup warm']) {
      const times: number[] = [];
      for (const id of ids) {
        const t0 = process.hrtime.bigint();
        const resolved = await node.resolveAccessKey(id);
        times.push(Number(process.hrtime.bigint() - t0) / 1000);
        if (!resolved.ok) throw new Error(`lookup of ${id} failed: ${resolved.reason}`);
      }
      times.sort((a, b) => a - b);
      rows.push({ label, engine, p50Us: percentile(times, 0.5), p99Us: percentile(times, 0.99), count: ids.length });
    }
    return rows;
  } finally {
    await reader.close();
    await writer.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** GETs of one 4 KiB object per second through a gateway process on the given policy database, for `seconds`. */
export async function getRate(options: { url?: string; seconds?: number; concurrency?: number }): Promise<PolicyBenchRow> {
  const seconds = options.seconds ?? 10;
  const concurrency = options.concurrency ?? 16;
  const env: Record<string, string> = { ANVIL_MASTER_KEY: randomBytes(32).toString('base64') };
  if (options.url) env.ANVIL_POLICY_DATABASE = options.url;
  // Started as npm start starts it (test/bench/servers.ts), its data in a directory of its own.
  const gateway = await startGatewayProcess({ name: 'gateway', env });
  try {
    const root = new S3Client({ endpoint: gateway.url, region: 'us-east-1', credentials: ROOT, forcePathStyle: true });
    await root.send(new CreateBucketCommand({ Bucket: 'bench' }));
    await root.send(new PutObjectCommand({ Bucket: 'bench', Key: 'small', Body: randomBytes(4096) }));
    // An application credential, so every GET resolves it (from the node's cache) and checks its scopes.
    const admin = remoteTransport({ endpoint: gateway.url, credentials: ROOT, region: 'us-east-1' });
    const created = await admin.call('POST', '/credentials', { body: { tenant: 'root', name: 'bench', scopes: [{ families: ['object:read'], bucket: 'bench' }] } });
    const made = { accessKeyId: created.accessKeyId as string, secretAccessKey: created.secretKey as string };
    const app = new S3Client({ endpoint: gateway.url, region: 'us-east-1', credentials: made, forcePathStyle: true });
    const url = await getSignedUrl(app, new GetObjectCommand({ Bucket: 'bench', Key: 'small' }), { expiresIn: 3600 });
    const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
    const get = () =>
      new Promise<void>((resolve, reject) => {
        request(url, { agent }, (res) => {
          if (res.statusCode !== 200) reject(new Error(`GET answered ${res.statusCode}`));
          res.resume();
          res.on('end', () => resolve());
        }).on('error', reject).end();
      });
    for (let i = 0; i < 200; i++) await get(); // warm every cache
    let done = 0;
    const until = Date.now() + seconds * 1000;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (Date.now() < until) {
        await get();
        done++;
      }
    }));
    agent.destroy();
    root.destroy();
    app.destroy();
    return { label: '4 KiB GET through a gateway', engine: options.url ? 'postgres' : 'sqlite', perSecond: Math.round(done / seconds), count: done };
  } finally {
    await gateway.close();
  }
}

/** The rows as a Markdown table, engines side by side. */
export function formatPolicyTable(rows: PolicyBenchRow[]): string {
  const lines = ['| policy database | engine | p50 | p99 | per second | count |', '|---|---|---:|---:|---:|---:|'];
  const us = (n: number | undefined) => (n === undefined ? '' : `${n.toFixed(1)} µs`);
  for (const r of rows) lines.push(`| ${r.label} | ${r.engine === 'postgres' ? 'PostgreSQL' : 'SQLite'} | ${us(r.p50Us)} | ${us(r.p99Us)} | ${r.perSecond ?? ''} | ${r.count} |`);
  return lines.join('\n');
}

/** Every row for both engines, PostgreSQL on a cluster started for the run (or the one `server` gives). */
export async function runPolicyDatabaseBench(options: { server?: PostgresServer; log?: (line: string) => void } = {}): Promise<PolicyBenchRow[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const server = options.server ?? (await startPostgres());
  const rows: PolicyBenchRow[] = [];
  try {
    for (const url of [undefined, await server.createDatabase()]) rows.push(...(await credentialLookups({ url })));
    for (const url of [undefined, await server.createDatabase()]) rows.push(await getRate({ url }));
  } finally {
    if (!options.server) await server.close();
  }
  for (const r of rows) {
    const numbers = r.perSecond !== undefined ? `${r.perSecond} op/s` : `p50 ${r.p50Us!.toFixed(1)} µs, p99 ${r.p99Us!.toFixed(1)} µs`;
    log(`${r.label.padEnd(28)} ${r.engine.padEnd(8)} ${numbers} (${r.count})`);
  }
  const rate = (engine: string) => rows.find((r) => r.perSecond !== undefined && r.engine === engine)?.perSecond ?? 0;
  log(`4 KiB GET, PostgreSQL / SQLite: ${(rate('postgres') / Math.max(1, rate('sqlite'))).toFixed(2)}`);
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) await runPolicyDatabaseBench();

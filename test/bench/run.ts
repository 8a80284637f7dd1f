/**
 * `npm run bench [section…] [-- --seconds=N --only=TEXT]`: the gateway on its embedded store, MinIO direct, the
 * gateway in front of that MinIO, a bare Node proxy and a TCP forwarder in front of that MinIO, and a bare Node HTTP
 * server, each in its own process started here, driven the same
 * way by load generators in other processes; prints one Markdown table with the ratios. Sections: small (4 KiB rows),
 * large (64 MiB rows, peak RSS), listing (ListObjectsV2 pages over BENCH_LIST_KEYS keys, unfiltered and filtered),
 * relationships (the engine's rows from test/policy/relationships/bench.ts, in process: no server involved, with the
 * tuples in SQLite and again in PostgreSQL), policy (credential lookups and the 4 KiB GET rate with the policy in
 * PostgreSQL beside SQLite, test/bench/policy-database.ts), console (the web console's denial page in Chromium on a
 * 10,000-line window beside a 100-line one; test/bench/console.ts).
 * Default: all six. `--only` keeps the rows whose title contains TEXT; `--seconds` is the time per small-object row
 * and server (default 2). Not a test: figures vary by machine and load; the ratios are what to compare across changes.
 */
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { POSTGRES_BIN, startPostgres } from '../helpers/postgres.ts';
import { runRelationshipBench, type BenchRow } from '../policy/relationships/bench.ts';
import { consoleBench, formatConsoleTable } from './console.ts';
import { formatPolicyTable, runPolicyDatabaseBench } from './policy-database.ts';
import { listingRows } from './listing.ts';
import { ensureLoadGenerators } from './load.ts';
import { largeObjectRows, smallObjectRows, type Target } from './objects.ts';
import { sdkClient } from './requests.ts';
import { startBareProcess, startBareProxyProcess, startGatewayProcess, startMinioProcess, startTcpForwarderProcess, startUpstreamGatewayProcess, type BenchServer } from './servers.ts';
import { formatEngineTable, formatTable, type Row } from './table.ts';

const SECTIONS = ['small', 'large', 'listing', 'relationships', 'policy', 'console'] as const;
type Section = (typeof SECTIONS)[number];

const args = process.argv.slice(2);
const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const asked = args.filter((a) => !a.startsWith('--'));
for (const a of asked) if (!(SECTIONS as readonly string[]).includes(a)) throw new Error(`unknown section ${a}; sections: ${SECTIONS.join(', ')}`);
const sections = new Set<Section>(asked.length > 0 ? (asked as Section[]) : SECTIONS);
const seconds = Number(option('seconds') ?? process.env.BENCH_SECONDS ?? 2);
const only = option('only');
const listKeys = Number(process.env.BENCH_LIST_KEYS ?? 100_000);
const log = (line: string) => process.stderr.write(line + '\n');

/** Date, machine and load, printed above the table: figures mean nothing without them. */
function machine(): string {
  const cpu = cpus();
  const load = loadavg().map((l) => l.toFixed(1)).join(' ');
  return `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC · ${cpu.length} × ${cpu[0]?.model.trim()} · ` +
    `${Math.round(totalmem() / 2 ** 30)} GiB · Linux ${release()} · Node ${process.version} · load average ${load}`;
}

/**
 * The small and large object rows, on MinIO, the bare proxy and the TCP forwarder in front of it, the bare server and two gateways started
 * for them (data on disk).
 */
async function objectRows(): Promise<Row[]> {
  const servers: BenchServer[] = [];
  try {
    const minio = await startMinioProcess();
    servers.push(minio);
    const gateway = await startGatewayProcess({ name: 'gateway' });
    servers.push(gateway);
    const upstream = await startUpstreamGatewayProcess(minio);
    servers.push(upstream);
    const proxy = await startBareProxyProcess(minio);
    servers.push(proxy);
    const forwarder = await startTcpForwarderProcess(minio);
    servers.push(forwarder);
    const bare = await startBareProcess();
    servers.push(bare);
    const targets: Target[] = [
      { server: gateway, bucket: 'bench' },
      { server: minio, bucket: 'bench-direct' },
      { server: upstream, bucket: 'bench' },
      { server: proxy, bucket: 'bench-proxy' },
      { server: forwarder, bucket: 'bench-forwarder' },
      { server: bare, bucket: 'bench' },
    ];
    for (const t of targets.filter((t) => t.server !== bare)) {
      const s3 = sdkClient(t.server);
      await s3.send(new CreateBucketCommand({ Bucket: t.bucket }));
      s3.destroy();
    }
    const rows: Row[] = [];
    if (sections.has('small')) {
      log(`small: 4 KiB rows (${seconds} s per server and row)`);
      rows.push(...(await smallObjectRows({ targets, seconds, only, log })));
    }
    if (sections.has('large')) {
      log('large: 64 MiB rows');
      rows.push(...(await largeObjectRows({ targets, seconds, only, log })));
    }
    return rows;
  } finally {
    for (const s of servers) await s.close();
  }
}

/** The engine's rows with the tuples in SQLite, then in PostgreSQL (a throwaway cluster, when PostgreSQL is here). */
async function engineRows(): Promise<BenchRow[]> {
  const rows = (await runRelationshipBench({ log })).map((r) => ({ ...r, label: `${r.label} (SQLite)` }));
  if (POSTGRES_BIN === undefined) return rows;
  const server = await startPostgres();
  try {
    const url = await server.createDatabase();
    rows.push(...(await runRelationshipBench({ log, url })).map((r) => ({ ...r, label: `${r.label} (PostgreSQL)` })));
  } finally {
    await server.close();
  }
  return rows;
}

const started = Date.now();
const header = machine();
const rows: Row[] = [];
if (sections.has('small') || sections.has('large') || sections.has('listing')) ensureLoadGenerators();
if (sections.has('small') || sections.has('large')) rows.push(...(await objectRows()));
if (sections.has('listing')) {
  log(`listing: ${listKeys} keys`);
  rows.push(...(await listingRows(listKeys, log)));
}
if (sections.has('relationships')) log('relationships: test/policy/relationships/bench.ts');
const relationships = sections.has('relationships') ? await engineRows() : [];
const consoleRows = sections.has('console') ? await consoleBench({ log }) : [];

console.log(`\n${header}\n`);
if (rows.length > 0) console.log(formatTable(rows));
if (relationships.length > 0) {
  console.log(`\nThe relationship engine in process (test/policy/relationships/bench.ts):\n\n${formatEngineTable(relationships)}`);
}
if (sections.has('policy')) {
  log('policy: test/bench/policy-database.ts');
  const policy = await runPolicyDatabaseBench({ log });
  console.log(`\nThe policy database, PostgreSQL beside SQLite (test/bench/policy-database.ts):\n\n${formatPolicyTable(policy)}`);
}
if (consoleRows.length > 0) console.log(`\nThe web console (test/bench/console.ts), median of 5:\n\n${formatConsoleTable(consoleRows)}`);
console.log(`\nbench took ${Math.round((Date.now() - started) / 1000)} s; load average now ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);

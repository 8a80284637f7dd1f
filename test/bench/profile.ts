/**
 * `npx tsx test/bench/profile.ts WORKLOAD [--seconds=10] [--style=presigned|sdk] [--out=DIR]`: one gateway process
 * under `node --cpu-prof`, one workload driven from outside (wrk or curl, as in the bench), then where its CPU went
 * during exactly that workload (samples outside the window, such as start-up and seeding, are left out).
 * WORKLOAD is (get|put)-(4k|64m)-(embedded|upstream), e.g. get-4k-embedded or put-64m-upstream, or
 * list-(embedded|upstream): unfiltered 1,000-key ListObjectsV2 page walks, as the bench's listing row makes them, over
 * BENCH_LIST_KEYS keys (default 20,000 here, so MinIO is filled in seconds), repeated until the time is up.
 */
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatSummary, readProfile, summarize } from './cpu-profile.ts';
import { listingKeys, seedEmbedded, seedMinio, walk } from './listing.ts';
import { curlTransfers, ensureLoadGenerators, wrk, type LoadResult } from './load.ts';
import { seedSmall, SMALL_KEYS } from './objects.ts';
import { buildRequests, presignedUrl, sdkClient, type AuthStyle } from './requests.ts';
import { cpuSeconds, memoryDir, setGatewayNodeArgs, startGatewayProcess, startMinioProcess, startUpstreamGatewayProcess, type BenchServer } from './servers.ts';

const args = process.argv.slice(2);
const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const workload = args.find((a) => !a.startsWith('--')) ?? '';
const m = /^(?:(get|put)-(4k|64m)|(list))-(embedded|upstream)$/.exec(workload);
if (!m) throw new Error('usage: profile.ts ((get|put)-(4k|64m)|list)-(embedded|upstream) [--seconds=10] [--style=presigned|sdk] [--out=DIR]');
const [, verb, sizeOfObjects, list, backend] = m as unknown as [string, 'get' | 'put' | undefined, '4k' | '64m' | undefined, 'list' | undefined, 'embedded' | 'upstream'];
const size = list ?? sizeOfObjects!;
const method = (verb ?? 'get').toUpperCase() as 'GET' | 'PUT';
const seconds = Number(option('seconds') ?? 10);
const style = (option('style') ?? 'presigned') as AuthStyle;
const out = option('out') ?? join(tmpdir(), 'anvil-profiles');
const hrtimeUs = () => Number(process.hrtime.bigint() / 1000n);

ensureLoadGenerators();
mkdirSync(out, { recursive: true });
const profileDir = mkdtempSync(join(out, `${workload}-`));
const listKeys = listingKeys(Number(process.env.BENCH_LIST_KEYS ?? 20_000));
// The listing keys live in memory, as in the bench's listing rows.
const parent = size === 'list' ? memoryDir() : undefined;
const dataDir = parent && backend === 'embedded' ? mkdtempSync(join(parent, 'anvil-profile-list-')) : undefined;
const minio = backend === 'upstream' ? await startMinioProcess(parent) : undefined;
if (size === 'list') await (minio ? seedMinio(minio, listKeys) : seedEmbedded(dataDir!, listKeys));
setGatewayNodeArgs(['--cpu-prof', `--cpu-prof-dir=${profileDir}`]);
const gateway = minio ? await startUpstreamGatewayProcess(minio, parent) : await startGatewayProcess({ name: 'gateway', dataDir });
const servers: BenchServer[] = minio ? [gateway, minio] : [gateway];

let result: LoadResult;
let window: { fromUs: number; toUs: number };
/** CPU seconds each server process spent inside the window. */
const cpu = new Map<BenchServer, number>();
const cpuMark = () => new Map(servers.map((s) => [s, cpuSeconds(s.pid)]));
let before = new Map<BenchServer, number>();
try {
  const target = { server: gateway, bucket: 'prof' };
  const s3 = sdkClient(gateway);
  await s3.send(new CreateBucketCommand({ Bucket: 'prof' }));
  s3.destroy();
  if (size === 'list') {
    await walk(gateway.url, gateway.creds);
    before = cpuMark();
    const fromUs = hrtimeUs();
    const total: LoadResult = { ops: 0, seconds: 0, bytes: 0, errors: 0 };
    while (hrtimeUs() - fromUs < seconds * 1e6) {
      const w = await walk(gateway.url, gateway.creds);
      total.ops += w.pages;
      total.bytes += w.keys;
      total.seconds += w.seconds;
    }
    window = { fromUs, toUs: hrtimeUs() };
    for (const [s, c] of cpuMark()) cpu.set(s, c - before.get(s)!);
    result = total;
  } else if (size === '4k') {
    const body = randomBytes(4096);
    if (method === 'GET') await seedSmall(target, body);
    const reqs = Array.from({ length: SMALL_KEYS }, (_, i) => ({ method, bucket: 'prof', key: `small/${i}`, body: method === 'PUT' ? body : undefined }));
    const requests = await buildRequests(style, gateway, reqs);
    before = cpuMark();
    const fromUs = hrtimeUs();
    result = await wrk({ url: gateway.url, requests, connections: 32, seconds });
    window = { fromUs, toUs: hrtimeUs() };
    for (const [s, c] of cpuMark()) cpu.set(s, c - before.get(s)!);
  } else {
    const file = join(profileDir, 'body');
    writeFileSync(file, randomBytes(64 * 1024 * 1024));
    const urls = (m: 'GET' | 'PUT', n: number) =>
      Promise.all(Array.from({ length: n }, (_, i) => presignedUrl(gateway, { method: m, bucket: 'prof', key: `large/${i % 4}` })));
    if (method === 'GET') await curlTransfers({ urls: await urls('PUT', 4), upload: file, parallel: false });
    before = cpuMark();
    const fromUs = hrtimeUs();
    const total: LoadResult = { ops: 0, seconds: 0, bytes: 0, errors: 0 };
    while (hrtimeUs() - fromUs < seconds * 1e6) {
      const r = await curlTransfers({ urls: await urls(method, 4), upload: method === 'PUT' ? file : undefined, parallel: false });
      total.ops += r.ops;
      total.seconds += r.seconds;
      total.bytes += r.bytes;
      total.errors += r.errors;
    }
    window = { fromUs, toUs: hrtimeUs() };
    for (const [s, c] of cpuMark()) cpu.set(s, c - before.get(s)!);
    result = total;
    rmSync(file);
  }
} finally {
  for (const s of servers) await s.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}

// CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread (tsx's loader hooks get another).
const file = readdirSync(profileDir).filter((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f)).map((f) => join(profileDir, f))[0];
if (!file) throw new Error(`no profile written into ${profileDir}`);
const rates = {
  '4k': () => `${Math.round(result.ops / result.seconds)} op/s`,
  '64m': () => `${(result.bytes / 2 ** 20 / result.seconds).toFixed(0)} MiB/s`,
  list: () => `${Math.round(result.bytes / result.seconds)} keys/s (${result.ops} pages of ListObjectsV2 over ${listKeys.length} keys)`,
};
const rate = rates[size]();
const how = { '4k': `${style}, 32 connections`, '64m': 'presigned, one at a time', list: 'header-signed, one client' }[size];
const perOp = [...cpu].map(([s, c]) => `${s.name === 'minio' ? 'MinIO' : 'gateway'} ${Math.round((c / result.ops) * 1e6)} µs`).join(', ');
const text = `${workload} (${how}): ${rate}, ${result.errors} errors\n` +
  `CPU per request: ${perOp}\n` +
  `profile ${file}\n${formatSummary(summarize(readProfile(file), window))}\n`;
writeFileSync(join(profileDir, 'summary.txt'), text);
console.log(text);

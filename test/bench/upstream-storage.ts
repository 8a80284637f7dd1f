/**
 * `npx tsx test/bench/upstream-storage.ts [--seconds=8] [--rounds=2] [--only=GET|PUT]`: the CPU the upstream backend alone
 * (storage/upstream: lean client, signer, header translation) spends per 4 KiB GetObject and PutObject in front of
 * MinIO, called in process by 32 concurrent loops, without the gateway's pipeline around it. CPU is this process's
 * (process.cpuUsage), so MinIO's share and the machine's load move it far less than a rate: run it on two commits
 * back to back to A/B a change under storage/upstream. GETs measured after a burst of PUTs read higher and vary more
 * (MinIO is still busy with the writes): A/B GETs with --only=GET.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { startMinio, upstreamConfig } from '../helpers/minio.ts';
import { openUpstreamBackend } from '../../storage/upstream/index.ts';
import type { Backend } from '../../storage/backend.ts';

const args = process.argv.slice(2);
const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const seconds = Number(option('seconds') ?? 8);
const rounds = Number(option('rounds') ?? 2);
const only = option('only');
const CONNECTIONS = 32;
const KEYS = 256;

const minio = await startMinio();
const backend: Backend = await openUpstreamBackend(upstreamConfig(minio, { requestTimeoutMs: 30_000 }));
const body = randomBytes(4096);
const checksum = { algorithm: 'CRC32' as const, type: 'FULL_OBJECT' as const, value: Buffer.from(crc32(body).toString(16).padStart(8, '0'), 'hex').toString('base64') };

const put = (i: number) =>
  backend.putObject({ bucket: 'bench', key: `small/${i % KEYS}`, body: Readable.from([body]), size: body.length, meta: { headers: {}, userMetadata: {}, checksum } });
const get = async (i: number) => {
  const read = await backend.getObject({ bucket: 'bench', key: `small/${i % KEYS}` });
  if (!read.bytes) read.body.resume();
};

/** Runs `op` from CONNECTIONS loops for `seconds`; answers op/s and µs of this process's CPU per op. */
async function load(op: (i: number) => Promise<unknown>, secs: number): Promise<{ rate: number; cpuUs: number }> {
  let next = 0;
  const until = Date.now() + secs * 1000;
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    while (Date.now() < until) await op(next++);
  }));
  const used = process.cpuUsage(cpu);
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  return { rate: next / wall, cpuUs: (used.user + used.system) / next };
}

try {
  await backend.createBucket('bench');
  for (let i = 0; i < KEYS; i++) await put(i);
  const ops = ([['GET', get], ['PUT', put]] as const).filter(([name]) => !only || name === only);
  for (const [, op] of ops) await load(op, 2);
  for (let round = 1; round <= rounds; round++) {
    for (const [name, op] of ops) {
      const r = await load(op, seconds);
      console.log(`round ${round} ${name} 4 KiB, ${CONNECTIONS} at once: ${Math.round(r.rate)} op/s, ${Math.round(r.cpuUs)} µs CPU/op in process`);
    }
  }
} finally {
  await backend.close();
  await minio.close();
}

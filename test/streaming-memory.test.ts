/**
 * Bodies stream end to end: a 1 GiB upload and download through a gateway process leave its peak memory flat
 * (bounded far below the object size), and the bytes survive the trip intact.
 */
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import test from 'ava';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ROOT } from './helpers/gateway.ts';

const GiB = 1024 ** 3;
const CHUNK = Buffer.alloc(1024 * 1024, 0x5a);

/** Peak resident memory of a process, in bytes. */
function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

function generated(size: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= size) return void this.push(null);
      const n = Math.min(CHUNK.length, size - sent);
      sent += n;
      this.push(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n));
    },
  });
}

test('a 1 GiB PUT and GET keep the gateway process memory flat', async (t) => {
  t.timeout(5 * 60_000);
  const dataDir = mkdtempSync(join(tmpdir(), 'anvil-mem-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
    // One process: the RSS measured below is that of the process serving the transfer.
    env: { ...process.env, ANVIL_WORKERS: '1', ANVIL_ADDRESS: '127.0.0.1:0', ANVIL_DATA_DIR: dataDir, ANVIL_ROOT_ACCESS_KEY: ROOT.accessKeyId, ANVIL_ROOT_SECRET_KEY: ROOT.secretAccessKey },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d) => {
        out += d;
        // The JSON log line the gateway writes once it listens.
        const m = /"url":"(http:\/\/[^"]+)"[^\n]*"msg":"listening"/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`gateway exited ${code}`)));
    });
    const s3 = new S3Client({ endpoint: url, region: 'us-east-1', credentials: ROOT, forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: 'mem' }));
    const before = peakRss(child.pid!);
    await s3.send(new PutObjectCommand({ Bucket: 'mem', Key: 'big', Body: generated(GiB), ContentLength: GiB }));
    const res = await s3.send(new GetObjectCommand({ Bucket: 'mem', Key: 'big' }));
    const hash = createHash('sha256');
    let size = 0;
    for await (const c of res.Body as AsyncIterable<Uint8Array>) {
      hash.update(c);
      size += c.length;
    }
    const expected = createHash('sha256');
    for await (const c of generated(GiB)) expected.update(c as Buffer);
    t.is(size, GiB);
    t.is(hash.digest('hex'), expected.digest('hex'));
    const grown = peakRss(child.pid!) - before;
    t.log(`gateway peak RSS grew by ${(grown / 1024 / 1024).toFixed(1)} MiB for a 1 GiB round trip`);
    t.true(grown < 128 * 1024 * 1024, `peak RSS grew by ${grown} bytes`);
    s3.destroy();
  } finally {
    child.kill('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  }
});

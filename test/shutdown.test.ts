/**
 * Graceful shutdown of the real process under `npm start` (compiled build, npm forwarding the signal, two worker
 * processes behind the primary): a SIGTERM during a 64 MiB upload lets the upload finish and be acknowledged, then
 * the process exits 0; a second signal exits at once, and the interrupted upload leaves nothing behind. Objects are
 * checked by a gateway reopened on the data. A gateway whose log reader went away still exits.
 */
import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ROOT, startTestGateway } from './helpers/gateway.ts';
import { alive, childrenOf } from './helpers/processes.ts';

const REPO = join(import.meta.dirname, '..');
const MiB = 1024 * 1024;

interface Started {
  child: ChildProcess;
  url: string;
  pid: number;
  lines: string[];
  exited: Promise<number | null>;
}

/** `npm start` on a fresh data directory; resolves once the gateway logs that it listens. */
function npmStart(dataDir: string, extraEnv: Record<string, string> = {}): Promise<Started> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ANVIL_')));
  const child = spawn('npm', ['start'], {
    cwd: REPO,
    env: {
      ...env,
      ANVIL_DATA_DIR: dataDir,
      ANVIL_ADDRESS: '127.0.0.1:0',
      ANVIL_ROOT_ACCESS_KEY: ROOT.accessKeyId,
      ANVIL_ROOT_SECRET_KEY: ROOT.secretAccessKey,
      ANVIL_WORKERS: '2',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let pending = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const parts = pending.split('\n');
      pending = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line);
        if (entry.msg === 'listening') resolve({ child, url: entry.url, pid: entry.pid, lines, exited });
      }
    });
    child.stderr!.resume();
    void exited.then((code) => reject(new Error(`npm start exited with ${code} before listening:\n${lines.join('\n')}`)));
  });
}

/** 64 MiB of random bytes, sent in 1 MiB chunks `delayMs` apart; `onChunk` hears the count sent. */
function slowBody(data: Buffer, delayMs: number, onChunk: (n: number) => void): Readable {
  let n = 0;
  return Readable.from((async function* () {
    for (let offset = 0; offset < data.length; offset += MiB) {
      await new Promise((r) => setTimeout(r, delayMs));
      onChunk(++n);
      yield data.subarray(offset, offset + MiB);
    }
  })());
}



/** A failed test must not leave npm, the gateway or its workers (a stuck worker outlives its primary) running. */
function killLeftovers(gw: Started): void {
  for (const pid of [...childrenOf(gw.pid), gw.pid, gw.child.pid]) if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
}

/** `npm start` on `dataDir` (killed if the test fails), a client for it, a bucket, and 64 MiB to upload. */
async function gatewayWithBucket(t: ExecutionContext, dataDir: string, bucket: string): Promise<{ gw: Started; s3: S3Client; data: Buffer }> {
  const gw = await npmStart(dataDir);
  t.teardown(() => killLeftovers(gw));
  const s3 = new S3Client({ endpoint: gw.url, region: 'us-east-1', credentials: ROOT, forcePathStyle: true, maxAttempts: 1 });
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return { gw, s3, data: randomBytes(64 * MiB) };
}

test.serial('SIGTERM during a 64 MiB upload: the upload completes, then npm start exits 0', async (t) => {
  t.timeout(5 * 60_000);
  const dataDir = mkdtempSync(join(tmpdir(), 'anvil-shutdown-'));
  try {
    const { gw, s3, data } = await gatewayWithBucket(t, dataDir, 'drain');
    const body = slowBody(data, 25, (n) => {
      if (n === 8) gw.child.kill('SIGTERM');
    });
    const put = await s3.send(new PutObjectCommand({ Bucket: 'drain', Key: 'big.bin', Body: body, ContentLength: data.length }));
    t.is(put.ETag, `"${createHash('md5').update(data).digest('hex')}"`);
    t.is(await gw.exited, 0);
    t.false(alive(gw.pid), 'the gateway process is gone');
    const logged = gw.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l).msg);
    t.true(logged.includes('signal received'));
    t.is(logged.filter((m) => m === 'worker draining').length, 2, 'both workers drained');
    t.true(logged.includes('stopped'));
    s3.destroy();

    const reopened = await startTestGateway({ ANVIL_DATA_DIR: dataDir });
    try {
      const head = await reopened.s3.send(new HeadObjectCommand({ Bucket: 'drain', Key: 'big.bin' }));
      t.is(head.ContentLength, 64 * MiB);
      t.is(head.ETag, put.ETag);
    } finally {
      await reopened.gw.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test.serial('a second signal exits at once; the interrupted upload fails cleanly and leaves no object', async (t) => {
  t.timeout(5 * 60_000);
  const dataDir = mkdtempSync(join(tmpdir(), 'anvil-shutdown-'));
  try {
    const { gw, s3, data } = await gatewayWithBucket(t, dataDir, 'cut');
    const body = slowBody(data, 100, (n) => {
      if (n === 4) gw.child.kill('SIGTERM');
      if (n === 6) gw.child.kill('SIGTERM');
    });
    await t.throwsAsync(s3.send(new PutObjectCommand({ Bucket: 'cut', Key: 'partial.bin', Body: body, ContentLength: data.length })));
    await gw.exited;
    t.false(alive(gw.pid));
    t.true(gw.lines.some((l) => l.includes('second signal: exiting now')));
    s3.destroy();

    const reopened = await startTestGateway({ ANVIL_DATA_DIR: dataDir });
    try {
      await t.throwsAsync(reopened.s3.send(new HeadObjectCommand({ Bucket: 'cut', Key: 'partial.bin' })), { name: 'NotFound' });
    } finally {
      await reopened.gw.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test.serial('a gateway whose log reader goes away (a log shipper died) still exits on SIGTERM', async (t) => {
  t.timeout(5 * 60_000);
  const dataDir = mkdtempSync(join(tmpdir(), 'anvil-shutdown-'));
  try {
    // The reader goes before the signal, or just after it, while the shutdown's own lines are being written.
    for (const [round, readerGoesFirst] of [true, false, false, false, false, true].entries()) {
      // A primary cuts off workers that outlive its shutdown timeout: longer than the wait below, so a worker stuck
      // on its log would show as a gateway still alive.
      const gw = await npmStart(dataDir, { ANVIL_SHUTDOWN_TIMEOUT_MS: '300000' });
      t.teardown(() => killLeftovers(gw));
      await Promise.all(Array.from({ length: 20 }, () => fetch(`${gw.url}/`).then((r) => r.arrayBuffer()).catch(() => {})));
      if (readerGoesFirst) gw.child.stdout!.destroy();
      process.kill(gw.pid, 'SIGTERM');
      if (!readerGoesFirst) gw.child.stdout!.destroy();
      const deadline = Date.now() + 60_000;
      while (alive(gw.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const hung = alive(gw.pid);
      killLeftovers(gw);
      if (hung) return t.fail(`round ${round}: the gateway hung at exit on its unread log`);
    }
    t.pass();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

/**
 * Nothing buffered is lost on a stop: the denial rows of refusals made just before SIGTERM are in the denial log
 * after the exit, with worker processes too (a signal while a worker's siblings are still starting, a primary that
 * dies), on SQLite and on PostgreSQL, and a request cut off at the shutdown timeout still writes its access line (`aborted`). The gateway runs as
 * `npm start` runs it (gateway/main.ts in its own process); the denial log is read back with `anvil denials`.
 */
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { anvil } from './helpers/cli.ts';
import { ROOT } from './helpers/gateway.ts';
import { postgresOrExplain, sharedPostgres } from './helpers/postgres.ts';
import { alive, childrenOf } from './helpers/processes.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));

interface Running {
  child: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
}

/** gateway/main.ts on `dataDir`, listening on loopback `port`. */
function spawnGateway(dataDir: string, port: number, env: Record<string, string>): Running {
  const child = spawn(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
    cwd: REPO,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ANVIL_DATA_DIR: dataDir,
      ANVIL_ADDRESS: `127.0.0.1:${port}`,
      ANVIL_ROOT_ACCESS_KEY: ROOT.accessKeyId,
      ANVIL_ROOT_SECRET_KEY: ROOT.secretAccessKey,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr!.resume();
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, lines, exited };
}

/** A free loopback port (bound and released; the gateway binds it next). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Status of a GET, or undefined while nothing listens. */
function get(port: number, path: string, userAgent = 'probe'): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { 'user-agent': userAgent } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/** Polls the health endpoint until some process of the gateway answers it (a worker does before its siblings). */
async function firstAnswer(port: number, gw: Running): Promise<void> {
  const deadline = Date.now() + 120_000;
  while ((await get(port, '/_anvil/health/live')) !== 200) {
    if (gw.child.exitCode !== null) throw new Error(`gateway exited:\n${gw.lines.join('\n')}`);
    if (Date.now() > deadline) throw new Error('gateway did not answer within 120 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}



/** The user agents of the denial rows in `dataDir` (read by the CLI in local mode). */
async function deniedAgents(t: ExecutionContext, dataDir: string, env: Record<string, string> = {}): Promise<string[]> {
  const run = await anvil(['--data-dir', dataDir, 'denials', '--json'], env);
  t.is(run.code, 0, run.stderr);
  return (JSON.parse(run.stdout) as Array<{ userAgent?: string }>).map((r) => r.userAgent ?? '');
}

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'anvil-shutdown-records-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A SIGTERM right after a refusal, `rounds` times, with two workers on `env`'s policy database; every row is kept. */
async function refusalThenSigterm(t: ExecutionContext, env: Record<string, string>, rounds: number): Promise<void> {
  const dataDir = tempDir(t);
  for (let i = 0; i < rounds; i++) {
    const port = await freePort();
    const gw = spawnGateway(dataDir, port, { ANVIL_WORKERS: '2', ...env });
    t.teardown(() => {
      for (const pid of [...childrenOf(gw.child.pid!), gw.child.pid!]) if (alive(pid)) process.kill(pid, 'SIGKILL');
    });
    // The first worker to listen answers while its sibling may still be starting: the signal comes at once.
    await firstAnswer(port, gw);
    t.is(await get(port, `/no-such-bucket/key${i}`, `flushprobe-${i}`), 403);
    gw.child.kill('SIGTERM');
    t.is(await gw.exited, 0, gw.lines.join('\n'));
  }
  const agents = await deniedAgents(t, dataDir, env);
  t.deepEqual(agents.filter((a) => a.startsWith('flushprobe-')).sort(), Array.from({ length: rounds }, (_, i) => `flushprobe-${i}`));
}

test.serial('with workers, a SIGTERM right after a refusal keeps its denial row, also while workers are still starting', async (t) => {
  t.timeout(5 * 60_000);
  await refusalThenSigterm(t, {}, 4);
});

if (postgresOrExplain(test, 'denial rows kept at shutdown on PostgreSQL')) {
  test.after.always(async () => (await sharedPostgres()).close());
  test.serial('the same on a PostgreSQL policy database', async (t) => {
    t.timeout(5 * 60_000);
    const url = await (await sharedPostgres()).createDatabase();
    await refusalThenSigterm(t, { ANVIL_POLICY_DATABASE: url, ANVIL_MASTER_KEY: '33'.repeat(32) }, 3);
  });
}

test.serial('a worker whose primary dies drains and writes its queued denial rows before it exits', async (t) => {
  t.timeout(5 * 60_000);
  const dataDir = tempDir(t);
  const port = await freePort();
  const gw = spawnGateway(dataDir, port, { ANVIL_WORKERS: '2' });
  const primary = gw.child.pid!;
  t.teardown(() => {
    for (const pid of [...childrenOf(primary), primary]) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  const deadline = Date.now() + 120_000;
  while (!gw.lines.some((l) => l.includes('"msg":"listening"') && l.includes('"workers":2'))) {
    if (Date.now() > deadline || gw.child.exitCode !== null) return t.fail(`no listening line:\n${gw.lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const workers = childrenOf(primary);
  t.is(workers.length, 2);
  // Refused at once, then the primary dies before the rows' batch is due (FLUSH_MS).
  const statuses = await Promise.all([0, 1, 2, 3].map((i) => get(port, `/no-such-bucket/orphan${i}`, `orphanprobe-${i}`)));
  process.kill(primary, 'SIGKILL');
  t.deepEqual(statuses, [403, 403, 403, 403]);
  while (workers.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.false(workers.some(alive), 'the workers exit once their primary is gone');
  const agents = await deniedAgents(t, dataDir);
  t.deepEqual(agents.filter((a) => a.startsWith('orphanprobe-')).sort(), ['orphanprobe-0', 'orphanprobe-1', 'orphanprobe-2', 'orphanprobe-3']);
});

test.serial('a request cut off at the shutdown timeout still writes its access line, marked aborted', async (t) => {
  t.timeout(5 * 60_000);
  const dataDir = tempDir(t);
  const port = await freePort();
  const gw = spawnGateway(dataDir, port, { ANVIL_WORKERS: '1', ANVIL_SHUTDOWN_TIMEOUT_MS: '500' });
  t.teardown(() => gw.child.kill('SIGKILL'));
  await firstAnswer(port, gw);
  const s3 = new S3Client({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', credentials: ROOT, forcePathStyle: true });
  await s3.send(new CreateBucketCommand({ Bucket: 'cut' }));
  s3.destroy();
  // Three uploads that send a little of their 1 MiB body and then stall until the gateway cuts them off.
  const puts = await Promise.all(
    [0, 1, 2].map(async (i) => {
      const url = new URL(await getSignedUrl(s3, new PutObjectCommand({ Bucket: 'cut', Key: `k${i}` }), { expiresIn: 300 }));
      const req = request({ host: '127.0.0.1', port, method: 'PUT', path: url.pathname + url.search, headers: { 'content-length': 1024 * 1024 } });
      const ended = new Promise<void>((resolve) => {
        req.on('error', () => resolve());
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => resolve());
          res.on('error', () => resolve());
        });
      });
      req.write(Buffer.alloc(64 * 1024));
      return { ended };
    }),
  );
  // The gateway reads their bodies (64 KiB each of 1 MiB) and waits for the rest; then it is stopped.
  await new Promise((r) => setTimeout(r, 500));
  gw.child.kill('SIGTERM');
  t.is(await gw.exited, 1, 'requests were cut off');
  await Promise.all(puts.map((p) => p.ended));
  const logged = gw.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; operation?: string; key?: string; aborted?: boolean; requests?: number });
  t.true(logged.some((l) => l.msg.startsWith('shutdown timeout') && l.requests === 3));
  const cut = logged.filter((l) => l.msg === 'request' && l.operation === 'PutObject');
  t.deepEqual(cut.map((l) => l.key).sort(), ['k0', 'k1', 'k2']);
  t.true(cut.every((l) => l.aborted === true));
});

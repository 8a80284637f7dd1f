/**
 * One owner per data directory, and files that are never half-written. A second gateway started in another PID
 * namespace (as a container sharing the volume would be) against a running one is refused and changes nothing: not the
 * running gateway's in-flight upload, not its root credential. A damaged master key file is reported with its path
 * and the way out, never used as a key.
 */
import { CreateBucketCommand, GetObjectCommand, ListBucketsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createServer, type AddressInfo } from 'node:net';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { loadConfig } from '../gateway/config.ts';
import { memoryLogger } from '../gateway/logging.ts';
import { startGateway } from '../gateway/server.ts';
import { MasterKeyFileError } from '../policy/errors.ts';
import { DataDirInUseError } from '../storage/index.ts';
import { bodyBytes, pattern, ROOT, startTestGateway } from './helpers/gateway.ts';
import { RawConnection, signedRequestBytes } from './helpers/raw-socket.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));

/** Every file under `dir` with its size and modification time (stat only: opening anvil.lock would drop its lock). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    const s = statSync(path);
    out[relative(dir, path)] = entry.isDirectory() ? 'dir' : `${s.size} ${s.mtimeMs}`;
  }
  return out;
}

/** Why a process cannot be started in a new PID namespace here, or undefined when it can. */
function pidNamespaceUnavailable(): string | undefined {
  try {
    execFileSync('unshare', ['--pid', '--fork', 'true'], { stdio: 'pipe' });
    return undefined;
  } catch (err) {
    return `unshare --pid --fork is not possible here: ${(err as Error).message.split('\n')[0]}`;
  }
}

/** Runs `npm start`'s entry point in a new PID namespace; its exit code and output. */
function gatewayInNewPidNamespace(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', ['--pid', '--fork', '--', process.execPath, '--import', 'tsx', 'gateway/main.ts'], {
      cwd: REPO,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

const noPidNs = pidNamespaceUnavailable();
if (noPidNs) console.log(`PID namespace test skipped: ${noPidNs}`);
(noPidNs ? test.skip : test)('a second gateway in another PID namespace is refused and changes nothing', async (t) => {
  // The stalled upload below must stay in flight while the second gateway starts, however long that takes.
  const tg = await startTestGateway({ ANVIL_IDLE_TIMEOUT_MS: '0' });
  const conn = await RawConnection.open(tg.gw.url);
  try {
    await tg.s3.send(new CreateBucketCommand({ Bucket: 'owned' }));
    const committed = pattern(100_000);
    await tg.s3.send(new PutObjectCommand({ Bucket: 'owned', Key: 'committed', Body: committed }));
    // An upload in flight: half its body sent, its first 1 MiB batch in the first gateway's temp file, the rest
    // still to come.
    const body = pattern(4 * 1024 * 1024);
    const { head } = await signedRequestBytes({ url: tg.gw.url, method: 'PUT', path: '/owned/in-flight', declaredLength: body.length });
    conn.write(head);
    conn.write(body.subarray(0, body.length / 2));
    const tmpBytes = (): number => readdirSync(join(tg.dataDir, 'tmp')).reduce((n, f) => n + statSync(join(tg.dataDir, 'tmp', f)).size, 0);
    // Its blob's fan-out directory is made while the body arrives (blobs.ts), under load after the first MiB.
    const fanOutMade = (): boolean =>
      readdirSync(join(tg.dataDir, 'tmp')).some((f) => {
        const id = f.split('.')[1] ?? '';
        return existsSync(join(tg.dataDir, 'blobs', id.slice(0, 2), id.slice(2, 4)));
      });
    for (let i = 0; tmpBytes() < 1024 * 1024 || !fanOutMade(); i++) {
      if (i > 600) throw new Error('the first half of the upload never reached its temp file');
      await new Promise((r) => setTimeout(r, 100));
    }
    // The first gateway's own pending writes (last-use times, gathered and written within a second) land first.
    await tg.gw.policy.flushLastUse();
    const before = snapshot(tg.dataDir);

    const other = { accessKeyId: 'AKIAOTHERROOT0000001', secretAccessKey: 'another-root-secret-key-000000000000000' };
    const second = await gatewayInNewPidNamespace({
      ANVIL_DATA_DIR: tg.dataDir,
      ANVIL_ADDRESS: '127.0.0.1:0',
      ANVIL_ROOT_ACCESS_KEY: other.accessKeyId,
      ANVIL_ROOT_SECRET_KEY: other.secretAccessKey,
    });
    t.is(second.code, 1, second.output);
    t.regex(second.output, /anvil: cannot start: data directory .* is in use by another Anvil gateway process/);
    t.notRegex(second.output, /listening/);
    t.deepEqual(snapshot(tg.dataDir), before, 'the refused start changed nothing in the directory');

    // The first gateway's in-flight upload completes whole, and its root credential is still the root credential.
    conn.write(body.subarray(body.length / 2));
    const answer = await conn.response();
    t.is(answer.status, 200);
    const stored = await bodyBytes((await tg.s3.send(new GetObjectCommand({ Bucket: 'owned', Key: 'in-flight' }))).Body);
    t.true(stored.equals(body), 'the in-flight upload was stored whole');
    const kept = await bodyBytes((await tg.s3.send(new GetObjectCommand({ Bucket: 'owned', Key: 'committed' }))).Body);
    t.true(kept.equals(committed));
    t.deepEqual((await tg.s3.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name), ['owned']);
    const intruder = tg.client(other);
    const refused = await t.throwsAsync(intruder.send(new ListBucketsCommand({})));
    t.is(refused!.name, 'InvalidAccessKeyId', 'the refused start did not install its root credential');
  } finally {
    conn.destroy();
    await tg.close();
  }
});

test('embedded and upstream gateways never share a data directory; upstream gateways share one', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'anvil-shared-'));
  // An upstream nobody listens on: gateways in front of it start anyway (and answer 503 until it is back).
  const upstream = {
    ANVIL_DATA_DIR: dataDir,
    ANVIL_ADDRESS: '127.0.0.1:0',
    ANVIL_ROOT_ACCESS_KEY: ROOT.accessKeyId,
    ANVIL_ROOT_SECRET_KEY: ROOT.secretAccessKey,
    ANVIL_BACKEND: 'upstream',
    ANVIL_UPSTREAM_ENDPOINT: 'http://127.0.0.1:9',
    ANVIL_UPSTREAM_ACCESS_KEY: 'x',
    ANVIL_UPSTREAM_SECRET_KEY: 'y',
  };
  const quiet = { logger: memoryLogger([]) };
  try {
    const a = await startGateway(loadConfig(upstream), quiet);
    const b = await startGateway(loadConfig(upstream), quiet);
    const embedded = loadConfig({ ...upstream, ANVIL_BACKEND: 'embedded' });
    await t.throwsAsync(startGateway(embedded, quiet), { instanceOf: DataDirInUseError });
    await a.close();
    await b.close();
    const owner = await startGateway(embedded, quiet);
    await t.throwsAsync(startGateway(loadConfig(upstream), quiet), { instanceOf: DataDirInUseError });
    await owner.close();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

/** Files under `dir` this process holds open (Linux /proc), deleted ones included. */
function openFilesUnder(dir: string): string[] {
  const open: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(`${dir}/`)) open.push(target);
    } catch {
      // closed between the listing and the read
    }
  }
  return open;
}

test('a stopped gateway holds no file of its data directory open, so removing the directory frees its space at once', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'anvil-closed-'));
  try {
    const config = loadConfig({ ANVIL_DATA_DIR: dataDir, ANVIL_ADDRESS: '127.0.0.1:0', ANVIL_ROOT_ACCESS_KEY: ROOT.accessKeyId, ANVIL_ROOT_SECRET_KEY: ROOT.secretAccessKey });
    const gw = await startGateway(config, { logger: memoryLogger([]) });
    const s3 = new S3Client({ endpoint: gw.url, region: config.region, credentials: ROOT, forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: 'held' }));
    await s3.send(new PutObjectCommand({ Bucket: 'held', Key: 'k', Body: pattern(1024 * 1024) }));
    t.is((await bodyBytes((await s3.send(new GetObjectCommand({ Bucket: 'held', Key: 'k' }))).Body)).length, 1024 * 1024);
    s3.destroy();
    t.not(openFilesUnder(dataDir).length, 0, 'a running gateway has its databases open');
    await gw.close();
    // A connection left to garbage collection would keep a removed directory's files, and their space, for a while.
    t.deepEqual(openFilesUnder(dataDir), []);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('an empty or truncated master key file is reported with its path and the recovery step', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'anvil-key-'));
  const config = loadConfig({ ANVIL_DATA_DIR: dataDir, ANVIL_ADDRESS: '127.0.0.1:0' });
  const quiet = { logger: memoryLogger([]) };
  try {
    // What a first start on a full disk used to leave: an empty key file and nothing else.
    writeFileSync(join(dataDir, 'master.key'), '');
    const empty = await t.throwsAsync(startGateway(config, quiet), { instanceOf: MasterKeyFileError });
    t.regex(empty!.message, new RegExp(`${join(dataDir, 'master.key')} is empty`));
    t.regex(empty!.message, /No policy database exists yet.*delete the file and start again/);
    rmSync(join(dataDir, 'master.key'));

    // A good start writes a whole key; then the key file is damaged after secrets were sealed with it.
    const gw = await startGateway(config, quiet);
    const root = gw.root;
    await gw.close();
    const key = readdirSync(dataDir).includes('master.key') ? statSync(join(dataDir, 'master.key')).size : 0;
    t.is(key, 45, 'base64 of 32 bytes and a newline');
    t.deepEqual(readdirSync(dataDir).filter((n) => n.includes('.tmp')), [], 'no temporary file is left');
    writeFileSync(join(dataDir, 'master.key'), 'c2hvcnQ=\n');
    const truncated = await t.throwsAsync(startGateway(config, quiet), { instanceOf: MasterKeyFileError });
    t.regex(truncated!.message, /holds 9 bytes that are not a 32-byte key/);
    t.regex(truncated!.message, /restore master\.key from a backup, or set ANVIL_MASTER_KEY/);
    t.truthy(root.accessKeyId);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

/** Runs the real gateway entry point (optionally as another user) and returns what it printed and its exit code. */
function startOnce(env: Record<string, string>, asUser?: number): { status: number | null; output: string } {
  const node = [process.execPath, '--import', 'tsx', 'gateway/main.ts'];
  const argv = asUser === undefined ? node : ['setpriv', `--reuid=${asUser}`, `--regid=${asUser}`, '--clear-groups', ...node];
  try {
    const out = execFileSync(argv[0]!, argv.slice(1), {
      cwd: REPO,
      env: { PATH: process.env.PATH ?? '', HOME: tmpdir(), ANVIL_ADDRESS: '127.0.0.1:0', ...env },
      timeout: 60_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { status: 0, output: out.toString() };
  } catch (err) {
    const e = err as { status: number | null; stdout?: Buffer; stderr?: Buffer };
    return { status: e.status, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

test('an address already in use is one clear line and exit status 1, with one worker or two', async (t) => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const { port } = taken.address() as AddressInfo;
  try {
    for (const workers of ['1', '2']) {
      const dataDir = mkdtempSync(join(tmpdir(), 'anvil-port-'));
      const run = startOnce({ ANVIL_DATA_DIR: dataDir, ANVIL_ADDRESS: `127.0.0.1:${port}`, ANVIL_WORKERS: workers });
      t.is(run.status, 1, run.output);
      t.regex(run.output, new RegExp(`anvil: cannot start: (listen|bind) EADDRINUSE\\b.* 127\\.0\\.0\\.1:${port}`));
      t.notRegex(run.output, /\n\s+at /, 'no stack trace');
      rmSync(dataDir, { recursive: true, force: true });
    }
  } finally {
    taken.close();
  }
});

test('a master key path that is a directory, a dangling link, too open or unreadable is one clear error, never replaced', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'anvil-key-'));
  const config = loadConfig({ ANVIL_DATA_DIR: dataDir, ANVIL_ADDRESS: '127.0.0.1:0' });
  const quiet = { logger: memoryLogger([]) };
  const keyPath = join(dataDir, 'master.key');
  try {
    // A directory in its place: the real entry point prints one line naming the path and the way out, no stack.
    mkdirSync(keyPath);
    const dir = startOnce({ ANVIL_DATA_DIR: dataDir });
    t.not(dir.status, 0);
    t.regex(dir.output, new RegExp(`anvil: cannot start: master key file ${keyPath} is a directory`));
    t.regex(dir.output, /remove it and start again/);
    t.notRegex(dir.output, /\n\s+at /, 'no stack trace');
    t.true(statSync(keyPath).isDirectory(), 'left as it was');
    rmSync(keyPath, { recursive: true });

    // A dangling symbolic link: nothing is generated through it.
    symlinkSync(join(dataDir, 'elsewhere.key'), keyPath);
    const link = await t.throwsAsync(startGateway(config, quiet), { instanceOf: MasterKeyFileError });
    t.regex(link!.message, /is a link to nothing/);
    t.false(readdirSync(dataDir).includes('elsewhere.key'));
    rmSync(keyPath);

    // A good start, then the key file made readable by others: refused until chmod 600, then the same key works.
    const gw = await startGateway(config, quiet);
    const root = gw.root;
    await gw.close();
    const key = readFileSync(keyPath, 'utf8');
    chmodSync(keyPath, 0o644);
    const open = await t.throwsAsync(startGateway(config, quiet), { instanceOf: MasterKeyFileError });
    t.regex(open!.message, new RegExp(`${keyPath} has mode 0644.*chmod 600 ${keyPath}`));
    t.is(readFileSync(keyPath, 'utf8'), key, 'the key is not replaced');
    chmodSync(keyPath, 0o600);
    const again = await startGateway(config, quiet);
    t.is(again.root.accessKeyId, root.accessKeyId);
    await again.close();

    // Unreadable by the user the gateway runs as (root owns the key, the gateway runs as nobody).
    if (process.getuid?.() !== 0) return t.log('skipped the unreadable case: needs root to start a gateway as another user');
    chownSync(dataDir, 65534, 65534);
    for (const name of readdirSync(dataDir)) if (name !== 'master.key') chownSync(join(dataDir, name), 65534, 65534);
    const denied = startOnce({ ANVIL_DATA_DIR: dataDir }, 65534);
    t.not(denied.status, 0);
    t.regex(denied.output, new RegExp(`master key file ${keyPath} cannot be read \\(EACCES\\).*chmod 600`));
    t.notRegex(denied.output, /\n\s+at /, 'no stack trace');
    t.is(readFileSync(keyPath, 'utf8'), key, 'the key is not replaced');
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a first start that fails after generating the root credential takes it back: the next start shows a working one', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'anvil-root-'));
  const quiet = { logger: memoryLogger([]) };
  // Something else holds the port: the start fails at its very end, after the root credential was committed.
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  const busy = (holder.address() as AddressInfo).port;
  try {
    const err = await t.throwsAsync(startGateway(loadConfig({ ANVIL_DATA_DIR: dataDir, ANVIL_ADDRESS: `127.0.0.1:${busy}` }), quiet));
    t.is((err as NodeJS.ErrnoException).code, 'EADDRINUSE');
    const gw = await startGateway(loadConfig({ ANVIL_DATA_DIR: dataDir, ANVIL_ADDRESS: '127.0.0.1:0' }), quiet);
    try {
      t.true(gw.root.created, 'the next start creates the root, so it shows its secret');
      t.truthy(gw.root.secretKey);
      const s3 = new S3Client({ endpoint: gw.url, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: gw.root.accessKeyId, secretAccessKey: gw.root.secretKey! } });
      t.deepEqual((await s3.send(new ListBucketsCommand({}))).Buckets ?? [], []);
      s3.destroy();
    } finally {
      await gw.close();
    }
  } finally {
    holder.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

/** The embedded store: the conformance suite, then what only this engine promises (crash safety, sweep at open). */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import Database from 'better-sqlite3';
import { DataDirInUseError, lockDataDir, NoSuchKeyError, openEmbeddedStore, type EmbeddedStore } from '../../storage/index.ts';
import { bodyOf, conformance, readAll } from './conformance.ts';

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'anvil-embedded-'));
}

conformance(test, 'embedded', async () => {
  const dataDir = await tempDir();
  const backend = await openEmbeddedStore({ dataDir });
  return {
    backend,
    cleanup: async () => {
      await backend.close();
      await rm(dataDir, { recursive: true, force: true });
    },
    leftovers: async () => readdir(join(dataDir, 'tmp')),
  };
});

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Every blob file under dataDir/blobs. */
async function blobFiles(dataDir: string): Promise<string[]> {
  const entries = await readdir(join(dataDir, 'blobs'), { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => e.name);
}

async function withStore(fn: (store: EmbeddedStore, dataDir: string) => Promise<void>): Promise<void> {
  const dataDir = await tempDir();
  const store = await openEmbeddedStore({ dataDir });
  try {
    await fn(store, dataDir);
  } finally {
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

const META = { headers: {}, userMetadata: {} };
const putString = (s: EmbeddedStore, key: string, data: string) =>
  s.putObject({ bucket: 'b', key, body: bodyOf(data), size: Buffer.byteLength(data), meta: META });

/** A child process that commits `old`, then starts slow writes (an overwrite and a new key) and reports progress. */
const CRASH_CHILD = `
import { Readable } from 'node:stream';
import { openEmbeddedStore } from ${JSON.stringify(join(ROOT, 'storage/index.ts'))};
const store = await openEmbeddedStore({ dataDir: process.env.DATA_DIR });
await store.createBucket('b');
await store.putObject({ bucket: 'b', key: 'old', body: Readable.from([Buffer.from('old body')]), size: 8, meta: { headers: {}, userMetadata: {} } });
const slow = () => {
  let sent = 0;
  return new Readable({
    read() {
      setTimeout(() => {
        this.push(Buffer.alloc(64 * 1024, 7));
        sent += 1;
        if (sent === 16) process.stdout.write('streaming\\n');
      }, 2);
    },
  });
};
const size = 1024 * 1024 * 1024;
void store.putObject({ bucket: 'b', key: 'old', body: slow(), size, meta: { headers: {}, userMetadata: {} } });
void store.putObject({ bucket: 'b', key: 'new', body: slow(), size, meta: { headers: {}, userMetadata: {} } });
`;

test('embedded: SIGKILL mid-stream leaves the old object, no new one, no temp file, no orphan blob', async (t) => {
  const dataDir = await tempDir();
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CRASH_CHILD], {
    cwd: ROOT,
    env: { ...process.env, DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('streaming')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`child exited early with ${code}`)));
  });
  t.true((await readdir(join(dataDir, 'tmp'))).length >= 1, 'writes were in progress');
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;

  const store = await openEmbeddedStore({ dataDir });
  try {
    t.is((await readAll((await store.getObject({ bucket: 'b', key: 'old' })).body)).toString(), 'old body');
    await t.throwsAsync(store.headObject('b', 'new'), { instanceOf: NoSuchKeyError });
    t.deepEqual(await readdir(join(dataDir, 'tmp')), []);
    t.is((await blobFiles(dataDir)).length, 1);
  } finally {
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('embedded: open removes stale temp files and unreferenced blobs, keeps object and part blobs', async (t) => {
  const dataDir = await tempDir();
  let store = await openEmbeddedStore({ dataDir });
  await store.createBucket('b');
  await putString(store, 'kept', 'kept body');
  const up = await store.createMultipartUpload({ bucket: 'b', key: 'mp', meta: META });
  await store.uploadPart({ bucket: 'b', key: 'mp', uploadId: up.uploadId, partNumber: 1, body: bodyOf('part'), size: 4 });
  await store.close();
  // What a crash between rename and index commit leaves: a blob no row names; and a temp file mid-write.
  const orphanDir = join(dataDir, 'blobs', 'ab', 'cd');
  await mkdir(orphanDir, { recursive: true });
  await writeFile(join(orphanDir, 'abcd0000000000000000000000000000'), 'orphan');
  await writeFile(join(dataDir, 'tmp', 'half-written'), 'partial');
  t.is((await blobFiles(dataDir)).length, 3);

  store = await openEmbeddedStore({ dataDir });
  try {
    t.deepEqual(await readdir(join(dataDir, 'tmp')), []);
    t.is((await blobFiles(dataDir)).length, 2);
    t.is((await readAll((await store.getObject({ bucket: 'b', key: 'kept' })).body)).toString(), 'kept body');
    t.is((await store.listParts({ bucket: 'b', key: 'mp', uploadId: up.uploadId, limit: 10 })).parts.length, 1);
  } finally {
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('embedded: a reader keeps its blob through overwrite and delete; blobs are freed once unreferenced', (t) =>
  withStore(async (store, dataDir) => {
    await store.createBucket('b');
    const big = Buffer.alloc(4 * 1024 * 1024, 3);
    await store.putObject({ bucket: 'b', key: 'k', body: bodyOf(big), size: big.length, meta: META });
    const read = await store.getObject({ bucket: 'b', key: 'k' });
    await putString(store, 'k', 'replacement');
    await store.deleteObject('b', 'k');
    t.true((await readAll(read.body)).equals(big));
    await new Promise((r) => setTimeout(r, 50));
    t.is((await blobFiles(dataDir)).length, 0);

    await putString(store, 'src', 'shared');
    await store.copyObject({ source: { bucket: 'b', key: 'src' }, dest: { bucket: 'b', key: 'copy' } });
    t.is((await blobFiles(dataDir)).length, 1, 'copies share the blob');
    await store.deleteObject('b', 'src');
    await new Promise((r) => setTimeout(r, 50));
    t.is((await blobFiles(dataDir)).length, 1);
    await store.deleteObject('b', 'copy');
    await new Promise((r) => setTimeout(r, 50));
    t.is((await blobFiles(dataDir)).length, 0);

    const up = await store.createMultipartUpload({ bucket: 'b', key: 'mp', meta: META });
    const p1 = await store.uploadPart({ bucket: 'b', key: 'mp', uploadId: up.uploadId, partNumber: 1, body: bodyOf('one'), size: 3 });
    await store.uploadPart({ bucket: 'b', key: 'mp', uploadId: up.uploadId, partNumber: 1, body: bodyOf('uno'), size: 3 });
    await store.uploadPart({ bucket: 'b', key: 'mp', uploadId: up.uploadId, partNumber: 2, body: bodyOf('two'), size: 3 });
    await new Promise((r) => setTimeout(r, 50));
    t.is((await blobFiles(dataDir)).length, 2, 'a re-uploaded part frees its old blob');
    await t.throwsAsync(
      store.completeMultipartUpload({ bucket: 'b', key: 'mp', uploadId: up.uploadId, parts: [{ partNumber: 1, etag: p1.etag }] }),
    );
    const parts = await store.listParts({ bucket: 'b', key: 'mp', uploadId: up.uploadId, limit: 10 });
    await store.completeMultipartUpload({ bucket: 'b', key: 'mp', uploadId: up.uploadId, parts: [{ partNumber: 1, etag: parts.parts[0]!.etag }] });
    await new Promise((r) => setTimeout(r, 50));
    t.is((await blobFiles(dataDir)).length, 1, 'unused parts are discarded at completion');
  }));

test('embedded: keys never become paths', (t) =>
  withStore(async (store, dataDir) => {
    await store.createBucket('b');
    await putString(store, '../../escape', 'x');
    await putString(store, '/abs/path', 'y');
    const names = await blobFiles(dataDir);
    t.is(names.length, 2);
    for (const n of names) t.regex(n, /^[0-9a-f]{32}$/);
    t.deepEqual((await readdir(dataDir)).filter((n) => !n.startsWith('anvil.lock')).sort(), ['blobs', 'index.db', 'index.db-shm', 'index.db-wal', 'tmp']);
  }));

test('embedded: streaming a large body keeps memory flat', (t) =>
  withStore(async (store) => {
    await store.createBucket('b');
    const chunk = Buffer.alloc(1024 * 1024, 5);
    const total = 192;
    let sent = 0;
    const body = new Readable({
      read() {
        this.push(sent++ < total ? chunk : null);
      },
    });
    const before = process.memoryUsage().rss;
    const meta = await store.putObject({ bucket: 'b', key: 'big', body, size: total * chunk.length, meta: META });
    t.is(meta.size, total * chunk.length);
    t.true(process.memoryUsage().rss - before < 96 * 1024 * 1024, 'the body was not buffered');
    let read = 0;
    for await (const c of (await store.getObject({ bucket: 'b', key: 'big' })).body) read += (c as Buffer).length;
    t.is(read, total * chunk.length);
  }));

test('embedded: listings over 100,000 keys page in constant time', async (t) => {
  const dataDir = await tempDir();
  let store = await openEmbeddedStore({ dataDir });
  await store.createBucket('b');
  await store.close();
  // Rows straight into the index: listing reads only the objects table, and 100k fsynced puts would take minutes.
  const db = new Database(join(dataDir, 'index.db'));
  const insert = db.prepare('INSERT INTO objects (bucket, key, size, etag, last_modified, meta) VALUES (?, ?, 1, ?, ?, ?)');
  db.transaction(() => {
    for (let i = 0; i < 100_000; i++) {
      const n = String(i).padStart(6, '0');
      insert.run('b', Buffer.from(`flat/${n}`), 'e', Date.now(), '{}');
      insert.run('b', Buffer.from(`deep/${n}/file`), 'e', Date.now(), '{}');
    }
  })();
  db.close();
  store = await openEmbeddedStore({ dataDir });
  try {
    const pageAll = async (input: { prefix: string; delimiter?: string }) => {
      let startAfter: string | undefined;
      let pages = 0;
      let count = 0;
      let slowest = 0;
      for (;;) {
        const began = performance.now();
        const page = await store.listObjects({ bucket: 'b', limit: 1000, startAfter, ...input });
        slowest = Math.max(slowest, performance.now() - began);
        pages++;
        count += page.entries.length;
        const last = page.entries.at(-1)!;
        startAfter = last.kind === 'object' ? last.key : last.prefix;
        if (!page.isTruncated) return { pages, count, slowest };
      }
    };
    const flat = await pageAll({ prefix: 'flat/' });
    t.is(flat.count, 100_000);
    t.is(flat.pages, 100);
    const rolled = await pageAll({ prefix: 'deep/', delimiter: '/' });
    t.is(rolled.count, 100_000);
    t.is(rolled.pages, 100);
    const top = await store.listObjects({ bucket: 'b', limit: 1000, delimiter: '/' });
    t.deepEqual(top.entries, [
      { kind: 'prefix', prefix: 'deep/' },
      { kind: 'prefix', prefix: 'flat/' },
    ]);
    t.log(`slowest page: flat ${flat.slowest.toFixed(1)} ms, rolled-up ${rolled.slowest.toFixed(1)} ms`);
  } finally {
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('embedded: one process owns a data directory (a kernel lock); a crashed holder leaves nothing to take over', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'anvil-lock-'));
  try {
    // A pid file from an earlier version names a live process: it is no lock any more, and goes once the lock is held.
    await writeFile(join(dataDir, 'embedded.lock'), String(process.ppid));
    const store = await openEmbeddedStore({ dataDir });
    t.deepEqual((await readdir(dataDir)).filter((f) => f === 'embedded.lock'), []);
    await store.createBucket('locked');
    // A second opener (here in the same process; across processes and PID namespaces in gateway-faults.test.ts).
    const err = await t.throwsAsync(openEmbeddedStore({ dataDir }), { instanceOf: DataDirInUseError });
    t.regex(err!.message, /in use by another Anvil gateway process/);
    t.deepEqual((await store.listBuckets()).map((b) => b.name), ['locked'], 'the refused open changed nothing');
    // A shared (upstream gateway) lock is refused as well while the exclusive one is held, and vice versa.
    t.throws(() => lockDataDir(dataDir, 'shared'), { instanceOf: DataDirInUseError });
    await store.close();
    const shared = lockDataDir(dataDir, 'shared');
    const another = lockDataDir(dataDir, 'shared');
    await t.throwsAsync(openEmbeddedStore({ dataDir }), { instanceOf: DataDirInUseError });
    shared.release();
    another.release();

    // A holder killed with SIGKILL: the kernel drops its lock, and the next open just works.
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
      import { openEmbeddedStore } from ${JSON.stringify(join(ROOT, 'storage/index.ts'))};
      await openEmbeddedStore({ dataDir: ${JSON.stringify(dataDir)} });
      process.stdout.write('open\\n');
      setInterval(() => {}, 1000);
    `], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('open') && resolve());
      child.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
    });
    await t.throwsAsync(openEmbeddedStore({ dataDir }), { instanceOf: DataDirInUseError });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const reopened = await openEmbeddedStore({ dataDir });
    t.deepEqual((await reopened.listBuckets()).map((b) => b.name), ['locked']);
    await reopened.close();
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

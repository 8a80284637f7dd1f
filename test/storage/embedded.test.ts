/** The embedded store: the conformance suite, then what only this engine promises (crash safety, sweep at open). */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import Database from 'better-sqlite3';
import { DataDirInUseError, lockDataDir, NoSuchKeyError, openEmbeddedStore, type EmbeddedStore } from '../../storage/index.ts';
import { INLINE_MAX, openIndex } from '../../storage/embedded/index-db.ts';
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

/**
 * The blob files once their count settles at `expected` (released blobs are unlinked in the background, after the
 * commit that released them is on disk), or whatever is there after 10 s.
 */
async function blobFilesBecome(dataDir: string, expected: number): Promise<string[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const files = await blobFiles(dataDir);
    if (files.length === expected || Date.now() > deadline) return files;
    await new Promise((r) => setTimeout(r, 20));
  }
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
/** A body too large to be kept inline in the index: it gets a blob file. */
const blobSized = (text: string) => text.repeat(Math.ceil((INLINE_MAX + 1) / text.length));

/** A child process that commits `old`, then starts slow writes (an overwrite and a new key) and reports progress. */
const CRASH_CHILD = `
import { Readable } from 'node:stream';
import { openEmbeddedStore } from ${JSON.stringify(join(ROOT, 'storage/index.ts'))};
const store = await openEmbeddedStore({ dataDir: process.env.DATA_DIR });
await store.createBucket('b');
const old = Buffer.from('old body'.repeat(${Math.ceil(64 * 1024 / 8) + 1}));
await store.putObject({ bucket: 'b', key: 'old', body: Readable.from([old]), size: old.length, meta: { headers: {}, userMetadata: {} } });
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
    t.is((await readAll((await store.getObject({ bucket: 'b', key: 'old' })).body)).toString(), blobSized('old body'));
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
  await putString(store, 'kept', blobSized('kept body'));
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
    t.is((await readAll((await store.getObject({ bucket: 'b', key: 'kept' })).body)).toString(), blobSized('kept body'));
    t.is((await store.listParts({ bucket: 'b', key: 'mp', uploadId: up.uploadId, limit: 10 })).parts.length, 1);
  } finally {
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('embedded: a blob directory that cannot be made fails the write and stores nothing; the next write stores', (t) =>
  withStore(async (store, dataDir) => {
    await store.createBucket('b');
    // The fan-out directory is made while the body arrives: a file in the place of every first level makes that fail.
    const blocked = Array.from({ length: 256 }, (_, i) => join(dataDir, 'blobs', i.toString(16).padStart(2, '0')));
    await Promise.all(blocked.map((path) => writeFile(path, '')));
    const body = blobSized('blocked ');
    await t.throwsAsync(putString(store, 'k', body));
    // And with the body failing as well: the write fails on the body, never awaiting the directory.
    const cut = Readable.from(
      (function* () {
        yield Buffer.alloc(INLINE_MAX + 1);
        throw new Error('client went away');
      })(),
      { objectMode: false },
    );
    await t.throwsAsync(store.putObject({ bucket: 'b', key: 'k', body: cut, size: 4 * INLINE_MAX, meta: META }));
    t.deepEqual(await readdir(join(dataDir, 'tmp')), []);
    await t.throwsAsync(store.getObject({ bucket: 'b', key: 'k' }), { instanceOf: NoSuchKeyError });
    await Promise.all(blocked.map((path) => rm(path)));
    await putString(store, 'k', body);
    t.is((await readAll((await store.getObject({ bucket: 'b', key: 'k' })).body)).toString(), body);
    t.is((await blobFiles(dataDir)).length, 1);
  }));

test('embedded: a reader keeps its blob through overwrite and delete; blobs are freed once unreferenced', (t) =>
  withStore(async (store, dataDir) => {
    await store.createBucket('b');
    const big = Buffer.alloc(4 * 1024 * 1024, 3);
    await store.putObject({ bucket: 'b', key: 'k', body: bodyOf(big), size: big.length, meta: META });
    const read = await store.getObject({ bucket: 'b', key: 'k' });
    await putString(store, 'k', 'replacement');
    await store.deleteObject('b', 'k');
    t.true((await readAll(read.body)).equals(big));
    t.is((await blobFilesBecome(dataDir, 0)).length, 0);

    await putString(store, 'src', blobSized('shared'));
    await store.copyObject({ source: { bucket: 'b', key: 'src' }, dest: { bucket: 'b', key: 'copy' } });
    t.is((await blobFiles(dataDir)).length, 1, 'copies share the blob');
    await store.deleteObject('b', 'src');
    await new Promise((r) => setTimeout(r, 200));
    t.is((await blobFiles(dataDir)).length, 1, 'the copy still uses the blob');
    await store.deleteObject('b', 'copy');
    t.is((await blobFilesBecome(dataDir, 0)).length, 0);

    const up = await store.createMultipartUpload({ bucket: 'b', key: 'mp', meta: META });
    const p1 = await store.uploadPart({ bucket: 'b', key: 'mp', uploadId: up.uploadId, partNumber: 1, body: bodyOf('one'), size: 3 });
    await store.uploadPart({ bucket: 'b', key: 'mp', uploadId: up.uploadId, partNumber: 1, body: bodyOf('uno'), size: 3 });
    await store.uploadPart({ bucket: 'b', key: 'mp', uploadId: up.uploadId, partNumber: 2, body: bodyOf('two'), size: 3 });
    t.is((await blobFilesBecome(dataDir, 2)).length, 2, 'a re-uploaded part frees its old blob');
    await t.throwsAsync(
      store.completeMultipartUpload({ bucket: 'b', key: 'mp', uploadId: up.uploadId, parts: [{ partNumber: 1, etag: p1.etag }] }),
    );
    const parts = await store.listParts({ bucket: 'b', key: 'mp', uploadId: up.uploadId, limit: 10 });
    await store.completeMultipartUpload({ bucket: 'b', key: 'mp', uploadId: up.uploadId, parts: [{ partNumber: 1, etag: parts.parts[0]!.etag }] });
    t.is((await blobFilesBecome(dataDir, 1)).length, 1, 'unused parts are discarded at completion');
  }));

test('embedded: keys never become paths', (t) =>
  withStore(async (store, dataDir) => {
    await store.createBucket('b');
    await putString(store, '../../escape', blobSized('x'));
    await putString(store, '/abs/path', blobSized('y'));
    const names = await blobFiles(dataDir);
    t.is(names.length, 2);
    for (const n of names) t.regex(n, /^[0-9a-f]{32}$/);
    t.deepEqual((await readdir(dataDir)).filter((n) => !n.startsWith('anvil.lock') && !n.startsWith('anvil.workers.lock')).sort(), ['blobs', 'index.db', 'index.db-shm', 'index.db-wal', 'tmp']);
  }));

test('embedded: streaming a large body keeps memory flat', (t) =>
  withStore(async (store) => {
    await store.createBucket('b');
    const chunk = Buffer.alloc(1024 * 1024, 5);
    const total = 192;
    const bodyOf = (): Readable => {
      let sent = 0;
      return new Readable({
        read() {
          this.push(sent++ < total ? chunk : null);
        },
      });
    };
    // A first upload starts the MD5 hashing threads (each an isolate of its own, tens of MiB of RSS on Node 22):
    // process set-up, not the body, so it is left out of what the second upload is measured against.
    await store.putObject({ bucket: 'b', key: 'warm-up', body: bodyOf(), size: total * chunk.length, meta: META });
    const before = process.memoryUsage().rss;
    const meta = await store.putObject({ bucket: 'b', key: 'big', body: bodyOf(), size: total * chunk.length, meta: META });
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

test('embedded: small bodies live inline in the index: no blob file, durable, copied and ranged like any other', (t) =>
  withStore(async (store, dataDir) => {
    await store.createBucket('b');
    const small = Buffer.alloc(INLINE_MAX, 9);
    await store.putObject({ bucket: 'b', key: 'small', body: bodyOf(small), size: small.length, meta: META });
    await putString(store, 'tiny', 'tiny body');
    t.deepEqual(await blobFiles(dataDir), [], 'no blob file for bodies up to INLINE_MAX');
    const read = await store.getObject({ bucket: 'b', key: 'small' });
    t.true(read.bytes?.equals(small), 'small bodies are handed over as bytes');
    t.true((await readAll(read.body)).equals(small), 'and as a stream when asked');
    const ranged = await store.getObject({ bucket: 'b', key: 'tiny', range: { kind: 'bounded', start: 5, end: 8 } });
    t.is((await readAll(ranged.body)).toString(), 'body');
    await store.copyObject({ source: { bucket: 'b', key: 'tiny' }, dest: { bucket: 'b', key: 'tiny-copy' } });
    await store.deleteObject('b', 'tiny');
    t.is((await readAll((await store.getObject({ bucket: 'b', key: 'tiny-copy' })).body)).toString(), 'tiny body');
    const up = await store.createMultipartUpload({ bucket: 'b', key: 'mp', meta: META });
    await store.uploadPartCopy({ bucket: 'b', key: 'mp', uploadId: up.uploadId, partNumber: 1, source: { bucket: 'b', key: 'tiny-copy', range: { start: 0, end: 3 } } });
    const parts = await store.listParts({ bucket: 'b', key: 'mp', uploadId: up.uploadId, limit: 10 });
    await store.completeMultipartUpload({ bucket: 'b', key: 'mp', uploadId: up.uploadId, parts: [{ partNumber: 1, etag: parts.parts[0]!.etag }] });
    t.is((await readAll((await store.getObject({ bucket: 'b', key: 'mp' })).body)).toString(), 'tiny');
  }));

test('embedded: a reader in another worker keeps reading what it looked up while this one deletes it', async (t) => {
  const dataDir = await tempDir();
  const owner = await openEmbeddedStore({ dataDir });
  // Two more openers of the same directory, as the gateway's worker processes open it: one reads ahead (every
  // segment file opened before the stream starts), one leases its blobs in the index (eagerOpenMax 1).
  const eager = await openEmbeddedStore({ dataDir, worker: true });
  const leasing = await openEmbeddedStore({ dataDir, worker: true, eagerOpenMax: 1 });
  try {
    await owner.createBucket('b');
    const part = Buffer.alloc(5 * 1024 * 1024, 1);
    const up = await owner.createMultipartUpload({ bucket: 'b', key: 'mp', meta: META });
    const etags: string[] = [];
    for (const n of [1, 2]) etags.push((await owner.uploadPart({ bucket: 'b', key: 'mp', uploadId: up.uploadId, partNumber: n, body: bodyOf(part), size: part.length })).etag);
    await owner.completeMultipartUpload({ bucket: 'b', key: 'mp', uploadId: up.uploadId, parts: etags.map((etag, i) => ({ partNumber: i + 1, etag })) });
    const big = Buffer.alloc(3 * 1024 * 1024, 2);
    await owner.putObject({ bucket: 'b', key: 'one', body: bodyOf(big), size: big.length, meta: META });
    t.is((await blobFiles(dataDir)).length, 3);

    const leased = await leasing.getObject({ bucket: 'b', key: 'mp' });
    const ahead = await eager.getObject({ bucket: 'b', key: 'one' });
    await owner.deleteObjects('b', ['mp', 'one']);
    t.is((await blobFilesBecome(dataDir, 2)).length, 2, 'the single blob is unlinked at once (its reader holds it open); the leased ones stay');
    t.true((await readAll(ahead.body)).equals(big));
    t.true((await readAll(leased.body)).equals(Buffer.concat([part, part])));
    t.deepEqual(await blobFilesBecome(dataDir, 0), [], 'the lease ended and took the released blobs with it');
    await t.throwsAsync(eager.getObject({ bucket: 'b', key: 'one' }), { instanceOf: NoSuchKeyError });
  } finally {
    await leasing.close();
    await eager.close();
    await owner.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});

// Serial: the datasync probe is patched on FileHandle's prototype, and the other tests of this file (concurrent in
// this process) would add their own fsyncs to the count.
test.serial('embedded: group commit: each commit is acknowledged only after an fsync of the WAL that began after it', async (t) => {
  const dataDir = await tempDir();
  const index = openIndex(join(dataDir, 'index.db'));
  // Every datasync (the WalSync's fsync of index.db-wal) is recorded and slowed, so commits keep arriving while one
  // runs; `seq` orders the commits, the syncs' starts and ends, and the acknowledgements.
  const probe = await open(join(dataDir, 'index.db'), 'r');
  const fileHandle = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
  await probe.close();
  const datasync = fileHandle.datasync;
  let seq = 0;
  const syncs: Array<{ start: number; end: number }> = [];
  fileHandle.datasync = async function (this: unknown) {
    const start = seq++;
    await new Promise((r) => setTimeout(r, 20));
    await datasync.call(this);
    syncs.push({ start, end: seq++ });
  };
  try {
    const commits: Array<{ committed: number; acknowledged: number }> = [];
    const one = async (i: number) => {
      await new Promise((r) => setTimeout(r, (i % 12) * 8));
      let committed = -1;
      await index.commit(() => {
        index.q.insertBucket.run(`bucket-${i}`, Date.now(), i);
        committed = seq++; // the COMMIT follows in this same synchronous call, before any other callback runs
      });
      commits.push({ committed, acknowledged: seq++ });
    };
    await Promise.all(Array.from({ length: 60 }, (_, i) => one(i)));
    for (const c of commits) {
      t.true(syncs.some((s) => s.start > c.committed && s.end < c.acknowledged), `commit at ${c.committed} was synced before its acknowledgement at ${c.acknowledged}`);
    }
    t.true(syncs.length < commits.length, `${commits.length} concurrent commits shared ${syncs.length} fsyncs`);
  } finally {
    fileHandle.datasync = datasync;
    await index.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('embedded: listings read each stored checksum from the covering index; an index from before the column gets it at open', async (t) => {
  const dataDir = await tempDir();
  try {
    let store = await openEmbeddedStore({ dataDir });
    await store.createBucket('b');
    await store.putObject({ bucket: 'b', key: 'sum', body: bodyOf('x'), size: 1, meta: { ...META, checksum: { algorithm: 'SHA256', value: 'LXc3QFo2KBt3yYWp1jRCpgOVf3pcRyfyE39z5d9UwfQ=', type: 'COMPOSITE' } } });
    await putString(store, 'plain', 'y');
    const listed = async () => Object.fromEntries((await store.listObjects({ bucket: 'b', limit: 10 })).entries.map((e) => (e.kind === 'object' ? [e.key, e.checksum] : [e.prefix, 'prefix'])));
    t.deepEqual(await listed(), { plain: undefined, sum: 'SHA256/COMPOSITE' });
    await store.close();
    // The index as a gateway before the column left it: no checksum column, the old covering index.
    const db = new Database(join(dataDir, 'index.db'));
    db.exec('DROP INDEX objects_listing_checksum; ALTER TABLE objects DROP COLUMN checksum; CREATE INDEX objects_listing ON objects (bucket, key, size, etag, last_modified);');
    db.close();
    store = await openEmbeddedStore({ dataDir });
    t.deepEqual(await listed(), { plain: undefined, sum: 'SHA256/COMPOSITE' });
    await store.close();
    const after = new Database(join(dataDir, 'index.db'), { readonly: true });
    const indexes = after.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'objects'").all().map((r) => (r as { name: string }).name);
    t.true(indexes.includes('objects_listing_checksum') && !indexes.includes('objects_listing'), indexes.join());
    const plan = after.prepare("EXPLAIN QUERY PLAN SELECT key, size, etag, last_modified, checksum FROM objects WHERE bucket = 'b' AND key >= x'' AND key < x'ff' ORDER BY key LIMIT 10").all();
    t.regex(JSON.stringify(plan), /COVERING INDEX objects_listing_checksum/);
    after.close();
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

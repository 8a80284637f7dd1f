/**
 * A full data volume, on a small tmpfs the test mounts itself: data writes answer 507 XMinioStorageFull once (SDKs do
 * not retry it), while object deletes, credential revocations and tuple deletes still commit, even with the volume
 * filled to the last block by something else; writes resume by themselves once space is back. Every step checks what
 * the client got, that the gateway still serves, and that every acknowledged object is intact.
 */
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import test from 'ava';
import { remoteTransport } from '../gateway/cli/transport.ts';
import { FAMILIES } from '../policy/index.ts';
import { loadConfig } from '../gateway/config.ts';
import { memoryLogger } from '../gateway/logging.ts';
import { startGateway } from '../gateway/server.ts';
import { lockDataDir, RESERVE_FILE } from '../storage/index.ts';
import { bodyBytes, pattern, ROOT, startTestGateway, TEST_WORKERS, type TestGateway } from './helpers/gateway.ts';
import { signRequest } from './helpers/raw.ts';
import { mountSmallVolume, type SmallVolume } from './helpers/small-volume.ts';

const MIB = 1024 * 1024;
const volume = mountSmallVolume(48);
const mounted = 'dir' in volume ? (volume as SmallVolume) : undefined;
if (!mounted) console.log(`full-disk tests skipped: ${(volume as { unavailable: string }).unavailable}`);
const it = mounted ? test.serial : test.skip;

test.after.always(() => mounted?.unmount());

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

/** Puts until the gateway refuses; returns what it acknowledged (key → md5) and the refusal. */
async function fillWithObjects(tg: TestGateway, bucket: string, size: number): Promise<{ acked: Map<string, string>; refusal: S3ServiceException }> {
  const acked = new Map<string, string>();
  for (let i = 0; ; i++) {
    const body = pattern(size);
    try {
      await tg.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `obj-${i}`, Body: body }));
      acked.set(`obj-${i}`, md5(body));
    } catch (err) {
      return { acked, refusal: err as S3ServiceException };
    }
    if (i > 200) throw new Error('the volume never filled');
  }
}

async function assertIntact(t: import('ava').ExecutionContext, tg: TestGateway, bucket: string, acked: Map<string, string>): Promise<void> {
  for (const [key, sum] of acked) {
    const body = await bodyBytes((await tg.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body);
    t.is(md5(body), sum, `${key} is intact`);
  }
  const listed = await tg.s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  t.deepEqual((listed.Contents ?? []).map((o) => o.Key).sort(), [...acked.keys()].sort());
}

function assertStorageFull(t: import('ava').ExecutionContext, err: S3ServiceException, what: string): void {
  t.is(err.$metadata.httpStatusCode, 507, `${what}: status`);
  t.is(err.name, 'XMinioStorageFull', `${what}: code`);
  t.is(err.$metadata.attempts, 1, `${what}: the SDK did not retry`);
}

it('a full volume refuses data writes with 507 and still commits deletes, revocations and tuple deletes', async (t) => {
  const tg = await startTestGateway({ ANVIL_SPACE_RESERVE_MB: '4' }, mounted!.dir);
  let filler: string | undefined;
  try {
    t.true(existsSync(join(tg.dataDir, RESERVE_FILE)), 'the reserve is in place');
    await tg.s3.send(new CreateBucketCommand({ Bucket: 'full' }));
    const app = await tg.gw.policy.createCredential({ tenant: 'root', name: 'leaked', scopes: [{ families: [...FAMILIES], bucket: '*' }] });
    const leaked = tg.client({ accessKeyId: app.accessKeyId, secretAccessKey: app.secretKey });
    await leaked.send(new HeadBucketCommand({ Bucket: 'full' }));
    const rootApi = remoteTransport({ endpoint: tg.gw.url, credentials: ROOT, region: tg.config.region });
    // Governing a bucket deploys the ready-made schema for root's tenant, so tuples can be written.
    await tg.s3.send(new CreateBucketCommand({ Bucket: 'governed' }));
    await rootApi.call('PUT', '/buckets/governed/governance', { body: { governed: true } });
    const tuple = `group:eng#member@app:${app.accessKeyId}`;
    await rootApi.call('POST', '/tuples', { body: { tenant: 'root', updates: [{ op: 'touch', tuple }], reason: 'before the disk fills' } });

    // The gateway's own writes fill the volume: refused ahead of time, once, with MinIO's code.
    const { acked, refusal } = await fillWithObjects(tg, 'full', 2 * MIB);
    assertStorageFull(t, refusal, 'PUT on a nearly full volume');
    t.true(acked.size > 5, `${acked.size} objects fit before the refusal`);
    t.deepEqual(readdirSync(join(tg.dataDir, 'tmp')), [], 'no temp file is left');
    // A body too large to drain: the gateway answers and closes the connection. With 100-continue the client never
    // sends it; without, the client is still sending, and the gateway's lingering close drains it until the client
    // has the answer. Either way the SDK hears the 507 once, not a reset it would retry, and nothing is stored.
    const noContinue = new S3Client({ endpoint: tg.gw.url, region: tg.config.region, credentials: ROOT, forcePathStyle: true, expectContinueHeader: false });
    for (let i = 0; i < 3; i++) {
      const big = (await t.throwsAsync((i % 2 ? noContinue : tg.s3).send(new PutObjectCommand({ Bucket: 'full', Key: `big-${i}`, Body: pattern(24 * MIB) })))) as S3ServiceException;
      assertStorageFull(t, big, `a 24 MiB PUT on a nearly full volume (${i}, ${i % 2 ? 'without' : 'with'} 100-continue)`);
      if (i % 2) await t.throwsAsync(tg.s3.send(new GetObjectCommand({ Bucket: 'full', Key: `big-${i}` })), { name: 'NoSuchKey' });
    }
    noContinue.destroy();

    // Then something else takes the last block, once what the refused uploads wrote is gone (with worker processes a
    // refused upload's temp file can still be on its way out; space it gave back after the fill would leave a gap).
    await spaceSettled(tg.dataDir);
    filler = mounted!.fill();
    t.is(mounted!.free(), 0);

    const revoked = await rootApi.call('POST', `/credentials/${app.accessKeyId}/revoke`);
    t.is(revoked.status, 'revoked', 'a revocation commits on a full volume');
    const refused = await t.throwsAsync(leaked.send(new HeadBucketCommand({ Bucket: 'full' })));
    t.is((refused as S3ServiceException).$metadata.httpStatusCode, 403, 'and the leaked key is refused at once');
    await rootApi.call('POST', '/tuples', { body: { tenant: 'root', updates: [{ op: 'delete', tuple }], reason: 'disk full, still revocable' } });
    const tuples = await rootApi.call('GET', '/tuples', { query: { tenant: 'root', resourceType: 'group', resourceId: 'eng' } });
    t.false(tuples.tuples.includes(tuple), 'a tuple delete commits on a full volume');

    await tg.s3.send(new DeleteObjectCommand({ Bucket: 'full', Key: 'obj-0' }));
    acked.delete('obj-0');
    const batch = await tg.s3.send(new DeleteObjectsCommand({ Bucket: 'full', Delete: { Objects: [{ Key: 'obj-1' }, { Key: 'obj-2' }] } }));
    t.is(batch.Deleted?.length, 2);
    t.is(batch.Errors, undefined);
    acked.delete('obj-1');
    acked.delete('obj-2');

    const stillFull = await t.throwsAsync(tg.s3.send(new PutObjectCommand({ Bucket: 'full', Key: 'more', Body: pattern(64 * 1024) })));
    assertStorageFull(t, stillFull as S3ServiceException, 'PUT while the reserve is spent');
    await tg.s3.send(new HeadBucketCommand({ Bucket: 'full' }));
    await assertIntact(t, tg, 'full', acked);

    // Space comes back: the reserve is written again and data writes resume, without a restart.
    rmSync(filler);
    filler = undefined;
    for (const key of [...acked.keys()].slice(0, 6)) {
      await tg.s3.send(new DeleteObjectCommand({ Bucket: 'full', Key: key }));
      acked.delete(key);
    }
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const body = pattern(MIB);
        await tg.s3.send(new PutObjectCommand({ Bucket: 'full', Key: 'after', Body: body }));
        acked.set('after', md5(body));
        break;
      } catch (err) {
        if ((err as S3ServiceException).name !== 'XMinioStorageFull' || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    t.true(existsSync(join(tg.dataDir, RESERVE_FILE)), 'the reserve is back');
    await assertIntact(t, tg, 'full', acked);
  } finally {
    if (filler) rmSync(filler, { force: true });
    await tg.close();
  }
});

it('a body that meets a full volume mid-stream answers 507 and leaves no temp file', async (t) => {
  // No reserve: nothing refuses ahead of time, so the write itself runs into ENOSPC.
  const tg = await startTestGateway({ ANVIL_SPACE_RESERVE_MB: '0' }, mounted!.dir);
  const filler = join(mounted!.dir, 'filler-2');
  try {
    await tg.s3.send(new CreateBucketCommand({ Bucket: 'mid' }));
    const kept = pattern(256 * 1024);
    await tg.s3.send(new PutObjectCommand({ Bucket: 'mid', Key: 'kept', Body: kept }));
    // Leave about 2 MiB: a 6 MiB body starts, then runs out of space.
    writeFileSync(filler, Buffer.alloc(mounted!.free() - 2 * MIB));
    const err = await t.throwsAsync(tg.s3.send(new PutObjectCommand({ Bucket: 'mid', Key: 'big', Body: pattern(6 * MIB) })));
    assertStorageFull(t, err as S3ServiceException, 'PUT that fills the volume mid-body');
    t.deepEqual(readdirSync(join(tg.dataDir, 'tmp')), [], 'the temp file is gone');
    await t.throwsAsync(tg.s3.send(new GetObjectCommand({ Bucket: 'mid', Key: 'big' })), { name: 'NoSuchKey' });
    t.is(md5(await bodyBytes((await tg.s3.send(new GetObjectCommand({ Bucket: 'mid', Key: 'kept' }))).Body)), md5(kept));
  } finally {
    rmSync(filler, { force: true });
    await tg.close();
  }
});

it('a first start on a full volume leaves no half-written master key, and the next start works', async (t) => {
  const dataDir = mkdtempSync(join(mounted!.dir, 'anvil-first-'));
  const config = loadConfig({ ANVIL_DATA_DIR: dataDir, ANVIL_ADDRESS: '127.0.0.1:0', ANVIL_SPACE_RESERVE_MB: '0' });
  // The volume fills right after the start took its lock (the lock file already exists): the key is next to write.
  lockDataDir(dataDir).release();
  const filler = mounted!.fill('filler-3');
  try {
    const err = await t.throwsAsync(startGateway(config, { logger: memoryLogger([]) }));
    t.is((err as NodeJS.ErrnoException).code, 'ENOSPC');
    t.deepEqual(readdirSync(dataDir).filter((n) => n.includes('master.key')), [], 'neither a key nor a temporary file');
    rmSync(filler);
    const gw = await startGateway(config, { logger: memoryLogger([]) });
    await gw.close();
    t.regex(readFileSync(join(dataDir, 'master.key'), 'utf8'), /^[A-Za-z0-9+/]{43}=\n$/);
  } finally {
    rmSync(filler, { force: true });
    rmSync(dataDir, { recursive: true, force: true });
  }
});

/** A signed PUT whose body goes out in pieces as `pieces` yields them: Transfer-Encoding chunked unless `length` is given. */
async function streamingPut(tg: TestGateway, path: string, pieces: AsyncIterable<Buffer>, length?: number): Promise<{ status: number; body: string }> {
  const signed = await signRequest({ url: tg.gw.url, method: 'PUT', path, payloadHash: 'UNSIGNED-PAYLOAD', headers: length === undefined ? {} : { 'content-length': String(length) } });
  return new Promise((resolve, reject) => {
    // A connection of its own (agent: false): these uploads are refused mid-body, and a refused connection is closed.
    const req = request(`${tg.gw.url}${signed.path}`, { method: 'PUT', headers: signed.headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    void (async () => {
      try {
        for await (const p of pieces) if (!req.write(p)) await new Promise((r) => req.once('drain', r));
        req.end();
      } catch {
        // The gateway answered and closed first: the response (or the error) settles the promise.
      }
    })();
  });
}

async function* megabytes(n: number, gate?: Promise<void>, gateAfter = 0): AsyncGenerator<Buffer> {
  for (let i = 0; i < n; i++) {
    if (gate && i === gateAfter) await gate;
    yield pattern(MIB);
  }
}

/** Resolves once no upload's temp file is left in `dataDir` and the volume's free space has stopped moving. */
async function spaceSettled(dataDir: string): Promise<void> {
  let before = -1;
  for (let i = 0; i < 100; i++) {
    const now = mounted!.free();
    if (now === before && readdirSync(join(dataDir, 'tmp')).length === 0) return;
    before = now;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Leaves `target` bytes free on the volume with a filler file at `path`: once free space has stopped moving (space
 * given back late would otherwise widen the window after this measured it), and checked, so a test's window of free
 * space is the one it states whatever earlier steps left behind.
 */
async function leaveFree(t: import('ava').ExecutionContext, path: string, target: number): Promise<void> {
  let before = mounted!.free();
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const now = mounted!.free();
    if (now === before) break;
    before = now;
  }
  const excess = mounted!.free() - target;
  if (excess > 0) writeFileSync(path, Buffer.alloc(excess));
  const free = mounted!.free();
  t.true(free <= target && free > target - 64 * 1024, `${free} bytes free, meant ${target}`);
}

/** Resolves once an upload's temp file in `tg`'s data directory holds at least `bytes`. */
async function tempFileHolds(tg: TestGateway, bytes: number): Promise<void> {
  const tmp = join(tg.dataDir, 'tmp');
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
    for (const name of readdirSync(tmp)) {
      try {
        if (statSync(join(tmp, name)).blocks * 512 >= bytes) return;
      } catch {
        // gone between the listing and the stat
      }
    }
  }
  throw new Error(`no upload in ${tmp} reached ${bytes} bytes`);
}

it('writes of unknown length and writes in flight together count against the threshold: 507, nothing stored', async (t) => {
  const tg = await startTestGateway({ ANVIL_SPACE_RESERVE_MB: '4' }, mounted!.dir);
  const filler = join(mounted!.dir, 'filler-4');
  try {
    await tg.s3.send(new CreateBucketCommand({ Bucket: 'flight' }));
    // About one reserve plus 7 MiB stays free.
    writeFileSync(filler, Buffer.alloc(mounted!.free() - 11 * MIB));

    // Transfer-Encoding: chunked, 12 MiB: no length to check up front, so it is refused once it crosses the threshold.
    const chunked = await streamingPut(tg, '/flight/unknown', megabytes(12));
    t.is(chunked.status, 507, chunked.body);
    t.regex(chunked.body, /<Code>XMinioStorageFull<\/Code>/);
    await t.throwsAsync(tg.s3.send(new GetObjectCommand({ Bucket: 'flight', Key: 'unknown' })), { name: 'NoSuchKey' });
    t.deepEqual(readdirSync(join(tg.dataDir, 'tmp')), [], 'no temp file is left');

    // A declared 5 MiB upload sends 2 MiB and waits; a 2 MiB upload that alone would fit does not fit beside it.
    // Free space is set again first: one reserve plus 6.75 MiB, whatever the refused upload left behind, so the first
    // fits with 1.75 MiB to spare (a CI run refused it with 1 MiB: the data directory's own files grow meanwhile) and
    // the second (2 MiB) does not fit beside it.
    await leaveFree(t, `${filler}-b`, 10.75 * MIB);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // Settled at once, so a failure of the first upload while the second runs is reported here, not as unhandled.
    const first = streamingPut(tg, '/flight/first', megabytes(5, gate, 2), 5 * MIB).catch((err: Error) => ({ status: 0, body: String(err) }));
    // The first is in flight (its claim is made before its temp file) and part of it is on disk.
    await tempFileHolds(tg, MIB);
    const put = tg.s3.send(new PutObjectCommand({ Bucket: 'flight', Key: 'second', Body: pattern(2 * MIB) }));
    // With worker processes each counts only its own writes in flight (the README's bound: real free space is
    // re-checked every MiB, the reserve is never used), so the second upload is refused only when the kernel gave
    // its connection to the worker holding the first; on another worker it may be stored, and must then be whole.
    const second = TEST_WORKERS > 1 ? await put.then(() => undefined, (err: unknown) => err) : await t.throwsAsync(put);
    if (second !== undefined || TEST_WORKERS <= 1) assertStorageFull(t, second as S3ServiceException, 'a write that fits only without the one in flight');
    release();
    // A refusal mid-body closes the connection, which may cut the answer short: with workers that is a refusal too.
    const done = await first;
    // Stored beside it, the second may in turn push the first over the line as it writes its last MiB: with workers
    // either may be refused, never both, and what was acknowledged is whole while what was refused is absent.
    if (TEST_WORKERS <= 1 || second !== undefined) t.is(done.status, 200, done.body);
    else t.true(done.status === 200 || done.status === 507 || done.status === 0, done.body);
    const stored = async (key: string, size: number, acked: boolean): Promise<void> => {
      // HeadObject: a GetObject body left unread is cut when the gateway's workers stop, an uncaught 'aborted'.
      if (acked) t.is((await tg.s3.send(new HeadObjectCommand({ Bucket: 'flight', Key: key }))).ContentLength, size);
      else await t.throwsAsync(tg.s3.send(new GetObjectCommand({ Bucket: 'flight', Key: key })), { name: 'NoSuchKey' });
    };
    await stored('first', 5 * MIB, done.status === 200);
    await stored('second', 2 * MIB, second === undefined);
  } finally {
    rmSync(filler, { force: true });
    rmSync(`${filler}-b`, { force: true });
    await tg.close();
  }
});

const oneProcess = mounted && TEST_WORKERS <= 1 ? test.serial : test.skip;

oneProcess('a write in flight counts what it has still to put on disk, not what the gateway has received of it', async (t) => {
  const tg = await startTestGateway({ ANVIL_SPACE_RESERVE_MB: '4' }, mounted!.dir);
  const filler = join(mounted!.dir, 'filler-5');
  try {
    await tg.s3.send(new CreateBucketCommand({ Bucket: 'landed' }));
    // 10.4 MiB: the first (5 MiB) fits with 1.4 MiB to spare beside the 4 MiB reserve (a full CI run once saw it
    // refused with exactly 1 MiB to spare; the data directory's own files grow a little meanwhile).
    await leaveFree(t, filler, 10.4 * MIB);
    // A declared 5 MiB upload sends 1.9 MiB and waits. The gateway writes bodies in batches of about a MiB, so up to
    // 0.9 MiB of what it received is in its memory: on disk neither as used space nor yet as the file's size.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    async function* pieces(): AsyncGenerator<Buffer> {
      yield pattern(MIB);
      yield pattern(900 * 1024);
      await gate;
      yield pattern(4 * MIB - 900 * 1024);
    }
    const first = streamingPut(tg, '/landed/first', pieces(), 5 * MIB).catch((err: Error) => ({ status: 0, body: String(err) }));
    await tempFileHolds(tg, MIB);
    await new Promise((r) => setTimeout(r, 500)); // the rest of the 1.9 MiB reaches the gateway
    // 10.4 - 5 - 1.5 leaves 3.9 MiB, below the 4 MiB reserve: refused, however much of the first is on disk.
    // Counting the first's received bytes as written would see up to 0.9 MiB more and store it.
    const err = await t.throwsAsync(tg.s3.send(new PutObjectCommand({ Bucket: 'landed', Key: 'second', Body: pattern(1.5 * MIB) })));
    assertStorageFull(t, err as S3ServiceException, 'a write that fits only without the whole of the one in flight');
    release();
    const done = await first;
    t.is(done.status, 200, done.body);
    t.is((await tg.s3.send(new HeadObjectCommand({ Bucket: 'landed', Key: 'first' }))).ContentLength, 5 * MIB);
    await t.throwsAsync(tg.s3.send(new GetObjectCommand({ Bucket: 'landed', Key: 'second' })), { name: 'NoSuchKey' });
  } finally {
    rmSync(filler, { force: true });
    await tg.close();
  }
});

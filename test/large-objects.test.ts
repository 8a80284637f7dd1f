/**
 * Large bodies on the embedded store's write path, where the MD5 is hashed on worker threads through shared 1 MiB
 * slots while the body is written to disk in 1 MiB batches: bodies whose pieces arrive in odd sizes around those
 * boundaries, more concurrent uploads than there are slots, and bodies refused at their very end (a wrong checksum
 * or Content-MD5), which must leave nothing stored and the previous object intact; and bodies long enough to be
 * fdatasynced in the background while they arrive.
 */
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { Md5Session } from '../storage/embedded/md5-threads.ts';
import { bodyBytes, pattern, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { RawConnection, signedRequestBytes } from './helpers/raw-socket.ts';

const test = anyTest as TestFn<TestGateway>;
const MiB = 1024 * 1024;
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

test.before(async (t) => {
  t.context = await startTestGateway();
  await t.context.s3.send(new CreateBucketCommand({ Bucket: 'large' }));
});

test.after.always(async (t) => t.context.close());

async function get(t: { context: TestGateway }, key: string, range?: string): Promise<Buffer> {
  return bodyBytes((await t.context.s3.send(new GetObjectCommand({ Bucket: 'large', Key: key, Range: range }))).Body);
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => e.name);
}

test.serial('a body arriving in odd-sized pieces around the 1 MiB batch and slot boundaries is stored whole', async (t) => {
  const { gw } = t.context;
  const body = pattern(3 * MiB + 17);
  // Cut points on and beside every MiB boundary, plus one-byte and 64 KiB-odd pieces.
  const cuts = [1, 65_537, MiB - 1, MiB, MiB + 1, 2 * MiB - 65_536, 2 * MiB - 1, 2 * MiB + 3, 3 * MiB, 3 * MiB + 16, body.length];
  const conn = await RawConnection.open(gw.url);
  conn.socket.setNoDelay(true);
  const { head } = await signedRequestBytes({ url: gw.url, method: 'PUT', path: '/large/odd', body });
  conn.write(head);
  let from = 0;
  for (const to of cuts) {
    conn.write(body.subarray(from, to));
    from = to;
    await new Promise((r) => setTimeout(r, 20)); // separate reads on the gateway's side
  }
  const res = await conn.response({ timeoutMs: 120_000 });
  conn.socket.destroy();
  t.is(res.status, 200, res.body.toString());
  t.is(res.headers.etag, `"${md5(body)}"`, 'the ETag is the MD5 of every byte, in order');
  const back = await get(t, 'odd');
  t.is(back.length, body.length);
  t.true(back.equals(body));
  t.true((await get(t, 'odd', `bytes=${MiB - 2}-${2 * MiB + 4}`)).equals(body.subarray(MiB - 2, 2 * MiB + 5)), 'a range across the boundaries');
});

test.serial('more concurrent uploads than hash slots: every ETag and body is right', async (t) => {
  const { s3 } = t.context;
  const bodies = Array.from({ length: 24 }, (_, i) => pattern(2 * MiB + 1000 * i + 1));
  const etags = await Promise.all(
    bodies.map(async (body, i) => (await s3.send(new PutObjectCommand({ Bucket: 'large', Key: `many/${i}`, Body: body }))).ETag),
  );
  t.deepEqual(etags, bodies.map((b) => `"${md5(b)}"`));
  for (const [i, body] of bodies.entries()) t.is(md5(await get(t, `many/${i}`)), md5(body), `many/${i}`);
});

test.serial('a large body whose checksum or Content-MD5 fails at its end leaves nothing stored and the old object intact', async (t) => {
  const { s3, dataDir } = t.context;
  const old = pattern(2 * MiB);
  await s3.send(new PutObjectCommand({ Bucket: 'large', Key: 'kept', Body: old }));
  const blobsBefore = (await filesUnder(join(dataDir, 'blobs'))).sort();
  const body = pattern(9 * MiB + 5);

  const badCrc = Buffer.from([1, 2, 3, 4]).toString('base64');
  const crc = await t.throwsAsync(s3.send(new PutObjectCommand({ Bucket: 'large', Key: 'kept', Body: body, ChecksumCRC32: badCrc })));
  t.is(crc!.name, 'BadDigest');
  const badMd5 = createHash('md5').update('something else').digest('base64');
  const digest = await t.throwsAsync(s3.send(new PutObjectCommand({ Bucket: 'large', Key: 'kept', Body: body, ContentMD5: badMd5 })));
  t.is(digest!.name, 'BadDigest');
  const fresh = await t.throwsAsync(s3.send(new PutObjectCommand({ Bucket: 'large', Key: 'never', Body: body, ChecksumSHA256: createHash('sha256').update('x').digest('base64') })));
  t.is(fresh!.name, 'BadDigest');

  t.true((await get(t, 'kept')).equals(old), 'the earlier object is whole');
  const never = await t.throwsAsync(s3.send(new HeadObjectCommand({ Bucket: 'large', Key: 'never' })));
  t.is(never!.name, 'NotFound');
  t.deepEqual(await filesUnder(join(dataDir, 'tmp')), [], 'no temp file left');
  t.deepEqual((await filesUnder(join(dataDir, 'blobs'))).sort(), blobsBefore, 'no new blob');
});

test('Md5Session: the digest of any split equals the MD5 of the whole, across slot boundaries', async (t) => {
  const data = pattern(5 * MiB + 3);
  const splits = [[data.length], [1, MiB - 1, MiB, MiB + 1, 7], [65_536, 3 * MiB - 65_535, 1], [2 * MiB + 1]];
  await Promise.all(
    splits.map(async (sizes) => {
      const session = new Md5Session();
      let at = 0;
      for (const n of sizes) {
        // Each update gets several buffers, as a batch of socket chunks does.
        const piece = data.subarray(at, at + n);
        const half = piece.length >> 1;
        await session.update([piece.subarray(0, half), piece.subarray(half)], piece.length);
        at += n;
      }
      const rest = data.subarray(at);
      await session.update([rest], rest.length);
      t.is((await session.digest()).toString('hex'), md5(data), sizes.join(','));
    }),
  );
  const dropped = new Md5Session();
  await dropped.update([data.subarray(0, 3 * MiB)], 3 * MiB);
  dropped.drop();
  const after = new Md5Session();
  await after.update([data], data.length);
  t.is((await after.digest()).toString('hex'), md5(data), 'a dropped session leaves the threads and slots usable');
});

test.serial('a large body cut short at any point leaves nothing stored, the old object intact and the pipeline usable', async (t) => {
  const { gw, s3, dataDir } = t.context;
  const old = pattern(2 * MiB + 9);
  await s3.send(new PutObjectCommand({ Bucket: 'large', Key: 'cut', Body: old }));
  const blobsBefore = (await filesUnder(join(dataDir, 'blobs'))).sort();
  const body = pattern(12 * MiB + 3);
  // Cut inside the first slot, on and beside MiB boundaries, deep into the body, and one byte short of its end.
  for (const cut of [1, 65_536, MiB, MiB + 1, 5 * MiB - 7, body.length - 1]) {
    const conn = await RawConnection.open(gw.url);
    const { head } = await signedRequestBytes({ url: gw.url, method: 'PUT', path: '/large/cut', body });
    conn.write(head);
    conn.write(body.subarray(0, cut));
    await new Promise((r) => setTimeout(r, 50));
    conn.socket.destroy();
    // The gateway notices the reset on its own time: wait (generously, a loaded machine) until its temp file is gone.
    for (let i = 0; i < 600 && (await filesUnder(join(dataDir, 'tmp'))).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    t.deepEqual(await filesUnder(join(dataDir, 'tmp')), [], `cut at ${cut}: no temp file left`);
    t.true((await get(t, 'cut')).equals(old), `cut at ${cut}: the earlier object is whole`);
  }
  t.deepEqual((await filesUnder(join(dataDir, 'blobs'))).sort(), blobsBefore, 'no new blob');
  const etag = (await s3.send(new PutObjectCommand({ Bucket: 'large', Key: 'cut', Body: body }))).ETag;
  t.is(etag, `"${md5(body)}"`, 'a whole body after the cut ones is stored with its MD5');
  t.true((await get(t, 'cut')).equals(body));
});

test.serial('bodies past the background fdatasync interval (16 MiB): stored whole side by side, or nothing when cut after syncs began', async (t) => {
  const { gw, s3, dataDir } = t.context;
  // Three at once: one process runs one background sync at a time, so the others go without and sync at their end.
  const bodies = [pattern(40 * MiB + 11), pattern(33 * MiB), pattern(17 * MiB - 3)];
  const etags = await Promise.all(bodies.map(async (body, i) => (await s3.send(new PutObjectCommand({ Bucket: 'large', Key: `synced/${i}`, Body: body }))).ETag));
  t.deepEqual(etags, bodies.map((b) => `"${md5(b)}"`));
  for (const [i, body] of bodies.entries()) t.true((await get(t, `synced/${i}`)).equals(body), `synced/${i} reads back whole`);

  const old = pattern(MiB + 5);
  await s3.send(new PutObjectCommand({ Bucket: 'large', Key: 'synced/cut', Body: old }));
  const blobsBefore = (await filesUnder(join(dataDir, 'blobs'))).sort();
  const body = bodies[0]!;
  const conn = await RawConnection.open(gw.url);
  const { head } = await signedRequestBytes({ url: gw.url, method: 'PUT', path: '/large/synced/cut', body });
  conn.write(head);
  conn.write(body.subarray(0, 35 * MiB));
  await new Promise((r) => setTimeout(r, 500));
  conn.socket.destroy();
  for (let i = 0; i < 600 && (await filesUnder(join(dataDir, 'tmp'))).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(await filesUnder(join(dataDir, 'tmp')), [], 'no temp file left');
  t.true((await get(t, 'synced/cut')).equals(old), 'the earlier object is whole');
  t.deepEqual((await filesUnder(join(dataDir, 'blobs'))).sort(), blobsBefore, 'no new blob');
});

/**
 * Slow, stalled and pipelining clients, on raw sockets against the real gateway: a body that stops arriving gets
 * 400 RequestTimeout and leaves no temp file; a reader that stops reading is cut off, and the blob it pinned is
 * reclaimed once it goes; pipelined requests on one connection run in order. Each case also checks that the gateway
 * still serves and that what it acknowledged is intact.
 */
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { readdir, readlink } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { bodyBytes, pattern, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { onEachBackend } from './helpers/backends.ts';
import { RawConnection, signedRequestBytes, type WireResponse } from './helpers/raw-socket.ts';

const test = anyTest as TestFn<TestGateway>;

/** Short enough to keep the suite quick, long enough that a loaded machine never trips it for a live client. */
const IDLE_MS = 3000;

test.before(async (t) => {
  t.context = await startTestGateway({ ANVIL_IDLE_TIMEOUT_MS: String(IDLE_MS) });
  await t.context.s3.send(new CreateBucketCommand({ Bucket: 'slow' }));
});

test.after.always(async (t) => t.context.close());

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function blobFiles(dataDir: string): Promise<string[]> {
  const entries = await readdir(join(dataDir, 'blobs'), { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => e.name);
}

/** Descriptors this process (the gateway runs in it) holds on files that have been deleted. */
async function deletedFilesHeldOpen(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target.startsWith(dir) && target.endsWith('(deleted)')) out.push(target);
  }
  return out;
}

async function put(t: { context: TestGateway }, key: string, body: Buffer | string): Promise<void> {
  await t.context.s3.send(new PutObjectCommand({ Bucket: 'slow', Key: key, Body: body }));
}

async function get(t: { context: TestGateway }, key: string): Promise<Buffer> {
  return bodyBytes((await t.context.s3.send(new GetObjectCommand({ Bucket: 'slow', Key: key }))).Body);
}

test.serial('a body that stops arriving is answered 400 RequestTimeout and its temp file is released', async (t) => {
  const { gw, dataDir } = t.context;
  await put(t, 'kept', 'acknowledged before the stall');
  const conn = await RawConnection.open(gw.url);
  const { head } = await signedRequestBytes({ url: gw.url, method: 'PUT', path: '/slow/stalled', declaredLength: 1024 * 1024 });
  conn.write(head);
  conn.write(Buffer.alloc(1024, 7)); // 1 KiB of the 1 MiB, then silence
  await until('the upload to reach its temp file', async () => (await readdir(join(dataDir, 'tmp'))).length === 1);

  const res = await conn.response({ timeoutMs: 120_000 });
  t.is(res.status, 400);
  t.regex(res.body.toString(), /<Code>RequestTimeout<\/Code>/);
  t.truthy(res.headers['x-amz-request-id']);
  t.is(res.headers.connection, 'close');
  t.true(await conn.waitClosed(30_000), 'the connection is closed after the answer');
  await until('the temp file to go', async () => (await readdir(join(dataDir, 'tmp'))).length === 0);

  const missing = await t.throwsAsync(get(t, 'stalled'));
  t.is(missing!.name, 'NoSuchKey', 'nothing of the stalled upload was stored');
  t.is((await get(t, 'kept')).toString(), 'acknowledged before the stall');
  // One answer only: the operation's own error, arriving after the guard's 400, is not written a second time.
  t.false(t.context.logs.some((l) => l.includes('ERR_HTTP_HEADERS_SENT')), 'no second answer was attempted');
});

test.serial('a reader that stops reading is cut off, and the blob deleted under it is reclaimed when it goes', async (t) => {
  const { gw, dataDir } = t.context;
  // Larger than every socket buffer between the two ends, so the gateway's writes really stall.
  const big = pattern(48 * 1024 * 1024);
  await put(t, 'big', big);
  // One blob: big's ('kept', written before, is small enough to live inline in the index).
  const before = await blobFiles(dataDir);
  t.is(before.length, 1);

  const conn = await RawConnection.open(gw.url);
  const { head } = await signedRequestBytes({ url: gw.url, method: 'GET', path: '/slow/big' });
  conn.write(head);
  await until('the response to start', async () => conn.socket.bytesRead > 64 * 1024);
  conn.socket.pause(); // stop reading

  await t.context.s3.send(new DeleteObjectCommand({ Bucket: 'slow', Key: 'big' }));
  await t.throwsAsync(get(t, 'big'), { name: 'NoSuchKey' });
  // The blob is unlinked once the delete is durable; the stalled reader's open descriptor still holds its space.
  await until('the deleted blob to be unlinked', async () => (await blobFiles(dataDir)).length === 0);
  t.is((await deletedFilesHeldOpen(dataDir)).length, 1, 'the stalled reader still holds the deleted blob');

  await until('the stalled reader to be cut off and its blob reclaimed', async () => (await deletedFilesHeldOpen(dataDir)).length === 0, 120_000);
  t.deepEqual(await blobFiles(dataDir), []);
  conn.socket.resume();
  t.true(await conn.waitClosed(30_000));
  t.true(conn.socket.bytesRead < big.length, 'the stalled reader did not get the whole body');

  await put(t, 'after', 'still serving');
  t.is((await get(t, 'after')).toString(), 'still serving');
  t.is((await get(t, 'kept')).toString(), 'acknowledged before the stall');
});

test.serial('pipelined requests on one connection run in order: a GET after a PUT sees the PUT', async (t) => {
  const { gw } = t.context;
  const conn = await RawConnection.open(gw.url);
  for (let i = 0; i < 20; i++) {
    const key = `pipelined-${i}`;
    const value = Buffer.from(`value ${i} `.repeat(1000));
    const putReq = await signedRequestBytes({ url: gw.url, method: 'PUT', path: `/slow/${key}`, body: value });
    const getReq = await signedRequestBytes({ url: gw.url, method: 'GET', path: `/slow/${key}` });
    conn.write(Buffer.concat([Buffer.from(putReq.head), putReq.body, Buffer.from(getReq.head)]));
    const putRes = await conn.response();
    const getRes = await conn.response();
    t.is(putRes.status, 200, `PUT ${i}`);
    t.is(getRes.status, 200, `GET ${i} after its PUT`);
    t.true(getRes.body.equals(value), `GET ${i} returns what the PUT stored`);
  }

  // Overwrite, delete and read back, all in one write: each step sees the one before.
  const steps = [
    await signedRequestBytes({ url: gw.url, method: 'PUT', path: '/slow/seq', body: 'one' }),
    await signedRequestBytes({ url: gw.url, method: 'PUT', path: '/slow/seq', body: 'two' }),
    await signedRequestBytes({ url: gw.url, method: 'GET', path: '/slow/seq' }),
    await signedRequestBytes({ url: gw.url, method: 'DELETE', path: '/slow/seq' }),
    await signedRequestBytes({ url: gw.url, method: 'GET', path: '/slow/seq' }),
  ];
  conn.write(Buffer.concat(steps.flatMap((s) => [Buffer.from(s.head), s.body])));
  const answers = [];
  for (let i = 0; i < steps.length; i++) answers.push(await conn.response());
  t.deepEqual(answers.map((a) => a.status), [200, 200, 200, 204, 404]);
  t.is(answers[2]!.body.toString(), 'two');
  conn.destroy();
  t.is((await get(t, 'pipelined-19')).toString(), 'value 19 '.repeat(1000));
});

test.serial('time the gateway itself spends (a slow upstream) never counts against the client', async (t) => {
  // An upstream that takes four idle timeouts to answer ListBuckets.
  const upstream = createServer((req, res) => {
    req.resume();
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end(
        '<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
          '<Owner><ID>o</ID><DisplayName>o</DisplayName></Owner><Buckets><Bucket><Name>slowpoke</Name>' +
          '<CreationDate>2024-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>',
      );
    }, 4 * 1000);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const tg = await startTestGateway({
    ANVIL_IDLE_TIMEOUT_MS: '1000',
    ANVIL_BACKEND: 'upstream',
    ANVIL_UPSTREAM_ENDPOINT: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    ANVIL_UPSTREAM_ACCESS_KEY: 'k',
    ANVIL_UPSTREAM_SECRET_KEY: 's',
    ANVIL_UPSTREAM_TIMEOUT_MS: '60000',
  });
  try {
    const conn = await RawConnection.open(tg.gw.url);
    const { head } = await signedRequestBytes({ url: tg.gw.url, method: 'GET', path: '/' });
    conn.write(head);
    const res = await conn.response({ timeoutMs: 120_000 });
    t.is(res.status, 200);
    t.regex(res.body.toString(), /<Name>slowpoke<\/Name>/);
    t.false(conn.closed, 'the connection stays open for the next request');
    conn.destroy();
  } finally {
    await tg.close();
    upstream.closeAllConnections();
    upstream.close();
  }
});

/** The inFlight count the gateway logged when its stop began. */
function inFlightAtStop(logs: string[]): number | undefined {
  const line = logs.find((l) => l.includes('shutting down'));
  return line === undefined ? undefined : (JSON.parse(line) as { inFlight: number }).inFlight;
}

test.serial('requests pipelined behind a refusal or a closed connection are dropped, not left in flight for the stop to wait on', async (t) => {
  const tg = await startTestGateway();
  try {
    const { gw } = tg;
    await tg.s3.send(new CreateBucketCommand({ Bucket: 'slow' }));
    await tg.s3.send(new PutObjectCommand({ Bucket: 'slow', Key: 'small', Body: 'small' }));
    await tg.s3.send(new PutObjectCommand({ Bucket: 'slow', Key: 'big', Body: pattern(48 * 1024 * 1024) }));
    const wrongSecret = { accessKeyId: 'AKIATESTROOT00000001', secretAccessKey: 'x'.repeat(40) };
    const refused = await signedRequestBytes({ url: gw.url, method: 'PUT', path: '/slow/refused', body: 'abc', creds: wrongSecret });
    const small = await signedRequestBytes({ url: gw.url, method: 'GET', path: '/slow/small' });

    // A refusal with its body (403, Connection: close), then five signed GETs in the same write: the last answer has
    // been given, so they are not served (RFC 9112 §9.6).
    const REFUSED_CONNECTIONS = 10;
    for (let i = 0; i < REFUSED_CONNECTIONS; i++) {
      const conn = await RawConnection.open(gw.url);
      conn.write(Buffer.concat([Buffer.from(refused.head), refused.body, ...Array.from({ length: 5 }, () => Buffer.from(small.head))]));
      const res = await conn.response();
      t.is(res.status, 403, `connection ${i}: the refusal`);
      t.is(res.headers.connection, 'close');
      t.true(await conn.waitClosed(30_000), `connection ${i}: closed after its last answer`);
      await t.throwsAsync(conn.response({ timeoutMs: 1 }), undefined, `connection ${i}: nothing answered after the refusal`);
      conn.destroy();
    }

    // A keep-alive connection whose client goes while the first request runs (a GET it stops reading), with a second
    // GET queued behind it: the second is never started.
    const big = await signedRequestBytes({ url: gw.url, method: 'GET', path: '/slow/big' });
    const conn = await RawConnection.open(gw.url);
    conn.write(Buffer.concat([Buffer.from(big.head), Buffer.from(small.head)]));
    await until('the first response to start', async () => conn.socket.bytesRead > 64 * 1024);
    conn.destroy();
    const accessLines = (key: string) => tg.logs.filter((l) => l.includes('"msg":"request"') && l.includes(`"key":"${key}"`));
    await until('the gateway to see the client go', async () => accessLines('big').some((l) => l.includes('"operation":"GetObject"')));

    // Every request was answered or dropped: the stop cuts nothing off, and began with nothing in flight.
    const cutOff = await gw.shutdown(30_000);
    t.is(cutOff, 0, 'no request was still in flight at the shutdown timeout');
    t.is(inFlightAtStop(tg.logs), 0);
    const answered = accessLines('refused').filter((l) => l.includes('"status":403'));
    t.is(answered.length, REFUSED_CONNECTIONS, 'each refusal has its access line');
  } finally {
    await tg.close();
  }
});

/**
 * Sends a PUT of `length` bytes as `pieces` pieces, one every `everyMs`, then reads its answer (the gateway may answer
 * and close before the last piece: writes after that are dropped).
 */
async function trickledPut(url: string, bucket: string, key: string, length: number, pieces: number, everyMs: number): Promise<WireResponse> {
  const conn = await RawConnection.open(url);
  const { head } = await signedRequestBytes({ url, method: 'PUT', path: `/${bucket}/${key}`, declaredLength: length });
  conn.write(head);
  const piece = Buffer.alloc(length / pieces, 'p');
  const answer = conn.response({ timeoutMs: 120_000 });
  answer.catch(() => {});
  for (let i = 0; i < pieces && !conn.closed; i++) {
    await new Promise((r) => setTimeout(r, everyMs));
    if (!conn.closed) conn.write(piece);
  }
  try {
    return await answer;
  } finally {
    conn.destroy();
  }
}

// The pace rule with a short setting: once read for 2 s, a body must have averaged 1,000 bytes a second.
onEachBackend(
  test,
  'a body trickled under the idle timeout',
  (it) => {
    it('a body trickled just under the idle timeout, slower than ANVIL_MIN_BODY_RATE, is answered 400 RequestTimeout and stores nothing', async (t, f) => {
      const { gw, s3 } = f.gw;
      await s3.send(new CreateBucketCommand({ Bucket: 'paced' }));
      // 20 bytes a second, a piece every 500 ms (never idle for the 2 s timeout): 40 s to send all 800 bytes.
      const res = await trickledPut(gw.url, 'paced', 'trickled', 800, 40, 500);
      t.is(res.status, 400);
      t.regex(res.body.toString(), /<Code>RequestTimeout<\/Code>/);
      t.truthy(res.headers['x-amz-request-id']);
      t.is(res.headers.connection, 'close');
      await t.throwsAsync(s3.send(new GetObjectCommand({ Bucket: 'paced', Key: 'trickled' })), { name: 'NoSuchKey' });
      if (f.name === 'embedded') await until('the temp file to go', async () => (await readdir(join(f.gw.dataDir, 'tmp'))).length === 0);
    });

    it('a body sent slowly but above ANVIL_MIN_BODY_RATE is stored whole', async (t, f) => {
      const { gw, s3 } = f.gw;
      // A bucket of its own: the two tests run at once, and over MinIO a racing CreateBucket of one name could answer
      // BucketAlreadyOwnedByYou before the winner's bucket took writes (see the session 12 closing note).
      await s3.send(new CreateBucketCommand({ Bucket: 'paced-steady' }));
      // 4,000 bytes a second for 5 s, well past the 2 s grace.
      const res = await trickledPut(gw.url, 'paced-steady', 'steady', 20_000, 10, 500);
      t.is(res.status, 200, res.body.toString());
      const stored = await bodyBytes((await s3.send(new GetObjectCommand({ Bucket: 'paced-steady', Key: 'steady' }))).Body);
      t.true(stored.equals(Buffer.alloc(20_000, 'p')));
    });
  },
  { ANVIL_IDLE_TIMEOUT_MS: '2000', ANVIL_MIN_BODY_RATE: '1000' },
);

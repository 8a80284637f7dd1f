/**
 * Refusals that come from the operation itself while a large body is still arriving, sent without
 * `Expect: 100-continue` as urllib3 (boto3, the AWS CLI) does: the whole body first, then the answer. A store that
 * stops reading (a failed precondition, a missing bucket or upload) must not take the connection with it: the client
 * reads the whole S3 error, never a reset (EPIPE/ECONNRESET, which an SDK answers by sending the upload again), and
 * nothing is stored. Refusals before the operation (403, bad headers) are test/lingering-close.test.ts. On the
 * embedded store and over MinIO; a client that disconnects mid-body still stores nothing.
 */
import { CreateBucketCommand, CreateMultipartUploadCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { ADMIN_PREFIX } from '../gateway/admin/index.ts';
import { onEachBackend, type Flavour } from './helpers/backends.ts';
import { pattern, ROOT, startTestGateway } from './helpers/gateway.ts';
import { signRequest } from './helpers/raw.ts';

const test = anyTest as TestFn<unknown>;

const MIB = 1024 * 1024;
/** Well past the ~3 MB at which the kernel's buffers fill and a reset would reach the sending client. */
const BODY_BYTES = 8 * MIB;

/** What came back: status, headers, body, and how the connection ended after it. */
interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** 'open' when the answer kept the connection alive. */
  ending: 'open' | 'closed';
}

/**
 * Writes `head`, then `prefix`, `size` bytes of filler and `suffix`, waiting for each write to drain, and only then
 * reads one Content-Length framed answer; with `Connection: close`, also waits for the gateway's FIN and closes.
 * Rejects on any socket error (the reset this file is about) or a close before the whole answer.
 */
async function sendWholeThenRead(port: number, head: string, size: number, prefix = Buffer.alloc(0), suffix = Buffer.alloc(0)): Promise<Answer> {
  // Half-open allowed: like urllib3, the client goes on sending after the gateway's FIN and reads the answer after.
  const socket: Socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  let received = Buffer.alloc(0);
  let closed = false;
  let wake = (): void => {};
  const failed = new Promise<never>((_, reject) => socket.once('error', reject));
  failed.catch(() => {});
  socket.on('data', (d: Buffer) => {
    received = Buffer.concat([received, d]);
    wake();
  });
  socket.once('end', () => {
    closed = true;
    wake();
  });
  const write = async (chunk: Buffer | string): Promise<void> => {
    if (!socket.write(chunk)) await Promise.race([new Promise((r) => socket.once('drain', r)), failed]);
  };
  try {
    await write(head);
    await write(prefix);
    const piece = pattern(MIB);
    for (let sent = 0; sent < size; sent += MIB) await write(piece.subarray(0, Math.min(MIB, size - sent)));
    await write(suffix);
    const deadline = Date.now() + 30_000;
    const until = async (done: () => boolean): Promise<void> => {
      while (!done()) {
        if (closed) return;
        if (Date.now() > deadline) throw new Error(`no whole answer within 30 s (${received.length} bytes received)`);
        await Promise.race([new Promise<void>((r) => (wake = r)), failed, new Promise((r) => setTimeout(r, 100))]);
      }
    };
    const framed = (): { status: number; headers: Record<string, string>; body: string } | undefined => {
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return undefined;
      const lines = received.subarray(0, end).toString('latin1').split('\r\n');
      const headers = Object.fromEntries(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      const length = Number(headers['content-length'] ?? 0);
      if (received.length < end + 4 + length) return undefined;
      return { status: Number(lines[0]!.split(' ')[1]), headers, body: received.subarray(end + 4, end + 4 + length).toString('utf8') };
    };
    await until(() => framed() !== undefined);
    const answer = framed();
    if (!answer) throw new Error(`the connection closed before a whole answer (${received.length} bytes received)`);
    if (answer.headers.connection !== 'close') return { ...answer, ending: 'open' };
    await until(() => closed);
    if (!closed) throw new Error('an answer with Connection: close, and the connection stayed open');
    // The gateway half-closed; closing this side ends the connection, and a reset would still fail `failed`.
    socket.end();
    await Promise.race([new Promise((r) => socket.once('close', r)), failed]);
    return { ...answer, ending: 'closed' };
  } finally {
    socket.destroy();
  }
}

/** A signed PUT head (unsigned payload, `size` bytes declared, no Expect) for `path`. */
async function putHead(f: Flavour, path: string, size: number, headers: Record<string, string> = {}, query?: Record<string, string>): Promise<string> {
  const signed = await signRequest({ url: f.gw.gw.url, method: 'PUT', path, query, payloadHash: 'UNSIGNED-PAYLOAD', headers: { 'content-length': String(size), ...headers } });
  return `PUT ${signed.path} HTTP/1.1\r\n${Object.entries(signed.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}

async function freshBucket(f: Flavour): Promise<string> {
  const bucket = `mid-${randomBytes(4).toString('hex')}`;
  await f.gw.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

async function etagOf(f: Flavour, bucket: string, key: string): Promise<string | undefined> {
  return f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(
    (h) => h.ETag,
    (err: { name?: string }) => (err.name === 'NotFound' ? undefined : Promise.reject(err)),
  );
}

/** The answer is the whole S3 error `code` with its request id, and the connection ended without a reset. */
function assertRefused(t: ExecutionContext, res: Answer, status: number, code: string): void {
  t.is(res.status, status, res.body);
  t.regex(res.body, new RegExp(`<Code>${code}</Code>`));
  t.truthy(res.headers['x-amz-request-id']);
  t.true(res.body.includes(`<RequestId>${res.headers['x-amz-request-id']}</RequestId>`), 'the request id in the body');
}

onEachBackend(test, 'refusal-mid-body', (it) => {
  it('an 8 MiB PUT refused 412 by If-None-Match: * or a wrong If-Match is answered whole, not reset; the object stays', async (t, f) => {
    const bucket = await freshBucket(f);
    const before = (await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'taken', Body: 'first' }))).ETag;
    for (const condition of [{ 'if-none-match': '*' }, { 'if-match': '"0123456789abcdef0123456789abcdef"' }] as Array<Record<string, string>>) {
      const res = await sendWholeThenRead(f.gw.gw.port, await putHead(f, `/${bucket}/taken`, BODY_BYTES, condition), BODY_BYTES);
      assertRefused(t, res, 412, 'PreconditionFailed');
      t.is(await etagOf(f, bucket, 'taken'), before, `${JSON.stringify(condition)}: the first object stays`);
    }
  });

  it('an 8 MiB PUT to a missing bucket is answered 404 NoSuchBucket whole, not reset', async (t, f) => {
    const bucket = `gone-${randomBytes(4).toString('hex')}`;
    const res = await sendWholeThenRead(f.gw.gw.port, await putHead(f, `/${bucket}/k`, BODY_BYTES), BODY_BYTES);
    assertRefused(t, res, 404, 'NoSuchBucket');
  });

  it('an 8 MiB UploadPart of an unknown upload is answered 404 NoSuchUpload whole, not reset', async (t, f) => {
    const bucket = await freshBucket(f);
    // A real upload of another key: its id is well formed, so only the key tells it does not belong here.
    const other = await f.gw.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'other' }));
    const res = await sendWholeThenRead(f.gw.gw.port, await putHead(f, `/${bucket}/part`, BODY_BYTES, {}, { partNumber: '1', uploadId: other.UploadId! }), BODY_BYTES);
    assertRefused(t, res, 404, 'NoSuchUpload');
  });

  it('an 8 MiB aws-chunked PUT whose framing breaks is answered 403 InvalidChunkSizeError whole, not reset; nothing stored', async (t, f) => {
    const bucket = await freshBucket(f);
    // The body verifier refuses at the first chunk header while the client still has 8 MiB to send.
    const prefix = Buffer.from('zz\r\n');
    const signed = await signRequest({
      url: f.gw.gw.url, method: 'PUT', path: `/${bucket}/framed`, payloadHash: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
      headers: { 'content-length': String(prefix.length + BODY_BYTES), 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(BODY_BYTES) },
    });
    const head = `PUT ${signed.path} HTTP/1.1\r\n${Object.entries(signed.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
    const res = await sendWholeThenRead(f.gw.gw.port, head, BODY_BYTES, prefix);
    assertRefused(t, res, 403, 'InvalidChunkSizeError');
    t.is(await etagOf(f, bucket, 'framed'), undefined);
  });

  it('an 8 MiB POST Object refused mid-file (missing bucket, over its size range) is answered whole, not reset', async (t, f) => {
    const bucket = await freshBucket(f);
    const cases = [
      { bucket: `gone-${randomBytes(4).toString('hex')}`, conditions: [] as Array<['content-length-range', number, number]>, status: 404, code: 'NoSuchBucket' },
      { bucket, conditions: [['content-length-range', 1, 1000]] as Array<['content-length-range', number, number]>, status: 400, code: 'EntityTooLarge' },
    ];
    for (const c of cases) {
      const post = await createPresignedPost(f.gw.s3, { Bucket: c.bucket, Key: 'posted', Conditions: c.conditions, Expires: 300 });
      const boundary = `----anvil${randomBytes(8).toString('hex')}`;
      const fields = Object.entries(post.fields).map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join('');
      const prefix = Buffer.from(`${fields}--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
      const suffix = Buffer.from(`\r\n--${boundary}--\r\n`);
      const length = prefix.length + BODY_BYTES + suffix.length;
      const head = `POST /${c.bucket} HTTP/1.1\r\nhost: 127.0.0.1:${f.gw.gw.port}\r\ncontent-type: multipart/form-data; boundary=${boundary}\r\ncontent-length: ${length}\r\n\r\n`;
      const res = await sendWholeThenRead(f.gw.gw.port, head, BODY_BYTES, prefix, suffix);
      assertRefused(t, res, c.status, c.code);
    }
    t.is(await etagOf(f, bucket, 'posted'), undefined, 'nothing stored');
  });

  it('a client that disconnects halfway through a conditional PUT stores nothing, and the gateway serves on', async (t, f) => {
    const bucket = await freshBucket(f);
    for (const headers of [{}, { 'if-none-match': '*' }] as Array<Record<string, string>>) {
      const socket = connect({ host: '127.0.0.1', port: f.gw.gw.port });
      socket.on('error', () => {});
      socket.write(await putHead(f, `/${bucket}/half`, BODY_BYTES, headers));
      const piece = pattern(MIB);
      for (let sent = 0; sent < BODY_BYTES / 2; sent += MIB) {
        if (!socket.write(piece)) await new Promise((r) => socket.once('drain', r));
      }
      await new Promise((r) => setTimeout(r, 200));
      socket.destroy();
      await new Promise((r) => socket.once('close', r));
    }
    // The store's stream ended with an error, so nothing appears, now or once the gateway is done with the bodies.
    await new Promise((r) => setTimeout(r, 500));
    t.is(await etagOf(f, bucket, 'half'), undefined);
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'half', Body: 'whole', IfNoneMatch: '*' }));
    t.truthy(await etagOf(f, bucket, 'half'));
  });
});

test('an admin body refused as too large while it still arrives (chunked, no length) is answered whole, not reset', async (t) => {
  const tg = await startTestGateway();
  try {
    const size = 8 * MIB;
    const body = Buffer.alloc(size, 0x20);
    const signed = await signRequest({
      url: tg.gw.url, method: 'POST', path: `${ADMIN_PREFIX}/tenants`, creds: ROOT,
      payloadHash: createHash('sha256').update(body).digest('hex'),
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
    });
    const head = `POST ${signed.path} HTTP/1.1\r\n${Object.entries(signed.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
    // One chunk of the whole body, then the last chunk: the refusal comes at 64 KiB, long before the end.
    const res = await sendWholeThenRead(tg.gw.port, head, size, Buffer.from(`${size.toString(16)}\r\n`), Buffer.from('\r\n0\r\n\r\n'));
    t.is(res.status, 413, res.body);
    t.regex(res.body, /PayloadTooLarge/);
    t.is(res.ending, 'closed');
  } finally {
    await tg.close();
  }
});

test('STS and console bodies over their 64 KiB limit, sent whole (with and without a length), are answered whole, not reset', async (t) => {
  const tg = await startTestGateway();
  try {
    const size = 8 * MIB;
    const host = `host: 127.0.0.1:${tg.gw.port}\r\n`;
    const cases = [
      { what: 'STS, Content-Length', head: `POST / HTTP/1.1\r\n${host}content-type: application/x-www-form-urlencoded\r\ncontent-length: ${size}\r\n\r\n`, chunked: false, status: 400, code: 'ValidationError' },
      { what: 'STS, chunked', head: `POST / HTTP/1.1\r\n${host}content-type: application/x-www-form-urlencoded\r\ntransfer-encoding: chunked\r\n\r\n`, chunked: true, status: 400, code: 'ValidationError' },
      { what: 'console sign-in, chunked', head: `POST /_anvil/console/api/session HTTP/1.1\r\n${host}content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`, chunked: true, status: 413, code: 'PayloadTooLarge' },
    ];
    for (const c of cases) {
      const prefix = Buffer.from(c.chunked ? `${size.toString(16)}\r\n` : '');
      const suffix = Buffer.from(c.chunked ? '\r\n0\r\n\r\n' : '');
      const res = await sendWholeThenRead(tg.gw.port, c.head, size, prefix, suffix);
      t.is(res.status, c.status, `${c.what}: ${res.body}`);
      t.true(res.body.includes(c.code), `${c.what}: ${res.body}`);
      t.is(res.ending, 'closed', c.what);
    }
  } finally {
    await tg.close();
  }
});

/**
 * A request refused while its large body is still arriving, sent without `Expect: 100-continue`: the client reads
 * the whole S3 error (status, XML code, request id), never a reset, over HTTP and HTTPS (and, through
 * test/workers/lingering-close.test.ts, with worker processes). The gateway answers, half-closes and drains what
 * still arrives for a bounded time and byte budget (gateway/http/lingering-close.ts) instead of closing on unread
 * bytes, which makes the kernel reset the connection.
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent } from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { pattern, ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { signRequest } from './helpers/raw.ts';
import { makeCertificates } from './helpers/tls.ts';

const MIB = 1024 * 1024;
const BODY_BYTES = 32 * MIB;

/** A credential that may only read: its PUT is refused 403 AccessDenied before the body is read. */
async function readOnly(tg: TestGateway): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  const c = await tg.gw.policy.createCredential({ tenant: 'root', name: 'reader', scopes: [{ families: ['object:read', 'object:list'], bucket: '*' }] });
  return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretKey };
}

/**
 * PUTs BODY_BYTES with a Content-Length and no Expect header over a raw socket, as urllib3 (boto3, the AWS CLI)
 * does: the whole body is sent first, and only then is the response read, to the connection's end. Rejects when the
 * connection fails (a reset) before the response is read.
 */
async function putWithoutContinue(opts: { url: string; path: string; creds: { accessKeyId: string; secretAccessKey: string }; ca?: Buffer }): Promise<{ status: number; body: string; requestId?: string }> {
  const signed = await signRequest({ url: opts.url, method: 'PUT', path: opts.path, creds: opts.creds, payloadHash: 'UNSIGNED-PAYLOAD', headers: { 'content-length': String(BODY_BYTES) } });
  const u = new URL(opts.url);
  const socket: Socket = u.protocol === 'https:' ? tlsConnect({ host: u.hostname, port: Number(u.port), ca: opts.ca }) : netConnect({ host: u.hostname, port: Number(u.port) });
  const failed = new Promise<never>((_, reject) => socket.once('error', reject));
  failed.catch(() => {});
  const head = `PUT ${signed.path} HTTP/1.1\r\n${Object.entries(signed.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  socket.write(head);
  const piece = pattern(MIB);
  for (let sent = 0; sent < BODY_BYTES; sent += MIB) {
    if (!socket.write(piece)) await Promise.race([new Promise((r) => socket.once('drain', r)), failed]);
  }
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await Promise.race([new Promise((r) => socket.once('end', r)), failed]);
  socket.destroy();
  const text = Buffer.concat(chunks).toString('utf8');
  const [headText, body = ''] = text.split('\r\n\r\n', 2);
  const lines = headText!.split('\r\n');
  const header = (name: string) => lines.find((l) => l.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim();
  const length = Number(header('content-length'));
  if (Buffer.byteLength(body) !== length) throw new Error(`a response cut short: ${Buffer.byteLength(body)} of ${length} bytes`);
  return { status: Number(lines[0]!.split(' ')[1]), body, requestId: header('x-amz-request-id') };
}

async function assertRefusedWhole(t: import('ava').ExecutionContext, tg: TestGateway, ca?: Buffer): Promise<void> {
  const s3 = new S3Client({
    endpoint: tg.gw.url, region: tg.config.region, credentials: ROOT, forcePathStyle: true,
    requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca }) }),
  });
  await s3.send(new CreateBucketCommand({ Bucket: 'linger' }));
  s3.destroy();
  const creds = await readOnly(tg);
  // Several rounds: without the lingering close the reset comes often, not always.
  for (let round = 0; round < 4; round++) {
    const res = await putWithoutContinue({ url: tg.gw.url, path: `/linger/big-${round}`, creds, ca });
    t.is(res.status, 403, `round ${round}: status`);
    t.regex(res.body, /<Code>AccessDenied<\/Code>/, `round ${round}: the S3 error document`);
    t.truthy(res.requestId, `round ${round}: a request id header`);
    t.regex(res.body, new RegExp(`<RequestId>${res.requestId}</RequestId>`), `round ${round}: the request id in the body`);
  }
}

test('a 32 MiB PUT without 100-continue refused 403 is answered in full, not reset (HTTP)', async (t) => {
  const tg = await startTestGateway();
  try {
    await assertRefusedWhole(t, tg);
  } finally {
    await tg.close();
  }
});

test('a 32 MiB PUT without 100-continue refused 403 is answered in full, not reset (HTTPS)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'anvil-linger-tls-'));
  try {
    await makeCertificates(dir);
    const tg = await startTestGateway({ ANVIL_TLS_CERT: join(dir, 'one.pem'), ANVIL_TLS_KEY: join(dir, 'one.key') });
    try {
      await assertRefusedWhole(t, tg, readFileSync(join(dir, 'ca.pem')));
    } finally {
      await tg.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a refused client that keeps sending is cut off: the drain is bounded, not the whole declared body', async (t) => {
  const tg = await startTestGateway();
  try {
    await tg.s3.send(new CreateBucketCommand({ Bucket: 'linger' }));
    const creds = await readOnly(tg);
    const declared = 4096 * MIB;
    const signed = await signRequest({ url: tg.gw.url, method: 'PUT', path: '/linger/endless', creds, payloadHash: 'UNSIGNED-PAYLOAD', headers: { 'content-length': String(declared) } });
    const socket = netConnect({ host: '127.0.0.1', port: tg.gw.port });
    let received = '';
    socket.on('data', (c: Buffer) => (received += c.toString()));
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
    socket.write(`PUT ${signed.path} HTTP/1.1\r\n${Object.entries(signed.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
    const piece = pattern(MIB);
    let sent = 0;
    while (sent < declared && !socket.destroyed) {
      if (!socket.write(piece)) await Promise.race([new Promise((r) => socket.once('drain', r)), ended]);
      sent += MIB;
    }
    await ended;
    t.true(sent < declared, `the gateway closed the connection after ${sent / MIB} of ${declared / MIB} MiB`);
    t.regex(received, /^HTTP\/1\.1 403 /, 'the refusal was sent first');
    t.regex(received, /<Code>AccessDenied<\/Code>/);
  } finally {
    await tg.close();
  }
});

/**
 * HTTPS end to end, with a CA and certificates the test generates (openssl): the SDK and the AWS CLI upload over
 * TLS, where both send aws-chunked bodies with trailing checksums (STREAMING-UNSIGNED-PAYLOAD-TRAILER), and read back
 * what they wrote; the certificate is swapped without a restart when its files change and on reloadTls() (SIGHUP),
 * and a pair that does not load leaves the old one serving.
 */
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { connect } from 'node:tls';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { bodyBytes, ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { makeCertificates } from './helpers/tls.ts';

const run = promisify(execFile);

/** The subject CN of the certificate the server presents to a new connection. */
function servedName(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const cert = socket.getPeerX509Certificate() as X509Certificate;
      socket.end();
      resolve(/CN=([^\n,]+)/.exec(cert.subject)![1]!);
    });
    socket.on('error', reject);
  });
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface Ctx {
  dir: string;
  ca: Buffer;
  tg: TestGateway;
  /** x-amz-content-sha256 of every request the gateway received. */
  payloadModes: string[];
}

async function withTlsGateway(fn: (c: Ctx) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'anvil-tls-'));
  await makeCertificates(dir);
  copyFileSync(join(dir, 'one.pem'), join(dir, 'cert.pem'));
  copyFileSync(join(dir, 'one.key'), join(dir, 'key.pem'));
  const tg = await startTestGateway({ ANVIL_TLS_CERT: join(dir, 'cert.pem'), ANVIL_TLS_KEY: join(dir, 'key.pem') });
  const payloadModes: string[] = [];
  // Requests with Expect: 100-continue arrive as checkContinue, the others as request.
  for (const event of ['request', 'checkContinue']) tg.gw.server.on(event, (req) => payloadModes.push(String(req.headers['x-amz-content-sha256'])));
  try {
    await fn({ dir, ca: readFileSync(join(dir, 'ca.pem')), tg, payloadModes });
  } finally {
    await tg.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the SDK over HTTPS: streamed uploads carry trailing CRC32 checksums, verified and stored', async (t) => {
  await withTlsGateway(async ({ ca, tg, payloadModes }) => {
    t.regex(tg.gw.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const s3 = new S3Client({
      endpoint: tg.gw.url, region: 'us-east-1', credentials: ROOT, forcePathStyle: true,
      requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca }) }),
    });
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'secure' }));
      const body = randomBytes(3 * 1024 * 1024 + 17);
      const put = await s3.send(new PutObjectCommand({ Bucket: 'secure', Key: 'streamed.bin', Body: Readable.from([body.subarray(0, 1 << 20), body.subarray(1 << 20)]), ContentLength: body.length }));
      t.true(payloadModes.includes('STREAMING-UNSIGNED-PAYLOAD-TRAILER'), payloadModes.join(' '));
      // The gateway answers with the checksum it verified from the trailer.
      const expected = Buffer.alloc(4);
      expected.writeUInt32BE(crc32(body));
      t.is(put.ChecksumCRC32, expected.toString('base64'));
      const got = await s3.send(new GetObjectCommand({ Bucket: 'secure', Key: 'streamed.bin' }));
      t.true((await bodyBytes(got.Body)).equals(body));
    } finally {
      s3.destroy();
    }
  });
});

test('the AWS CLI over HTTPS (--ca-bundle): put, multipart upload and download with trailing checksums', async (t) => {
  await withTlsGateway(async ({ dir, tg, payloadModes }) => {
    const env = { ...process.env, AWS_ACCESS_KEY_ID: ROOT.accessKeyId, AWS_SECRET_ACCESS_KEY: ROOT.secretAccessKey, AWS_DEFAULT_REGION: 'us-east-1', AWS_CA_BUNDLE: join(dir, 'ca.pem') };
    const aws = (...args: string[]) => run('aws', ['--endpoint-url', tg.gw.url, ...args], { env, maxBuffer: 64 * 1024 * 1024 });
    await aws('s3', 'mb', 's3://cli-secure');
    const small = randomBytes(100_000);
    const large = randomBytes(12 * 1024 * 1024);
    writeFileSync(join(dir, 'small.bin'), small);
    writeFileSync(join(dir, 'large.bin'), large);
    const before = payloadModes.length;
    await aws('s3', 'cp', join(dir, 'small.bin'), 's3://cli-secure/small.bin');
    await aws('s3', 'cp', join(dir, 'large.bin'), 's3://cli-secure/large.bin');
    const uploads = payloadModes.slice(before);
    t.true(uploads.filter((m) => m === 'STREAMING-UNSIGNED-PAYLOAD-TRAILER').length >= 3, uploads.join(' '));
    await aws('s3', 'cp', 's3://cli-secure/large.bin', join(dir, 'large.back'));
    await aws('s3', 'cp', 's3://cli-secure/small.bin', join(dir, 'small.back'));
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    t.is(sha(readFileSync(join(dir, 'large.back'))), sha(large));
    t.is(sha(readFileSync(join(dir, 'small.back'))), sha(small));
    const listing = (await aws('s3', 'ls', 's3://cli-secure/')).stdout;
    t.regex(listing, /large\.bin/);
  });
});

test('the certificate is reloaded when its files change and on reloadTls(); a broken pair keeps the old one', async (t) => {
  await withTlsGateway(async ({ dir, ca, tg }) => {
    t.is(await servedName(tg.gw.port, ca), 'anvil-one');
    // A key that does not match the certificate: refused, the current pair keeps serving.
    copyFileSync(join(dir, 'two.pem'), join(dir, 'cert.pem'));
    t.false(tg.gw.reloadTls());
    t.is(await servedName(tg.gw.port, ca), 'anvil-one');
    t.true(tg.logs.some((l) => /TLS certificate reload failed/.test(l)));
    // The matching key arrives: the file watcher loads the new pair, no restart.
    copyFileSync(join(dir, 'two.key'), join(dir, 'key.pem'));
    await until(async () => (await servedName(tg.gw.port, ca)) === 'anvil-two', 'the new certificate');
    // SIGHUP's path: back to the first certificate on demand.
    copyFileSync(join(dir, 'one.pem'), join(dir, 'cert.pem'));
    copyFileSync(join(dir, 'one.key'), join(dir, 'key.pem'));
    t.true(tg.gw.reloadTls());
    t.is(await servedName(tg.gw.port, ca), 'anvil-one');
    await t.throwsAsync(fetch(`${tg.gw.url}/_anvil/health/live`), undefined, 'an unknown CA is refused by a verifying client');
  });
});

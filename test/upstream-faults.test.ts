/**
 * An upstream that is down at start, and an upstream whose own volume is full, with a real MinIO: the gateway starts
 * anyway, answers 503 with Retry-After (at once, not after a timeout) and reports not ready until the upstream is back,
 * then recovers by itself; MinIO's 507 XMinioStorageFull reaches the
 * client as the same non-retried 507. Each case checks the gateway still serves and acknowledged objects are intact.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type S3ServiceException,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { admin } from './helpers/admin.ts';
import { bodyBytes, pattern, ROOT, startTestGateway } from './helpers/gateway.ts';
import { directClient, minioOrExplain, startMinio, upstreamEnv } from './helpers/minio.ts';
import { signedSend } from './helpers/raw.ts';
import { mountSmallVolume, type SmallVolume } from './helpers/small-volume.ts';

const MiB = 1024 * 1024;
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

async function eventually<T>(what: string, attempt: () => Promise<T>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: still failing after ${timeoutMs} ms: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/**
 * An upstream with exactly MinIO's full-volume wire behaviour, made deterministic: it answers a PutObject 507
 * XMinioStorageFull after the first bytes of the body, then resets the connection under the rest (MinIO does the
 * same after its 100 Continue, but only sometimes fast enough to lose the race). Everything else gets an empty 200.
 */
async function resettingUpstream(): Promise<{ endpoint: string; close: () => Promise<void> }> {
  const refuse = (req: IncomingMessage, res: ServerResponse): void => {
    req.once('data', () => {
      const body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>XMinioStorageFull</Code><Message>Storage backend has reached its minimum free drive threshold.</Message></Error>';
      // Straight onto the socket, then the reset at once: the answer and the RST arrive together, as from MinIO.
      req.socket.write(`HTTP/1.1 507 Insufficient Storage\r\ncontent-type: application/xml\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      req.socket.resetAndDestroy();
      res.destroy();
    });
  };
  const server = createServer((req, res) => {
    if (req.method === 'PUT' && /^\/[^/?]+\/[^?]+/.test(req.url ?? '')) return refuse(req, res);
    req.resume();
    const body = req.method === 'GET' && req.url === '/' ? '<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult><Buckets></Buckets></ListAllMyBucketsResult>' : '';
    res.writeHead(200, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/**
 * An upstream that answers like an empty S3 (every bucket exists and is empty, objects are empty) until `hang()`,
 * then takes requests and never answers them, like a MinIO that was SIGSTOPped; it counts the requests it swallowed.
 */
async function hangingUpstream(): Promise<{ endpoint: string; hang: () => void; swallowed: () => number; close: () => Promise<void> }> {
  let hung = false;
  let swallowed = 0;
  const server = createServer((req, res) => {
    req.resume();
    if (hung) {
      swallowed++;
      return;
    }
    const listing = req.method === 'GET' && /[?&]list-type=2/.test(req.url ?? '');
    const body = req.method === 'GET' && req.url === '/'
      ? '<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult><Buckets></Buckets></ListAllMyBucketsResult>'
      : listing ? '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>' : '';
    res.writeHead(200, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), etag: '"d41d8cd98f00b204e9800998ecf8427e"' });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hang: () => {
      hung = true;
    },
    swallowed: () => swallowed,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

test('an upstream that hangs: a read and a listing are each sent once and answered 503 after one timeout, not retried into a second', async (t) => {
  for (const [what, call] of [
    ['GetObject', (s3: S3Client) => s3.send(new GetObjectCommand({ Bucket: 'hung', Key: 'k' }))],
    ['ListObjectsV2', (s3: S3Client) => s3.send(new ListObjectsV2Command({ Bucket: 'hung' }))],
  ] as const) {
    const upstream = await hangingUpstream();
    const tg = await startTestGateway({
      ANVIL_BACKEND: 'upstream', ANVIL_UPSTREAM_ENDPOINT: upstream.endpoint, ANVIL_UPSTREAM_ACCESS_KEY: 'up', ANVIL_UPSTREAM_SECRET_KEY: 'upstream-secret', ANVIL_UPSTREAM_TIMEOUT_MS: '500',
    });
    try {
      await tg.s3.send(new CreateBucketCommand({ Bucket: 'hung' }));
      upstream.hang();
      const client = new S3Client({ endpoint: tg.gw.url, region: 'us-east-1', forcePathStyle: true, credentials: ROOT, maxAttempts: 1 });
      const err = (await t.throwsAsync(call(client))) as S3ServiceException;
      t.is(err.$metadata.httpStatusCode, 503, `${what}: ${err.message}`);
      t.is(upstream.swallowed(), 1, `${what} reached the hung upstream once`);
      client.destroy();
    } finally {
      await tg.close();
      await upstream.close();
    }
  }
});

test('an upstream that answers 507 and resets the connection under the body: the client gets the 507, not a retried reset', async (t) => {
  const upstream = await resettingUpstream();
  const tg = await startTestGateway({ ANVIL_BACKEND: 'upstream', ANVIL_UPSTREAM_ENDPOINT: upstream.endpoint, ANVIL_UPSTREAM_ACCESS_KEY: 'up', ANVIL_UPSTREAM_SECRET_KEY: 'upstream-secret' });
  try {
    await tg.s3.send(new CreateBucketCommand({ Bucket: 'brim' }));
    for (let i = 0; i < 5; i++) {
      const err = (await t.throwsAsync(tg.s3.send(new PutObjectCommand({ Bucket: 'brim', Key: `big-${i}`, Body: pattern(4 * MiB) })))) as S3ServiceException;
      t.is(err.$metadata.httpStatusCode, 507, err.message);
      t.is(err.name, 'XMinioStorageFull');
      t.is(err.$metadata.attempts, 1, `refusal ${i} was not retried`);
    }
  } finally {
    await tg.close();
    await upstream.close();
  }
});

if (minioOrExplain(test, 'upstream-faults')) {
  test('an upstream down at start: the gateway starts, answers 503 with Retry-After, reports not ready, then recovers', async (t) => {
    const minio = await startMinio();
    const upstream = directClient(minio);
    const old = pattern(50_000);
    await upstream.send(new CreateBucketCommand({ Bucket: 'predates' }));
    await upstream.send(new PutObjectCommand({ Bucket: 'predates', Key: 'old', Body: old }));
    await minio.stop();
    const tg = await startTestGateway(upstreamEnv(minio));
    try {
      const { backend } = tg.gw;
      await eventually('the start-up probe to find the upstream down', async () => {
        if (backend.health().up) throw new Error('still up');
      });
      await t.throwsAsync(backend.ping(), { name: 'ServiceUnavailableError' });

      const began = Date.now();
      const res = await signedSend({ url: tg.gw.url, method: 'GET', path: '/' });
      t.is(res.status, 503);
      t.is(res.headers['retry-after'], '2');
      t.regex(res.body, /<Code>ServiceUnavailable<\/Code>/);
      t.true(Date.now() - began < 10_000, 'answered without waiting out an upstream timeout');
      const sdk = await t.throwsAsync(tg.s3.send(new GetObjectCommand({ Bucket: 'predates', Key: 'old' })));
      t.is((sdk as S3ServiceException).$metadata.httpStatusCode, 503);

      // What needs no storage keeps working: the admin API.
      const tenant = await admin(tg, ROOT, 'POST', '/tenants', { name: 'during-outage' });
      t.is(tenant.status, 201);

      await minio.start();
      const listed = await eventually('ListBuckets after the upstream came back', () => tg.s3.send(new ListBucketsCommand({})));
      t.deepEqual(listed.Buckets?.map((b) => b.Name), ['predates']);
      t.true(backend.health().up);
      await backend.ping();
      const read = await bodyBytes((await tg.s3.send(new GetObjectCommand({ Bucket: 'predates', Key: 'old' }))).Body);
      t.is(md5(read), md5(old));
      await tg.s3.send(new PutObjectCommand({ Bucket: 'predates', Key: 'new', Body: 'after recovery' }));
      t.is((await bodyBytes((await tg.s3.send(new GetObjectCommand({ Bucket: 'predates', Key: 'new' }))).Body)).toString(), 'after recovery');
    } finally {
      upstream.destroy();
      await tg.close();
      await minio.close();
    }
  });

  const volume = mountSmallVolume(256);
  const mounted = 'dir' in volume ? (volume as SmallVolume) : undefined;
  if (!mounted) console.log(`upstream storage-full test skipped: ${(volume as { unavailable: string }).unavailable}`);
  test.after.always(() => mounted?.unmount());

  function assertFull(t: ExecutionContext, err: unknown, what: string): void {
    const e = err as S3ServiceException;
    t.is(e?.$metadata?.httpStatusCode, 507, `${what}: ${e?.name} ${e?.message}`);
    t.is(e?.name, 'XMinioStorageFull', what);
    t.is(e?.$metadata?.attempts, 1, `${what} was not retried`);
  }

  (mounted ? test : test.skip)('the upstream\'s own full volume (507 XMinioStorageFull) reaches the client as the same 507', async (t) => {
    const minio = await startMinio({ under: mounted!.dir });
    const tg = await startTestGateway(upstreamEnv(minio));
    try {
      await tg.s3.send(new CreateBucketCommand({ Bucket: 'brim' }));
      const kept = pattern(MiB);
      await tg.s3.send(new PutObjectCommand({ Bucket: 'brim', Key: 'kept', Body: kept }));
      const earlier = await tg.s3.send(new CreateMultipartUploadCommand({ Bucket: 'brim', Key: 'mpu-full' }));
      const first = await tg.s3.send(new UploadPartCommand({ Bucket: 'brim', Key: 'mpu-full', UploadId: earlier.UploadId, PartNumber: 1, Body: pattern(MiB) }));
      // Everything but about a megabyte goes to a file beside MinIO's data: MinIO keeps 1% free, so 4 MiB cannot fit.
      writeFileSync(join(mounted!.dir, 'filler'), Buffer.alloc(mounted!.free() - MiB));
      const refusal = await eventually('MinIO to see its volume full', async () => {
        try {
          await tg.s3.send(new PutObjectCommand({ Bucket: 'brim', Key: `big-${Date.now()}`, Body: pattern(4 * MiB) }));
        } catch (err) {
          if ((err as S3ServiceException).$metadata?.httpStatusCode === 507) return err as S3ServiceException;
          throw err;
        }
        throw new Error('the PUT was accepted');
      });
      t.is(refusal.name, 'XMinioStorageFull');
      t.is(refusal.$metadata.attempts, 1, 'the SDK did not retry');
      // MinIO answers 507 after its 100 Continue and resets the connection under the rest of the body: each refusal
      // must still reach the client as the upstream's 507, never as a retryable reset (a race, hence several tries).
      for (let i = 0; i < 5; i++) {
        const again = await t.throwsAsync(tg.s3.send(new PutObjectCommand({ Bucket: 'brim', Key: `again-${i}`, Body: pattern(4 * MiB) })));
        t.is((again as S3ServiceException).$metadata.httpStatusCode, 507);
        t.is((again as S3ServiceException).$metadata.attempts, 1, `refusal ${i} was not retried`);
      }
      // Multipart too: an upload begun before the volume filled, and the multipart calls made after.
      // A new upload needs only a few KiB of metadata, which MinIO may still find room for: refused as full, or made.
      const fresh = await tg.s3.send(new CreateMultipartUploadCommand({ Bucket: 'brim', Key: 'mpu-new' })).then(
        (made) => tg.s3.send(new AbortMultipartUploadCommand({ Bucket: 'brim', Key: 'mpu-new', UploadId: made.UploadId })).then(() => undefined),
        (err: unknown) => err,
      );
      if (fresh !== undefined) assertFull(t, fresh, 'CreateMultipartUpload');
      const part = await t.throwsAsync(tg.s3.send(new UploadPartCommand({ Bucket: 'brim', Key: 'mpu-full', UploadId: earlier.UploadId, PartNumber: 2, Body: pattern(4 * MiB) })));
      assertFull(t, part, 'UploadPart');
      // Completing needs room for the upload's record and the object's metadata: done whole, or 507 with nothing made.
      const parts = [{ PartNumber: 1, ETag: first.ETag }];
      const completed = await tg.s3
        .send(new CompleteMultipartUploadCommand({ Bucket: 'brim', Key: 'mpu-full', UploadId: earlier.UploadId, MultipartUpload: { Parts: parts } }))
        .then(() => undefined, (err: unknown) => err);
      if (completed !== undefined) {
        assertFull(t, completed, 'CompleteMultipartUpload');
        await t.throwsAsync(tg.s3.send(new GetObjectCommand({ Bucket: 'brim', Key: 'mpu-full' })), { name: 'NoSuchKey' });
      } else {
        t.is((await bodyBytes((await tg.s3.send(new GetObjectCommand({ Bucket: 'brim', Key: 'mpu-full' }))).Body)).length, MiB);
      }
      await tg.s3.send(new DeleteObjectCommand({ Bucket: 'brim', Key: 'nothing-here' }));
      t.is(md5(await bodyBytes((await tg.s3.send(new GetObjectCommand({ Bucket: 'brim', Key: 'kept' }))).Body)), md5(kept));
      t.true(tg.gw.backend.health().up, 'a full upstream is still reachable');
    } finally {
      await tg.close();
      await minio.close();
    }
  });
}

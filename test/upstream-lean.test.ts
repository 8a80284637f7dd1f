/**
 * The upstream backend's lean client (storage/upstream/lean.ts: GetObject, HeadObject, PutObject, UploadPart signed
 * and sent without the SDK), through the gateway over HTTP with real clients against a real MinIO, in both mappings:
 * keys that stress SigV4's canonical path, ranges and conditional answers, checksums sent as the upstream request's
 * own trailer, encoded-word metadata; then against small hand-written upstreams: error documents, retries of bodiless
 * requests only, and a body that does not match the checksum the upstream gave for it.
 */
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type S3ServiceException,
} from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32 } from 'node:zlib';
import { bodyBytes, pattern, ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { directClient, minioOrExplain, startMinio, type MinioServer } from './helpers/minio.ts';

interface Ctx {
  minio: MinioServer;
  /** Straight to MinIO, bypassing the gateway. */
  upstream: S3Client;
  byBucket: TestGateway;
  byPrefix: TestGateway;
}
const test = anyTest as TestFn<Ctx>;
const SHARED = 'lean-shared';
const crc32Of = (b: Buffer): string => {
  const v = Buffer.alloc(4);
  v.writeUInt32BE(crc32(b));
  return v.toString('base64');
};
const sha256Of = (b: Buffer): string => createHash('sha256').update(b).digest('base64');

function upstreamEnv(endpoint: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ANVIL_BACKEND: 'upstream',
    ANVIL_UPSTREAM_ENDPOINT: endpoint,
    ANVIL_UPSTREAM_ACCESS_KEY: 'minioadmin',
    ANVIL_UPSTREAM_SECRET_KEY: 'minioadmin',
    ANVIL_UPSTREAM_TIMEOUT_MS: '5000',
    ...extra,
  };
}

/** Keys whose canonical path, query-free wire path and stored name must all agree. */
const ODD_KEYS = [
  'with space.txt',
  'plus+sign',
  'percent%20literal',
  '100%',
  'unicode/é-ü-漢字-😀',
  'folder/',
  'sub-delims!$&\'()*,;=:@',
  'tilde~and~dots.v1..2',
  'question?hash#',
  'brackets[]{}<>|^`"',
  'back\\slash',
  'a/b/c/d/e/f/g/h/deep.bin',
  `long/${'k'.repeat(200)}/${'l'.repeat(200)}/${'m'.repeat(200)}/${'n'.repeat(200)}`,
];

if (minioOrExplain(test, 'upstream-lean')) {
  test.before(async (t) => {
    const minio = await startMinio();
    const upstream = directClient(minio);
    await upstream.send(new CreateBucketCommand({ Bucket: SHARED }));
    const creds = { ANVIL_UPSTREAM_ACCESS_KEY: minio.accessKey, ANVIL_UPSTREAM_SECRET_KEY: minio.secretKey };
    const byBucket = await startTestGateway(upstreamEnv(minio.endpoint, creds));
    const byPrefix = await startTestGateway(upstreamEnv(minio.endpoint, { ...creds, ANVIL_UPSTREAM_MAPPING: 'prefix', ANVIL_UPSTREAM_BUCKET: SHARED }));
    await byBucket.s3.send(new CreateBucketCommand({ Bucket: 'lean' }));
    await byPrefix.s3.send(new CreateBucketCommand({ Bucket: 'lean' }));
    t.context = { minio, upstream, byBucket, byPrefix };
  });
  test.after.always(async (t) => {
    t.context.upstream?.destroy();
    await t.context.byBucket?.close();
    await t.context.byPrefix?.close();
    await t.context.minio?.close();
  });

  for (const mapping of ['bucket', 'prefix'] as const) {
    const gwOf = (t: { context: Ctx }) => (mapping === 'bucket' ? t.context.byBucket : t.context.byPrefix);
    const upstreamKey = (key: string) => (mapping === 'bucket' ? { Bucket: 'lean', Key: key } : { Bucket: SHARED, Key: `lean/${key}` });

    test(`${mapping} mapping: odd keys are signed, stored and read back under exactly their names`, async (t) => {
      const gw = gwOf(t);
      for (const [i, key] of ODD_KEYS.entries()) {
        const body = pattern(1000 + i);
        await gw.s3.send(new PutObjectCommand({ Bucket: 'lean', Key: key, Body: body }));
        const got = await gw.s3.send(new GetObjectCommand({ Bucket: 'lean', Key: key }));
        t.true((await bodyBytes(got.Body)).equals(body), key);
        t.is((await gw.s3.send(new HeadObjectCommand({ Bucket: 'lean', Key: key }))).ContentLength, body.length, key);
        // Stored upstream under the same name: MinIO, asked directly, has it.
        const direct = await t.context.upstream.send(new HeadObjectCommand(upstreamKey(key)));
        t.is(direct.ContentLength, body.length, `upstream ${key}`);
        // And the presigned (query-signed) path of the minio client reads the same bytes.
        const viaMinio = await gw.minio.getObject('lean', key);
        t.true((await bodyBytes(viaMinio)).equals(body), `minio client ${key}`);
      }
      const listed = await gw.s3.send(new ListObjectsV2Command({ Bucket: 'lean' }));
      for (const key of ODD_KEYS) t.true(listed.Contents?.some((o) => o.Key === key), `listed ${key}`);
    });

    test(`${mapping} mapping: ranges, and conditional answers (304, 412) with the object's validators`, async (t) => {
      const gw = gwOf(t);
      const body = pattern(10_000);
      const put = await gw.s3.send(new PutObjectCommand({ Bucket: 'lean', Key: 'cond', Body: body }));
      const read = async (extra: Record<string, unknown>) => gw.s3.send(new GetObjectCommand({ Bucket: 'lean', Key: 'cond', ...extra }));
      for (const [range, from, to] of [['bytes=0-0', 0, 0], ['bytes=9990-', 9990, 9999], ['bytes=-10', 9990, 9999], ['bytes=5000-99999', 5000, 9999]] as const) {
        const r = await read({ Range: range });
        t.is(r.ContentRange, `bytes ${from}-${to}/10000`, range);
        t.true((await bodyBytes(r.Body)).equals(body.subarray(from, to + 1)), range);
      }
      const beyond = (await t.throwsAsync(read({ Range: 'bytes=20000-' }))) as S3ServiceException;
      t.is(beyond.$metadata.httpStatusCode, 416);
      t.is(beyond.name, 'InvalidRange');

      const notModified = (await t.throwsAsync(read({ IfNoneMatch: put.ETag }))) as S3ServiceException;
      t.is(notModified.$metadata.httpStatusCode, 304);
      const since = (await t.throwsAsync(read({ IfModifiedSince: new Date(Date.now() + 60_000) }))) as S3ServiceException;
      t.is(since.$metadata.httpStatusCode, 304);
      const failed = (await t.throwsAsync(read({ IfMatch: '"0123456789abcdef0123456789abcdef"' }))) as S3ServiceException;
      t.is(failed.$metadata.httpStatusCode, 412);
      t.is(failed.name, 'PreconditionFailed');
      const unmodified = (await t.throwsAsync(read({ IfUnmodifiedSince: new Date(Date.now() - 86_400_000) }))) as S3ServiceException;
      t.is(unmodified.$metadata.httpStatusCode, 412);
      // If-Match wins over a failing If-Unmodified-Since (RFC 7232 precedence, as S3 answers).
      const both = await read({ IfMatch: put.ETag, IfUnmodifiedSince: new Date(Date.now() - 86_400_000) });
      t.is((await bodyBytes(both.Body)).length, body.length);
      const head = (await t.throwsAsync(gw.s3.send(new HeadObjectCommand({ Bucket: 'lean', Key: 'cond', IfNoneMatch: put.ETag })))) as S3ServiceException;
      t.is(head.$metadata.httpStatusCode, 304);

      const missing = (await t.throwsAsync(gw.s3.send(new GetObjectCommand({ Bucket: 'lean', Key: 'no-such' })))) as S3ServiceException;
      t.is(missing.name, 'NoSuchKey');
      const headMissing = (await t.throwsAsync(gw.s3.send(new HeadObjectCommand({ Bucket: 'lean', Key: 'no-such' })))) as S3ServiceException;
      t.is(headMissing.$metadata.httpStatusCode, 404);
      const noBucket = (await t.throwsAsync(gw.s3.send(new GetObjectCommand({ Bucket: 'no-such-bucket-x', Key: 'k' })))) as S3ServiceException;
      t.is(noBucket.name, 'NoSuchBucket');
    });

    test(`${mapping} mapping: trailing checksums go up as the upstream request's trailer, metadata as encoded words`, async (t) => {
      const gw = gwOf(t);
      const body = pattern(300_000);
      // The SDK's default: CRC32 in an aws-chunked trailer; and SHA256 asked for explicitly.
      // Non-ASCII metadata travels as RFC 2047 encoded words (header values are ASCII), both ways.
      const note = `=?UTF-8?B?${Buffer.from('grüße, 東京').toString('base64')}?=`;
      await gw.s3.send(new PutObjectCommand({ Bucket: 'lean', Key: 'sum-crc', Body: body, Metadata: { note } }));
      await gw.s3.send(new PutObjectCommand({ Bucket: 'lean', Key: 'sum-sha', Body: body, ChecksumAlgorithm: 'SHA256' }));
      const crc = await gw.s3.send(new GetObjectCommand({ Bucket: 'lean', Key: 'sum-crc', ChecksumMode: 'ENABLED' }));
      t.is(crc.ChecksumCRC32, crc32Of(body));
      t.is(crc.Metadata?.note, note);
      t.true((await bodyBytes(crc.Body)).equals(body));
      const stored = await t.context.upstream.send(new HeadObjectCommand({ ...upstreamKey('sum-crc'), ChecksumMode: 'ENABLED' }));
      t.is(stored.ChecksumCRC32, crc32Of(body), 'MinIO stored the verified CRC32');
      const sha = await gw.s3.send(new HeadObjectCommand({ Bucket: 'lean', Key: 'sum-sha', ChecksumMode: 'ENABLED' }));
      t.is(sha.ChecksumSHA256, sha256Of(body));
      const shaStored = await t.context.upstream.send(new HeadObjectCommand({ ...upstreamKey('sum-sha'), ChecksumMode: 'ENABLED' }));
      t.is(shaStored.ChecksumSHA256, sha256Of(body));
      // A checksum sent up front as a header, and a wrong one: refused, nothing stored.
      await gw.s3.send(new PutObjectCommand({ Bucket: 'lean', Key: 'sum-header', Body: body, ChecksumCRC32: crc32Of(body) }));
      t.is((await gw.s3.send(new HeadObjectCommand({ Bucket: 'lean', Key: 'sum-header', ChecksumMode: 'ENABLED' }))).ChecksumCRC32, crc32Of(body));
      const bad = (await t.throwsAsync(gw.s3.send(new PutObjectCommand({ Bucket: 'lean', Key: 'sum-bad', Body: body, ChecksumCRC32: 'AAAAAA==' })))) as S3ServiceException;
      t.is(bad.$metadata.httpStatusCode, 400);
      await t.throwsAsync(t.context.upstream.send(new HeadObjectCommand(upstreamKey('sum-bad'))));

      // Parts: the part's trailing checksum reaches MinIO too, and the completed object reports it.
      const up = await gw.s3.send(new CreateMultipartUploadCommand({ Bucket: 'lean', Key: 'mpu-sum', ChecksumAlgorithm: 'CRC32' }));
      const part1 = pattern(5 * 1024 * 1024);
      const part2 = body;
      const p1 = await gw.s3.send(new UploadPartCommand({ Bucket: 'lean', Key: 'mpu-sum', UploadId: up.UploadId, PartNumber: 1, Body: part1, ChecksumAlgorithm: 'CRC32' }));
      const p2 = await gw.s3.send(new UploadPartCommand({ Bucket: 'lean', Key: 'mpu-sum', UploadId: up.UploadId, PartNumber: 2, Body: part2, ChecksumAlgorithm: 'CRC32' }));
      t.is(p1.ChecksumCRC32, crc32Of(part1));
      t.is(p2.ChecksumCRC32, crc32Of(part2));
      await gw.s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: 'lean',
          Key: 'mpu-sum',
          UploadId: up.UploadId,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag, ChecksumCRC32: p1.ChecksumCRC32 }, { PartNumber: 2, ETag: p2.ETag, ChecksumCRC32: p2.ChecksumCRC32 }] },
        }),
      );
      const whole = await gw.s3.send(new GetObjectCommand({ Bucket: 'lean', Key: 'mpu-sum' }));
      t.true((await bodyBytes(whole.Body)).equals(Buffer.concat([part1, part2])));
      const second = await gw.s3.send(new GetObjectCommand({ Bucket: 'lean', Key: 'mpu-sum', PartNumber: 2, ChecksumMode: 'ENABLED' }));
      t.true((await bodyBytes(second.Body)).equals(part2));
      t.is(second.ChecksumCRC32, crc32Of(part2));
    });
  }

  test('a 64 MiB GET streams the very bytes stored, with and without a full-object checksum to check', async (t) => {
    const gw = t.context.byBucket;
    const body = pattern(64 * 1024 * 1024);
    const digest = createHash('sha256').update(body).digest('hex');
    await gw.s3.send(new PutObjectCommand({ Bucket: 'lean', Key: 'big-summed', Body: body, ChecksumAlgorithm: 'CRC32' }));
    // Put straight into MinIO without a checksum: its GET answers with none, so the body streams unverified.
    await t.context.upstream.send(new PutObjectCommand({ Bucket: 'lean', Key: 'big-plain', Body: body }));
    for (const key of ['big-summed', 'big-plain']) {
      const got = await gw.s3.send(new GetObjectCommand({ Bucket: 'lean', Key: key }));
      t.is(got.ContentLength, body.length, key);
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of got.Body as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        size += chunk.length;
      }
      t.is(size, body.length, key);
      t.is(hash.digest('hex'), digest, key);
    }
  });
}

/** A hand-written upstream: `answer` serves each request and returns nothing; the requests it saw are kept. */
async function fakeUpstream(answer: (req: IncomingMessage, res: ServerResponse) => void) {
  const seen: Array<{ method: string; url: string }> = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '' });
    // The start-up probe (ListBuckets) always succeeds, and bucket fake exists.
    if (req.method === 'HEAD' && (req.url === '/fake' || req.url === '/fake/')) return void req.resume().on('end', () => res.writeHead(200).end());
    if (req.method === 'GET' && (req.url === '/' || req.url?.startsWith('/?'))) {
      req.resume();
      const doc = '<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult><Buckets></Buckets></ListAllMyBucketsResult>';
      res.writeHead(200, { 'content-type': 'application/xml' }).end(doc);
      return;
    }
    answer(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** The headers a fake upstream answers a GetObject of `body` with, and its full-object CRC32 when given. */
const objectHeaders = (body: Buffer, crc32?: string): Record<string, string> => ({
  'content-type': 'application/octet-stream',
  'content-length': String(body.length),
  etag: '"0123456789abcdef0123456789abcdef"',
  'last-modified': new Date().toUTCString(),
  ...(crc32 !== undefined ? { 'x-amz-checksum-crc32': crc32, 'x-amz-checksum-type': 'FULL_OBJECT' } : {}),
});

const errorDoc = (code: string, message: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message><Resource>/fake/k</Resource><RequestId>1</RequestId></Error>`;

test('upstream error documents: a full volume is 507 (its 507 or its 500 "no space left"), a failing PUT is sent once, a GET twice', async (t) => {
  let flakyCalls = 0;
  const upstream = await fakeUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url?.includes('/full507')) return res.writeHead(507, { 'content-type': 'application/xml' }).end(errorDoc('XMinioStorageFull', 'Storage backend has reached its minimum free drive threshold.'));
      if (req.url?.includes('/full500')) return res.writeHead(500, { 'content-type': 'application/xml' }).end(errorDoc('InternalError', 'We encountered an internal error, please try again.: cause(no space left on device)'));
      if (req.url?.includes('/flaky') && ++flakyCalls % 2 === 1) return res.writeHead(500, { 'content-type': 'application/xml' }).end(errorDoc('InternalError', 'try again'));
      if (req.url?.includes('/flaky')) return res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5', etag: '"0123456789abcdef0123456789abcdef"', 'last-modified': new Date().toUTCString() }).end('hello');
      if (req.url?.includes('/slow')) return res.writeHead(503, { 'content-type': 'application/xml' }).end(errorDoc('SlowDown', 'Please reduce your request rate.'));
      res.writeHead(404, { 'content-type': 'application/xml' }).end(errorDoc('NoSuchKey', 'The specified key does not exist.'));
    });
  });
  const tg = await startTestGateway(upstreamEnv(upstream.endpoint, { ANVIL_UPSTREAM_ACCESS_KEY: 'up', ANVIL_UPSTREAM_SECRET_KEY: 'upstream-secret' }));
  try {
    const noRetry = new S3Client({ endpoint: tg.gw.url, region: 'us-east-1', forcePathStyle: true, credentials: ROOT, maxAttempts: 1 });
    for (const key of ['full507', 'full500']) {
      const before = upstream.seen.length;
      const err = (await t.throwsAsync(noRetry.send(new PutObjectCommand({ Bucket: 'fake', Key: key, Body: pattern(4096) })))) as S3ServiceException;
      t.is(err.$metadata.httpStatusCode, 507, key);
      t.is(err.name, 'XMinioStorageFull', key);
      t.is(upstream.seen.slice(before).filter((s) => s.method === 'PUT').length, 1, `${key}: a streamed body is never replayed`);
    }
    const before = upstream.seen.length;
    const flaky = await noRetry.send(new GetObjectCommand({ Bucket: 'fake', Key: 'flaky' }));
    t.is(await flaky.Body?.transformToString(), 'hello');
    t.is(upstream.seen.slice(before).filter((s) => s.method === 'GET').length, 2, 'a bodiless request is sent once more after a 500');
    const slow = (await t.throwsAsync(noRetry.send(new GetObjectCommand({ Bucket: 'fake', Key: 'slow' })))) as S3ServiceException;
    t.is(slow.$metadata.httpStatusCode, 503);
    t.is(slow.name, 'SlowDown');
    const missing = (await t.throwsAsync(noRetry.send(new GetObjectCommand({ Bucket: 'fake', Key: 'gone' })))) as S3ServiceException;
    t.is(missing.name, 'NoSuchKey', JSON.stringify(upstream.seen.slice(-4)));
    noRetry.destroy();
  } finally {
    await tg.close();
    await upstream.close();
  }
});

test('a body that does not match the checksum its upstream gave is cut off, never delivered whole', async (t) => {
  const body = pattern(100_000);
  const upstream = await fakeUpstream((req, res) => {
    req.resume();
    const headers = objectHeaders(body, req.url?.includes('/good') ? crc32Of(body) : 'AAAAAA==');
    res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : body);
  });
  const tg = await startTestGateway(upstreamEnv(upstream.endpoint, { ANVIL_UPSTREAM_ACCESS_KEY: 'up', ANVIL_UPSTREAM_SECRET_KEY: 'upstream-secret' }));
  try {
    const good = await tg.s3.send(new GetObjectCommand({ Bucket: 'fake', Key: 'good' }));
    t.true((await bodyBytes(good.Body)).equals(body));
    await t.throwsAsync(async () => bodyBytes((await tg.s3.send(new GetObjectCommand({ Bucket: 'fake', Key: 'bad' }))).Body));
  } finally {
    await tg.close();
    await upstream.close();
  }
});

test('a small body its upstream cuts short or corrupts is an error answer, never a 200 with the wrong bytes', async (t) => {
  const body = pattern(4096);
  const upstream = await fakeUpstream((req, res) => {
    req.resume();
    const headers = objectHeaders(body, req.url?.includes('/short') ? undefined : req.url?.includes('/good') ? crc32Of(body) : 'AAAAAA==');
    if (req.method === 'HEAD') return void res.writeHead(200, headers).end();
    if (!req.url?.includes('/short')) return void res.writeHead(200, headers).end(body);
    // Half the declared body, then the connection drops.
    res.writeHead(200, headers);
    res.write(body.subarray(0, 2048), () => res.socket?.destroy());
  });
  const tg = await startTestGateway(upstreamEnv(upstream.endpoint, { ANVIL_UPSTREAM_ACCESS_KEY: 'up', ANVIL_UPSTREAM_SECRET_KEY: 'upstream-secret' }));
  const noRetry = new S3Client({ endpoint: tg.gw.url, region: 'us-east-1', forcePathStyle: true, credentials: ROOT, maxAttempts: 1 });
  try {
    const good = await noRetry.send(new GetObjectCommand({ Bucket: 'fake', Key: 'good' }));
    t.true((await bodyBytes(good.Body)).equals(body));
    const bad = (await t.throwsAsync(noRetry.send(new GetObjectCommand({ Bucket: 'fake', Key: 'bad' })))) as S3ServiceException;
    t.is(bad.$metadata.httpStatusCode, 500);
    t.is(bad.name, 'InternalError');
    const short = (await t.throwsAsync(noRetry.send(new GetObjectCommand({ Bucket: 'fake', Key: 'short' })))) as S3ServiceException;
    t.is(short.$metadata.httpStatusCode, 503);
    t.is(short.name, 'ServiceUnavailable');
  } finally {
    noRetry.destroy();
    await tg.close();
    await upstream.close();
  }
});

test('a client that goes away in the middle of a large GET aborts the upstream request', async (t) => {
  const size = 256 * 1024 * 1024;
  let sent = 0;
  let upstreamClosed!: () => void;
  const closed = new Promise<void>((r) => (upstreamClosed = r));
  const upstream = await fakeUpstream((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size), etag: '"0123456789abcdef0123456789abcdef"', 'last-modified': new Date().toUTCString() });
    if (req.method === 'HEAD') return void res.end();
    const chunk = Buffer.alloc(64 * 1024, 7);
    // Writes as fast as the gateway reads; a response closed before its last byte is an aborted request.
    const pump = () => {
      while (sent < size && !res.destroyed) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      if (sent >= size) res.end();
    };
    res.on('close', () => {
      if (!res.writableFinished) upstreamClosed();
    });
    pump();
  });
  const tg = await startTestGateway(upstreamEnv(upstream.endpoint, { ANVIL_UPSTREAM_ACCESS_KEY: 'up', ANVIL_UPSTREAM_SECRET_KEY: 'upstream-secret' }));
  try {
    const got = await tg.s3.send(new GetObjectCommand({ Bucket: 'fake', Key: 'huge' }));
    t.is(got.ContentLength, size);
    let read = 0;
    for await (const c of got.Body as AsyncIterable<Uint8Array>) {
      read += c.length;
      if (read >= 4 * 1024 * 1024) break; // leaving the loop destroys the body: the client goes away
    }
    await closed;
    t.true(sent < size, `the upstream stopped sending after ${sent} of ${size} bytes`);
  } finally {
    await tg.close();
    await upstream.close();
  }
});

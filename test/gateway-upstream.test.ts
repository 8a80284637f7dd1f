/**
 * The gateway over a real MinIO (ANVIL_BACKEND=upstream), driven by the AWS SDK and the MinIO client: objects,
 * ranges, copies, multipart, compose, presigned URLs, listings, batch deletes, the reserved `_anvil/` namespace while
 * the upstream holds gateway state there, and 503 with Retry-After while the upstream is down.
 */
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import anyTest, { type TestFn } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import * as Minio from 'minio';
import { bodyBytes, pattern, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { directClient, minioOrExplain, startMinio, upstreamEnv, type MinioServer } from './helpers/minio.ts';

interface Ctx {
  minio: MinioServer;
  gw: TestGateway;
  /** Straight to MinIO, bypassing the gateway. */
  upstream: S3Client;
}
const test = anyTest as TestFn<Ctx>;
const MiB = 1024 * 1024;
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

async function readStream(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

if (minioOrExplain(test, 'gateway-upstream')) {
  test.before(async (t) => {
    const minio = await startMinio();
    const gw = await startTestGateway(upstreamEnv(minio));
    await gw.s3.send(new CreateBucketCommand({ Bucket: 'gwup' }));
    t.context = { minio, gw, upstream: directClient(minio) };
  });
  test.after.always(async (t) => {
    t.context.upstream?.destroy();
    await t.context.gw?.close();
    await t.context.minio?.close();
  });

  test('put, get, range, head, copy through the SDK land in MinIO', async (t) => {
    const { gw, upstream } = t.context;
    const body = pattern(300_000);
    const put = await gw.s3.send(new PutObjectCommand({ Bucket: 'gwup', Key: 'dir/a.bin', Body: body, ContentType: 'application/x-a', Metadata: { color: 'red' } }));
    t.is(put.ETag, `"${md5(body)}"`);
    t.true((await bodyBytes((await gw.s3.send(new GetObjectCommand({ Bucket: 'gwup', Key: 'dir/a.bin' }))).Body)).equals(body));
    const ranged = await gw.s3.send(new GetObjectCommand({ Bucket: 'gwup', Key: 'dir/a.bin', Range: 'bytes=100-199' }));
    t.is(ranged.ContentRange, `bytes 100-199/${body.length}`);
    t.true((await bodyBytes(ranged.Body)).equals(body.subarray(100, 200)));
    const head = await gw.s3.send(new HeadObjectCommand({ Bucket: 'gwup', Key: 'dir/a.bin' }));
    t.is(head.ContentLength, body.length);
    t.is(head.ContentType, 'application/x-a');
    t.deepEqual(head.Metadata, { color: 'red' });
    await gw.s3.send(new CopyObjectCommand({ Bucket: 'gwup', Key: 'dir/b.bin', CopySource: 'gwup/dir/a.bin' }));
    const behind = await upstream.send(new HeadObjectCommand({ Bucket: 'gwup', Key: 'dir/b.bin' }));
    t.is(behind.ETag, `"${md5(body)}"`, 'the copy exists upstream, made there');
    await t.throwsAsync(gw.s3.send(new GetObjectCommand({ Bucket: 'gwup', Key: 'dir/a.bin', Range: `bytes=${body.length}-` })), { name: 'InvalidRange' });
  });

  test('multipart: lib-storage Upload of 12 MiB, then UploadPartCopy', async (t) => {
    const { gw } = t.context;
    const body = pattern(12 * MiB);
    await new Upload({ client: gw.s3, params: { Bucket: 'gwup', Key: 'big', Body: body }, partSize: 5 * MiB }).done();
    const head = await gw.s3.send(new HeadObjectCommand({ Bucket: 'gwup', Key: 'big', PartNumber: 3 }));
    t.is(head.PartsCount, 3);
    t.is(head.ContentLength, 2 * MiB);
    t.true((await bodyBytes((await gw.s3.send(new GetObjectCommand({ Bucket: 'gwup', Key: 'big' }))).Body)).equals(body));

    const { UploadId } = await gw.s3.send(new CreateMultipartUploadCommand({ Bucket: 'gwup', Key: 'pc' }));
    const p1 = await gw.s3.send(new UploadPartCopyCommand({ Bucket: 'gwup', Key: 'pc', UploadId, PartNumber: 1, CopySource: 'gwup/big', CopySourceRange: `bytes=0-${5 * MiB - 1}` }));
    const p2 = await gw.s3.send(new UploadPartCopyCommand({ Bucket: 'gwup', Key: 'pc', UploadId, PartNumber: 2, CopySource: 'gwup/big', CopySourceRange: `bytes=${10 * MiB}-${10 * MiB + 9}` }));
    await gw.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'gwup',
        Key: 'pc',
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.CopyPartResult!.ETag }, { PartNumber: 2, ETag: p2.CopyPartResult!.ETag }] },
      }),
    );
    const got = await bodyBytes((await gw.s3.send(new GetObjectCommand({ Bucket: 'gwup', Key: 'pc' }))).Body);
    t.true(got.equals(Buffer.concat([body.subarray(0, 5 * MiB), body.subarray(10 * MiB, 10 * MiB + 10)])));
  });

  test('MinIO client: put, partial get, composeObject, presigned GET, removeObjects', async (t) => {
    const { minio } = t.context.gw;
    const a = pattern(5 * MiB);
    const b = pattern(1000);
    await minio.putObject('gwup', 'mc/a', a);
    await minio.putObject('gwup', 'mc/b', b);
    t.true((await readStream(await minio.getPartialObject('gwup', 'mc/a', 10, 20))).equals(a.subarray(10, 30)));
    await minio.composeObject(new Minio.CopyDestinationOptions({ Bucket: 'gwup', Object: 'mc/ab' }), [
      new Minio.CopySourceOptions({ Bucket: 'gwup', Object: 'mc/a' }),
      new Minio.CopySourceOptions({ Bucket: 'gwup', Object: 'mc/b' }),
    ]);
    // Buffer.equals: ava's deepEqual formats megabytes synchronously and stalls every test in the file.
    t.true((await readStream(await minio.getObject('gwup', 'mc/ab'))).equals(Buffer.concat([a, b])));
    const url = await minio.presignedGetObject('gwup', 'mc/b', 60);
    const res = await fetch(url);
    t.is(res.status, 200);
    t.true(Buffer.from(await res.arrayBuffer()).equals(b));
    await minio.removeObjects('gwup', ['mc/a', 'mc/b']);
    await t.throwsAsync(minio.statObject('gwup', 'mc/a'));
    t.is((await minio.statObject('gwup', 'mc/ab')).size, a.length + b.length);
  });

  test('listings with delimiter and pagination; DeleteObjects', async (t) => {
    const { gw } = t.context;
    await gw.s3.send(new CreateBucketCommand({ Bucket: 'gwlist' }));
    const keys = ['a', 'b/1', 'b/2', 'c', 'd/x', 'e'];
    for (const k of keys) await gw.s3.send(new PutObjectCommand({ Bucket: 'gwlist', Key: k, Body: k }));
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await gw.s3.send(new ListObjectsV2Command({ Bucket: 'gwlist', Delimiter: '/', MaxKeys: 2, ContinuationToken: token }));
      seen.push(...(page.Contents ?? []).map((o) => o.Key!), ...(page.CommonPrefixes ?? []).map((p) => `P:${p.Prefix}`));
      token = page.NextContinuationToken;
    } while (token);
    t.deepEqual(seen.sort(), ['P:b/', 'P:d/', 'a', 'c', 'e']);
    const after = await gw.s3.send(new ListObjectsV2Command({ Bucket: 'gwlist', Delimiter: '/', StartAfter: 'b/1' }));
    t.deepEqual([...(after.Contents ?? []).map((o) => o.Key), ...(after.CommonPrefixes ?? []).map((p) => `P:${p.Prefix}`)], ['c', 'e', 'P:d/']);
    const del = await gw.s3.send(new DeleteObjectsCommand({ Bucket: 'gwlist', Delete: { Objects: keys.map((Key) => ({ Key })) } }));
    t.is(del.Deleted?.length, keys.length);
    t.is((await gw.s3.send(new ListObjectsV2Command({ Bucket: 'gwlist' }))).KeyCount, 0);
  });

  test('_anvil/ holds upload records upstream, and the gateway never serves or lists them', async (t) => {
    const { gw, upstream } = t.context;
    const { UploadId } = await gw.s3.send(new CreateMultipartUploadCommand({ Bucket: 'gwup', Key: 'pending' }));
    const records = await upstream.send(new ListObjectsV2Command({ Bucket: 'gwup', Prefix: '_anvil/' }));
    const recordKey = records.Contents?.find((o) => o.Key!.endsWith(`!${UploadId}`))?.Key;
    t.truthy(recordKey, 'the upstream holds the upload record');
    await t.throwsAsync(gw.s3.send(new GetObjectCommand({ Bucket: 'gwup', Key: recordKey! })), { name: 'AccessDenied' });
    await t.throwsAsync(gw.s3.send(new HeadObjectCommand({ Bucket: 'gwup', Key: recordKey! })));
    const listed = await gw.s3.send(new ListObjectsV2Command({ Bucket: 'gwup', Delimiter: '/' }));
    t.false((listed.CommonPrefixes ?? []).some((p) => p.Prefix === '_anvil/'));
    t.false((listed.Contents ?? []).some((o) => o.Key!.startsWith('_anvil/')));
  });

  test('prefix mapping: buckets are prefixes of one upstream bucket', async (t) => {
    const { minio, upstream } = t.context;
    const shared = `shared-${randomBytes(4).toString('hex')}`;
    await upstream.send(new CreateBucketCommand({ Bucket: shared }));
    const gw = await startTestGateway(upstreamEnv(minio, { ANVIL_UPSTREAM_MAPPING: 'prefix', ANVIL_UPSTREAM_BUCKET: shared }));
    try {
      await gw.s3.send(new CreateBucketCommand({ Bucket: 'inner' }));
      await gw.s3.send(new PutObjectCommand({ Bucket: 'inner', Key: 'k', Body: 'in a prefix' }));
      t.is((await bodyBytes((await gw.s3.send(new GetObjectCommand({ Bucket: 'inner', Key: 'k' }))).Body)).toString(), 'in a prefix');
      const behind = await upstream.send(new ListObjectsV2Command({ Bucket: shared }));
      t.deepEqual((behind.Contents ?? []).map((o) => o.Key).sort(), ['_anvil/buckets/inner', 'inner/k']);
      await t.throwsAsync(gw.s3.send(new GetObjectCommand({ Bucket: 'nope', Key: 'k' })));
    } finally {
      await gw.close();
    }
  });

  test('upstream down: 503 ServiceUnavailable with Retry-After, other requests still answered, then recovery', async (t) => {
    const own = await startMinio();
    const gw = await startTestGateway(upstreamEnv(own));
    try {
      await gw.s3.send(new CreateBucketCommand({ Bucket: 'fragile' }));
      await gw.s3.send(new PutObjectCommand({ Bucket: 'fragile', Key: 'k', Body: 'before' }));
      await own.stop();
      const res = await fetch(`${gw.gw.url}/fragile/k`);
      t.is(res.status, 403, 'requests that never reach the upstream are answered as usual');
      const url = await gw.minio.presignedGetObject('fragile', 'k', 60);
      const began = Date.now();
      const answers = await Promise.all(Array.from({ length: 5 }, () => fetch(url)));
      t.true(Date.now() - began < 3_000, `5 requests took ${Date.now() - began} ms, more than the upstream timeout`);
      for (const raw of answers) {
        t.is(raw.status, 503);
        t.is(raw.headers.get('retry-after'), '2');
        t.regex(await raw.text(), /<Code>ServiceUnavailable<\/Code>/);
      }
      const err = await t.throwsAsync(gw.s3.send(new GetObjectCommand({ Bucket: 'fragile', Key: 'k' })));
      t.is((err as Error).name, 'ServiceUnavailable');
      t.is((err as unknown as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode, 503);
      await own.start();
      t.is((await bodyBytes((await gw.s3.send(new GetObjectCommand({ Bucket: 'fragile', Key: 'k' }))).Body)).toString(), 'before');
    } finally {
      await gw.close();
      await own.close();
    }
  });
}

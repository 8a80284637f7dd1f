/**
 * The upstream backend's short-lived cache of buckets that exist (storage/upstream/buckets.ts) never lets a write
 * land in a bucket deleted elsewhere: deleted through another gateway node, or straight on MinIO, a moment after
 * this node saw it. Root's writes are the ones that reach the backend then (no tenant owns a deleted bucket), so the
 * backend's answer is the only guard: S3's NoSuchBucket, nothing written upstream, and the next HeadBucket agrees.
 */
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { directClient, minioOrExplain, startMinio, upstreamEnv, type MinioServer } from './helpers/minio.ts';

interface Ctx {
  minio: MinioServer;
  upstream: S3Client;
}
const test = anyTest as TestFn<Ctx>;

async function refusedNoSuchBucket(t: import('ava').ExecutionContext, what: string, call: Promise<unknown>): Promise<void> {
  const err = (await t.throwsAsync(call, undefined, what)) as S3ServiceException;
  t.is(err?.name, 'NoSuchBucket', `${what}: ${err?.name} ${err?.message}`);
  t.is(err?.$metadata?.httpStatusCode, 404, what);
}

/**
 * Node B sees bucket `name` (so its cache holds it), then `remove` deletes the bucket elsewhere, then root writes to
 * it through B at once: every write is NoSuchBucket, and HeadBucket on B agrees.
 */
async function writesAfterRemoteDelete(t: import('ava').ExecutionContext, b: TestGateway, name: string, remove: () => Promise<void>): Promise<void> {
  await b.s3.send(new PutObjectCommand({ Bucket: name, Key: 'seen', Body: 'x' }));
  await b.s3.send(new DeleteObjectCommand({ Bucket: name, Key: 'seen' }));
  await b.s3.send(new HeadBucketCommand({ Bucket: name }));
  await remove();
  await refusedNoSuchBucket(t, 'PutObject', b.s3.send(new PutObjectCommand({ Bucket: name, Key: 'after', Body: 'must not land' })));
  await refusedNoSuchBucket(t, 'PutObject again', b.s3.send(new PutObjectCommand({ Bucket: name, Key: 'after-2', Body: 'must not land' })));
  await refusedNoSuchBucket(t, 'CreateMultipartUpload', b.s3.send(new CreateMultipartUploadCommand({ Bucket: name, Key: 'mp' })));
  const head = (await t.throwsAsync(b.s3.send(new HeadBucketCommand({ Bucket: name })))) as S3ServiceException;
  t.is(head?.$metadata?.httpStatusCode, 404, 'HeadBucket (a HEAD answer has no error code)');
}

if (minioOrExplain(test, 'upstream-bucket-cache')) {
  test.before(async (t) => {
    const minio = await startMinio();
    const upstream = directClient(minio);
    t.context = { minio, upstream };
  });
  test.after.always(async (t) => {
    t.context.upstream?.destroy();
    await t.context.minio?.close();
  });

  for (const mapping of ['bucket', 'prefix'] as const) {
    test(`${mapping} mapping: a bucket deleted through another node refuses writes on this one at once`, async (t) => {
      const { minio, upstream } = t.context;
      const shared = `shared-${randomBytes(4).toString('hex')}`;
      if (mapping === 'prefix') await upstream.send(new CreateBucketCommand({ Bucket: shared }));
      const env = upstreamEnv(minio, mapping === 'prefix' ? { ANVIL_UPSTREAM_MAPPING: 'prefix', ANVIL_UPSTREAM_BUCKET: shared } : {});
      const a = await startTestGateway(env);
      const b = await startTestGateway(env);
      try {
        const name = `gone-${randomBytes(3).toString('hex')}`;
        await a.s3.send(new CreateBucketCommand({ Bucket: name }));
        await writesAfterRemoteDelete(t, b, name, async () => {
          await a.s3.send(new DeleteBucketCommand({ Bucket: name }));
        });
        if (mapping === 'prefix') {
          const left = await upstream.send(new ListObjectsV2Command({ Bucket: shared }));
          t.deepEqual((left.Contents ?? []).map((o) => o.Key), [], 'nothing was written upstream');
        } else {
          await t.throwsAsync(upstream.send(new HeadBucketCommand({ Bucket: name })), undefined, 'the bucket stays deleted');
        }
      } finally {
        await a.close();
        await b.close();
      }
    });
  }

  test('bucket mapping: a bucket deleted straight on MinIO refuses writes through the gateway at once', async (t) => {
    const { minio, upstream } = t.context;
    const gw = await startTestGateway(upstreamEnv(minio));
    try {
      const name = `direct-${randomBytes(3).toString('hex')}`;
      await gw.s3.send(new CreateBucketCommand({ Bucket: name }));
      await writesAfterRemoteDelete(t, gw, name, async () => {
        await upstream.send(new DeleteBucketCommand({ Bucket: name }));
      });
      await t.throwsAsync(upstream.send(new HeadBucketCommand({ Bucket: name })), undefined, 'the bucket stays deleted');
    } finally {
      await gw.close();
    }
  });

  test('prefix mapping: a bucket whose marker is deleted straight on MinIO refuses writes through the gateway at once', async (t) => {
    const { minio, upstream } = t.context;
    const shared = `shared-${randomBytes(4).toString('hex')}`;
    await upstream.send(new CreateBucketCommand({ Bucket: shared }));
    const gw = await startTestGateway(upstreamEnv(minio, { ANVIL_UPSTREAM_MAPPING: 'prefix', ANVIL_UPSTREAM_BUCKET: shared }));
    try {
      const name = `direct-${randomBytes(3).toString('hex')}`;
      await gw.s3.send(new CreateBucketCommand({ Bucket: name }));
      await writesAfterRemoteDelete(t, gw, name, async () => {
        await upstream.send(new DeleteObjectCommand({ Bucket: shared, Key: `_anvil/buckets/${name}` }));
      });
      const left = await upstream.send(new ListObjectsV2Command({ Bucket: shared }));
      t.deepEqual((left.Contents ?? []).map((o) => o.Key), [], 'nothing was written upstream');
    } finally {
      await gw.close();
    }
  });
}

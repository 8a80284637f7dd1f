/**
 * Writes racing root's DeleteBucket over MinIO never survive the delete (storage/upstream/buckets.ts): with `prefix`
 * mapping a write acknowledged before the bucket's marker went keeps the bucket (409 BucketNotEmpty), one landing
 * later is undone (404 NoSuchBucket), and an upload begun meanwhile is aborted with the bucket; with `bucket`
 * mapping a write that MinIO lets re-create the bucket it just deleted (a "ghost", untagged) is undone and refused,
 * and the ghost does not hold the name: the next CreateBucket of it works. Real MinIO behind a loopback proxy that
 * can hold one upstream request, so the races are reproduced on purpose, not hoped for.
 */
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetBucketTaggingCommand,
  GetObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ok } from './helpers/admin.ts';
import { inFlightPut } from './helpers/in-flight-put.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { directClient, minioOrExplain, minioProxy, startMinio, upstreamEnv, type MinioServer } from './helpers/minio.ts';

/** A proxy in front of MinIO that holds every request `held` matches until the test releases it. */
interface HoldingProxy {
  endpoint: string;
  /** Holds requests matching `match` from now on; the promise resolves once one of them has arrived. */
  hold(match: (req: IncomingMessage) => boolean): Promise<void>;
  /** Forwards the held requests (and stops holding). */
  release(): void;
  close(): Promise<void>;
}

async function holdingProxy(target: MinioServer): Promise<HoldingProxy> {
  let match: ((req: IncomingMessage) => boolean) | undefined;
  let arrived = (): void => {};
  let released = Promise.resolve();
  let release = (): void => {};
  const proxy = await minioProxy(target, (req, forward) => {
    if (match?.(req)) {
      arrived();
      void released.then(forward);
    } else forward();
  });
  return {
    ...proxy,
    hold(m) {
      match = m;
      released = new Promise((r) => (release = r));
      return new Promise((r) => (arrived = r));
    },
    release() {
      match = undefined;
      release();
    },
  };
}

interface Ctx {
  minio: MinioServer;
  /** MinIO's data directory: a directory made there is what MinIO leaves of a bucket a racing write brought back. */
  minioData: string;
  upstream: S3Client;
  proxy: HoldingProxy;
}
const test = anyTest as TestFn<Ctx>;

/** A gateway over the proxy with prefix mapping in a fresh shared bucket; tenant xx with a writer; xx's bucket. */
async function prefixSetup(t: ExecutionContext<Ctx>, bucket: string): Promise<{ tg: TestGateway; shared: string; xx: S3Client }> {
  const { minio, upstream, proxy } = t.context;
  const shared = `shared-${randomBytes(4).toString('hex')}`;
  await upstream.send(new CreateBucketCommand({ Bucket: shared }));
  const tg = await startTestGateway(upstreamEnv({ ...minio, endpoint: proxy.endpoint }, { ANVIL_UPSTREAM_MAPPING: 'prefix', ANVIL_UPSTREAM_BUCKET: shared }));
  await ok(tg, ROOT, 'POST', '/tenants', { name: 'xx' });
  await ok(tg, ROOT, 'POST', '/tenants', { name: 'yy' });
  const made = await ok(tg, ROOT, 'POST', '/credentials', { tenant: 'xx', name: 'writer', scopes: [{ families: ['object:write', 'object:read', 'object:list'], bucket }] });
  await tg.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await ok(tg, ROOT, 'PUT', `/buckets/${bucket}/owner`, { tenant: 'xx', reassign: true });
  return { tg, shared, xx: tg.client({ accessKeyId: made.accessKeyId, secretAccessKey: made.secretKey }) };
}

/** Every upstream key under gateway bucket `bucket`'s prefix in `shared` (its `_anvil/` records included). */
async function upstreamKeys(t: ExecutionContext<Ctx>, shared: string, bucket: string): Promise<string[]> {
  const out = await t.context.upstream.send(new ListObjectsV2Command({ Bucket: shared, Prefix: `${bucket}/` }));
  return (out.Contents ?? []).map((o) => o.Key!.slice(bucket.length + 1));
}

/** The request deleting bucket `bucket`'s marker (prefix mapping). */
const markerDeletion = (bucket: string) => (req: IncomingMessage) => req.method === 'DELETE' && (req.url ?? '').split('?')[0].endsWith(`/_anvil/buckets/${bucket}`);

/** The S3 error code of a failed call, or '200'. */
async function outcome(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return '200';
  } catch (err) {
    return (err as S3ServiceException).name ?? String(err);
  }
}

async function text(s3: S3Client, Bucket: string, Key: string): Promise<string> {
  return (await s3.send(new GetObjectCommand({ Bucket, Key }))).Body!.transformToString();
}

if (minioOrExplain(test, 'upstream-delete-bucket-race')) {
  test.before(async (t) => {
    const under = mkdtempSync(join(tmpdir(), 'anvil-ghost-'));
    const minio = await startMinio({ under });
    t.context = { minio, minioData: join(under, readdirSync(under)[0]), upstream: directClient(minio), proxy: await holdingProxy(minio) };
  });
  test.after.always(async (t) => {
    await t.context.proxy?.close();
    t.context.upstream?.destroy();
    await t.context.minio?.close();
  });

  test.serial('prefix mapping: a PutObject acknowledged after DeleteBucket found the bucket empty keeps the bucket (409 BucketNotEmpty), readable', async (t) => {
    const bucket = 'held-put';
    const { tg, shared, xx } = await prefixSetup(t, bucket);
    try {
      // The delete has listed the bucket (empty) and is about to remove the marker when xx's write lands and confirms.
      const reached = t.context.proxy.hold(markerDeletion(bucket));
      const deleting = outcome(tg.s3.send(new DeleteBucketCommand({ Bucket: bucket })));
      await reached;
      t.is(await outcome(xx.send(new PutObjectCommand({ Bucket: bucket, Key: 'late', Body: 'acknowledged' }))), '200', 'the write is acknowledged');
      t.context.proxy.release();
      t.is(await deleting, 'BucketNotEmpty', 'DeleteBucket answers as for any bucket with objects');
      t.is(await text(xx, bucket, 'late'), 'acknowledged', "the acknowledged object is readable in xx's bucket, which still exists");
      t.deepEqual(((await xx.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key), ['late']);
      // The marker came back with its old body: writes under the same incarnation keep working.
      t.is(await outcome(xx.send(new PutObjectCommand({ Bucket: bucket, Key: 'after', Body: 'more' }))), '200');
      await tg.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'late' }));
      await tg.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'after' }));
      await tg.s3.send(new DeleteBucketCommand({ Bucket: bucket }));
      t.deepEqual(await upstreamKeys(t, shared, bucket), [], 'an empty bucket still goes, leaving nothing upstream');
      xx.destroy();
    } finally {
      t.context.proxy.release();
      await tg.close();
    }
  });

  test.serial('prefix mapping: an upload begun after DeleteBucket found the bucket empty goes with the bucket, never into the next one', async (t) => {
    const bucket = 'held-mpu';
    const { tg, shared, xx } = await prefixSetup(t, bucket);
    try {
      const reached = t.context.proxy.hold(markerDeletion(bucket));
      const deleting = outcome(tg.s3.send(new DeleteBucketCommand({ Bucket: bucket })));
      await reached;
      const begun = await outcome(xx.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'late-upload' })));
      t.context.proxy.release();
      t.is(await deleting, '200', 'DeleteBucket takes uploads in progress with it, as S3 does');
      t.is(begun, '200');
      t.deepEqual(await upstreamKeys(t, shared, bucket), [], 'nothing of the upload is left under the prefix');
      await tg.s3.send(new CreateBucketCommand({ Bucket: bucket }));
      t.deepEqual((await tg.s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [], [], 'the next bucket of the name has no uploads');
      xx.destroy();
    } finally {
      t.context.proxy.release();
      await tg.close();
    }
  });

  test.serial('prefix mapping: small writes racing DeleteBucket are either kept in a bucket that stays, or refused with nothing left', async (t) => {
    const rounds = 16;
    const bucket = 'racing';
    const { tg, shared, xx } = await prefixSetup(t, bucket);
    const tally = { deleted: 0, kept: 0, acknowledged: 0, refused: 0 };
    try {
      for (let round = 0; round < rounds; round++) {
        // The marker deletion waits a little, as under load, so the writes have a window to land in.
        const reached = t.context.proxy.hold(markerDeletion(bucket));
        void reached.then(() => setTimeout(() => t.context.proxy.release(), 30));
        const deleting = outcome(tg.s3.send(new DeleteBucketCommand({ Bucket: bucket })));
        const writes = Array.from({ length: 4 }, async (_, i) => {
          // Some land before the delete's listing, some while the marker goes, some after the delete answered.
          await new Promise((r) => setTimeout(r, Math.random() * 150));
          const key = `w${round}-${i}`;
          return { key, result: await outcome(xx.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: randomBytes(4096) }))) };
        });
        const deleted = await deleting;
        const results = await Promise.all(writes);
        t.context.proxy.release();
        const acknowledged = results.filter((w) => w.result === '200');
        tally.acknowledged += acknowledged.length;
        tally.refused += results.length - acknowledged.length;
        for (const w of results) t.true(['200', 'NoSuchBucket', 'AccessDenied'].includes(w.result), `${w.key}: ${w.result}`);
        if (deleted === '200') {
          tally.deleted++;
          t.deepEqual(acknowledged, [], `round ${round}: DeleteBucket answered 204, so no write may have been acknowledged`);
          t.deepEqual(await upstreamKeys(t, shared, bucket), [], `round ${round}: nothing is left under the prefix`);
          await tg.s3.send(new CreateBucketCommand({ Bucket: bucket }));
          await ok(tg, ROOT, 'PUT', `/buckets/${bucket}/owner`, { tenant: 'xx', reassign: true });
          t.deepEqual((await tg.s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? [], [], `round ${round}: the next bucket is empty`);
        } else {
          tally.kept++;
          t.is(deleted, 'BucketNotEmpty', `round ${round}`);
          for (const w of acknowledged) t.is((await text(xx, bucket, w.key)).length > 0, true, `round ${round}: ${w.key} is readable`);
          const listed = ((await tg.s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key!);
          for (const w of acknowledged) t.true(listed.includes(w.key), `round ${round}: ${w.key} is listed`);
          for (const key of listed) await tg.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
        }
      }
      t.log(`${rounds} rounds: ${tally.deleted} deleted, ${tally.kept} kept (409); writes ${tally.acknowledged} acknowledged, ${tally.refused} refused`);
      xx.destroy();
    } finally {
      t.context.proxy.release();
      await tg.close();
    }
  });

  test.serial('bucket mapping: a write that brings a deleted bucket back (an untagged ghost) is refused and undone, and the name can be created again', async (t) => {
    const { minio, upstream } = t.context;
    const tg = await startTestGateway(upstreamEnv(minio));
    try {
      const bucket = `ghost-${randomBytes(3).toString('hex')}`;
      await ok(tg, ROOT, 'POST', '/tenants', { name: 'yy' });
      const made = await ok(tg, ROOT, 'POST', '/credentials', { tenant: 'yy', name: 'admin', scopes: [{ families: ['bucket:admin', 'object:write', 'object:read', 'object:list'], bucket }] });
      const yy = tg.client({ accessKeyId: made.accessKeyId, secretAccessKey: made.secretKey });
      await tg.s3.send(new CreateBucketCommand({ Bucket: bucket }));
      // Root's PutObject is in flight when root deletes the bucket (204) and MinIO brings it back, as it does when a
      // PutObject that passed its bucket check writes after the delete: a bucket directory without metadata, no tag,
      // created 0001-01-01. (That race is MinIO's own and too narrow to hit on purpose; its result is made here.)
      const url = await getSignedUrl(tg.s3, new PutObjectCommand({ Bucket: bucket, Key: 'planted' }), { expiresIn: 600 });
      let deleted = '';
      const res = await inFlightPut(url, Buffer.from('first'), Buffer.from('later'), async () => {
        deleted = await outcome(tg.s3.send(new DeleteBucketCommand({ Bucket: bucket })));
        mkdirSync(join(t.context.minioData, bucket));
      });
      t.is(deleted, '200', 'DeleteBucket answered 204');
      const ghost = (await upstream.send(new ListBucketsCommand({}))).Buckets?.find((b) => b.Name === bucket);
      t.is(ghost?.CreationDate?.getUTCFullYear(), 1, 'the upstream holds a ghost of the bucket');
      t.is(res.status, 404, res.body);
      t.regex(res.body, /<Code>NoSuchBucket<\/Code>/);
      t.deepEqual((await upstream.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? [], [], 'the write was undone');
      // Another tenant takes the name: the ghost is nobody's bucket and holds nothing.
      await yy.send(new CreateBucketCommand({ Bucket: bucket }));
      await yy.send(new PutObjectCommand({ Bucket: bucket, Key: 'mine', Body: 'yy' }));
      t.deepEqual(((await yy.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key), ['mine']);
      const tags = await upstream.send(new GetBucketTaggingCommand({ Bucket: bucket }));
      t.true((tags.TagSet ?? []).some((tag) => tag.Key === 'anvil-incarnation'), 'the new bucket has its incarnation');
      const created = (await upstream.send(new ListBucketsCommand({}))).Buckets?.find((b) => b.Name === bucket)?.CreationDate;
      t.true((created?.getUTCFullYear() ?? 0) > 1, 'and a creation date: a bucket of its own upstream');
      yy.destroy();
    } finally {
      await tg.close();
    }
  });

  test.serial('bucket mapping: CreateBucket takes over no bucket but an empty ghost: not one made on the upstream, nor a ghost holding an object', async (t) => {
    const { minio, upstream } = t.context;
    const tg = await startTestGateway(upstreamEnv(minio));
    try {
      const made = `operator-${randomBytes(3).toString('hex')}`;
      const holding = `holding-${randomBytes(3).toString('hex')}`;
      await upstream.send(new CreateBucketCommand({ Bucket: made }));
      mkdirSync(join(t.context.minioData, holding));
      await upstream.send(new PutObjectCommand({ Bucket: holding, Key: 'left', Body: 'a write nobody undid' }));
      await ok(tg, ROOT, 'POST', '/tenants', { name: 'yy' });
      const cred = await ok(tg, ROOT, 'POST', '/credentials', { tenant: 'yy', name: 'admin', scopes: [{ families: ['bucket:admin'], bucket: '*' }] });
      const yy = tg.client({ accessKeyId: cred.accessKeyId, secretAccessKey: cred.secretKey });
      t.is(await outcome(yy.send(new CreateBucketCommand({ Bucket: made }))), 'BucketAlreadyExists', 'an empty, untagged bucket with a creation date');
      t.not(await outcome(upstream.send(new GetBucketTaggingCommand({ Bucket: made }))), '200', 'which got no incarnation tag');
      t.is(await outcome(yy.send(new CreateBucketCommand({ Bucket: holding }))), 'BucketAlreadyExists', 'a ghost holding an object');
      t.is(await text(upstream, holding, 'left'), 'a write nobody undid', 'which keeps it');
      yy.destroy();
    } finally {
      await tg.close();
    }
  });
}

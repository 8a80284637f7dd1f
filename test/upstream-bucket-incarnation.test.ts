/**
 * Authority never grows across a bucket's re-creation over the upstream backend (storage/upstream/incarnation.ts): a
 * write authorized for tenant xx's bucket that is still in flight while root deletes the bucket, creates it again
 * and gives it to tenant yy (or just moves it to yy) is refused with 403 AccessDenied before the upstream can complete
 * it (the gateway's owner check, storage/backend.ts CommitCheck); root's own write racing a re-creation is refused
 * with 404 NoSuchBucket once the upstream acknowledged it (the incarnation check), and nothing of either is left. Ordinary writes, copies, multipart uploads and buckets created before incarnations existed
 * keep working; an upload of the old bucket cannot be continued in the new one. Both mappings, real MinIO, over HTTP.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteBucketTaggingCommand,
  DeleteObjectCommand,
  GetBucketTaggingCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import { createClients } from '../storage/upstream/client.ts';
import { removeIfUnchanged } from '../storage/upstream/incarnation.ts';
import { ok } from './helpers/admin.ts';
import { inFlightPut, inFlightRequest } from './helpers/in-flight-put.ts';
import { signRequest } from './helpers/raw.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { directClient, minioOrExplain, startMinio, upstreamEnv, type MinioServer } from './helpers/minio.ts';

interface Ctx {
  minio: MinioServer;
  upstream: S3Client;
}
const test = anyTest as TestFn<Ctx>;
type Mapping = 'bucket' | 'prefix';
const MAPPINGS: Mapping[] = ['bucket', 'prefix'];

/** A gateway over the shared MinIO with `mapping` (prefix mapping in a fresh shared bucket); its upstream prefix. */
async function gatewayFor(t: ExecutionContext<Ctx>, mapping: Mapping): Promise<{ tg: TestGateway; shared?: string }> {
  const { minio, upstream } = t.context;
  if (mapping === 'bucket') return { tg: await startTestGateway(upstreamEnv(minio)) };
  const shared = `shared-${randomBytes(4).toString('hex')}`;
  await upstream.send(new CreateBucketCommand({ Bucket: shared }));
  return { tg: await startTestGateway(upstreamEnv(minio, { ANVIL_UPSTREAM_MAPPING: 'prefix', ANVIL_UPSTREAM_BUCKET: shared })), shared };
}

/** Every upstream key holding data of gateway bucket `bucket` (the backend's `_anvil/` records included). */
async function upstreamKeys(t: ExecutionContext<Ctx>, bucket: string, shared?: string): Promise<string[]> {
  const out = await t.context.upstream.send(new ListObjectsV2Command({ Bucket: shared ?? bucket, Prefix: shared ? `${bucket}/` : undefined }));
  return (out.Contents ?? []).map((o) => o.Key!.slice(shared ? bucket.length + 1 : 0));
}

/** Tenants xx and yy, `bucket` made by root and given to xx, and the credentials of an object writer of xx on it. */
async function xxWriter(tg: TestGateway, bucket: string): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  await ok(tg, ROOT, 'POST', '/tenants', { name: 'xx' });
  await ok(tg, ROOT, 'POST', '/tenants', { name: 'yy' });
  await tg.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await ok(tg, ROOT, 'PUT', `/buckets/${bucket}/owner`, { tenant: 'xx', reassign: true });
  const made = await ok(tg, ROOT, 'POST', '/credentials', { tenant: 'xx', name: 'writer', scopes: [{ families: ['object:write'], bucket }] });
  return { accessKeyId: made.accessKeyId, secretAccessKey: made.secretKey };
}

async function refusedWith(t: ExecutionContext, what: string, call: Promise<unknown>, code: string, status: number): Promise<void> {
  const err = (await t.throwsAsync(call, undefined, what)) as S3ServiceException;
  t.is(err?.name, code, `${what}: ${err?.name} ${err?.message}`);
  t.is(err?.$metadata?.httpStatusCode, status, what);
}

async function text(s3: S3Client, Bucket: string, Key: string): Promise<string> {
  return (await s3.send(new GetObjectCommand({ Bucket, Key }))).Body!.transformToString();
}

/** PutObject, CopyObject and a multipart upload through the gateway all land and read back. */
async function writesWork(t: ExecutionContext, s3: S3Client, bucket: string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'plain', Body: 'plain body' }));
  t.is(await text(s3, bucket, 'plain'), 'plain body', 'PutObject');
  await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copied', CopySource: `${bucket}/plain` }));
  t.is(await text(s3, bucket, 'copied'), 'plain body', 'CopyObject');
  await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copied-if', CopySource: `${bucket}/plain`, IfNoneMatch: '*' }));
  t.is(await text(s3, bucket, 'copied-if'), 'plain body', 'CopyObject with If-None-Match');
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'multi' }));
  const part = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'multi', UploadId, PartNumber: 1, Body: 'one part' }));
  await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'multi', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }));
  t.is(await text(s3, bucket, 'multi'), 'one part', 'multipart upload');
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  t.deepEqual((listed.Contents ?? []).map((o) => o.Key), ['copied', 'copied-if', 'multi', 'plain'], 'the listing shows the objects and nothing of _anvil/');
}

if (minioOrExplain(test, 'upstream-bucket-incarnation')) {
  test.before(async (t) => {
    const minio = await startMinio();
    t.context = { minio, upstream: directClient(minio) };
  });
  test.after.always(async (t) => {
    t.context.upstream?.destroy();
    await t.context.minio?.close();
  });

  for (const mapping of MAPPINGS) {
    test.serial(`${mapping} mapping: a write in flight while its bucket is re-created for another tenant is refused and leaves nothing`, async (t) => {
      const { tg, shared } = await gatewayFor(t, mapping);
      try {
        const bucket = 'race-b';
        const creds = await xxWriter(tg, bucket);
        const xx = tg.client(creds);
        const url = await getSignedUrl(xx, new PutObjectCommand({ Bucket: bucket, Key: 'planted' }), { expiresIn: 600 });
        const res = await inFlightPut(url, Buffer.from('first'), Buffer.from('later'), async () => {
          await tg.s3.send(new DeleteBucketCommand({ Bucket: bucket }));
          await tg.s3.send(new CreateBucketCommand({ Bucket: bucket }));
          await ok(tg, ROOT, 'PUT', `/buckets/${bucket}/owner`, { tenant: 'yy', reassign: true });
        });
        // The name is yy's by then: refused as a write into another tenant's bucket (with root's writer, which the
        // owner check does not apply to, the incarnation check answers NoSuchBucket: see the next tests).
        t.is(res.status, 403, res.body);
        t.regex(res.body, /<Code>AccessDenied<\/Code>/);
        t.regex(res.body, /<RequestId>[^<]+<\/RequestId>/);
        const listed = await tg.s3.send(new ListObjectsV2Command({ Bucket: bucket }));
        t.deepEqual(listed.Contents ?? [], [], "yy's new bucket lists nothing");
        t.false((await upstreamKeys(t, bucket, shared)).includes('planted'), 'nothing of the write is left upstream');
        await refusedWith(t, 'xx cannot write into the new bucket', xx.send(new PutObjectCommand({ Bucket: bucket, Key: 'again', Body: 'x' })), 'AccessDenied', 403);
        xx.destroy();
      } finally {
        await tg.close();
      }
    });

    test.serial(`${mapping} mapping: root's write in flight while its bucket is re-created is refused by the incarnation check and undone`, async (t) => {
      const { tg, shared } = await gatewayFor(t, mapping);
      try {
        const bucket = 'race-root';
        await tg.s3.send(new CreateBucketCommand({ Bucket: bucket }));
        const url = await getSignedUrl(tg.s3, new PutObjectCommand({ Bucket: bucket, Key: 'planted' }), { expiresIn: 600 });
        const res = await inFlightPut(url, Buffer.from('first'), Buffer.from('later'), async () => {
          await tg.s3.send(new DeleteBucketCommand({ Bucket: bucket }));
          await tg.s3.send(new CreateBucketCommand({ Bucket: bucket }));
        });
        t.is(res.status, 404, res.body);
        t.regex(res.body, /<Code>NoSuchBucket<\/Code>/);
        t.deepEqual((await tg.s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? [], [], 'the new bucket lists nothing');
        t.false((await upstreamKeys(t, bucket, shared)).includes('planted'), 'nothing of the write is left upstream');
      } finally {
        await tg.close();
      }
    });

    test.serial(`${mapping} mapping: a write in flight while its bucket is moved to another tenant is refused (403) before the upstream completes it: what it would replace stays`, async (t) => {
      const { tg, shared } = await gatewayFor(t, mapping);
      try {
        const bucket = 'move-b';
        const creds = await xxWriter(tg, bucket);
        const xx = tg.client(creds);
        await tg.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'planted', Body: 'before the move' }));
        const url = await getSignedUrl(xx, new PutObjectCommand({ Bucket: bucket, Key: 'planted' }), { expiresIn: 600 });
        // The bucket stays the same upstream (same incarnation): only its owner changes while the body arrives.
        const res = await inFlightPut(url, Buffer.from('first'), Buffer.from('later'), () => ok(tg, ROOT, 'PUT', `/buckets/${bucket}/owner`, { tenant: 'yy', reassign: true }));
        t.is(res.status, 403, res.body);
        t.regex(res.body, /<Code>AccessDenied<\/Code>/);
        t.is(await text(tg.s3, bucket, 'planted'), 'before the move', "the object the refused write would have replaced stays, in the gateway's view");
        t.is(await text(t.context.upstream, shared ?? bucket, shared ? `${bucket}/planted` : 'planted'), 'before the move', 'and upstream');
        xx.destroy();
      } finally {
        await tg.close();
      }
    });

    test.serial(`${mapping} mapping: an empty aws-chunked PUT whose framing arrives after a move is refused, and what it would replace stays`, async (t) => {
      const { tg, shared } = await gatewayFor(t, mapping);
      try {
        const bucket = 'empty-b';
        const creds = await xxWriter(tg, bucket);
        await tg.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'victim', Body: 'before the move' }));
        // No bytes, but a body all the same: the final chunk and its trailer, sent once root has moved the bucket.
        const headers = {
          'content-encoding': 'aws-chunked',
          'x-amz-decoded-content-length': '0',
          'x-amz-trailer': 'x-amz-checksum-crc32',
        };
        const signed = await signRequest({ url: tg.gw.url, method: 'PUT', path: `/${bucket}/victim`, headers, creds, payloadHash: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER' });
        const framing = Buffer.from('0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n');
        const moved = () => ok(tg, ROOT, 'PUT', `/buckets/${bucket}/owner`, { tenant: 'yy', reassign: true });
        const res = await inFlightRequest({ url: tg.gw.url + signed.path, headers: signed.headers, first: Buffer.alloc(0), rest: framing }, moved);
        t.is(res.status, 403, res.body);
        t.is(await text(tg.s3, bucket, 'victim'), 'before the move', 'the object stays whole');
        t.true((await upstreamKeys(t, bucket, shared)).includes('victim'));
        // The same empty body with a wrong trailer checksum is refused before anything reaches the upstream.
        const bad = await signRequest({ url: tg.gw.url, method: 'PUT', path: `/${bucket}/bad-empty`, headers, payloadHash: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER' });
        const wrong = Buffer.from('0\r\nx-amz-checksum-crc32:AAAAAB==\r\n\r\n');
        const refused = await fetch(`${tg.gw.url}${bad.path}`, { method: 'PUT', headers: { ...bad.headers, 'content-length': String(wrong.length) }, body: wrong });
        t.is(refused.status, 400, await refused.text());
        t.false((await upstreamKeys(t, bucket, shared)).includes('bad-empty'), 'nothing of a refused empty body is stored');
      } finally {
        await tg.close();
      }
    });

    test.serial(`${mapping} mapping: ordinary writes, copies and multipart uploads work, and an upload of the old bucket does not continue in the new one`, async (t) => {
      const { tg, shared } = await gatewayFor(t, mapping);
      try {
        const bucket = `inc-${randomBytes(3).toString('hex')}`;
        await tg.s3.send(new CreateBucketCommand({ Bucket: bucket }));
        await writesWork(t, tg.s3, bucket);

        const { UploadId } = await tg.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'old-upload' }));
        const part = await tg.s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'old-upload', UploadId, PartNumber: 1, Body: 'old part' }));
        for (const key of ['plain', 'copied', 'copied-if', 'multi']) await tg.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
        await tg.s3.send(new DeleteBucketCommand({ Bucket: bucket }));
        await tg.s3.send(new CreateBucketCommand({ Bucket: bucket }));
        await refusedWith(t, 'UploadPart of the old upload', tg.s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'old-upload', UploadId, PartNumber: 2, Body: 'more' })), 'NoSuchUpload', 404);
        await refusedWith(
          t,
          'CompleteMultipartUpload of the old upload',
          tg.s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'old-upload', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } })),
          'NoSuchUpload',
          404,
        );
        await refusedWith(t, 'AbortMultipartUpload of the old upload', tg.s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'old-upload', UploadId })), 'NoSuchUpload', 404);
        t.deepEqual((await tg.s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [], [], 'the new bucket has no uploads');
        t.deepEqual((await tg.s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? [], [], 'the new bucket is empty');
        t.false((await upstreamKeys(t, bucket, shared)).includes('old-upload'));
        await writesWork(t, tg.s3, bucket);
      } finally {
        await tg.close();
      }
    });
  }

  test.serial('undoing a refused write removes only the version it wrote, never a newer one at the same key', async (t) => {
    const { minio, upstream } = t.context;
    const bucket = `undo-${randomBytes(3).toString('hex')}`;
    await upstream.send(new CreateBucketCommand({ Bucket: bucket }));
    const clients = createClients({ endpoint: minio.endpoint, region: 'us-east-1', accessKey: minio.accessKey, secretKey: minio.secretKey, forcePathStyle: true, mapping: 'bucket', requestTimeoutMs: 3000 });
    try {
      const loc = { Bucket: bucket, Key: 'k' };
      const mine = await upstream.send(new PutObjectCommand({ ...loc, Body: 'the refused write' }));
      await upstream.send(new PutObjectCommand({ ...loc, Body: 'a newer write' }));
      await removeIfUnchanged(clients, loc, mine.ETag!);
      t.is(await text(upstream, bucket, 'k'), 'a newer write', 'the newer object stays');
      const newer = await upstream.send(new PutObjectCommand({ ...loc, Body: 'written, then refused' }));
      await removeIfUnchanged(clients, loc, newer.ETag!);
      await refusedWith(t, 'the refused write is gone', upstream.send(new GetObjectCommand(loc)), 'NoSuchKey', 404);
      await removeIfUnchanged(clients, loc, newer.ETag!);
      t.pass('removing what is already gone is no error');
    } finally {
      clients.retrying.destroy();
      clients.streaming.destroy();
      clients.probe.destroy();
      clients.lean.close();
    }
  });

  test.serial('bucket mapping: a bucket created before incarnations (no incarnation tag) still takes writes', async (t) => {
    const bucket = `legacy-${randomBytes(3).toString('hex')}`;
    const maker = (await gatewayFor(t, 'bucket')).tg;
    try {
      await maker.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    } finally {
      await maker.close();
    }
    const tags = await t.context.upstream.send(new GetBucketTaggingCommand({ Bucket: bucket }));
    t.true((tags.TagSet ?? []).some((tag) => tag.Key === 'anvil-incarnation'), 'a new bucket gets an incarnation tag upstream');
    t.deepEqual(await upstreamKeys(t, bucket), [], 'and no object: the bucket stays empty upstream');
    await t.context.upstream.send(new DeleteBucketTaggingCommand({ Bucket: bucket }));
    // A gateway started after the bucket was made, as one upgraded over a bucket of an older version.
    const { tg } = await gatewayFor(t, 'bucket');
    try {
      await writesWork(t, tg.s3, bucket);
    } finally {
      await tg.close();
    }
  });

  test.serial('bucket mapping: a write whose bucket loses its tag meanwhile stands; one whose bucket is created again untagged is refused', async (t) => {
    // MinIO can answer a bucket's tag set without the tag for minutes (its in-memory bucket metadata replaced by an
    // older copy from disk); wiping the tag upstream makes the same answer on purpose. The bucket is still the one
    // the write was authorized for (created before its incarnation), so the write is kept.
    const { tg } = await gatewayFor(t, 'bucket');
    try {
      const bucket = `untagged-${randomBytes(3).toString('hex')}`;
      await tg.s3.send(new CreateBucketCommand({ Bucket: bucket }));
      const kept = await getSignedUrl(tg.s3, new PutObjectCommand({ Bucket: bucket, Key: 'kept' }), { expiresIn: 600 });
      const res = await inFlightPut(kept, Buffer.from('first'), Buffer.from('later'), async () => {
        await t.context.upstream.send(new DeleteBucketTaggingCommand({ Bucket: bucket }));
      });
      t.is(res.status, 200, res.body);
      t.is(await text(tg.s3, bucket, 'kept'), 'firstlater', 'the write is kept');
      // Deleted and created again straight on the upstream while a write is in flight: untagged too, but created
      // after the incarnation the write started under, so not the write's bucket.
      const other = `untagged-${randomBytes(3).toString('hex')}`;
      await tg.s3.send(new CreateBucketCommand({ Bucket: other }));
      const planted = await getSignedUrl(tg.s3, new PutObjectCommand({ Bucket: other, Key: 'planted' }), { expiresIn: 600 });
      const began = Date.now();
      const refused = await inFlightPut(planted, Buffer.from('first'), Buffer.from('later'), async () => {
        await t.context.upstream.send(new DeleteBucketCommand({ Bucket: other }));
        await t.context.upstream.send(new CreateBucketCommand({ Bucket: other }));
      });
      t.is(refused.status, 404, refused.body);
      t.regex(refused.body, /<Code>NoSuchBucket<\/Code>/);
      t.true(Date.now() - began < 2_500, 'refused at once, not after asking for the tag again for seconds');
      t.deepEqual(await upstreamKeys(t, other), [], 'nothing of the write is left upstream');
    } finally {
      await tg.close();
    }
  });

  test.serial('bucket mapping, two nodes: a bucket created again on one node a while before a write through the other is no refusal there', async (t) => {
    const bucket = `twonode-${randomBytes(3).toString('hex')}`;
    const a = (await gatewayFor(t, 'bucket')).tg;
    const b = (await gatewayFor(t, 'bucket')).tg;
    try {
      await a.s3.send(new CreateBucketCommand({ Bucket: bucket }));
      // Node b writes, and so holds the first incarnation in its few-seconds cache.
      await b.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'first', Body: 'one' }));
      await a.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'first' }));
      await a.s3.send(new DeleteBucketCommand({ Bucket: bucket }));
      await a.s3.send(new CreateBucketCommand({ Bucket: bucket }));
      // Well after the re-creation (more than the clock margin between nodes), a write through b: the bucket it
      // finds is the one that existed when the write started, so the write stands.
      await new Promise((r) => setTimeout(r, 1500));
      await b.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'second', Body: 'two' }));
      t.deepEqual(await upstreamKeys(t, bucket), ['second']);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test.serial('prefix mapping: a bucket whose marker is empty (from before incarnations) still takes writes', async (t) => {
    const { tg, shared } = await gatewayFor(t, 'prefix');
    try {
      const bucket = `legacy-${randomBytes(3).toString('hex')}`;
      await tg.s3.send(new CreateBucketCommand({ Bucket: bucket }));
      await t.context.upstream.send(new PutObjectCommand({ Bucket: shared, Key: `_anvil/buckets/${bucket}`, Body: '' }));
      await writesWork(t, tg.s3, bucket);
    } finally {
      await tg.close();
    }
  });
}

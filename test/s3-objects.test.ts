/** Object operations through @aws-sdk/client-s3 with its default configuration (CRC32 trailers included). */
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  DeleteObjectTaggingCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
} from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { bodyBytes, pattern, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { sameBytes } from './helpers/bytes.ts';

const test = anyTest as TestFn<TestGateway>;
test.before(async (t) => {
  t.context = await startTestGateway();
  await t.context.s3.send(new CreateBucketCommand({ Bucket: 'objects' }));
});
test.after.always(async (t) => t.context.close());

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

test('buckets: create, list, head, location, delete, name rules', async (t) => {
  const { s3 } = t.context;
  await s3.send(new CreateBucketCommand({ Bucket: 'b-life' }));
  const list = await s3.send(new ListBucketsCommand({}));
  t.true(list.Buckets!.some((b) => b.Name === 'b-life'));
  await s3.send(new HeadBucketCommand({ Bucket: 'b-life' }));
  const loc = await s3.send(new GetBucketLocationCommand({ Bucket: 'b-life' }));
  t.falsy(loc.LocationConstraint);
  // Re-creating one's own bucket in us-east-1 answers 200 and changes nothing (CreateBucket API reference).
  await s3.send(new CreateBucketCommand({ Bucket: 'b-life' }));
  t.true((await s3.send(new ListBucketsCommand({}))).Buckets!.some((b) => b.Name === 'b-life'));
  for (const bad of ['ab', 'UPPER', 'has_underscore', '-dash', '192.168.1.1', 'a'.repeat(64)]) {
    const e = await t.throwsAsync(s3.send(new CreateBucketCommand({ Bucket: bad })), undefined, bad);
    t.is(e?.name, 'InvalidBucketName', bad);
  }
  await s3.send(new PutObjectCommand({ Bucket: 'b-life', Key: 'x', Body: 'x' }));
  const notEmpty = await t.throwsAsync(s3.send(new DeleteBucketCommand({ Bucket: 'b-life' })));
  t.is(notEmpty?.name, 'BucketNotEmpty');
  await s3.send(new DeleteObjectCommand({ Bucket: 'b-life', Key: 'x' }));
  await s3.send(new DeleteBucketCommand({ Bucket: 'b-life' }));
  const gone = await t.throwsAsync(s3.send(new HeadBucketCommand({ Bucket: 'b-life' })));
  t.is((gone as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, 404);
  const missing = await t.throwsAsync(s3.send(new GetObjectCommand({ Bucket: 'no-such-bucket', Key: 'k' })));
  t.is(missing?.name, 'NoSuchBucket');
});

test('put and get round-trip bytes, metadata and standard headers', async (t) => {
  const { s3 } = t.context;
  const body = pattern(300_000);
  const put = await s3.send(
    new PutObjectCommand({
      Bucket: 'objects',
      Key: 'dir/file.bin',
      Body: body,
      ContentType: 'application/x-test',
      ContentEncoding: 'identity',
      ContentDisposition: 'attachment; filename="f.bin"',
      CacheControl: 'max-age=60',
      ContentLanguage: 'en',
      Expires: new Date('2030-01-01T00:00:00Z'),
      Metadata: { owner: 'amy', 'multi-word': 'hello world' },
    }),
  );
  t.is(put.ETag, `"${md5(body)}"`);
  const got = await s3.send(new GetObjectCommand({ Bucket: 'objects', Key: 'dir/file.bin' }));
  sameBytes(t, await bodyBytes(got.Body), body);
  t.is(got.ContentType, 'application/x-test');
  t.is(got.ContentDisposition, 'attachment; filename="f.bin"');
  t.is(got.CacheControl, 'max-age=60');
  t.is(got.ContentLanguage, 'en');
  t.is(got.ContentEncoding, 'identity');
  t.is(got.Expires?.toISOString(), '2030-01-01T00:00:00.000Z');
  t.deepEqual(got.Metadata, { owner: 'amy', 'multi-word': 'hello world' });
  t.is(got.ContentLength, body.length);
  const head = await s3.send(new HeadObjectCommand({ Bucket: 'objects', Key: 'dir/file.bin' }));
  t.is(head.ETag, put.ETag);
  t.is(head.ContentLength, body.length);
});

test('streamed body of unknown length goes through aws-chunked with a CRC32 trailer', async (t) => {
  const { s3 } = t.context;
  const body = pattern(200_000);
  await s3.send(
    new PutObjectCommand({ Bucket: 'objects', Key: 'stream.bin', Body: Readable.from([body.subarray(0, 70_000), body.subarray(70_000)]), ContentLength: body.length }),
  );
  const got = await s3.send(new GetObjectCommand({ Bucket: 'objects', Key: 'stream.bin' }));
  sameBytes(t, await bodyBytes(got.Body), body);
});

test('range reads: bounded, open, suffix, unsatisfiable', async (t) => {
  const { s3 } = t.context;
  const body = pattern(1000);
  await s3.send(new PutObjectCommand({ Bucket: 'objects', Key: 'range', Body: body }));
  const get = (Range: string) => s3.send(new GetObjectCommand({ Bucket: 'objects', Key: 'range', Range }));
  const a = await get('bytes=10-19');
  sameBytes(t, await bodyBytes(a.Body), body.subarray(10, 20));
  t.is(a.ContentRange, 'bytes 10-19/1000');
  t.is(a.$metadata.httpStatusCode, 206);
  const b = await get('bytes=990-');
  sameBytes(t, await bodyBytes(b.Body), body.subarray(990));
  const c = await get('bytes=-5');
  sameBytes(t, await bodyBytes(c.Body), body.subarray(995));
  const d = await get('bytes=900-5000');
  t.is(d.ContentRange, 'bytes 900-999/1000');
  const e = await t.throwsAsync(get('bytes=1000-'));
  t.is(e?.name, 'InvalidRange');
  t.is((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, 416);
});

test('conditional GET and response-* overrides', async (t) => {
  const { s3 } = t.context;
  const put = await s3.send(new PutObjectCommand({ Bucket: 'objects', Key: 'cond', Body: 'hello' }));
  const ok = await s3.send(new GetObjectCommand({ Bucket: 'objects', Key: 'cond', IfMatch: put.ETag }));
  t.is((await bodyBytes(ok.Body)).toString(), 'hello');
  const failed = await t.throwsAsync(s3.send(new GetObjectCommand({ Bucket: 'objects', Key: 'cond', IfMatch: '"nope"' })));
  t.is((failed as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, 412);
  const notMod = await t.throwsAsync(s3.send(new GetObjectCommand({ Bucket: 'objects', Key: 'cond', IfNoneMatch: put.ETag })));
  t.is((notMod as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, 304);
  const since = await t.throwsAsync(
    s3.send(new GetObjectCommand({ Bucket: 'objects', Key: 'cond', IfModifiedSince: new Date(Date.now() + 3600_000) })),
  );
  t.is((since as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, 304);
  const unmod = await t.throwsAsync(
    s3.send(new GetObjectCommand({ Bucket: 'objects', Key: 'cond', IfUnmodifiedSince: new Date('2000-01-01') })),
  );
  t.is((unmod as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, 412);
  const over = await s3.send(
    new GetObjectCommand({
      Bucket: 'objects',
      Key: 'cond',
      ResponseContentType: 'text/x-over',
      ResponseContentDisposition: 'inline',
      ResponseCacheControl: 'no-store',
    }),
  );
  t.is(over.ContentType, 'text/x-over');
  t.is(over.ContentDisposition, 'inline');
  t.is(over.CacheControl, 'no-store');
  await bodyBytes(over.Body);
});

test('copy: COPY and REPLACE directives, self-copy rules, source conditions', async (t) => {
  const { s3 } = t.context;
  const put = await s3.send(
    new PutObjectCommand({ Bucket: 'objects', Key: 'src key+ü', Body: 'copy me', ContentType: 'text/plain', Metadata: { a: '1' } }),
  );
  const c1 = await s3.send(new CopyObjectCommand({ Bucket: 'objects', Key: 'dst1', CopySource: `objects/${encodeURIComponent('src key+ü')}` }));
  t.is(c1.CopyObjectResult?.ETag, put.ETag);
  const h1 = await s3.send(new HeadObjectCommand({ Bucket: 'objects', Key: 'dst1' }));
  t.deepEqual(h1.Metadata, { a: '1' });
  t.is(h1.ContentType, 'text/plain');
  await s3.send(
    new CopyObjectCommand({
      Bucket: 'objects',
      Key: 'dst2',
      CopySource: `objects/${encodeURIComponent('src key+ü')}`,
      MetadataDirective: 'REPLACE',
      Metadata: { b: '2' },
      ContentType: 'text/html',
    }),
  );
  const h2 = await s3.send(new HeadObjectCommand({ Bucket: 'objects', Key: 'dst2' }));
  t.deepEqual(h2.Metadata, { b: '2' });
  t.is(h2.ContentType, 'text/html');
  const self = await t.throwsAsync(s3.send(new CopyObjectCommand({ Bucket: 'objects', Key: 'dst1', CopySource: 'objects/dst1' })));
  t.is(self?.name, 'InvalidRequest');
  await s3.send(
    new CopyObjectCommand({ Bucket: 'objects', Key: 'dst1', CopySource: 'objects/dst1', MetadataDirective: 'REPLACE', Metadata: { c: '3' } }),
  );
  t.deepEqual((await s3.send(new HeadObjectCommand({ Bucket: 'objects', Key: 'dst1' }))).Metadata, { c: '3' });
  const cond = await t.throwsAsync(
    s3.send(new CopyObjectCommand({ Bucket: 'objects', Key: 'dst3', CopySource: 'objects/dst1', CopySourceIfMatch: '"bad"' })),
  );
  t.is(cond?.name, 'PreconditionFailed');
  const cond2 = await t.throwsAsync(
    s3.send(new CopyObjectCommand({ Bucket: 'objects', Key: 'dst3', CopySource: 'objects/dst1', CopySourceIfNoneMatch: put.ETag })),
  );
  t.is(cond2?.name, 'PreconditionFailed');
  const missing = await t.throwsAsync(s3.send(new CopyObjectCommand({ Bucket: 'objects', Key: 'dst4', CopySource: 'objects/missing' })));
  t.is(missing?.name, 'NoSuchKey');
});

test('delete and batch delete, verbose and quiet, with per-key results', async (t) => {
  const { s3 } = t.context;
  for (const k of ['d1', 'd2', 'd3']) await s3.send(new PutObjectCommand({ Bucket: 'objects', Key: k, Body: k }));
  const verbose = await s3.send(
    new DeleteObjectsCommand({ Bucket: 'objects', Delete: { Objects: [{ Key: 'd1' }, { Key: 'd2' }, { Key: 'never-existed' }] } }),
  );
  t.deepEqual(verbose.Deleted?.map((d) => d.Key).sort(), ['d1', 'd2', 'never-existed']);
  const quiet = await s3.send(new DeleteObjectsCommand({ Bucket: 'objects', Delete: { Quiet: true, Objects: [{ Key: 'd3' }] } }));
  t.is(quiet.Deleted, undefined);
  const gone = await t.throwsAsync(s3.send(new HeadObjectCommand({ Bucket: 'objects', Key: 'd3' })));
  t.is(gone?.name, 'NotFound');
  await s3.send(new DeleteObjectCommand({ Bucket: 'objects', Key: 'not-there' }));
  const tooMany = await t.throwsAsync(
    s3.send(new DeleteObjectsCommand({ Bucket: 'objects', Delete: { Objects: Array.from({ length: 1001 }, (_, i) => ({ Key: `k${i}` })) } })),
  );
  t.is(tooMany?.name, 'MalformedXML');
});

test('object tagging: put, get, delete, and x-amz-tagging on PUT', async (t) => {
  const { s3 } = t.context;
  await s3.send(new PutObjectCommand({ Bucket: 'objects', Key: 'tagged', Body: 't', Tagging: 'a=1&b=two%20words' }));
  const t1 = await s3.send(new GetObjectTaggingCommand({ Bucket: 'objects', Key: 'tagged' }));
  t.deepEqual(t1.TagSet?.map((x) => [x.Key, x.Value]).sort(), [['a', '1'], ['b', 'two words']]);
  await s3.send(new PutObjectTaggingCommand({ Bucket: 'objects', Key: 'tagged', Tagging: { TagSet: [{ Key: 'c', Value: '3' }] } }));
  const t2 = await s3.send(new GetObjectTaggingCommand({ Bucket: 'objects', Key: 'tagged' }));
  t.deepEqual(t2.TagSet, [{ Key: 'c', Value: '3' }]);
  await s3.send(new DeleteObjectTaggingCommand({ Bucket: 'objects', Key: 'tagged' }));
  const t3 = await s3.send(new GetObjectTaggingCommand({ Bucket: 'objects', Key: 'tagged' }));
  t.deepEqual(t3.TagSet ?? [], []);
  const tooMany = await t.throwsAsync(
    s3.send(new PutObjectTaggingCommand({ Bucket: 'objects', Key: 'tagged', Tagging: { TagSet: Array.from({ length: 11 }, (_, i) => ({ Key: `k${i}`, Value: 'v' })) } })),
  );
  t.is(tooMany?.name, 'InvalidTag');
  const missing = await t.throwsAsync(s3.send(new GetObjectTaggingCommand({ Bucket: 'objects', Key: 'no-such' })));
  t.is(missing?.name, 'NoSuchKey');
});

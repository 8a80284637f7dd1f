/** Listing edge cases through the SDK: v1, v2, versions, delimiters, unicode, pagination over 1,200 keys. */
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { signedSend } from './helpers/raw.ts';

const test = anyTest as TestFn<TestGateway>;

/** Keys that sort around '/', plus unicode (astral chars sort after BMP ones in UTF-8 byte order). */
const KEYS = ['a', 'a-b', 'a.b', 'a/b', 'a/c/d', 'a/c/e', 'a0', 'b', 'é', 'z/😀', 'z/ﬀ', 'plus+key', 'space key'];

test.before(async (t) => {
  t.context = await startTestGateway();
  const { s3 } = t.context;
  await s3.send(new CreateBucketCommand({ Bucket: 'list' }));
  await Promise.all(KEYS.map((Key) => s3.send(new PutObjectCommand({ Bucket: 'list', Key, Body: Key }))));
  await s3.send(new CreateBucketCommand({ Bucket: 'many' }));
  const keys = Array.from({ length: 1200 }, (_, i) => `k/${String(i).padStart(5, '0')}`);
  for (let i = 0; i < keys.length; i += 50) {
    await Promise.all(keys.slice(i, i + 50).map((Key) => s3.send(new PutObjectCommand({ Bucket: 'many', Key, Body: '' }))));
  }
});
test.after.always(async (t) => t.context.close());

const utf8Sorted = (keys: string[]) => [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));

test('v2 lists every key in UTF-8 byte order', async (t) => {
  const res = await t.context.s3.send(new ListObjectsV2Command({ Bucket: 'list' }));
  t.deepEqual(res.Contents?.map((c) => c.Key), utf8Sorted(KEYS));
  t.is(res.KeyCount, KEYS.length);
  t.false(res.IsTruncated);
});

test('v2 delimiter rolls up common prefixes', async (t) => {
  const res = await t.context.s3.send(new ListObjectsV2Command({ Bucket: 'list', Delimiter: '/' }));
  t.deepEqual(res.CommonPrefixes?.map((p) => p.Prefix), ['a/', 'z/']);
  t.deepEqual(res.Contents?.map((c) => c.Key), utf8Sorted(KEYS.filter((k) => !k.includes('/'))));
  t.is(res.KeyCount, KEYS.length - 5 + 2);
  const sub = await t.context.s3.send(new ListObjectsV2Command({ Bucket: 'list', Delimiter: '/', Prefix: 'a/' }));
  t.deepEqual(sub.Contents?.map((c) => c.Key), ['a/b']);
  t.deepEqual(sub.CommonPrefixes?.map((p) => p.Prefix), ['a/c/']);
});

test('v2 pages one entry at a time across prefixes without repeats', async (t) => {
  const seen: string[] = [];
  let token: string | undefined;
  do {
    const res = await t.context.s3.send(
      new ListObjectsV2Command({ Bucket: 'list', Delimiter: '/', MaxKeys: 1, ContinuationToken: token }),
    );
    t.true((res.KeyCount ?? 0) <= 1);
    seen.push(...(res.Contents ?? []).map((c) => c.Key!), ...(res.CommonPrefixes ?? []).map((p) => p.Prefix!));
    token = res.IsTruncated ? res.NextContinuationToken : undefined;
  } while (token);
  const expected = utf8Sorted([...KEYS.filter((k) => !k.includes('/')), 'a/', 'z/']);
  t.deepEqual(seen, expected);
});

test('v2 start-after, fetch-owner and encoding-type=url', async (t) => {
  const res = await t.context.s3.send(new ListObjectsV2Command({ Bucket: 'list', StartAfter: 'a0', FetchOwner: true, EncodingType: 'url' }));
  const keys = res.Contents!.map((c) => decodeURIComponent(c.Key!));
  t.deepEqual(keys, utf8Sorted(KEYS).filter((k) => Buffer.compare(Buffer.from(k), Buffer.from('a0')) > 0));
  t.truthy(res.Contents![0]!.Owner?.ID);
  t.true(res.Contents!.some((c) => c.Key === 'space%20key'));
});

test('1,200 keys paginate with v2 (1000 + 200) and v1 markers', async (t) => {
  const { s3 } = t.context;
  const p1 = await s3.send(new ListObjectsV2Command({ Bucket: 'many' }));
  t.is(p1.KeyCount, 1000);
  t.true(p1.IsTruncated);
  const p2 = await s3.send(new ListObjectsV2Command({ Bucket: 'many', ContinuationToken: p1.NextContinuationToken }));
  t.is(p2.KeyCount, 200);
  t.false(p2.IsTruncated);
  t.is(p2.Contents!.at(-1)!.Key, 'k/01199');
  let marker: string | undefined;
  let total = 0;
  let pages = 0;
  do {
    const res = await s3.send(new ListObjectsCommand({ Bucket: 'many', Marker: marker, MaxKeys: 500 }));
    total += res.Contents?.length ?? 0;
    pages++;
    marker = res.IsTruncated ? (res.NextMarker ?? res.Contents!.at(-1)!.Key) : undefined;
  } while (marker);
  t.is(total, 1200);
  t.is(pages, 3);
});

test('v1 with delimiter returns NextMarker that skips the rolled-up prefix', async (t) => {
  const { s3 } = t.context;
  const r1 = await s3.send(new ListObjectsCommand({ Bucket: 'list', Delimiter: '/', MaxKeys: 4 }));
  t.true(r1.IsTruncated);
  const names1 = [...(r1.Contents ?? []).map((c) => c.Key), ...(r1.CommonPrefixes ?? []).map((p) => p.Prefix)];
  t.is(names1.length, 4);
  const r2 = await s3.send(new ListObjectsCommand({ Bucket: 'list', Delimiter: '/', Marker: r1.NextMarker }));
  const names2 = [...(r2.Contents ?? []).map((c) => c.Key), ...(r2.CommonPrefixes ?? []).map((p) => p.Prefix)];
  t.is(new Set([...names1, ...names2]).size, names1.length + names2.length);
  t.is(names1.length + names2.length, KEYS.length - 5 + 2);
});

test('versions of an unversioned bucket: each object once with VersionId null', async (t) => {
  const res = await t.context.s3.send(new ListObjectVersionsCommand({ Bucket: 'list' }));
  t.is(res.Versions?.length, KEYS.length);
  t.true(res.Versions!.every((v) => v.VersionId === 'null' && v.IsLatest === true));
});

test('bad max-keys is InvalidArgument', async (t) => {
  const e = await t.throwsAsync(t.context.s3.send(new ListObjectsV2Command({ Bucket: 'list', MaxKeys: -1 })));
  t.is(e?.name, 'InvalidArgument');
});

test('listed objects name their stored checksum (ChecksumAlgorithm, ChecksumType) in v2, v1 and versions', async (t) => {
  // o12c F7: S3 lists them (ListObjectsV2 API reference, Object); the embedded index keeps them beside each row.
  const { s3, gw } = t.context;
  await s3.send(new CreateBucketCommand({ Bucket: 'sums' }));
  await s3.send(new PutObjectCommand({ Bucket: 'sums', Key: 'crc32', Body: 'a' })); // the SDK's default: CRC32
  await s3.send(new PutObjectCommand({ Bucket: 'sums', Key: 'sha256', Body: 'b', ChecksumAlgorithm: 'SHA256' }));
  t.is((await signedSend({ url: gw.url, method: 'PUT', path: '/sums/plain', body: 'c' })).status, 200);
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'sums', Key: 'multipart', ChecksumAlgorithm: 'SHA1' }));
  const part = await s3.send(new UploadPartCommand({ Bucket: 'sums', Key: 'multipart', UploadId, PartNumber: 1, Body: 'd', ChecksumAlgorithm: 'SHA1' }));
  await s3.send(new CompleteMultipartUploadCommand({
    Bucket: 'sums', Key: 'multipart', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag, ChecksumSHA1: part.ChecksumSHA1 }] },
  }));
  const expected = {
    crc32: { ChecksumAlgorithm: ['CRC32'], ChecksumType: 'FULL_OBJECT' },
    multipart: { ChecksumAlgorithm: ['SHA1'], ChecksumType: 'COMPOSITE' },
    plain: { ChecksumAlgorithm: undefined, ChecksumType: undefined },
    sha256: { ChecksumAlgorithm: ['SHA256'], ChecksumType: 'FULL_OBJECT' },
  };
  const pick = (o: { Key?: string; ChecksumAlgorithm?: string[]; ChecksumType?: string }) => [o.Key!, { ChecksumAlgorithm: o.ChecksumAlgorithm, ChecksumType: o.ChecksumType }];
  const v2 = await s3.send(new ListObjectsV2Command({ Bucket: 'sums' }));
  t.deepEqual(Object.fromEntries(v2.Contents!.map(pick)), expected);
  const v1 = await s3.send(new ListObjectsCommand({ Bucket: 'sums' }));
  t.deepEqual(Object.fromEntries(v1.Contents!.map(pick)), expected);
  const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: 'sums' }));
  t.deepEqual(Object.fromEntries(versions.Versions!.map(pick)), expected);
});

/**
 * x-amz-expected-bucket-owner and x-amz-source-expected-bucket-owner are honoured, never ignored: a request whose
 * expected owner is not the bucket's owner id (the tenant, as ListBuckets reports Owner/ID) is 403 AccessDenied and
 * changes nothing (S3 User Guide, "Verifying bucket ownership with bucket owner condition"). Tags follow the Tag data
 * type: the `aws:` prefix is reserved (InvalidTag, "Your TagKey cannot be prefixed with aws:"), and lengths (128 for
 * keys, 256 for values) count Unicode characters, not UTF-8 bytes nor UTF-16 units.
 */
import {
  CopyObjectCommand,
  CreateBucketCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutBucketTaggingCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { FAMILIES } from '../policy/types.ts';
import { ok } from './helpers/admin.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { errorCode, signedSend } from './helpers/raw.ts';

const test = anyTest as TestFn<unknown>;

async function withGateway(fn: (tg: TestGateway, acme: S3Client) => Promise<void>): Promise<void> {
  const tg = await startTestGateway();
  try {
    await ok(tg, ROOT, 'POST', '/tenants', { name: 'acme' });
    const c = await ok(tg, ROOT, 'POST', '/credentials', { tenant: 'acme', name: 'app', scopes: [{ families: FAMILIES.filter((f) => f !== 'admin'), bucket: '*' }] });
    const acme = tg.client({ accessKeyId: c.accessKeyId, secretAccessKey: c.secretKey });
    await fn(tg, acme);
    acme.destroy();
  } finally {
    await tg.close();
  }
}

test('x-amz-expected-bucket-owner: the id ListBuckets reports passes, any other is 403 and changes nothing', async (t) => {
  await withGateway(async (tg, acme) => {
    await acme.send(new CreateBucketCommand({ Bucket: 'owned' }));
    const ownerId = (await acme.send(new ListBucketsCommand({}))).Owner!.ID!;
    t.is(ownerId, 'acme');
    await acme.send(new PutObjectCommand({ Bucket: 'owned', Key: 'k', Body: 'v1', ExpectedBucketOwner: ownerId }));
    await acme.send(new HeadObjectCommand({ Bucket: 'owned', Key: 'k', ExpectedBucketOwner: ownerId }));
    await acme.send(new ListObjectsV2Command({ Bucket: 'owned', ExpectedBucketOwner: ownerId }));

    const wrong = '111122223333';
    const refusals: Array<[string, () => Promise<unknown>]> = [
      ['PutObject', () => acme.send(new PutObjectCommand({ Bucket: 'owned', Key: 'k', Body: 'v2', ExpectedBucketOwner: wrong }))],
      ['GetObject', () => acme.send(new GetObjectCommand({ Bucket: 'owned', Key: 'k', ExpectedBucketOwner: wrong }))],
      ['ListObjectsV2', () => acme.send(new ListObjectsV2Command({ Bucket: 'owned', ExpectedBucketOwner: wrong }))],
      ['PutBucketTagging', () => acme.send(new PutBucketTaggingCommand({ Bucket: 'owned', Tagging: { TagSet: [{ Key: 'a', Value: 'b' }] }, ExpectedBucketOwner: wrong }))],
      ['CopyObject (destination)', () => acme.send(new CopyObjectCommand({ Bucket: 'owned', Key: 'c', CopySource: 'owned/k', ExpectedBucketOwner: wrong }))],
      ['CopyObject (source)', () => acme.send(new CopyObjectCommand({ Bucket: 'owned', Key: 'c', CopySource: 'owned/k', ExpectedSourceBucketOwner: wrong }))],
    ];
    for (const [name, call] of refusals) {
      const err = await t.throwsAsync(call(), undefined, name);
      t.is((err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode, 403, name);
    }
    // Raw: the error document is AccessDenied with a request id; DeleteObject too.
    const del = await signedSend({ url: tg.gw.url, method: 'DELETE', path: '/owned/k', headers: { 'x-amz-expected-bucket-owner': 'root' } });
    t.is(del.status, 403);
    t.is(errorCode(del), 'AccessDenied');
    t.truthy(del.headers['x-amz-request-id']);
    // Nothing changed: the object is still v1, no copy was made.
    const got = await acme.send(new GetObjectCommand({ Bucket: 'owned', Key: 'k' }));
    t.is(await got.Body!.transformToString(), 'v1');
    t.deepEqual((await acme.send(new ListObjectsV2Command({ Bucket: 'owned' }))).Contents!.map((o) => o.Key), ['k']);
    // The matching owner on both sides of a copy succeeds.
    await acme.send(new CopyObjectCommand({ Bucket: 'owned', Key: 'c', CopySource: 'owned/k', ExpectedBucketOwner: ownerId, ExpectedSourceBucketOwner: ownerId }));
    // Root's own bucket reports and honours root's id.
    await tg.s3.send(new CreateBucketCommand({ Bucket: 'rootb' }));
    const rootId = (await tg.s3.send(new ListBucketsCommand({}))).Owner!.ID!;
    await tg.s3.send(new PutObjectCommand({ Bucket: 'rootb', Key: 'k', Body: 'x', ExpectedBucketOwner: rootId }));
    const rootWrong = await t.throwsAsync(tg.s3.send(new PutObjectCommand({ Bucket: 'rootb', Key: 'k', Body: 'x', ExpectedBucketOwner: 'acme' })));
    t.is(rootWrong?.name, 'AccessDenied');
  });
});

test('tags: the aws: prefix is InvalidTag everywhere; lengths count Unicode characters', async (t) => {
  await withGateway(async (tg) => {
    await tg.s3.send(new CreateBucketCommand({ Bucket: 'tags' }));
    await tg.s3.send(new PutObjectCommand({ Bucket: 'tags', Key: 'o', Body: 'x' }));
    for (const Key of ['aws:createdBy', 'AWS:x']) {
      const obj = await t.throwsAsync(tg.s3.send(new PutObjectTaggingCommand({ Bucket: 'tags', Key: 'o', Tagging: { TagSet: [{ Key, Value: 'v' }] } })));
      t.is(obj?.name, 'InvalidTag', Key);
      const bucket = await t.throwsAsync(tg.s3.send(new PutBucketTaggingCommand({ Bucket: 'tags', Tagging: { TagSet: [{ Key, Value: 'v' }] } })));
      t.is(bucket?.name, 'InvalidTag', Key);
      const put = await t.throwsAsync(tg.s3.send(new PutObjectCommand({ Bucket: 'tags', Key: 'p', Body: 'x', Tagging: `${encodeURIComponent(Key)}=v` })));
      t.is(put?.name, 'InvalidTag', Key);
    }
    // 'awsx:' and 'my:aws:' are ordinary keys.
    await tg.s3.send(new PutObjectTaggingCommand({ Bucket: 'tags', Key: 'o', Tagging: { TagSet: [{ Key: 'awsx:a', Value: 'v' }, { Key: 'my:aws:b', Value: 'v' }] } }));

    // 128 / 256 characters outside the BMP (two UTF-16 units, four UTF-8 bytes each) and in Latin-1 (two bytes each).
    const astral = '\u{1D49C}';
    const cases: Array<[string, string]> = [[astral.repeat(128), astral.repeat(256)], ['é'.repeat(128), 'é'.repeat(256)]];
    for (const [Key, Value] of cases) {
      await tg.s3.send(new PutObjectTaggingCommand({ Bucket: 'tags', Key: 'o', Tagging: { TagSet: [{ Key, Value }] } }));
      t.deepEqual((await tg.s3.send(new GetObjectTaggingCommand({ Bucket: 'tags', Key: 'o' }))).TagSet, [{ Key, Value }]);
      await tg.s3.send(new PutObjectCommand({ Bucket: 'tags', Key: 'h', Body: 'x', Tagging: `${encodeURIComponent(Key)}=${encodeURIComponent(Value)}` }));
      const longKey = await t.throwsAsync(tg.s3.send(new PutObjectTaggingCommand({ Bucket: 'tags', Key: 'o', Tagging: { TagSet: [{ Key: Key + 'a', Value }] } })));
      t.is(longKey?.name, 'InvalidTag');
      const longValue = await t.throwsAsync(tg.s3.send(new PutObjectTaggingCommand({ Bucket: 'tags', Key: 'o', Tagging: { TagSet: [{ Key, Value: Value + 'a' }] } })));
      t.is(longValue?.name, 'InvalidTag');
    }
  });
});

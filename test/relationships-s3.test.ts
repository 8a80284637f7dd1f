/**
 * Relationship-governed buckets through real clients: two application credentials of one tenant, both with full
 * object scopes, each reading, listing, copying, composing and deleting exactly what its tuples allow.
 */
import {
  AbortMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import * as Minio from 'minio';
import { relationships as rel } from '../policy/index.ts';
import { bodyBytes, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { denials as denialRows } from './helpers/admin.ts';

interface Ctx extends TestGateway {
  alice: { accessKeyId: string; secretAccessKey: string };
  bob: { accessKeyId: string; secretAccessKey: string };
  as: { alice: S3Client; bob: S3Client };
}
const test = anyTest as TestFn<Ctx>;
const BUCKET = 'gov';
const TENANT = 'acme';
const FAMILIES = ['object:read', 'object:write', 'object:delete', 'object:list', 'bucket:read'] as const;
const KEYS = ['a/1.txt', 'a/2.txt', 'a/sub/3.txt', 'b/4.txt', 'b/5.txt', 'c/6.txt', 'shared/x.txt', 'top.txt', 'z/hidden.txt'];
const AUDIT = { actor: 'test', reason: 'test setup' };

test.before(async (t) => {
  const tg = await startTestGateway();
  const { gw, s3 } = tg;
  await gw.policy.createTenant({ name: TENANT });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await gw.policy.assignBucket(BUCKET, TENANT, { reassign: true });
  for (const key of KEYS) await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: `body of ${key}` }));
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'b/big.bin', Body: Buffer.alloc(5 * 1024 * 1024, 7) }));
  const make = async (name: string) => {
    const c = await gw.policy.createCredential({ tenant: TENANT, name, scopes: [{ families: [...FAMILIES], bucket: BUCKET }] });
    return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretKey };
  };
  const alice = await make('alice');
  const bob = await make('bob');
  await gw.relationships.writeSchema(TENANT, rel.DEFAULT_OBJECT_SCHEMA, AUDIT);
  await gw.policy.setBucketGoverned(BUCKET, true);
  const A = `app:${alice.accessKeyId}`;
  const B = `app:${bob.accessKeyId}`;
  await gw.relationships.write(TENANT, [
    { op: 'touch', tuple: `folder:${BUCKET}/a/#reader@${A}` },
    { op: 'touch', tuple: `object:${BUCKET}/b/4.txt#owner@${A}` },
    { op: 'touch', tuple: `object:${BUCKET}/top.txt#reader@${A}` },
    { op: 'touch', tuple: `object:${BUCKET}/b/5.txt#reader@${B}` },
    { op: 'touch', tuple: `object:${BUCKET}/b/big.bin#reader@${B}` },
    { op: 'touch', tuple: `folder:${BUCKET}/c/#writer@${B}` },
  ], AUDIT);
  t.context = { ...tg, alice, bob, as: { alice: tg.client(alice), bob: tg.client(bob) } };
});
test.after.always(async (t) => t.context.close());

function denials(t: ExecutionContext<Ctx>): Promise<Array<Record<string, string>>> {
  return denialRows(t.context);
}

const text = async (s3: S3Client, key: string) => (await bodyBytes((await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body)).toString();
const denied = async (t: ExecutionContext<Ctx>, p: Promise<unknown>, what: string) => {
  const e = await t.throwsAsync(p, undefined, what);
  t.true(e?.name === 'AccessDenied' || (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode === 403, what);
};

/** Every page of a v2 listing, with each page's shape checked against MaxKeys. */
async function listAllV2(t: ExecutionContext<Ctx>, s3: S3Client, opts: { Prefix?: string; Delimiter?: string; MaxKeys: number }) {
  const names: string[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, ...opts, ContinuationToken: token }));
    const here = [...(page.Contents ?? []).map((c) => c.Key!), ...(page.CommonPrefixes ?? []).map((p) => p.Prefix!)];
    t.is(page.KeyCount, here.length);
    t.true(here.length <= opts.MaxKeys);
    if (page.IsTruncated) t.is(here.length, opts.MaxKeys, 'a truncated page is full');
    names.push(...here.sort());
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
    pages++;
  } while (token && pages < 50);
  return names;
}

async function listAllV1(s3: S3Client, opts: { Delimiter?: string; MaxKeys: number }) {
  const names: string[] = [];
  let marker: string | undefined;
  for (let i = 0; i < 50; i++) {
    const page = await s3.send(new ListObjectsCommand({ Bucket: BUCKET, ...opts, Marker: marker }));
    names.push(...[...(page.Contents ?? []).map((c) => c.Key!), ...(page.CommonPrefixes ?? []).map((p) => p.Prefix!)].sort());
    if (!page.IsTruncated) break;
    marker = page.NextMarker;
  }
  return names;
}

test.serial('listings show exactly the readable keys and the prefixes that lead to them, page by page', async (t) => {
  const { alice, bob } = t.context.as;
  const aliceKeys = ['a/1.txt', 'a/2.txt', 'a/sub/3.txt', 'b/4.txt', 'top.txt'];
  for (const MaxKeys of [1, 2, 1000]) {
    t.deepEqual(await listAllV2(t, alice, { MaxKeys }), aliceKeys, `v2 MaxKeys ${MaxKeys}`);
    t.deepEqual(await listAllV1(alice, { MaxKeys }), aliceKeys, `v1 MaxKeys ${MaxKeys}`);
    t.deepEqual(await listAllV2(t, alice, { Delimiter: '/', MaxKeys }), ['a/', 'b/', 'top.txt'], `v2 delimiter MaxKeys ${MaxKeys}`);
    t.deepEqual(await listAllV1(alice, { Delimiter: '/', MaxKeys }), ['a/', 'b/', 'top.txt'], `v1 delimiter MaxKeys ${MaxKeys}`);
    t.deepEqual(await listAllV2(t, bob, { MaxKeys }), ['b/5.txt', 'b/big.bin', 'c/6.txt']);
    t.deepEqual(await listAllV2(t, bob, { Delimiter: '/', MaxKeys }), ['b/', 'c/']);
  }
  // A folder grant settles the subtree: the sub-folder shows, and listing inside it shows everything.
  t.deepEqual(await listAllV2(t, alice, { Prefix: 'a/', Delimiter: '/', MaxKeys: 2 }), ['a/1.txt', 'a/2.txt', 'a/sub/']);
  // Under a prefix it cannot read: an empty listing, not an error, and no hint of what lies there.
  const none = await bob.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'a/', MaxKeys: 1 }));
  t.is(none.KeyCount, 0);
  t.false(none.IsTruncated);
  t.is(none.NextContinuationToken, undefined);
  // Root bypasses relationships as it bypasses scopes.
  const all = await t.context.s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
  t.is(all.KeyCount, KEYS.length + 1);
});

test.serial('the minio client lists recursively and by folder only what the caller may read', async (t) => {
  const mc = t.context.minioFor(t.context.alice);
  const list = (prefix: string, recursive: boolean) =>
    new Promise<string[]>((resolve, reject) => {
      const names: string[] = [];
      const s = mc.listObjectsV2(BUCKET, prefix, recursive);
      s.on('data', (o) => names.push((o.name ?? o.prefix)!));
      s.on('end', () => resolve(names));
      s.on('error', reject);
    });
  t.deepEqual(await list('', true), ['a/1.txt', 'a/2.txt', 'a/sub/3.txt', 'b/4.txt', 'top.txt']);
  t.deepEqual((await list('', false)).sort(), ['a/', 'b/', 'top.txt']);
  t.deepEqual((await list('b/', false)), ['b/4.txt']);
});

test.serial('reads need read: GET, range, HEAD and tagging of readable keys only', async (t) => {
  const { alice, bob } = t.context.as;
  t.is(await text(alice, 'a/sub/3.txt'), 'body of a/sub/3.txt');
  const range = await alice.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a/1.txt', Range: 'bytes=0-3' }));
  t.is((await bodyBytes(range.Body)).toString(), 'body');
  t.is((await alice.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'top.txt' }))).ContentLength, 'body of top.txt'.length);
  await alice.send(new GetObjectTaggingCommand({ Bucket: BUCKET, Key: 'a/2.txt' }));
  await denied(t, alice.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'b/5.txt' })), 'alice GET b/5.txt');
  await denied(t, alice.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'b/5.txt', Range: 'bytes=0-1' })), 'alice range b/5.txt');
  await denied(t, bob.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'a/1.txt' })), 'bob HEAD a/1.txt');
  await denied(t, bob.send(new GetObjectTaggingCommand({ Bucket: BUCKET, Key: 'a/1.txt' })), 'bob tagging a/1.txt');
  t.is(await text(t.context.s3, 'z/hidden.txt'), 'body of z/hidden.txt');
  const line = (await denials(t)).find((d) => d.accessKeyId === t.context.alice.accessKeyId && d.key === 'b/5.txt' && d.action === 'GetObject');
  t.is(line?.layer, 'relationship');
  t.true(line?.reason.startsWith(`missing read on object:${BUCKET}/b/5.txt for app:${t.context.alice.accessKeyId}`), line?.reason);
});

test.serial('writes need write; copies need read on the source and write on the destination', async (t) => {
  const { alice, bob } = t.context.as;
  await bob.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'c/new.txt', Body: 'new' }));
  await denied(t, bob.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'b/5.txt', Body: 'overwrite' })), 'bob PUT over a key it only reads');
  await denied(t, alice.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'c/alice.txt', Body: 'x' })), 'alice PUT into c/');
  await bob.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'c/copy.txt', CopySource: `${BUCKET}/b/5.txt` }));
  t.is(await text(bob, 'c/copy.txt'), 'body of b/5.txt');
  await denied(t, bob.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'c/stolen.txt', CopySource: `${BUCKET}/a/1.txt` })), 'copy from unreadable');
  await denied(t, alice.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'c/dest.txt', CopySource: `${BUCKET}/a/1.txt` })), 'copy to unwritable');
  await alice.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'b/4.txt', CopySource: `${BUCKET}/a/1.txt` }));
  t.is(await text(alice, 'b/4.txt'), 'body of a/1.txt');
  const lines = (await denials(t)).filter((d) => d.accessKeyId === t.context.bob.accessKeyId && d.action === 'CopyObject');
  t.true(lines.some((d) => d.layer === 'relationship' && d.reason.startsWith(`missing read on object:${BUCKET}/a/1.txt`) && d.copySource === `${BUCKET}/a/1.txt`));
  const aliceCopy = (await denials(t)).find((d) => d.accessKeyId === t.context.alice.accessKeyId && d.action === 'CopyObject');
  t.true(aliceCopy?.reason.startsWith(`missing write on object:${BUCKET}/c/dest.txt`), aliceCopy?.reason);
});

test.serial('multipart: UploadPartCopy and minio composeObject need read on every source', async (t) => {
  const { bob } = t.context.as;
  const mc = t.context.minioFor(t.context.bob);
  await mc.composeObject(
    new Minio.CopyDestinationOptions({ Bucket: BUCKET, Object: 'c/composed.bin' }),
    [new Minio.CopySourceOptions({ Bucket: BUCKET, Object: 'b/big.bin' }), new Minio.CopySourceOptions({ Bucket: BUCKET, Object: 'b/5.txt' })],
  );
  const head = await bob.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'c/composed.bin' }));
  t.is(head.ContentLength, 5 * 1024 * 1024 + 'body of b/5.txt'.length);
  await t.throwsAsync(mc.composeObject(
    new Minio.CopyDestinationOptions({ Bucket: BUCKET, Object: 'c/composed2.bin' }),
    [new Minio.CopySourceOptions({ Bucket: BUCKET, Object: 'b/big.bin' }), new Minio.CopySourceOptions({ Bucket: BUCKET, Object: 'a/1.txt' })],
  ));
  const { UploadId } = await bob.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'c/parts.bin' }));
  await denied(t, bob.send(new UploadPartCopyCommand({ Bucket: BUCKET, Key: 'c/parts.bin', UploadId, PartNumber: 1, CopySource: `${BUCKET}/a/1.txt` })), 'UploadPartCopy from unreadable');
  await bob.send(new UploadPartCopyCommand({ Bucket: BUCKET, Key: 'c/parts.bin', UploadId, PartNumber: 1, CopySource: `${BUCKET}/b/5.txt` }));
  await bob.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'c/parts.bin', UploadId }));
  await denied(t, bob.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'a/upload.bin' })), 'multipart into unwritable');
  t.true((await denials(t)).some((d) => d.action === 'UploadPartCopy' && d.layer === 'relationship' && d.reason.includes(`missing read on object:${BUCKET}/a/1.txt`)));
});

test.serial('deletes need delete, per key in DeleteObjects', async (t) => {
  const { alice, bob } = t.context.as;
  await t.context.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'b/gone.txt', Body: 'x' }));
  await t.context.gw.relationships.write(TENANT, [{ op: 'touch', tuple: `object:${BUCKET}/b/gone.txt#owner@app:${t.context.alice.accessKeyId}` }], AUDIT);
  await denied(t, alice.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'a/1.txt' })), 'alice deletes what it only reads');
  await denied(t, bob.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'c/6.txt' })), 'writer is not owner');
  await alice.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'b/gone.txt' }));
  const res = await alice.send(new DeleteObjectsCommand({
    Bucket: BUCKET,
    Delete: { Objects: [{ Key: 'top.txt' }, { Key: 'b/4.txt' }, { Key: 'z/hidden.txt' }] },
  }));
  t.deepEqual(res.Deleted?.map((d) => d.Key), ['b/4.txt']);
  t.deepEqual(res.Errors?.map((e) => [e.Key, e.Code]).sort(), [['top.txt', 'AccessDenied'], ['z/hidden.txt', 'AccessDenied']]);
  t.is(await text(t.context.s3, 'top.txt'), 'body of top.txt');
  const line = (await denials(t)).find((d) => d.action === 'DeleteObjects' && d.key === 'z/hidden.txt');
  t.true(line?.reason.startsWith(`missing delete on object:${BUCKET}/z/hidden.txt`), line?.reason);
  // Restore for other tests.
  await t.context.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'b/4.txt', Body: 'body of b/4.txt' }));
});

test.serial('a revoked tuple is enforced on the very next request; granting a folder reaches keys beneath it', async (t) => {
  const { bob } = t.context.as;
  const tuple = `folder:${BUCKET}/shared/#reader@app:${t.context.bob.accessKeyId}`;
  await denied(t, bob.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'shared/x.txt' })), 'before the grant');
  await t.context.gw.relationships.write(TENANT, [{ op: 'touch', tuple }], AUDIT);
  t.is(await text(bob, 'shared/x.txt'), 'body of shared/x.txt');
  t.deepEqual(await listAllV2(t, bob, { Delimiter: '/', MaxKeys: 1 }), ['b/', 'c/', 'shared/']);
  await t.context.gw.relationships.write(TENANT, [{ op: 'delete', tuple }], AUDIT);
  await denied(t, bob.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'shared/x.txt' })), 'after the revocation');
  t.deepEqual(await listAllV2(t, bob, { Delimiter: '/', MaxKeys: 1 }), ['b/', 'c/']);
});

test.serial('a CIDR-bound read: the allowlist caveat decides per request from the client address; malformed CIDRs fail closed', async (t) => {
  // The ready-made ip_allowlist caveat takes CIDRs and tests the client address with ipaddress.in_cidr, as SpiceDB
  // defines it (https://authzed.com/docs/spicedb/concepts/caveats#ip-address-checking); the gateway feeds client_ip.
  const { alice } = t.context.as;
  const { gw } = t.context;
  const subject = `app:${t.context.alice.accessKeyId}`;
  const grant = async (allowed: string[]) =>
    await gw.relationships.write(TENANT, [{ op: 'touch', tuple: `object:${BUCKET}/shared/x.txt#reader@${subject}[ip_allowlist:${JSON.stringify({ allowed })}]` }], AUDIT);
  for (const allowed of [['127.0.0.0/8'], ['10.0.0.0/8', '127.0.0.1/32']]) {
    await grant(allowed);
    t.is(await text(alice, 'shared/x.txt'), 'body of shared/x.txt', allowed.join());
    t.true((await listAllV2(t, alice, { Prefix: 'shared/', MaxKeys: 5 })).includes('shared/x.txt'));
  }
  for (const allowed of [['10.0.0.0/8', '::1/128'], ['127.0.0.1']]) {
    await grant(allowed);
    await denied(t, alice.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'shared/x.txt' })), `address not in ${allowed.join()}`);
    t.deepEqual(await listAllV2(t, alice, { Prefix: 'shared/', MaxKeys: 5 }), []);
  }
  const lines = (await denials(t)).filter((d) => d.accessKeyId === t.context.alice.accessKeyId && d.key === 'shared/x.txt').slice(-2);
  t.deepEqual(lines.map((l) => l.layer), ['caveat', 'caveat']);
  t.regex(lines[0]?.reason ?? '', /missing read on object:gov\/shared\/x\.txt .*caveat ip_allowlist is false/);
  t.regex(lines[1]?.reason ?? '', /caveat ip_allowlist failed: invalid CIDR string/);
  await gw.relationships.write(TENANT, [{ op: 'delete', tuple: `object:${BUCKET}/shared/x.txt#reader@${subject}` }], AUDIT);
});

test.serial('ungoverned buckets are decided by scopes alone, exactly as before', async (t) => {
  const { gw, s3 } = t.context;
  await s3.send(new CreateBucketCommand({ Bucket: 'plain' }));
  await gw.policy.assignBucket('plain', TENANT, { reassign: true });
  await s3.send(new PutObjectCommand({ Bucket: 'plain', Key: 'k', Body: 'v' }));
  const c = await gw.policy.createCredential({ tenant: TENANT, name: 'plain', scopes: [{ families: [...FAMILIES], bucket: 'plain' }] });
  const client = t.context.client({ accessKeyId: c.accessKeyId, secretAccessKey: c.secretKey });
  t.is((await bodyBytes((await client.send(new GetObjectCommand({ Bucket: 'plain', Key: 'k' }))).Body)).toString(), 'v');
  t.is((await client.send(new ListObjectsV2Command({ Bucket: 'plain' }))).KeyCount, 1);
});

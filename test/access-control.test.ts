/** Tenants, scoped credentials and their lifecycle, through real clients: isolation, prefix grants, revocation. */
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import type { ScopeGrant } from '../policy/types.ts';
import { bodyBytes, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { denials as denialRows } from './helpers/admin.ts';

const test = anyTest as TestFn<TestGateway>;
const ALL_OBJECT = ['object:read', 'object:write', 'object:delete', 'object:list', 'bucket:read'] as const;

test.before(async (t) => {
  t.context = await startTestGateway();
  const { gw, s3 } = t.context;
  await gw.policy.createTenant({ name: 'alpha' });
  await gw.policy.createTenant({ name: 'beta' });
  for (const [bucket, tenant] of [['alpha-data', 'alpha'], ['alpha-backups', 'alpha'], ['beta-data', 'beta']]) {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await gw.policy.assignBucket(bucket!, tenant!, { reassign: true });
  }
  await s3.send(new PutObjectCommand({ Bucket: 'beta-data', Key: 'secret.txt', Body: 'beta only' }));
  await s3.send(new PutObjectCommand({ Bucket: 'alpha-backups', Key: 'backups/host2/other.txt', Body: 'host2' }));
  await s3.send(new PutObjectCommand({ Bucket: 'alpha-backups', Key: 'config/settings', Body: 'cfg' }));
});
test.after.always(async (t) => t.context.close());

async function credential(t: ExecutionContext<TestGateway>, tenant: string, scopes: ScopeGrant[], extra: { expiresAt?: Date } = {}) {
  const c = await t.context.gw.policy.createCredential({ tenant, name: `c${Math.random().toString(36).slice(2, 8)}`, scopes, ...extra });
  return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretKey };
}

function denials(t: ExecutionContext<TestGateway>): Promise<Array<Record<string, string>>> {
  return denialRows(t.context);
}

const status = (e: unknown) => (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

test('a tenant never sees or touches another tenant\'s buckets', async (t) => {
  const s3: S3Client = t.context.client(await credential(t, 'alpha', [{ families: [...ALL_OBJECT, 'bucket:admin'], bucket: '*' }]));
  const list = await s3.send(new ListBucketsCommand({}));
  t.deepEqual(list.Buckets?.map((b) => b.Name).sort(), ['alpha-backups', 'alpha-data']);
  t.is(status(await t.throwsAsync(s3.send(new HeadBucketCommand({ Bucket: 'beta-data' })))), 403);
  t.is((await t.throwsAsync(s3.send(new GetObjectCommand({ Bucket: 'beta-data', Key: 'secret.txt' }))))?.name, 'AccessDenied');
  t.is((await t.throwsAsync(s3.send(new PutObjectCommand({ Bucket: 'beta-data', Key: 'x', Body: 'x' }))))?.name, 'AccessDenied');
  t.is((await t.throwsAsync(s3.send(new ListObjectsV2Command({ Bucket: 'beta-data' }))))?.name, 'AccessDenied');
  t.is((await t.throwsAsync(s3.send(new DeleteObjectCommand({ Bucket: 'beta-data', Key: 'secret.txt' }))))?.name, 'AccessDenied');
  // A bucket it creates is its own; the same name cannot be taken from another tenant.
  await s3.send(new CreateBucketCommand({ Bucket: 'alpha-new' }));
  t.is(await t.context.gw.policy.bucketOwner('alpha-new'), 'alpha');
  const beta = t.context.client(await credential(t, 'beta', [{ families: [...ALL_OBJECT, 'bucket:admin'], bucket: '*' }]));
  // S3's answer for a name someone else holds is 409 BucketAlreadyExists (CreateBucket API reference); it stays alpha's.
  const taken = await t.throwsAsync(beta.send(new CreateBucketCommand({ Bucket: 'alpha-new' })));
  t.deepEqual([status(taken), taken?.name], [409, 'BucketAlreadyExists']);
  t.is(await t.context.gw.policy.bucketOwner('alpha-new'), 'alpha');
  t.true((await denials(t)).some((d) => d.layer === 'tenant' && d.bucket === 'beta-data' && d.tenant === 'alpha'));
  const got = await t.context.s3.send(new GetObjectCommand({ Bucket: 'beta-data', Key: 'secret.txt' }));
  t.is((await bodyBytes(got.Body)).toString(), 'beta only');
});

test('a prefix-scoped backup credential works inside its prefix and nowhere else', async (t) => {
  const creds = await credential(t, 'alpha', [{ families: [...ALL_OBJECT], bucket: 'alpha-backups', prefix: 'backups/host1/' }]);
  const s3 = t.context.client(creds);
  await s3.send(new HeadBucketCommand({ Bucket: 'alpha-backups' }));
  await s3.send(new GetBucketLocationCommand({ Bucket: 'alpha-backups' }));
  t.deepEqual((await s3.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name), ['alpha-backups']);
  for (let i = 0; i < 25; i++) {
    await s3.send(new PutObjectCommand({ Bucket: 'alpha-backups', Key: `backups/host1/snap/${String(i).padStart(3, '0')}`, Body: `data ${i}` }));
  }
  const inside = await s3.send(new ListObjectsV2Command({ Bucket: 'alpha-backups', Prefix: 'backups/host1/', MaxKeys: 10 }));
  t.is(inside.KeyCount, 10);
  t.true(inside.IsTruncated);
  // Broader than the grant: filtered, never an error; the path that leads to the grant is shown, nothing else.
  const top = await s3.send(new ListObjectsV2Command({ Bucket: 'alpha-backups', Delimiter: '/' }));
  t.deepEqual(top.CommonPrefixes?.map((p) => p.Prefix), ['backups/']);
  t.is(top.Contents, undefined);
  const mid = await s3.send(new ListObjectsV2Command({ Bucket: 'alpha-backups', Prefix: 'backups/', Delimiter: '/' }));
  t.deepEqual(mid.CommonPrefixes?.map((p) => p.Prefix), ['backups/host1/']);
  // Without a delimiter: exactly the granted keys, paginated correctly though most of the bucket is hidden.
  const all: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: 'alpha-backups', MaxKeys: 7, ContinuationToken: token }));
    all.push(...(page.Contents ?? []).map((c) => c.Key!));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  t.is(all.length, 25);
  t.true(all.every((k) => k.startsWith('backups/host1/')));
  t.is((await t.throwsAsync(s3.send(new ListObjectsV2Command({ Bucket: 'alpha-backups', Prefix: 'config/' }))))?.name, 'AccessDenied');
  t.is((await t.throwsAsync(s3.send(new GetObjectCommand({ Bucket: 'alpha-backups', Key: 'backups/host2/other.txt' }))))?.name, 'AccessDenied');
  t.is((await t.throwsAsync(s3.send(new PutObjectCommand({ Bucket: 'alpha-backups', Key: 'backups/host2/x', Body: 'x' }))))?.name, 'AccessDenied');
  const del = await s3.send(
    new DeleteObjectsCommand({ Bucket: 'alpha-backups', Delete: { Objects: [{ Key: 'backups/host1/snap/000' }, { Key: 'config/settings' }] } }),
  );
  t.deepEqual(del.Deleted?.map((d) => d.Key), ['backups/host1/snap/000']);
  t.deepEqual(del.Errors?.map((e) => [e.Key, e.Code]), [['config/settings', 'AccessDenied']]);
  const still = await t.context.s3.send(new GetObjectCommand({ Bucket: 'alpha-backups', Key: 'config/settings' }));
  t.is((await bodyBytes(still.Body)).toString(), 'cfg');
  t.is((await t.throwsAsync(s3.send(new CreateBucketCommand({ Bucket: 'alpha-sneaky' }))))?.name, 'AccessDenied');
  const scopeDenials = (await denials(t)).filter((d) => d.accessKeyId === creds.accessKeyId && d.layer === 'scope');
  t.true(scopeDenials.some((d) => d.key === 'backups/host2/other.txt' && d.action === 'GetObject'));
  t.false(JSON.stringify((await denials(t))).includes(creds.secretAccessKey));
});

test('the minio client with a prefix-scoped credential: put, list, get, remove', async (t) => {
  const creds = await credential(t, 'alpha', [{ families: [...ALL_OBJECT], bucket: 'alpha-data', prefix: 'app/' }]);
  const mc = t.context.minioFor(creds);
  for (let i = 0; i < 5; i++) await mc.putObject('alpha-data', `app/f${i}`, Buffer.from(`f${i}`));
  const names: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const s = mc.listObjectsV2('alpha-data', 'app/', true);
    s.on('data', (o) => names.push(o.name!));
    s.on('end', () => resolve());
    s.on('error', reject);
  });
  t.deepEqual(names, ['app/f0', 'app/f1', 'app/f2', 'app/f3', 'app/f4']);
  const stream = await mc.getObject('alpha-data', 'app/f3');
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  t.is(Buffer.concat(chunks).toString(), 'f3');
  await t.throwsAsync(mc.putObject('alpha-data', 'elsewhere', Buffer.from('x')));
  await mc.removeObjects('alpha-data', names);
  const left = await t.context.s3.send(new ListObjectsV2Command({ Bucket: 'alpha-data', Prefix: 'app/' }));
  t.is(left.KeyCount, 0);
});

test('revoked, rotated and expired credentials stop working on the next request', async (t) => {
  const { policy } = t.context.gw;
  const creds = await credential(t, 'alpha', [{ families: [...ALL_OBJECT], bucket: 'alpha-data' }]);
  const s3 = t.context.client(creds);
  await s3.send(new PutObjectCommand({ Bucket: 'alpha-data', Key: 'r', Body: 'r' }));
  await policy.revokeCredential(creds.accessKeyId);
  t.is(status(await t.throwsAsync(s3.send(new GetObjectCommand({ Bucket: 'alpha-data', Key: 'r' })))), 403);
  t.true((await denials(t)).some((d) => d.accessKeyId === creds.accessKeyId && d.layer === 'credential'));

  const rot = await credential(t, 'alpha', [{ families: [...ALL_OBJECT], bucket: 'alpha-data' }]);
  const old = t.context.client(rot);
  await old.send(new HeadBucketCommand({ Bucket: 'alpha-data' }));
  const rotated = await policy.rotateCredential(rot.accessKeyId);
  t.is(status(await t.throwsAsync(old.send(new GetObjectCommand({ Bucket: 'alpha-data', Key: 'r' })))), 403);
  const fresh = t.context.client({ accessKeyId: rot.accessKeyId, secretAccessKey: rotated.secretKey });
  await fresh.send(new GetObjectCommand({ Bucket: 'alpha-data', Key: 'r' }));

  const grace = await credential(t, 'alpha', [{ families: [...ALL_OBJECT], bucket: 'alpha-data' }]);
  const graceOld = t.context.client(grace);
  await policy.rotateCredential(grace.accessKeyId, { graceSeconds: 3600 });
  await graceOld.send(new GetObjectCommand({ Bucket: 'alpha-data', Key: 'r' }));

  const expired = await credential(t, 'alpha', [{ families: [...ALL_OBJECT], bucket: 'alpha-data' }], { expiresAt: new Date(Date.now() + 1500) });
  const exp = t.context.client(expired);
  await exp.send(new HeadBucketCommand({ Bucket: 'alpha-data' }));
  await new Promise((r) => setTimeout(r, 1600));
  t.is(status(await t.throwsAsync(exp.send(new HeadBucketCommand({ Bucket: 'alpha-data' })))), 403);

  await policy.disableTenant('beta');
  const betaCreds = await credential(t, 'beta', [{ families: [...ALL_OBJECT], bucket: 'beta-data' }]);
  t.is(status(await t.throwsAsync(t.context.client(betaCreds).send(new HeadBucketCommand({ Bucket: 'beta-data' })))), 403);
  await policy.disableTenant('beta', { disabled: false });
});

/**
 * Bucket assignment refuses a name no bucket can have (`anvil bucket assign pa --tenant acme`), with the 400 a scope
 * grant naming it gets, and the bucket list never shows it; a legacy name (capitals, `_`) is still assigned. A name
 * assigned before its bucket exists is created for its tenant when root creates it, on either backend.
 */
import { CreateBucketCommand, HeadBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import test from 'ava';
import { ADMIN_PREFIX } from '../gateway/admin/index.ts';
import { ok } from './helpers/admin.ts';
import { onEachBackend } from './helpers/backends.ts';
import { anvil, credentialEnv } from './helpers/cli.ts';
import { ROOT, startTestGateway } from './helpers/gateway.ts';
import { signedSend } from './helpers/raw.ts';

test('bucket assign refuses names that cannot be buckets, as a scope grant does; bucket list does not show them', async (t) => {
  const tg = await startTestGateway();
  try {
    await ok(tg, ROOT, 'POST', '/tenants', { name: 'acme' });
    const send = async (method: string, path: string, body: unknown) => {
      const res = await signedSend({ url: tg.gw.url, method, path: ADMIN_PREFIX + path, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), creds: ROOT });
      return { status: res.status, json: JSON.parse(res.body) as { error: { code: string; message: string } } };
    };
    for (const bucket of ['pa', 'x', '-lead', '.dot', '_under']) {
      const assigned = await send('PUT', `/buckets/${encodeURIComponent(bucket)}/owner`, { tenant: 'acme' });
      const granted = await send('POST', '/credentials', { tenant: 'acme', name: 'n', scopes: [{ families: ['object:read'], bucket }] });
      t.is(assigned.status, 400, bucket);
      t.is(granted.status, 400, bucket);
      t.is(assigned.json.error.code, granted.json.error.code, bucket);
      t.true(granted.json.error.message.startsWith(assigned.json.error.message), `${bucket}: ${assigned.json.error.message} / ${granted.json.error.message}`);
    }
    const env = { ...credentialEnv(ROOT), ANVIL_ENDPOINT: tg.gw.url };
    const cli = await anvil(['bucket', 'assign', 'pa', '--tenant', 'acme'], env);
    t.is(cli.code, 1, cli.stderr);
    t.regex(cli.stderr, /bucket "pa" is not a bucket name/);
    // Legacy names S3 allowed in us-east-1 (an adopted upstream bucket may have one) are still assignable.
    t.is((await anvil(['bucket', 'assign', 'Legacy_Name', '--tenant', 'acme'], env)).code, 0);
    const list = await anvil(['bucket', 'list', '--json'], env);
    t.is(list.code, 0, list.stderr);
    t.deepEqual((JSON.parse(list.stdout) as Array<{ name: string }>).map((b) => b.name), ['Legacy_Name']);
  } finally {
    await tg.close();
  }
});

onEachBackend(test, 'bucket-assign', (it) => {
  it('root CreateBucket of a name assigned beforehand creates it for that tenant, with no 500; a tenant still gets 409', async (t, f) => {
    const tg = f.gw;
    const s3 = (creds: { accessKeyId: string; secretAccessKey: string }) =>
      new S3Client({ endpoint: tg.gw.url, region: 'us-east-1', credentials: creds, forcePathStyle: true, maxAttempts: 1 });
    await ok(tg, ROOT, 'POST', '/tenants', { name: 'reserving' });
    await ok(tg, ROOT, 'POST', '/tenants', { name: 'other' });
    await ok(tg, ROOT, 'PUT', '/buckets/reserved-by-op/owner', { tenant: 'reserving' });
    const made = await ok(tg, ROOT, 'POST', '/credentials', { tenant: 'other', name: 'o', scopes: [{ families: ['bucket:admin'], bucket: '*' }] });
    const other = { accessKeyId: made.accessKeyId, secretAccessKey: made.secretKey };
    const refused = await s3(other).send(new CreateBucketCommand({ Bucket: 'reserved-by-op' })).catch((e: { name: string; $metadata: { httpStatusCode?: number } }) => e);
    t.is((refused as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, 409);
    await t.throwsAsync(s3(ROOT).send(new HeadBucketCommand({ Bucket: 'reserved-by-op' })));
    // Root: created, and the operator's assignment stands.
    await s3(ROOT).send(new CreateBucketCommand({ Bucket: 'reserved-by-op' }));
    await s3(ROOT).send(new HeadBucketCommand({ Bucket: 'reserved-by-op' }));
    const { buckets } = (await ok(tg, ROOT, 'GET', '/buckets')) as { buckets: Array<{ name: string; tenant: string }> };
    t.deepEqual(buckets.find((b) => b.name === 'reserved-by-op'), { name: 'reserved-by-op', tenant: 'reserving' });
    const writer = await ok(tg, ROOT, 'POST', '/credentials', { tenant: 'reserving', name: 'w', scopes: [{ families: ['object:write'], bucket: 'reserved-by-op' }] });
    await s3({ accessKeyId: writer.accessKeyId, secretAccessKey: writer.secretKey }).send(new PutObjectCommand({ Bucket: 'reserved-by-op', Key: 'k', Body: 'v' }));
    t.pass();
  });
});

/**
 * The reserved prefix over a real MinIO, which reads keys as paths: every key MinIO would store as `_anvil` or
 * `_anvil/...` (a leading `/`, `//`, `.` or `..` segments) is refused at the reserved_namespace layer, and any other
 * key the upstream would store under another name or refuse (`host1/../host2/k`, `a//b`, `a\..\b`) is 400
 * InvalidRequest before it reaches MinIO: nothing of the backend's own records is read or overwritten, and no prefix
 * grant is escaped.
 */
import { CreateBucketCommand, CreateMultipartUploadCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { createHash } from 'node:crypto';
import { denials } from './helpers/admin.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { directClient, minioOrExplain, startMinio, type MinioServer } from './helpers/minio.ts';
import { errorCode, signedSend } from './helpers/raw.ts';

interface Ctx {
  minio: MinioServer;
  tg: TestGateway;
  upstream: S3Client;
  host1: { accessKeyId: string; secretAccessKey: string };
}
const test = anyTest as TestFn<Ctx>;
const BUCKET = 'up1';

/** Every key MinIO holds in the bucket, with its ETag: must not change under refused requests. */
async function upstreamState(upstream: S3Client): Promise<string> {
  const out = await upstream.send(new ListObjectsV2Command({ Bucket: BUCKET }));
  return JSON.stringify((out.Contents ?? []).map((o) => [o.Key, o.ETag]));
}

if (minioOrExplain(test, 'reserved-prefix-upstream')) {
  test.before(async (t) => {
    const minio = await startMinio();
    const tg = await startTestGateway({
      ANVIL_BACKEND: 'upstream',
      ANVIL_UPSTREAM_ENDPOINT: minio.endpoint,
      ANVIL_UPSTREAM_ACCESS_KEY: minio.accessKey,
      ANVIL_UPSTREAM_SECRET_KEY: minio.secretKey,
    });
    await tg.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await tg.gw.policy.createTenant({ name: 'acme' });
    await tg.gw.policy.assignBucket(BUCKET, 'acme', { reassign: true });
    const cred = await tg.gw.policy.createCredential({
      tenant: 'acme',
      name: 'host1',
      scopes: [{ families: ['object:read', 'object:write', 'object:delete', 'object:list'], bucket: BUCKET, prefix: 'backups/host1/' }],
    });
    for (const key of ['backups/host1/a', 'backups/host2/secret']) await tg.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: `body of ${key}` }));
    // An upload in progress: the backend keeps its record under _anvil/uploads/ upstream.
    await tg.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'backups/host1/big' }));
    const upstream = directClient(minio);
    t.context = { minio, tg, upstream, host1: { accessKeyId: cred.accessKeyId, secretAccessKey: cred.secretKey } };
  });
  test.after.always(async (t) => {
    t.context.upstream?.destroy();
    await t.context.tg?.close();
    await t.context.minio?.close();
  });

  test.serial('keys MinIO would store under _anvil/ are reserved for every verb and spelling, root included', async (t) => {
    const { tg, upstream } = t.context;
    const records = (await upstream.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: '_anvil/uploads/' }))).Contents ?? [];
    t.is(records.length, 1);
    const record = records[0]!.Key!;
    const before = await upstreamState(upstream);
    const paths = [
      `/${BUCKET}//_anvil/x`,
      `/${BUCKET}/%2F_anvil%2Fx`,
      `/${BUCKET}//${record}`,
      `/${BUCKET}///${record}`,
      `/${BUCKET}/.%2F${record}`,
      `/${BUCKET}/a%2F..%2F${record}`,
      `/${BUCKET}/_anvil%5Cx`,
    ];
    for (const creds of [ROOT, t.context.host1]) {
      for (const path of paths) {
        for (const method of ['GET', 'HEAD', 'PUT', 'DELETE']) {
          const res = await signedSend({ url: tg.gw.url, method, path, body: method === 'PUT' ? 'overwritten' : '', creds });
          t.is(res.status, 403, `${method} ${path}: ${res.body}`);
          t.is((await denials(tg)).at(-1)?.layer, 'reserved_namespace', `${method} ${path}`);
        }
      }
      const list = await signedSend({ url: tg.gw.url, method: 'GET', path: `/${BUCKET}`, query: { 'list-type': '2', prefix: '/_anvil/' }, creds });
      t.is(list.status, 403);
    }
    t.is(await upstreamState(upstream), before);
  });

  // Bucket mapping names the upstream bucket after the gateway's: a decoded `/` in the bucket segment would reach
  // another bucket's keys (`up1%2F_anvil/x` is key `_anvil/x` of up1 there), a space or NUL no request line may carry.
  test.serial('a bucket segment no bucket name can have is 400 InvalidBucketName for every verb, root included, and reaches nothing upstream', async (t) => {
    const { tg, upstream } = t.context;
    const before = await upstreamState(upstream);
    // MinIO resolves a bucket of `.` or `..` as a path segment: `/../up1/_anvil/x` would be key _anvil/x of up1.
    const paths = [`/${BUCKET}%2F_anvil/evil`, `/${BUCKET}%2F_anvil%2Fuploads/x`, `/${BUCKET}%2Fbackups/host1/a`, `/${BUCKET}%2F`, `/zz%20/x`, `/pt3%00/x`, `/${BUCKET}%3F/x`, `//${BUCKET}/x`, '//',
      `/%2E%2E/${BUCKET}/_anvil/evil`, `/../${BUCKET}/_anvil/evil`, `/%2E/${BUCKET}/x`, `/..?tagging`, '/ab/x', '/-up1/x', '/_x/y'];
    for (const creds of [ROOT, t.context.host1]) {
      for (const path of paths) {
        for (const [method, query] of [['GET', {}], ['HEAD', {}], ['PUT', {}], ['DELETE', {}], ['POST', { uploads: '' }]] as const) {
          const res = await signedSend({ url: tg.gw.url, method, path, query, body: method === 'PUT' ? 'EVIL' : '', creds });
          t.is(res.status, 400, `${method} ${path}: ${res.body}`);
          if (method !== 'HEAD') {
            t.is(errorCode(res), 'InvalidBucketName', `${method} ${path}`);
            t.regex(res.body, /<RequestId>/);
          }
        }
      }
    }
    // Nor as a copy source: `../up1/_anvil/…` would read the backend's own records.
    const records = (await upstream.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: '_anvil/uploads/' }))).Contents ?? [];
    for (const source of [`../${BUCKET}/${records[0]!.Key}`, `%2E%2E/${BUCKET}/backups/host2/secret`, `/./${BUCKET}/backups/host2/secret`]) {
      const copy = await signedSend({ url: tg.gw.url, method: 'PUT', path: `/${BUCKET}/backups/host1/copied`, headers: { 'x-amz-copy-source': source }, creds: ROOT });
      t.is(copy.status, 400, `copy from ${source}: ${copy.body}`);
      t.is(errorCode(copy), 'InvalidBucketName', `copy from ${source}`);
    }
    t.is(await upstreamState(upstream), before);
    t.is((await upstream.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: '_anvil/evil' }))).KeyCount, 0);
  });

  test.serial('keys the upstream would store under another name are 400 InvalidRequest, never 500, and escape no prefix grant', async (t) => {
    const { tg, upstream, host1 } = t.context;
    const before = await upstreamState(upstream);
    const keys = ['backups/host1/../host2/secret', 'backups/host1/./x', 'backups/host1//x', 'backups/host1/a\\..\\b', 'backups/host1/..', 'backups/host1/.'];
    for (const key of keys) {
      const path = `/${BUCKET}/${key.split('/').map(encodeURIComponent).join('/')}`;
      for (const method of ['GET', 'PUT', 'DELETE']) {
        const res = await signedSend({ url: tg.gw.url, method, path, body: method === 'PUT' ? 'overwritten' : '', creds: host1 });
        t.is(res.status, 400, `${method} ${key}: ${res.body}`);
        t.is(errorCode(res), 'InvalidRequest', `${method} ${key}`);
        t.regex(res.body, /<RequestId>/);
      }
      const copy = await signedSend({ url: tg.gw.url, method: 'PUT', path: `/${BUCKET}/backups/host1/copy`, headers: { 'x-amz-copy-source': `${BUCKET}/${encodeURIComponent(key)}` }, creds: host1 });
      t.is(copy.status, 400, `copy from ${key}: ${copy.body}`);
    }
    for (const prefix of ['backups/host1/../', 'backups/host1/./', 'backups/host1//']) {
      const list = await signedSend({ url: tg.gw.url, method: 'GET', path: `/${BUCKET}`, query: { 'list-type': '2', prefix }, creds: host1 });
      t.is(list.status, 400, `list ${prefix}: ${list.body}`);
      t.is(errorCode(list), 'InvalidRequest');
    }
    // A backslash inside a segment is stored as it is.
    const kept = await signedSend({ url: tg.gw.url, method: 'PUT', path: `/${BUCKET}/backups/host1/a%5Cb`, body: 'kept', creds: host1 });
    t.is(kept.status, 200, kept.body);
    await signedSend({ url: tg.gw.url, method: 'DELETE', path: `/${BUCKET}/backups/host1/a%5Cb`, creds: host1 });
    const body = `<Delete><Object><Key>backups/host1/../host2/secret</Key></Object><Object><Key>backups/host1/a</Key></Object></Delete>`;
    const del = await signedSend({
      url: tg.gw.url, method: 'POST', path: `/${BUCKET}`, query: { delete: '' }, body, creds: host1,
      headers: { 'content-md5': createHash('md5').update(body).digest('base64') },
    });
    t.is(del.status, 200);
    t.regex(del.body, /<Error><Key>backups\/host1\/\.\.\/host2\/secret<\/Key><Code>InvalidRequest<\/Code>/);
    t.regex(del.body, /<Deleted><Key>backups\/host1\/a<\/Key><\/Deleted>/);
    const after = JSON.parse(await upstreamState(upstream)) as string[][];
    t.deepEqual(after, (JSON.parse(before) as string[][]).filter(([k]) => k !== 'backups/host1/a'));
    t.true(after.some(([k]) => k === 'backups/host2/secret'));
  });
}

/**
 * The reserved prefix: `_anvil` and `_anvil/...` are unreachable through the S3 API for every verb, every spelling
 * and every credential, root included. Each refusal leaves storage untouched and writes one reserved_namespace line.
 */
import { CreateBucketCommand, CreateMultipartUploadCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { denials } from './helpers/admin.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { errorCode, signedSend, type RawResponse } from './helpers/raw.ts';

interface Ctx extends TestGateway {
  tenant: { accessKeyId: string; secretAccessKey: string };
  uploadId: string;
}
const test = anyTest as TestFn<Ctx>;

/** Wire spellings of reserved keys (after S3's one decoding each is `_anvil` or starts with `_anvil/`). */
const SPELLINGS = ['_anvil', '_anvil/', '_anvil/state.db', '%5Fanvil/x', '_anvil%2Fx', '%5F%61nvil%2Fdeep%2Fkey', '_anvil/a%20b+c'];

test.before(async (t) => {
  const base = await startTestGateway();
  const { gw } = base;
  await base.s3.send(new CreateBucketCommand({ Bucket: 'shared' }));
  await gw.policy.createTenant({ name: 'acme' });
  await gw.policy.assignBucket('shared', 'acme', { reassign: true });
  const cred = await gw.policy.createCredential({
    tenant: 'acme',
    name: 'everything',
    scopes: [{ families: ['object:read', 'object:write', 'object:delete', 'object:list', 'bucket:read', 'bucket:admin'], bucket: '*' }],
  });
  // Gateway state the S3 API must never show: written straight to storage, as the gateway itself would.
  for (const key of ['_anvil', '_anvil/state.db', '_anvil/x', '_anvil/deep/key', '_anvil/a b+c']) {
    await gw.backend.putObject({ bucket: 'shared', key, meta: { headers: {}, userMetadata: {} }, body: Readable.from([Buffer.from('secret state')]) });
  }
  await base.s3.send(new PutObjectCommand({ Bucket: 'shared', Key: 'public.txt', Body: 'hello' }));
  await base.s3.send(new PutObjectCommand({ Bucket: 'shared', Key: '_anvilish', Body: 'not reserved' }));
  const mpu = await base.s3.send(new CreateMultipartUploadCommand({ Bucket: 'shared', Key: 'normal-upload' }));
  t.context = { ...base, tenant: { accessKeyId: cred.accessKeyId, secretAccessKey: cred.secretKey }, uploadId: mpu.UploadId! };
});
test.after.always(async (t) => t.context.close());

/** Everything storage holds in the bucket, reserved keys included, with ETags: must not change. */
async function snapshot(t: ExecutionContext<Ctx>): Promise<string> {
  const res = await t.context.gw.backend.listObjects({ bucket: 'shared', limit: 1000 });
  const uploads = await t.context.gw.backend.listMultipartUploads({ bucket: 'shared', limit: 1000 });
  const tags = await t.context.gw.backend.getObjectTagging('shared', '_anvil/x');
  return JSON.stringify([res.entries.map((e) => (e.kind === 'object' ? [e.key, e.etag] : e.prefix)), uploads.entries.length, tags]);
}

async function denialLines(t: ExecutionContext<Ctx>, requestId: string): Promise<Array<{ layer: string }>> {
  return (await denials(t.context)).filter((r) => r.requestId === requestId);
}

async function assertRefused(t: ExecutionContext<Ctx>, res: RawResponse, what: string): Promise<void> {
  t.is(res.status, 403, `${what}: ${res.body}`);
  t.is(errorCode(res), 'AccessDenied', what);
  const lines = await denialLines(t, res.headers['x-amz-request-id'] as string);
  t.is(lines.length, 1, what);
  t.is(lines[0]?.layer, 'reserved_namespace', what);
}

type Req = { method: string; path: string; query?: Record<string, string>; headers?: Record<string, string>; body?: string };

/** Every object-level operation aimed at a reserved key (wire spelling `k`). */
function objectRequests(k: string, uploadId: string): Array<[string, Req]> {
  const xml = '<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>';
  const complete = '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"x"</ETag></Part></CompleteMultipartUpload>';
  return [
    ['GetObject', { method: 'GET', path: `/shared/${k}` }],
    ['GetObject range', { method: 'GET', path: `/shared/${k}`, headers: { range: 'bytes=0-3' } }],
    ['GetObject partNumber', { method: 'GET', path: `/shared/${k}`, query: { partNumber: '1' } }],
    ['GetObject versionId', { method: 'GET', path: `/shared/${k}`, query: { versionId: 'null' } }],
    ['HeadObject', { method: 'HEAD', path: `/shared/${k}` }],
    ['PutObject', { method: 'PUT', path: `/shared/${k}`, body: 'overwrite' }],
    ['DeleteObject', { method: 'DELETE', path: `/shared/${k}` }],
    ['CopyObject dest', { method: 'PUT', path: `/shared/${k}`, headers: { 'x-amz-copy-source': '/shared/public.txt' } }],
    ['CopyObject source', { method: 'PUT', path: '/shared/copy-dest', headers: { 'x-amz-copy-source': `shared/${k}` } }],
    ['CopyObject source versionId', { method: 'PUT', path: '/shared/copy-dest', headers: { 'x-amz-copy-source': `/shared/${k}?versionId=null` } }],
    ['CreateMultipartUpload', { method: 'POST', path: `/shared/${k}`, query: { uploads: '' } }],
    ['UploadPart', { method: 'PUT', path: `/shared/${k}`, query: { partNumber: '1', uploadId }, body: 'part' }],
    ['UploadPartCopy dest', { method: 'PUT', path: `/shared/${k}`, query: { partNumber: '1', uploadId }, headers: { 'x-amz-copy-source': 'shared/public.txt' } }],
    ['UploadPartCopy source', { method: 'PUT', path: '/shared/normal-upload', query: { partNumber: '1', uploadId }, headers: { 'x-amz-copy-source': `shared/${k}`, 'x-amz-copy-source-range': 'bytes=0-1' } }],
    ['CompleteMultipartUpload', { method: 'POST', path: `/shared/${k}`, query: { uploadId }, body: complete }],
    ['AbortMultipartUpload', { method: 'DELETE', path: `/shared/${k}`, query: { uploadId } }],
    ['ListParts', { method: 'GET', path: `/shared/${k}`, query: { uploadId } }],
    ['GetObjectTagging', { method: 'GET', path: `/shared/${k}`, query: { tagging: '' } }],
    ['PutObjectTagging', { method: 'PUT', path: `/shared/${k}`, query: { tagging: '' }, body: xml }],
    ['DeleteObjectTagging', { method: 'DELETE', path: `/shared/${k}`, query: { tagging: '' } }],
  ];
}

for (const who of ['root', 'tenant'] as const) {
  for (const spelling of SPELLINGS) {
    test.serial(`${who}: every object operation on ${spelling} is refused`, async (t) => {
      const creds = who === 'root' ? ROOT : t.context.tenant;
      const before = await snapshot(t);
      for (const [name, req] of objectRequests(spelling, t.context.uploadId)) {
        const res = await signedSend({ url: t.context.gw.url, creds, ...req });
        await assertRefused(t, res, `${who} ${name} ${spelling}`);
      }
      t.is(await snapshot(t), before);
    });
  }

  test.serial(`${who}: DeleteObjects refuses reserved keys one by one and deletes the rest`, async (t) => {
    const creds = who === 'root' ? ROOT : t.context.tenant;
    await t.context.s3.send(new PutObjectCommand({ Bucket: 'shared', Key: `victim-${who}`, Body: 'x' }));
    const before = await snapshot(t);
    const body = `<Delete><Object><Key>_anvil/x</Key></Object><Object><Key>_anvil</Key></Object><Object><Key>victim-${who}</Key></Object></Delete>`;
    const res = await signedSend({
      url: t.context.gw.url,
      creds,
      method: 'POST',
      path: '/shared',
      query: { delete: '' },
      body,
      headers: { 'content-md5': createHash('md5').update(body).digest('base64') },
    });
    t.is(res.status, 200);
    t.regex(res.body, /<Error><Key>_anvil\/x<\/Key><Code>AccessDenied<\/Code>/);
    t.regex(res.body, /<Error><Key>_anvil<\/Key><Code>AccessDenied<\/Code>/);
    t.regex(res.body, new RegExp(`<Deleted><Key>victim-${who}</Key></Deleted>`));
    const lines = await denialLines(t, res.headers['x-amz-request-id'] as string);
    t.is(lines.filter((l) => l.layer === 'reserved_namespace').length, 2);
    const after = JSON.parse(await snapshot(t));
    const beforeKeys = JSON.parse(before)[0].filter((e: unknown) => !(Array.isArray(e) && e[0] === `victim-${who}`));
    t.deepEqual(after[0], beforeKeys);
  });

  test.serial(`${who}: listings never show the reserved prefix, and listing inside it is refused`, async (t) => {
    const creds = who === 'root' ? ROOT : t.context.tenant;
    for (const marker of ['list-type=2', 'versions', 'uploads', '']) {
      for (const [prefix, delimiter] of [['', ''], ['', '/'], ['_', '/'], ['_anvil', ''], ['_anvil', '/'], ['_a', '']]) {
        const query: Record<string, string> = { prefix, delimiter };
        if (marker) query[marker.split('=')[0]!] = marker.split('=')[1] ?? '';
        for (const cursor of [{}, { marker: '_', 'start-after': '_', 'key-marker': '_' }] as Array<Record<string, string>>) {
          const res = await signedSend({ url: t.context.gw.url, creds, method: 'GET', path: '/shared', query: { ...query, ...cursor } });
          t.is(res.status, 200, res.body);
          // The request's own Prefix is echoed back; no listed key, common prefix or next marker may be reserved.
          t.notRegex(res.body, /<(Key|NextMarker|NextKeyMarker)>_anvil(\/[^<]*)?<\//, `${marker} ${prefix} ${delimiter}`);
          t.notRegex(res.body, /<CommonPrefixes><Prefix>_anvil\//, `${marker} ${prefix} ${delimiter}`);
        }
      }
      for (const prefix of ['_anvil/', '_anvil/x', '_anvil/deep/']) {
        const query: Record<string, string> = { prefix };
        if (marker) query[marker.split('=')[0]!] = marker.split('=')[1] ?? '';
        const res = await signedSend({ url: t.context.gw.url, creds, method: 'GET', path: '/shared', query });
        await assertRefused(t, res, `${marker} list ${prefix}`);
      }
    }
    // Pagination stays correct with the reserved keys filtered out: one visible entry per page.
    const seen: string[] = [];
    let token: string | undefined;
    const s3 = t.context.client(creds);
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: 'shared', MaxKeys: 1, ContinuationToken: token }));
      seen.push(...(page.Contents ?? []).map((c) => c.Key!));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    t.true(seen.includes('_anvilish'));
    t.true(seen.includes('public.txt'));
    t.false(seen.some((k) => k === '_anvil' || k.startsWith('_anvil/')));
  });

  test.serial(`${who}: presigned URLs for reserved keys are refused`, async (t) => {
    const creds = who === 'root' ? ROOT : t.context.tenant;
    const s3 = t.context.client(creds);
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'shared', Key: '_anvil/state.db' }), { expiresIn: 60 });
    const res = await fetch(url);
    t.is(res.status, 403);
    const body = await res.text();
    t.regex(body, /AccessDenied/);
    t.notRegex(body, /secret state/);
    const put = await getSignedUrl(s3, new PutObjectCommand({ Bucket: 'shared', Key: '_anvil/x' }), { expiresIn: 60 });
    const before = await snapshot(t);
    const res2 = await fetch(put, { method: 'PUT', body: 'evil' });
    t.is(res2.status, 403);
    await res2.text();
    t.is(await snapshot(t), before);
  });
}

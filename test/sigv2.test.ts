/**
 * AWS Signature Version 2, header and presigned, driven by botocore (the AWS CLI v1's library) with
 * signature_version 's3', on the embedded store and over MinIO: every access layer applies exactly as for SigV4, and
 * ANVIL_SIGV2=false turns it off. Expected answers: S3 Developer Guide "Signing and authenticating REST requests"
 * (SigV2) and "Query string request authentication"; Error Responses (SignatureDoesNotMatch 403, AccessDenied 403
 * "Request has expired", InvalidRequest 400 for an unsupported mechanism).
 */
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { createHmac, randomBytes } from 'node:crypto';
import { ROOT_TENANT } from '../policy/index.ts';
import { denials } from './helpers/admin.ts';
import { onEachBackend, type Flavour } from './helpers/backends.ts';
import { boto } from './helpers/boto.ts';
import { startTestGateway } from './helpers/gateway.ts';
import { errorCode, send } from './helpers/raw.ts';

const test = anyTest as TestFn<unknown>;

/** A botocore call with SigV2 (`signature_version='s3'`): the AWS CLI's own config switch no longer reaches its signer. */
const botoV2 = (f: Flavour, creds: { accessKeyId: string; secretAccessKey: string }, op: string, params: Record<string, unknown>) =>
  boto(f.gw.gw.url, creds, op, params, 's3');

const root = (f: Flavour) => ({ accessKeyId: f.gw.config.rootAccessKey!, secretAccessKey: f.gw.config.rootSecretKey! });

async function freshBucket(f: Flavour): Promise<string> {
  const bucket = `v2-${randomBytes(4).toString('hex')}`;
  await f.gw.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

onEachBackend(test, 'sigv2', (it) => {
  it('SigV2 header auth (botocore): put, get, list, delete', async (t, f) => {
    const bucket = await freshBucket(f);
    t.is((await botoV2(f, root(f), 'put_object', { Bucket: bucket, Key: 'dir/up.txt', Body: 'signed the old way', ContentType: 'text/plain' })).error, undefined);
    const got = await botoV2(f, root(f), 'get_object', { Bucket: bucket, Key: 'dir/up.txt' });
    t.is(got.Body, 'signed the old way');
    t.is(got.ContentType, 'text/plain');
    const listed = await botoV2(f, root(f), 'list_objects_v2', { Bucket: bucket, Prefix: 'dir/' });
    t.truthy(listed.Contents, JSON.stringify(listed));
    t.deepEqual(listed.Contents.map((o: { Key: string }) => o.Key), ['dir/up.txt']);
    await botoV2(f, root(f), 'delete_object', { Bucket: bucket, Key: 'dir/up.txt' });
    t.is((await botoV2(f, root(f), 'list_objects_v2', { Bucket: bucket })).KeyCount, 0);
    const wrong = await botoV2(f, { ...root(f), secretAccessKey: 'not-the-secret' }, 'list_objects_v2', { Bucket: bucket });
    t.deepEqual(wrong, { error: 'SignatureDoesNotMatch', status: 403 });
  });

  it('a SigV2 presigned URL works for a plain GET; tampering and expiry are refused', async (t, f) => {
    const bucket = await freshBucket(f);
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'shared file.txt', Body: 'for the link' }));
    const { url } = await botoV2(f, root(f), 'presign', { Bucket: bucket, Key: 'shared file.txt', ExpiresIn: 300 });
    t.regex(url, /[?&]AWSAccessKeyId=/);
    t.regex(url, /[?&]Signature=/);
    const res = await fetch(url);
    t.is(res.status, 200);
    t.is(await res.text(), 'for the link');
    const bad = await fetch(url.replace('shared%20file.txt', 'other.txt'));
    t.is(bad.status, 403);
    t.regex(await bad.text(), /<Code>SignatureDoesNotMatch<\/Code>/);
    const { url: expired } = await botoV2(f, root(f), 'presign', { Bucket: bucket, Key: 'shared file.txt', ExpiresIn: 1 });
    await new Promise((r) => setTimeout(r, 2500));
    const late = await fetch(expired);
    t.is(late.status, 403);
    t.regex(await late.text(), /Request has expired/);
  });

  it('a Latin-1 response-* override (é, ÿ, U+00A0) is signed as botocore signs it: presigned and header-signed 200; € stays 400', async (t, f) => {
    const bucket = await freshBucket(f);
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'ov', Body: 'override me' }));
    for (const value of ['attachment; filename="\u00e9.txt"', 'inline; filename="\u00ff"', 'x\u00a0y']) {
      const { url } = await botoV2(f, root(f), 'presign', { Bucket: bucket, Key: 'ov', ResponseContentDisposition: value });
      t.regex(url, /[?&]AWSAccessKeyId=/);
      const res = await fetch(url);
      t.is(res.status, 200, `${JSON.stringify(value)}: ${await res.clone().text()}`);
      // fetch reads header bytes as Latin-1, which is what the gateway writes for a Latin-1 override.
      t.is(res.headers.get('content-disposition'), value);
      const got = await botoV2(f, root(f), 'get_object', { Bucket: bucket, Key: 'ov', ResponseContentDisposition: value });
      t.is(got.error, undefined, JSON.stringify(got));
      t.is(got.Body, 'override me');
    }
    const euro = 'attachment; filename="\u20ac.txt"';
    const { url } = await botoV2(f, root(f), 'presign', { Bucket: bucket, Key: 'ov', ResponseContentDisposition: euro });
    const res = await fetch(url);
    t.is(res.status, 400);
    t.regex(await res.text(), /<Code>InvalidArgument<\/Code>/);
    t.deepEqual(await botoV2(f, root(f), 'get_object', { Bucket: bucket, Key: 'ov', ResponseContentDisposition: euro }), { error: 'InvalidArgument', status: 400 });
  });

  it('a SigV2 request repeating AWSAccessKeyId, Signature, Expires, a session token or a single-valued header is 400 InvalidArgument naming it', async (t, f) => {
    const bucket = await freshBucket(f);
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'v2' }));
    const { url } = await botoV2(f, root(f), 'presign', { Bucket: bucket, Key: 'k', ExpiresIn: 300 });
    t.is((await fetch(url)).status, 200);
    const param = (name: string) => new URL(url).searchParams.get(name)!;
    const repeats: Array<[string, string]> = [
      ['Signature', 'AAAAAAAAAAAAAAAAAAAAAAAAAAA='],
      ['Signature', param('Signature')],
      ['Expires', String(Math.floor(Date.now() / 1000) + 600)],
      ['AWSAccessKeyId', 'AKIAOTHEROTHEROTHER0'],
      ['AWSAccessKeyId', param('AWSAccessKeyId')],
    ];
    for (const [name, value] of repeats) {
      for (const spliced of [`${url}&${name}=${encodeURIComponent(value)}`, url.replace('?', `?${name}=${encodeURIComponent(value)}&`)]) {
        const res = await fetch(spliced);
        const body = await res.text();
        t.is(res.status, 400, `${spliced}: ${body}`);
        t.regex(body, /<Code>InvalidArgument<\/Code>/);
        t.regex(body, new RegExp(`<ArgumentName>${name}</ArgumentName>`));
      }
    }
    // A session token in the query, in either spelling, is not covered by the V2 string to sign.
    for (const name of ['x-amz-security-token', 'X-Amz-Security-Token']) {
      const res = await fetch(`${url}&${name}=tok`);
      t.is(res.status, 400, name);
    }
    // Header-signed: a repeated x-amz-date or x-amz-security-token is signed joined with ',', acted on as one.
    for (const name of ['x-amz-date', 'x-amz-security-token']) {
      const values = name === 'x-amz-date' ? [new Date().toUTCString(), new Date(Date.now() - 60_000).toUTCString()] : ['tok1', 'tok2'];
      const amz = [...(name === 'x-amz-date' ? [] : [`x-amz-date:${new Date().toUTCString()}`]), `${name}:${values.join(',')}`].sort();
      const toSign = `GET\n\n\n\n${amz.join('\n')}\n/${bucket}/k`;
      const signature = createHmac('sha1', root(f).secretAccessKey).update(toSign).digest('base64');
      const headers: Record<string, string | string[]> = { authorization: `AWS ${root(f).accessKeyId}:${signature}`, [name]: values };
      if (name !== 'x-amz-date') headers['x-amz-date'] = amz.find((l) => l.startsWith('x-amz-date:'))!.slice('x-amz-date:'.length);
      const res = await send({ url: f.gw.gw.url, method: 'GET', path: `/${bucket}/k`, headers: headers as Record<string, string> });
      t.is(res.status, 400, `${name}: ${res.body}`);
      t.is(errorCode(res), 'InvalidArgument', name);
      t.regex(res.body, new RegExp(`<ArgumentName>${name}</ArgumentName>`));
    }
  });

  it('SigV2 callers get exactly their scopes: outside the prefix, writes without the family and _anvil/ are refused and logged', async (t, f) => {
    const bucket = await freshBucket(f);
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'app/mine.txt', Body: 'mine' }));
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'secret/theirs.txt', Body: 'theirs' }));
    const c = await f.gw.gw.policy.createCredential({ tenant: ROOT_TENANT, name: `v2${randomBytes(3).toString('hex')}`, scopes: [{ families: ['object:read', 'object:list'], bucket, prefix: 'app/' }] });
    const creds = { accessKeyId: c.accessKeyId, secretAccessKey: c.secretKey };
    t.is((await botoV2(f, creds, 'get_object', { Bucket: bucket, Key: 'app/mine.txt' })).Body, 'mine');
    t.deepEqual(await botoV2(f, creds, 'get_object', { Bucket: bucket, Key: 'secret/theirs.txt' }), { error: 'AccessDenied', status: 403 });
    t.deepEqual(await botoV2(f, creds, 'put_object', { Bucket: bucket, Key: 'app/new.txt', Body: 'x' }), { error: 'AccessDenied', status: 403 });
    const { url } = await botoV2(f, creds, 'presign', { Bucket: bucket, Key: 'secret/theirs.txt' });
    t.is((await fetch(url)).status, 403);
    t.deepEqual(await botoV2(f, root(f), 'put_object', { Bucket: bucket, Key: '_anvil/x', Body: 'x' }), { error: 'AccessDenied', status: 403 });
    const lines = await denials(f.gw);
    t.true(lines.some((l) => l.accessKeyId === c.accessKeyId && l.key === 'secret/theirs.txt'));
    t.true(lines.some((l) => l.key === '_anvil/x' && l.layer === 'reserved_namespace'));
  });
});

test('ANVIL_SIGV2=false: SigV2 header and presigned requests are refused', async (t) => {
  const gw = await startTestGateway({ ANVIL_SIGV2: 'false' });
  try {
    await gw.s3.send(new CreateBucketCommand({ Bucket: 'nov2' }));
    await gw.s3.send(new PutObjectCommand({ Bucket: 'nov2', Key: 'k', Body: 'x' }));
    const f: Flavour = { name: 'embedded', gw };
    t.deepEqual(await botoV2(f, root(f), 'list_objects_v2', { Bucket: 'nov2' }), { error: 'InvalidRequest', status: 400 });
    const { url } = await botoV2(f, root(f), 'presign', { Bucket: 'nov2', Key: 'k' });
    const res = await fetch(url);
    t.is(res.status, 400);
    t.regex(await res.text(), /<Code>InvalidRequest<\/Code>/);
  } finally {
    await gw.close();
  }
});

/**
 * AWS Signature Version 2, header and presigned, driven by botocore (the AWS CLI v1's library) with
 * signature_version 's3', on the embedded store and over MinIO: every access layer applies exactly as for SigV4, and
 * ANVIL_SIGV2=false turns it off. Expected answers: S3 Developer Guide "Signing and authenticating REST requests"
 * (SigV2) and "Query string request authentication"; Error Responses (SignatureDoesNotMatch 403, AccessDenied 403
 * "Request has expired", InvalidRequest 400 for an unsupported mechanism).
 */
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT_TENANT } from '../policy/index.ts';
import { onEachBackend, type Flavour } from './helpers/backends.ts';
import { startTestGateway } from './helpers/gateway.ts';

const test = anyTest as TestFn<unknown>;
const run = promisify(execFile);

/**
 * botocore (the AWS CLI v1's library) with `signature_version='s3'`, i.e. SigV2: the CLI's own config-file switch is
 * overridden by botocore's endpoint rules in current versions, the client Config is not. Returns the operation's
 * JSON answer, or `{"error": code, "status": n}`; `presign` returns `{"url": …}`.
 */
const BOTO_V2 = `
import json, sys, botocore.session, botocore.config
from botocore.exceptions import ClientError
endpoint, ak, sk, op, params = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
c = botocore.session.get_session().create_client('s3', endpoint_url=endpoint, region_name='us-east-1',
    aws_access_key_id=ak, aws_secret_access_key=sk,
    config=botocore.config.Config(signature_version='s3', s3={'addressing_style': 'path'}, retries={'max_attempts': 1}))
try:
    if op == 'presign':
        expires = params.pop('ExpiresIn', 300)
        print(json.dumps({'url': c.generate_presigned_url('get_object', Params=params, ExpiresIn=expires)}))
    else:
        out = getattr(c, op)(**params)
        if 'Body' in out: out['Body'] = out['Body'].read().decode()
        print(json.dumps(out, default=str))
except ClientError as e:
    print(json.dumps({'error': e.response['Error']['Code'], 'status': e.response['ResponseMetadata']['HTTPStatusCode']}))
`;

async function botoV2(f: Flavour, creds: { accessKeyId: string; secretAccessKey: string }, op: string, params: Record<string, unknown>): Promise<any> {
  const { stdout } = await run('python3', ['-c', BOTO_V2, f.gw.gw.url, creds.accessKeyId, creds.secretAccessKey, op, JSON.stringify(params)]);
  return JSON.parse(stdout);
}

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

  it('SigV2 callers get exactly their scopes: outside the prefix, writes without the family and _anvil/ are refused and logged', async (t, f) => {
    const bucket = await freshBucket(f);
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'app/mine.txt', Body: 'mine' }));
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'secret/theirs.txt', Body: 'theirs' }));
    const c = f.gw.gw.policy.createCredential({ tenant: ROOT_TENANT, name: `v2${randomBytes(3).toString('hex')}`, scopes: [{ families: ['object:read', 'object:list'], bucket, prefix: 'app/' }] });
    const creds = { accessKeyId: c.accessKeyId, secretAccessKey: c.secretKey };
    t.is((await botoV2(f, creds, 'get_object', { Bucket: bucket, Key: 'app/mine.txt' })).Body, 'mine');
    t.deepEqual(await botoV2(f, creds, 'get_object', { Bucket: bucket, Key: 'secret/theirs.txt' }), { error: 'AccessDenied', status: 403 });
    t.deepEqual(await botoV2(f, creds, 'put_object', { Bucket: bucket, Key: 'app/new.txt', Body: 'x' }), { error: 'AccessDenied', status: 403 });
    const { url } = await botoV2(f, creds, 'presign', { Bucket: bucket, Key: 'secret/theirs.txt' });
    t.is((await fetch(url)).status, 403);
    t.deepEqual(await botoV2(f, root(f), 'put_object', { Bucket: bucket, Key: '_anvil/x', Body: 'x' }), { error: 'AccessDenied', status: 403 });
    const lines = readFileSync(join(f.gw.dataDir, 'denials.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, string>);
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

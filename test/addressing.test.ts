/** Virtual-hosted-style and path-style addressing reach the same objects; keys are decoded exactly once. */
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { bodyBytes, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { signedSend } from './helpers/raw.ts';

const test = anyTest as TestFn<TestGateway>;
test.before(async (t) => {
  t.context = await startTestGateway({ ANVIL_DOMAIN: 's3.anvil.test' });
  await t.context.s3.send(new CreateBucketCommand({ Bucket: 'vhost' }));
});
test.after.always(async (t) => t.context.close());

test('a virtual-hosted request reads and writes the bucket named in Host', async (t) => {
  const { gw, s3 } = t.context;
  const host = `vhost.s3.anvil.test:${gw.port}`;
  const put = await signedSend({ url: gw.url, method: 'PUT', path: '/dir/v%20key', headers: { host }, body: 'virtual' });
  t.is(put.status, 200, put.body);
  const got = await s3.send(new GetObjectCommand({ Bucket: 'vhost', Key: 'dir/v key' }));
  t.is((await bodyBytes(got.Body)).toString(), 'virtual');
  await s3.send(new PutObjectCommand({ Bucket: 'vhost', Key: 'path-style', Body: 'path' }));
  const viaHost = await signedSend({ url: gw.url, method: 'GET', path: '/path-style', headers: { host } });
  t.is(viaHost.body, 'path');
  const list = await signedSend({ url: gw.url, method: 'GET', path: '/', query: { 'list-type': '2' }, headers: { host } });
  t.regex(list.body, /<Key>dir\/v key<\/Key>/);
});

test('keys keep dot segments, doubled slashes and plus signs literally', async (t) => {
  const { gw, s3 } = t.context;
  for (const [wire, key] of [
    ['/vhost/a/../b', 'a/../b'],
    ['/vhost/a//b', 'a//b'],
    ['/vhost/a/./b', 'a/./b'],
    ['/vhost/plus+sign', 'plus+sign'],
    ['/vhost/pct%2525', 'pct%25'],
  ] as const) {
    const put = await signedSend({ url: gw.url, method: 'PUT', path: wire, body: key });
    t.is(put.status, 200, `${wire}: ${put.body}`);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'vhost', Key: key }));
    t.is((await bodyBytes(got.Body)).toString(), key);
  }
});

test('a request naming no bucket, or a bucket name no bucket can have, is 400 InvalidBucketName and never ListBuckets', async (t) => {
  const { gw } = t.context;
  const cases: Array<[string, Record<string, string>]> = [
    ['//vhost/x', {}],
    ['//', {}],
    ['/vhost%2Fx/y', {}],
    ['/vh%20ost/y', {}],
    ['/dir/x', { host: `.s3.anvil.test:${gw.port}` }],
    ['/x', { host: `vh%2fost.s3.anvil.test:${gw.port}` }],
    ['/vhost/x', { host: `..s3.anvil.test:${gw.port}` }],
    ['/%2E%2E/vhost/x', {}],
    ['/./vhost/x', {}],
  ];
  for (const [path, headers] of cases) {
    for (const method of ['GET', 'PUT']) {
      const res = await signedSend({ url: gw.url, method, path, headers, body: method === 'PUT' ? 'x' : '' });
      t.is(res.status, 400, `${method} ${path} ${JSON.stringify(headers)}: ${res.body}`);
      t.regex(res.body, /<Code>InvalidBucketName<\/Code>[\s\S]*<RequestId>/);
      t.notRegex(res.body, /ListAllMyBucketsResult/);
    }
  }
  // The service itself, path-style and on the bare domain, still lists.
  t.regex((await signedSend({ url: gw.url, method: 'GET', path: '/' })).body, /ListAllMyBucketsResult/);
  t.regex((await signedSend({ url: gw.url, method: 'GET', path: '/', headers: { host: `s3.anvil.test:${gw.port}` } })).body, /ListAllMyBucketsResult/);
});

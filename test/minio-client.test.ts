/** The MinIO JS client end to end: put/get/partial, listings, copy, compose, batch remove, presigned GET. */
import anyTest, { type TestFn } from 'ava';
import * as Minio from 'minio';
import { pattern, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { sameBytes } from './helpers/bytes.ts';

const test = anyTest as TestFn<TestGateway>;
const MiB = 1024 * 1024;
test.before(async (t) => {
  t.context = await startTestGateway();
  await t.context.minio.makeBucket('mcb', 'us-east-1');
});
test.after.always(async (t) => t.context.close());

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

test('putObject, getObject, getPartialObject, statObject', async (t) => {
  const { minio } = t.context;
  const body = pattern(100_000);
  await minio.putObject('mcb', 'one', body, body.length, { 'Content-Type': 'text/x-one', 'X-Amz-Meta-Color': 'blue' });
  sameBytes(t, await readAll(await minio.getObject('mcb', 'one')), body);
  sameBytes(t, await readAll(await minio.getPartialObject('mcb', 'one', 10, 20)), body.subarray(10, 30));
  const stat = await minio.statObject('mcb', 'one');
  t.is(stat.size, body.length);
  t.is(stat.metaData['content-type'], 'text/x-one');
  t.is(stat.metaData['color'], 'blue');
});

test('listObjectsV2 streams every key under a prefix', async (t) => {
  const { minio } = t.context;
  for (let i = 0; i < 30; i++) await minio.putObject('mcb', `list/${i}`, Buffer.from(String(i)));
  const names: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const s = minio.listObjectsV2('mcb', 'list/', true);
    s.on('data', (o) => names.push(o.name!));
    s.on('end', () => resolve());
    s.on('error', reject);
  });
  t.is(names.length, 30);
});

test('copyObject, composeObject and removeObjects', async (t) => {
  const { minio } = t.context;
  const a = pattern(5 * MiB);
  const b = pattern(1000);
  await minio.putObject('mcb', 'part-a', a);
  await minio.putObject('mcb', 'part-b', b);
  await minio.copyObject('mcb', 'copy-a', '/mcb/part-a', new Minio.CopyConditions());
  sameBytes(t, await readAll(await minio.getObject('mcb', 'copy-a')), a);
  await minio.composeObject(
    new Minio.CopyDestinationOptions({ Bucket: 'mcb', Object: 'composed' }),
    [new Minio.CopySourceOptions({ Bucket: 'mcb', Object: 'part-a' }), new Minio.CopySourceOptions({ Bucket: 'mcb', Object: 'part-b' })],
  );
  sameBytes(t, await readAll(await minio.getObject('mcb', 'composed')), Buffer.concat([a, b]));
  await minio.removeObjects('mcb', ['part-a', 'part-b', 'copy-a']);
  await t.throwsAsync(minio.statObject('mcb', 'part-a'));
  t.is((await minio.statObject('mcb', 'composed')).size, a.length + b.length);
});

test('presignedGetObject works with a plain fetch and expires', async (t) => {
  const { minio } = t.context;
  await minio.putObject('mcb', 'shared file', Buffer.from('presigned!'));
  const url = await minio.presignedGetObject('mcb', 'shared file', 60);
  const res = await fetch(url);
  t.is(res.status, 200);
  t.is(await res.text(), 'presigned!');
  const ranged = await fetch(url, { headers: { range: 'bytes=0-8' } });
  t.is(ranged.status, 206);
  t.is(await ranged.text(), 'presigned');
  const tampered = url.replace('shared%20file', 'shared%20filf');
  const bad = await fetch(tampered);
  t.is(bad.status, 403);
  t.regex(await bad.text(), /<Code>SignatureDoesNotMatch<\/Code>[\s\S]*<RequestId>/);
  const expired = await minio.presignedGetObject('mcb', 'shared file', 1, {}, new Date(Date.now() - 10_000));
  const late = await fetch(expired);
  t.is(late.status, 403);
  t.regex(await late.text(), /AccessDenied/);
});

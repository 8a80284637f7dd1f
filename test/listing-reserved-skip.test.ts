/**
 * Listings skip the reserved namespace in one step. Keys `_anvil` and `_anvil/...` (the gateway's own state, and
 * whatever else storage holds there) are planted straight in the embedded store, since the S3 API refuses them:
 * many under astral-plane characters, which UTF-8 (the store's order) sorts after every BMP character. A listing
 * shows none of them, shows the keys on both sides, and asks the store a handful of times, not once per hidden key.
 */
import { CreateBucketCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { Readable } from 'node:stream';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';

const test = anyTest as TestFn<TestGateway>;
const HIDDEN = 400;
const VISIBLE = ['_anvil0', '_anvilish', 'a-before', 'z-after'];

test.before(async (t) => {
  const tg = await startTestGateway();
  await tg.s3.send(new CreateBucketCommand({ Bucket: 'astral' }));
  const plant = (key: string) => tg.gw.backend.putObject({ bucket: 'astral', key, meta: { headers: {}, userMetadata: {} }, body: Readable.from([Buffer.from('state')]) });
  await plant('_anvil');
  await plant('_anvil/\uffff-last-bmp');
  await plant('_anvil/plain');
  for (let i = 0; i < HIDDEN; i++) await plant(`_anvil/${i % 2 ? '😀' : '\u{10FFFF}'}-${String(i).padStart(4, '0')}`);
  await plant(`_anvil/${'\u{10FFFF}'.repeat(200)}`);
  for (const key of VISIBLE) await tg.s3.send(new PutObjectCommand({ Bucket: 'astral', Key: key, Body: 'visible' }));
  t.context = tg;
});
test.after.always(async (t) => t.context.close());

/** Store listObjects calls so far (the metrics count every backend call). */
async function storeListings(tg: TestGateway): Promise<number> {
  const metric = await tg.gw.metrics.backendDuration.get();
  return metric.values.find((v) => v.metricName === 'anvil_backend_duration_seconds_count' && v.labels.method === 'listObjects')?.value ?? 0;
}

test.serial('ListObjectsV2 hides every reserved key and lists the keys after them, in a few store calls', async (t) => {
  const tg = t.context;
  const before = await storeListings(tg);
  const listed = await tg.s3.send(new ListObjectsV2Command({ Bucket: 'astral' }));
  const calls = (await storeListings(tg)) - before;
  t.deepEqual((listed.Contents ?? []).map((o) => o.Key), VISIBLE);
  t.is(listed.KeyCount, VISIBLE.length);
  t.false(listed.IsTruncated);
  t.true(calls <= 4, `the listing asked the store ${calls} times for ${HIDDEN} hidden keys`);
});

test.serial('with a delimiter, and page by page, the reserved namespace is neither shown nor walked key by key', async (t) => {
  const tg = t.context;
  const rolled = await tg.s3.send(new ListObjectsV2Command({ Bucket: 'astral', Delimiter: '/' }));
  t.deepEqual((rolled.Contents ?? []).map((o) => o.Key), VISIBLE);
  t.deepEqual(rolled.CommonPrefixes ?? [], []);
  const before = await storeListings(tg);
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await tg.s3.send(new ListObjectsV2Command({ Bucket: 'astral', MaxKeys: 1, ContinuationToken: token }));
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.NextContinuationToken;
  } while (token);
  const calls = (await storeListings(tg)) - before;
  t.deepEqual(keys, VISIBLE);
  t.true(calls <= 4 * VISIBLE.length, `${VISIBLE.length} pages asked the store ${calls} times`);
});

/**
 * Listing over a real MinIO, page after page, through a proxy that records every request the gateway makes upstream:
 * continuation tokens (v2) and markers (v1) resume the upstream listing where the last page ended (StartAfter, never
 * from the start again), an unfiltered 1,000-key page costs one upstream page plus a peek of two entries, and across
 * the page boundaries the filter's guarantees hold: the reserved `_anvil/` keys and keys outside a prefix-scoped
 * credential's grants sit between pages and after the last visible key, and KeyCount, IsTruncated and the markers
 * count visible entries only, never naming a hidden one.
 */
import { CreateBucketCommand, ListObjectsCommand, ListObjectsV2Command, PutObjectCommand, S3Client, type ListObjectsV2CommandOutput } from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { Readable } from 'node:stream';
import { upstreamEnv } from './helpers/backends.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { minioOrExplain, minioProxy, startMinio, type MinioServer } from './helpers/minio.ts';
import { signedSend } from './helpers/raw.ts';

/** An HTTP proxy in front of MinIO that keeps the query of every ListObjectsV2 request it forwards. */
interface CountingProxy {
  endpoint: string;
  lists: URLSearchParams[];
  close(): Promise<void>;
}

async function countingProxy(target: MinioServer): Promise<CountingProxy> {
  const lists: URLSearchParams[] = [];
  const proxy = await minioProxy(target, (req, forward) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    if (req.method === 'GET' && url.searchParams.get('list-type') === '2') lists.push(url.searchParams);
    forward();
  });
  return { ...proxy, lists };
}

interface Ctx {
  minio: MinioServer;
  proxy: CountingProxy;
  tg: TestGateway;
  scoped: S3Client;
  scopedCreds: { accessKeyId: string; secretAccessKey: string };
}
const test = anyTest as TestFn<Ctx>;
const BUCKET = 'pages';

/** Visible to root: 2,200 keys before the reserved prefix (`A` < `_`), 300 after it (`z` > `_`). */
const BEFORE = Array.from({ length: 2200 }, (_, i) => `A${String(i).padStart(4, '0')}`);
const AFTER = Array.from({ length: 300 }, (_, i) => `z${String(i).padStart(4, '0')}`);
/** The backend's own records between them, and after everything a prefix-scoped reader may see. */
const RESERVED = Array.from({ length: 150 }, (_, i) => `_anvil/r${String(i).padStart(3, '0')}`);
/** What the prefix-scoped reader may list: grants on `A1` and `z`, so A0…, A2… and the reserved keys are hidden. */
const SCOPED = [...BEFORE.filter((k) => k.startsWith('A1')), ...AFTER];

/** Writes 1-byte objects straight to the backend, reserved keys included, as the gateway's own records are written. */
async function putAll(tg: TestGateway, keys: string[], bucket = BUCKET): Promise<void> {
  for (let i = 0; i < keys.length; i += 25) {
    await Promise.all(
      keys.slice(i, i + 25).map((key) =>
        tg.gw.backend.putObject({ bucket, key, meta: { headers: {}, userMetadata: {} }, body: Readable.from([Buffer.from('x')]) }),
      ),
    );
  }
}

/** Walks ListObjectsV2 pages with continuation tokens; the pages as returned. */
async function walkV2(s3: S3Client, input: { Bucket?: string; MaxKeys?: number; Delimiter?: string }): Promise<ListObjectsV2CommandOutput[]> {
  const pages: ListObjectsV2CommandOutput[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, ContinuationToken: token, ...input }));
    pages.push(page);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return pages;
}

const keysOf = (pages: ListObjectsV2CommandOutput[]) => pages.flatMap((p) => (p.Contents ?? []).map((c) => c.Key!));

if (minioOrExplain(test, 's3-listing-upstream')) {
  test.before(async (t) => {
    const minio = await startMinio();
    const proxy = await countingProxy(minio);
    const tg = await startTestGateway(upstreamEnv({ ...minio, endpoint: proxy.endpoint }));
    await tg.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await putAll(tg, [...BEFORE, ...RESERVED, ...AFTER]);
    await tg.gw.policy.createTenant({ name: 'acme' });
    await tg.gw.policy.assignBucket(BUCKET, 'acme', { reassign: true });
    const cred = await tg.gw.policy.createCredential({
      tenant: 'acme',
      name: 'two-prefixes',
      scopes: ['A1', 'z'].map((prefix) => ({ families: ['object:read', 'object:list'], bucket: BUCKET, prefix })),
    });
    const scopedCreds = { accessKeyId: cred.accessKeyId, secretAccessKey: cred.secretKey };
    const scoped = new S3Client({ endpoint: tg.gw.url, region: 'us-east-1', forcePathStyle: true, credentials: scopedCreds });
    t.context = { minio, proxy, tg, scoped, scopedCreds };
  });
  test.after.always(async (t) => {
    t.context.scoped?.destroy();
    await t.context.tg?.close();
    await t.context.proxy?.close();
    await t.context.minio?.close();
  });

  test.serial('1,000-key pages: one upstream page and a two-entry peek each, resumed after the last key, reserved keys skipped', async (t) => {
    const { tg, proxy } = t.context;
    proxy.lists.length = 0;
    const pages = await walkV2(tg.s3, {});
    t.deepEqual(keysOf(pages), [...BEFORE, ...AFTER]);
    t.deepEqual(pages.map((p) => [p.KeyCount, p.IsTruncated]), [[1000, true], [1000, true], [500, false]]);
    const lists = proxy.lists.filter((q) => !q.get('prefix'));
    // Pages 1 and 2: 1,000 entries and a peek of 2; page 3: up to the reserved keys, then one listing past them.
    t.deepEqual(lists.map((q) => q.get('max-keys')), ['1000', '2', '1000', '2', '1000', '1000'], JSON.stringify(lists.map(String)));
    const starts = lists.map((q) => q.get('start-after'));
    t.deepEqual(starts.slice(0, 5), [null, 'A0999', 'A0999', 'A1999', 'A1999']);
    t.true(starts[5]!.startsWith('_anvil/'), starts[5]!);
  });

  test.serial('a prefix-scoped credential pages across hidden keys with exact counts, v2 and v1, naming nothing hidden', async (t) => {
    const { scoped, scopedCreds, tg } = t.context;
    const pages = await walkV2(scoped, { MaxKeys: 500 });
    t.deepEqual(keysOf(pages), SCOPED);
    t.deepEqual(pages.map((p) => [p.KeyCount, p.IsTruncated]), [[500, true], [500, true], [300, false]]);
    const v1: string[] = [];
    let marker: string | undefined;
    let truncations = 0;
    do {
      const page = await scoped.send(new ListObjectsCommand({ Bucket: BUCKET, Marker: marker, MaxKeys: 600 }));
      v1.push(...(page.Contents ?? []).map((c) => c.Key!));
      marker = page.IsTruncated ? page.NextMarker : undefined;
      if (marker) truncations++;
    } while (marker);
    t.deepEqual(v1, SCOPED);
    t.is(truncations, 2);
    // The last A1 key is followed by hidden A2… keys and the reserved records: the page ending there is truncated only
    // because z… keys follow, and its raw answer names no hidden key.
    const res = await signedSend({
      url: tg.gw.url,
      method: 'GET',
      path: `/${BUCKET}`,
      query: { 'list-type': '2', 'start-after': 'A1499', 'max-keys': '500' },
      creds: scopedCreds,
    });
    t.is(res.status, 200, res.body);
    t.regex(res.body, /<KeyCount>500<\/KeyCount>/);
    t.regex(res.body, /<IsTruncated>true<\/IsTruncated>/);
    t.notRegex(res.body, /A0|A2|_anvil/);
    const tail = await scoped.send(new ListObjectsV2Command({ Bucket: BUCKET, StartAfter: 'z0199' }));
    t.is(tail.KeyCount, 100);
    t.false(tail.IsTruncated);
  });

  test.serial('one-entry pages with a delimiter: common prefixes once each, the reserved prefix never one of them', async (t) => {
    const { tg } = t.context;
    await tg.s3.send(new CreateBucketCommand({ Bucket: 'folders' }));
    await putAll(tg, ['A', 'B/1', 'B/2', 'C/x/y', '_anvil/r1', '_anvil/s/2', 'a/1', 'z'], 'folders');
    const pages = await walkV2(tg.s3, { Bucket: 'folders', Delimiter: '/', MaxKeys: 1 });
    const names = pages.map((p) => [...(p.Contents ?? []).map((c) => c.Key!), ...(p.CommonPrefixes ?? []).map((c) => c.Prefix!)]);
    t.deepEqual(names, [['A'], ['B/'], ['C/'], ['a/'], ['z']]);
    t.deepEqual(pages.map((p) => [p.KeyCount, p.IsTruncated]), [[1, true], [1, true], [1, true], [1, true], [1, false]]);
  });

  test('a directory object next to an object of its name (`a`, `a/`): start-after and small pages over MinIO walk exactly as the embedded store does', async (t) => {
    // MinIO answers StartAfter `a/` with MaxKeys 2 as an empty page that is not truncated; the gateway must not stop there.
    const keys = ['a', 'a/', 'a b', 'a+b', 'a%b', 'a-b', 'a.b', 'a0', 'a~', '_anvilx/y', 'zz/x'];
    const embedded = await startTestGateway();
    try {
      const bucket = 'dir-objects';
      for (const g of [t.context.tg, embedded]) {
        await g.s3.send(new CreateBucketCommand({ Bucket: bucket }));
        for (const Key of keys) await g.s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'x' }));
      }
      const walk = async (s3: S3Client, MaxKeys: number, Delimiter: string | undefined, StartAfter: string | undefined) => {
        const names: string[] = [];
        let token: string | undefined;
        do {
          const p = await s3.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys, Delimiter, StartAfter: token ? undefined : StartAfter, ContinuationToken: token }));
          names.push(...(p.Contents ?? []).map((c) => c.Key!), ...(p.CommonPrefixes ?? []).map((c) => c.Prefix!));
          token = p.IsTruncated ? p.NextContinuationToken : undefined;
        } while (token);
        return names;
      };
      for (const [maxKeys, delimiter, startAfter] of [[2, '/', 'a/'], [2, '/', undefined], [1, '/', undefined], [2, undefined, 'a/'], [3, '/', 'a/'], [1000, '/', 'a/']] as const) {
        const expected = await walk(embedded.s3, maxKeys, delimiter, startAfter);
        t.deepEqual(await walk(t.context.tg.s3, maxKeys, delimiter, startAfter), expected, `max-keys ${maxKeys}, delimiter ${delimiter}, start-after ${startAfter}`);
      }
      t.deepEqual(await walk(embedded.s3, 2, '/', 'a/'), ['a0', 'a~', 'zz/']);
    } finally {
      await embedded.close();
    }
  });
}

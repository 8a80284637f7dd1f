/**
 * Bucket configuration over MinIO with two worker processes: a tag set or CORS document changed through one worker is
 * what the next request to either worker reads (o12c F4: a per-worker cache answered the previous tag set, the deleted
 * tags and the replaced CORS rules for up to 2 s), and a bucket deleted through one worker is gone for every read on
 * both (HeadBucket answered 200 from a 5 s cache; with prefix mapping a listing answered empty). Every read comes on
 * a connection of its own, and the access lines prove both workers answered reads right after each change.
 */
process.env.ANVIL_TEST_WORKERS ??= '2';
const { CreateBucketCommand, DeleteBucketCommand, DeleteBucketTaggingCommand, GetBucketLocationCommand, HeadBucketCommand, ListObjectsV2Command, GetBucketTaggingCommand, PutBucketCorsCommand, PutBucketTaggingCommand } = await import('@aws-sdk/client-s3');
const { default: anyTest } = await import('ava');
const { request } = await import('node:http');
const { ROOT, startTestGateway } = await import('../helpers/gateway.ts');
const { directClient, minioOrExplain, startMinio, upstreamEnv } = await import('../helpers/minio.ts');
const { freshConnections, requestIdOf, servedBy } = await import('./served-by.ts');

type Gateway = Awaited<ReturnType<typeof startTestGateway>>;
type TestFn = import('ava').TestFn<{ tg: Gateway; prefixed: Gateway; minio: Awaited<ReturnType<typeof startMinio>> }>;
const test = anyTest as TestFn;

/** Reads per change, each on a new connection, sent at once so that both workers take some. */
const READS = 12;

/** A CORS preflight on a connection of its own: its status and request id. */
function preflight(url: string, path: string, origin: string): Promise<{ status: number; id: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method: 'OPTIONS', agent: false, headers: { origin, 'access-control-request-method': 'GET' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, id: String(res.headers['x-amz-request-id']) }));
    });
    req.on('error', reject);
    req.end();
  });
}

const corsFor = (origin: string) => ({ CORSRules: [{ AllowedOrigins: [origin], AllowedMethods: ['GET'] }] });

if (minioOrExplain(test, 'workers/upstream-bucket-config')) {
  test.before(async (t) => {
    const minio = await startMinio();
    const tg = await startTestGateway(upstreamEnv(minio));
    const direct = directClient(minio);
    await direct.send(new CreateBucketCommand({ Bucket: 'shared' }));
    direct.destroy();
    const prefixed = await startTestGateway(upstreamEnv(minio, { ANVIL_UPSTREAM_MAPPING: 'prefix', ANVIL_UPSTREAM_BUCKET: 'shared' }));
    t.context = { minio, tg, prefixed };
  });
  test.after.always(async (t) => {
    await t.context.tg?.close();
    await t.context.prefixed?.close();
    await t.context.minio?.close();
  });

  test('a bucket tag set put or deleted through one worker is what both workers read next', async (t) => {
    const { tg } = t.context;
    const s3 = freshConnections(tg.gw.url, ROOT);
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'tagged' }));
      const ids: string[] = [];
      const readAll = () => Promise.all(Array.from({ length: READS }, () => s3.send(new GetBucketTaggingCommand({ Bucket: 'tagged' })).catch((err: unknown) => err)));
      for (let v = 0; v < 5; v++) {
        await s3.send(new PutBucketTaggingCommand({ Bucket: 'tagged', Tagging: { TagSet: [{ Key: 'v', Value: String(v) }] } }));
        for (const answer of await readAll()) {
          ids.push(requestIdOf(answer)!);
          t.deepEqual((answer as { TagSet?: unknown }).TagSet, [{ Key: 'v', Value: String(v) }], `after tag set ${v}`);
        }
      }
      await s3.send(new DeleteBucketTaggingCommand({ Bucket: 'tagged' }));
      for (const answer of await readAll()) {
        ids.push(requestIdOf(answer)!);
        t.is((answer as Error).name, 'NoSuchTagSet', 'after DeleteBucketTagging');
      }
      t.is(new Set((await servedBy(tg.logs, ids)).values()).size, 2, 'both workers answered reads after the changes');
    } finally {
      s3.destroy();
    }
  });

  test('CORS rules replaced through one worker decide the next preflight on both workers', async (t) => {
    const { tg } = t.context;
    const s3 = freshConnections(tg.gw.url, ROOT);
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'browsed' }));
      const ids: string[] = [];
      for (let v = 0; v < 5; v++) {
        const origin = `https://app-${v}.example`;
        await s3.send(new PutBucketCorsCommand({ Bucket: 'browsed', CORSConfiguration: corsFor(origin) }));
        const answers = await Promise.all(
          Array.from({ length: READS }, (_, i) => preflight(tg.gw.url, '/browsed/k', i % 2 === 0 || v === 0 ? origin : `https://app-${v - 1}.example`)),
        );
        answers.forEach((a, i) => {
          ids.push(a.id);
          const current = i % 2 === 0 || v === 0;
          t.is(a.status, current ? 200 : 403, `rules ${v}: preflight for the ${current ? 'current' : 'replaced'} origin`);
        });
      }
      t.is(new Set((await servedBy(tg.logs, ids)).values()).size, 2, 'both workers answered preflights after the changes');
    } finally {
      s3.destroy();
    }
  });

  for (const mapping of ['bucket', 'prefix'] as const) {
    test(`${mapping} mapping: a bucket deleted through one worker is gone for the next read on both workers`, async (t) => {
      const tg = mapping === 'bucket' ? t.context.tg : t.context.prefixed;
      const s3 = freshConnections(tg.gw.url, ROOT);
      try {
        const ids: string[] = [];
        for (let round = 0; round < 3; round++) {
          const Bucket = `gone-${round}`;
          await s3.send(new CreateBucketCommand({ Bucket }));
          // Both workers see the bucket (and remember it) first.
          for (const answer of await Promise.all(Array.from({ length: READS }, () => s3.send(new HeadBucketCommand({ Bucket }))))) ids.push(requestIdOf(answer)!);
          await Promise.all(Array.from({ length: READS }, () => s3.send(new ListObjectsV2Command({ Bucket }))));
          await s3.send(new DeleteBucketCommand({ Bucket }));
          const reads = [
            () => s3.send(new HeadBucketCommand({ Bucket })),
            () => s3.send(new GetBucketLocationCommand({ Bucket })),
            () => s3.send(new ListObjectsV2Command({ Bucket })),
            () => s3.send(new GetBucketTaggingCommand({ Bucket })),
          ];
          const answers = await Promise.all(Array.from({ length: READS }, (_, i) => reads[i % reads.length]!().then((ok) => ok, (err: unknown) => err)));
          answers.forEach((answer, i) => {
            ids.push(requestIdOf(answer)!);
            const status = (answer as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
            t.is(status, 404, `round ${round}, read ${i % reads.length}: ${(answer as Error).name}`);
          });
        }
        t.is(new Set((await servedBy(tg.logs, ids)).values()).size, 2, 'both workers answered');
      } finally {
        s3.destroy();
      }
    });
  }
}

/**
 * A worker killed with SIGKILL while it writes, under load from 12 concurrent writers: every PUT the gateway
 * acknowledged reads back byte for byte, the port keeps answering (the other worker serves, the primary forks a
 * replacement), the dead worker's temp files are removed, and the data directory, reopened by the embedded store after
 * the gateway stops, holds every acknowledged object and no torn one.
 */
process.env.ANVIL_TEST_WORKERS ??= '2';
const { GetObjectCommand, CreateBucketCommand, ListObjectsV2Command, PutObjectCommand, S3Client } = await import('@aws-sdk/client-s3');
const { default: test } = await import('ava');
const { createHash } = await import('node:crypto');
const { readdirSync, readFileSync } = await import('node:fs');
const { join } = await import('node:path');
const { NodeHttpHandler } = await import('@smithy/node-http-handler');
const { bodyBytes, ROOT, startTestGateway } = await import('../helpers/gateway.ts');
const { openEmbeddedStore } = await import('../../storage/index.ts');

/** The pids of `parent`'s worker processes (Linux /proc; tsx may have started an esbuild child as well). */
function childrenOf(parent: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Field 4 of /proc/PID/stat is the parent pid; the command name (field 2) is parenthesised and may hold spaces.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== parent) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('gateway/main.ts')) pids.push(Number(entry));
    } catch {
      // the process ended while the directory was read
    }
  }
  return pids;
}

async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The body written under `key`: its size from the key (inline, blob, several 1 MiB batches), its bytes from its hash. */
function bodyFor(key: string, n: number): Buffer {
  const size = [700, 150 * 1024, 3 * 1024 * 1024 + 17][n % 3]!;
  const seed = createHash('sha256').update(key).digest();
  const body = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += seed.length) seed.copy(body, i);
  return body;
}

test('SIGKILL of a worker under write load: every acknowledged PUT intact, the port answers, the worker is replaced', async (t) => {
  const tg = await startTestGateway({ ANVIL_ACCESS_LOG: 'false' });
  let closed = false;
  try {
    const listening = tg.logs.map((l) => JSON.parse(l) as { msg?: string; pid?: number }).find((l) => l.msg === 'listening');
    const primary = listening?.pid;
    t.truthy(primary, 'the primary logs its pid');
    const workers = await until('two workers', () => childrenOf(primary!).length === 2 && childrenOf(primary!));
    await tg.s3.send(new CreateBucketCommand({ Bucket: 'load' }));

    // One attempt per request: a PUT counts as acknowledged only if this request got its 200. A request that gets no
    // answer at all fails after a minute (a connection lost inside the gateway, not a slow one) and fails the test.
    const s3 = new S3Client({
      endpoint: tg.gw.url,
      region: tg.config.region,
      credentials: ROOT,
      forcePathStyle: true,
      maxAttempts: 1,
      requestHandler: new NodeHttpHandler({ requestTimeout: 60_000 }),
    });
    const acknowledged = new Map<string, number>();
    const failed: string[] = [];
    let stop = false;
    let next = 0;
    const writer = async () => {
      while (!stop) {
        const n = next++;
        const key = `obj-${n}`;
        try {
          await s3.send(new PutObjectCommand({ Bucket: 'load', Key: key, Body: bodyFor(key, n) }));
          acknowledged.set(key, n);
        } catch (err) {
          failed.push(`${key}: ${(err as Error).message}`);
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    };
    const load = Array.from({ length: 12 }, writer);

    await until('40 acknowledged writes', () => acknowledged.size >= 40);
    // Kill the worker while it has a body half-written to its temp file, if one shows up in time (it nearly always does).
    const tmp = join(tg.dataDir, 'tmp');
    const writing = () => workers.find((pid) => readdirSync(tmp).some((f) => f.startsWith(`${pid}.`)));
    const victim = await until('a worker with a write in flight', writing, 30_000).catch(() => workers[0]!);
    const ackedBefore = acknowledged.size;
    process.kill(victim, 'SIGKILL');

    const replacement = await until('a replacement worker', () => {
      const now = childrenOf(primary!);
      return now.length === 2 && !now.includes(victim) && now.find((pid) => !workers.includes(pid));
    });
    t.truthy(replacement);
    await until('40 more acknowledged writes after the kill', () => acknowledged.size >= ackedBefore + 40);
    stop = true;
    await Promise.all(load);
    s3.destroy();
    t.log(`${acknowledged.size} acknowledged, ${failed.length} failed: ${[...new Set(failed.map((f) => f.split(': ')[1]))].join(', ')}`);
    t.deepEqual(failed.filter((f) => /timed? ?out/i.test(f)), [], 'every request was answered or its connection reset');
    const death = (l: string) => l.includes('"msg":"worker exited; starting another"') && l.includes(`"pid":${victim}`);
    t.true(tg.logs.some(death), 'the primary logged the death');
    await until('the dead worker\'s temp files removed', () => !readdirSync(tmp).some((f) => f.startsWith(`${victim}.`)));

    // Through the gateway: every acknowledged object, byte for byte; every listed key holds the body written for it.
    const listed: string[] = [];
    for (let token: string | undefined, first = true; first || token; first = false) {
      const page = await tg.s3.send(new ListObjectsV2Command({ Bucket: 'load', ContinuationToken: token }));
      listed.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.NextContinuationToken;
    }
    for (const key of acknowledged.keys()) t.true(listed.includes(key), `${key} is listed`);
    for (const key of listed) {
      const n = Number(key.slice('obj-'.length));
      const got = await bodyBytes((await tg.s3.send(new GetObjectCommand({ Bucket: 'load', Key: key }))).Body);
      t.true(got.equals(bodyFor(key, n)), `${key} reads back whole`);
    }

    // The data directory once the gateway has stopped: the same objects, nothing left in tmp.
    await tg.gw.close();
    closed = true;
    const store = await openEmbeddedStore({ dataDir: tg.dataDir });
    try {
      t.deepEqual(readdirSync(tmp), []);
      for (const [key, n] of acknowledged) {
        const read = await store.getObject({ bucket: 'load', key });
        t.true((await bodyBytes(read.body)).equals(bodyFor(key, n)), `${key} intact on disk`);
      }
    } finally {
      await store.close();
    }
  } finally {
    if (!closed) await tg.gw.close();
    await tg.close();
  }
});

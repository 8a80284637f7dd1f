/**
 * What two worker processes must agree on although each keeps its own memory, checked with requests that provably
 * reached both workers (every access line names its worker's pid; each request comes on a connection of its own, and
 * the kernel hands connections to whichever worker accepts first):
 *   - If-None-Match: * PUTs of one key racing on both workers: exactly one wins, and its body is the one stored;
 *   - a credential revoked through one worker is refused by every worker on the next request, with a denial row
 *     written by each worker that refused;
 *   - /_anvil/metrics, answered by one worker, counts the requests of both;
 *   - a first start without ANVIL_ROOT_* creates one root credential (printed once), which both workers accept; one
 *     whose workers fail to start takes the credential it created back, as a failed start in one process does.
 */
process.env.ANVIL_TEST_WORKERS ??= '2';
const { CreateBucketCommand, GetObjectCommand, ListBucketsCommand, ListObjectsV2Command, PutObjectCommand } = await import('@aws-sdk/client-s3');
const { default: test } = await import('ava');
const { execFile } = await import('node:child_process');
const { mkdtempSync, rmSync } = await import('node:fs');
const { createServer } = await import('node:net');
const { tmpdir } = await import('node:os');
const { join } = await import('node:path');
const { denials, ok } = await import('../helpers/admin.ts');
const { bodyBytes, ROOT, startTestGateway } = await import('../helpers/gateway.ts');
const { startGatewayProcess } = await import('../helpers/gateway-process.ts');
const { freshConnections, requestIdOf, servedBy } = await import('./served-by.ts');

type AddressInfo = import('node:net').AddressInfo;

/** Runs `send` (each call on a new connection) until two distinct workers have answered, at most `max` times. */
async function onBothWorkers(logs: string[], send: () => Promise<unknown>, max = 200): Promise<Set<number>> {
  const ids: string[] = [];
  for (let i = 0; i < max; i += 8) {
    const answers = await Promise.all(Array.from({ length: 8 }, () => send().catch((err: unknown) => err)));
    ids.push(...answers.map(requestIdOf).filter((id): id is string => id !== undefined));
    const pids = new Set((await servedBy(logs, ids)).values());
    if (pids.size >= 2) return pids;
  }
  throw new Error(`${max} requests on new connections all reached one worker`);
}

test('If-None-Match: * PUTs of one key racing on both workers: exactly one wins, and its body is stored', async (t) => {
  const tg = await startTestGateway({ ANVIL_METRICS_TOKEN: 'metrics-token-0123456789abcdef' });
  const racers = Array.from({ length: 6 }, () => freshConnections(tg.gw.url, ROOT));
  try {
    await tg.s3.send(new CreateBucketCommand({ Bucket: 'race' }));
    const ids: string[] = [];
    let puts = 0;
    for (let k = 0; k < 16; k++) {
      const key = `key-${k}`;
      const answers = await Promise.all(
        racers.map((s3, r) =>
          s3.send(new PutObjectCommand({ Bucket: 'race', Key: key, Body: `racer ${r} of ${key}`, IfNoneMatch: '*' })).then(
            (ok) => ({ won: true, r, id: requestIdOf(ok), status: 200 }),
            (err: Error & { $metadata?: { httpStatusCode?: number } }) => ({ won: false, r, id: requestIdOf(err), status: err.$metadata?.httpStatusCode, name: err.name }),
          ),
        ),
      );
      puts += answers.length;
      ids.push(...answers.map((a) => a.id!));
      const winners = answers.filter((a) => a.won);
      t.is(winners.length, 1, `${key}: ${JSON.stringify(answers)}`);
      for (const lost of answers.filter((a) => !a.won)) t.true(lost.status === 412 || lost.status === 409, `${key}: ${JSON.stringify(lost)}`);
      const stored = await bodyBytes((await tg.s3.send(new GetObjectCommand({ Bucket: 'race', Key: key }))).Body);
      t.is(stored.toString(), `racer ${winners[0]?.r} of ${key}`);
    }
    const pids = new Set((await servedBy(tg.logs, ids)).values());
    t.is(pids.size, 2, 'the racing PUTs reached both workers');

    // Metrics, scraped through whichever worker takes the connection, count every worker's PUTs.
    const scraped = await (await fetch(`${tg.gw.url}/_anvil/metrics`, { headers: { authorization: 'Bearer metrics-token-0123456789abcdef' } })).text();
    const counted = scraped
      .split('\n')
      .filter((l) => l.startsWith('anvil_requests_total{') && l.includes('operation="PutObject"'))
      .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
    t.is(counted, puts, scraped.split('\n').filter((l) => l.includes('PutObject')).join('\n'));
  } finally {
    for (const s3 of racers) s3.destroy();
    await tg.close();
  }
});

test('a credential revoked through one worker is refused by both on the next request, each writing its denial rows', async (t) => {
  const tg = await startTestGateway();
  try {
    await ok(tg, ROOT, 'POST', '/tenants', { name: 'acme' });
    const app = await ok(tg, ROOT, 'POST', '/credentials', { tenant: 'acme', name: 'lister', scopes: [{ families: ['object:list', 'bucket:admin'], bucket: '*' }] });
    const creds = { accessKeyId: app.accessKeyId as string, secretAccessKey: app.secretKey as string };
    const s3 = freshConnections(tg.gw.url, creds);
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'kept' })); // acme's bucket
      // Both workers have the credential in their caches.
      const warm = await onBothWorkers(tg.logs, () => s3.send(new ListObjectsV2Command({ Bucket: 'kept' })));
      t.is(warm.size, 2);

      await ok(tg, ROOT, 'POST', `/credentials/${creds.accessKeyId}/revoke`);
      const ids: string[] = [];
      for (let i = 0; i < 48; i++) {
        const err = await t.throwsAsync(s3.send(new ListObjectsV2Command({ Bucket: 'kept' })));
        t.is((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, 403, err?.message);
        ids.push(requestIdOf(err)!);
      }
      const refusedBy = new Set((await servedBy(tg.logs, ids)).values());
      t.deepEqual([...refusedBy].sort(), [...warm].sort(), 'both workers refused the revoked credential');

      // Each refusal is a denial row, written by the worker that refused it.
      const rows = (await denials(tg)).filter((d) => ids.includes(d.requestId));
      t.is(rows.length, ids.length);
      const nodes = new Set(rows.map((d) => Number(d.node?.split(':').at(-1))));
      t.deepEqual([...nodes].sort(), [...refusedBy].sort());
    } finally {
      s3.destroy();
    }
  } finally {
    await tg.close();
  }
});

/** `gateway/main.ts` with two workers on a port another server holds: its exit status and what it printed. */
function startOnBusyPort(dataDir: string, port: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
      cwd: join(import.meta.dirname, '../..'),
      env: { PATH: process.env.PATH ?? '', ANVIL_DATA_DIR: dataDir, ANVIL_WORKERS: '2', ANVIL_SPACE_RESERVE_MB: '8', ANVIL_ADDRESS: `127.0.0.1:${port}` },
      timeout: 120_000,
    }, (_err, stdout, stderr) => resolve({ code: child.exitCode, output: `${stdout}${stderr}` }));
  });
}

test('a first start without ANVIL_ROOT_* creates one root credential, shown once, that both workers accept', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'anvil-test-'));
  // A first start whose workers cannot listen fails after the primary created the root credential: it takes it back.
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  const failed = await startOnBusyPort(dataDir, (holder.address() as AddressInfo).port);
  holder.close();
  t.is(failed.code, 1, failed.output);
  t.regex(failed.output, /anvil: cannot start: a worker process failed/);
  t.notRegex(failed.output, /AWS_SECRET_ACCESS_KEY/, 'the credential was taken back, so its secret is not shown');

  const gw = await startGatewayProcess({ ANVIL_DATA_DIR: dataDir, ANVIL_WORKERS: '2', ANVIL_SPACE_RESERVE_MB: '8' });
  try {
    // The banner goes to stderr and the listening line to stdout: the one may arrive after the other.
    for (let i = 0; i < 100 && !/AWS_SECRET_ACCESS_KEY=\S+/.test(gw.output()); i++) await new Promise((r) => setTimeout(r, 100));
    const shown = gw.output().match(/AWS_ACCESS_KEY_ID=(\S+)\n\s+AWS_SECRET_ACCESS_KEY=(\S+)/g) ?? [];
    t.is(shown.length, 1, gw.output());
    const [, accessKeyId, secretAccessKey] = /AWS_ACCESS_KEY_ID=(\S+)\n\s+AWS_SECRET_ACCESS_KEY=(\S+)/.exec(shown[0]!)!;
    const s3 = freshConnections(gw.url, { accessKeyId: accessKeyId!, secretAccessKey: secretAccessKey! });
    const lines = () => gw.stdoutLines();
    try {
      const ids: string[] = [];
      for (let i = 0; i < 200; i += 8) {
        const answers = await Promise.all(Array.from({ length: 8 }, () => s3.send(new ListBucketsCommand({}))));
        ids.push(...answers.map((a) => a.$metadata.requestId!));
        if (new Set((await servedBy(lines(), ids)).values()).size === 2) break;
      }
      t.is(new Set((await servedBy(lines(), ids)).values()).size, 2, 'both workers accepted the one root credential');
    } finally {
      s3.destroy();
    }
  } finally {
    await gw.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

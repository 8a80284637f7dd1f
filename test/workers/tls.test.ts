/**
 * HTTPS with two worker processes: each worker serves the certificate, SIGHUP to the primary reloads it in every
 * worker, a pair that does not load is refused by every worker (the old one keeps serving), and a change of the
 * files is picked up by each worker's own watcher. Which worker answered is read from the access line of the request.
 */
process.env.ANVIL_TEST_WORKERS ??= '2';
const { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } = await import('@aws-sdk/client-s3');
const { NodeHttpHandler } = await import('@smithy/node-http-handler');
const { default: test } = await import('ava');
const { randomBytes } = await import('node:crypto');
const { copyFileSync, mkdtempSync, readFileSync, rmSync } = await import('node:fs');
const https = await import('node:https');
const { tmpdir } = await import('node:os');
const { join } = await import('node:path');
const { bodyBytes, ROOT, startTestGateway } = await import('../helpers/gateway.ts');
const { makeCertificates } = await import('../helpers/tls.ts');

interface Line {
  msg?: string;
  pid?: number;
  requestId?: string;
  reason?: string;
}

const parsed = (logs: string[], from = 0): Line[] => logs.slice(from).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line);

async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** One health request on a new TLS connection: the subject CN the server presented and the request id. */
function probe(url: string, ca: Buffer): Promise<{ cn: string; requestId: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(`${url}/_anvil/health/live`, { ca, agent: false, servername: 'localhost' }, (res) => {
      const cn = String((res.socket as import('node:tls').TLSSocket).getPeerCertificate().subject.CN);
      res.resume();
      res.on('end', () => resolve({ cn, requestId: String(res.headers['x-amz-request-id']) }));
    });
    req.on('error', reject);
  });
}

/** Probes on new connections until both workers have answered: the certificate names each worker served. */
async function servedByEachWorker(url: string, ca: Buffer, logs: string[]): Promise<Map<number, Set<string>>> {
  const cnOf = new Map<string, string>();
  for (let i = 0; i < 25; i++) {
    for (const p of await Promise.all(Array.from({ length: 8 }, () => probe(url, ca)))) cnOf.set(p.requestId, p.cn);
    const byPid = new Map<number, Set<string>>();
    const lines = await until('the access lines of the probes', () => {
      const found = parsed(logs).filter((l) => l.msg === 'request' && l.requestId !== undefined && cnOf.has(l.requestId));
      return found.length === cnOf.size && found;
    });
    for (const l of lines) byPid.set(l.pid!, (byPid.get(l.pid!) ?? new Set()).add(cnOf.get(l.requestId!)!));
    if (byPid.size === 2) return byPid;
  }
  throw new Error('200 probes on new connections all reached one worker');
}

/** Waits until both workers have logged `msg` (with `reason`, when given) after log line `from`. */
const loggedByBoth = (logs: string[], from: number, msg: RegExp, reason?: string) =>
  until(`"${msg.source}" from both workers`, () => {
    const pids = new Set(parsed(logs, from).filter((l) => msg.test(l.msg ?? '') && (reason === undefined || l.reason === reason)).map((l) => l.pid));
    return pids.size === 2 && pids;
  });

const names = (served: Map<number, Set<string>>) => [...served.values()].map((s) => [...s].sort().join(','));

test('two workers over HTTPS: SIGHUP reloads every worker, a broken pair is refused by all, file changes are seen by each', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'anvil-tls-'));
  await makeCertificates(dir);
  copyFileSync(join(dir, 'one.pem'), join(dir, 'cert.pem'));
  copyFileSync(join(dir, 'one.key'), join(dir, 'key.pem'));
  const ca = readFileSync(join(dir, 'ca.pem'));
  const tg = await startTestGateway({ ANVIL_TLS_CERT: join(dir, 'cert.pem'), ANVIL_TLS_KEY: join(dir, 'key.pem') });
  const s3 = new S3Client({
    endpoint: tg.gw.url, region: 'us-east-1', credentials: ROOT, forcePathStyle: true,
    requestHandler: new NodeHttpHandler({ httpsAgent: new https.Agent({ ca }) }),
  });
  try {
    t.regex(tg.gw.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    await s3.send(new CreateBucketCommand({ Bucket: 'secure' }));
    const body = randomBytes(3 * 1024 * 1024 + 17);
    await s3.send(new PutObjectCommand({ Bucket: 'secure', Key: 'big.bin', Body: body }));
    t.true((await bodyBytes((await s3.send(new GetObjectCommand({ Bucket: 'secure', Key: 'big.bin' }))).Body)).equals(body));
    t.deepEqual(names(await servedByEachWorker(tg.gw.url, ca, tg.logs)), ['anvil-one', 'anvil-one']);

    // SIGHUP to the primary reaches every worker.
    let mark = tg.logs.length;
    tg.gw.reloadTls();
    await loggedByBoth(tg.logs, mark, /^TLS certificate loaded$/, 'SIGHUP');

    // A certificate without its key: every worker refuses it and keeps the old pair.
    mark = tg.logs.length;
    copyFileSync(join(dir, 'two.pem'), join(dir, 'cert.pem'));
    tg.gw.reloadTls();
    await loggedByBoth(tg.logs, mark, /^TLS certificate reload failed/, 'SIGHUP');
    t.deepEqual(names(await servedByEachWorker(tg.gw.url, ca, tg.logs)), ['anvil-one', 'anvil-one']);

    // The matching key arrives: each worker's watcher loads the new pair, no signal needed.
    mark = tg.logs.length;
    copyFileSync(join(dir, 'two.key'), join(dir, 'key.pem'));
    await loggedByBoth(tg.logs, mark, /^TLS certificate loaded$/, 'file changed');
    t.deepEqual(names(await servedByEachWorker(tg.gw.url, ca, tg.logs)), ['anvil-two', 'anvil-two']);
  } finally {
    s3.destroy();
    await tg.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

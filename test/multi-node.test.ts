/**
 * Several gateway nodes sharing one policy database: two gateway processes with separate data directories, one real
 * PostgreSQL, one real MinIO. What one node changes is in force on the other within CONSISTENCY_BOUND_MS (the
 * README's bound), denials and the watch feed are every node's, a node may die at any moment without losing an
 * acknowledged object or stopping the others, and without its database a node refuses to guess (503).
 */
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import anyTest, { type TestFn } from 'ava';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { remoteTransport, type AdminTransport, type ServerEvent } from '../gateway/cli/transport.ts';
import { CONSISTENCY_BOUND_MS } from '../policy/index.ts';
import { startGatewayProcess, type GatewayProcess } from './helpers/gateway-process.ts';
import { ROOT } from './helpers/gateway.ts';
import { minioOrExplain, startMinio, type MinioServer } from './helpers/minio.ts';
import { postgresOrExplain, sharedPostgres } from './helpers/postgres.ts';

interface Ctx {
  a: GatewayProcess;
  b: GatewayProcess;
  minio: MinioServer;
  dirs: string[];
  url: string;
  admin: { a: AdminTransport; b: AdminTransport };
  app: { accessKeyId: string; secretAccessKey: string };
}
const test = anyTest as TestFn<Ctx>;
const REPO = join(import.meta.dirname, '..');
const REGION = 'us-east-1';

function s3(node: GatewayProcess, credentials: { accessKeyId: string; secretAccessKey: string } = ROOT): S3Client {
  return new S3Client({ endpoint: node.url, region: REGION, credentials, forcePathStyle: true, maxAttempts: 1 });
}

async function status(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
    return 200;
  } catch (error) {
    return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 0;
  }
}

async function text(client: S3Client, bucket: string, key: string): Promise<string> {
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return res.Body!.transformToString();
}

/** Waits out the promised bound, and a little more for a loaded machine's timers. */
const afterBound = () => new Promise((resolve) => setTimeout(resolve, CONSISTENCY_BOUND_MS + 100));

if (postgresOrExplain(test, 'multi-node') && minioOrExplain(test, 'multi-node')) {
  test.before(async (t) => {
    const [postgres, minio] = await Promise.all([sharedPostgres(), startMinio()]);
    const url = await postgres.createDatabase();
    const masterKey = randomBytes(32).toString('base64');
    const dirs = [mkdtempSync(join(tmpdir(), 'anvil-node-a-')), mkdtempSync(join(tmpdir(), 'anvil-node-b-'))];
    const env = (name: string, dataDir: string) => ({
      ANVIL_DATA_DIR: dataDir,
      ANVIL_NODE_NAME: name,
      ANVIL_POLICY_DATABASE: url,
      ANVIL_MASTER_KEY: masterKey,
      ANVIL_ROOT_ACCESS_KEY: ROOT.accessKeyId,
      ANVIL_ROOT_SECRET_KEY: ROOT.secretAccessKey,
      ANVIL_BACKEND: 'upstream',
      ANVIL_UPSTREAM_ENDPOINT: minio.endpoint,
      ANVIL_UPSTREAM_ACCESS_KEY: minio.accessKey,
      ANVIL_UPSTREAM_SECRET_KEY: minio.secretKey,
      ANVIL_DENIALS_STDOUT: 'true',
    });
    // Both nodes start at once: migrations and the root credential are decided once, under the database's locks.
    const started = await Promise.allSettled([startGatewayProcess(env('node-a', dirs[0]!)), startGatewayProcess(env('node-b', dirs[1]!))]);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      // The node that did start must not outlive the test (its process would keep the worker alive).
      for (const s of started) if (s.status === 'fulfilled') await s.value.stop();
      throw failed.reason;
    }
    const [a, b] = started.map((s) => (s as PromiseFulfilledResult<GatewayProcess>).value) as [GatewayProcess, GatewayProcess];
    const admin = {
      a: remoteTransport({ endpoint: a.url, credentials: ROOT, region: REGION }),
      b: remoteTransport({ endpoint: b.url, credentials: ROOT, region: REGION }),
    };
    await admin.a.call('POST', '/tenants', { body: { name: 'acme' } });
    for (const bucket of ['plain', 'governed']) {
      await s3(a).send(new CreateBucketCommand({ Bucket: bucket }));
      await admin.b.call('PUT', `/buckets/${bucket}/owner`, { body: { tenant: 'acme', reassign: true } });
    }
    const made = await admin.a.call('POST', '/credentials', {
      body: { tenant: 'acme', name: 'app', scopes: [{ families: ['object:read', 'object:write', 'object:list'], bucket: '*' }] },
    });
    t.context = { a, b, minio, dirs, url, admin, app: { accessKeyId: made.accessKeyId, secretAccessKey: made.secretKey } };
  });

  test.after.always(async (t) => {
    await Promise.all([t.context.a?.stop(), t.context.b?.stop()]);
    await t.context.minio?.close();
    for (const dir of t.context.dirs ?? []) rmSync(dir, { recursive: true, force: true });
    await (await sharedPostgres()).close();
  });

  test.serial('a credential revoked through node A is refused by node B within the bound', async (t) => {
    const { a, b, admin } = t.context;
    const made = await admin.a.call('POST', '/credentials', { body: { tenant: 'acme', name: 'doomed', scopes: [{ families: ['object:read', 'object:write'], bucket: 'plain' }] } });
    const creds = { accessKeyId: made.accessKeyId, secretAccessKey: made.secretKey };
    await s3(a, creds).send(new PutObjectCommand({ Bucket: 'plain', Key: 'r.txt', Body: 'r' }));
    // Node B has the credential cached now.
    for (let i = 0; i < 3; i++) t.is(await text(s3(b, creds), 'plain', 'r.txt'), 'r');
    await admin.a.call('POST', `/credentials/${made.accessKeyId}/revoke`, { body: {} });
    await afterBound();
    t.is(await status(s3(b, creds).send(new GetObjectCommand({ Bucket: 'plain', Key: 'r.txt' }))), 403);
    // A rotation and a tenant disable reach B the same way.
    const other = await admin.a.call('POST', '/credentials', { body: { tenant: 'acme', name: 'rotated', scopes: [{ families: ['object:read'], bucket: 'plain' }] } });
    const old = { accessKeyId: other.accessKeyId, secretAccessKey: other.secretKey };
    t.is(await text(s3(b, old), 'plain', 'r.txt'), 'r');
    const rotated = await admin.b.call('POST', `/credentials/${other.accessKeyId}/rotate`, { body: {} });
    await afterBound();
    t.is(await status(s3(a, old).send(new GetObjectCommand({ Bucket: 'plain', Key: 'r.txt' }))), 403);
    const fresh = { accessKeyId: other.accessKeyId, secretAccessKey: rotated.secretKey };
    t.is(await text(s3(a, fresh), 'plain', 'r.txt'), 'r');
    await admin.b.call('POST', '/tenants/acme/disable', { body: {} });
    await afterBound();
    t.is(await status(s3(a, fresh).send(new GetObjectCommand({ Bucket: 'plain', Key: 'r.txt' }))), 403);
    await admin.b.call('POST', '/tenants/acme/enable', { body: {} });
    await afterBound();
    t.is(await text(s3(a, fresh), 'plain', 'r.txt'), 'r');
  });

  test.serial('a tuple deleted through node B stops a read through node A within the bound', async (t) => {
    const { a, admin, app } = t.context;
    await admin.a.call('PUT', '/buckets/governed/governance', { body: { governed: true } });
    await s3(a).send(new PutObjectCommand({ Bucket: 'governed', Key: 'doc.txt', Body: 'doc' }));
    const tuple = `object:governed/doc.txt#reader@app:${app.accessKeyId}`;
    await admin.a.call('POST', '/tuples', { body: { tenant: 'acme', updates: [{ op: 'touch', tuple }], reason: 'share' } });
    await afterBound();
    for (let i = 0; i < 3; i++) t.is(await text(s3(a, app), 'governed', 'doc.txt'), 'doc'); // warm on A
    await admin.b.call('POST', '/tuples', { body: { tenant: 'acme', updates: [{ op: 'delete', tuple }], reason: 'unshare' } });
    await afterBound();
    t.is(await status(s3(a, app).send(new GetObjectCommand({ Bucket: 'governed', Key: 'doc.txt' }))), 403);
  });

  test.serial('a lockdown and a revoke --all made through node A are in force on node B within the bound; the access audit on either node sees both nodes', async (t) => {
    const { a, b, admin } = t.context;
    await admin.a.call('POST', '/tenants', { body: { name: 'beta' } });
    await s3(a).send(new CreateBucketCommand({ Bucket: 'beta-data' }));
    await admin.a.call('PUT', '/buckets/beta-data/owner', { body: { tenant: 'beta', reassign: true } });
    await s3(a).send(new PutObjectCommand({ Bucket: 'beta-data', Key: 'x.txt', Body: 'x' }));
    const keys: Array<{ accessKeyId: string; secretAccessKey: string }> = [];
    for (const name of ['one', 'two']) {
      const made = await admin.a.call('POST', '/credentials', { body: { tenant: 'beta', name, scopes: [{ families: ['object:read'], bucket: 'beta-data' }] } });
      keys.push({ accessKeyId: made.accessKeyId as string, secretAccessKey: made.secretKey as string });
    }
    const read = (node: GatewayProcess, creds: (typeof keys)[number], agent?: string) =>
      status(new S3Client({ endpoint: node.url, region: REGION, credentials: creds, forcePathStyle: true, maxAttempts: 1, customUserAgent: agent }).send(new GetObjectCommand({ Bucket: 'beta-data', Key: 'x.txt' })));
    // One key used through each node with another user agent: one job's key shared, visible only if both nodes' records are one.
    t.is(await read(a, keys[0]!, 'job-on-a/1'), 200);
    for (let i = 0; i < 3; i++) t.is(await read(b, keys[0]!, 'job-on-b/1'), 200); // warm on B
    t.is(await read(b, keys[1]!), 200);
    const report = await admin.b.call('POST', '/audit/check', { body: { tenant: 'beta', maxAgents: 1 } });
    const shared = report.findings.filter((f: { check: string }) => f.check === 'shared-credential');
    t.deepEqual(shared.map((f: { subject: string }) => f.subject), [keys[0]!.accessKeyId]);
    t.regex(shared[0].message, /2 user agent\(s\)/);
    const runs = await admin.a.call('GET', '/audit/checks', { query: { tenant: 'beta' } });
    t.is(runs.runs.length, 1, 'the run recorded on B is in the history A shows');

    // A console session signed in on A is a session on B too (its key comes from the master key both nodes hold).
    const signIn = await fetch(`${a.url}/_anvil/console/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ accessKeyId: keys[1]!.accessKeyId, secretKey: keys[1]!.secretAccessKey }) });
    t.is(signIn.status, 200);
    const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
    const session = () => fetch(`${b.url}/_anvil/console/api/session`, { headers: { cookie } }).then((r) => r.status);
    t.is(await session(), 200);

    const locked = await admin.a.call('POST', '/tenants/beta/lockdown', { body: { reason: 'key leaked' } });
    t.like(locked, { lockedDown: true, cutOff: { credentials: 2 } });
    await afterBound();
    for (const creds of keys) t.is(await read(b, creds), 403);
    t.is(await session(), 401, 'the console session ends with the lockdown on the other node too');
    await admin.b.call('POST', '/tenants/beta/lockdown/lift', { body: { reason: 'contained' } });
    await afterBound();
    for (const creds of keys) t.is(await read(a, creds), 200);
    for (const creds of keys) t.is(await read(b, creds), 200); // warm on B again

    const revoked = await admin.a.call('POST', '/tenants/beta/credentials/revoke', { body: {} });
    t.deepEqual([...revoked.revoked].sort(), keys.map((k) => k.accessKeyId).sort());
    await afterBound();
    for (const creds of keys) t.is(await read(b, creds), 403);
  });

  test.serial('a console session signed out on node A is refused by node B within the bound, its copied cookie included', async (t) => {
    const { a, b, admin } = t.context;
    const made = await admin.a.call('POST', '/credentials', { body: { tenant: 'acme', name: 'console-user', scopes: [{ families: ['admin'], bucket: 'plain' }] } });
    const consoleCall = (node: GatewayProcess, method: string, path: string, headers: Record<string, string> = {}, body?: unknown) =>
      fetch(`${node.url}/_anvil/console${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const signIn = await consoleCall(a, 'POST', '/api/session', {}, { accessKeyId: made.accessKeyId, secretKey: made.secretKey });
    t.is(signIn.status, 200);
    const { csrf } = (await signIn.json()) as { csrf: string };
    const copied = { cookie: signIn.headers.get('set-cookie')!.split(';')[0]! };
    // Node B accepts the session (same master key) and has its answer cached now.
    for (let i = 0; i < 3; i++) t.is((await consoleCall(b, 'GET', '/api/v1/whoami', copied)).status, 200);
    t.is((await consoleCall(a, 'DELETE', '/api/session', { ...copied, 'x-anvil-csrf': csrf })).status, 200);
    t.is((await consoleCall(a, 'GET', '/api/session', copied)).status, 401, 'refused at once on the node that signed it out');
    await afterBound();
    t.is((await consoleCall(b, 'GET', '/api/v1/whoami', copied)).status, 401);
    t.is((await consoleCall(b, 'GET', '/api/session', copied)).status, 401);
  });

  test.serial('a denial caused on node A is listed by `anvil denials` pointed at node B, and A printed it to stdout', async (t) => {
    const { a, b, app } = t.context;
    const key = `nope-${randomBytes(4).toString('hex')}.txt`;
    t.is(await status(s3(a, app).send(new GetObjectCommand({ Bucket: 'governed', Key: key }))), 403);
    const listed = async () => {
      const out = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, ['--import', 'tsx', 'gateway/cli/main.ts', '--endpoint', b.url, 'denials', '--json', '--bucket', 'governed', '--key-prefix', key], {
          cwd: REPO,
          env: { PATH: process.env.PATH ?? '', AWS_ACCESS_KEY_ID: ROOT.accessKeyId, AWS_SECRET_ACCESS_KEY: ROOT.secretAccessKey },
        }, (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout))),
      );
      return JSON.parse(out) as Array<{ key: string; node: string; layer: string; accessKeyId: string }>;
    };
    // Node A writes its lines in batches (at most FLUSH_MS apart): asking again until it is there is no timing bound.
    let rows = await listed();
    for (let i = 0; rows.length === 0 && i < 20; i++) {
      await new Promise((r) => setTimeout(r, 250));
      rows = await listed();
    }
    t.is(rows.length, 1);
    t.like(rows[0], { key, node: 'node-a', layer: 'relationship', accessKeyId: app.accessKeyId });
    t.true(a.output().split('\n').some((line) => line.includes(`"key":"${key}"`)), 'the denial line is on node A stdout');
    t.false(b.output().includes(`"key":"${key}"`), 'node B refused nothing');
  });

  test.serial('a watch opened on node A sees a write made on node B, and resumes on node B after its last id', async (t) => {
    const { admin } = t.context;
    const events: ServerEvent[] = [];
    const controller = new AbortController();
    const watching = admin.a.events('/watch', { tenant: 'acme' }, (e) => events.push(e), controller.signal);
    const tuple = 'object:governed/watched.txt#reader@user:wendy';
    await admin.b.call('POST', '/tuples', { body: { tenant: 'acme', updates: [{ op: 'touch', tuple }], reason: 'watch me' } });
    const deadline = Date.now() + 30_000;
    while (!events.some((e) => e.data.includes('watched.txt')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const seen = events.find((e) => e.data.includes('watched.txt'));
    t.truthy(seen, 'the write made on B reached the watcher on A');
    t.is(seen?.event, 'tuple.touch');
    controller.abort();
    await watching;
    // A client that lost A resumes on B from the last id it saw: only what came after.
    const later = 'object:governed/later.txt#reader@user:wendy';
    await admin.a.call('POST', '/tuples', { body: { tenant: 'acme', updates: [{ op: 'touch', tuple: later }], reason: 'after' } });
    const resumed: ServerEvent[] = [];
    const again = new AbortController();
    const resuming = admin.b.events('/watch', { tenant: 'acme', after: seen!.id }, (e) => resumed.push(e), again.signal);
    const until = Date.now() + 30_000;
    while (!resumed.some((e) => e.data.includes('later.txt')) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    again.abort();
    await resuming;
    t.deepEqual(resumed.map((e) => JSON.parse(e.data).tuple.resource.id), ['governed/later.txt']);
  });

  test.serial('with its change channel cut, node B reads revisions per request: no stale allow past the bound', async (t) => {
    const { a, b, admin } = t.context;
    const made = await admin.a.call('POST', '/credentials', { body: { tenant: 'acme', name: 'cut', scopes: [{ families: ['object:read'], bucket: 'plain' }] } });
    const creds = { accessKeyId: made.accessKeyId, secretAccessKey: made.secretKey };
    t.is(await text(s3(b, creds), 'plain', 'r.txt'), 'r');
    // Ends every node's LISTEN connection; they reconnect, and until they have, every request checks the revision.
    const server = await sharedPostgres();
    const cut = await server.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'anvil-changes'");
    t.true(cut.rowCount! >= 2, 'both nodes were listening');
    await admin.a.call('POST', `/credentials/${made.accessKeyId}/revoke`, { body: {} });
    await afterBound();
    t.is(await status(s3(b, creds).send(new GetObjectCommand({ Bucket: 'plain', Key: 'r.txt' }))), 403);
    t.is(await status(s3(a, creds).send(new GetObjectCommand({ Bucket: 'plain', Key: 'r.txt' }))), 403);
  });

  test.serial('with every pooled connection ended by the server (a failover, an idle-session timeout), the next request is served', async (t) => {
    const { b, app } = t.context;
    await s3(b, app).send(new PutObjectCommand({ Bucket: 'plain', Key: 'pooled.txt', Body: 'p' }));
    const server = await sharedPostgres();
    for (let round = 0; round < 10; round++) {
      const cut = await server.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name IN ('anvil-gateway', 'anvil-changes')");
      t.true(cut.rowCount! >= 1, 'the nodes had connections to end');
      // A fresh credential: its lookup must reach the database (no cache can answer it).
      const fresh = await t.context.admin.a.call('POST', '/credentials', { body: { tenant: 'acme', name: `pooled-${round}`, scopes: [{ families: ['object:read'], bucket: 'plain' }] } });
      await server.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name IN ('anvil-gateway', 'anvil-changes')");
      t.is(await text(s3(b, { accessKeyId: fresh.accessKeyId, secretAccessKey: fresh.secretKey }), 'plain', 'pooled.txt'), 'p', `round ${round}: a new key`);
      t.is(await text(s3(b, app), 'plain', 'pooled.txt'), 'p', `round ${round}: a known key`);
    }
  });

  test.serial('killing node A mid-load loses no acknowledged object, and node B keeps serving', async (t) => {
    const { a, b, app } = t.context;
    const acknowledged = new Map<string, string>();
    let stop = false;
    const writer = async (n: number) => {
      const client = s3(a, app);
      for (let i = 0; !stop; i++) {
        const key = `load/${n}/${i}`;
        const body = randomBytes(64 * 1024);
        try {
          await client.send(new PutObjectCommand({ Bucket: 'plain', Key: key, Body: body }));
          acknowledged.set(key, createHash('sha256').update(body).digest('hex'));
        } catch {
          return; // the node is gone: what was not acknowledged may or may not be there
        }
      }
    };
    const writers = Array.from({ length: 4 }, (_, n) => writer(n));
    while (acknowledged.size < 20) await new Promise((r) => setTimeout(r, 20));
    await a.kill();
    stop = true;
    await Promise.all(writers);
    t.true(acknowledged.size >= 20);
    const client = s3(b, app);
    for (const [key, digest] of acknowledged) {
      const res = await client.send(new GetObjectCommand({ Bucket: 'plain', Key: key }));
      const bytes = Buffer.from(await res.Body!.transformToByteArray());
      t.is(createHash('sha256').update(bytes).digest('hex'), digest, key);
    }
    await client.send(new PutObjectCommand({ Bucket: 'plain', Key: 'after-a.txt', Body: 'b lives' }));
    t.is(await text(client, 'plain', 'after-a.txt'), 'b lives');
    const made = await t.context.admin.b.call('POST', '/credentials', { body: { tenant: 'acme', name: 'after', scopes: [{ families: ['object:read'], bucket: 'plain' }] } });
    t.is(await text(s3(b, { accessKeyId: made.accessKeyId, secretAccessKey: made.secretKey }), 'plain', 'after-a.txt'), 'b lives');
  });

  test.serial('with PostgreSQL stalled (SIGSTOP: connections open, no answer), node B answers 503 with a request id, readiness 503, and recovers when it resumes', async (t) => {
    const { b, app } = t.context;
    const postgres = await sharedPostgres();
    await s3(b, app).send(new PutObjectCommand({ Bucket: 'plain', Key: 'before-stall.txt', Body: 'kept' }));
    t.is(await text(s3(b, app), 'plain', 'before-stall.txt'), 'kept'); // warm: pooled connections open
    // Generous limits, not a performance assertion: without bounded waits the answers never come at all.
    const limit = () => ({ abortSignal: AbortSignal.timeout(20_000) });
    postgres.signal('SIGSTOP');
    try {
      await afterBound(); // the listening connection's heartbeat goes stale: requests must ask the database
      const [get, put, ready] = await Promise.all([
        s3(b, app).send(new GetObjectCommand({ Bucket: 'plain', Key: 'before-stall.txt' }), limit()).then(
          () => ({ status: 200, requestId: undefined, retryAfter: undefined }),
          (e: { $metadata?: { httpStatusCode?: number; requestId?: string }; $response?: { headers?: Record<string, string> } }) => ({
            status: e.$metadata?.httpStatusCode ?? 0,
            requestId: e.$metadata?.requestId,
            retryAfter: e.$response?.headers?.['retry-after'],
          }),
        ),
        status(s3(b, app).send(new PutObjectCommand({ Bucket: 'plain', Key: 'stalled.txt', Body: 'x' }), limit())),
        fetch(`${b.url}/_anvil/health/ready`, { signal: AbortSignal.timeout(20_000) }).then((r) => r.status, () => 0),
      ]);
      t.is(get.status, 503, b.output().slice(-2000));
      t.truthy(get.requestId);
      t.is(get.retryAfter, '1');
      t.is(put, 503);
      t.is(ready, 503);
    } finally {
      postgres.signal('SIGCONT');
    }
    // Recovery without a restart: the connections that timed out were dropped, fresh ones answer.
    let answer = 0;
    for (let i = 0; i < 60 && answer !== 200; i++) {
      answer = await status(s3(b, app).send(new GetObjectCommand({ Bucket: 'plain', Key: 'before-stall.txt' }), limit()));
      if (answer !== 200) await new Promise((r) => setTimeout(r, 500));
    }
    t.is(answer, 200);
    t.is((await fetch(`${b.url}/_anvil/health/ready`)).status, 200);
    t.is(await status(s3(b, app).send(new PutObjectCommand({ Bucket: 'plain', Key: 'resumed.txt', Body: 'y' }))), 200);
  });

  test.serial('with PostgreSQL gone, node B answers 503 ServiceUnavailable rather than decide on what it cannot confirm', async (t) => {
    const { b, app } = t.context;
    t.is(await text(s3(b, app), 'plain', 'after-a.txt'), 'b lives'); // warm
    await (await sharedPostgres()).close();
    await afterBound();
    let failure = '';
    const refused = await s3(b, app).send(new GetObjectCommand({ Bucket: 'plain', Key: 'after-a.txt' })).then(
      () => 200,
      (e: { $metadata?: { httpStatusCode?: number }; name?: string; message?: string }) => {
        failure = `${e.name}: ${e.message}`;
        return e.$metadata?.httpStatusCode ?? 0;
      },
    );
    // No status at all would mean no answer: say why, with what the node printed last.
    t.is(refused, 503, `${failure}\n${b.output().slice(-3000)}`);
    // STS too: AWS's ServiceUnavailable with Retry-After, not a 500 InternalFailure.
    const sts = new STSClient({ endpoint: b.url, region: 'us-east-1', credentials: app, maxAttempts: 1 });
    const assumed = await sts.send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::acme:role/any', RoleSessionName: 'probe' })).then(
      () => ({ status: 200, code: '', retryAfter: undefined }),
      (e: { $metadata?: { httpStatusCode?: number }; name?: string; $response?: { headers?: Record<string, string> } }) => ({
        status: e.$metadata?.httpStatusCode ?? 0,
        code: e.name,
        retryAfter: e.$response?.headers?.['retry-after'],
      }),
    );
    t.deepEqual(assumed, { status: 503, code: 'ServiceUnavailable', retryAfter: '1' }, b.output().slice(-3000));
  });
}


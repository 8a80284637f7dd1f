/**
 * Operating the gateway: health endpoints (on the S3 port and the health-only port) answer without credentials and
 * write no denial line; metrics are refused to strangers and scraped, parsed and checked for the bearer token and a
 * SigV4 admin; the JSON access log has one line per request and never a signature or secret.
 */
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import test from 'ava';
import { isoInstant } from '../gateway/logging.ts';
import { denials, logText, ok } from './helpers/admin.ts';
import { ROOT, startTestGateway, TEST_WORKERS, type TestGateway } from './helpers/gateway.ts';

const TOKEN = 'metrics-token-0123456789abcdef';

/** Samples of a Prometheus text exposition: `name{labels}` → value. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    samples.set(m[1]!, Number(m[2]));
  }
  return samples;
}

const denialCount = async (tg: TestGateway) => (await denials(tg)).length;

/** A GET signed with @smithy/signature-v4 (an independent signer), as the metrics endpoint's SigV4 callers send. */
async function signedGet(url: string, creds: { accessKeyId: string; secretAccessKey: string }): Promise<Response> {
  const u = new URL(url);
  const signer = new SignatureV4({ credentials: creds, region: 'us-east-1', service: 's3', sha256: Hash.bind(null, 'sha256') });
  const signed = await signer.sign(new HttpRequest({
    method: 'GET', protocol: u.protocol, hostname: u.hostname, port: Number(u.port), path: u.pathname,
    headers: { host: u.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
  }));
  return fetch(url, { headers: signed.headers });
}

test('health: live and ready on both ports, unauthenticated, no denial line; ready fails when the backend does', async (t) => {
  const tg = await startTestGateway({ ANVIL_HEALTH_ADDRESS: '127.0.0.1:0' });
  try {
    t.truthy(tg.gw.healthUrl);
    const before = await denialCount(tg);
    for (const base of [tg.gw.url, tg.gw.healthUrl!]) {
      const live = await fetch(`${base}/_anvil/health/live`);
      t.is(live.status, 200);
      t.deepEqual(await live.json(), { status: 'ok' });
      const ready = await fetch(`${base}/_anvil/health/ready`);
      t.is(ready.status, 200);
      t.deepEqual(await ready.json(), { status: 'ready' });
      t.is((await fetch(`${base}/_anvil/health/ready`, { method: 'POST' })).status, 405);
      t.is((await fetch(`${base}/_anvil/health/other`)).status, 404);
    }
    // The health-only port answers nothing else: no S3, no metrics.
    t.is((await fetch(`${tg.gw.healthUrl}/`)).status, 404);
    t.is((await fetch(`${tg.gw.healthUrl}/_anvil/metrics`)).status, 404);
    t.is(await denialCount(tg), before, 'health probes write no denial line');

    // The backend lives in each worker process under ANVIL_TEST_WORKERS (test/workers/): only the answers above apply.
    if (TEST_WORKERS > 1) return;
    await tg.gw.backend.close();
    const down = await fetch(`${tg.gw.healthUrl}/_anvil/health/ready`);
    t.is(down.status, 503);
    t.deepEqual(await down.json(), { status: 'not ready' }, 'reveals nothing about why');
    t.is((await fetch(`${tg.gw.url}/_anvil/health/live`)).status, 200, 'still alive');
  } finally {
    await tg.close();
  }
});

test('shutdown: the health address answers ready 503 while requests drain, then closes; the S3 port takes no new connection', async (t) => {
  if (TEST_WORKERS > 1) return t.pass('the drain runs in each worker process; test/shutdown.test.ts covers SIGTERM with workers');
  const tg = await startTestGateway({ ANVIL_HEALTH_ADDRESS: '127.0.0.1:0' });
  try {
    await tg.s3.send(new CreateBucketCommand({ Bucket: 'draining' }));
    const url = new URL(await getSignedUrl(tg.s3, new PutObjectCommand({ Bucket: 'draining', Key: 'slow' }), { expiresIn: 300 }));
    // A PUT in flight: half its body now, the rest once the drain has been seen.
    const { request } = await import('node:http');
    let finish!: () => void;
    let inFlight!: () => void;
    const started = new Promise<void>((resolve) => (inFlight = resolve));
    const answered = new Promise<number>((resolve, reject) => {
      // 100-continue: the half body goes once the gateway has the request, so the drain surely finds it in flight (a
      // fixed pause before the shutdown was not always enough on a loaded machine: the connection was still idle).
      const headers = { 'content-length': 8, expect: '100-continue' };
      const req = request({ host: url.hostname, port: url.port, method: 'PUT', path: url.pathname + url.search, headers }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.on('continue', () => {
        req.write('half');
        inFlight();
      });
      req.flushHeaders();
      finish = () => req.end('done');
    });
    await started;
    await new Promise((r) => setTimeout(r, 100));
    const stopped = tg.gw.shutdown(30_000);
    const ready = await fetch(`${tg.gw.healthUrl}/_anvil/health/ready`);
    t.is(ready.status, 503, 'not ready from the moment the shutdown began');
    t.is((await fetch(`${tg.gw.healthUrl}/_anvil/health/live`)).status, 200);
    await t.throwsAsync(fetch(`${tg.gw.url}/_anvil/health/live`), undefined, 'the S3 port takes no new connection');
    finish();
    t.is(await answered, 200, 'the request in flight finished');
    t.is(await stopped, 0);
    await t.throwsAsync(fetch(`${tg.gw.healthUrl}/_anvil/health/live`), undefined, 'closed once stopped');
  } finally {
    await tg.close();
  }
});

test('metrics: refused without the token or root (with a denial line), scraped and parsed otherwise', async (t) => {
  const tg = await startTestGateway({ ANVIL_METRICS_TOKEN: TOKEN });
  try {
    await tg.s3.send(new CreateBucketCommand({ Bucket: 'metered' }));
    await tg.s3.send(new PutObjectCommand({ Bucket: 'metered', Key: 'a.txt', Body: Buffer.alloc(1000, 'a') }));
    await tg.s3.send(new GetObjectCommand({ Bucket: 'metered', Key: 'a.txt' })).then((r) => r.Body!.transformToByteArray());
    await t.throwsAsync(tg.client({ ...ROOT, secretAccessKey: 'wrong-secret-wrong-secret-000000000000' }).send(new GetObjectCommand({ Bucket: 'metered', Key: 'a.txt' })));

    const url = `${tg.gw.url}/_anvil/metrics`;
    const before = await denialCount(tg);
    const anonymous = await fetch(url);
    t.is(anonymous.status, 403);
    t.regex(await anonymous.text(), /<Code>AccessDenied<\/Code>/);
    t.is((await fetch(url, { headers: { authorization: 'Bearer not-the-token-at-all-000' } })).status, 403);
    t.is(await denialCount(tg), before + 2);

    await ok(tg, ROOT, 'POST', '/tenants', { name: 'acme' });
    const app = await ok(tg, ROOT, 'POST', '/credentials', { tenant: 'acme', name: 'reader', scopes: [{ families: ['object:read'], bucket: '*' }] });
    const appAnswer = await signedGet(url, { accessKeyId: app.accessKeyId, secretAccessKey: app.secretKey });
    t.is(appAnswer.status, 403, 'an application without the admin family is refused');
    // The series count every tenant's traffic: a tenant admin, even one holding every family on every bucket, may not.
    const tenantAdmin = await ok(tg, ROOT, 'POST', '/credentials', { tenant: 'acme', name: 'tenant-admin', scopes: [{ families: ['admin', 'object:read', 'object:write', 'object:delete', 'object:list', 'bucket:read', 'bucket:admin', 'tuples:read', 'tuples:write', 'check', 'watch'], bucket: '*' }] });
    t.is((await signedGet(url, { accessKeyId: tenantAdmin.accessKeyId, secretAccessKey: tenantAdmin.secretKey })).status, 403, 'a tenant admin is refused');
    t.is((await signedGet(url, ROOT)).status, 200, 'root (SigV4) may read them');

    const scraped = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
    t.is(scraped.status, 200);
    t.regex(scraped.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    const m = parseMetrics(await scraped.text());
    t.true(m.get('anvil_requests_total{operation="PutObject",status="200"}')! >= 1);
    t.true(m.get('anvil_requests_total{operation="GetObject",status="200"}')! >= 1);
    t.true(m.get('anvil_requests_total{operation="GetObject",status="403"}')! >= 1);
    t.true(m.get('anvil_request_duration_seconds_count{operation="PutObject"}')! >= 1);
    t.true(m.get('anvil_received_bytes_total{operation="PutObject"}')! >= 1000);
    t.true(m.get('anvil_sent_bytes_total{operation="GetObject"}')! >= 1000);
    t.true(m.get('anvil_denials_total{layer="signature"}')! >= 2);
    t.true(m.get('anvil_backend_duration_seconds_count{method="putObject"}')! >= 1);
    t.true(m.has('anvil_check_cache_lookups_total{result="hit"}'));
    t.true(m.has('anvil_check_cache_hit_ratio'));
    t.true(m.get('anvil_open_connections')! >= 1);
    t.true(m.has('nodejs_eventloop_lag_seconds'));
    t.true(m.has('process_resident_memory_bytes'));
    t.false([...m.keys()].some((k) => k.startsWith('anvil_storage_full_total{')), 'no 507 answered yet');
  } finally {
    await tg.close();
  }
});

test('log times: the per-second formatting gives toISOString\'s text for every millisecond, across seconds and days', (t) => {
  const start = Date.UTC(2026, 10, 30, 23, 59, 58, 990);
  for (let now = start; now < start + 2_100; now++) t.is(isoInstant(now), new Date(now).toISOString());
  for (const now of [0, 5, 50, 999, 1_000, 1_001, Date.UTC(9999, 11, 31, 23, 59, 59, 999)]) t.is(isoInstant(now), new Date(now).toISOString());
});

test('access log: one JSON line per request with operation, status, bytes and key id; never a signature or secret', async (t) => {
  const startedAt = Date.now();
  const tg = await startTestGateway();
  try {
    await tg.s3.send(new CreateBucketCommand({ Bucket: 'logged' }));
    await tg.s3.send(new PutObjectCommand({ Bucket: 'logged', Key: 'k.bin', Body: Buffer.alloc(4096, 1) }));
    const presigned = await getSignedUrl(tg.s3, new GetObjectCommand({ Bucket: 'logged', Key: 'k.bin' }), { expiresIn: 60 });
    t.is((await fetch(presigned)).status, 200);
    await fetch(`${tg.gw.url}/_anvil/health/live`);
    // A gateway in worker processes (test/workers/) writes its lines to a pipe, each worker its own: they arrive a
    // little after the answers, in no order across workers.
    const arrived = () => ['PutObject', 'GetObject', 'Health'].every((op) => tg.logs.some((l) => l.includes(`"operation":"${op}"`)));
    for (let i = 0; !arrived(); i++) {
      if (i > 300) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const lines = tg.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request');
    const put = lines.find((l) => l.operation === 'PutObject')!;
    t.like(put, { level: 'info', method: 'PUT', bucket: 'logged', key: 'k.bin', status: 200, accessKeyId: ROOT.accessKeyId });
    t.regex(put.requestId, /^[0-9A-F]{16}$/);
    t.true(put.bytesIn >= 4096);
    t.true(typeof put.durationMs === 'number');
    const gets = lines.filter((l) => l.operation === 'GetObject');
    t.is(gets.length, 1);
    t.true(gets[0].bytesOut >= 4096);
    t.truthy(lines.find((l) => l.operation === 'Health'));
    // Every line's time is an ISO 8601 instant with milliseconds (the gateway formats it once per second and appends
    // the milliseconds: gateway/logging.ts), within the test's run.
    for (const l of tg.logs.map((line) => JSON.parse(line) as { time: string })) {
      t.regex(l.time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      t.is(new Date(l.time).toISOString(), l.time);
      t.true(Date.parse(l.time) >= startedAt - 1 && Date.parse(l.time) <= Date.now() + 1, l.time);
    }
    const everything = tg.logs.join('\n');
    const signature = new URL(presigned).searchParams.get('X-Amz-Signature')!;
    t.false(everything.includes(signature));
    t.false(everything.includes('X-Amz-Signature'));
    t.false(everything.includes(ROOT.secretAccessKey));
  } finally {
    await tg.close();
  }
});

test('log hygiene: presigned-URL material and capabilities in a User-Agent or key are scrubbed on every log path', async (t) => {
  // Caller-chosen text (o12d F4): the denial row and its stdout echo, access lines, access records, audit rows.
  const tg = await startTestGateway({ ANVIL_DENIALS_STDOUT: 'true' });
  try {
    const marks = ['UAMARK1', 'UAMARK2', 'UAMARK3', 'UAMARK4', 'UAMARK5', 'KEYMARK1', 'KEYMARK2', 'AUDMARK1'];
    const capability = 'WzEsImFjbWUvMSIsIlVBTUFSSzUiXQ';
    const agents = [
      'curl http://h/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=UAMARK1abcdef&X-Amz-Security-Token=UAMARK2tok',
      'tool X-Amz-Signature=UAMARK1&X-Amz-Security-Token=UAMARK2tok Signature=UAMARK3sig&AWSAccessKeyId=AKIAYY',
      `agent X-Anvil-Capability=UAMARK4cap bare ${capability}`,
    ];
    await tg.s3.send(new CreateBucketCommand({ Bucket: 'hygiene' }));
    const key = 'q/X-Amz-Signature=KEYMARK1&X-Amz-Security-Token=KEYMARK2';
    await tg.s3.send(new PutObjectCommand({ Bucket: 'hygiene', Key: key, Body: 'x' }));
    const presigned = await getSignedUrl(tg.s3, new GetObjectCommand({ Bucket: 'hygiene', Key: key }), { expiresIn: 60 });
    for (const agent of agents) {
      // Refused (anonymous): a denial row and, with ANVIL_DENIALS_STDOUT, its JSON line.
      t.is((await fetch(`${tg.gw.url}/hygiene/${key}`, { headers: { 'user-agent': agent } })).status, 403);
      // Allowed: an access line and an access record carrying the agent.
      t.is((await fetch(presigned, { headers: { 'user-agent': agent } })).status, 200);
    }
    await ok(tg, ROOT, 'POST', '/tenants', { name: 'hyg', description: 'from X-Anvil-Capability=AUDMARK1' });
    const rows = await denials(tg);
    t.is(rows.filter((r) => r.userAgent?.startsWith('curl http://h/b/k?…') || r.userAgent?.startsWith('tool ') || r.userAgent?.startsWith('agent ')).length, 3);
    const uses = async () => tg.gw.database.db('policy').selectFrom('credential_uses').select('user_agent').execute();
    for (let i = 0; (await uses()).filter((u) => /^(curl|tool|agent) /.test(u.user_agent)).length < 3 && i < 100; i++) await new Promise((r) => setTimeout(r, 50));
    const echoed = () => tg.logs.filter((l) => l.includes('"msg":"denied"')).length >= 3 && tg.logs.filter((l) => l.includes('"operation":"GetObject"')).length >= 3;
    for (let i = 0; !echoed() && i < 100; i++) await new Promise((r) => setTimeout(r, 50));
    const stored = JSON.stringify([rows, await uses(), await logText(tg)]);
    const everything = `${tg.logs.join('\n')}\n${stored}`;
    for (const mark of marks) t.false(everything.includes(mark), `${mark} reached a log`);
    t.false(everything.includes(capability));
    // What is left is still there to read: the agent's start, the parameter names, the key's place in its bucket.
    t.true(tg.logs.some((l) => l.includes('X-Anvil-Capability=[redacted]')));
    t.true(stored.includes('tool X-Amz-Signature=[redacted]&X-Amz-Security-Token=[redacted] Signature=[redacted]&AWSAccessKeyId=AKIAYY'));
    t.true(tg.logs.some((l) => l.includes('"key":"q/X-Amz-Signature=[redacted]&X-Amz-Security-Token=[redacted]"')));
    t.true(stored.includes('from X-Anvil-Capability=[redacted]'));
    // Every line is still one JSON value.
    for (const line of tg.logs) t.notThrows(() => JSON.parse(line));
  } finally {
    await tg.close();
  }
});

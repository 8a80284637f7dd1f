/**
 * Requests refused before the app sees them — a method Node's parser rejects (`get`, `Delete`), a malformed request
 * line or header, CONNECT, an Expect other than 100-continue, HTTP/1.1 without Host — are answered with an S3 error and a request id, and, like every
 * other answer, leave one access line and one count in anvil_requests_total. Nothing they ask for runs.
 */
import { CreateBucketCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import { connect } from 'node:net';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { signRequest } from './helpers/raw.ts';

const TOKEN = 'metrics-token-0123456789abcdef';
let tg: TestGateway;

test.before(async () => {
  tg = await startTestGateway({ ANVIL_METRICS_TOKEN: TOKEN });
  await tg.s3.send(new CreateBucketCommand({ Bucket: 'early' }));
});
test.after.always(async () => tg.close());

/** Writes raw bytes on a new connection and collects everything until the server closes it (or 30 s pass). */
function exchange(bytes: string): Promise<string> {
  const u = new URL(tg.gw.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(u.port), u.hostname, () => socket.write(bytes));
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', reject);
    setTimeout(() => {
      socket.destroy();
    }, 30_000).unref();
  });
}

/** The value of `anvil_requests_total` for (operation, status), scraped over HTTP as Prometheus does. */
async function answered(operation: string, status: number): Promise<number> {
  const text = await (await fetch(`${tg.gw.url}/_anvil/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
  const line = text.split('\n').find((l) => l.startsWith(`anvil_requests_total{operation="${operation}",status="${status}"} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

/** The access line with this request id, waiting for it a while (lines are written when the socket closes). */
async function accessLine(requestId: string): Promise<Record<string, unknown> | undefined> {
  for (let i = 0; i < 100; i++) {
    const line = tg.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'request' && l.requestId === requestId);
    if (line) return line;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

const requestIdOf = (response: string) => /x-amz-request-id: (\S+)/i.exec(response)?.[1];

test.serial('a lower-case or mixed-case method, a malformed head, CONNECT and an unknown Expect: S3 error, request id, access line, count', async (t) => {
  const host = new URL(tg.gw.url).host;
  const cases: Array<{ what: string; bytes: string; status: number; code: string; method?: string }> = [
    { what: 'get', bytes: `get /early/x HTTP/1.1\r\nHost: ${host}\r\n\r\n`, status: 400, code: 'InvalidRequest', method: 'get' },
    { what: 'Delete', bytes: `Delete /early/x HTTP/1.1\r\nHost: ${host}\r\n\r\n`, status: 400, code: 'InvalidRequest', method: 'Delete' },
    { what: 'bad header', bytes: `GET /early/x HTTP/1.1\r\nHost: ${host}\r\nBad Header\r\n\r\n`, status: 400, code: 'InvalidRequest', method: 'GET' },
    { what: 'bad version', bytes: `GET /early/x HTTP/9.z\r\nHost: ${host}\r\n\r\n`, status: 400, code: 'InvalidRequest', method: 'GET' },
    { what: 'oversized headers', bytes: `GET /early/x HTTP/1.1\r\nHost: ${host}\r\nx-big: ${'a'.repeat(64 * 1024)}\r\n\r\n`, status: 400, code: 'RequestHeaderSectionTooLarge', method: 'GET' },
    { what: 'CONNECT', bytes: `CONNECT ${host} HTTP/1.1\r\nHost: ${host}\r\n\r\n`, status: 405, code: 'MethodNotAllowed', method: 'CONNECT' },
    // Node's 'checkExpectation': any expectation but 100-continue (RFC 9110 §10.1.1).
    { what: 'Expect: 200-ok', bytes: `PUT /early/expected HTTP/1.1\r\nHost: ${host}\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx`, status: 417, code: 'ExpectationFailed', method: 'PUT' },
  ];
  for (const c of cases) {
    const before = await answered('-', c.status);
    const response = await exchange(c.bytes);
    t.true(response.startsWith(`HTTP/1.1 ${c.status} `), `${c.what}: ${response.slice(0, 80)}`);
    t.true(response.includes(`<Code>${c.code}</Code>`), c.what);
    const id = requestIdOf(response);
    t.truthy(id, `${c.what}: a request id`);
    t.true(response.includes(`<RequestId>${id}</RequestId>`), c.what);
    const line = await accessLine(id!);
    t.truthy(line, `${c.what}: an access line`);
    t.is(line?.status, c.status, c.what);
    t.is(line?.method, c.method, c.what);
    t.true(Number(line?.bytesIn) > 0, c.what);
    t.is(await answered('-', c.status), before + 1, `${c.what}: counted`);
  }
  // Nothing ran: the lower-case DELETE and GET reached no operation, the PUT with an unmet expectation stored nothing.
  t.false(tg.logs.some((l) => l.includes('"operation":"DeleteObject"')));
  await t.throwsAsync(tg.s3.send(new HeadObjectCommand({ Bucket: 'early', Key: 'expected' })), { name: 'NotFound' });
});

test.serial('HTTP/1.1 without Host: an S3 error with a request id, an access line and a count, not Node\'s bare 400', async (t) => {
  const before = await answered('-', 400);
  const { path, headers } = await signRequest({ url: tg.gw.url, method: 'PUT', path: '/early/no-host', body: 'x' });
  delete headers.host;
  const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n');
  const response = await exchange(`PUT ${path} HTTP/1.1\r\n${head}\r\ncontent-length: 1\r\nconnection: close\r\n\r\nx`);
  t.true(response.startsWith('HTTP/1.1 400 '), response.slice(0, 80));
  t.true(response.includes('<Code>InvalidRequest</Code>'));
  const id = requestIdOf(response);
  t.truthy(id);
  t.is((await accessLine(id!))?.status, 400);
  t.is(await answered('-', 400), before + 1);
  // Nothing stored.
  await t.throwsAsync(tg.s3.send(new HeadObjectCommand({ Bucket: 'early', Key: 'no-host' })), { name: 'NotFound' });
});

test.serial('chunked framing that breaks inside a running PUT: answered once, on that request\'s own id, one line, one count', async (t) => {
  const host = new URL(tg.gw.url).host;
  // Access lines of a PUT or of an early answer (the metrics scrapes in between have their own).
  const lines = () => tg.logs.filter((l) => l.includes('"msg":"request"') && /"operation":"(PutObject|-)"/.test(l)).length;
  const beforePut = await answered('PutObject', 400);
  const beforeEarly = await answered('-', 400);
  const linesBefore = lines();
  const { path, headers } = await signRequest({ url: tg.gw.url, method: 'PUT', path: '/early/broken-chunks', payloadHash: 'UNSIGNED-PAYLOAD' });
  const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n');
  // A good first chunk, then a chunk-size line that is not hex: the parser fails while the app reads the body.
  const response = await exchange(`PUT ${path} HTTP/1.1\r\n${head}\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nXYZ\r\n`);
  t.true(response.startsWith('HTTP/1.1 400 '), response.slice(0, 80));
  t.true(response.includes('<Code>InvalidRequest</Code>'));
  t.is(response.match(/^HTTP\/1\.1 /gm)?.length, 1, 'one answer on the connection');
  const id = requestIdOf(response);
  const line = await accessLine(id!);
  t.is(line?.operation, 'PutObject', 'the access line is the request\'s own');
  t.is(line?.status, 400);
  t.is(await answered('PutObject', 400), beforePut + 1);
  t.is(await answered('-', 400), beforeEarly, 'no second, early count');
  t.is(lines(), linesBefore + 1, 'one access line');
  await t.throwsAsync(tg.s3.send(new HeadObjectCommand({ Bucket: 'early', Key: 'broken-chunks' })), { name: 'NotFound' });
});

test.serial('a client that half-closes once its request is sent still gets the answer: a PUT that committed says so', async (t) => {
  const u = new URL(tg.gw.url);
  const halfClosed = (bytes: string) => new Promise<string>((resolve, reject) => {
    const socket = connect(Number(u.port), u.hostname, () => socket.end(bytes));
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', reject);
  });
  const put = await signRequest({ url: tg.gw.url, method: 'PUT', path: '/early/half-closed', body: 'committed' });
  const putHead = Object.entries(put.headers).map(([k, v]) => `${k}: ${v}`).join('\r\n');
  const putAnswer = await halfClosed(`PUT ${put.path} HTTP/1.1\r\n${putHead}\r\ncontent-length: 9\r\n\r\ncommitted`);
  t.true(putAnswer.startsWith('HTTP/1.1 200 '), putAnswer.slice(0, 80));
  const get = await signRequest({ url: tg.gw.url, method: 'GET', path: '/early/half-closed' });
  const getHead = Object.entries(get.headers).map(([k, v]) => `${k}: ${v}`).join('\r\n');
  const getAnswer = await halfClosed(`GET ${get.path} HTTP/1.1\r\n${getHead}\r\n\r\n`);
  t.true(getAnswer.startsWith('HTTP/1.1 200 '), getAnswer.slice(0, 80));
  t.true(getAnswer.endsWith('\r\n\r\ncommitted'));
});

test('requests pipelined behind a refused request never run and are not left in flight: a graceful stop cuts nothing off', async (t) => {
  const own = await startTestGateway();
  try {
    await own.s3.send(new CreateBucketCommand({ Bucket: 'piped' }));
    const wrong = { accessKeyId: ROOT.accessKeyId, secretAccessKey: 'x'.repeat(40) };
    const put = await signRequest({ url: own.gw.url, method: 'PUT', path: '/piped/refused', body: 'abc', creds: wrong });
    const get = await signRequest({ url: own.gw.url, method: 'GET', path: '/piped/refused' });
    const head = (method: string, s: { path: string; headers: Record<string, string> }, extra = '') =>
      `${method} ${s.path} HTTP/1.1\r\n${Object.entries(s.headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n${extra}\r\n`;
    const u = new URL(own.gw.url);
    const response = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(u.port), u.hostname, () => socket.write(head('PUT', put, 'content-length: 3\r\n') + 'abc' + head('GET', get).repeat(5)));
      const chunks: Buffer[] = [];
      socket.on('data', (d: Buffer) => chunks.push(d));
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
      socket.on('error', reject);
    });
    t.true(response.startsWith('HTTP/1.1 403 '), response.slice(0, 80));
    t.is(response.split('HTTP/1.1 ').length - 1, 1, 'one answer: the requests behind it were not served');
    await new Promise((r) => setTimeout(r, 200));
    t.is(await own.gw.shutdown(3_000), 0, 'nothing left in flight to cut off');
  } finally {
    await own.close();
  }
});

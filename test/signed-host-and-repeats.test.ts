/**
 * A SigV4 signature is bound to one endpoint and to one value of each header the gateway acts on:
 *   - a signed request whose Host is missing (HTTP/1.0) or empty, header-signed or presigned, is refused 400
 *     InvalidRequest with a denial line, and nothing runs;
 *   - a request repeating Authorization, Host, x-amz-date, x-amz-content-sha256, x-amz-security-token,
 *     x-amz-copy-source, a checksum header or an X-Amz-* query parameter is refused 400 InvalidArgument naming it,
 *     even though the signature covers every value (SigV4 joins repeated values with ','), and nothing is stored.
 * The requests are signed here by hand (node:crypto), since no SDK signs a repeated header or an empty Host.
 */
import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import { createHash, createHmac } from 'node:crypto';
import { connect } from 'node:net';
import { denials } from './helpers/admin.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';

const BUCKET = 'bound';
let tg: TestGateway;

test.before(async () => {
  tg = await startTestGateway();
  await tg.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await tg.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'there', Body: 'present' }));
});
test.after.always(async () => tg.close());

const sha256 = (data: string) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
const amzDateOf = (d: Date) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * SigV4 (AWS General Reference, "Create a canonical request"): repeated headers' values trimmed and joined with ','.
 * `headers` is the wire order (repeats kept); the signed names are every name given, lower-cased.
 */
function signature(opts: { method: string; path: string; query: Array<[string, string]>; headers: Array<[string, string]>; payload: string; amzDate: string }): { scope: string; signed: string; signature: string } {
  const names = [...new Set(opts.headers.map(([n]) => n.toLowerCase()))].sort();
  const canonicalHeaders = names.map((n) => `${n}:${opts.headers.filter(([h]) => h.toLowerCase() === n).map(([, v]) => v.trim()).join(',')}\n`).join('');
  const query = [...opts.query].map(([k, v]) => [enc(k), enc(v)]).sort(([a, x], [b, y]) => (a! < b! ? -1 : a! > b! ? 1 : x! < y! ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join('&');
  const canonical = [opts.method, opts.path, query, canonicalHeaders, names.join(';'), opts.payload].join('\n');
  const date = opts.amzDate.slice(0, 8);
  const scope = `${date}/us-east-1/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', opts.amzDate, scope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${ROOT.secretAccessKey}`, date), 'us-east-1'), 's3'), 'aws4_request');
  return { scope, signed: names.join(';'), signature: createHmac('sha256', key).update(toSign).digest('hex') };
}

/**
 * A header-signed request's bytes: every header in `headers` (and `unsent`, signed but not sent) is signed, then
 * Authorization is added, and `extraAuth` as a second one.
 */
function headerSigned(opts: { method: string; path: string; headers: Array<[string, string]>; unsent?: Array<[string, string]>; body?: string; version?: string; payload?: string; extraAuth?: string }): string {
  const amzDate = opts.headers.find(([n]) => n === 'x-amz-date')?.[1] ?? amzDateOf(new Date());
  const headers = opts.headers.some(([n]) => n === 'x-amz-date') ? opts.headers : [...opts.headers, ['x-amz-date', amzDate] as [string, string]];
  const payload = opts.payload ?? headers.find(([n]) => n === 'x-amz-content-sha256')![1];
  const s = signature({ method: opts.method, path: opts.path, query: [], headers: [...headers, ...(opts.unsent ?? [])], payload, amzDate });
  const auth = `AWS4-HMAC-SHA256 Credential=${ROOT.accessKeyId}/${s.scope},SignedHeaders=${s.signed},Signature=${s.signature}`;
  const body = opts.body ?? '';
  const lines = [
    `${opts.method} ${opts.path} HTTP/${opts.version ?? '1.1'}`,
    ...headers.map(([n, v]) => `${n}: ${v}`),
    `authorization: ${auth}`,
    ...(opts.extraAuth ? [`authorization: ${opts.extraAuth}`] : []),
    `content-length: ${Buffer.byteLength(body)}`,
    'connection: close',
  ];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** A presigned GET's bytes; `hostValue` is the Host signed and sent; `repeat` is one more (signed) query parameter. */
function presigned(opts: { path: string; hostValue: string; repeat?: [string, string] }): string {
  const amzDate = amzDateOf(new Date());
  const query: Array<[string, string]> = [
    ['X-Amz-Algorithm', 'AWS4-HMAC-SHA256'],
    ['X-Amz-Credential', `${ROOT.accessKeyId}/${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request`],
    ['X-Amz-Date', amzDate],
    ['X-Amz-Expires', '300'],
    ['X-Amz-SignedHeaders', 'host'],
    ...(opts.repeat ? [opts.repeat] : []),
  ];
  const s = signature({ method: 'GET', path: opts.path, query, headers: [['host', opts.hostValue]], payload: 'UNSIGNED-PAYLOAD', amzDate });
  const qs = [...query, ['X-Amz-Signature', s.signature]].map(([k, v]) => `${enc(k!)}=${enc(v!)}`).join('&');
  return `GET ${opts.path}?${qs} HTTP/1.1\r\nHost: ${opts.hostValue}\r\nconnection: close\r\n\r\n`;
}

/** Sends raw bytes on a new connection; resolves with the status, the request id and the body once the server closes. */
function exchange(bytes: string): Promise<{ status: number; requestId?: string; body: string }> {
  const u = new URL(tg.gw.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(u.port), u.hostname, () => socket.write(bytes));
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const end = text.indexOf('\r\n\r\n');
      resolve({ status: Number(text.split(' ')[1]), requestId: /x-amz-request-id: (\S+)/i.exec(text.slice(0, end))?.[1], body: text.slice(end + 4) });
    });
    socket.on('error', reject);
    setTimeout(() => socket.destroy(), 30_000).unref();
  });
}

const host = () => new URL(tg.gw.url).host;
const exists = (key: string) => tg.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })).then(() => true, () => false);
const codeOf = (body: string) => /<Code>([^<]+)<\/Code>/.exec(body)?.[1];
const denialFor = async (requestId: string | undefined) => (await denials(tg)).find((d) => d.requestId === requestId);

test('control: the hand signer is right, so every refusal below is the check under test', async (t) => {
  const get = await exchange(headerSigned({ method: 'GET', path: `/${BUCKET}/there`, headers: [['host', host()], ['x-amz-content-sha256', sha256('')]] }));
  t.is(get.status, 200, get.body);
  t.is(get.body, 'present');
  const url = await exchange(presigned({ path: `/${BUCKET}/there`, hostValue: host() }));
  t.is(url.status, 200, url.body);
});

test('a signed request without Host, or with an empty one, is refused 400 InvalidRequest with a denial line', async (t) => {
  const empty = sha256('');
  const cases: Array<{ what: string; bytes: string }> = [
    // HTTP/1.0 needs no Host; the signature covers "host:" with no value, as a signer given no Host makes it.
    { what: 'HTTP/1.0 without Host', bytes: headerSigned({ method: 'PUT', path: `/${BUCKET}/e1`, version: '1.0', headers: [['x-amz-content-sha256', sha256('one')]], unsent: [['host', '']], body: 'one' }) },
    { what: 'HTTP/1.1 empty Host', bytes: headerSigned({ method: 'PUT', path: `/${BUCKET}/e2`, headers: [['host', ''], ['x-amz-content-sha256', sha256('two')]], body: 'two' }) },
    { what: 'HTTP/1.1 empty Host, GET', bytes: headerSigned({ method: 'GET', path: `/${BUCKET}/there`, headers: [['host', ''], ['x-amz-content-sha256', empty]] }) },
    { what: 'presigned, empty Host', bytes: presigned({ path: `/${BUCKET}/there`, hostValue: '' }) },
  ];
  for (const c of cases) {
    const res = await exchange(c.bytes);
    t.is(res.status, 400, `${c.what}: ${res.body}`);
    t.is(codeOf(res.body), 'InvalidRequest', c.what);
    t.regex(res.body, /Host/, c.what);
    t.truthy(res.requestId, c.what);
    t.is((await denialFor(res.requestId))?.layer, 'signature', `${c.what}: a denial line`);
  }
  t.false(await exists('e1'), 'nothing stored');
  t.false(await exists('e2'), 'nothing stored');
});

test('a repeated header the gateway acts on one value of is refused 400 InvalidArgument naming it; nothing stored', async (t) => {
  const now = amzDateOf(new Date());
  const earlier = amzDateOf(new Date(Date.now() - 60_000));
  const cases: Array<{ what: string; name: string; bytes: string; key?: string }> = [
    {
      what: 'two x-amz-date',
      name: 'x-amz-date',
      bytes: headerSigned({ method: 'GET', path: `/${BUCKET}/there`, headers: [['host', host()], ['x-amz-date', now], ['x-amz-date', earlier], ['x-amz-content-sha256', sha256('')]], payload: sha256('') }),
    },
    {
      what: 'UNSIGNED-PAYLOAD then the hash of another body',
      name: 'x-amz-content-sha256',
      key: 'r2',
      bytes: headerSigned({
        method: 'PUT', path: `/${BUCKET}/r2`, body: 'mismatching body', payload: `UNSIGNED-PAYLOAD,${sha256('another body')}`,
        headers: [['host', host()], ['x-amz-content-sha256', 'UNSIGNED-PAYLOAD'], ['x-amz-content-sha256', sha256('another body')]],
      }),
    },
    {
      what: 'two Authorization headers',
      name: 'authorization',
      key: 'r3',
      bytes: headerSigned({ method: 'PUT', path: `/${BUCKET}/r3`, body: 'three', headers: [['host', host()], ['x-amz-content-sha256', sha256('three')]], extraAuth: 'AWS4-HMAC-SHA256 Credential=x' }),
    },
    {
      what: 'two Host headers',
      name: 'host',
      key: 'r4',
      bytes: headerSigned({ method: 'PUT', path: `/${BUCKET}/r4`, body: 'four', headers: [['host', host()], ['host', 'other.example'], ['x-amz-content-sha256', sha256('four')]] }),
    },
    {
      what: 'two x-amz-copy-source',
      name: 'x-amz-copy-source',
      key: 'r5',
      bytes: headerSigned({ method: 'PUT', path: `/${BUCKET}/r5`, headers: [['host', host()], ['x-amz-copy-source', `${BUCKET}/there`], ['x-amz-copy-source', `${BUCKET}/other`], ['x-amz-content-sha256', sha256('')]] }),
    },
    {
      what: 'two x-amz-checksum-sha256',
      name: 'x-amz-checksum-sha256',
      key: 'r6',
      bytes: headerSigned({
        method: 'PUT', path: `/${BUCKET}/r6`, body: 'six',
        headers: [['host', host()], ['x-amz-checksum-sha256', createHash('sha256').update('six').digest('base64')], ['x-amz-checksum-sha256', createHash('sha256').update('x').digest('base64')], ['x-amz-content-sha256', sha256('six')]],
      }),
    },
    {
      what: 'two x-amz-security-token',
      name: 'x-amz-security-token',
      bytes: headerSigned({ method: 'GET', path: `/${BUCKET}/there`, headers: [['host', host()], ['x-amz-security-token', 'a'], ['x-amz-security-token', 'b'], ['x-amz-content-sha256', sha256('')]] }),
    },
    { what: 'a presigned URL with a second X-Amz-Date', name: 'X-Amz-Date', bytes: presigned({ path: `/${BUCKET}/there`, hostValue: host(), repeat: ['X-Amz-Date', earlier] }) },
  ];
  for (const c of cases) {
    const res = await exchange(c.bytes);
    t.is(res.status, 400, `${c.what}: ${res.body}`);
    t.is(codeOf(res.body), 'InvalidArgument', c.what);
    t.true(res.body.includes(`<ArgumentName>${c.name}</ArgumentName>`), `${c.what}: ${res.body}`);
    t.truthy(res.requestId, c.what);
    t.is((await denialFor(res.requestId))?.layer, 'signature', `${c.what}: a denial line`);
    if (c.key) t.false(await exists(c.key), `${c.what}: nothing stored`);
  }
});

/**
 * Issue 9, class 1: every header the gateway acts on is covered by the signature. Unsigned x-amz-* headers are
 * refused on header-signed requests as on presigned ones; Expect: 100-continue gets its final status before any body
 * is sent when the request is refused; response-* overrides that cannot be a header value are 400, never 500.
 */
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import { connect } from 'node:net';
import { denials } from './helpers/admin.ts';
import { BUCKET, credential, seed } from './helpers/authority.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { errorCode, send, signRequest, signedSend } from './helpers/raw.ts';

let tg: TestGateway;
let app: Awaited<ReturnType<typeof credential>>;

test.before(async () => {
  tg = await startTestGateway();
  await seed(tg);
  // May read pub/ and write up/: the copy source it could read, and a destination it may write.
  app = await credential(tg, [
    { families: ['object:read'], bucket: BUCKET, prefix: 'pub/' },
    { families: ['object:write', 'object:read'], bucket: BUCKET, prefix: 'up/' },
  ]);
});
test.after.always(async () => tg.close());

const exists = async (key: string) => tg.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })).then(() => true, () => false);

test('a signed PutObject replayed with an unsigned x-amz-copy-source, meta or tagging header is refused and stores nothing', async (t) => {
  const extras: Array<Record<string, string>> = [
    { 'x-amz-copy-source': `${BUCKET}/pub/x` },
    { 'x-amz-meta-owner': 'mallory' },
    { 'x-amz-tagging': 'class=public' },
    { 'x-amz-metadata-directive': 'REPLACE' },
  ];
  for (const [i, extra] of extras.entries()) {
    const key = `up/replay-${i}`;
    const signed = await signRequest({ url: tg.gw.url, method: 'PUT', path: `/${BUCKET}/${key}`, body: 'hello', creds: app });
    const res = await send({ url: tg.gw.url, method: 'PUT', path: signed.path, headers: { ...signed.headers, ...extra }, body: 'hello' });
    t.is(res.status, 403, JSON.stringify(extra));
    t.is(errorCode(res), 'AccessDenied');
    t.regex(res.body, /headers present in the request which were not signed/);
    t.regex(res.body, new RegExp(Object.keys(extra)[0]!));
    t.false(await exists(key), `nothing stored for ${JSON.stringify(extra)}`);
    const line = (await denials(tg)).find((d) => d.requestId === res.headers['x-amz-request-id']);
    t.is(line?.layer, 'signature');
  }
  // The same request with the header signed is an ordinary CopyObject, decided by scopes.
  const copy = await signedSend({ url: tg.gw.url, method: 'PUT', path: `/${BUCKET}/up/copied`, headers: { 'x-amz-copy-source': `${BUCKET}/pub/x` }, creds: app });
  t.is(copy.status, 200);
  const secret = await signedSend({ url: tg.gw.url, method: 'PUT', path: `/${BUCKET}/up/copied2`, headers: { 'x-amz-copy-source': `${BUCKET}/secret/x` }, creds: app });
  t.is(secret.status, 403);
  t.false(await exists('up/copied2'));
});

test('a header naming a feature the gateway lacks is answered 501 only to a caller that is authenticated and authorized', async (t) => {
  const lacking: Array<Record<string, string>> = [
    { 'x-amz-acl': 'public-read' },
    { 'x-amz-storage-class': 'GLACIER' },
    { 'x-amz-server-side-encryption': 'aws:kms' },
    { 'x-amz-object-lock-mode': 'GOVERNANCE' },
    { 'x-amz-website-redirect-location': '/elsewhere' },
  ];
  for (const [i, extra] of lacking.entries()) {
    const key = `up/feature-${i}`;
    const what = JSON.stringify(extra);
    // Unsigned: the signature layer refuses it, as any unsigned x-amz-* header, and writes the denial line.
    const signed = await signRequest({ url: tg.gw.url, method: 'PUT', path: `/${BUCKET}/${key}`, body: 'hello', creds: app });
    const unsigned = await send({ url: tg.gw.url, method: 'PUT', path: signed.path, headers: { ...signed.headers, ...extra }, body: 'hello' });
    t.is(unsigned.status, 403, what);
    t.is((await denials(tg)).find((d) => d.requestId === unsigned.headers['x-amz-request-id'])?.layer, 'signature', what);
    // Anonymous: refused as anonymous, not told what the gateway implements.
    const anonymous = await send({ url: tg.gw.url, method: 'PUT', path: `/${BUCKET}/${key}`, headers: extra, body: 'hello' });
    t.is(anonymous.status, 403, what);
    t.is(errorCode(anonymous), 'AccessDenied', what);
    // Signed, but outside the caller's scopes: the scope layer decides first.
    const outside = await signedSend({ url: tg.gw.url, method: 'PUT', path: `/${BUCKET}/secret/feature-${i}`, headers: extra, body: 'hello', creds: app });
    t.is(outside.status, 403, what);
    // Signed and allowed: now the gateway says what it lacks.
    const allowed = await signedSend({ url: tg.gw.url, method: 'PUT', path: `/${BUCKET}/${key}`, headers: extra, body: 'hello', creds: app });
    t.is(allowed.status, 501, what);
    t.is(errorCode(allowed), 'NotImplemented', what);
    t.false(await exists(key), `nothing stored for ${what}`);
  }
});

test('a sub-resource the gateway lacks is answered 501 only to a caller that may act on the target; everyone else gets 403 and a denial line', async (t) => {
  await seed(tg, 'other', 'theirs');
  // May read the bucket's configuration and pub/ (s3cmd info's credential), and write up/.
  const reader = await credential(tg, [
    { families: ['bucket:read'], bucket: BUCKET },
    { families: ['object:read'], bucket: BUCKET, prefix: 'pub/' },
    { families: ['object:write'], bucket: BUCKET, prefix: 'up/' },
  ]);
  const line = async (res: { headers: Record<string, unknown> }) => (await denials(tg)).find((d) => d.requestId === res.headers['x-amz-request-id']);
  const probes: Array<{ method: string; sub: string; key?: string; body?: string }> = [
    { method: 'GET', sub: 'acl', key: 'pub/x' },
    { method: 'PUT', sub: 'acl', key: 'up/acl', body: '<AccessControlPolicy/>' },
    { method: 'GET', sub: 'torrent', key: 'pub/x' },
    { method: 'GET', sub: 'retention', key: 'pub/x' },
    { method: 'PUT', sub: 'legal-hold', key: 'up/hold', body: '<LegalHold/>' },
    { method: 'GET', sub: 'policy' },
    { method: 'GET', sub: 'lifecycle' },
    { method: 'GET', sub: 'website' },
    { method: 'PUT', sub: 'versioning', body: '<VersioningConfiguration/>' },
  ];
  for (const { method, sub, key, body } of probes) {
    const at = (bucket: string, k = key) => (k === undefined ? `/${bucket}` : `/${bucket}/${k}`);
    const what = `${method} ${at(BUCKET)}?${sub}`;
    const query = { [sub]: '' };
    const anonymous = await send({ url: tg.gw.url, method, path: `${at(BUCKET)}?${sub}`, body });
    t.is(anonymous.status, 403, what);
    t.is(errorCode(anonymous), 'AccessDenied', what);
    t.is((await line(anonymous))?.layer, 'signature', what);
    const unknown = await signedSend({ url: tg.gw.url, method, path: at(BUCKET), query, body, creds: { accessKeyId: 'AKIAUNKNOWN000000000', secretAccessKey: 'nope' } });
    t.is(errorCode(unknown), 'InvalidAccessKeyId', what);
    t.truthy(await line(unknown), what);
    const forged = await signedSend({ url: tg.gw.url, method, path: at(BUCKET), query, body, creds: { ...reader, secretAccessKey: 'wrong' } });
    t.is(errorCode(forged), 'SignatureDoesNotMatch', what);
    t.truthy(await line(forged), what);
    // Out of scope: app holds no bucket:read and nothing under secret/.
    const outside = await signedSend({ url: tg.gw.url, method, path: at(BUCKET, key && `secret/${sub}`), query, body, creds: app });
    t.is(outside.status, 403, what);
    t.is((await line(outside))?.layer, 'scope', what);
    for (const bucket of ['theirs', 'missing-bucket']) {
      const foreign = await signedSend({ url: tg.gw.url, method, path: at(bucket), query, body, creds: reader });
      t.is(foreign.status, 403, `${what} on ${bucket}`);
      t.is((await line(foreign))?.layer, 'tenant', `${what} on ${bucket}`);
    }
    if (key !== undefined) {
      // Reserved for everyone, root included: the probe reaches the reserved-namespace audit check.
      const reserved = await signedSend({ url: tg.gw.url, method, path: at(BUCKET, `_anvil/${sub}`), query, body });
      t.is(reserved.status, 403, what);
      t.is((await line(reserved))?.layer, 'reserved_namespace', what);
    }
    // A caller that may act on the target is told what is not implemented.
    for (const creds of [ROOT, reader]) {
      if (creds === reader && method === 'PUT' && key === undefined) continue; // bucket:admin: root only here
      const allowed = await signedSend({ url: tg.gw.url, method, path: at(BUCKET), query, body, creds });
      t.is(allowed.status, 501, what);
      t.is(errorCode(allowed), 'NotImplemented', what);
      t.regex(allowed.body, new RegExp(`${method} with the ${sub} subresource is not implemented`), what);
      t.falsy(await line(allowed), what);
    }
    if (key?.startsWith('up/')) t.false(await exists(key), `nothing stored by ${what}`);
  }
});

/** Sends headers with Expect: 100-continue and reports the first status line, then the final one. */
function expectContinue(path: string, headers: Record<string, string>, body: string): Promise<{ first: string; final: string; sawContinue: boolean }> {
  const u = new URL(tg.gw.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(u.port), u.hostname);
    let text = '';
    let sentBody = false;
    const lines = [`PUT ${path} HTTP/1.1`, ...Object.entries({ ...headers, expect: '100-continue', 'content-length': String(body.length) }).map(([k, v]) => `${k}: ${v}`)];
    socket.on('connect', () => socket.write(lines.join('\r\n') + '\r\n\r\n'));
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      if (!sentBody && text.startsWith('HTTP/1.1 100')) {
        sentBody = true;
        socket.write(body);
      }
      const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})[^\r]*\r\n/g)].map((m) => m[0].trim());
      const final = statuses.find((s) => !s.startsWith('HTTP/1.1 100'));
      if (final && /\r\n\r\n[\s\S]*<\/Error>|content-length: 0\r\n\r\n/i.test(text.slice(text.indexOf(final)))) {
        socket.destroy();
        resolve({ first: statuses[0]!, final, sawContinue: statuses[0]!.startsWith('HTTP/1.1 100') });
      } else if (final && final.startsWith('HTTP/1.1 200')) {
        socket.destroy();
        resolve({ first: statuses[0]!, final, sawContinue: statuses[0]!.startsWith('HTTP/1.1 100') });
      }
    });
    socket.on('error', reject);
    setTimeout(() => reject(new Error(`no final answer: ${text}`)), 30_000).unref();
  });
}

test('Expect: 100-continue: a refused request gets its final status without 100 Continue; an allowed one gets 100 first', async (t) => {
  const body = 'continued body';
  // Outside the credential's scopes: 403 at once, the body never asked for.
  const refused = await signRequest({ url: tg.gw.url, method: 'PUT', path: `/${BUCKET}/secret/new`, body, creds: app });
  const r1 = await expectContinue(refused.path, refused.headers, body);
  t.false(r1.sawContinue, r1.first);
  t.regex(r1.final, /^HTTP\/1\.1 403/);
  t.false(await exists('secret/new'));
  // A bad signature: refused before any body too.
  const forged = await signRequest({ url: tg.gw.url, method: 'PUT', path: `/${BUCKET}/up/forged`, body, creds: { ...app, secretAccessKey: 'wrong-secret-wrong-secret-wrong-secret00' } });
  const r2 = await expectContinue(forged.path, forged.headers, body);
  t.false(r2.sawContinue);
  t.regex(r2.final, /^HTTP\/1\.1 403/);
  // Allowed: 100 Continue, then the body, then 200.
  const good = await signRequest({ url: tg.gw.url, method: 'PUT', path: `/${BUCKET}/up/continued`, body, creds: app });
  const r3 = await expectContinue(good.path, good.headers, body);
  t.true(r3.sawContinue, r3.first);
  t.regex(r3.final, /^HTTP\/1\.1 200/);
  t.true(await exists('up/continued'));
});

test('response-* overrides that are no ISO-8859-1 header value are 400 InvalidArgument, never 500', async (t) => {
  const get = (query: Record<string, string>) => signedSend({ url: tg.gw.url, method: 'GET', path: `/${BUCKET}/pub/x`, query, creds: app });
  for (const [param, value] of [
    ['response-content-disposition', 'attachment; filename="1976\u20132016.md"'],
    ['response-content-type', 'text/plain\r\nx-injected: 1'],
    ['response-cache-control', 'no-cache\nx: y'],
    ['response-content-language', '\u65e5\u672c'],
    ['response-expires', 'a\u0000b'],
    ['response-content-encoding', '\ud83d\ude00'],
  ] as const) {
    const res = await get({ [param]: value });
    t.is(res.status, 400, `${param}=${JSON.stringify(value)}`);
    t.is(errorCode(res), 'InvalidArgument');
    t.truthy(res.headers['x-amz-request-id']);
    t.is(res.headers['x-injected'], undefined);
  }
  const latin1 = await get({ 'response-content-disposition': 'attachment; filename="caf\u00e9.txt"', 'response-content-type': 'text/csv' });
  t.is(latin1.status, 200);
  t.is(latin1.headers['content-type'], 'text/csv');
  t.is(Buffer.from(String(latin1.headers['content-disposition']), 'latin1').toString('latin1'), 'attachment; filename="caf\u00e9.txt"');
  t.false(tg.logs.some((l) => /request .* failed/.test(l)), tg.logs.join('\n'));
});

/**
 * A real browser (Debian's Chromium, driven by playwright-core) on a page served from another origin, against the
 * gateway on the embedded store and over MinIO: CORS from the bucket's rules (preflight answered without
 * credentials and granting nothing), a presigned PUT and a share-link GET from the page, and browser form uploads
 * (POST Object) with a SigV4 POST policy made by @aws-sdk/s3-presigned-post — fetch()ed and submitted as a real form.
 * Expected answers: S3 User Guide "Using cross-origin resource sharing (CORS)" and "Browser-based uploads using
 * POST"; S3 API reference PutBucketCors, GetBucketCors (NoSuchCORSConfiguration), PostObject (success_action_status,
 * success_action_redirect, EntityTooLarge, AccessDenied for a failed policy condition).
 */
import { CreateBucketCommand, DeleteBucketCorsCommand, GetBucketCorsCommand, GetObjectCommand, PutBucketCorsCommand, PutObjectCommand, type S3ServiceException } from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ROOT_TENANT } from '../policy/index.ts';
import { onEachBackend, type Flavour } from './helpers/backends.ts';
import { bodyBytes } from './helpers/gateway.ts';

const test = anyTest as TestFn<unknown>;

/** The flags every browser test runs Chromium with (no network beyond loopback, no background services). */
export const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

/** A page server: each origin is one loopback port serving a blank page. */
async function origin(): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/landed')) {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html><body>landed</body></html>');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><html><body><p>another origin</p></body></html>');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

/** One browser and two page origins per file, started once however many tests ask at the same time. */
let browser: Promise<{ context: BrowserContext; dir: string }> | undefined;
const origins: { a?: Promise<{ url: string; server: Server }>; b?: Promise<{ url: string; server: Server }> } = {};
const pages: { a?: { url: string; server: Server }; b?: { url: string; server: Server } } = {};

async function page(which: 'a' | 'b'): Promise<Page> {
  browser ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'anvil-chromium-'));
    const context = await chromium.launchPersistentContext(dir, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_FLAGS });
    return { context, dir };
  })();
  const { context } = await browser;
  origins[which] ??= origin();
  pages[which] = await origins[which];
  const p = await context.newPage();
  await p.goto(pages[which]!.url);
  return p;
}

test.after.always(async () => {
  const b = await browser?.catch(() => undefined);
  await b?.context.close();
  if (b) rmSync(b.dir, { recursive: true, force: true });
  for (const o of Object.values(origins)) {
    const { server } = await o;
    server.closeAllConnections();
    server.close();
  }
});

async function freshBucket(f: Flavour): Promise<string> {
  const bucket = `web-${randomBytes(4).toString('hex')}`;
  await f.gw.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

async function allowOrigin(f: Flavour, bucket: string, allowed: string): Promise<void> {
  await f.gw.s3.send(new PutBucketCorsCommand({
    Bucket: bucket,
    CORSConfiguration: { CORSRules: [{ AllowedOrigins: [allowed], AllowedMethods: ['GET', 'PUT', 'POST', 'HEAD'], AllowedHeaders: ['*'], ExposeHeaders: ['ETag'], MaxAgeSeconds: 60 }] },
  }));
}

/** What a page's fetch saw: status, body and the ETag it may read, or the network error CORS turns a refusal into. */
type Seen = { status: number; text: string; etag: string | null } | { error: string };

function pageFetch(p: Page, url: string, init: { method: string; body?: string; headers?: Record<string, string> }): Promise<Seen> {
  return p.evaluate(async ({ url, init }) => {
    try {
      const r = await fetch(url, init);
      return { status: r.status, text: await r.text(), etag: r.headers.get('etag') };
    } catch (e) {
      return { error: String(e) };
    }
  }, { url, init });
}

async function text(f: Flavour, bucket: string, key: string): Promise<string> {
  return (await bodyBytes((await f.gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body)).toString();
}

async function missing(t: ExecutionContext, f: Flavour, bucket: string, key: string): Promise<void> {
  const err = (await t.throwsAsync(f.gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key })))) as S3ServiceException;
  t.is(err?.name, 'NoSuchKey');
}

/** POSTs a form from Node (fetch + FormData), for the refusals a browser would only show as an opaque page. */
async function postForm(url: string, fields: Record<string, string>, file: string): Promise<{ status: number; body: string }> {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append('file', new Blob([file], { type: 'text/plain' }), 'hello.txt');
  const res = await fetch(url, { method: 'POST', body: form, redirect: 'manual' });
  return { status: res.status, body: await res.text() };
}

onEachBackend(test, 'browser', (it) => {
  it('CORS: without rules the page cannot read; with them it PUTs by presigned URL and GETs by share link', async (t, f) => {
    const bucket = await freshBucket(f);
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'shared.txt', Body: 'shared with the page' }));
    const p = await page('a');
    const share = await getSignedUrl(f.gw.s3, new GetObjectCommand({ Bucket: bucket, Key: 'shared.txt' }), { expiresIn: 300 });
    const before = await pageFetch(p, share, { method: 'GET' });
    t.true('error' in before, JSON.stringify(before));
    await allowOrigin(f, bucket, pages.a!.url);
    const got = await pageFetch(p, share, { method: 'GET' });
    t.deepEqual('error' in got ? got : { status: got.status, text: got.text }, { status: 200, text: 'shared with the page' });
    const putUrl = await getSignedUrl(f.gw.s3, new PutObjectCommand({ Bucket: bucket, Key: 'from-page.json' }), { expiresIn: 300 });
    // application/json is not a CORS-safelisted type: the browser sends a preflight first.
    const put = await pageFetch(p, putUrl, { method: 'PUT', body: '{"from":"browser"}', headers: { 'content-type': 'application/json' } });
    t.false('error' in put, JSON.stringify(put));
    if (!('error' in put)) {
      t.is(put.status, 200);
      t.regex(put.etag ?? '', /^"[0-9a-f]{32}"$/);
    }
    t.is(await text(f, bucket, 'from-page.json'), '{"from":"browser"}');
    await p.close();
  });

  it('CORS grants no authority: an unsigned PUT passes preflight and is AccessDenied; another origin is refused', async (t, f) => {
    const bucket = await freshBucket(f);
    const p = await page('a');
    await allowOrigin(f, bucket, pages.a!.url);
    const unsigned = await pageFetch(p, `${f.gw.gw.url}/${bucket}/sneaky.txt`, { method: 'PUT', body: 'x', headers: { 'content-type': 'application/json' } });
    t.false('error' in unsigned, JSON.stringify(unsigned));
    if (!('error' in unsigned)) {
      t.is(unsigned.status, 403);
      t.regex(unsigned.text, /<Code>AccessDenied<\/Code>/);
    }
    await missing(t, f, bucket, 'sneaky.txt');
    await p.close();
    const other = await page('b');
    const putUrl = await getSignedUrl(f.gw.s3, new PutObjectCommand({ Bucket: bucket, Key: 'other.json' }), { expiresIn: 300 });
    const refused = await pageFetch(other, putUrl, { method: 'PUT', body: '{}', headers: { 'content-type': 'application/json' } });
    t.true('error' in refused, JSON.stringify(refused));
    await missing(t, f, bucket, 'other.json');
    await other.close();
    // The preflight itself, as the browser sent it: 403 CORSResponse for an origin no rule allows.
    const pre = await fetch(`${f.gw.gw.url}/${bucket}/other.json`, { method: 'OPTIONS', headers: { origin: pages.b!.url, 'access-control-request-method': 'PUT' } });
    t.is(pre.status, 403);
    t.regex(await pre.text(), /<Code>CORSResponse<\/Code>/);
    const ok = await fetch(`${f.gw.gw.url}/${bucket}/x`, { method: 'OPTIONS', headers: { origin: pages.a!.url, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'content-type' } });
    t.is(ok.status, 200);
    t.is(ok.headers.get('access-control-allow-origin'), pages.a!.url);
    t.is(ok.headers.get('access-control-max-age'), '60');
  });

  it('Get/DeleteBucketCors round-trip the rules; a bucket without them is NoSuchCORSConfiguration', async (t, f) => {
    const bucket = await freshBucket(f);
    const none = (await t.throwsAsync(f.gw.s3.send(new GetBucketCorsCommand({ Bucket: bucket })))) as S3ServiceException;
    t.is(none?.name, 'NoSuchCORSConfiguration');
    await allowOrigin(f, bucket, 'https://app.example');
    const rules = (await f.gw.s3.send(new GetBucketCorsCommand({ Bucket: bucket }))).CORSRules;
    t.deepEqual(rules?.[0]?.AllowedOrigins, ['https://app.example']);
    t.deepEqual(rules?.[0]?.AllowedMethods, ['GET', 'PUT', 'POST', 'HEAD']);
    t.is(rules?.[0]?.MaxAgeSeconds, 60);
    const bad = (await t.throwsAsync(f.gw.s3.send(new PutBucketCorsCommand({ Bucket: bucket, CORSConfiguration: { CORSRules: [{ AllowedOrigins: ['*'], AllowedMethods: ['PATCH'] }] } })))) as S3ServiceException;
    t.is(bad?.name, 'InvalidRequest');
    await f.gw.s3.send(new DeleteBucketCorsCommand({ Bucket: bucket }));
    t.is(((await t.throwsAsync(f.gw.s3.send(new GetBucketCorsCommand({ Bucket: bucket })))) as S3ServiceException)?.name, 'NoSuchCORSConfiguration');
  });

  it('POST Object from the page: a presigned POST policy uploads, fetch()ed (201) and as a real form (redirect)', async (t, f) => {
    const bucket = await freshBucket(f);
    const p = await page('a');
    await allowOrigin(f, bucket, pages.a!.url);
    const post = await createPresignedPost(f.gw.s3, {
      Bucket: bucket,
      Key: 'uploads/${filename}',
      Conditions: [['starts-with', '$key', 'uploads/'], ['content-length-range', 1, 1000], ['eq', '$Content-Type', 'text/plain'], ['eq', '$success_action_status', '201']],
      Fields: { 'Content-Type': 'text/plain', success_action_status: '201' },
      Expires: 300,
    });
    const seen = await p.evaluate(async ({ url, fields }) => {
      const form = new FormData();
      for (const [k, v] of Object.entries(fields)) form.append(k, v);
      form.append('file', new Blob(['posted from the page'], { type: 'text/plain' }), 'note.txt');
      const r = await fetch(url, { method: 'POST', body: form });
      return { status: r.status, text: await r.text() };
    }, { url: post.url, fields: post.fields });
    t.is(seen.status, 201, seen.text);
    t.regex(seen.text, /<Key>uploads\/note\.txt<\/Key>/);
    t.is(await text(f, bucket, 'uploads/note.txt'), 'posted from the page');

    // A real <form> submission, redirected back to the page's origin with bucket, key and etag.
    const landing = `${pages.a!.url}/landed`;
    const form = await createPresignedPost(f.gw.s3, {
      Bucket: bucket,
      Key: 'uploads/form.txt',
      Conditions: [['eq', '$success_action_redirect', landing]],
      Fields: { success_action_redirect: landing },
      Expires: 300,
    });
    await p.setContent(`<form id="f" method="POST" enctype="multipart/form-data" action="${form.url}">${Object.entries(form.fields)
      .map(([k, v]) => `<input type="hidden" name="${k}" value="${v.replace(/"/g, '&quot;')}">`)
      .join('')}<input type="file" name="file" id="file"></form>`);
    await p.setInputFiles('#file', { name: 'form.txt', mimeType: 'text/plain', buffer: Buffer.from('submitted by a form') });
    await Promise.all([p.waitForURL(/\/landed\?/), p.evaluate(() => (document.getElementById('f') as HTMLFormElement).submit())]);
    const landed = new URL(p.url());
    t.is(landed.searchParams.get('bucket'), bucket);
    t.is(landed.searchParams.get('key'), 'uploads/form.txt');
    t.regex(landed.searchParams.get('etag') ?? '', /^"[0-9a-f]{32}"$/);
    t.is(await text(f, bucket, 'uploads/form.txt'), 'submitted by a form');
    await p.close();
  });

  it('POST policies are enforced: key prefix, size range, expiry, signature, and the bucket of the URL', async (t, f) => {
    const bucket = await freshBucket(f);
    const otherBucket = await freshBucket(f);
    const make = (extra: { Key?: string; Expires?: number; Bucket?: string } = {}) =>
      createPresignedPost(f.gw.s3, { Bucket: extra.Bucket ?? bucket, Key: extra.Key ?? 'uploads/a.txt', Conditions: [['starts-with', '$key', 'uploads/'], ['content-length-range', 1, 10]], Expires: extra.Expires ?? 300 });
    const good = await make();
    t.is((await postForm(good.url, good.fields, 'tiny')).status, 204);
    t.is(await text(f, bucket, 'uploads/a.txt'), 'tiny');

    const big = await make({ Key: 'uploads/big.txt' });
    const tooBig = await postForm(big.url, big.fields, 'x'.repeat(11));
    t.is(tooBig.status, 400, tooBig.body);
    t.regex(tooBig.body, /<Code>EntityTooLarge<\/Code>/);
    await missing(t, f, bucket, 'uploads/big.txt');

    const elsewhere = await make({ Key: 'elsewhere/x.txt' });
    const outside = await postForm(elsewhere.url, elsewhere.fields, 'x');
    t.regex(outside.body, /starts-with/);
    const swapped = await postForm(good.url, { ...good.fields, key: 'uploads/swapped.txt' }, 'x');
    t.is(swapped.status, 403, swapped.body);
    await missing(t, f, bucket, 'uploads/swapped.txt');
    t.is(outside.status, 403, outside.body);
    await missing(t, f, bucket, 'elsewhere/x.txt');

    const forged = await postForm(good.url, { ...good.fields, 'X-Amz-Signature': '0'.repeat(64) }, 'x');
    t.is(forged.status, 403);

    const extra = await postForm(good.url, { ...good.fields, 'x-amz-meta-sneaky': 'not in the policy' }, 'x');
    t.is(extra.status, 403, extra.body);

    // MinIO CVE-2023-28434: a policy for one bucket posted to another bucket's URL must not write there.
    const forOther = await make({ Bucket: otherBucket, Key: 'uploads/cve.txt' });
    const crossed = await postForm(good.url, forOther.fields, 'x');
    t.is(crossed.status, 403, crossed.body);
    const { bucket: _named, ...withoutBucket } = forOther.fields as Record<string, string>;
    t.is((await postForm(good.url, withoutBucket, 'x')).status, 403);
    await missing(t, f, bucket, 'uploads/cve.txt');
    await missing(t, f, otherBucket, 'uploads/cve.txt');

    const expiring = await make({ Key: 'uploads/late.txt', Expires: 1 });
    await new Promise((r) => setTimeout(r, 2200));
    const late = await postForm(expiring.url, expiring.fields, 'x');
    t.is(late.status, 403, late.body);
    await missing(t, f, bucket, 'uploads/late.txt');
  });

  it('POST uploads are authorized on the key written: the signer\'s scopes and the reserved prefix apply', async (t, f) => {
    const bucket = await freshBucket(f);
    const c = await f.gw.gw.policy.createCredential({ tenant: ROOT_TENANT, name: `p${randomBytes(3).toString('hex')}`, scopes: [{ families: ['object:write'], bucket, prefix: 'inbox/' }] });
    const scoped = f.gw.client({ accessKeyId: c.accessKeyId, secretAccessKey: c.secretKey });
    const anyKey = await createPresignedPost(scoped, { Bucket: bucket, Key: 'inbox/ok.txt', Conditions: [['starts-with', '$key', '']], Expires: 300 });
    t.is((await postForm(anyKey.url, anyKey.fields, 'in scope')).status, 204);
    t.is(await text(f, bucket, 'inbox/ok.txt'), 'in scope');
    const outOfScope = await postForm(anyKey.url, { ...anyKey.fields, key: 'private/x.txt' }, 'x');
    t.is(outOfScope.status, 403, outOfScope.body);
    await missing(t, f, bucket, 'private/x.txt');
    const rootPost = await createPresignedPost(f.gw.s3, { Bucket: bucket, Key: '_anvil/x', Expires: 300 });
    const reserved = await postForm(rootPost.url, rootPost.fields, 'x');
    t.is(reserved.status, 403, reserved.body);
    scoped.destroy();
  });
});

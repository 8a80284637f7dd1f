/**
 * Object content never acts with the web console's authority (issue 9, tester's finding 1): the console at
 * /_anvil/console/ shares its origin with every object the gateway serves. A prefix-scoped backup credential uploads
 * an HTML page whose script reads the signed-in admin's CSRF token and POSTs a new credential to the console API;
 * a signed-in admin opens it in a real browser (Debian's Chromium via playwright-core), as an object stored as
 * text/html and as one turned into text/html by a presigned `response-content-type`. No credential may appear.
 * Every answer outside the console carries `Content-Security-Policy: sandbox` and nosniff, and the console API
 * refuses whatever does not come from its own origin (Sec-Fetch-Site, Origin; a sandboxed document's is `null`).
 */
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import anyTest, { type TestFn } from 'ava';
import type { Browser } from 'playwright-core';
import { denials, ok, type Creds } from './helpers/admin.ts';
import { BUCKET, credential, seed, TENANT } from './helpers/authority.ts';
import { launchChromium } from './helpers/chromium.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';

const test = anyTest as TestFn<unknown>;
const CONSOLE = '/_anvil/console';

let browser: Browser;

test.before(async () => {
  const { buildIfStale } = (await import('../bin/build-if-stale.js' as string)) as { buildIfStale(o: { quiet: boolean }): boolean };
  buildIfStale({ quiet: true });
  browser = await launchChromium();
});

test.after.always(async () => {
  await browser?.close();
});

/** The attacker's page: read the session's CSRF token, then ask the console API for a new tenant admin. */
const ATTACK = `<!doctype html><html><head><title>start</title></head><body><script>
(async () => {
  try {
    const session = await (await fetch('${CONSOLE}/api/session', { credentials: 'include' })).json();
    const made = await fetch('${CONSOLE}/api/v1/credentials', {
      method: 'POST', credentials: 'include',
      headers: { 'content-type': 'application/json', 'x-anvil-csrf': session.csrf },
      body: JSON.stringify({ tenant: '${TENANT}', name: 'pwned', scopes: [{ families: ['admin', 'object:read'], bucket: '*' }] }),
    });
    document.title = 'made ' + made.status;
  } catch (error) {
    document.title = 'failed ' + error;
  }
})();
</script></body></html>`;

function s3(tg: TestGateway, creds: Creds): S3Client {
  return new S3Client({ endpoint: tg.gw.url, region: tg.config.region, credentials: creds, forcePathStyle: true });
}

/** Whether a credential named `pwned` exists in the tenant. */
async function pwned(tg: TestGateway): Promise<boolean> {
  return JSON.stringify(await ok(tg, ROOT, 'GET', `/credentials?tenant=${TENANT}`)).includes('"pwned"');
}

test('an uploaded HTML object opened by a signed-in admin cannot use the console: no credential is created', async (t) => {
  const tg = await startTestGateway();
  try {
    await seed(tg);
    const backup = await credential(tg, [{ families: ['object:read', 'object:write'], bucket: BUCKET, prefix: 'pub/' }]);
    const client = s3(tg, backup);
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'pub/page.html', Body: ATTACK, ContentType: 'text/html' }));
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'pub/data.bin', Body: ATTACK, ContentType: 'application/octet-stream' }));
    const links = [
      await getSignedUrl(client, new GetObjectCommand({ Bucket: BUCKET, Key: 'pub/page.html' }), { expiresIn: 600 }),
      await getSignedUrl(client, new GetObjectCommand({ Bucket: BUCKET, Key: 'pub/data.bin', ResponseContentType: 'text/html' }), { expiresIn: 600 }),
    ];

    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${tg.gw.url}${CONSOLE}/`);
    await page.getByLabel('Access key ID').fill(ROOT.accessKeyId);
    await page.getByLabel('Secret access key').fill(ROOT.secretAccessKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Denials' }).waitFor();

    for (const link of links) {
      const answer = await page.goto(link);
      t.is(answer?.status(), 200, 'the object itself is served');
      t.is(answer?.headers()['content-security-policy'], 'sandbox');
      t.is(answer?.headers()['x-content-type-options'], 'nosniff');
      // Give a script every chance to run; a sandboxed document runs none.
      await page.waitForFunction(() => document.title !== 'start', undefined, { timeout: 3000 }).catch(() => undefined);
      t.false(await pwned(tg), `no credential made from ${new URL(link).pathname}: ${await page.title()}`);
    }
    // The session itself still works from the console's own page.
    await page.goto(`${tg.gw.url}${CONSOLE}/`);
    await page.getByRole('heading', { level: 1, name: 'Denials' }).waitFor();
    await context.close();
    client.destroy();
  } finally {
    await tg.close();
  }
});

test('every answer outside the console is sandboxed and nosniff: objects, HEAD, errors, the admin API', async (t) => {
  const tg = await startTestGateway();
  try {
    await seed(tg);
    const url = await getSignedUrl(tg.s3, new GetObjectCommand({ Bucket: BUCKET, Key: 'pub/x', ResponseContentType: 'text/html' }), { expiresIn: 600 });
    const answers = [
      await fetch(url),
      await fetch(url, { method: 'HEAD' }),
      await fetch(`${tg.gw.url}/${BUCKET}/pub/x`), // anonymous: AccessDenied
      await fetch(`${tg.gw.url}/${BUCKET}/pub/x?response-content-type=text/html`),
      await fetch(`${tg.gw.url}/_anvil/admin/v1/whoami`),
    ];
    for (const a of answers) {
      t.is(a.headers.get('content-security-policy'), 'sandbox', `${a.url} ${a.status}`);
      t.is(a.headers.get('x-content-type-options'), 'nosniff');
    }
    t.is(answers[0]!.status, 200);
    t.is(answers[0]!.headers.get('content-type'), 'text/html');
    const head = await tg.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'pub/x' }));
    t.is(head.$metadata.httpStatusCode, 200);
    // The console's page keeps its own policy (scripts from itself).
    const page = await fetch(`${tg.gw.url}${CONSOLE}/`);
    t.regex(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  } finally {
    await tg.close();
  }
});

test('the console API refuses what does not come from its own origin: Origin null or foreign, Sec-Fetch-Site cross-site or same-site', async (t) => {
  const tg = await startTestGateway();
  try {
    await seed(tg);
    const signIn = await fetch(`${tg.gw.url}${CONSOLE}/api/session`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'sec-fetch-site': 'same-origin' },
      body: JSON.stringify({ accessKeyId: ROOT.accessKeyId, secretKey: ROOT.secretAccessKey }),
    });
    t.is(signIn.status, 200);
    const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
    const { csrf } = (await signIn.json()) as { csrf: string };
    const host = new URL(tg.gw.url).host;
    const read = (headers: Record<string, string>) => fetch(`${tg.gw.url}${CONSOLE}/api/session`, { headers: { cookie, ...headers } });
    const create = (name: string, headers: Record<string, string>) =>
      fetch(`${tg.gw.url}${CONSOLE}/api/v1/credentials`, {
        method: 'POST', headers: { cookie, 'content-type': 'application/json', 'x-anvil-csrf': csrf, ...headers },
        body: JSON.stringify({ tenant: TENANT, name, scopes: [{ families: ['object:read'], bucket: BUCKET }] }),
      });

    t.is((await read({ 'sec-fetch-site': 'same-origin' })).status, 200);
    t.is((await read({ 'sec-fetch-site': 'none' })).status, 200, 'the address bar');
    const foreign: Record<string, string>[] = [{ 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, { origin: 'null' }, { origin: 'http://127.0.0.1:1' }];
    for (const headers of foreign) {
      t.is((await read(headers)).status, 403, JSON.stringify(headers));
      t.is((await create('refused', headers)).status, 403, JSON.stringify(headers));
    }
    t.is((await create('refused', { 'sec-fetch-site': 'none' })).status, 403, 'a change never comes from the address bar');
    t.false(JSON.stringify(await ok(tg, ROOT, 'GET', `/credentials?tenant=${TENANT}`)).includes('"refused"'));
    t.true((await denials(tg)).some((d) => d.action === 'Console:POST /api/v1/credentials' && /Origin: null/.test(d.reason)));
    t.is((await create('accepted', { 'sec-fetch-site': 'same-origin', origin: `http://${host}` })).status, 201);
  } finally {
    await tg.close();
  }
});

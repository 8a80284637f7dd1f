/**
 * The web console at /_anvil/console/ in a real browser (Debian's Chromium, driven by playwright-core) against a real
 * gateway: sign-in exchanges an access key and secret for an HttpOnly, SameSite=Strict cookie (Secure on TLS); the
 * denial histogram and table show a planted denial and follow new ones live; revoking a credential from the
 * inventory refuses its next S3 request; changes without the session's CSRF token, or from another site, are
 * refused; a tenant admin sees only its own tenant; the audit and relationship pages work; a 10,000-line denial
 * window renders only the rows in view; axe finds no serious accessibility violation.
 * Set ANVIL_CONSOLE_SCREENSHOTS=docs/console to (re)write the README's screenshots while the tests run.
 */
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { DenialLog, FAMILIES, type DenialLayer, type ScopeGrant } from '../policy/index.ts';
import { denials, ok, type Creds } from './helpers/admin.ts';
import { seed } from './helpers/authority.ts';
import { launchChromium } from './helpers/chromium.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';

const test = anyTest as TestFn<unknown>;
const SHOTS = process.env.ANVIL_CONSOLE_SCREENSHOTS;
const CONSOLE = '/_anvil/console';

let browser: Browser;

test.before(async () => {
  // The gateway serves the console from dist/console, which the build writes (as `npm start` builds it).
  const { buildIfStale } = (await import('../bin/build-if-stale.js' as string)) as { buildIfStale(o: { quiet: boolean }): boolean };
  buildIfStale({ quiet: true });
  browser = await launchChromium();
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
});

test.after.always(async () => {
  await browser?.close();
});

async function credential(tg: TestGateway, tenant: string, name: string, scopes: ScopeGrant[], description = ''): Promise<Creds & { id: string }> {
  const c = await ok(tg, ROOT, 'POST', '/credentials', { tenant, name, description, scopes });
  return { id: c.accessKeyId, accessKeyId: c.accessKeyId, secretAccessKey: c.secretKey };
}

/** The HTTP status of a GetObject with these credentials. */
async function get(tg: TestGateway, creds: Creds, bucket: string, key: string): Promise<number> {
  const s3 = new S3Client({ endpoint: tg.gw.url, region: tg.config.region, credentials: creds, forcePathStyle: true });
  try {
    await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body?.transformToString();
    return 200;
  } catch (error) {
    return (error as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode;
  } finally {
    s3.destroy();
  }
}

/** A new browser context (its own cookies) signed in to the console as `creds`, on the denials page. */
async function signedIn(tg: TestGateway, creds: Creds): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (error) => { throw error; });
  await page.goto(`${tg.gw.url}${CONSOLE}/`);
  await page.getByLabel('Access key ID').fill(creds.accessKeyId);
  await page.getByLabel('Secret access key').fill(creds.secretAccessKey);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Denials' }).waitFor();
  return { context, page };
}

async function shot(page: Page, name: string): Promise<void> {
  if (SHOTS) await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

/** The session cookie of a context. */
async function sessionCookie(context: BrowserContext) {
  return (await context.cookies()).find((c) => c.name === 'anvil_console');
}

test('sign in, see a planted denial in the histogram and the table, follow new ones live; the cookie is HttpOnly and SameSite=Strict', async (t) => {
  const tg = await startTestGateway();
  try {
    await seed(tg);
    const reader = await credential(tg, 'acme', 'reports', [{ families: ['object:read'], bucket: 'data', prefix: 'reports/' }], 'nightly report export');
    t.is(await get(tg, reader, 'data', 'secret/x'), 403, 'the planted denial');

    const { context, page } = await signedIn(tg, ROOT);
    const cookie = (await sessionCookie(context))!;
    t.like(cookie, { httpOnly: true, sameSite: 'Strict', secure: false, path: CONSOLE });
    t.true(cookie.expires * 1000 - Date.now() <= 900_000 + 5000, 'short-lived: ANVIL_CONSOLE_SESSION_SECONDS (900) by default');
    t.false((await page.evaluate(() => document.cookie)).includes('anvil_console'), 'scripts cannot read the session');

    const planted = page.getByRole('region', { name: 'Denial lines' }).getByRole('row').filter({ hasText: 'data/secret/x' });
    await planted.waitFor();
    t.regex(await planted.innerText(), new RegExp(`scope[\\s\\S]*GetObject[\\s\\S]*acme[\\s\\S]*${reader.id}[\\s\\S]*no grant of object:read`));
    t.true((await page.locator('.histogram svg rect[data-layer="scope"]').count()) >= 1, 'a scope segment in the histogram');
    t.regex(await page.locator('.histogram svg rect[data-layer="scope"]').first().locator('title').textContent() ?? '', /scope: 1$/);
    await shot(page, 'denials');

    // Filters: only the reader's lines, only the scope layer.
    await page.getByLabel('Access key').fill(reader.id);
    await page.getByLabel('Layer', { exact: true }).selectOption('scope');
    await page.getByRole('button', { name: 'Show' }).click();
    await page.getByText('1 denial, newest first').waitFor();

    // Live follow: a new refusal appears without reloading.
    await page.getByLabel('Live follow').check();
    t.is(await get(tg, reader, 'data', 'secret/followed'), 403);
    await page.getByRole('row').filter({ hasText: 'data/secret/followed' }).waitFor({ timeout: 15_000 });
    await page.getByText('2 denials, newest first').waitFor();
    t.is(await page.locator('.histogram svg rect[data-layer="scope"] title').filter({ hasText: 'scope: 2' }).count(), 1, 'both in the same bar');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    t.is(await sessionCookie(context), undefined, 'signing out clears the cookie');
    await context.close();
  } finally {
    await tg.close();
  }
});

test('revoke a credential from the inventory after a confirmation: its next S3 request is refused; CSRF and cross-site changes are refused', async (t) => {
  const tg = await startTestGateway();
  try {
    await seed(tg);
    const victim = await credential(tg, 'acme', 'backup-host1', [{ families: ['object:read'], bucket: 'data', prefix: 'pub/' }], 'nightly backup of host1');
    const wide = await credential(tg, 'acme', 'everything-reader', [{ families: ['object:read'], bucket: '*' }], 'reads every bucket');
    const spared = await credential(tg, 'acme', 'spared', [{ families: ['object:read'], bucket: 'data', prefix: 'pub/' }]);
    t.is(await get(tg, victim, 'data', 'pub/x'), 200);

    const { context, page } = await signedIn(tg, ROOT);
    await page.getByRole('link', { name: 'Credentials' }).click();
    const row = (id: string) => page.locator(`tr[data-access-key="${id}"]`);
    await row(wide.id).getByText('broad-scope').waitFor();
    t.regex(await row(victim.id).innerText(), /backup-host1[\s\S]*nightly backup of host1[\s\S]*object:read@data\/pub\/[\s\S]*active/);
    await row(wide.id).getByText('broad-scope').click();
    t.regex(await row(wide.id).innerText(), /on every bucket of tenant acme[\s\S]*anvil credential create --tenant acme/);
    await shot(page, 'credentials');

    // Revoke asks first; Cancel keeps the credential.
    await page.getByRole('button', { name: `Revoke ${victim.id}` }).first().click();
    const dialog = page.getByRole('dialog', { name: 'Revoke credential' });
    await dialog.waitFor();
    t.true(await dialog.getByRole('button', { name: 'Cancel' }).evaluate((b) => b === document.activeElement), 'Cancel has the focus');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    t.is(await get(tg, victim, 'data', 'pub/x'), 200);
    await page.getByRole('button', { name: `Revoke ${victim.id}` }).first().click();
    await dialog.getByRole('button', { name: `Revoke ${victim.id}` }).click();
    await page.getByText(`Credential ${victim.id} revoked`).first().waitFor();
    await row(victim.id).getByText('revoked').waitFor();
    t.is(await get(tg, victim, 'data', 'pub/x'), 403, 'the next S3 request with it is refused');

    // Rotate shows the new secret once; the old one stops working, the new one works.
    await page.getByRole('button', { name: `Rotate ${spared.id}` }).click();
    await page.getByRole('dialog', { name: 'Rotate credential' }).getByRole('button', { name: `Rotate ${spared.id}` }).click();
    // The secret's dialog is in the page before the answer arrives, its field empty: wait until it shows the secret.
    const secretField = page.getByRole('dialog', { name: 'New secret' }).getByLabel('Secret access key');
    await secretField.waitFor();
    await page.waitForFunction(() => (document.getElementById('new-secret') as HTMLInputElement | null)?.value !== '');
    const fresh = await secretField.inputValue();
    t.regex(fresh, /^\S{20,}$/);
    t.is(await get(tg, spared, 'data', 'pub/x'), 403);
    t.is(await get(tg, { accessKeyId: spared.id, secretAccessKey: fresh }, 'data', 'pub/x'), 200);
    await page.getByRole('button', { name: 'Done' }).click();

    // The same change without the session's CSRF token, or with a wrong one, is refused (and logged).
    const cookie = (await sessionCookie(context))!;
    const revoke = (headers: Record<string, string>) =>
      fetch(`${tg.gw.url}${CONSOLE}/api/v1/credentials/${wide.id}/revoke`, { method: 'POST', headers: { cookie: `anvil_console=${cookie.value}`, 'content-type': 'application/json', ...headers }, body: '{}' });
    const noToken = await revoke({});
    t.is(noToken.status, 403);
    t.regex((await noToken.json()).error.message, /CSRF token/);
    t.is((await revoke({ 'x-anvil-csrf': 'not-the-token' })).status, 403);
    t.is((await revoke({ 'x-anvil-csrf': 'x', 'sec-fetch-site': 'cross-site' })).status, 403);
    t.true((await denials(tg)).some((d) => d.action === `Console:POST /api/v1/credentials/${wide.id}/revoke` && d.reason === "console change without the session's CSRF token" && d.accessKeyId === ROOT.accessKeyId));
    // With the token the page holds, it is accepted: the token is what made the difference.
    const session = await (await fetch(`${tg.gw.url}${CONSOLE}/api/session`, { headers: { cookie: `anvil_console=${cookie.value}` } })).json();
    t.is(session.accessKeyId, ROOT.accessKeyId);
    t.is(await get(tg, wide, 'data', 'pub/x'), 200, 'still active after the refused attempts');

    // A page of another origin in the same browser: its fetch carries no session (and would lack the token).
    const other = await browser.newContext();
    await other.addCookies([{ ...cookie, sameSite: 'Strict' }]);
    const evil = await other.newPage();
    await evil.goto(`${tg.gw.url}/_anvil/health/live`);
    const { server, url } = await serveOtherOrigin(`<form id=f method=post action="${tg.gw.url}${CONSOLE}/api/v1/credentials/${wide.id}/revoke"></form>`);
    try {
      await evil.goto(url);
      const status = await evil.evaluate(async (target) => (await fetch(target, { method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json' }, body: '{}' }).catch(() => ({ status: 0 }))).status,
        `${tg.gw.url}${CONSOLE}/api/v1/credentials/${wide.id}/revoke`);
      t.not(status, 200);
      await Promise.all([evil.waitForLoadState(), evil.evaluate(() => (document.getElementById('f') as HTMLFormElement).submit())]);
      await evil.waitForTimeout(500);
      t.is(await get(tg, wide, 'data', 'pub/x'), 200, 'a cross-site form post revoked nothing');
    } finally {
      server.close();
      await other.close();
    }
    await context.close();
  } finally {
    await tg.close();
  }
});

/** A page served from another origin (another loopback port). */
async function serveOtherOrigin(html: string): Promise<{ server: import('node:http').Server; url: string }> {
  const { createServer } = await import('node:http');
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><html><body>${html}</body></html>`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://localhost:${(server.address() as { port: number }).port}/` };
}

test('a tenant admin sees only its own tenant: credentials, denials and findings; another tenant\'s answer as missing', async (t) => {
  const tg = await startTestGateway();
  try {
    await seed(tg, 'acme', 'data');
    await seed(tg, 'other', 'elsewhere');
    const acmeAdmin = await credential(tg, 'acme', 'acme-admin', [{ families: [...FAMILIES], bucket: '*' }]);
    const acmeJob = await credential(tg, 'acme', 'acme-job', [{ families: ['object:read'], bucket: 'data', prefix: 'pub/' }]);
    const otherJob = await credential(tg, 'other', 'other-job', [{ families: ['object:read'], bucket: 'elsewhere', prefix: 'pub/' }]);
    t.is(await get(tg, acmeJob, 'data', 'secret/x'), 403);
    t.is(await get(tg, otherJob, 'elsewhere', 'secret/x'), 403);

    const { context, page } = await signedIn(tg, acmeAdmin);
    await page.getByRole('row').filter({ hasText: 'data/secret/x' }).waitFor();
    t.is(await page.getByRole('row').filter({ hasText: 'elsewhere/secret/x' }).count(), 0, "no line of tenant other");
    t.is(await page.getByLabel('Tenant').inputValue(), 'acme');
    t.true(await page.getByLabel('Tenant').evaluate((e) => (e as HTMLInputElement).readOnly));

    await page.getByRole('link', { name: 'Credentials' }).click();
    await page.locator(`tr[data-access-key="${acmeJob.id}"]`).waitFor();
    t.is(await page.locator(`tr[data-access-key="${otherJob.id}"]`).count(), 0);
    t.false((await page.locator('table.inventory').innerText()).includes('other-job'));

    await page.getByRole('link', { name: 'Audit' }).click();
    await page.getByRole('heading', { name: /Findings now/ }).waitFor();
    const tenants = await page.locator('table.findings tbody tr td:nth-child(3)').allInnerTexts();
    t.true(tenants.length > 0 && tenants.every((x) => x === 'acme'), tenants.join(','));

    // The console API answers exactly as the admin API would.
    const cookie = (await sessionCookie(context))!;
    const call = (path: string) => fetch(`${tg.gw.url}${CONSOLE}/api/v1${path}`, { headers: { cookie: `anvil_console=${cookie.value}` } });
    t.is((await call('/credentials?tenant=other')).status, 403);
    t.is((await call(`/credentials/${otherJob.id}`)).status, 404, 'another tenant\'s credential answers as a missing one');
    t.is((await call('/tenants')).status, 403);
    t.is((await call('/denials?tenant=other')).status, 403);
    t.is((await call('/audit/check?tenant=other')).status, 403);
    const lines = (await (await call('/denials')).json()).denials as Array<{ tenant?: string }>;
    t.true(lines.length > 0 && lines.every((d) => d.tenant === 'acme'));
    t.true((await denials(tg)).some((d) => d.action === 'Admin:ListCredentials' && d.layer === 'tenant' && d.accessKeyId === acmeAdmin.id), 'refusals are denial lines');
    await context.close();

    // A credential without the admin family may sign in but is refused what the admin API refuses it.
    const narrow = await signedIn(tg, acmeJob);
    await narrow.page.getByText('this operation needs the admin family').first().waitFor();
    await narrow.context.close();
  } finally {
    await tg.close();
  }
});

test('signing out ends the session on the server: a copy of its cookie is refused afterwards', async (t) => {
  const tg = await startTestGateway();
  try {
    const send = (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) =>
      new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; json: any }>((resolve, reject) => {
        const req = httpRequest(`${tg.gw.url}${CONSOLE}${path}`, { method, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, json: text ? JSON.parse(text) : undefined }));
        });
        req.on('error', reject);
        req.end(body === undefined ? undefined : JSON.stringify(body));
      });
    await seed(tg);
    const job = await credential(tg, 'acme', 'job', [{ families: ['admin'], bucket: 'data' }]);
    const signIn = await send('POST', '/api/session', {}, { accessKeyId: job.id, secretKey: job.secretAccessKey });
    t.is(signIn.status, 200);
    // The copy an attacker (or a shared machine's browser history) keeps of the cookie.
    const copied = { cookie: String(signIn.headers['set-cookie']).split(';')[0]! };
    t.is((await send('GET', '/api/session', copied)).status, 200);
    t.is((await send('GET', '/api/v1/whoami', copied)).status, 200);

    const out = await send('DELETE', '/api/session', { ...copied, 'x-anvil-csrf': signIn.json.csrf });
    t.is(out.status, 200);
    t.regex(String(out.headers['set-cookie']), /Max-Age=0/);
    for (const path of ['/api/session', '/api/v1/whoami', '/api/v1/credentials?tenant=acme']) {
      const refused = await send('GET', path, copied);
      t.is(refused.status, 401, `${path} after sign-out`);
      t.is(refused.json.error.code, 'Unauthenticated');
    }
    t.is((await send('DELETE', '/api/session', { ...copied, 'x-anvil-csrf': signIn.json.csrf })).status, 401, 'a signed-out session cannot sign out again');
    t.true((await denials(tg)).some((d) => d.action === 'Console:GET /api/v1/whoami' && d.layer === 'credential'));
    // The sign-out is a recorded change by its credential; the session id is not in it.
    const audit = await ok(tg, ROOT, 'GET', `/audit?action=console.sign-out`);
    t.true(audit.audit.some((r: any) => r.actor === job.id && r.accessKeyId === job.id && r.details === undefined), JSON.stringify(audit.audit));

    // Only that session ends: the credential signs in again, and its new session works.
    const again = await send('POST', '/api/session', {}, { accessKeyId: job.id, secretKey: job.secretAccessKey });
    t.is((await send('GET', '/api/v1/whoami', { cookie: String(again.headers['set-cookie']).split(';')[0]! })).status, 200);
  } finally {
    await tg.close();
  }
});

test('audit and relationships pages: findings with their fixes and recorded runs; schema, check with the granting path, watch stream', async (t) => {
  const tg = await startTestGateway();
  try {
    await seed(tg);
    await ok(tg, ROOT, 'PUT', '/buckets/data/governance', { governed: true });
    await ok(tg, ROOT, 'POST', '/tuples', { tenant: 'acme', reason: 'team', updates: [{ op: 'touch', tuple: 'group:team#member@user:amy' }, { op: 'touch', tuple: 'folder:data/reports/#reader@group:team#member' }] });
    const prober = await credential(tg, 'acme', 'prober', [{ families: ['object:read'], bucket: 'data', prefix: 'pub/' }]);
    t.is(await get(tg, prober, 'data', '_anvil/x'), 403);
    const { context, page } = await signedIn(tg, ROOT);

    await page.getByRole('link', { name: 'Audit' }).click();
    await page.locator('tr[data-check="reserved-namespace"]').waitFor();
    t.regex(await page.locator('tr[data-check="reserved-namespace"]').innerText(), new RegExp(`high[\\s\\S]*1 attempt\\(s\\) on the reserved prefix[\\s\\S]*anvil credential revoke ${prober.id}`));
    await page.getByRole('button', { name: 'Run and record' }).click();
    await page.getByRole('heading', { name: /Recorded run of/ }).waitFor();
    await page.getByRole('region', { name: 'Recorded runs' }).getByRole('row').nth(1).waitFor();
    t.regex(await page.getByRole('region', { name: 'Recorded runs' }).innerText(), new RegExp(`${ROOT.accessKeyId}\\s+\\*\\s+0\\s+1`));
    t.is((await ok(tg, ROOT, 'GET', '/audit/checks')).runs.length, 1, 'recorded in the audit log');
    await shot(page, 'audit');

    await page.getByRole('link', { name: 'Relationships' }).click();
    await page.getByLabel('Tenant').selectOption('acme');
    await page.getByLabel('Deployed schema').getByText('definition folder').waitFor();
    await page.getByRole('button', { name: 'Watch changes' }).click();
    await page.getByText('following').waitFor();
    await page.getByLabel('Resource').fill('object:data/reports/q1.csv');
    await page.getByLabel('Permission').fill('read');
    await page.getByLabel('Subject').fill('user:amy');
    await page.getByRole('button', { name: 'Check', exact: true }).click();
    const answer = page.locator('.answer');
    await answer.waitFor();
    t.regex(await answer.innerText(), /allowed: user:amy has read on object:data\/reports\/q1\.csv/);
    t.true((await answer.locator('ol.path li').count()) >= 2, 'the path that granted');
    t.regex(await answer.locator('ol.path').innerText(), /folder:data\/reports\/#reader[\s\S]*group:team#member/);
    await ok(tg, ROOT, 'POST', '/tuples', { tenant: 'acme', reason: 'bob joins', updates: [{ op: 'touch', tuple: 'group:team#member@user:bob' }] });
    await page.getByRole('list', { name: 'Changes, newest first' }).getByText('group:team#member@user:bob').waitFor({ timeout: 15_000 });
    await page.getByLabel('Subject').fill('user:carol');
    await page.getByRole('button', { name: 'Check', exact: true }).click();
    await page.getByText('denied: user:carol does not have read').waitFor();
    await page.getByLabel('Subject').fill('user:bob');
    await page.getByRole('button', { name: 'Check', exact: true }).click();
    await page.getByText('allowed: user:bob has read').waitFor();
    await shot(page, 'relationships');
    t.true(await page.getByRole('button', { name: 'Edit schema' }).isVisible(), 'root may write the schema');
    await context.close();

    // A narrow admin is told the schema is the whole tenant's (as the admin API refuses it) and gets no edit button.
    const narrowAdmin = await credential(tg, 'acme', 'reports-admin', [{ families: ['admin', 'object:read', 'check', 'watch'], bucket: 'data', prefix: 'reports/' }]);
    const narrow = await signedIn(tg, narrowAdmin);
    await narrow.page.getByRole('link', { name: 'Relationships' }).click();
    await narrow.page.getByText(/describes the whole tenant/).first().waitFor();
    t.is(await narrow.page.getByLabel('Deployed schema').innerText(), '');
    t.is(await narrow.page.getByRole('button', { name: 'Edit schema' }).count(), 0);
    await narrow.context.close();
  } finally {
    await tg.close();
  }
});

test('a 10,000-line denial window: the histogram counts every line, the table renders only the rows in view', async (t) => {
  const tg = await startTestGateway();
  try {
    const log = new DenialLog({ database: tg.gw.database });
    const layers: DenialLayer[] = ['scope', 'scope', 'scope', 'credential', 'signature', 'reserved_namespace', 'relationship', 'tenant'];
    const now = Date.now();
    for (let i = 0; i < 10_000; i++) {
      log.write({
        time: new Date(now - 3_000_000 + i * 300).toISOString(), requestId: `REQ${i}`, tenant: 'acme', accessKeyId: `AKIA${String(i % 37).padStart(16, '0')}`,
        action: 'GetObject', bucket: 'data', key: `k/${i}`, layer: layers[i % layers.length]!, reason: `planted ${i}`, remoteAddress: '127.0.0.1',
      });
    }
    await log.close();
    const { context, page } = await signedIn(tg, ROOT);
    await page.getByText('10000 denials, newest first').waitFor({ timeout: 30_000 });
    await page.getByLabel('Window').selectOption('1h');
    await page.getByRole('button', { name: 'Show' }).click();
    await page.getByText(/^10000 denials per minute/).waitFor({ timeout: 30_000 });
    const table = page.getByRole('region', { name: 'Denial lines' });
    t.is(await table.locator('table').getAttribute('aria-rowcount'), '10001');
    const rendered = await table.locator('tbody tr:not([aria-hidden])').count();
    t.true(rendered > 10 && rendered < 80, `${rendered} rows in the DOM`);
    t.regex(await table.locator('tbody tr:not([aria-hidden])').first().innerText(), /k\/9999/);
    await table.evaluate((el) => { el.scrollTop = el.scrollHeight; });
    await table.getByRole('row').filter({ hasText: 'planted 0' }).waitFor();
    t.is(await table.locator('tr[aria-rowindex="10001"]').count(), 1, 'the oldest line, last');
    const counted = await page.locator('.histogram svg rect title').allTextContents();
    t.is(counted.reduce((sum, text) => sum + Number(/: (\d+)$/.exec(text)![1]), 0), 10_000);
    await context.close();
  } finally {
    await tg.close();
  }
});

test('accessibility: axe finds no serious or critical WCAG 2 A/AA violation on any page, and sign-in works from the keyboard', async (t) => {
  const tg = await startTestGateway();
  try {
    await seed(tg);
    const reader = await credential(tg, 'acme', 'reader', [{ families: ['object:read'], bucket: 'data', prefix: 'pub/' }]);
    t.is(await get(tg, reader, 'data', 'secret/x'), 403);
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${tg.gw.url}${CONSOLE}/`);
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'sign-in.png') });
    const axe = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
    const audit = async (name: string) => {
      // Evaluated through the DevTools protocol, which the console's Content-Security-Policy does not apply to.
      await page.evaluate(axe);
      const violations = await page.evaluate(async () => {
        const result = await (window as unknown as { axe: { run(o: unknown): Promise<{ violations: Array<{ id: string; impact: string; nodes: unknown[] }> }> } }).axe.run({ runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
        return result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
      });
      t.deepEqual(violations.filter((v) => v.impact === 'serious' || v.impact === 'critical'), [], `${name}: ${JSON.stringify(violations)}`);
    };
    await audit('sign-in');
    // Keyboard only: the access key field has the focus; Tab to the secret, Enter submits.
    await page.keyboard.type(ROOT.accessKeyId);
    await page.keyboard.press('Tab');
    await page.keyboard.type(ROOT.secretAccessKey);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Denials' }).waitFor();
    await page.getByRole('row').filter({ hasText: 'data/secret/x' }).waitFor();
    await audit('denials');
    for (const name of ['Credentials', 'Audit', 'Relationships']) {
      await page.getByRole('link', { name }).focus();
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { level: 1, name }).waitFor();
      // Focus moves to the new page's heading, so keyboard and screen-reader users land there.
      await page.waitForFunction(() => document.activeElement?.id === 'page-title');
      await page.waitForLoadState('networkidle');
      await audit(name);
    }
    await page.getByLabel('Tenant').selectOption('acme');
    await page.getByLabel('Deployed schema').waitFor();
    await audit('Relationships of a tenant');
    await context.close();
  } finally {
    await tg.close();
  }
});

test('sessions: a wrong secret is a denial line; rotation and revocation end sessions; TLS makes the cookie Secure; the console can be turned off', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'anvil-console-tls-'));
  await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
  const tg = await startTestGateway();
  const tls = await startTestGateway({ ANVIL_TLS_CERT: join(dir, 'cert.pem'), ANVIL_TLS_KEY: join(dir, 'key.pem') });
  const off = await startTestGateway({ ANVIL_CONSOLE: 'false' });
  try {
    const ca = readFileSync(join(dir, 'cert.pem'));
    const send = (base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
      new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; json: any }>((resolve, reject) => {
        const req = (base.startsWith('https:') ? httpsRequest : httpRequest)(`${base}${CONSOLE}${path}`, { method, ca, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, json: text && res.headers['content-type']?.startsWith('application/json') ? JSON.parse(text) : text }));
        });
        req.on('error', reject);
        req.end(body === undefined ? undefined : JSON.stringify(body));
      });
    const plain = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => send(tg.gw.url, method, path, body, headers);
    await seed(tg);
    const job = await credential(tg, 'acme', 'job', [{ families: ['object:read'], bucket: 'data', prefix: 'pub/' }]);

    const wrong = await plain('POST', '/api/session', { accessKeyId: job.id, secretKey: 'not-the-secret' });
    t.is(wrong.status, 401);
    t.is(wrong.headers['set-cookie'], undefined);
    t.true((await denials(tg)).some((d) => d.action === 'Console:SignIn' && d.layer === 'signature' && d.accessKeyId === job.id));
    t.is((await plain('POST', '/api/session', { accessKeyId: 'ASIAEXAMPLE', secretKey: 'x' })).status, 401);

    const signIn = await plain('POST', '/api/session', { accessKeyId: job.id, secretKey: job.secretAccessKey });
    t.is(signIn.status, 200);
    const setCookie = String(signIn.headers['set-cookie']);
    t.regex(setCookie, /^anvil_console=v1\.[^;]+; Path=\/_anvil\/console; Max-Age=\d+; HttpOnly; SameSite=Strict$/, 'not Secure over plain HTTP');
    t.is(signIn.json.accessKeyId, job.id);
    t.false(JSON.stringify(signIn.json).includes(job.secretAccessKey), 'the secret never comes back');
    const cookie = { cookie: setCookie.split(';')[0]! };
    t.is((await plain('GET', '/api/session', undefined, cookie)).status, 200);
    t.is((await plain('GET', '/api/session', undefined, { cookie: `${cookie.cookie.slice(0, -2)}xx` })).status, 401, 'an altered cookie is no session');

    // Rotating the secret it signed in with ends the session; so does revoking the credential.
    await ok(tg, ROOT, 'POST', `/credentials/${job.id}/rotate`, { graceSeconds: 0 });
    const after = await plain('GET', '/api/v1/whoami', undefined, cookie);
    t.is(after.status, 401);
    t.regex(String(after.headers['set-cookie']), /Max-Age=0/);
    const job2 = await credential(tg, 'acme', 'job2', [{ families: ['object:read'], bucket: 'data', prefix: 'pub/' }]);
    const second = await plain('POST', '/api/session', { accessKeyId: job2.id, secretKey: job2.secretAccessKey });
    const cookie2 = { cookie: String(second.headers['set-cookie']).split(';')[0]! };
    t.is((await plain('GET', '/api/v1/whoami', undefined, cookie2)).status, 200);
    await ok(tg, ROOT, 'POST', `/credentials/${job2.id}/revoke`);
    t.is((await plain('GET', '/api/v1/whoami', undefined, cookie2)).status, 401);

    // An open watch stream ends once its session does (here: the credential is revoked while it streams).
    const watcher = await credential(tg, 'acme', 'watcher', [{ families: ['watch'], bucket: '*' }]);
    const opened = await plain('POST', '/api/session', { accessKeyId: watcher.id, secretKey: watcher.secretAccessKey });
    const ended = await new Promise<{ status: number; ended: Promise<number> }>((resolve, reject) => {
      httpRequest(`${tg.gw.url}${CONSOLE}/api/v1/watch?tenant=acme`, { headers: { cookie: String(opened.headers['set-cookie']).split(';')[0]! } }, (res) => {
        const started = Date.now();
        res.resume();
        resolve({ status: res.statusCode!, ended: new Promise((done) => res.once('close', () => done(Date.now() - started))) });
      }).on('error', reject).end();
    });
    t.is(ended.status, 200);
    await ok(tg, ROOT, 'POST', `/credentials/${watcher.id}/revoke`);
    const closed = await Promise.race([ended.ended.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 30_000).unref())]);
    t.true(closed, 'the feed closed after the revocation');

    // The page carries a strict Content-Security-Policy and cannot be framed.
    const page = await plain('GET', '/');
    t.regex(String(page.headers['content-security-policy']), /script-src 'self'/);
    t.is(page.headers['x-frame-options'], 'DENY');

    // Over TLS the cookie is Secure.
    const overTls = await send(tls.gw.url, 'POST', '/api/session', { accessKeyId: ROOT.accessKeyId, secretKey: ROOT.secretAccessKey });
    t.is(overTls.status, 200);
    t.regex(String(overTls.headers['set-cookie']), /; HttpOnly; SameSite=Strict; Secure$/);

    t.is((await fetch(`${off.gw.url}${CONSOLE}/`)).status, 404, 'ANVIL_CONSOLE=false');
  } finally {
    await tg.close();
    await tls.close();
    await off.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

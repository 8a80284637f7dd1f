/**
 * The admin API end to end: a real gateway, requests signed by an independent SigV4 signer (@smithy/signature-v4),
 * credentials then exercised with @aws-sdk/client-s3. One gateway per test keeps the denial and audit logs per test.
 */
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import test from 'ava';
import { ADMIN_PREFIX, ADMIN_ROUTES, NEEDS_ADMIN } from '../gateway/admin/index.ts';
import { FAMILIES } from '../policy/index.ts';
import { denials as denialRows, logText } from './helpers/admin.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { rawSignedSend, send, signedSend, type RawResponse } from './helpers/raw.ts';

type Creds = { accessKeyId: string; secretAccessKey: string };

/** One JSON admin request, signed with `creds`. */
async function admin(
  tg: TestGateway,
  creds: Creds,
  method: string,
  path: string,
  options: { body?: unknown; query?: Record<string, string> } = {},
): Promise<RawResponse & { json: any }> {
  const body = options.body === undefined ? '' : JSON.stringify(options.body);
  const headers: Record<string, string> = body ? { 'content-type': 'application/json' } : {};
  const res = await signedSend({ url: tg.gw.url, method, path: ADMIN_PREFIX + path, query: options.query, headers, body, creds });
  return { ...res, json: res.body ? JSON.parse(res.body) : undefined };
}

const creds = (c: { accessKeyId: string; secretKey: string }): Creds => ({ accessKeyId: c.accessKeyId, secretAccessKey: c.secretKey });
const denials = (tg: TestGateway) => denialRows(tg);
const s3For = (tg: TestGateway, c: Creds): S3Client => tg.client(c);

/** Root creates tenant `acme` (owning bucket `acme-data`) and its admin with every family on `*`. */
async function setup(tg: TestGateway, tenant = 'acme'): Promise<{ admin: Creds; bucket: string }> {
  const t = await admin(tg, ROOT, 'POST', '/tenants', { body: { name: tenant, description: 'test tenant' } });
  if (t.status !== 201) throw new Error(t.body);
  const bucket = `${tenant}-data`;
  await tg.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const moved = await admin(tg, ROOT, 'PUT', `/buckets/${bucket}/owner`, { body: { tenant, reassign: true } });
  if (moved.status !== 200) throw new Error(moved.body);
  const c = await admin(tg, ROOT, 'POST', '/credentials', {
    body: { tenant, name: 'admin', scopes: [{ families: [...FAMILIES], bucket: '*' }] },
  });
  if (c.status !== 201) throw new Error(c.body);
  return { admin: creds(c.json), bucket };
}

async function withGateway(fn: (tg: TestGateway) => Promise<void>): Promise<void> {
  const tg = await startTestGateway();
  try {
    await fn(tg);
  } finally {
    await tg.close();
  }
}

test('root creates a tenant and its admin; the admin grants within its scope only', async (t) => {
  await withGateway(async (tg) => {
    const { admin: tenantAdmin, bucket } = await setup(tg);
    const tenants = await admin(tg, ROOT, 'GET', '/tenants');
    t.is(tenants.status, 200);
    t.true(tenants.json.tenants.some((x: { name: string }) => x.name === 'acme'));

    // A narrower admin: object:read under reports/ plus admin.
    const narrow = await admin(tg, tenantAdmin, 'POST', '/credentials', {
      body: { name: 'reports-admin', scopes: [{ families: ['object:read', 'admin'], bucket, prefix: 'reports/' }] },
    });
    t.is(narrow.status, 201);
    t.is(narrow.json.tenant, 'acme');
    t.truthy(narrow.json.secretKey);
    t.is(narrow.headers['cache-control'], 'no-store');
    const narrowCreds = creds(narrow.json);

    const within = await admin(tg, narrowCreds, 'POST', '/credentials', {
      body: { name: 'q1', scopes: [{ families: ['object:read'], bucket, prefix: 'reports/2026/' }], expiresAt: '2099-01-01T00:00:00Z' },
    });
    t.is(within.status, 201);
    t.is(within.json.expiresAt, '2099-01-01T00:00:00.000Z');

    const broader = await admin(tg, narrowCreds, 'POST', '/credentials', {
      body: { name: 'escalate', scopes: [{ families: ['object:read', 'object:write'], bucket, prefix: 'reports/' }] },
    });
    t.is(broader.status, 403);
    t.is(broader.json.error.code, 'AccessDenied');
    t.regex(broader.json.error.message, /cannot grant object:write/);
    t.is(broader.json.error.requestId, broader.headers['x-amz-request-id']);

    const wholeBucket = await admin(tg, narrowCreds, 'POST', '/credentials', {
      body: { name: 'escalate2', scopes: [{ families: ['object:read'], bucket }] },
    });
    t.is(wholeBucket.status, 403);

    await admin(tg, ROOT, 'POST', '/tenants', { body: { name: 'other' } });
    const otherTenant = await admin(tg, tenantAdmin, 'POST', '/credentials', {
      body: { tenant: 'other', name: 'x', scopes: [{ families: ['object:read'], bucket: '*' }] },
    });
    t.is(otherTenant.status, 403);
    t.regex(otherTenant.json.error.message, /tenant other is not tenant acme/);
    // A capability naming another tenant is refused the same way, not minted in the caller's own tenant.
    const otherCapability = await admin(tg, tenantAdmin, 'POST', '/capabilities', { body: { tenant: 'other', bucket, actions: ['read'] } });
    t.deepEqual(
      { status: otherCapability.status, code: otherCapability.json.error?.code, message: otherCapability.json.error?.message },
      { status: otherTenant.status, code: otherTenant.json.error.code, message: otherTenant.json.error.message },
    );
    t.true((await denials(tg)).some((d) => d.action === 'Admin:MintCapability' && d.layer === 'tenant' && d.accessKeyId === tenantAdmin.accessKeyId));
    t.is((await admin(tg, tenantAdmin, 'POST', '/capabilities', { body: { tenant: 'acme', bucket, actions: ['read'] } })).status, 201);

    const makeTenant = await admin(tg, tenantAdmin, 'POST', '/tenants', { body: { name: 'mine' } });
    t.is(makeTenant.status, 403);
    t.regex(makeTenant.json.error.message, /only root may manage tenants/);
    t.is((await admin(tg, tenantAdmin, 'PUT', `/buckets/${bucket}/owner`, { body: { tenant: 'other' } })).status, 403);

    // A tenant admin sees its own tenant and credentials, nothing of the others.
    t.is((await admin(tg, tenantAdmin, 'GET', '/tenants/acme')).json.buckets[0], bucket);
    t.is((await admin(tg, tenantAdmin, 'GET', '/tenants/other')).status, 403);
    const listed = await admin(tg, tenantAdmin, 'GET', '/credentials');
    t.true(listed.json.credentials.every((c: { tenant: string; secretKey?: string }) => c.tenant === 'acme' && c.secretKey === undefined));
    t.is((await admin(tg, tenantAdmin, 'GET', '/credentials', { query: { tenant: 'other' } })).status, 403);
    t.deepEqual((await admin(tg, tenantAdmin, 'GET', '/buckets')).json.buckets, [{ name: bucket, tenant: 'acme' }]);

    // The narrow admin cannot revoke the broader one (beyond its view, it answers as missing); the tenant admin can
    // revoke the narrow one.
    t.is((await admin(tg, narrowCreds, 'POST', `/credentials/${tenantAdmin.accessKeyId}/revoke`)).status, 404);
    t.is((await admin(tg, tenantAdmin, 'POST', `/credentials/${narrowCreds.accessKeyId}/revoke`)).json.status, 'revoked');

    const refused = (await denials(tg)).filter((d) => d.action === 'Admin:CreateCredential');
    t.is(refused.length, 3);
    t.true(refused.every((d) => d.tenant === 'acme' && ['scope', 'tenant'].includes(d.layer)));
    t.true((await denials(tg)).some((d) => d.action === 'Admin:CreateTenant' && d.layer === 'scope' && d.accessKeyId === tenantAdmin.accessKeyId));

    // Every change is audited with the access key that made it.
    const audit = await admin(tg, ROOT, 'GET', '/audit', { query: { action: 'credential.create' } });
    const actors = audit.json.audit.map((a: { actor: string }) => a.actor);
    t.deepEqual(actors, [ROOT.accessKeyId, tenantAdmin.accessKeyId, narrowCreds.accessKeyId]);
  });
});

test('an ordinary credential is refused every admin endpoint, clearly, with a denial line each', async (t) => {
  await withGateway(async (tg) => {
    const { bucket } = await setup(tg);
    const plain = await admin(tg, ROOT, 'POST', '/credentials', {
      body: { tenant: 'acme', name: 'app', scopes: [{ families: ['object:read', 'object:write', 'object:list'], bucket }] },
    });
    const app = creds(plain.json);
    const sample: Record<string, string> = { name: 'acme', id: app.accessKeyId, bucket };
    for (const route of ADMIN_ROUTES) {
      const path = route.pattern.replace(/:(\w+)/g, (_, p: string) => sample[p]!);
      const body = route.method === 'POST' || route.method === 'PUT' ? {} : undefined;
      const res = await admin(tg, app, route.method, path, { body });
      t.is(res.status, 403, `${route.method} ${path}`);
      t.is(res.headers['content-type'], 'application/json');
      t.is(res.json.error.code, 'AccessDenied');
      t.is(res.json.error.message, NEEDS_ADMIN);
      t.is(res.json.error.requestId, res.headers['x-amz-request-id']);
    }
    const lines = (await denials(tg)).filter((d) => d.accessKeyId === app.accessKeyId);
    t.deepEqual(lines.map((d) => d.action), ADMIN_ROUTES.map((r) => r.action));
    t.true(lines.every((d) => d.layer === 'scope' && d.tenant === 'acme'));
    // whoami answers any live credential, one without a single grant too (README: "any credential").
    const bare = creds((await admin(tg, ROOT, 'POST', '/credentials', { body: { tenant: 'acme', name: 'bare', scopes: [] } })).json);
    for (const who of [app, bare]) {
      const me = await admin(tg, who, 'GET', '/whoami');
      t.is(me.status, 200, me.body);
      t.like(me.json, { tenant: 'acme', accessKeyId: who.accessKeyId, root: false });
    }
    t.deepEqual((await admin(tg, bare, 'GET', '/whoami')).json.scopes, []);
  });
});

test('malformed and unauthenticated admin requests get JSON errors', async (t) => {
  await withGateway(async (tg) => {
    const anonymous = await send({ url: tg.gw.url, method: 'GET', path: `${ADMIN_PREFIX}/tenants` });
    t.is(anonymous.status, 403);
    t.is(JSON.parse(anonymous.body).error.code, 'AccessDenied');
    t.truthy(anonymous.headers['x-amz-request-id']);

    const wrongSecret = await admin(tg, { ...ROOT, secretAccessKey: 'nope-nope-nope' }, 'GET', '/tenants');
    t.is(wrongSecret.status, 403);
    t.is(wrongSecret.json.error.code, 'SignatureDoesNotMatch');

    t.is((await admin(tg, ROOT, 'GET', '/nothing')).json.error.code, 'NotFound');
    t.is((await admin(tg, ROOT, 'PUT', '/tenants')).status, 405);
    t.is((await admin(tg, ROOT, 'GET', '/credentials/AKIANOSUCHKEY')).status, 404);
    const badJson = await signedSend({
      url: tg.gw.url, method: 'POST', path: `${ADMIN_PREFIX}/tenants`, body: '{nope', headers: { 'content-type': 'application/json' },
    });
    t.is(badJson.status, 400);
    t.is(JSON.parse(badJson.body).error.code, 'InvalidInput');
    const typo = await admin(tg, ROOT, 'POST', '/tenants', { body: { nmae: 'x' } });
    t.is(typo.status, 400);
    t.regex(typo.json.error.message, /unknown field "nmae"/);
    t.is((await admin(tg, ROOT, 'POST', '/tenants', { body: { name: 'Bad Name' } })).status, 400);
    await admin(tg, ROOT, 'POST', '/tenants', { body: { name: 'dup' } });
    t.is((await admin(tg, ROOT, 'POST', '/tenants', { body: { name: 'dup' } })).status, 409);
    const unsigned = await signedSend({
      url: tg.gw.url, method: 'POST', path: `${ADMIN_PREFIX}/tenants`, body: '{"name":"z"}', payloadHash: 'UNSIGNED-PAYLOAD',
    });
    t.is(unsigned.status, 400);
    t.regex(JSON.parse(unsigned.body).error.message, /sign their payload/);
    const tampered = await signedSend({
      url: tg.gw.url, method: 'POST', path: `${ADMIN_PREFIX}/tenants`, body: '{"name":"z"}',
      payloadHash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    });
    t.is(tampered.status, 400);
    t.is((await admin(tg, ROOT, 'GET', '/tenants/z')).status, 404);
    t.is((await admin(tg, ROOT, 'POST', '/credentials', { body: { tenant: 'dup', name: 'n', scopes: [{ families: ['fly'], bucket: '*' }] } })).status, 400);
    // A scope naming no possible bucket (a typo such as "data/a") is refused, not stored as a grant of nothing.
    for (const bucket of ['data/a', 'dat*', '..', 'd']) {
      const refused = await admin(tg, ROOT, 'POST', '/credentials', { body: { tenant: 'dup', name: 'n', scopes: [{ families: ['object:read'], bucket }] } });
      t.is(refused.status, 400, bucket);
      t.regex(JSON.stringify(refused.json), /is not a bucket name/, bucket);
    }
    t.is((await admin(tg, ROOT, 'POST', '/credentials', { body: { tenant: 'nope', name: 'n', scopes: [{ families: ['admin'], bucket: '*' }] } })).status, 404);
    // S3 paths next to the admin prefix stay S3.
    const s3Side = await signedSend({ url: tg.gw.url, method: 'GET', path: '/_anvil' });
    t.is(s3Side.headers['content-type'], 'application/xml');
    t.regex(s3Side.body, /<Code>NoSuchBucket<\/Code>/);
  });
});

test('rotate with and without grace, and revoke, as real S3 clients see them', async (t) => {
  await withGateway(async (tg) => {
    const { admin: tenantAdmin, bucket } = await setup(tg);
    const made = await admin(tg, tenantAdmin, 'POST', '/credentials', {
      body: { name: 'app', scopes: [{ families: ['object:read', 'object:write', 'object:list'], bucket }] },
    });
    const id = made.json.accessKeyId as string;
    const first = creds(made.json);
    const put = (c: Creds, key: string) => s3For(tg, c).send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'x' }));
    await put(first, 'a');

    // A grace long enough for two uploads on a loaded machine; then the wait runs to the instant the gateway named.
    const graced = await admin(tg, tenantAdmin, 'POST', `/credentials/${id}/rotate`, { body: { graceSeconds: 8 } });
    t.is(graced.status, 200);
    const graceEnds = Date.parse(graced.json.previousSecretValidUntil);
    t.true(graceEnds > Date.now());
    const second: Creds = { accessKeyId: id, secretAccessKey: graced.json.secretKey };
    await put(first, 'during-grace');
    await put(second, 'new-secret');
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, graceEnds - Date.now()) + 100));
    await t.throwsAsync(put(first, 'after-grace'), { name: 'SignatureDoesNotMatch' });
    await put(second, 'still-new');

    const hard = await admin(tg, tenantAdmin, 'POST', `/credentials/${id}/rotate`, {});
    t.is(hard.json.previousSecretValidUntil, undefined);
    await t.throwsAsync(put(second, 'no-grace'), { name: 'SignatureDoesNotMatch' });
    const third: Creds = { accessKeyId: id, secretAccessKey: hard.json.secretKey };
    await put(third, 'third');
    t.is((await admin(tg, tenantAdmin, 'POST', `/credentials/${id}/rotate`, { body: { graceSeconds: -1 } })).status, 400);

    const revoked = await admin(tg, tenantAdmin, 'POST', `/credentials/${id}/revoke`);
    t.is(revoked.json.status, 'revoked');
    await t.throwsAsync(s3For(tg, third).send(new ListObjectsV2Command({ Bucket: bucket })), { name: 'InvalidAccessKeyId' });
    t.is((await admin(tg, tenantAdmin, 'POST', `/credentials/${id}/rotate`)).status, 409);
    t.is((await admin(tg, tenantAdmin, 'DELETE', `/credentials/${id}`)).json.deleted, id);
    t.is((await admin(tg, tenantAdmin, 'GET', `/credentials/${id}`)).status, 404);
  });
});

test('the credential listing shows the state requests meet: a maker revoked, deleted or expired, a tenant disabled', async (t) => {
  await withGateway(async (tg) => {
    const { admin: tenantAdmin, bucket } = await setup(tg);
    const make = async (maker: Creds, name: string, expiresAt?: string): Promise<Creds> => {
      const made = await admin(tg, maker, 'POST', '/credentials', { body: { name, scopes: [{ families: [...FAMILIES], bucket: '*' }], ...(expiresAt ? { expiresAt } : {}) } });
      if (made.status !== 201) throw new Error(made.body);
      return creds(made.json);
    };
    const status = async (c: Creds): Promise<{ listed: string; shown: string }> => {
      const list = await admin(tg, ROOT, 'GET', '/credentials', { query: { tenant: 'acme' } });
      const listed = (list.json.credentials as Array<{ accessKeyId: string; status: string }>).find((x) => x.accessKeyId === c.accessKeyId)!.status;
      return { listed, shown: (await admin(tg, tenantAdmin, 'GET', `/credentials/${c.accessKeyId}`)).json.status };
    };
    const list = (c: Creds) => s3For(tg, c).send(new ListObjectsV2Command({ Bucket: bucket }));

    // Two links down from makers that then go: revoked, deleted, expired.
    const revokedMaker = await make(tenantAdmin, 'revoked-maker');
    const underRevoked = await make(await make(revokedMaker, 'middle-r'), 'under-revoked');
    const deletedMaker = await make(tenantAdmin, 'deleted-maker');
    const underDeleted = await make(deletedMaker, 'under-deleted');
    for (const c of [underRevoked, underDeleted]) {
      await list(c);
      t.deepEqual(await status(c), { listed: 'active', shown: 'active' });
    }
    // A maker that expires once its credential is made and seen active: the expiry is doubled until this machine,
    // however loaded, does both before it (a step that fails once the expiry passed is tried again, never before).
    let underExpired: Creds | undefined;
    let expiry = 0;
    for (let ms = 3000; underExpired === undefined; ms *= 2) {
      if (ms > 200_000) throw new Error('could not make a credential and see it active within 200 s');
      expiry = Date.now() + ms;
      try {
        const made = await make(await make(tenantAdmin, `expiring-maker-${ms}`, new Date(expiry).toISOString()), `under-expired-${ms}`);
        await list(made);
        const seen = await status(made);
        if (Date.now() < expiry) {
          t.deepEqual(seen, { listed: 'active', shown: 'active' });
          underExpired = made;
        }
      } catch (err) {
        if (Date.now() < expiry) throw err;
      }
    }

    t.is((await admin(tg, tenantAdmin, 'POST', `/credentials/${revokedMaker.accessKeyId}/revoke`)).status, 200);
    t.is((await admin(tg, tenantAdmin, 'DELETE', `/credentials/${deletedMaker.accessKeyId}`)).status, 200);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiry - Date.now()) + 100));
    for (const [c, expected] of [[underRevoked, 'maker_gone'], [underDeleted, 'maker_gone'], [underExpired, 'expired']] as const) {
      await t.throwsAsync(list(c), { name: 'InvalidAccessKeyId' }, `${expected}: refused`);
      t.deepEqual(await status(c), { listed: expected, shown: expected }, `${expected}: listed and shown as such`);
    }
    t.is((await status(tenantAdmin)).listed, 'active', 'an unaffected credential stays active');

    t.is((await admin(tg, ROOT, 'POST', '/tenants/acme/disable')).status, 200);
    await t.throwsAsync(list(tenantAdmin));
    const listed = (await admin(tg, ROOT, 'GET', '/credentials', { query: { tenant: 'acme' } })).json.credentials as Array<{ name: string; status: string }>;
    t.is(listed.find((c) => c.name === 'admin')!.status, 'tenant_disabled');
    t.is(listed.find((c) => c.name === 'revoked-maker')!.status, 'revoked', 'revoked stays the first reason, as requests give it');
  });
});

test('denials: filters, a tenant admin sees only its tenant, and no secret reaches any log', async (t) => {
  await withGateway(async (tg) => {
    const acme = await setup(tg, 'acme');
    const beta = await setup(tg, 'beta');
    const secrets = [acme.admin.secretAccessKey, beta.admin.secretAccessKey];
    const made = await admin(tg, acme.admin, 'POST', '/credentials', {
      body: { name: 'reader', scopes: [{ families: ['object:read'], bucket: acme.bucket, prefix: 'public/' }] },
    });
    secrets.push(made.json.secretKey);
    const reader = s3For(tg, creds(made.json));
    await t.throwsAsync(reader.send(new GetObjectCommand({ Bucket: acme.bucket, Key: 'secret/plan.txt' })));
    await t.throwsAsync(reader.send(new GetObjectCommand({ Bucket: beta.bucket, Key: 'public/x' })));
    const betaApp = s3For(tg, beta.admin);
    await t.throwsAsync(betaApp.send(new GetObjectCommand({ Bucket: acme.bucket, Key: 'public/y' })));
    const rotated = await admin(tg, acme.admin, 'POST', `/credentials/${made.json.accessKeyId}/rotate`, { body: { graceSeconds: 60 } });
    secrets.push(rotated.json.secretKey);

    const byLayer = await admin(tg, ROOT, 'GET', '/denials', { query: { layer: 'tenant' } });
    t.is(byLayer.json.denials.length, 2);
    t.true(byLayer.json.denials.every((d: { layer: string }) => d.layer === 'tenant'));
    const byPrefix = await admin(tg, ROOT, 'GET', '/denials', { query: { bucket: acme.bucket, keyPrefix: 'secret/' } });
    t.is(byPrefix.json.denials.length, 1);
    t.is(byPrefix.json.denials[0].key, 'secret/plan.txt');
    t.is(byPrefix.json.denials[0].layer, 'scope');
    const byKey = await admin(tg, ROOT, 'GET', '/denials', { query: { accessKey: beta.admin.accessKeyId } });
    t.is(byKey.json.denials.length, 1);
    const limited = await admin(tg, ROOT, 'GET', '/denials', { query: { limit: '1' } });
    t.is(limited.json.denials.length, 1);
    t.is((await admin(tg, ROOT, 'GET', '/denials', { query: { until: '2000-01-01T00:00:00Z' } })).json.denials.length, 0);
    t.is((await admin(tg, ROOT, 'GET', '/denials', { query: { layer: 'bogus' } })).status, 400);
    t.is((await admin(tg, ROOT, 'GET', '/denials', { query: { since: 'yesterday' } })).status, 400);

    const acmeView = await admin(tg, acme.admin, 'GET', '/denials');
    t.is(acmeView.json.denials.length, 2);
    t.true(acmeView.json.denials.every((d: { tenant: string }) => d.tenant === 'acme'));
    t.is((await admin(tg, acme.admin, 'GET', '/denials', { query: { tenant: 'beta' } })).status, 403);
    const betaView = await admin(tg, beta.admin, 'GET', '/denials');
    t.true(betaView.json.denials.every((d: { tenant: string }) => d.tenant === 'beta'));
    t.true(betaView.json.denials.some((d: { action: string }) => d.action === 'Admin:QueryDenials') === false);
    const betaAudit = await admin(tg, beta.admin, 'GET', '/audit');
    t.true(betaAudit.json.audit.length > 0);
    t.true(betaAudit.json.audit.every((a: { tenant: string }) => a.tenant === 'beta'));

    const everything = [await logText(tg), tg.logs.join('\n')].join('\n');
    for (const secret of [...secrets, ROOT.secretAccessKey]) t.false(everything.includes(secret));
  });
});

test('a repeated query parameter is refused with 400 naming it on every admin endpoint, never answered for its first copy', async (t) => {
  // o12d F5: `?tenant=acme&tenant=evil` passed for acme while `?tenant=evil` is refused; `?bucket=a&bucket=b`
  // answered rows for `a` alone.
  await withGateway(async (tg) => {
    const { admin: acmeAdmin, bucket } = await setup(tg);
    await setup(tg, 'evil');
    const get = (creds: Creds, path: string, query: Array<[string, string]>) =>
      rawSignedSend({ url: tg.gw.url, method: 'GET', path: ADMIN_PREFIX + path, query, creds }).then((res) => ({ ...res, json: JSON.parse(res.body) }));
    t.is((await get(acmeAdmin, '/denials', [['tenant', 'evil']])).status, 403);
    t.is((await get(acmeAdmin, '/denials', [['tenant', 'acme']])).status, 200);
    const cases: Array<[Creds, string, Array<[string, string]>, string]> = [
      [acmeAdmin, '/denials', [['tenant', 'acme'], ['tenant', 'evil']], 'tenant'],
      [ROOT, '/denials', [['bucket', bucket], ['bucket', 'evil-data']], 'bucket'],
      [ROOT, '/denials', [['layer', 'scope'], ['limit', '5'], ['limit', '6']], 'limit'],
      [ROOT, '/audit', [['actor', 'root'], ['actor', 'operator']], 'actor'],
      [acmeAdmin, '/credentials', [['tenant', 'acme'], ['tenant', 'evil']], 'tenant'],
      [ROOT, '/roles', [['tenant', 'acme'], ['tenant', 'evil']], 'tenant'],
      [ROOT, '/oidc-providers', [['tenant', 'acme'], ['tenant', 'evil']], 'tenant'],
      [ROOT, '/audit/checks', [['tenant', 'acme'], ['tenant', 'evil']], 'tenant'],
      [ROOT, '/audit/check', [['tenant', 'acme'], ['tenant', 'evil']], 'tenant'],
      [ROOT, '/tuples', [['tenant', 'acme'], ['tenant', 'evil']], 'tenant'],
      [ROOT, '/tuples/export', [['tenant', 'acme'], ['tenant', 'evil']], 'tenant'],
      [ROOT, '/schema', [['tenant', 'acme'], ['tenant', 'evil']], 'tenant'],
    ];
    for (const [creds, path, query, name] of cases) {
      const res = await get(creds, path, query);
      const what = `${path}?${query.map(([k, v]) => `${k}=${v}`).join('&')}`;
      t.is(res.status, 400, what);
      t.is(res.json.error.code, 'InvalidInput', what);
      t.true(res.json.error.message.includes(`query parameter "${name}" is repeated`), `${what}: ${res.json.error.message}`);
    }
    // A caller without the admin family still learns nothing beyond its refusal.
    const reader = await admin(tg, acmeAdmin, 'POST', '/credentials', { body: { tenant: 'acme', name: 'reader', scopes: [{ families: ['read'], bucket }] } });
    t.is((await get(creds(reader.json), '/denials', [['tenant', 'acme'], ['tenant', 'evil']])).status, 403);
  });
});

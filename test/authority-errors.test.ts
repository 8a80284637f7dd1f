/**
 * Issue 9, class 7: errors do not reveal what the caller may not know. The admin API answers alike for "another
 * tenant's" and "does not exist"; STS answers alike for a missing role and one the caller may not assume;
 * DeleteBucket of another tenant's bucket and of a missing one answer alike; a bucket that exists in storage without
 * an owner belongs to no tenant and is reachable by root only.
 */
import { CreateBucketCommand, HeadBucketCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { AssumeRoleWithWebIdentityCommand } from '@aws-sdk/client-sts';
import test from 'ava';
import { FAMILIES } from '../policy/index.ts';
import { admin, denials, ok } from './helpers/admin.ts';
import { adminOf, assumeRole, credential, seed, startIssuer, stsClient, TENANT } from './helpers/authority.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { errorCode, signedSend } from './helpers/raw.ts';

let tg: TestGateway;

test.before(async () => {
  tg = await startTestGateway({ ANVIL_OIDC_ALLOW_INSECURE_JWKS: 'true' });
  await seed(tg);
  await seed(tg, 'rival', 'rival-data');
});
test.after.always(async () => tg.close());

/** The answer without the name that differs between two requests. */
const shape = (res: { status: number; json: any }, name: string) => ({
  status: res.status,
  code: res.json?.error?.code,
  message: String(res.json?.error?.message).replaceAll(name, '<id>'),
});

test('the admin API answers alike for another tenant\'s credential or provider and a missing one', async (t) => {
  const acmeAdmin = await credential(tg, adminOf(''));
  const rivalCred = await credential(tg, [{ families: ['object:read'], bucket: 'rival-data' }], ROOT, 'rival');
  const missing = 'AKIAXXXXXXXXXXXXXXXX';
  for (const [method, suffix] of [['GET', ''], ['DELETE', ''], ['POST', '/revoke'], ['POST', '/rotate']] as const) {
    const theirs = await admin(tg, acmeAdmin, method, `/credentials/${rivalCred.id}${suffix}`);
    const nobody = await admin(tg, acmeAdmin, method, `/credentials/${missing}${suffix}`);
    t.deepEqual(shape(theirs, rivalCred.id), shape(nobody, missing), `${method} ${suffix}`);
    t.false(JSON.stringify(theirs.json).includes('rival'));
  }
  t.false((await denials(tg)).filter((d) => d.accessKeyId === acmeAdmin.accessKeyId).some((d) => /rival/.test(d.reason)));
  const idp = await startIssuer();
  try {
    await ok(tg, ROOT, 'POST', '/roles', { tenant: 'rival', name: 'r', scopes: [{ families: ['object:read'], bucket: 'rival-data' }] });
    const p = await ok(tg, ROOT, 'POST', '/oidc-providers', { tenant: 'rival', issuer: idp.issuer, audience: 'a', jwks: idp.jwksUrl, roles: ['r'] });
    t.deepEqual(shape(await admin(tg, acmeAdmin, 'DELETE', `/oidc-providers/${p.id}`), p.id), shape(await admin(tg, acmeAdmin, 'DELETE', '/oidc-providers/oidc-000000000000'), 'oidc-000000000000'));
  } finally {
    await idp.close();
  }
  const gov = (b: string) => admin(tg, acmeAdmin, 'GET', `/buckets/${b}/governance`);
  t.deepEqual(shape(await gov('rival-data'), 'rival-data'), shape(await gov('no-such-bucket'), 'no-such-bucket'));
});

test('STS answers alike for a missing role, another tenant\'s, and one that does not trust the caller', async (t) => {
  const app = await credential(tg, [{ families: ['object:read'], bucket: 'data' }]);
  await ok(tg, ROOT, 'POST', '/roles', { tenant: 'rival', name: 'theirs', scopes: [{ families: ['object:read'], bucket: 'rival-data' }] });
  await ok(tg, ROOT, 'POST', '/roles', { tenant: TENANT, name: 'picky', scopes: [{ families: ['object:read'], bucket: 'data' }], trust: ['user:someone'] });
  const answers: string[] = [];
  for (const arn of ['arn:aws:iam::rival:role/theirs', 'arn:aws:iam::rival:role/missing', `arn:aws:iam::${TENANT}:role/missing`, `arn:aws:iam::${TENANT}:role/picky`]) {
    const err = await t.throwsAsync(assumeRole(tg, app, arn));
    t.is(err?.name, 'AccessDenied', arn);
    answers.push(String(err?.message).replace(arn, '<arn>'));
  }
  t.is(new Set(answers).size, 1, answers.join('\n'));
  // The denial lines keep the real reasons for the operator.
  const reasons = (await denials(tg)).filter((d) => d.accessKeyId === app.accessKeyId && d.action === 'STS:AssumeRole').map((d) => d.reason);
  t.true(reasons.some((r) => /no role missing/.test(r)) && reasons.some((r) => /does not trust/.test(r)));
});

test('STS denial lines tell no role\'s existence to a reader who may not know of it', async (t) => {
  // A narrow admin (pub/ of data) and the credential it made; root makes the roles.
  const narrow = await credential(tg, adminOf('pub/'));
  const child = await credential(tg, [{ families: ['object:read'], bucket: 'data', prefix: 'pub/' }], narrow);
  await ok(tg, ROOT, 'POST', '/roles', { tenant: 'rival', name: 'exists', scopes: [{ families: ['object:read'], bucket: 'rival-data' }] });
  await ok(tg, ROOT, 'POST', '/roles', { tenant: TENANT, name: 'beyond', scopes: [{ families: ['object:read'], bucket: 'data', prefix: 'secret/' }], trust: ['user:nobody'] });
  await ok(tg, ROOT, 'POST', '/roles', { tenant: TENANT, name: 'within', scopes: [{ families: ['object:read'], bucket: 'data', prefix: 'pub/' }], trust: ['user:nobody'] });
  const arns = {
    rivalExists: 'arn:aws:iam::rival:role/exists', rivalMissing: 'arn:aws:iam::rival:role/nothing', noTenant: 'arn:aws:iam::no-such-tenant:role/x',
    beyond: `arn:aws:iam::${TENANT}:role/beyond`, missing: `arn:aws:iam::${TENANT}:role/nothing`, within: `arn:aws:iam::${TENANT}:role/within`,
  };
  const requestIds: Record<string, string> = {};
  for (const [name, arn] of Object.entries(arns)) {
    const err = await t.throwsAsync(assumeRole(tg, child, arn));
    t.is(err?.name, 'AccessDenied', arn);
    requestIds[name] = (err as { $metadata?: { requestId?: string } }).$metadata!.requestId!;
  }
  const lines = async (reader: typeof ROOT) => {
    const all = (await ok(tg, reader, 'GET', `/denials?accessKey=${child.accessKeyId}`)).denials as Array<{ requestId: string; layer: string; reason: string }>;
    return Object.fromEntries(Object.entries(requestIds).map(([name, id]) => {
      const line = all.find((d) => d.requestId === id);
      return [name, line && `${line.layer}: ${line.reason}`];
    }));
  };
  for (const reader of [ROOT, narrow]) {
    const shown = await lines(reader);
    // Another tenant's role reads the same, whoever reads: existing or missing, or no such tenant.
    t.truthy(shown.rivalExists);
    t.is(shown.rivalExists, shown.rivalMissing);
    t.is(shown.noTenant, shown.rivalExists!.replace('tenant rival', 'tenant no-such-tenant'));
  }
  // A role of the tenant beyond the narrow admin reads to it as a missing one; one within its view keeps its reason.
  const narrowLines = await lines(narrow);
  t.is(narrowLines.beyond, narrowLines.missing!.replace('nothing', 'beyond'));
  t.regex(narrowLines.within!, /does not trust/);
  // Root (as a tenant-wide admin) reads the real reason.
  t.regex((await lines(ROOT)).beyond!, /role\/beyond does not trust/);
});

test('DeleteBucket of another tenant\'s bucket and of a missing one answer alike', async (t) => {
  const bucketAdmin = await credential(tg, [{ families: ['bucket:admin', 'bucket:read'], bucket: '*' }]);
  const del = (bucket: string) => signedSend({ url: tg.gw.url, method: 'DELETE', path: `/${bucket}`, creds: bucketAdmin });
  const theirs = await del('rival-data');
  const nobody = await del('no-such-bucket-here');
  t.is(theirs.status, nobody.status);
  t.is(errorCode(theirs), errorCode(nobody));
  t.is(theirs.status, 403);
  const head = (bucket: string) => signedSend({ url: tg.gw.url, method: 'HEAD', path: `/${bucket}`, creds: bucketAdmin });
  t.is((await head('rival-data')).status, (await head('no-such-bucket-here')).status);
});

test('a bucket that appears in storage without an owner is no tenant\'s: root only, never adopted by whoever touches it first', async (t) => {
  await tg.gw.backend.createBucket('appeared');
  const tenantAdmin = await credential(tg, [{ families: ['bucket:admin', 'bucket:read', 'object:read', 'object:write', 'object:list'], bucket: '*' }]);
  const s3 = tg.client(tenantAdmin);
  try {
    await t.throwsAsync(s3.send(new CreateBucketCommand({ Bucket: 'appeared' })), { name: 'BucketAlreadyExists' });
    await t.throwsAsync(s3.send(new PutObjectCommand({ Bucket: 'appeared', Key: 'k', Body: 'x' })), { name: 'AccessDenied' });
    await t.throwsAsync(s3.send(new ListObjectsV2Command({ Bucket: 'appeared' })), { name: 'AccessDenied' });
    await t.throwsAsync(s3.send(new HeadBucketCommand({ Bucket: 'appeared' })));
    t.is(await tg.gw.policy.bucketOwner('appeared'), undefined);
    // Root reaches it, and can give it to a tenant explicitly.
    await tg.s3.send(new PutObjectCommand({ Bucket: 'appeared', Key: 'k', Body: 'x' }));
    await ok(tg, ROOT, 'PUT', '/buckets/appeared/owner', { tenant: TENANT });
    await s3.send(new ListObjectsV2Command({ Bucket: 'appeared' }));
  } finally {
    s3.destroy();
  }
});

test('unauthenticated AssumeRoleWithWebIdentity answers alike for an unknown issuer, a wrong audience or a bad signature', async (t) => {
  const idp = await startIssuer();
  const stranger = await startIssuer();
  try {
    await ok(tg, ROOT, 'POST', '/roles', { tenant: TENANT, name: 'webr', scopes: [{ families: ['object:read'], bucket: 'data' }] });
    await ok(tg, ROOT, 'POST', '/oidc-providers', { tenant: TENANT, issuer: idp.issuer, audience: 'my-app', jwks: idp.jwksUrl, algorithms: ['RS256'], roles: ['webr'] });
    const arn = `arn:aws:iam::${TENANT}:role/webr`;
    const good = await idp.token({ sub: 'amy' });
    const tampered = `${good.slice(0, -4)}${good.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
    const tokens = {
      unknownIssuer: await stranger.token({ sub: 'amy' }),
      wrongAudience: await idp.token({ sub: 'amy', aud: 'other-app' }),
      badSignature: tampered,
      notAJwt: 'not-a-jwt',
    };
    const answers = new Map<string, string>();
    for (const [what, token] of Object.entries(tokens)) {
      const err = await t.throwsAsync(stsClient(tg).send(new AssumeRoleWithWebIdentityCommand({ RoleArn: arn, RoleSessionName: 'web', WebIdentityToken: token })));
      answers.set(what, `${err?.name}: ${err?.message}`);
    }
    t.is(new Set(answers.values()).size, 1, JSON.stringify([...answers]));
    t.regex([...answers.values()][0]!, /^InvalidIdentityToken/);
    // The operator's denial lines keep each cause.
    const reasons = (await denials(tg)).filter((d) => d.action === 'STS:AssumeRoleWithWebIdentity').map((d) => d.reason).join('\n');
    t.regex(reasons, /no OpenID Connect provider/);
    t.regex(reasons, /does not verify/);
    t.truthy((await stsClient(tg).send(new AssumeRoleWithWebIdentityCommand({ RoleArn: arn, RoleSessionName: 'web', WebIdentityToken: good }))).Credentials);
  } finally {
    await idp.close();
    await stranger.close();
  }
});

/** Values of every JSON type, and the shapes that once reached a handler unchecked. */
const WEIRD: unknown[] = [null, 1, -1, 1e300, true, 'x', '', [], {}, [1], [null], { a: { b: 1 } }, { toString: 1 }, '\u0000', 'a'.repeat(5000)];

test('admin and relationship bodies of the wrong shape are 400, never 500, for every endpoint and field', async (t) => {
  const acmeAdmin = await credential(tg, adminOf(''));
  await ok(tg, ROOT, 'PUT', '/buckets/data/governance', { governed: true });
  const target = await credential(tg, [{ families: ['object:read'], bucket: 'data' }]);
  const bodies = (w: unknown): Array<[string, string, Record<string, unknown>]> => [
    ['POST', '/tenants', { name: w, description: w }],
    ['POST', '/credentials', { name: 'w', scopes: w }],
    ['POST', '/credentials', { name: w, scopes: [{ families: ['object:read'], bucket: 'data' }] }],
    ['POST', '/credentials', { name: 'w', scopes: [{ families: w, bucket: w, prefix: w, exact: w, namespaces: w, relations: w }] }],
    ['POST', '/credentials', { name: 'w', expiresAt: w, description: w, scopes: [{ families: ['object:read'], bucket: 'data' }] }],
    ['POST', `/credentials/${target.id}/rotate`, { graceSeconds: w }],
    ['POST', `/credentials/${target.id}/revoke`, { extra: w }],
    ['PUT', '/buckets/data/owner', { tenant: w, reassign: w }],
    ['POST', '/roles', { name: w, scopes: [{ families: ['object:read'], bucket: 'data' }], maxDurationSeconds: w, trust: w, replace: w, description: w }],
    ['POST', '/oidc-providers', { issuer: w, audience: w, jwks: w, algorithms: w, roles: w }],
    ['POST', '/sts/keys/rotate', { graceSeconds: w }],
    ['POST', '/capabilities', { bucket: w, prefix: w, exact: w, actions: w, expiresAt: w }],
    ['POST', '/capabilities', { bucket: 'data', prefix: w, actions: ['read'] }],
    ['POST', '/capabilities/reset', { tenant: w }],
    ['PUT', '/buckets/data/governance', { governed: w }],
    ['PUT', '/schema', { schema: w, reason: w }],
    ['POST', '/schema/diff', { schema: w }],
    ['POST', '/tuples', { reason: w, updates: w }],
    ['POST', '/tuples', { reason: 'r', updates: [{ op: w, tuple: w }] }],
    ['POST', '/tuples', { reason: 'r', updates: [{ op: 'touch', tuple: { resource: w, relation: w, subject: w, caveat: w, expiration: w } }] }],
    ['POST', '/tuples', { reason: 'r', updates: [{ op: 'touch', tuple: 'object:data/x#reader@user:a' }], preconditions: w }],
    ['POST', '/tuples', { reason: 'r', updates: [{ op: 'touch', tuple: 'object:data/x#reader@user:a' }], preconditions: [{ op: 'must_exist', filter: { resourceType: 'object', resourceId: w, relation: w, subjectType: w, subjectId: w, subjectRelation: w } }] }],
    ['POST', '/tuples', { reason: 'r', updates: [{ op: 'touch', tuple: 'object:data/x#reader@user:a' }], preconditions: [{ op: w, filter: w }] }],
    ['POST', '/tuples/import', { text: w, name: w, reason: w }],
    ['POST', '/tuples/restore', { text: w, name: w, reason: w }],
    ['POST', '/check', { resource: w, permission: w, subject: w, context: w, explain: w }],
    ['POST', '/check', { resource: 'object:data/x', permission: 'read', subject: 'user:a', context: { client_ip: w, now: w } }],
    ['POST', '/lookup', { resourceType: w, permission: w, subject: w, limit: w, idPrefix: w, context: w }],
    ['POST', '/tenants/acme/disable', { extra: w }],
    ['POST', '/tenants/no-such-tenant/lockdown', { reason: w }],
    ['POST', '/tenants/no-such-tenant/lockdown/lift', { reason: w }],
    ['POST', '/tenants/acme/credentials/revoke', { extra: w }],
    ['POST', '/audit/check', { tenant: w, days: w, keyAgeDays: w, maxAddresses: w, maxAgents: w, sinceLast: w }],
    ['POST', '/audit/check', { days: w }],
  ];
  const failures: string[] = [];
  for (const creds of [ROOT, acmeAdmin]) {
    for (const w of WEIRD) {
      for (const [method, path, body] of bodies(w)) {
        const withTenant = creds === ROOT && !path.startsWith('/tenants') && !path.includes('/owner') ? { tenant: TENANT, ...body } : body;
        const res = await admin(tg, creds, method, path, withTenant);
        if (res.status >= 500) failures.push(`${method} ${path} ${JSON.stringify(withTenant).slice(0, 400)} → ${res.status} ${JSON.stringify(res.json)}`);
      }
    }
  }
  t.deepEqual(failures, []);
  t.false(tg.logs.some((l) => /failed/.test(l)), tg.logs.filter((l) => /failed/.test(l)).join('\n').slice(0, 3000));
});

test('an admin narrower than its tenant sees only credentials, roles, providers, denials and audit lines within its reach; JWKS queries are never shown', async (t) => {
  const narrow = await credential(tg, adminOf('backups/host1/'));
  const wide = await credential(tg, [{ families: ['admin', 'object:read', 'object:write', 'object:delete', 'object:list', 'bucket:read', 'bucket:admin', 'tuples:read', 'tuples:write', 'check', 'watch'], bucket: '*' }]);
  const other = await credential(tg, [{ families: ['object:read'], bucket: 'data', prefix: 'pub/' }]);
  const mine = await credential(tg, [{ families: ['object:read'], bucket: 'data', prefix: 'backups/host1/' }], narrow);
  // Credentials: its own and those it holds, never the others' scopes.
  const listed: string[] = (await ok(tg, narrow, 'GET', '/credentials')).credentials.map((c: { accessKeyId: string }) => c.accessKeyId);
  t.true(listed.includes(narrow.accessKeyId) && listed.includes(mine.accessKeyId));
  t.false(listed.includes(other.accessKeyId) || listed.includes(wide.accessKeyId));
  t.is((await admin(tg, narrow, 'GET', `/credentials/${other.id}`)).status, 404);
  t.is((await admin(tg, narrow, 'GET', `/credentials/${mine.id}`)).status, 200);
  // Denials: about its credentials or under its prefix only.
  const get = (c: typeof other, key: string) => signedSend({ url: tg.gw.url, method: 'GET', path: `/data/${key}`, creds: c });
  t.is((await get(other, 'secret/x')).status, 403);
  t.is((await get(other, 'backups/host1/a')).status, 403);
  t.is((await get(mine, 'backups/host2/a')).status, 403);
  const seen = (await ok(tg, narrow, 'GET', '/denials')).denials as Array<{ accessKeyId?: string; key?: string }>;
  t.true(seen.some((d) => d.accessKeyId === mine.accessKeyId && d.key === 'backups/host2/a'));
  t.true(seen.some((d) => d.accessKeyId === other.accessKeyId && d.key === 'backups/host1/a'));
  t.false(seen.some((d) => d.key === 'secret/x'), JSON.stringify(seen));
  t.true((await ok(tg, wide, 'GET', '/denials')).denials.some((d: { key?: string }) => d.key === 'secret/x'));
  // Audit: its own changes and those about credentials it holds.
  const audit = (await ok(tg, narrow, 'GET', '/audit')).audit as Array<{ accessKeyId?: string; actor: string }>;
  t.true(audit.some((a) => a.accessKeyId === mine.accessKeyId));
  t.false(audit.some((a) => a.accessKeyId === other.accessKeyId || a.accessKeyId === wide.accessKeyId), JSON.stringify(audit));
  // Buckets: those it holds a grant in, as ListBuckets shows them.
  await tg.s3.send(new CreateBucketCommand({ Bucket: 'acme-extra' }));
  await ok(tg, ROOT, 'PUT', '/buckets/acme-extra/owner', { tenant: TENANT, reassign: true });
  t.deepEqual((await ok(tg, narrow, 'GET', '/buckets')).buckets.map((b: { name: string }) => b.name), ['data']);
  t.true((await ok(tg, wide, 'GET', '/buckets')).buckets.some((b: { name: string }) => b.name === 'acme-extra'));
  // Roles and providers beyond it are not listed (nor shown); no listing shows a JWKS query string.
  await ok(tg, ROOT, 'POST', '/roles', { tenant: TENANT, name: 'pub-reader', scopes: [{ families: ['object:read'], bucket: 'data', prefix: 'pub/' }] });
  t.false((await ok(tg, narrow, 'GET', '/roles')).roles.some((r: { name: string }) => r.name === 'pub-reader'));
  t.is((await admin(tg, narrow, 'GET', `/roles/${TENANT}/pub-reader`)).status, 404);
  const idp = await startIssuer();
  try {
    const secret = 'jwks-access-token-123';
    const added = await ok(tg, ROOT, 'POST', '/oidc-providers', { tenant: TENANT, issuer: idp.issuer, audience: 'a', jwks: `${idp.jwksUrl}?access_token=${secret}`, roles: ['pub-reader'] });
    t.false(JSON.stringify(added).includes(secret));
    t.false((await ok(tg, narrow, 'GET', '/oidc-providers')).providers.some((p: { id: string }) => p.id === added.id));
    for (const creds of [wide, ROOT]) {
      const all = await ok(tg, creds, 'GET', `/oidc-providers?tenant=${TENANT}`);
      t.true(all.providers.some((p: { id: string }) => p.id === added.id));
      t.false(JSON.stringify(all).includes(secret));
    }
    t.is((await admin(tg, ROOT, 'POST', '/oidc-providers', { tenant: TENANT, issuer: `${idp.issuer}?x=1`, audience: 'b', jwks: idp.jwksUrl, roles: ['pub-reader'] })).status, 400);
  } finally {
    await idp.close();
  }
});

/** A console session of `creds` (signed in over HTTP as the page does): calls to the console's admin API. */
async function consoleAs(creds: { accessKeyId: string; secretAccessKey: string }) {
  const base = `${tg.gw.url}/_anvil/console/api`;
  const signIn = await fetch(`${base}/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ accessKeyId: creds.accessKeyId, secretKey: creds.secretAccessKey }) });
  if (signIn.status !== 200) throw new Error(`console sign-in: ${signIn.status}`);
  const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
  const { csrf } = (await signIn.json()) as { csrf: string };
  return async (method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> => {
    const res = await fetch(`${base}/v1${path}`, { method, headers: { cookie, 'x-anvil-csrf': csrf, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, json: await res.json() };
  };
}

test('through the console\'s API too, a narrower admin sees only what it has authority over: credentials, denials, audit lines, audit findings and runs, revoke --all', async (t) => {
  const narrow = await credential(tg, adminOf('backups/console/'));
  const wide = await credential(tg, [{ families: [...FAMILIES], bucket: '*' }]);
  const mine = await credential(tg, [{ families: ['object:read', 'admin'], bucket: 'data', prefix: 'backups/console/a/' }], narrow);
  // Whole-bucket read: a broad-scope finding about a credential the narrower admin does not hold.
  const other = await credential(tg, [{ families: ['object:read'], bucket: 'data' }]);
  const get = (c: typeof other, key: string) => signedSend({ url: tg.gw.url, method: 'GET', path: `/data/${key}`, creds: c });
  t.is((await get(other, '_anvil/console-other')).status, 403);
  t.is((await get(mine, '_anvil/console-mine')).status, 403);
  t.is((await get(mine, 'secret/console-y')).status, 403);
  const asNarrow = await consoleAs(narrow);
  const asWide = await consoleAs(wide);
  const names = (x: { status: number; json: any }) => JSON.stringify(x.json);

  const creds = await asNarrow('GET', '/credentials');
  t.is(creds.status, 200);
  t.true(names(creds).includes(mine.accessKeyId));
  t.false(names(creds).includes(other.accessKeyId) || names(creds).includes(wide.accessKeyId));
  t.is((await asNarrow('GET', `/credentials/${other.id}`)).status, 404);
  const seen = (await asNarrow('GET', '/denials')).json.denials as Array<{ accessKeyId?: string; key?: string }>;
  t.true(seen.some((d) => d.accessKeyId === mine.accessKeyId && d.key === 'secret/console-y'));
  t.false(seen.some((d) => d.accessKeyId === other.accessKeyId || d.key === 'secret/console-x' || d.key === '_anvil/console-other'), JSON.stringify(seen));
  t.false(names(await asNarrow('GET', '/audit')).includes(other.accessKeyId));

  // Audit findings: the tenant-wide admin's report names `other`; the narrower one's only what it holds.
  const wideReport = (await asWide('GET', '/audit/check')).json as { findings: Array<{ check: string; accessKeyId?: string; message: string }> };
  t.true(wideReport.findings.some((f) => f.accessKeyId === other.accessKeyId && f.check === 'broad-scope'));
  t.true(wideReport.findings.some((f) => f.check === 'reserved-namespace' && f.accessKeyId === other.accessKeyId));
  const preview = await asNarrow('GET', '/audit/check');
  t.is(preview.status, 200);
  const findings = preview.json.findings as Array<{ check: string; accessKeyId?: string }>;
  t.true(findings.some((f) => f.accessKeyId === mine.accessKeyId && f.check === 'broad-scope'));
  t.true(findings.some((f) => f.accessKeyId === mine.accessKeyId && f.check === 'reserved-namespace'));
  t.true(findings.every((f) => f.accessKeyId === narrow.accessKeyId || f.accessKeyId === mine.accessKeyId), JSON.stringify(findings));
  t.false(names(preview).includes(other.accessKeyId) || names(preview).includes(wide.accessKeyId));
  // Recorded runs: each compares with its own view only, and neither sees the other's counts.
  t.is((await asWide('POST', '/audit/check', {})).status, 200);
  const run = await asNarrow('POST', '/audit/check', {});
  t.is(run.status, 200);
  t.is(run.json.previousRun, undefined, 'the tenant-wide run is not the narrower admin\'s baseline');
  t.deepEqual((await asNarrow('GET', '/audit/checks')).json.runs.map((r: { actor: string }) => r.actor), [narrow.accessKeyId]);
  t.false((await asWide('GET', '/audit/checks')).json.runs.some((r: { actor: string }) => r.actor === narrow.accessKeyId));
  t.is((await asNarrow('POST', '/audit/check', {})).json.previousRun?.actor, narrow.accessKeyId);

  // revoke --all from the console: what it holds, itself last; nothing beyond it is revoked or named.
  const all = await asNarrow('POST', `/tenants/${TENANT}/credentials/revoke`, {});
  t.is(all.status, 200);
  t.deepEqual(all.json.revoked, [mine.accessKeyId, narrow.accessKeyId]);
  t.deepEqual(all.json.refused, []);
  t.true(all.json.partial);
  t.false(names(all).includes(other.accessKeyId) || names(all).includes(wide.accessKeyId));
  t.is((await ok(tg, ROOT, 'GET', `/credentials/${other.id}`)).status, 'active');
  t.is((await ok(tg, ROOT, 'GET', `/credentials/${wide.id}`)).status, 'active');
  t.is((await asNarrow('GET', '/credentials')).status, 401, 'its own revocation ended its console session');
});

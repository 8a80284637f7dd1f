/**
 * Issue 9, follow-up of class 7: an admin narrower than its tenant cannot tell "exists but beyond my authority" from
 * "missing". Table-driven over every admin route with a path parameter: the hidden thing and a missing one answer
 * the same status, code and message (the id aside), the hidden thing is left untouched, and a refusal leaves a
 * denial line. Names taken by hidden things (role names, issuers) are refused without naming what holds them.
 */
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import { ADMIN_ROUTES, FAMILY_ROUTES } from '../gateway/admin/routes.ts';
import { admin, denials, ok, type Creds } from './helpers/admin.ts';
import { adminOf, BUCKET, credential, seed, startIssuer, TENANT, type Issuer } from './helpers/authority.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { signedSend } from './helpers/raw.ts';
import type { DenialRecord } from '../policy/index.ts';

let tg: TestGateway;
let idp: Issuer;
let narrow: Creds & { id: string };
const OTHER_BUCKET = 'data-hidden';
const OTHER_TENANT = 'beta';
/** Ids of things that exist but lie beyond the narrow admin's authority. */
const hiddenIds: Record<string, string> = {};

test.before(async () => {
  tg = await startTestGateway({ ANVIL_OIDC_ALLOW_INSECURE_JWKS: 'true' });
  idp = await startIssuer();
  await seed(tg);
  await ok(tg, ROOT, 'POST', '/tenants', { name: OTHER_TENANT });
  await tg.s3.send(new CreateBucketCommand({ Bucket: OTHER_BUCKET }));
  await ok(tg, ROOT, 'PUT', `/buckets/${OTHER_BUCKET}/owner`, { tenant: TENANT, reassign: true });
  narrow = await credential(tg, adminOf('pub/'));
  hiddenIds.credential = (await credential(tg, [{ families: ['object:read'], bucket: BUCKET }])).id;
  await ok(tg, ROOT, 'POST', '/roles', { tenant: TENANT, name: 'broad', scopes: [{ families: ['object:read'], bucket: '*' }] });
  hiddenIds.role = 'broad';
  const provider = await ok(tg, ROOT, 'POST', '/oidc-providers', { tenant: TENANT, issuer: idp.issuer, audience: 'my-app', jwks: idp.jwksUrl, algorithms: ['RS256'], roles: ['broad'] });
  hiddenIds.provider = provider.id;
  hiddenIds.capability = (await ok(tg, ROOT, 'POST', '/capabilities', { tenant: TENANT, bucket: BUCKET, actions: ['read'] })).id;
});
test.after.always(async () => {
  await idp?.close();
  await tg?.close();
});

/** One route with a path parameter: the path naming a hidden thing, the path naming a missing one, and a body. */
interface Case {
  method: string;
  pattern: string;
  hidden: () => string;
  missing: string;
  body?: unknown;
  /** The hidden id as it appears in messages (defaults to the path parameter). */
  id: () => string;
  missingId: string;
}

const MISSING_KEY = 'AKIANOSUCHCREDENTIAL';
const cases: Case[] = [
  ...['GET /tenants/:name', 'DELETE /tenants/:name', 'POST /tenants/:name/disable', 'POST /tenants/:name/enable', 'POST /tenants/:name/lockdown', 'POST /tenants/:name/lockdown/lift', 'POST /tenants/:name/credentials/revoke'].map((r) => {
    const [method, pattern] = r.split(' ') as [string, string];
    const body = pattern.includes('lockdown') ? { reason: 'probe' } : pattern.endsWith('revoke') || pattern.endsWith('able') ? {} : undefined;
    return { method, pattern, hidden: () => pattern.replace(':name', OTHER_TENANT), missing: pattern.replace(':name', 'nosuchtenant'), body, id: () => OTHER_TENANT, missingId: 'nosuchtenant' };
  }),
  ...['GET /credentials/:id', 'DELETE /credentials/:id', 'POST /credentials/:id/rotate', 'POST /credentials/:id/revoke'].map((r) => {
    const [method, pattern] = r.split(' ') as [string, string];
    return { method, pattern, hidden: () => pattern.replace(':id', hiddenIds.credential!), missing: pattern.replace(':id', MISSING_KEY), body: method === 'POST' ? {} : undefined, id: () => hiddenIds.credential!, missingId: MISSING_KEY };
  }),
  { method: 'PUT', pattern: '/buckets/:bucket/owner', hidden: () => `/buckets/${OTHER_BUCKET}/owner`, missing: '/buckets/nosuchbucket/owner', body: { tenant: TENANT }, id: () => OTHER_BUCKET, missingId: 'nosuchbucket' },
  { method: 'GET', pattern: '/buckets/:bucket/governance', hidden: () => `/buckets/${OTHER_BUCKET}/governance`, missing: '/buckets/nosuchbucket/governance', id: () => OTHER_BUCKET, missingId: 'nosuchbucket' },
  { method: 'PUT', pattern: '/buckets/:bucket/governance', hidden: () => `/buckets/${OTHER_BUCKET}/governance`, missing: '/buckets/nosuchbucket/governance', body: { governed: true }, id: () => OTHER_BUCKET, missingId: 'nosuchbucket' },
  { method: 'GET', pattern: '/roles/:tenant/:name', hidden: () => `/roles/${TENANT}/broad`, missing: `/roles/${TENANT}/nosuchrole`, id: () => 'broad', missingId: 'nosuchrole' },
  { method: 'DELETE', pattern: '/roles/:tenant/:name', hidden: () => `/roles/${TENANT}/broad`, missing: `/roles/${TENANT}/nosuchrole`, id: () => 'broad', missingId: 'nosuchrole' },
  { method: 'DELETE', pattern: '/oidc-providers/:id', hidden: () => `/oidc-providers/${hiddenIds.provider}`, missing: '/oidc-providers/oidc-000000000000', id: () => hiddenIds.provider!, missingId: 'oidc-000000000000' },
  { method: 'POST', pattern: '/capabilities/:id/revoke', hidden: () => `/capabilities/${encodeURIComponent(hiddenIds.capability!)}/revoke`, missing: `/capabilities/${TENANT}:nosuchcapability/revoke`, body: {}, id: () => hiddenIds.capability!, missingId: `${TENANT}:nosuchcapability` },
];

test('the table covers every admin route with a path parameter', (t) => {
  const withParams = [...ADMIN_ROUTES, ...FAMILY_ROUTES].filter((r) => r.pattern.includes(':')).map((r) => `${r.method} ${r.pattern}`);
  t.deepEqual(cases.map((c) => `${c.method} ${c.pattern}`).sort(), withParams.sort());
});

for (const c of cases) {
  test.serial(`${c.method} ${c.pattern}: a hidden thing answers exactly as a missing one`, async (t) => {
    const before = (await denials(tg)).length;
    const hidden = await admin(tg, narrow, c.method, c.hidden(), c.body);
    const missing = await admin(tg, narrow, c.method, c.missing, c.body);
    const shape = (res: { status: number; json: any }, id: string) => ({ status: res.status, code: res.json?.error?.code, message: String(res.json?.error?.message).split(id).join('<id>') });
    t.deepEqual(shape(hidden, c.id()), shape(missing, c.missingId));
    t.true(hidden.status === 403 || hidden.status === 404, JSON.stringify(hidden.json));
    t.true((await denials(tg)).slice(before).some((d) => d.accessKeyId === narrow.accessKeyId), 'the refusal of the hidden thing is on the denial log');
    // The lines the narrow admin reads of its own two requests differ only by the id, as the answers do.
    const seen: DenialRecord[] = (await ok(tg, narrow, 'GET', '/denials')).denials;
    const line = (res: { json: any }, id: string) => {
      const d = seen.find((r) => r.requestId === res.json?.error?.requestId);
      return d && { layer: d.layer, action: d.action, reason: d.reason.split(id).join('<id>'), bucket: d.bucket?.split(id).join('<id>') };
    };
    t.truthy(line(hidden, c.id()), 'the narrow admin reads a line for the hidden thing');
    t.deepEqual(line(hidden, c.id()), line(missing, c.missingId));
  });
}

test.serial('root reads the true reason of a hidden thing\'s line, which the narrow admin reads as a missing one\'s', async (t) => {
  const res = await admin(tg, narrow, 'GET', `/credentials/${hiddenIds.credential}`);
  const requestId = res.json.error.requestId;
  const truth = (await ok(tg, ROOT, 'GET', `/denials?accessKey=${narrow.accessKeyId}`)).denials.find((d: DenialRecord) => d.requestId === requestId);
  t.like(truth, { layer: 'scope' });
  t.regex(truth.reason, /is beyond the caller's scopes/);
  const shown = (await ok(tg, narrow, 'GET', '/denials')).denials.find((d: DenialRecord) => d.requestId === requestId);
  t.like(shown, { layer: 'tenant', reason: `no credential ${hiddenIds.credential} in tenant ${TENANT}` });
  t.true((await ok(tg, narrow, 'GET', '/denials?layer=tenant')).denials.some((d: DenialRecord) => d.requestId === requestId));
  t.false((await ok(tg, narrow, 'GET', '/denials?layer=scope')).denials.some((d: DenialRecord) => d.requestId === requestId));
});

test.serial('S3 denial lines of a credential it sees do not tell the narrow admin which buckets beyond it exist', async (t) => {
  const held = await credential(tg, [{ families: ['object:read'], bucket: BUCKET, prefix: 'pub/' }]);
  const head = (bucket: string) => signedSend({ url: tg.gw.url, method: 'HEAD', path: `/${bucket}`, creds: held });
  const beyond = await head(OTHER_BUCKET);
  const absent = await head('nosuchbucket');
  t.is(beyond.status, 403);
  t.is(absent.status, 403);
  const lines = async (who: Creds, layer?: string): Promise<DenialRecord[]> =>
    (await ok(tg, who, 'GET', `/denials?accessKey=${held.accessKeyId}${layer ? `&layer=${layer}` : ''}`)).denials;
  const line = (seen: DenialRecord[], res: typeof beyond, bucket: string) => {
    const d = seen.find((r) => r.requestId === res.headers['x-amz-request-id']);
    return d && { layer: d.layer, action: d.action, reason: d.reason.split(bucket).join('<b>'), bucket: d.bucket?.split(bucket).join('<b>') };
  };
  const seen = await lines(narrow);
  t.truthy(line(seen, beyond, OTHER_BUCKET));
  t.deepEqual(line(seen, beyond, OTHER_BUCKET), line(seen, absent, 'nosuchbucket'));
  for (const layer of ['scope', 'tenant']) {
    const filtered = await lines(narrow, layer);
    t.is(Boolean(line(filtered, beyond, OTHER_BUCKET)), Boolean(line(filtered, absent, 'nosuchbucket')), layer);
  }
  // Root (and a tenant-wide admin) read what happened: the bucket exists and the credential holds no grant in it.
  t.like(line(await lines(ROOT), beyond, OTHER_BUCKET), { layer: 'scope' });
  // A bucket the narrow admin does see keeps its true line.
  const inside = await signedSend({ url: tg.gw.url, method: 'GET', path: `/${BUCKET}/secret/x`, creds: held });
  t.like(line(await lines(narrow), inside, BUCKET), { layer: 'scope' });
});

test.serial('minting a capability or share link on a bucket beyond it answers as on a missing one, in its lines too', async (t) => {
  const mint = async (bucket: string, exact: boolean) => {
    const res = await admin(tg, narrow, 'POST', '/capabilities', { bucket, actions: ['read'], ...(exact ? { prefix: 'k1', exact } : {}) });
    const requestId = res.json.error?.requestId;
    const line = (await ok(tg, narrow, 'GET', '/denials')).denials.find((d: DenialRecord) => d.requestId === requestId);
    const hide = (text: unknown) => String(text).split(bucket).join('<b>');
    return { status: res.status, code: res.json.error?.code, message: hide(res.json.error?.message), layer: line?.layer, reason: hide(line?.reason) };
  };
  for (const exact of [false, true]) {
    const beyond = await mint(OTHER_BUCKET, exact);
    t.is(beyond.status, 403);
    t.deepEqual(beyond, await mint('nosuchbucket-cap', exact));
  }
  // Root reads what happened: the bucket exists and the admin holds no grant in it.
  const truth = (await ok(tg, ROOT, 'GET', `/denials?accessKey=${narrow.accessKeyId}&bucket=${OTHER_BUCKET}`)).denials;
  t.true(truth.some((d: DenialRecord) => d.action === 'Admin:MintCapability' && d.layer === 'scope'), JSON.stringify(truth.map((d: DenialRecord) => [d.action, d.layer])));
});

test.serial('the hidden things are all still there and unchanged', async (t) => {
  t.is((await ok(tg, ROOT, 'GET', `/credentials/${hiddenIds.credential}`)).status, 'active');
  t.is((await ok(tg, ROOT, 'GET', `/roles/${TENANT}/broad`)).name, 'broad');
  t.true((await ok(tg, ROOT, 'GET', `/oidc-providers?tenant=${TENANT}`)).providers.some((p: { id: string }) => p.id === hiddenIds.provider));
  t.false((await ok(tg, ROOT, 'GET', `/buckets/${OTHER_BUCKET}/governance`)).governed);
});

test.serial('names taken by hidden things are refused without naming what holds them; the tenant shows only visible buckets', async (t) => {
  await ok(tg, narrow, 'POST', '/roles', { name: 'mine', scopes: [{ families: ['object:read'], bucket: BUCKET, prefix: 'pub/' }] });
  const issuer = await admin(tg, narrow, 'POST', '/oidc-providers', { issuer: idp.issuer, audience: 'x', jwks: idp.jwksUrl, roles: ['mine'] });
  const freshIssuer = await admin(tg, narrow, 'POST', '/oidc-providers', { issuer: `${idp.issuer}/fresh`, audience: 'x', jwks: idp.jwksUrl, roles: ['mine'] });
  t.is(freshIssuer.status, 201, JSON.stringify(freshIssuer.json));
  t.is(issuer.status, 403, JSON.stringify(issuer.json));
  t.notRegex(issuer.json.error.message, /already|trusts|oidc-/);
  const role = { name: 'broad', scopes: [{ families: ['object:read'], bucket: BUCKET, prefix: 'pub/' }] };
  for (const replace of [false, true]) {
    const res = await admin(tg, narrow, 'POST', '/roles', { ...role, replace });
    t.is(res.status, 403, JSON.stringify(res.json));
    t.notRegex(res.json.error.message, /exists|object:read on bucket \*/);
  }
  // Naming a hidden role for an issuer answers as naming a missing one.
  const viaRole = async (name: string) => {
    const res = await admin(tg, narrow, 'POST', '/oidc-providers', { issuer: `${idp.issuer}/${name}`, audience: 'x', jwks: idp.jwksUrl, roles: [name] });
    return { status: res.status, code: res.json.error?.code, message: String(res.json.error?.message).split(name).join('<id>') };
  };
  t.deepEqual(await viaRole('broad'), await viaRole('nosuchrole'));
  const shown = await ok(tg, narrow, 'GET', `/tenants/${TENANT}`);
  t.deepEqual(shown.buckets, [BUCKET]);
  // Its counts are over what it sees, not the whole tenant's (which root still gets).
  const seen = (await ok(tg, narrow, 'GET', '/credentials')).credentials;
  t.like(shown, { bucketCount: 1, credentialCount: seen.length });
  const whole = await ok(tg, ROOT, 'GET', `/tenants/${TENANT}`);
  t.like(whole, { bucketCount: 2, credentialCount: (await ok(tg, ROOT, 'GET', `/credentials?tenant=${TENANT}`)).credentials.length });
  t.true(whole.credentialCount > seen.length);
});

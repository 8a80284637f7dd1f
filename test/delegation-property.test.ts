/**
 * The delegation property of issue 9: for every chain the product offers, the authority of what comes out, probed
 * over HTTP on a fixed set of (bucket, key, action) triples, is a subset of the authority of who made it — at
 * creation, and after the maker is narrowed, revoked or deleted (then it is empty).
 * Chains: admin → credential; credential → role → session → presigned URL; admin → role → session; admin →
 * capability and share link; admin → OIDC provider → web-identity session (in a governed bucket too, whatever sub
 * the issuer signs); app → tuples (in a governed bucket; the tuples an application wrote go when it is revoked or
 * deleted).
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import test, { type ExecutionContext } from 'ava';
import { ok, type Creds } from './helpers/admin.ts';
import {
  adminOf, assumeRole, assumeWeb, authority, beyond, BUCKET, credential, KEYS, seed, startIssuer, TENANT, TRIPLES, type Caller,
} from './helpers/authority.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { send } from './helpers/raw.ts';

const INSECURE = { ANVIL_OIDC_ALLOW_INSECURE_JWKS: 'true' };

/** Reads that presigned GET URLs of a session allow, as `read bucket/key`. */
async function presignedAuthority(tg: TestGateway, creds: Creds): Promise<Set<string>> {
  const s3 = tg.client(creds);
  const out = new Set<string>();
  try {
    for (const key of KEYS) {
      const url = new URL(await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: key }), { expiresIn: 600 }));
      const res = await send({ url: tg.gw.url, method: 'GET', path: url.pathname + url.search });
      if (res.status === 200) out.add(`read ${BUCKET}/${key}`);
    }
  } finally {
    s3.destroy();
  }
  return out;
}

function subset(t: ExecutionContext, made: Set<string>, maker: Set<string>, what: string): void {
  t.deepEqual(beyond(made, maker), [], `${what} exceeds its maker`);
}

test('admin → credential: within the admin, and nothing once the admin is revoked or deleted', async (t) => {
  const tg = await startTestGateway();
  try {
    await seed(tg);
    for (const end of ['revoke', 'delete'] as const) {
      const a = await credential(tg, adminOf('backups/'));
      const c = await credential(tg, [{ families: ['object:read', 'object:list', 'object:delete'], bucket: BUCKET, prefix: 'backups/host1/' }, { families: ['object:read'], bucket: BUCKET, prefix: 'backups/host2/a', exact: true }], a);
      const ofA = await authority(tg, { creds: a });
      const ofC = await authority(tg, { creds: c });
      t.true(ofC.size > 0);
      subset(t, ofC, ofA, 'credential');
      await ok(tg, ROOT, end === 'revoke' ? 'POST' : 'DELETE', `/credentials/${a.id}${end === 'revoke' ? '/revoke' : ''}`);
      t.deepEqual([...(await authority(tg, { creds: c }))], [], `after the maker's ${end}`);
    }
  } finally {
    await tg.close();
  }
});

test('credential → role → session → presigned URL: within credential ∩ role ∩ role maker, narrowed with the role, empty after', async (t) => {
  const tg = await startTestGateway();
  try {
    await seed(tg);
    const a = await credential(tg, adminOf('backups/'));
    const p = await credential(tg, [{ families: ['object:read', 'object:write', 'object:list'], bucket: BUCKET }]);
    const role = await ok(tg, a, 'POST', '/roles', { name: 'backups', scopes: [{ families: ['object:read', 'object:list', 'object:delete'], bucket: BUCKET, prefix: 'backups/' }] });
    const session = await assumeRole(tg, p, role.arn);
    const chained = await assumeRole(tg, session, role.arn);
    const ofA = await authority(tg, { creds: a });
    const ofP = await authority(tg, { creds: p });
    const check = async (bound: Set<string>, label: string) => {
      for (const [name, creds] of [['session', session], ['chained session', chained]] as const) {
        const got = await authority(tg, { creds });
        subset(t, got, bound, `${name} ${label}`);
        subset(t, got, ofP, `${name} ${label} (parent)`);
        subset(t, await presignedAuthority(tg, creds), got, `presigned URL of the ${name} ${label}`);
      }
    };
    t.true((await authority(tg, { creds: session })).size > 0);
    await check(ofA, 'at creation');
    // The maker narrows the role: the live sessions (and their presigned URLs) narrow on their next request.
    await ok(tg, a, 'POST', '/roles', { name: 'backups', replace: true, scopes: [{ families: ['object:read'], bucket: BUCKET, prefix: 'backups/host1/' }] });
    const narrowed = await authority(tg, { creds: a }, TRIPLES.filter((x) => x.action === 'read' && x.key.startsWith('backups/host1/')));
    await check(narrowed, 'after the role narrowed');
    await ok(tg, ROOT, 'POST', `/credentials/${a.id}/revoke`);
    for (const creds of [session, chained]) {
      t.deepEqual([...(await authority(tg, { creds }))], []);
      t.deepEqual([...(await presignedAuthority(tg, creds))], []);
    }
  } finally {
    await tg.close();
  }
});

test('admin → capability and share link: within the admin, and nothing once it is revoked or deleted', async (t) => {
  const tg = await startTestGateway();
  try {
    await seed(tg);
    for (const end of ['revoke', 'delete'] as const) {
      const a = await credential(tg, adminOf('backups/'));
      const cap = await ok(tg, a, 'POST', '/capabilities', { bucket: BUCKET, prefix: 'backups/', actions: ['read', 'list', 'write', 'delete'] });
      const link = await ok(tg, a, 'POST', '/capabilities', { bucket: BUCKET, prefix: 'backups/host1/a', exact: true, actions: ['read'] });
      const ofA = await authority(tg, { creds: a });
      for (const c of [cap, link]) {
        const caller: Caller = { capability: c.capability };
        const got = await authority(tg, caller);
        t.true(got.size > 0);
        subset(t, got, ofA, 'capability');
      }
      await ok(tg, ROOT, end === 'revoke' ? 'POST' : 'DELETE', `/credentials/${a.id}${end === 'revoke' ? '/revoke' : ''}`);
      for (const c of [cap, link]) t.deepEqual([...(await authority(tg, { capability: c.capability }))], [], `after the maker's ${end}`);
    }
  } finally {
    await tg.close();
  }
});

test('admin → OIDC provider → web session: within the admin, narrowed with the role, nothing once the admin is deleted', async (t) => {
  const tg = await startTestGateway(INSECURE);
  const idp = await startIssuer();
  try {
    await seed(tg);
    const a = await credential(tg, adminOf('backups/'));
    const role = await ok(tg, a, 'POST', '/roles', { name: 'web', scopes: [{ families: ['object:read', 'object:list'], bucket: BUCKET, prefix: 'backups/' }] });
    await ok(tg, a, 'POST', '/oidc-providers', { issuer: idp.issuer, audience: 'my-app', jwks: idp.jwksUrl, algorithms: ['RS256'], roles: ['web'] });
    const web = await assumeWeb(tg, role.arn, await idp.token({ sub: 'anyone' }));
    const ofA = await authority(tg, { creds: a });
    const got = await authority(tg, { creds: web });
    t.true(got.size > 0);
    subset(t, got, ofA, 'web session');
    await ok(tg, a, 'POST', '/roles', { name: 'web', replace: true, scopes: [{ families: ['object:read'], bucket: BUCKET, prefix: 'backups/host2/' }] });
    subset(t, await authority(tg, { creds: web }), new Set([`read ${BUCKET}/backups/host2/a`]), 'web session after the role narrowed');
    await ok(tg, ROOT, 'DELETE', `/credentials/${a.id}`);
    t.deepEqual([...(await authority(tg, { creds: web }))], []);
    await t.throwsAsync(assumeWeb(tg, role.arn, await idp.token({ sub: 'anyone' })));
  } finally {
    await idp.close();
    await tg.close();
  }
});

test('app → tuples: what an application grants another subject is within what it can read itself', async (t) => {
  const tg = await startTestGateway();
  try {
    await seed(tg);
    await ok(tg, ROOT, 'PUT', `/buckets/${BUCKET}/governance`, { governed: true });
    const app = await credential(tg, [{ families: ['object:read', 'object:list', 'tuples:write'], bucket: BUCKET }]);
    const victim = await credential(tg, [{ families: ['object:read', 'object:list'], bucket: BUCKET }]);
    await ok(tg, ROOT, 'POST', '/tuples', { tenant: TENANT, updates: [{ op: 'touch', tuple: `folder:${BUCKET}/backups/host1/#reader@app:${app.id}` }], reason: 'app reads host1' });
    const reads = TRIPLES.filter((x) => x.action === 'read');
    // The app tries to hand the victim read on every probe key, as object, folder and bucket tuples.
    for (const key of KEYS) {
      const folder = key.slice(0, key.lastIndexOf('/') + 1);
      for (const tuple of [`object:${BUCKET}/${key}#reader@app:${victim.id}`, `folder:${BUCKET}/${folder}#reader@app:${victim.id}`, `bucket:${BUCKET}#reader@app:${victim.id}`]) {
        await ok(tg, app, 'POST', '/tuples', { updates: [{ op: 'touch', tuple }], reason: 'probe' }).catch(() => undefined);
      }
    }
    const ofApp = await authority(tg, { creds: app }, reads);
    const ofVictim = await authority(tg, { creds: victim }, reads);
    t.true(ofVictim.size > 0, 'some grant went through');
    subset(t, ofVictim, ofApp, 'what the app granted');
    // Revoking the app removes what it handed out; the victim keeps nothing it had only from the app.
    await ok(tg, ROOT, 'POST', `/credentials/${app.id}/revoke`);
    t.deepEqual([...(await authority(tg, { creds: victim }, reads))], []);
  } finally {
    await tg.close();
  }
});

test('admin → OIDC provider → web session in a governed bucket: any sub it signs stays within the admin\'s relationships, now', async (t) => {
  const tg = await startTestGateway(INSECURE);
  const idp = await startIssuer();
  try {
    await seed(tg);
    await ok(tg, ROOT, 'PUT', `/buckets/${BUCKET}/governance`, { governed: true });
    const a = await credential(tg, [{ families: ['admin', 'object:read', 'object:list', 'object:write', 'object:delete'], bucket: BUCKET }]);
    // alice may do everything; the admin holds only backups/host1/.
    await ok(tg, ROOT, 'POST', '/tuples', { tenant: TENANT, reason: 'seed', updates: [
      { op: 'touch', tuple: `bucket:${BUCKET}#owner@user:alice` },
      { op: 'touch', tuple: `folder:${BUCKET}/backups/host1/#owner@app:${a.id}` },
    ] });
    const role = await ok(tg, a, 'POST', '/roles', { name: 'web', scopes: [{ families: ['object:read', 'object:list', 'object:write', 'object:delete'], bucket: BUCKET }] });
    await ok(tg, a, 'POST', '/oidc-providers', { issuer: idp.issuer, audience: 'my-app', jwks: idp.jwksUrl, algorithms: ['RS256'], roles: ['web'] });
    const alice = await assumeWeb(tg, role.arn, await idp.token({ sub: 'alice' }));
    const ofA = await authority(tg, { creds: a });
    const got = await authority(tg, { creds: alice });
    t.true(got.size > 0);
    subset(t, got, ofA, 'web session as alice');
    // The admin loses its tuple: the session loses what it had through the admin on its next request.
    await ok(tg, ROOT, 'POST', '/tuples', { tenant: TENANT, reason: 'x', updates: [{ op: 'delete', tuple: `folder:${BUCKET}/backups/host1/#owner@app:${a.id}` }] });
    const after = await authority(tg, { creds: a });
    subset(t, await authority(tg, { creds: alice }), after, 'web session after the admin lost its tuple');
  } finally {
    await idp.close();
    await tg.close();
  }
});

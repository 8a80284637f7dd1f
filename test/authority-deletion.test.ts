/**
 * Issue 9, class 4: deleting something removes all the authority hanging from it. A deleted tenant takes its
 * credentials, roles, providers, capability keys, sessions, schemas and tuples with it, and a new tenant of the same
 * name inherits nothing; a deleted or revoked credential takes what it made (credentials, roles, providers,
 * capabilities, share links) and their sessions with it.
 */
import { DeleteBucketCommand, DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import { admin, denials, ok, type Creds } from './helpers/admin.ts';
import { adminOf, allowed, assumeRole, assumeWeb, BUCKET, credential, KEYS, seed, startIssuer, TENANT, type Caller } from './helpers/authority.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';

const INSECURE = { ANVIL_OIDC_ALLOW_INSECURE_JWKS: 'true' };
const canRead = (tg: TestGateway, caller: Caller, key = 'pub/x') => allowed(tg, caller, { bucket: BUCKET, key, action: 'read' });

/** The S3 error name a GET answers with, or 'ok'. */
async function outcome(tg: TestGateway, creds: Creds, key = 'pub/x'): Promise<string> {
  const s3 = tg.client(creds);
  try {
    await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return 'ok';
  } catch (error) {
    return (error as Error).name;
  } finally {
    s3.destroy();
  }
}

test('a tenant deleted and created again under its name inherits nothing: capabilities, sessions, roles, schema, tuples', async (t) => {
  const tg = await startTestGateway(INSECURE);
  const idp = await startIssuer();
  try {
    await seed(tg);
    const cap = await ok(tg, ROOT, 'POST', '/capabilities', { bucket: BUCKET, prefix: '', actions: ['read', 'list'] });
    const app = await credential(tg, [{ families: ['object:read'], bucket: BUCKET }]);
    const role = await ok(tg, ROOT, 'POST', '/roles', { tenant: TENANT, name: 'reader', scopes: [{ families: ['object:read'], bucket: BUCKET }] });
    await ok(tg, ROOT, 'POST', '/oidc-providers', { tenant: TENANT, issuer: idp.issuer, audience: 'my-app', jwks: idp.jwksUrl, algorithms: ['RS256'], roles: ['reader'] });
    const session = await assumeRole(tg, app, role.arn);
    const web = await assumeWeb(tg, role.arn, await idp.token({ sub: 'amy' }));
    await ok(tg, ROOT, 'PUT', `/buckets/${BUCKET}/governance`, { governed: false });
    await ok(tg, ROOT, 'PUT', '/schema', { tenant: TENANT, schema: 'definition user {}\ndefinition group { relation member: user }', reason: 'first tenant' });
    await ok(tg, ROOT, 'POST', '/tuples', { tenant: TENANT, updates: [{ op: 'touch', tuple: 'group:eng#member@user:amy' }], reason: 'first tenant' });
    t.true(await canRead(tg, { capability: cap.capability }));
    t.is(await outcome(tg, session), 'ok');
    t.is(await outcome(tg, web), 'ok');

    const refusedBefore = (await denials(tg)).filter((d) => d.layer === 'capability').length;
    // The tenant goes: its bucket emptied and deleted first (a tenant owning buckets cannot be deleted).
    for (const key of KEYS) await tg.s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
    await tg.s3.send(new DeleteBucketCommand({ Bucket: BUCKET }));
    await ok(tg, ROOT, 'DELETE', `/tenants/${TENANT}`);
    // ... and a new tenant of the same name, with a new bucket of the same name.
    await seed(tg);
    t.false(await canRead(tg, { capability: cap.capability }));
    t.is(await outcome(tg, session), 'InvalidToken');
    t.is(await outcome(tg, web), 'InvalidToken');
    t.is(await outcome(tg, app), 'InvalidAccessKeyId');
    t.is((await ok(tg, ROOT, 'GET', `/roles?tenant=${TENANT}`)).roles.length, 0);
    t.is((await ok(tg, ROOT, 'GET', `/oidc-providers?tenant=${TENANT}`)).providers.length, 0);
    t.is((await admin(tg, ROOT, 'GET', `/schema?tenant=${TENANT}`)).status, 404);
    t.deepEqual((await ok(tg, ROOT, 'GET', `/tuples?tenant=${TENANT}&resourceType=group`)).tuples, []);
    // A role of the same name made now is a new role: the old sessions stay dead.
    await ok(tg, ROOT, 'POST', '/roles', { tenant: TENANT, name: 'reader', scopes: [{ families: ['object:read'], bucket: BUCKET }] });
    t.is(await outcome(tg, session), 'InvalidToken');
    t.true((await denials(tg)).filter((d) => d.layer === 'capability').length > refusedBefore, 'the refused capability wrote a denial line');
  } finally {
    await idp.close();
    await tg.close();
  }
});

for (const end of ['revoke', 'delete'] as const) {
  test(`a ${end}d admin credential takes everything it made with it`, async (t) => {
    const tg = await startTestGateway(INSECURE);
    const idp = await startIssuer();
    try {
      await seed(tg);
      const maker = await credential(tg, adminOf(''));
      const made = await credential(tg, [{ families: ['object:read'], bucket: BUCKET, prefix: 'pub/' }], maker);
      const role = await ok(tg, maker, 'POST', '/roles', { name: 'r', scopes: [{ families: ['object:read'], bucket: BUCKET, prefix: 'pub/' }] });
      await ok(tg, maker, 'POST', '/oidc-providers', { issuer: idp.issuer, audience: 'my-app', jwks: idp.jwksUrl, algorithms: ['RS256'], roles: ['r'] });
      const cap = await ok(tg, maker, 'POST', '/capabilities', { bucket: BUCKET, prefix: 'pub/', actions: ['read'] });
      const link = await ok(tg, maker, 'POST', '/capabilities', { bucket: BUCKET, prefix: 'pub/x', exact: true, actions: ['read'] });
      const other = await credential(tg, [{ families: ['object:read'], bucket: BUCKET }]);
      const session = await assumeRole(tg, other, role.arn);
      const web = await assumeWeb(tg, role.arn, await idp.token({ sub: 'amy' }));
      for (const caller of [{ creds: made }, { creds: session }, { creds: web }, { capability: cap.capability }, { capability: link.capability }]) {
        t.true(await canRead(tg, caller));
      }
      await ok(tg, ROOT, end === 'revoke' ? 'POST' : 'DELETE', `/credentials/${maker.id}${end === 'revoke' ? '/revoke' : ''}`);
      t.is(await outcome(tg, made), 'InvalidAccessKeyId');
      t.is(await outcome(tg, session), 'InvalidToken');
      t.is(await outcome(tg, web), 'InvalidToken');
      t.false(await canRead(tg, { capability: cap.capability }));
      t.false(await canRead(tg, { capability: link.capability }));
      await t.throwsAsync(assumeRole(tg, other, role.arn), { name: 'AccessDenied' });
      await t.throwsAsync(assumeWeb(tg, role.arn, await idp.token({ sub: 'amy' })), { name: 'AccessDenied' });
      // The caller that was not made by it keeps its own authority.
      t.is(await outcome(tg, other), 'ok');
      const lines = (await denials(tg));
      t.true(lines.some((d) => d.accessKeyId === made.accessKeyId && d.layer === 'credential' && /maker_gone/.test(d.reason)));
      t.true(lines.some((d) => d.accessKeyId === `capability:${cap.id}` && d.layer === 'capability' && /minter/.test(d.reason)));
      await tg.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'pub/x', Body: 'still here' }));
    } finally {
      await idp.close();
      await tg.close();
    }
  });
}

test('tuples an application wrote, itself or through its sessions, go when it is revoked; the tenant\'s own stay', async (t) => {
  const tg = await startTestGateway();
  try {
    await seed(tg);
    await ok(tg, ROOT, 'PUT', `/buckets/${BUCKET}/governance`, { governed: true });
    const app = await credential(tg, [{ families: ['object:read', 'tuples:write'], bucket: BUCKET }]);
    const role = await ok(tg, ROOT, 'POST', '/roles', { tenant: TENANT, name: 'writer', scopes: [{ families: ['tuples:write'], bucket: BUCKET }] });
    const session = await assumeRole(tg, app, role.arn);
    await ok(tg, ROOT, 'POST', '/tuples', { tenant: TENANT, updates: [{ op: 'touch', tuple: `folder:${BUCKET}/pub/#reader@app:${app.id}` }], reason: 'the tenant\'s own' });
    const mine = [`object:${BUCKET}/pub/x#reader@user:amy`, `folder:${BUCKET}/pub/#reader@user:bob`];
    await ok(tg, app, 'POST', '/tuples', { updates: [{ op: 'touch', tuple: mine[0] }], reason: 'by the app' });
    await ok(tg, session, 'POST', '/tuples', { updates: [{ op: 'touch', tuple: mine[1] }], reason: 'by its session' });
    const stored = async () => [
      ...(await ok(tg, ROOT, 'GET', `/tuples?tenant=${TENANT}&resourceType=object`)).tuples,
      ...(await ok(tg, ROOT, 'GET', `/tuples?tenant=${TENANT}&resourceType=folder`)).tuples,
    ];
    t.is((await stored()).length, 3);
    await ok(tg, ROOT, 'POST', `/credentials/${app.id}/revoke`);
    t.deepEqual(await stored(), [`folder:${BUCKET}/pub/#reader@app:${app.id}`]);
    const audit = await ok(tg, ROOT, 'GET', `/tuples/audit?tenant=${TENANT}`);
    t.true(audit.records.some((r: { kind: string; reason: string }) => r.kind === 'tuple.delete' && /revoked/.test(r.reason)));
  } finally {
    await tg.close();
  }
});

/**
 * The leaked-key runbook end to end: `anvil tenant lockdown` (run by the operator in local mode beside the running
 * gateway) refuses every credential, session, capability and share link of the tenant from the next request, cannot
 * be undone by `tenant enable`, and a lift restores them; `anvil credential revoke --tenant T --all` revokes every
 * credential of the tenant (a tenant admin's own last). Other tenants and root are untouched; all of it is audited.
 */
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import test from 'ava';
import { FAMILIES } from '../policy/index.ts';
import { denials, ok, type Creds } from './helpers/admin.ts';
import { assumeRole, BUCKET, credential, seed, TENANT } from './helpers/authority.ts';
import { anvil, credentialEnv } from './helpers/cli.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';

/** Everything of tenant acme a leaked key could be used through, and a caller of another tenant. */
async function exposures(tg: TestGateway) {
  await seed(tg);
  await seed(tg, 'other', 'elsewhere');
  const app = await credential(tg, [{ families: ['object:read'], bucket: BUCKET, prefix: 'pub/' }]);
  const lister = await credential(tg, [{ families: ['object:read', 'object:list'], bucket: BUCKET }]);
  const role = await ok(tg, ROOT, 'POST', '/roles', { tenant: TENANT, name: 'reader', scopes: [{ families: ['object:read'], bucket: BUCKET, prefix: 'pub/' }] });
  const session = await assumeRole(tg, app, role.arn);
  const share = await ok(tg, ROOT, 'POST', '/capabilities', { tenant: TENANT, bucket: BUCKET, prefix: 'pub/x', exact: true, actions: ['read'] });
  const presigned = await getSignedUrl(s3(tg, lister), new GetObjectCommand({ Bucket: BUCKET, Key: 'secret/x' }), { expiresIn: 3600 });
  const other = await credential(tg, [{ families: ['object:read'], bucket: 'elsewhere', prefix: 'pub/' }], ROOT, 'other');
  return { app, lister, session, share, presigned, other };
}

function s3(tg: TestGateway, creds: Creds): S3Client {
  return new S3Client({ endpoint: tg.gw.url, region: tg.config.region, credentials: creds, forcePathStyle: true });
}

/** The HTTP status of a GetObject with these credentials. */
async function get(tg: TestGateway, creds: Creds, bucket: string, key: string): Promise<number> {
  try {
    const out = await s3(tg, creds).send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    await out.Body?.transformToString();
    return 200;
  } catch (error) {
    return (error as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode;
  }
}

/** Statuses of one request through each way in. */
async function statuses(tg: TestGateway, e: Awaited<ReturnType<typeof exposures>>) {
  return {
    app: await get(tg, e.app, BUCKET, 'pub/x'),
    lister: await get(tg, e.lister, BUCKET, 'secret/x'),
    session: await get(tg, e.session, BUCKET, 'pub/x'),
    share: (await fetch(`${tg.gw.url}/${BUCKET}/pub/x?X-Anvil-Capability=${e.share.capability}`)).status,
    presigned: (await fetch(e.presigned)).status,
    other: await get(tg, e.other, 'elsewhere', 'pub/x'),
    root: await get(tg, ROOT, BUCKET, 'secret/x'),
  };
}

test('tenant lockdown refuses every way into the tenant from the next request, only a lift undoes it, both audited', async (t) => {
  const tg = await startTestGateway();
  try {
    const e = await exposures(tg);
    const open = { app: 200, lister: 200, session: 200, share: 200, presigned: 200, other: 200, root: 200 };
    t.deepEqual(await statuses(tg, e), open);

    const acmeAdmin = await credential(tg, [{ families: [...FAMILIES], bucket: '*' }]);
    const byTenantAdmin = await anvil(['--endpoint', tg.gw.url, 'tenant', 'lockdown', TENANT, '--reason', 'mine'], credentialEnv(acmeAdmin));
    t.is(byTenantAdmin.code, 1, 'root only');
    t.regex(byTenantAdmin.stderr, /only root may manage tenants/);

    // The operator on the gateway's machine, in local mode: another process on the same data directory.
    const local = (...args: string[]) => anvil(['--data-dir', tg.dataDir, ...args]);
    t.is((await local('tenant', 'lockdown', TENANT)).code, 2, '--reason is required');
    const locked = await local('tenant', 'lockdown', TENANT, '--reason', 'AKIA… leaked in a public repository');
    t.is(locked.code, 0, locked.stderr);
    t.regex(locked.stdout, /Tenant acme locked down: 3 credential\(s\), every session, 1 capability\(ies\) and share link refused/);
    // A refused session token is S3's InvalidToken (400), as for any session that no longer verifies.
    t.deepEqual(await statuses(tg, e), { ...open, app: 403, lister: 403, session: 400, share: 403, presigned: 403 });
    // The runbook's codes: a credential (signed header or presigned URL) answers AccessDenied, not InvalidAccessKeyId.
    t.is(await s3(tg, e.app).send(new GetObjectCommand({ Bucket: BUCKET, Key: 'pub/x' })).catch((err: Error) => err.name), 'AccessDenied');
    t.regex(await (await fetch(e.presigned)).text(), /<Code>AccessDenied<\/Code>/);
    t.is(await s3(tg, e.session).send(new GetObjectCommand({ Bucket: BUCKET, Key: 'pub/x' })).catch((err: Error) => err.name), 'InvalidToken');
    const lines = await denials(tg);
    t.true(lines.some((d) => d.accessKeyId === e.app.accessKeyId && d.layer === 'credential' && d.reason === 'credential tenant_disabled'));
    t.true(lines.some((d) => d.accessKeyId === e.session.accessKeyId && d.layer === 'credential' && /session tenant disabled/.test(d.reason)));
    t.true(lines.some((d) => d.layer === 'capability' && d.reason === 'tenant acme is disabled or gone' && d.key === 'pub/x'), 'the share link is a denial line too');

    const enable = await local('tenant', 'enable', TENANT);
    t.is(enable.code, 1);
    t.regex(enable.stderr, /tenant acme is locked down: lift the lockdown instead/);
    t.regex((await local('tenant', 'list')).stdout, /acme\s+locked down/);

    const lifted = await local('tenant', 'lockdown', TENANT, '--lift', '--reason', 'leaked key revoked');
    t.is(lifted.code, 0, lifted.stderr);
    t.deepEqual(await statuses(tg, e), open, 'everything that was not revoked meanwhile works again');
    t.is((await local('tenant', 'lockdown', TENANT, '--lift', '--reason', 'again')).code, 1, 'nothing to lift');

    const audit = (await ok(tg, ROOT, 'GET', '/audit?tenant=acme')).audit as Array<{ action: string; actor: string; details?: Record<string, any> }>;
    const lockdown = audit.find((a) => a.action === 'tenant.lockdown')!;
    t.is(lockdown.actor, 'operator');
    t.is(lockdown.details!.reason, 'AKIA… leaked in a public repository');
    t.deepEqual(lockdown.details!.cutOff, { credentials: 3, roles: 1, providers: 0, capabilities: 1 });
    t.like(audit.find((a) => a.action === 'tenant.lockdown.lift'), { actor: 'operator', details: { reason: 'leaked key revoked' } });
  } finally {
    await tg.close();
  }
});

/** A console request with this cookie (the console's own origin sends no Origin header for these). */
async function consoleStatus(tg: TestGateway, cookie: string): Promise<number> {
  return (await fetch(`${tg.gw.url}/_anvil/console/api/v1/whoami`, { headers: { cookie } })).status;
}

test('tenant disable suspends every way into the tenant; enable restores what was not ended meanwhile', async (t) => {
  const tg = await startTestGateway();
  try {
    const e = await exposures(tg);
    const open = { app: 200, lister: 200, session: 200, share: 200, presigned: 200, other: 200, root: 200 };
    const signIn = await fetch(`${tg.gw.url}/_anvil/console/api/session`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ accessKeyId: e.lister.accessKeyId, secretKey: e.lister.secretAccessKey }),
    });
    t.is(signIn.status, 200);
    const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
    t.is(await consoleStatus(tg, cookie), 200);

    await ok(tg, ROOT, 'POST', `/tenants/${TENANT}/disable`);
    t.deepEqual(await statuses(tg, e), { ...open, app: 403, lister: 403, session: 400, share: 403, presigned: 403 });
    t.is(await consoleStatus(tg, cookie), 401);
    // Meanwhile one credential is revoked: that one stays ended, with what it started.
    await ok(tg, ROOT, 'POST', `/credentials/${e.app.accessKeyId}/revoke`);

    await ok(tg, ROOT, 'POST', `/tenants/${TENANT}/enable`);
    t.deepEqual(await statuses(tg, e), { ...open, app: 403, session: 400 }, 'a suspension: the rest works again');
    t.is(await consoleStatus(tg, cookie), 200, 'a console session too (a browser that met the 401 has dropped its cookie)');
  } finally {
    await tg.close();
  }
});

test('credential revoke --tenant T --all revokes every credential of T: sessions and presigned URLs end with them', async (t) => {
  const tg = await startTestGateway();
  try {
    const e = await exposures(tg);
    const usage = await anvil(['--endpoint', tg.gw.url, 'credential', 'revoke', '--all'], credentialEnv(ROOT));
    t.is(usage.code, 2);
    t.regex(usage.stderr, /credential revoke --all needs --tenant NAME/);
    t.is((await anvil(['--endpoint', tg.gw.url, 'credential', 'revoke', e.app.accessKeyId, '--tenant', TENANT, '--all'], credentialEnv(ROOT))).code, 2);

    const run = await anvil(['--endpoint', tg.gw.url, 'credential', 'revoke', '--tenant', TENANT, '--all', '--json'], credentialEnv(ROOT));
    t.is(run.code, 0, run.stderr);
    const answer = JSON.parse(run.stdout) as { revoked: string[]; refused: unknown[] };
    t.deepEqual(answer.revoked.sort(), [e.app.accessKeyId, e.lister.accessKeyId].sort());
    t.deepEqual(answer.refused, []);
    // The root-minted share link is no credential: `anvil capability reset --tenant acme` is the runbook's next step.
    t.deepEqual(await statuses(tg, e), { app: 403, lister: 403, session: 400, share: 200, presigned: 403, other: 200, root: 200 });
    const audit = (await ok(tg, ROOT, 'GET', '/audit?tenant=acme&action=credential.revoke')).audit as Array<{ accessKeyId: string }>;
    t.deepEqual(audit.map((a) => a.accessKeyId).sort(), answer.revoked.sort());

    // A tenant admin may do it in its own tenant: what it holds, its own credential last, and nothing of another.
    const admin = await credential(tg, [{ families: [...FAMILIES], bucket: '*' }]);
    // The runbook's next step: the tenant's own admin finds the uses of the revoked keys in its denial log.
    const seen = (await ok(tg, admin, 'GET', `/denials?tenant=${TENANT}&layer=credential`)).denials as Array<{ accessKeyId: string; tenant: string; reason: string }>;
    const appUse = seen.find((d) => d.accessKeyId === e.app.accessKeyId);
    t.is(appUse?.tenant, TENANT);
    t.is(appUse?.reason, 'credential revoked');
    const narrow = await credential(tg, [{ families: ['object:read'], bucket: BUCKET, prefix: 'pub/' }]);
    const wider = await credential(tg, [{ families: ['object:read', 'object:write'], bucket: BUCKET }]);
    const prefixAdmin = await credential(tg, [{ families: ['admin', 'object:read'], bucket: BUCKET, prefix: 'pub/' }]);
    const partial = await anvil(['--endpoint', tg.gw.url, 'credential', 'revoke', '--tenant', TENANT, '--all'], credentialEnv(prefixAdmin));
    t.is(partial.code, 1, 'a narrower admin cannot know it revoked everything');
    t.regex(partial.stdout, /Tenant acme: 2 credential\(s\) revoked\.\n/);
    // What lies beyond a narrower admin's authority is neither revoked nor named to it (nor any other key of the tenant).
    t.regex(partial.stdout, /credentials beyond your authority, if any, were neither revoked nor shown/);
    t.false(partial.stdout.includes(wider.accessKeyId) || partial.stdout.includes(admin.accessKeyId), partial.stdout);
    t.is(await get(tg, narrow, BUCKET, 'pub/x'), 403);
    t.is(await get(tg, wider, BUCKET, 'pub/x'), 200);
    const other = await anvil(['--endpoint', tg.gw.url, 'credential', 'revoke', '--tenant', 'other', '--all'], credentialEnv(admin));
    t.is(other.code, 1);
    t.regex(other.stderr, /tenant other is not tenant acme/);
    const self = await anvil(['--endpoint', tg.gw.url, 'credential', 'revoke', '--tenant', TENANT, '--all', '--json'], credentialEnv(admin));
    t.is(self.code, 0, self.stderr);
    t.is((JSON.parse(self.stdout) as { revoked: string[] }).revoked.at(-1), admin.accessKeyId, 'its own credential last');
    t.is(await get(tg, admin, BUCKET, 'pub/x'), 403);
    t.is(await get(tg, e.other, 'elsewhere', 'pub/x'), 200);
  } finally {
    await tg.close();
  }
});

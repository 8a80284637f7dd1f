/**
 * Temporary credentials end to end: @aws-sdk/client-sts against the gateway's STS endpoint, then @aws-sdk/client-s3
 * with the session credentials. Scopes narrow along the chain; parent revocation, rotation and a disabled tenant
 * end sessions on their next request; web identity tokens are checked for issuer, audience, expiry, algorithm and
 * signature.
 */
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, AssumeRoleWithWebIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import test from 'ava';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey } from 'jose';
import { intersectScopes, sessionPolicyGrants } from '../policy/index.ts';
import { tokenStoresOf } from '../gateway/sts/stores.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { send } from './helpers/raw.ts';
import { admin, denials, ok, type Creds } from './helpers/admin.ts';



const sts = (tg: TestGateway, creds?: Creds) =>
  new STSClient({ endpoint: tg.gw.url, region: tg.config.region, credentials: creds ?? { accessKeyId: 'x', secretAccessKey: 'y' } });

/** Tenant acme with bucket acme-data holding reports/ and private/ objects, an app credential and a role. */
async function setup(tg: TestGateway): Promise<{ app: Creds; bucket: string; roleArn: string }> {
  await ok(tg, ROOT, 'POST', '/tenants', { name: 'acme' });
  const bucket = 'acme-data';
  await tg.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await ok(tg, ROOT, 'PUT', `/buckets/${bucket}/owner`, { tenant: 'acme', reassign: true });
  for (const key of ['reports/q1.csv', 'reports/2026/q2.csv', 'private/secret.txt']) {
    await tg.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `body of ${key}` }));
  }
  const c = await ok(tg, ROOT, 'POST', '/credentials', {
    tenant: 'acme', name: 'app', scopes: [{ families: ['object:read', 'object:write', 'object:list'], bucket }],
  });
  const role = await ok(tg, ROOT, 'POST', '/roles', {
    tenant: 'acme', name: 'reports-reader', maxDurationSeconds: 3600,
    scopes: [{ families: ['object:read', 'object:list', 'admin'], bucket, prefix: 'reports/' }],
  });
  return { app: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretKey }, bucket, roleArn: role.arn };
}

async function withGateway(fn: (tg: TestGateway) => Promise<void>): Promise<void> {
  const tg = await startTestGateway();
  try {
    await fn(tg);
  } finally {
    await tg.close();
  }
}

async function assume(tg: TestGateway, creds: Creds, input: { RoleArn: string; DurationSeconds?: number; Policy?: string }): Promise<Creds> {
  const out = await sts(tg, creds).send(new AssumeRoleCommand({ RoleSessionName: 'test-session', ...input }));
  const c = out.Credentials!;
  return { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! };
}

const read = async (s3: S3Client, Bucket: string, Key: string) => (await s3.send(new GetObjectCommand({ Bucket, Key }))).Body!.transformToString();

test('AssumeRole with an application credential: the session works inside the role, AccessDenied outside', async (t) => {
  await withGateway(async (tg) => {
    const { app, bucket, roleArn } = await setup(tg);
    const out = await sts(tg, app).send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'nightly', DurationSeconds: 900 }));
    const c = out.Credentials!;
    t.regex(c.AccessKeyId!, /^ASIA[A-Z2-7]{16}$/);
    t.is(c.SecretAccessKey!.length, 40);
    t.true(c.Expiration!.getTime() > Date.now() + 850_000 && c.Expiration!.getTime() <= Date.now() + 901_000);
    t.is(out.AssumedRoleUser!.Arn, 'arn:aws:sts::acme:assumed-role/reports-reader/nightly');
    // The token never carries the secret.
    const payload = JSON.parse(Buffer.from(c.SessionToken!.split('.')[1]!, 'base64url').toString('utf8'));
    t.false(JSON.stringify(payload).includes(c.SecretAccessKey!));
    t.is(payload.sub, `app:${app.accessKeyId}`);
    // admin is never carried into a session.
    t.false(JSON.stringify(payload.anvil.scopes).includes('admin'));

    const s3 = tg.client({ accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! });
    t.is(await read(s3, bucket, 'reports/q1.csv'), 'body of reports/q1.csv');
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'reports/' }));
    t.deepEqual(listed.Contents!.map((o) => o.Key), ['reports/2026/q2.csv', 'reports/q1.csv']);
    await t.throwsAsync(read(s3, bucket, 'private/secret.txt'), { name: 'AccessDenied' });
    // The parent may write, but the role does not: the session may not.
    await t.throwsAsync(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'reports/new.csv', Body: 'x' })), { name: 'AccessDenied' });
    const line = (await denials(tg)).find((d) => d.accessKeyId === c.AccessKeyId && d.key === 'private/secret.txt');
    t.is(line?.layer, 'scope');
    t.is(line?.subject, `app:${app.accessKeyId}`);
    t.is(line?.tenant, 'acme');

    // A wrong secret or a token of another session is refused.
    const other = await assume(tg, app, { RoleArn: roleArn });
    const swapped = tg.client({ accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: other.sessionToken });
    await t.throwsAsync(read(swapped, bucket, 'reports/q1.csv'), { name: 'InvalidToken' });
    const badSecret = tg.client({ accessKeyId: c.AccessKeyId!, secretAccessKey: other.secretAccessKey, sessionToken: c.SessionToken! });
    await t.throwsAsync(read(badSecret, bucket, 'reports/q1.csv'), { name: 'SignatureDoesNotMatch' });
    const noToken = tg.client({ accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey! });
    await t.throwsAsync(read(noToken, bucket, 'reports/q1.csv'), { name: 'InvalidToken' });
  });
});

test('a session policy narrows further; chained AssumeRole only narrows; the role limit bounds DurationSeconds', async (t) => {
  await withGateway(async (tg) => {
    const { app, bucket, roleArn } = await setup(tg);
    const policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: ['s3:GetObject', 's3:GetObjectTagging', 's3:GetObjectAttributes'], Resource: [`arn:aws:s3:::${bucket}/reports/2026/*`] }],
    });
    const narrow = await assume(tg, app, { RoleArn: roleArn, Policy: policy });
    const s3 = tg.client(narrow);
    t.is(await read(s3, bucket, 'reports/2026/q2.csv'), 'body of reports/2026/q2.csv');
    await t.throwsAsync(read(s3, bucket, 'reports/q1.csv'), { name: 'AccessDenied' });
    await t.throwsAsync(s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'reports/' })), { name: 'AccessDenied' });

    // A session policy asking for more than the role gets only the role.
    const broad = await assume(tg, app, { RoleArn: roleArn, Policy: JSON.stringify({ Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }] }) });
    await t.throwsAsync(read(tg.client(broad), bucket, 'private/secret.txt'), { name: 'AccessDenied' });

    // Chaining: the narrowed session assumes the role again and stays narrow.
    const chained = await assume(tg, narrow, { RoleArn: roleArn });
    t.is(await read(tg.client(chained), bucket, 'reports/2026/q2.csv'), 'body of reports/2026/q2.csv');
    await t.throwsAsync(read(tg.client(chained), bucket, 'reports/q1.csv'), { name: 'AccessDenied' });

    await t.throwsAsync(assume(tg, app, { RoleArn: roleArn, DurationSeconds: 3601 }), { name: 'ValidationError', message: /MaxSessionDuration/ });
    await t.throwsAsync(assume(tg, app, { RoleArn: roleArn, DurationSeconds: 899 }), { name: 'ValidationError' });
    await t.throwsAsync(assume(tg, app, { RoleArn: roleArn, Policy: '{"Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}' }), { name: 'MalformedPolicyDocumentException' });
    await t.throwsAsync(assume(tg, app, { RoleArn: 'arn:aws:iam::acme:role/nope' }), { name: 'AccessDenied' });
    await ok(tg, ROOT, 'POST', '/tenants', { name: 'other' });
    const otherRole = await ok(tg, ROOT, 'POST', '/roles', { tenant: 'other', name: 'r', scopes: [{ families: ['object:read'], bucket: '*' }] });
    await t.throwsAsync(assume(tg, app, { RoleArn: otherRole.arn }), { name: 'AccessDenied' });
    await t.throwsAsync(assume(tg, { ...app, secretAccessKey: 'wrong-secret-wrong-secret-wrong-secret00' }, { RoleArn: roleArn }), { name: 'SignatureDoesNotMatch' });
    await t.throwsAsync(assume(tg, { accessKeyId: 'AKIAUNKNOWNUNKNOWN00', secretAccessKey: 'x' }, { RoleArn: roleArn }), { name: 'InvalidClientTokenId' });
  });
});

test('what an expiring credential starts or mints never claims to outlive it: session Expiration and capability expiresAt', async (t) => {
  await withGateway(async (tg) => {
    const { bucket, roleArn } = await setup(tg);
    const end = new Date(Date.now() + 20 * 60_000);
    const c = await ok(tg, ROOT, 'POST', '/credentials', {
      tenant: 'acme', name: 'short', expiresAt: end.toISOString(), scopes: [{ families: ['object:read', 'object:list', 'admin'], bucket }],
    });
    const short = { accessKeyId: c.accessKeyId, secretAccessKey: c.secretKey };
    // The role allows an hour; the credential has 20 minutes left.
    const out = await sts(tg, short).send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'short', DurationSeconds: 3600 }));
    t.true(out.Credentials!.Expiration!.getTime() <= end.getTime(), `${out.Credentials!.Expiration!.toISOString()} > ${end.toISOString()}`);
    t.true(out.Credentials!.Expiration!.getTime() > Date.now() + 15 * 60_000);
    const session = { accessKeyId: out.Credentials!.AccessKeyId!, secretAccessKey: out.Credentials!.SecretAccessKey!, sessionToken: out.Credentials!.SessionToken! };
    t.is(await read(tg.client(session), bucket, 'reports/q1.csv'), 'body of reports/q1.csv');
    // A capability asked for a week, or for no expiry at all, ends with the credential too.
    for (const asked of [{ expiresAt: new Date(Date.now() + 7 * 86_400_000).toISOString() }, {}]) {
      const cap = await ok(tg, short, 'POST', '/capabilities', { bucket, prefix: 'reports/', actions: ['read'], ...asked });
      t.truthy(cap.expiresAt, JSON.stringify(asked));
      t.true(Date.parse(cap.expiresAt) <= end.getTime(), `${cap.expiresAt} > ${end.toISOString()}`);
    }
    // A shorter one is kept as asked.
    const soon = new Date(Date.now() + 5 * 60_000);
    t.is(Date.parse((await ok(tg, short, 'POST', '/capabilities', { bucket, prefix: 'reports/', actions: ['read'], expiresAt: soon.toISOString() })).expiresAt), soon.getTime());
  });
});

test('session credentials work in presigned URLs (X-Amz-Security-Token in the query) and with the aws CLI', async (t) => {
  await withGateway(async (tg) => {
    const { app, bucket, roleArn } = await setup(tg);
    const session = await assume(tg, app, { RoleArn: roleArn });
    const s3 = tg.client(session);
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: 'reports/q1.csv' }), { expiresIn: 300 });
    t.true(url.includes('X-Amz-Security-Token='));
    const got = await fetch(url);
    t.is(got.status, 200);
    t.is(await got.text(), 'body of reports/q1.csv');
    const outside = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: 'private/secret.txt' }), { expiresIn: 300 });
    t.is((await fetch(outside)).status, 403);
    // The token swapped for another session's in the query no longer matches the signature or the key.
    const other = await assume(tg, app, { RoleArn: roleArn });
    const swapped = new URL(url);
    swapped.searchParams.set('X-Amz-Security-Token', other.sessionToken!);
    t.is((await fetch(swapped)).status, 400);
    await ok(tg, ROOT, 'POST', `/credentials/${app.accessKeyId}/revoke`);
    t.is((await fetch(url)).status, 400);

    // The aws CLI, unchanged, when it is installed.
    const app2 = await ok(tg, ROOT, 'POST', '/credentials', { tenant: 'acme', name: 'cli', scopes: [{ families: ['object:read', 'object:list'], bucket }] });
    const env = {
      PATH: process.env.PATH ?? '', HOME: tg.dataDir, AWS_ACCESS_KEY_ID: app2.accessKeyId, AWS_SECRET_ACCESS_KEY: app2.secretKey,
      AWS_DEFAULT_REGION: tg.config.region, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    };
    const aws = (args: string[], extra: Record<string, string> = {}) => new Promise<{ code: number | string; stdout: string; stderr: string }>((resolve) =>
      execFile('aws', ['--endpoint-url', tg.gw.url, ...args], { env: { ...env, ...extra } }, (error, stdout, stderr) =>
        resolve({ code: error ? ((error as NodeJS.ErrnoException).code ?? 1) : 0, stdout, stderr })));
    const assumed = await aws(['sts', 'assume-role', '--role-arn', roleArn, '--role-session-name', 'cli', '--duration-seconds', '900']);
    if (assumed.code === 'ENOENT') {
      t.log('aws CLI not installed; skipped that part');
      return;
    }
    t.is(assumed.code, 0, assumed.stderr);
    const c = JSON.parse(assumed.stdout).Credentials;
    const listed = await aws(['s3', 'ls', `s3://${bucket}/reports/`], { AWS_ACCESS_KEY_ID: c.AccessKeyId, AWS_SECRET_ACCESS_KEY: c.SecretAccessKey, AWS_SESSION_TOKEN: c.SessionToken });
    t.is(listed.code, 0, listed.stderr);
    t.regex(listed.stdout, /q1\.csv/);
    const tooLong = await aws(['sts', 'assume-role', '--role-arn', roleArn, '--role-session-name', 'cli', '--duration-seconds', '7200']);
    t.regex(tooLong.stderr, /ValidationError.*MaxSessionDuration/);
  });
});

test('an expired session is refused with ExpiredToken', async (t) => {
  await withGateway(async (tg) => {
    const { app, bucket, roleArn } = await setup(tg);
    const session = await assume(tg, app, { RoleArn: roleArn, DurationSeconds: 900 });
    t.is(await read(tg.client(session), bucket, 'reports/q1.csv'), 'body of reports/q1.csv');
    // Verify as the gateway would 16 minutes from now.
    const { tokens } = tokenStoresOf(tg.gw.policy);
    const later = await tokens.resolve(session.accessKeyId, session.sessionToken!, new Date(Date.now() + 16 * 60_000));
    t.is(later.ok ? 'ok' : later.reason, 'expired');
    // A session whose token says it expired a moment ago, signed by the gateway itself, is refused on the wire.
    const app2 = await tg.gw.policy.resolveAccessKey(app.accessKeyId);
    if (!app2.ok) throw new Error('app credential');
    const role = (await tokenStoresOf(tg.gw.policy).sessions.role('acme', 'reports-reader'))!;
    const expired = await tokens.issue({
      tenant: 'acme', tenantId: (await tg.gw.policy.tenantId('acme'))!, roleIds: [role.id], subject: `app:${app.accessKeyId}`, scopes: [{ families: ['object:read'], bucket }], role: { tenant: 'acme', name: 'reports-reader' },
      parent: { kind: 'credential', id: app.accessKeyId, secret: app2.secrets[0]! }, sessionName: 'old', expiresAt: new Date(Date.now() - 1000),
    });
    const s3 = tg.client({ accessKeyId: expired.accessKeyId, secretAccessKey: expired.secretAccessKey, sessionToken: expired.sessionToken });
    await t.throwsAsync(read(s3, bucket, 'reports/q1.csv'), { name: 'ExpiredToken' });
    t.true((await denials(tg)).some((d) => d.accessKeyId === expired.accessKeyId && d.layer === 'credential' && /expired/.test(d.reason)));
  });
});

test('revoking or rotating the parent, or disabling the tenant, ends its sessions on the next request', async (t) => {
  await withGateway(async (tg) => {
    const { app, bucket, roleArn } = await setup(tg);
    const check = (c: Creds) => read(tg.client(c), bucket, 'reports/q1.csv');

    const s1 = await assume(tg, app, { RoleArn: roleArn });
    t.is(await check(s1), 'body of reports/q1.csv');
    const rotated = await ok(tg, ROOT, 'POST', `/credentials/${app.accessKeyId}/rotate`, { graceSeconds: 0 });
    await t.throwsAsync(check(s1), { name: 'InvalidToken' });
    t.true((await denials(tg)).some((d) => d.accessKeyId === s1.accessKeyId && /rotated/.test(d.reason)));

    const app2 = { accessKeyId: app.accessKeyId, secretAccessKey: rotated.secretKey };
    const s2 = await assume(tg, app2, { RoleArn: roleArn });
    t.is(await check(s2), 'body of reports/q1.csv');
    await ok(tg, ROOT, 'POST', '/tenants/acme/disable');
    await t.throwsAsync(check(s2), { name: 'InvalidToken' });
    t.true((await denials(tg)).some((d) => d.accessKeyId === s2.accessKeyId && /tenant disabled/.test(d.reason)));
    await ok(tg, ROOT, 'POST', '/tenants/acme/enable');
    t.is(await check(s2), 'body of reports/q1.csv');

    await ok(tg, ROOT, 'POST', `/credentials/${app.accessKeyId}/revoke`);
    await t.throwsAsync(check(s2), { name: 'InvalidToken' });
    t.true((await denials(tg)).some((d) => d.accessKeyId === s2.accessKeyId && /parent credential revoked/.test(d.reason)));
  });
});

test('a graceful rotation ends the sessions its old secret opened, before or during the grace, when the grace ends', async (t) => {
  await withGateway(async (tg) => {
    const { app, bucket, roleArn } = await setup(tg);
    const check = (c: Creds) => read(tg.client(c), bucket, 'reports/q1.csv');
    const early = await assume(tg, app, { RoleArn: roleArn });
    const rotated = await ok(tg, ROOT, 'POST', `/credentials/${app.accessKeyId}/rotate`, { graceSeconds: 4 });
    // Still the old secret, inside the grace: a session asked for an hour, and one chained from it.
    const late = await assume(tg, app, { RoleArn: roleArn, DurationSeconds: 3600 });
    const chained = await assume(tg, late, { RoleArn: roleArn });
    const fresh = await assume(tg, { accessKeyId: app.accessKeyId, secretAccessKey: rotated.secretKey }, { RoleArn: roleArn });
    for (const s of [early, late, chained, fresh]) t.is(await check(s), 'body of reports/q1.csv', 'the old secret still verifies');

    // Past the grace the old secret signs nothing, and nothing it opened stands either.
    const old = tg.client(app);
    const refused = async () => (await old.send(new GetObjectCommand({ Bucket: bucket, Key: 'reports/q1.csv' })).then(() => 'ok', (e: Error) => e.name)) === 'SignatureDoesNotMatch';
    while (!(await refused())) await new Promise((r) => setTimeout(r, 100));
    for (const s of [early, late, chained]) await t.throwsAsync(check(s), { name: 'InvalidToken' });
    t.is(await check(fresh), 'body of reports/q1.csv');
    t.true((await denials(tg)).some((d) => d.accessKeyId === late.accessKeyId && /rotated/.test(d.reason)));
  });
});

test('session-token keys are published as JWKS; rotating with no grace ends the sessions the old key signed', async (t) => {
  await withGateway(async (tg) => {
    const { app, bucket, roleArn } = await setup(tg);
    const session = await assume(tg, app, { RoleArn: roleArn });
    const res = await send({ url: tg.gw.url, method: 'GET', path: '/_anvil/keys' });
    t.is(res.status, 200);
    const jwks = JSON.parse(res.body);
    t.is(jwks.keys.length, 1);
    t.is(jwks.keys[0].alg, 'ES256');
    t.is(jwks.keys[0].d, undefined);
    const header = JSON.parse(Buffer.from(session.sessionToken!.split('.')[0]!, 'base64url').toString('utf8'));
    t.is(header.kid, jwks.keys[0].kid);

    await ok(tg, ROOT, 'POST', '/sts/keys/rotate', { graceSeconds: 3600 });
    t.is(JSON.parse((await send({ url: tg.gw.url, method: 'GET', path: '/_anvil/keys' })).body).keys.length, 2);
    t.is(await read(tg.client(session), bucket, 'reports/q1.csv'), 'body of reports/q1.csv');
    await ok(tg, ROOT, 'POST', '/sts/keys/rotate', { graceSeconds: 0 });
    await t.throwsAsync(read(tg.client(session), bucket, 'reports/q1.csv'), { name: 'InvalidToken' });
    const fresh = await assume(tg, app, { RoleArn: roleArn });
    t.is(await read(tg.client(fresh), bucket, 'reports/q1.csv'), 'body of reports/q1.csv');
  });
});

// ── web identity ─────────────────────────────────────────────────────────────────────────────────────────────────

const ISSUER = 'https://idp.example.test';
const AUDIENCE = 'anvil-app';

async function webIdentitySetup(tg: TestGateway): Promise<{ roleArn: string; bucket: string; key: CryptoKey; kid: string }> {
  const { bucket } = await setup(tg);
  const role = await ok(tg, ROOT, 'POST', '/roles', {
    tenant: 'acme', name: 'web-user', maxDurationSeconds: 3600, scopes: [{ families: ['object:read'], bucket, prefix: 'reports/' }],
  });
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const kid = 'idp-key-1';
  const jwksPath = join(tg.dataDir, 'idp-jwks.json');
  writeFileSync(jwksPath, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }] }));
  await ok(tg, ROOT, 'POST', '/oidc-providers', { tenant: 'acme', issuer: ISSUER, audience: AUDIENCE, jwks: jwksPath, algorithms: ['RS256'], roles: ['web-user'] });
  return { roleArn: role.arn, bucket, key: privateKey, kid };
}

function idToken(key: CryptoKey, kid: string, claims: { iss?: string; aud?: string; exp?: number; sub?: string } = {}, alg = 'RS256'): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg, kid })
    .setIssuer(claims.iss ?? ISSUER)
    .setAudience(claims.aud ?? AUDIENCE)
    .setSubject(claims.sub ?? 'alice')
    .setIssuedAt()
    .setExpirationTime(claims.exp ?? Math.floor(Date.now() / 1000) + 600)
    .sign(key);
}

test('AssumeRoleWithWebIdentity: a good ID token yields a session whose subject is user:<sub>', async (t) => {
  await withGateway(async (tg) => {
    const { roleArn, bucket, key, kid } = await webIdentitySetup(tg);
    const out = await sts(tg).send(new AssumeRoleWithWebIdentityCommand({ RoleArn: roleArn, RoleSessionName: 'alice-web', WebIdentityToken: await idToken(key, kid) }));
    t.is(out.SubjectFromWebIdentityToken, 'alice');
    t.is(out.Audience, AUDIENCE);
    const c = out.Credentials!;
    const s3 = tg.client({ accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! });
    t.is(await read(s3, bucket, 'reports/q1.csv'), 'body of reports/q1.csv');
    await t.throwsAsync(read(s3, bucket, 'private/secret.txt'), { name: 'AccessDenied' });
    const line = (await denials(tg)).find((d) => d.accessKeyId === c.AccessKeyId);
    t.is(line?.subject, 'user:alice');
    t.is(line?.layer, 'scope');

    // Removing the provider ends the session.
    const providers = await ok(tg, ROOT, 'GET', '/oidc-providers');
    await ok(tg, ROOT, 'DELETE', `/oidc-providers/${providers.providers[0].id}`);
    await t.throwsAsync(read(s3, bucket, 'reports/q1.csv'), { name: 'InvalidToken' });
  });
});

test('AssumeRoleWithWebIdentity refuses a wrong audience, issuer, expiry, algorithm or signature', async (t) => {
  await withGateway(async (tg) => {
    const { roleArn, key, kid } = await webIdentitySetup(tg);
    const call = (token: string) => sts(tg).send(new AssumeRoleWithWebIdentityCommand({ RoleArn: roleArn, RoleSessionName: 'attempt', WebIdentityToken: token }));

    // The caller is told only that the token does not validate; the denial line keeps the cause for the operator.
    await t.throwsAsync(call(await idToken(key, kid, { aud: 'someone-else' })), { name: 'InvalidIdentityTokenException', message: 'The web identity token could not be validated' });
    // Worker processes write their denial lines in batches: wait for this one rather than read the newest at once.
    let audLine: string | undefined;
    for (let i = 0; i < 100 && audLine === undefined; i++) {
      audLine = (await denials(tg)).find((d) => /aud/.test(d.reason ?? ''))?.reason;
      if (audLine === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    t.regex(audLine ?? '', /aud/);
    await t.throwsAsync(call(await idToken(key, kid, { iss: 'https://evil.example.test' })), { name: 'InvalidIdentityTokenException' });
    await t.throwsAsync(call(await idToken(key, kid, { exp: Math.floor(Date.now() / 1000) - 60 })), { name: 'ExpiredTokenException' });
    // HS256 with the public key's modulus as "secret", the classic confusion attack, and an unsigned token.
    const hs = await new SignJWT({}).setProtectedHeader({ alg: 'HS256', kid }).setIssuer(ISSUER).setAudience(AUDIENCE).setSubject('alice')
      .setExpirationTime('10m').sign(new TextEncoder().encode('a-shared-secret-an-attacker-chose-32b'));
    await t.throwsAsync(call(hs), { name: 'InvalidIdentityTokenException' });
    const none = new UnsecuredJWT({}).setIssuer(ISSUER).setAudience(AUDIENCE).setSubject('alice').setExpirationTime('10m').encode();
    await t.throwsAsync(call(none), { name: 'InvalidIdentityTokenException' });
    // Signed by a key the issuer's JWKS does not hold, and a good token with one byte of its signature changed.
    const stranger = await generateKeyPair('RS256');
    await t.throwsAsync(call(await idToken(stranger.privateKey, kid)), { name: 'InvalidIdentityTokenException' });
    const good = await idToken(key, kid);
    const sig = good.split('.')[2]!;
    const flipped = `${good.slice(0, good.length - sig.length)}${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`;
    await t.throwsAsync(call(flipped), { name: 'InvalidIdentityTokenException' });
    // ES256 is not among this provider's algorithms even when signed by a key it might hold.
    const ec = await generateKeyPair('ES256');
    await t.throwsAsync(call(await idToken(ec.privateKey, kid, {}, 'ES256')), { name: 'InvalidIdentityTokenException' });
    // And the good token still works.
    const out = await call(good);
    t.regex(out.Credentials!.AccessKeyId!, /^ASIA/);
    t.true((await denials(tg)).filter((d) => d.action === 'STS:AssumeRoleWithWebIdentity').length >= 7);
  });
});

test('session policies map onto grants and only narrow; what cannot be represented is refused', (t) => {
  const iam = (Statement: unknown) => sessionPolicyGrants(JSON.stringify({ Version: '2012-10-17', Statement }));
  // A family is granted by the whole set of IAM actions of its operations (policy/sessions/scopes.ts).
  const read = ['s3:GetObject', 's3:GetObjectTagging', 's3:GetObjectAttributes'];
  const write = ['s3:PutObject', 's3:PutObjectTagging', 's3:DeleteObjectTagging', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'];
  const list = ['s3:ListBucket', 's3:ListBucketVersions', 's3:ListBucketMultipartUploads'];
  t.deepEqual(iam([{ Effect: 'Allow', Action: [...read, ...write], Resource: 'arn:aws:s3:::bkt/p/*' }]), [
    { families: ['object:read', 'object:write'], bucket: 'bkt', prefix: 'p/' },
  ]);
  // IAM resource types: ListBucket matches bucket ARNs only, so an object ARN adds nothing; a key without `*` is one key.
  t.deepEqual(iam({ Effect: 'Allow', Action: list, Resource: ['arn:aws:s3:::bkt', 'arn:aws:s3:::cat/x'] }), [
    { families: ['object:list'], bucket: 'bkt' },
  ]);
  t.deepEqual(iam({ Effect: 'Allow', Action: read, Resource: ['arn:aws:s3:::bkt', 'arn:aws:s3:::cat/x'] }), [
    { families: ['object:read'], bucket: 'cat', prefix: 'x', exact: true },
  ]);
  t.deepEqual(sessionPolicyGrants('{"scopes":[{"families":["object:read"],"bucket":"bkt","prefix":"q/"}]}'), [{ families: ['object:read'], bucket: 'bkt', prefix: 'q/' }]);
  for (const bad of [
    [{ Effect: 'Deny', Action: 's3:*', Resource: '*' }],
    [{ Effect: 'Allow', Action: 'iam:PassRole', Resource: '*' }],
    [{ Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::bkt*/x' }],
    [{ Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::bkt/x*y' }],
    [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*', Condition: { StringLike: {} } }],
  ]) t.throws(() => iam(bad), undefined, JSON.stringify(bad));
  // An ARN naming no possible bucket is refused, as the Anvil form's grants are, never a grant of nothing.
  for (const resource of ['arn:aws:s3:::d/*', 'arn:aws:s3:::../x', 'arn:aws:s3:::da%2Fta/x', 'arn:aws:s3:::ab/*']) {
    t.throws(() => iam({ Effect: 'Allow', Action: read, Resource: resource }), { message: /is not a bucket name/ }, resource);
  }
  t.throws(() => sessionPolicyGrants('not json'));
  t.throws(() => sessionPolicyGrants('{"scopes":[{"families":["object:read"],"bucket":"b","prefix":"_anvil/"}]}'));

  // Intersection: bucket * meets a bucket, the longer prefix wins, families intersect, disjoint prefixes vanish.
  t.deepEqual(
    intersectScopes([{ families: ['object:read', 'object:list'], bucket: '*', prefix: 'a/' }], [{ families: ['object:read', 'object:write'], bucket: 'b', prefix: 'a/b/' }]),
    [{ families: ['object:read'], bucket: 'b', prefix: 'a/b/' }],
  );
  t.deepEqual(intersectScopes([{ families: ['object:read'], bucket: 'b', prefix: 'a/' }], [{ families: ['object:read'], bucket: 'b', prefix: 'c/' }]), []);
  t.deepEqual(intersectScopes([{ families: ['object:read'], bucket: 'b' }], [{ families: ['object:read'], bucket: 'c' }]), []);
});

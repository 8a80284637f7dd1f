/**
 * Issue 9, class 3: no translation of a grant drops a restriction. IAM session policies follow IAM's resource types
 * (a bucket ARN matches no object), a key without `*` is one key, the exact flag survives credential → role →
 * session → session policy, and what cannot be translated faithfully grants nothing or is refused.
 */
import { AssumeRoleCommand, AssumeRoleWithWebIdentityCommand } from '@aws-sdk/client-sts';
import test from 'ava';
import { narrowCapability } from '../policy/index.ts';
import { admin, denials, ok } from './helpers/admin.ts';
import { allowed, assumeRole, BUCKET, credential, seed, startIssuer, stsClient, TENANT } from './helpers/authority.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';

let tg: TestGateway;
let app: Awaited<ReturnType<typeof credential>>;
let roleArn: string;

test.before(async () => {
  tg = await startTestGateway({ ANVIL_OIDC_ALLOW_INSECURE_JWKS: 'true' });
  await seed(tg);
  app = await credential(tg, [{ families: ['object:read', 'object:write', 'object:list', 'object:delete'], bucket: BUCKET }]);
  roleArn = (await ok(tg, ROOT, 'POST', '/roles', { tenant: TENANT, name: 'all', scopes: [{ families: ['object:read', 'object:write', 'object:list', 'object:delete'], bucket: BUCKET }] })).arn;
});
test.after.always(async () => tg.close());

const can = (creds: Parameters<typeof allowed>[1], action: 'read' | 'write' | 'delete' | 'list', key: string) => allowed(tg, creds, { bucket: BUCKET, key, action });
const policy = (Statement: unknown) => JSON.stringify({ Version: '2012-10-17', Statement });

test('(a) s3:GetObject + s3:ListBucket on [b/pub/*, b]: reads pub/, lists the bucket, never reads secret/', async (t) => {
  const s = await assumeRole(tg, app, roleArn, policy([{ Effect: 'Allow', Action: ['s3:GetObject', 's3:ListBucket'], Resource: [`arn:aws:s3:::${BUCKET}/pub/*`, `arn:aws:s3:::${BUCKET}`] }]));
  const creds = { creds: s };
  t.true(await can(creds, 'read', 'pub/x'));
  t.false(await can(creds, 'read', 'secret/x'));
  t.true(await can(creds, 'list', 'secret/'));
  t.false(await can(creds, 'write', 'pub/x'));
});

test('IAM resource types: object actions on a bucket ARN and bucket actions on an object ARN allow nothing', async (t) => {
  const s = await assumeRole(tg, app, roleArn, policy([
    { Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], Resource: `arn:aws:s3:::${BUCKET}` },
    { Effect: 'Allow', Action: 's3:ListBucket', Resource: `arn:aws:s3:::${BUCKET}/*` },
  ]));
  for (const action of ['read', 'write', 'delete', 'list'] as const) t.false(await can({ creds: s }, action, 'pub/x'), action);
});

test('a Resource key without * is that one key; a partial action is never widened to its whole family', async (t) => {
  const s = await assumeRole(tg, app, roleArn, policy([
    { Effect: 'Allow', Action: 's3:GetObject', Resource: `arn:aws:s3:::${BUCKET}/reports/q1.csv` },
    { Effect: 'Allow', Action: ['s3:PutObjectTagging', 's3:GetObjectTagging', 's3:AbortMultipartUpload'], Resource: `arn:aws:s3:::${BUCKET}/*` },
  ]));
  t.true(await can({ creds: s }, 'read', 'reports/q1.csv'));
  t.false(await can({ creds: s }, 'read', 'reports/q1.csv.draft'));
  t.false(await can({ creds: s }, 'write', 'pub/x'));
  t.false(await can({ creds: s }, 'read', 'pub/x'));
  // What cannot be represented is refused outright.
  for (const bad of [
    [{ Effect: 'Allow', Action: 's3:GetObject', Resource: `arn:aws:s3:::${BUCKET}/a*b` }],
    [{ Effect: 'Allow', Action: 's3:GetObject', Resource: `arn:aws:s3:::${BUCKET}/\${aws:username}/*` }],
    [{ Effect: 'Allow', NotAction: 's3:DeleteObject', Resource: '*' }],
    [{ Effect: 'Allow', Action: 's3:Get*Tagging', Resource: '*' }],
  ]) await t.throwsAsync(assumeRole(tg, app, roleArn, policy(bad)), { name: 'MalformedPolicyDocumentException' }, JSON.stringify(bad));
});

test('(b) a credential allowed exactly reports/q1.csv assumes a role: its session reads q1.csv and nothing that starts with it', async (t) => {
  const exact = await credential(tg, [{ families: ['object:read'], bucket: BUCKET, prefix: 'reports/q1.csv', exact: true }]);
  const s = await assumeRole(tg, exact, roleArn);
  t.true(await can({ creds: s }, 'read', 'reports/q1.csv'));
  t.false(await can({ creds: s }, 'read', 'reports/q1.csv.draft'));
  // An exact role keeps its flag too, and so does a scopes session policy.
  const role = await ok(tg, ROOT, 'POST', '/roles', { tenant: TENANT, name: 'one', scopes: [{ families: ['object:read'], bucket: BUCKET, prefix: 'reports/q1.csv', exact: true }] });
  t.true(role.scopes[0].exact);
  const viaRole = await assumeRole(tg, app, role.arn);
  t.false(await can({ creds: viaRole }, 'read', 'reports/q1.csv.draft'));
  t.true(await can({ creds: viaRole }, 'read', 'reports/q1.csv'));
  const viaPolicy = await assumeRole(tg, app, roleArn, JSON.stringify({ scopes: [{ families: ['object:read'], bucket: BUCKET, prefix: 'reports/q1.csv', exact: true }] }));
  t.false(await can({ creds: viaPolicy }, 'read', 'reports/q1.csv.draft'));
  t.true(await can({ creds: viaPolicy }, 'read', 'reports/q1.csv'));
  // A chained session of the exact one stays exact.
  const chained = await assumeRole(tg, s, roleArn);
  t.false(await can({ creds: chained }, 'read', 'reports/q1.csv.draft'));
});

test('an admin limited to some namespaces and relations cannot hand out tuples:write without those limits', async (t) => {
  const limited = await credential(tg, [
    { families: ['admin'], bucket: BUCKET },
    { families: ['tuples:write'], bucket: BUCKET, namespaces: ['folder'], relations: ['reader'] },
    { families: ['object:read'], bucket: BUCKET, prefix: 'reports/q1.csv', exact: true },
  ]);
  const wide = await admin(tg, limited, 'POST', '/credentials', { name: 'w', scopes: [{ families: ['tuples:write'], bucket: BUCKET }] });
  t.is(wide.status, 403);
  const otherNs = await admin(tg, limited, 'POST', '/credentials', { name: 'w', scopes: [{ families: ['tuples:write'], bucket: BUCKET, namespaces: ['object'], relations: ['reader'] }] });
  t.is(otherNs.status, 403);
  await ok(tg, limited, 'POST', '/credentials', { name: 'w', scopes: [{ families: ['tuples:write'], bucket: BUCKET, namespaces: ['folder'], relations: ['reader'] }] });
  // Its exact grant cannot become a prefix grant, in a credential or a capability.
  t.is((await admin(tg, limited, 'POST', '/credentials', { name: 'p', scopes: [{ families: ['object:read'], bucket: BUCKET, prefix: 'reports/q1.csv' }] })).status, 403);
  t.is((await admin(tg, limited, 'POST', '/capabilities', { bucket: BUCKET, prefix: 'reports/q1.csv', actions: ['read'] })).status, 403);
  const cap = await ok(tg, limited, 'POST', '/capabilities', { bucket: BUCKET, prefix: 'reports/q1.csv', exact: true, actions: ['read'] });
  t.true(await can({ capability: cap.capability }, 'read', 'reports/q1.csv'));
  t.false(await can({ capability: cap.capability }, 'read', 'reports/q1.csv.draft'));
});

test('STS parameters the gateway cannot honour are refused (InvalidParameterValue), never ignored, for both actions', async (t) => {
  const idp = await startIssuer();
  try {
    await ok(tg, ROOT, 'POST', '/oidc-providers', { tenant: TENANT, issuer: idp.issuer, audience: 'my-app', jwks: idp.jwksUrl, algorithms: ['RS256'], roles: ['all'] });
    const extras: Array<Record<string, unknown>> = [
      { PolicyArns: [{ arn: 'arn:aws:iam::aws:policy/ReadOnlyAccess' }] },
      { Tags: [{ Key: 'team', Value: 'a' }] },
      { TransitiveTagKeys: ['team'] },
      { SourceIdentity: 'admin' },
      { ExternalId: 'x' },
      { SerialNumber: 'arn:aws:iam::acme:mfa/u', TokenCode: '123456' },
    ];
    for (const extra of extras) {
      const input = { RoleArn: roleArn, RoleSessionName: 'probe', ...extra };
      await t.throwsAsync(stsClient(tg, app).send(new AssumeRoleCommand(input)), { name: 'InvalidParameterValue', message: new RegExp(Object.keys(extra)[0]!) }, JSON.stringify(extra));
    }
    const token = await idp.token({ sub: 'amy' });
    for (const extra of [{ PolicyArns: [{ arn: 'arn:aws:iam::aws:policy/ReadOnlyAccess' }] }, { ProviderId: 'graph.facebook.com' }]) {
      const input = { RoleArn: roleArn, RoleSessionName: 'probe', WebIdentityToken: token, ...extra };
      await t.throwsAsync(stsClient(tg).send(new AssumeRoleWithWebIdentityCommand(input)), { name: 'InvalidParameterValue' }, JSON.stringify(extra));
    }
    // Without them, both work.
    t.truthy((await stsClient(tg, app).send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'probe' }))).Credentials);
    t.truthy((await stsClient(tg).send(new AssumeRoleWithWebIdentityCommand({ RoleArn: roleArn, RoleSessionName: 'probe', WebIdentityToken: token }))).Credentials);
  } finally {
    await idp.close();
  }
});

test('narrowing a capability never widens it: unknown or mistyped fields throw, and scopes that name no object are refused (403), never 500', async (t) => {
  const minted = await ok(tg, ROOT, 'POST', '/capabilities', { tenant: TENANT, bucket: BUCKET, prefix: 'reports/', actions: ['read'] });
  const cap: string = minted.capability;
  const get = (c: string, key: string) => fetch(`${tg.gw.url}/${BUCKET}/${key}`, { headers: { 'x-anvil-capability': c } });
  for (const bad of [{ prefix: 'reports/q2' }, { expires: '1s' }, { exp: 1 }, { append: 'q2' }, { append: [Number.NaN] }, { actions: 'read' }, { expiresAt: '2030-01-01' }]) {
    t.throws(() => narrowCapability(cap, bad as never), { name: 'CapabilityError' }, JSON.stringify(bad));
  }
  t.is((await get(narrowCapability(cap, { append: ['q1'] }), 'reports/q1.csv')).status, 200);
  t.is((await get(narrowCapability(cap, { append: ['q1'] }), 'reports/q2.csv')).status, 403);
  // Appended segments that name no object scope: the capability is refused at its own layer, with a denial line.
  for (const append of [[{ exact: false }], [1], [null], [['x']], [{ exact: true }, 'x']]) {
    const res = await get(narrowCapability(cap, { append }), 'reports/q1.csv');
    t.is(res.status, 403, JSON.stringify(append));
    t.regex(await res.text(), /<RequestId>/);
  }
  const lines = denials(tg).filter((d) => d.layer === 'capability' && /not an object capability/.test(d.reason));
  t.is(lines.length, 4, JSON.stringify(lines));
  t.false(tg.logs.some((l) => /failed/.test(l)), tg.logs.join('\n'));
});

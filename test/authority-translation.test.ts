/**
 * Issue 9, class 3: no translation of a grant drops a restriction. IAM session policies follow IAM's resource types
 * (a bucket ARN matches no object), a key without `*` is one key, the exact flag survives credential → role →
 * session → session policy, and what cannot be translated faithfully grants nothing or is refused.
 */
import {
  DeleteBucketCorsCommand, DeleteBucketTaggingCommand, GetBucketCorsCommand, GetBucketTaggingCommand, HeadBucketCommand, PutBucketCorsCommand,
  PutBucketTaggingCommand,
} from '@aws-sdk/client-s3';
import { AssumeRoleCommand, AssumeRoleWithWebIdentityCommand } from '@aws-sdk/client-sts';
import test from 'ava';
import { narrowCapability } from '../policy/index.ts';
import { admin, denials, ok, type Creds } from './helpers/admin.ts';
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
/** The IAM actions of whole families (a session policy grants a family only with all of them). */
const READ = ['s3:GetObject', 's3:GetObjectTagging', 's3:GetObjectAttributes'];
const WRITE = ['s3:PutObject', 's3:PutObjectTagging', 's3:DeleteObjectTagging', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'];
const LIST = ['s3:ListBucket', 's3:ListBucketVersions', 's3:ListBucketMultipartUploads'];

test('(a) s3:GetObject + s3:ListBucket (with the rest of their families) on [b/pub/*, b]: reads pub/, lists the bucket, never reads secret/', async (t) => {
  const s = await assumeRole(tg, app, roleArn, policy([{ Effect: 'Allow', Action: [...READ, ...LIST], Resource: [`arn:aws:s3:::${BUCKET}/pub/*`, `arn:aws:s3:::${BUCKET}`] }]));
  const creds = { creds: s };
  t.true(await can(creds, 'read', 'pub/x'));
  t.false(await can(creds, 'read', 'secret/x'));
  t.true(await can(creds, 'list', 'secret/'));
  t.false(await can(creds, 'write', 'pub/x'));
});

test('IAM resource types: object actions on a bucket ARN and bucket actions on an object ARN allow nothing', async (t) => {
  const s = await assumeRole(tg, app, roleArn, policy([
    { Effect: 'Allow', Action: [...READ, ...WRITE, 's3:DeleteObject'], Resource: `arn:aws:s3:::${BUCKET}` },
    { Effect: 'Allow', Action: LIST, Resource: `arn:aws:s3:::${BUCKET}/*` },
  ]));
  for (const action of ['read', 'write', 'delete', 'list'] as const) t.false(await can({ creds: s }, action, 'pub/x'), action);
});

test('a Resource key without * is that one key; a partial action is never widened to its whole family', async (t) => {
  const s = await assumeRole(tg, app, roleArn, policy([{ Effect: 'Allow', Action: READ, Resource: `arn:aws:s3:::${BUCKET}/reports/q1.csv` }]));
  t.true(await can({ creds: s }, 'read', 'reports/q1.csv'));
  t.false(await can({ creds: s }, 'read', 'reports/q1.csv.draft'));
  t.false(await can({ creds: s }, 'write', 'pub/x'));
  t.false(await can({ creds: s }, 'read', 'pub/x'));
  // What cannot be represented is refused outright, a partial family included.
  for (const bad of [
    [{ Effect: 'Allow', Action: ['s3:PutObjectTagging', 's3:GetObjectTagging', 's3:AbortMultipartUpload'], Resource: `arn:aws:s3:::${BUCKET}/*` }],
    [{ Effect: 'Allow', Action: READ, Resource: `arn:aws:s3:::${BUCKET}/a*b` }],
    [{ Effect: 'Allow', Action: READ, Resource: `arn:aws:s3:::${BUCKET}/\${aws:username}/*` }],
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
  const lines = (await denials(tg)).filter((d) => d.layer === 'capability' && /not an object capability/.test(d.reason));
  t.is(lines.length, 4, JSON.stringify(lines));
  t.false(tg.logs.some((l) => /failed/.test(l)), tg.logs.join('\n'));
});

/** Which of the six bucket configuration operations `creds` may use on BUCKET, by name; each refusal must be AccessDenied. */
async function configOps(t: { is(a: unknown, b: unknown, m?: string): void }, creds: Creds): Promise<string[]> {
  const s3 = tg.client(creds);
  const ops = {
    GetBucketTagging: () => s3.send(new GetBucketTaggingCommand({ Bucket: BUCKET })),
    PutBucketTagging: () => s3.send(new PutBucketTaggingCommand({ Bucket: BUCKET, Tagging: { TagSet: [{ Key: 'owner', Value: 'intruder' }] } })),
    DeleteBucketTagging: () => s3.send(new DeleteBucketTaggingCommand({ Bucket: BUCKET })),
    GetBucketCors: () => s3.send(new GetBucketCorsCommand({ Bucket: BUCKET })),
    PutBucketCors: () => s3.send(new PutBucketCorsCommand({ Bucket: BUCKET, CORSConfiguration: { CORSRules: [{ AllowedOrigins: ['https://evil.example'], AllowedMethods: ['GET'] }] } })),
    DeleteBucketCors: () => s3.send(new DeleteBucketCorsCommand({ Bucket: BUCKET })),
  };
  const allowedOps: string[] = [];
  try {
    for (const [name, run] of Object.entries(ops)) {
      // Put the configuration back as root before each, so every operation finds something to read or change.
      await setConfig();
      try {
        await run();
        allowedOps.push(name);
      } catch (error) {
        t.is((error as Error).name, 'AccessDenied', `${name}: ${String(error)}`);
      }
    }
  } finally {
    s3.destroy();
  }
  return allowedOps;
}

/** Root's tagging and CORS rules on BUCKET. */
async function setConfig(): Promise<void> {
  await tg.s3.send(new PutBucketTaggingCommand({ Bucket: BUCKET, Tagging: { TagSet: [{ Key: 'owner', Value: 'finance' }] } }));
  await tg.s3.send(new PutBucketCorsCommand({ Bucket: BUCKET, CORSConfiguration: { CORSRules: [{ AllowedOrigins: ['https://app.example'], AllowedMethods: ['GET'] }] } }));
}

const READS = ['GetBucketTagging', 'GetBucketCors'];
const ALL_CONFIG = ['GetBucketTagging', 'PutBucketTagging', 'DeleteBucketTagging', 'GetBucketCors', 'PutBucketCors', 'DeleteBucketCors'];

test('bucket configuration (tagging, CORS) needs its family granted on the whole bucket: no prefix grant, object grant, session or capability reads or changes it', async (t) => {
  const configLines = async () => (await denials(tg)).filter((d) => /as a whole \(the bucket itself or its configuration\)/.test(d.reason ?? ''));
  const before = (await configLines()).length;
  // Every family a grant can name, but limited to a prefix: the bucket's configuration is not under any prefix.
  const prefixed = await credential(tg, [{ families: ['bucket:read', 'bucket:admin', 'object:read', 'object:write', 'object:list'], bucket: BUCKET, prefix: 'backups/host1/' }]);
  t.deepEqual(await configOps(t, prefixed), []);
  const exact = await credential(tg, [{ families: ['bucket:read', 'bucket:admin', 'object:read'], bucket: BUCKET, prefix: 'pub/x', exact: true }]);
  t.deepEqual(await configOps(t, exact), []);
  // Object families on the whole bucket imply HeadBucket, never the configuration (as s3:GetObject never reaches s3:GetBucketTagging).
  t.deepEqual(await configOps(t, app), []);
  const s3 = tg.client(app);
  await s3.send(new HeadBucketCommand({ Bucket: BUCKET }));
  s3.destroy();
  t.true((await configLines()).length - before >= 18);
  t.like((await configLines()).at(-1), { accessKeyId: app.accessKeyId, layer: 'scope', bucket: BUCKET });
  // A session of the all-families role under a prefix-limited parent is as limited as the parent.
  const bucketRole = (await ok(tg, ROOT, 'POST', '/roles', { tenant: TENANT, name: 'bucket-config', scopes: [{ families: ['bucket:read', 'bucket:admin'], bucket: BUCKET }] })).arn;
  t.deepEqual(await configOps(t, await assumeRole(tg, prefixed, bucketRole)), []);
  // A capability over the whole bucket names objects only.
  const cap = (await ok(tg, ROOT, 'POST', '/capabilities', { tenant: TENANT, bucket: BUCKET, actions: ['read', 'write'] })).capability as string;
  for (const query of ['tagging', 'cors']) {
    const res = await fetch(`${tg.gw.url}/${BUCKET}?${query}`, { headers: { 'x-anvil-capability': cap } });
    t.is(res.status, 403, query);
  }
  // Whatever was tried, root's configuration is intact.
  t.deepEqual((await tg.s3.send(new GetBucketTaggingCommand({ Bucket: BUCKET }))).TagSet, [{ Key: 'owner', Value: 'finance' }]);
  t.deepEqual((await tg.s3.send(new GetBucketCorsCommand({ Bucket: BUCKET }))).CORSRules?.[0]?.AllowedOrigins, ['https://app.example']);

  // Granted by name on the whole bucket (or on every bucket), the family opens exactly its operations.
  t.deepEqual(await configOps(t, await credential(tg, [{ families: ['bucket:read'], bucket: BUCKET }])), READS);
  t.deepEqual(await configOps(t, await credential(tg, [{ families: ['bucket:read'], bucket: '*' }])), READS);
  t.deepEqual(await configOps(t, await credential(tg, [{ families: ['bucket:admin'], bucket: BUCKET }])), ALL_CONFIG.filter((op) => !READS.includes(op)));
  const whole = await credential(tg, [{ families: ['bucket:read', 'bucket:admin'], bucket: BUCKET }]);
  t.deepEqual(await configOps(t, whole), ALL_CONFIG);
  t.deepEqual(await configOps(t, await assumeRole(tg, whole, bucketRole)), ALL_CONFIG);
});

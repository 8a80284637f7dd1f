/**
 * Issue 9, class 6: identifiers cannot be spelled into other identifiers. Web-identity subjects are built with the
 * one tuple escaping (`b%6Fb` never becomes `bob`; `@`, `#`, `:` are data), a `*` sub is refused, and a capability
 * in a governed bucket acts for its minter (issue 13), and any subject the schema cannot check is refused cleanly with
 * a denial line, never a 500.
 */
import test from 'ava';
import { admin, denials, ok } from './helpers/admin.ts';
import { allowed, assumeWeb, BUCKET, seed, startIssuer, stsClient, TENANT, type Issuer } from './helpers/authority.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { AssumeRoleWithWebIdentityCommand } from '@aws-sdk/client-sts';

let tg: TestGateway;
let idp: Issuer;
const ARN = `arn:aws:iam::${TENANT}:role/web`;
const TRUSTING = `arn:aws:iam::${TENANT}:role/bob-only`;

test.before(async () => {
  tg = await startTestGateway({ ANVIL_OIDC_ALLOW_INSECURE_JWKS: 'true' });
  idp = await startIssuer();
  await seed(tg);
  const scopes = [{ families: ['object:read', 'object:list'], bucket: BUCKET }];
  await ok(tg, ROOT, 'POST', '/roles', { tenant: TENANT, name: 'web', scopes });
  await ok(tg, ROOT, 'POST', '/roles', { tenant: TENANT, name: 'bob-only', scopes, trust: ['user:bob'] });
  await ok(tg, ROOT, 'POST', '/oidc-providers', { tenant: TENANT, issuer: idp.issuer, audience: 'my-app', jwks: idp.jwksUrl, algorithms: ['RS256'], roles: ['web', 'bob-only'] });
  await ok(tg, ROOT, 'PUT', `/buckets/${BUCKET}/governance`, { governed: true });
  await ok(tg, ROOT, 'POST', '/tuples', {
    tenant: TENANT, reason: 'seed',
    updates: [`object:${BUCKET}/pub/x#reader@user:bob`, `object:${BUCKET}/reports/q1.csv#reader@user:amy%40example.com`].map((tuple) => ({ op: 'touch', tuple })),
  });
});
test.after.always(async () => {
  await idp.close();
  await tg.close();
});

const read = async (creds: Parameters<typeof allowed>[1], key: string) => allowed(tg, creds, { bucket: BUCKET, key, action: 'read' });

test('a web identity whose sub is b%6Fb acts as itself, never as user:bob', async (t) => {
  const bob = await assumeWeb(tg, ARN, await idp.token({ sub: 'bob' }));
  t.is(bob.subject, 'user:bob');
  t.true(await read({ creds: bob }, 'pub/x'));
  const spoof = await assumeWeb(tg, ARN, await idp.token({ sub: 'b%6Fb' }));
  t.is(spoof.subject, 'user:b%256Fb');
  t.false(await read({ creds: spoof }, 'pub/x'));
  const line = (await denials(tg)).find((d) => d.accessKeyId === spoof.accessKeyId);
  t.is(line?.layer, 'relationship');
  t.is(line?.subject, 'user:b%256Fb');
  // Trust lists compare escaped subjects too: the spoof is not bob.
  await assumeWeb(tg, TRUSTING, await idp.token({ sub: 'bob' }));
  await t.throwsAsync(assumeWeb(tg, TRUSTING, await idp.token({ sub: 'b%6Fb' })), { name: 'AccessDenied' });
});

test('subs with @, #, : and spaces are ordinary ids; a * sub is refused; nothing answers 500', async (t) => {
  const amy = await assumeWeb(tg, ARN, await idp.token({ sub: 'amy@example.com' }));
  t.is(amy.subject, 'user:amy%40example.com');
  t.true(await read({ creds: amy }, 'reports/q1.csv'));
  t.false(await read({ creds: amy }, 'pub/x'));
  for (const sub of ['group:eng#member', 'bob#member', 'a b', 'x:y@z', '%2A']) {
    const s = await assumeWeb(tg, ARN, await idp.token({ sub }));
    t.false(await read({ creds: s }, 'pub/x'), sub);
    t.false(await read({ creds: s }, 'reports/q1.csv'), sub);
  }
  await t.throwsAsync(
    stsClient(tg).send(new AssumeRoleWithWebIdentityCommand({ RoleArn: ARN, RoleSessionName: 'web', WebIdentityToken: await idp.token({ sub: '*' }) })),
    { name: 'InvalidIdentityTokenException' },
  );
  t.false(tg.logs.some((l) => /failed/.test(l)), tg.logs.join('\n'));
});

test('a capability in a governed bucket acts for its minter (issue 13): root\'s for root, an app\'s refused cleanly without its tuple', async (t) => {
  const cap = await ok(tg, ROOT, 'POST', '/capabilities', { bucket: BUCKET, prefix: '', actions: ['read', 'list'] });
  t.true(await allowed(tg, { capability: cap.capability }, { bucket: BUCKET, key: 'pub/x', action: 'read' }));
  t.true(await allowed(tg, { capability: cap.capability }, { bucket: BUCKET, key: 'pub/', action: 'list' }));
  const app = await ok(tg, ROOT, 'POST', '/credentials', { tenant: TENANT, name: 'minter', scopes: [{ families: ['admin', 'object:read', 'object:list'], bucket: BUCKET }] });
  const creds = { accessKeyId: app.accessKeyId, secretAccessKey: app.secretKey };
  const mine = await ok(tg, creds, 'POST', '/capabilities', { bucket: BUCKET, prefix: '', actions: ['read', 'list'] });
  t.false(await allowed(tg, { capability: mine.capability }, { bucket: BUCKET, key: 'pub/x', action: 'read' }));
  const lines = (await denials(tg)).filter((d) => d.accessKeyId === `capability:${mine.id}`);
  t.true(lines.length >= 1);
  t.true(lines.every((d) => d.layer === 'relationship' && d.reason.includes(`(minter of capability:${mine.id})`)));
  t.false(tg.logs.some((l) => /failed|Error/.test(l)), tg.logs.join('\n'));
});

test('a sub holding characters XML cannot carry is refused cleanly; markup characters are escaped in the answer', async (t) => {
  const refusals = async () => (await denials(tg)).filter((d) => d.action === 'STS:AssumeRoleWithWebIdentity' && d.layer === 'credential' && /cannot name a subject/.test(d.reason)).length;
  const before = await refusals();
  const subs = ['a\u0000b', '\u0001', 'a\u000bb', 'tab\there', 'x\uFFFF', 'lone\uD800', 'c1\u0085'];
  for (const sub of subs) {
    await t.throwsAsync(
      stsClient(tg).send(new AssumeRoleWithWebIdentityCommand({ RoleArn: ARN, RoleSessionName: 'web', WebIdentityToken: await idp.token({ sub }) })),
      { name: 'InvalidIdentityTokenException' },
      JSON.stringify(sub),
    );
  }
  t.true((await refusals()) - before >= subs.length);
  const out = await stsClient(tg).send(new AssumeRoleWithWebIdentityCommand({ RoleArn: ARN, RoleSessionName: 'web', WebIdentityToken: await idp.token({ sub: '<a&b>"\'' }) }));
  t.is(out.SubjectFromWebIdentityToken, '<a&b>"\'');
  t.false(tg.logs.some((l) => /failed/.test(l)), tg.logs.join('\n'));
});

test('no escape spells the wildcard: user:%2A and %2a are refused in tuple writes, imports and checks; a raw * still is the wildcard', async (t) => {
  const web = await assumeWeb(tg, ARN, await idp.token({ sub: 'carol' }));
  const before = (await ok(tg, ROOT, 'GET', `/tuples?tenant=${TENANT}&resourceType=folder`)).tuples;
  for (const tuple of [`folder:${BUCKET}/secret/#reader@user:%2A`, `folder:${BUCKET}/secret/#reader@user:%2a`, 'folder:%2A#reader@user:carol', `folder:${BUCKET}/secret/#reader@group:%2A#member`]) {
    const written = await admin(tg, ROOT, 'POST', '/tuples', { tenant: TENANT, reason: 'x', updates: [{ op: 'touch', tuple }] });
    t.is(written.status, 400, tuple);
    t.regex(written.json.error.message, /"\*"/, tuple);
    t.is((await admin(tg, ROOT, 'POST', '/tuples/import', { tenant: TENANT, text: tuple, reason: 'x' })).status, 400, tuple);
  }
  t.is((await admin(tg, ROOT, 'POST', '/check', { tenant: TENANT, resource: `object:${BUCKET}/secret/x`, permission: 'read', subject: 'user:%2A' })).status, 400);
  t.deepEqual((await ok(tg, ROOT, 'GET', `/tuples?tenant=${TENANT}&resourceType=folder`)).tuples, before, 'nothing stored');
  t.false(await read({ creds: web }, 'secret/x'), 'the folder stayed private');
  // The JSON form's raw id is the literal string, never decoded.
  await ok(tg, ROOT, 'POST', '/tuples', { tenant: TENANT, reason: 'x', updates: [{ op: 'touch', tuple: { resource: { type: 'folder', id: `${BUCKET}/secret/` }, relation: 'reader', subject: { type: 'user', id: '%2A' } } }] });
  t.false(await read({ creds: web }, 'secret/x'));
  // The wildcard written as the README says still works.
  await ok(tg, ROOT, 'POST', '/tuples', { tenant: TENANT, reason: 'x', updates: [{ op: 'touch', tuple: `folder:${BUCKET}/secret/#reader@user:*` }] });
  t.true(await read({ creds: web }, 'secret/x'));
  await ok(tg, ROOT, 'POST', '/tuples', { tenant: TENANT, reason: 'x', updates: [{ op: 'delete', tuple: `folder:${BUCKET}/secret/#reader@user:*` }, { op: 'delete', tuple: `folder:${BUCKET}/secret/#reader@user:%252A` }] });
  t.false(await read({ creds: web }, 'secret/x'));
});

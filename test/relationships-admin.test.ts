/**
 * The relationship admin API end to end, through the CLI's SigV4 remote transport: governance, escalation attempts
 * by tenant applications, tuple validation, caveat hashes, all-or-nothing imports, check/lookup and the watch feed.
 */
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { NEEDS_ADMIN } from '../gateway/admin/index.ts';
import { AdminRequestError, remoteTransport, type AdminTransport, type ServerEvent } from '../gateway/cli/transport.ts';
import { FAMILIES, type ScopeGrant } from '../policy/index.ts';
import { bodyBytes, ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { denials as denialRows } from './helpers/admin.ts';

interface Ctx extends TestGateway {
  root: AdminTransport;
  admin: AdminTransport;
  as(scopes: ScopeGrant[]): Promise<{ api: AdminTransport; subject: string; creds: { accessKeyId: string; secretAccessKey: string } }>;
}
const test = anyTest as TestFn<Ctx>;
const TENANT = 'acme';
const BUCKET = 'acme-data';

test.before(async (t) => {
  const tg = await startTestGateway();
  const api = (c: { accessKeyId: string; secretAccessKey: string }) => remoteTransport({ endpoint: tg.gw.url, credentials: c, region: tg.config.region });
  const root = api(ROOT);
  await root.call('POST', '/tenants', { body: { name: TENANT } });
  await root.call('POST', '/tenants', { body: { name: 'other' } });
  await tg.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await root.call('PUT', `/buckets/${BUCKET}/owner`, { body: { tenant: TENANT, reassign: true } });
  await tg.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'docs/a.txt', Body: 'a' }));
  const c = await root.call('POST', '/credentials', { body: { tenant: TENANT, name: 'admin', scopes: [{ families: [...FAMILIES], bucket: '*' }] } });
  const as = async (scopes: ScopeGrant[]) => {
    const made = await tg.gw.policy.createCredential({ tenant: TENANT, name: `app${Math.random().toString(36).slice(2, 8)}`, scopes });
    const creds = { accessKeyId: made.accessKeyId, secretAccessKey: made.secretKey };
    return { api: api(creds), subject: `app:${made.accessKeyId}`, creds };
  };
  t.context = { ...tg, root, admin: api({ accessKeyId: c.accessKeyId, secretAccessKey: c.secretKey }), as };
});
test.after.always(async (t) => t.context.close());

const refusal = async (t: ExecutionContext<Ctx>, p: Promise<unknown>, status: number, message?: RegExp) => {
  const e = await t.throwsAsync(p, { instanceOf: AdminRequestError });
  t.is((e as AdminRequestError).status, status, e?.message);
  if (message) t.regex(e?.message ?? '', message);
  return e as AdminRequestError;
};
const denials = (t: ExecutionContext<Ctx>): Promise<Array<Record<string, string>>> => denialRows(t.context);
const write = (api: AdminTransport, tuple: string, op = 'touch') => api.call('POST', '/tuples', { body: { updates: [{ op, tuple }], reason: 'test' } });

test.serial('governing a bucket deploys the default schema; only root or the owning tenant admin may', async (t) => {
  const { root, admin, as } = t.context;
  await refusal(t, (await as([{ families: ['tuples:write', 'tuples:read'], bucket: '*' }])).api.call('PUT', `/buckets/${BUCKET}/governance`, { body: { governed: true } }), 403, new RegExp(NEEDS_ADMIN));
  const otherAdmin = await root.call('POST', '/credentials', { body: { tenant: 'other', name: 'admin', scopes: [{ families: ['admin'], bucket: '*' }] } });
  const other = remoteTransport({ endpoint: t.context.gw.url, credentials: { accessKeyId: otherAdmin.accessKeyId, secretAccessKey: otherAdmin.secretKey }, region: 'us-east-1' });
  // Another tenant's bucket answers as a missing one (no oracle for bucket names).
  await refusal(t, other.call('PUT', `/buckets/${BUCKET}/governance`, { body: { governed: true } }), 404);
  await refusal(t, admin.call('GET', '/schema'), 404);
  const r = await admin.call('PUT', `/buckets/${BUCKET}/governance`, { body: { governed: true } });
  t.like(r, { bucket: BUCKET, tenant: TENANT, governed: true, schemaDeployed: true });
  t.true(await t.context.gw.policy.bucketGoverned(BUCKET));
  const schema = await admin.call('GET', '/schema');
  t.regex(schema.schema, /definition object/);
  t.deepEqual(schema.caveats.map((c: { name: string }) => c.name), ['ip_allowlist']);
  // Governed, with no tuples: even a credential with full object scopes reads nothing.
  const reader = (await as([{ families: ['object:read', 'object:list'], bucket: BUCKET }]));
  const s3 = t.context.client(reader.creds);
  await t.throwsAsync(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'docs/a.txt' })), { name: 'AccessDenied' });
  await write(admin, `folder:${BUCKET}/docs/#reader@${reader.subject}`);
  t.is((await bodyBytes((await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'docs/a.txt' }))).Body)).toString(), 'a');
});

test.serial('tenant applications cannot escalate, leave their scope or write schemas', async (t) => {
  const { admin, as } = t.context;
  const victim = (await as([{ families: ['object:read'], bucket: BUCKET }]));
  const app = (await as([{ families: ['tuples:write', 'tuples:read'], bucket: '*', namespaces: ['group', 'folder'], relations: ['member', 'reader'] }]));
  await write(admin, `group:eng#member@${app.subject}`);
  await write(admin, `folder:${BUCKET}/eng/#reader@group:eng#member`);
  // Itself into a group, straight onto a folder, or a group it is in onto a folder: each enlarges its own authority.
  await refusal(t, write(app.api, `group:ops#member@${app.subject}`), 403, /enlarge the writer's own authority/);
  await refusal(t, write(app.api, `folder:${BUCKET}/secret/#reader@${app.subject}`), 403, /enlarge/);
  await refusal(t, write(app.api, `folder:${BUCKET}/secret/#reader@group:eng#member`), 403, /enlarge/);
  // Outside the namespaces and relations its grant names.
  await refusal(t, write(app.api, `object:${BUCKET}/docs/a.txt#reader@${victim.subject}`), 403, /namespace object is outside/);
  await refusal(t, write(app.api, `folder:${BUCKET}/docs/#owner@${victim.subject}`), 403, /relation owner is outside/);
  // Handing out what it does not hold itself: refused (nobody hands out what they cannot use).
  await refusal(t, write(app.api, `folder:${BUCKET}/shared/#reader@${victim.subject}`), 403, /does not hold read/);
  // Inside its scope, for someone else, holding it itself: fine.
  await write(admin, `folder:${BUCKET}/shared/#reader@${app.subject}`);
  const ok = await write(app.api, `folder:${BUCKET}/shared/#reader@${victim.subject}`);
  t.regex(ok.revision, /.+/);
  // Schemas and caveats are the admin's.
  await refusal(t, app.api.call('PUT', '/schema', { body: { schema: 'definition user {}', reason: 'x' } }), 403, new RegExp(NEEDS_ADMIN));
  await refusal(t, app.api.call('POST', '/tuples/import', { body: { text: '', reason: 'x' } }), 403);
  // Another tenant's tuples are out of reach.
  await refusal(t, app.api.call('POST', '/tuples', { body: { tenant: 'other', updates: [{ op: 'touch', tuple: 'group:x#member@user:y' }], reason: 'x' } }), 403);
  const lines = (await denials(t)).filter((d) => d.accessKeyId === app.creds.accessKeyId);
  t.true(lines.filter((d) => d.layer === 'relationship').length >= 5);
  const stored = await admin.call('GET', '/tuples', { query: { resourceType: 'folder', resourceId: `${BUCKET}/secret/` } });
  t.deepEqual(stored.tuples, []);
  // No tuples:write at all: refused at the door.
  const reader = (await as([{ families: ['tuples:read'], bucket: '*' }]));
  await refusal(t, write(reader.api, `folder:${BUCKET}/x/#reader@${victim.subject}`), 403, /needs the tuples:write or admin family/);
  t.true((await reader.api.call('GET', '/tuples', { query: { resourceType: 'group' } })).tuples.includes(`group:eng#member@${app.subject}`));
});

test.serial('invalid tuples are refused and never stored; batches are atomic with preconditions', async (t) => {
  const { admin } = t.context;
  for (const [tuple, message] of [
    [`object:${BUCKET}/k#read@user:amy`, /is a permission/],
    [`object:${BUCKET}/k#reader@nope:amy`, /not allowed/],
    [`object:${BUCKET}/k#writer@user:*`, /not allowed/],
    ['object:no relation here', /exactly one "@"|must/],
    [`object:${BUCKET}/k#reader@user:amy[ip_allowlist:0000000000000000:{"allowed":["1.1.1.1"]}]`, /invalid caveat hash/],
  ] as const) {
    await refusal(t, write(admin, tuple), 400, message);
  }
  const batch = { updates: [{ op: 'touch', tuple: `object:${BUCKET}/k#reader@user:amy` }, { op: 'touch', tuple: `object:${BUCKET}/k#reader@nope:x` }], reason: 'x' };
  await refusal(t, admin.call('POST', '/tuples', { body: batch }), 400);
  const pre = { updates: [{ op: 'touch', tuple: `object:${BUCKET}/k#reader@user:amy` }], reason: 'x', preconditions: [{ op: 'must_exist', filter: { resourceType: 'object', resourceId: `${BUCKET}/nothing` } }] };
  await refusal(t, admin.call('POST', '/tuples', { body: pre }), 409, /precondition/);
  t.deepEqual((await admin.call('GET', '/tuples', { query: { resourceType: 'object', resourceId: `${BUCKET}/k` } })).tuples, []);
  await refusal(t, admin.call('POST', '/tuples', { body: { updates: [{ op: 'touch', tuple: `object:${BUCKET}/k#reader@user:amy` }] } }), 400, /reason/);
});

test.serial('an import with one bad line imports nothing and names the line', async (t) => {
  const { admin } = t.context;
  const text = `# people\nobject:${BUCKET}/i1#reader@user:amy\n\nobject:${BUCKET}/i2#reader@userr:bob\nobject:${BUCKET}/i3#reader@user:cy\n`;
  await refusal(t, admin.call('POST', '/tuples/import', { body: { text, reason: 'migration' } }), 400, /line 4/);
  t.deepEqual((await admin.call('GET', '/tuples', { query: { resourceType: 'object', resourceId: `${BUCKET}/i1` } })).tuples, []);
  const good = await admin.call('POST', '/tuples/import', { body: { text: text.replace('userr', 'user'), reason: 'migration', name: 'people.txt' } });
  t.like(good, { count: 3, name: 'people.txt' });
});

test.serial('a caveat definition change makes old tuples fail closed with "invalid caveat hash"', async (t) => {
  const { admin, as } = t.context;
  const app = (await as([{ families: ['object:read'], bucket: BUCKET }]));
  const s3 = t.context.client(app.creds);
  const { caveats, schema } = await admin.call('GET', '/schema');
  const tuple = `object:${BUCKET}/docs/a.txt#reader@${app.subject}[ip_allowlist:${caveats[0].hash}:{"allowed":["127.0.0.0/8"]}]`;
  await write(admin, tuple);
  const get = () => s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'docs/a.txt' }));
  await get();
  const check = await admin.call('POST', '/check', { body: { resource: `object:${BUCKET}/docs/a.txt`, permission: 'read', subject: app.subject, explain: true } });
  t.is(check.result, 'conditional');
  t.deepEqual(check.missing, ['client_ip']);
  const changed = schema.replace('client_ip.in_cidr(cidr)) }', 'client_ip.in_cidr(cidr)) || client_ip.in_cidr("10.0.0.0/8") }');
  t.not(changed, schema);
  const diff = await admin.call('POST', '/schema/diff', { body: { schema: changed } });
  t.deepEqual(diff.caveats, [{ name: 'ip_allowlist', change: 'changed' }]);
  await admin.call('PUT', '/schema', { body: { schema: changed, reason: 'allow the office' } });
  await t.throwsAsync(get(), { name: 'AccessDenied' });
  const line = (await denials(t)).filter((d) => d.accessKeyId === app.creds.accessKeyId).at(-1);
  t.is(line?.layer, 'caveat');
  t.regex(line?.reason ?? '', /invalid caveat hash/);
  await refusal(t, write(admin, tuple), 400, /invalid caveat hash/);
});

test.serial('check, explain and lookup for the check family; the audit trail names actor, reason and request', async (t) => {
  const { admin, as } = t.context;
  const checker = (await as([{ families: ['check'], bucket: '*' }]));
  await write(admin, `folder:${BUCKET}/team/#reader@user:amy`);
  const r = await checker.api.call('POST', '/check', { body: { resource: `object:${BUCKET}/team/deep/x.txt`, permission: 'read', subject: 'user:amy', explain: true } });
  t.is(r.result, 'allowed');
  t.true(r.path.some((step: string) => step.includes('implicit')));
  t.is((await checker.api.call('POST', '/check', { body: { resource: `object:${BUCKET}/other/x`, permission: 'read', subject: 'user:amy' } })).result, 'denied');
  const found = await checker.api.call('POST', '/lookup', { body: { resourceType: 'folder', permission: 'read', subject: 'user:amy' } });
  t.true(found.ids.includes(`${BUCKET}/team/`));
  await refusal(t, checker.api.call('GET', '/tuples', { query: { resourceType: 'folder' } }), 403);
  const audit = await admin.call('GET', '/tuples/audit', { query: {} });
  const rec = audit.records.find((x: { tuple?: { resource: { id: string } } }) => x.tuple?.resource.id === `${BUCKET}/team/`);
  t.like(rec, { kind: 'tuple.touch', reason: 'test' });
  t.regex(rec.actor, /^AK/);
  t.regex(rec.requestId, /.+/);
});

test.serial('explain shows a caller narrower than its tenant no relationship outside its check and tuples:read reach', async (t) => {
  const { admin, as } = t.context;
  const checker = await as([{ families: ['check', 'tuples:read'], bucket: BUCKET, prefix: 'sealed/' }]);
  // A credential made by a narrower admin: a check for it is one for each of them (policy/actors.ts).
  const maker = await as([{ families: ['admin', 'object:read'], bucket: BUCKET }]);
  const child = await maker.api.call('POST', '/credentials', { body: { tenant: TENANT, name: 'child', scopes: [{ families: ['object:read'], bucket: BUCKET }] } });
  const app = { subject: `app:${child.accessKeyId}` };
  await write(admin, `folder:${BUCKET}/sealed/sub/#parent@folder:${BUCKET}/elsewhere/`);
  for (const who of ['user:dave', app.subject, maker.subject]) await write(admin, `folder:${BUCKET}/elsewhere/#reader@${who}`);
  await write(admin, 'group:insiders#member@user:bob');
  await write(admin, `folder:${BUCKET}/sealed/#reader@group:insiders#member`);
  const explain = (subject: string, key: string) =>
    checker.api.call('POST', '/check', { body: { resource: `object:${BUCKET}/sealed/${key}`, permission: 'read', subject, explain: true } });
  // What the same caller's GET /tuples shows: the tuples under sealed/, none on elsewhere/ or the group.
  const listed = JSON.stringify(await checker.api.call('GET', '/tuples', { query: { resourceType: 'folder' } }));
  t.true(listed.includes(`${BUCKET}/sealed/sub/`));
  t.false(listed.includes(`"${BUCKET}/elsewhere/"`));
  for (const [subject, key, hidden] of [
    ['user:dave', 'sub/e.txt', `folder:${BUCKET}/elsewhere/#`],
    [app.subject, 'sub/e.txt', `folder:${BUCKET}/elsewhere/#`],
    ['user:bob', 'a.txt', 'in group:insiders#member'],
  ] as const) {
    const r = await explain(subject, key);
    t.is(r.result, 'allowed', subject);
    const shown = JSON.stringify(r);
    t.false(shown.includes(hidden), `${subject}: ${shown}`);
    t.true(r.path.includes('(a relationship outside your reach)'), `${subject}: ${shown}`);
    t.false(r.path.some((step: string) => step.includes('@user:dave') || step.includes('@user:bob')), shown);
    if (subject === app.subject) t.is(r.actors?.length, 2, shown);
  }
  // The steps within reach stay, and a caller that reaches everything sees the whole path.
  t.true((await explain('user:dave', 'sub/e.txt')).path.includes(`folder:${BUCKET}/sealed/sub/#parent@folder:${BUCKET}/elsewhere/`));
  const whole = await admin.call('POST', '/check', { body: { resource: `object:${BUCKET}/sealed/sub/e.txt`, permission: 'read', subject: 'user:dave', explain: true } });
  t.true(whole.path.includes(`folder:${BUCKET}/elsewhere/#reader@user:dave`), JSON.stringify(whole));
});

test.serial('watch streams tuple writes as Server-Sent Events and resumes after a revision', async (t) => {
  const { admin, as } = t.context;
  const watcher = (await as([{ families: ['watch'], bucket: '*' }]));
  const start = (await admin.call('POST', '/tuples', { body: { updates: [{ op: 'touch', tuple: 'group:w0#member@user:x' }], reason: 'mark' } })).revision;
  const collect = async (after: string, count: number): Promise<ServerEvent[]> => {
    const got: ServerEvent[] = [];
    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(), 10_000);
    await watcher.api.events('/watch', { after }, (e) => {
      got.push(e);
      if (got.length >= count) stop.abort();
    }, stop.signal);
    clearTimeout(timer);
    return got;
  };
  const pending = collect(start, 1);
  await new Promise((r) => setTimeout(r, 300));
  const rev = (await write(admin, 'group:w1#member@user:amy')).revision;
  const [first] = await pending;
  t.is(first?.id, rev);
  t.is(first?.event, 'tuple.touch');
  t.like(JSON.parse(first!.data), { kind: 'tuple.touch', tuple: { resource: { type: 'group', id: 'w1' } } });
  const rev2 = (await write(admin, 'group:w2#member@user:bob')).revision;
  const resumed = await collect(first!.id!, 1);
  t.deepEqual(resumed.map((e) => e.id), [rev2]);
  // Another tenant's changes never reach this tenant's feed.
  await t.context.gw.relationships.writeSchema('other', 'definition user {}\ndefinition group {\n relation member: user\n}\n', { actor: 'test', reason: 'x' });
  await t.context.gw.relationships.write('other', [{ op: 'touch', tuple: 'group:x#member@user:y' }], { actor: 'test', reason: 'x' });
  const rev3 = (await write(admin, 'group:w3#member@user:cy')).revision;
  t.deepEqual((await collect(rev2, 1)).map((e) => e.id), [rev3]);
  await refusal(t, (await as([{ families: ['check'], bucket: '*' }])).api.call('GET', '/watch'), 403, /watch or admin/);
});

/**
 * Issue 9, class 5: the relationship API honours the bucket and prefix of its grants. check, explain, lookup,
 * tuples:read, watch and tuples:write grants scoped to a bucket or prefix answer only about resources under it;
 * preconditions answer nothing about tuples the caller may not read; a writer hands out only what it holds itself.
 */
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import { remoteTransport, type ServerEvent } from '../gateway/cli/transport.ts';
import type { ScopeGrant } from '../policy/index.ts';
import { admin, denials, ok } from './helpers/admin.ts';
import { BUCKET, credential, seed, TENANT } from './helpers/authority.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';

let tg: TestGateway;
const OTHER = 'data2';

test.before(async () => {
  tg = await startTestGateway();
  await seed(tg);
  await tg.s3.send(new CreateBucketCommand({ Bucket: OTHER }));
  await ok(tg, ROOT, 'PUT', `/buckets/${OTHER}/owner`, { tenant: TENANT, reassign: true });
  await ok(tg, ROOT, 'PUT', `/buckets/${BUCKET}/governance`, { governed: true });
  const tuples = [`folder:${BUCKET}/pub/#reader@user:amy`, `folder:${BUCKET}/secret/#reader@user:amy`, `object:${OTHER}/k#reader@user:amy`, 'group:eng#member@user:amy'];
  await ok(tg, ROOT, 'POST', '/tuples', { tenant: TENANT, updates: tuples.map((tuple) => ({ op: 'touch', tuple })), reason: 'seed' });
});
test.after.always(async () => tg.close());

const scoped = (families: ScopeGrant['families']) => credential(tg, [{ families, bucket: BUCKET, prefix: 'pub/' }]);

test('check and explain answer only about resources under the grant; others are 403 with a denial line', async (t) => {
  const c = await scoped(['check']);
  const yes = await ok(tg, c, 'POST', '/check', { resource: `object:${BUCKET}/pub/x`, permission: 'read', subject: 'user:amy' });
  t.is(yes.result, 'allowed');
  for (const resource of [`object:${BUCKET}/secret/x`, `folder:${BUCKET}/pub`, `bucket:${BUCKET}`, `object:${OTHER}/k`, 'group:eng']) {
    for (const explain of [false, true]) {
      const res = await admin(tg, c, 'POST', '/check', { resource, permission: resource.startsWith('group') ? 'member' : 'read', subject: 'user:amy', explain });
      t.is(res.status, 403, `${resource} explain=${explain}`);
    }
  }
  t.true((await denials(tg)).some((d) => d.accessKeyId === c.accessKeyId && d.action === 'Admin:Check' && d.layer === 'scope'));
});

test('lookup and tuples:read return only resources under the grant', async (t) => {
  const c = await scoped(['check', 'tuples:read']);
  const found = await ok(tg, c, 'POST', '/lookup', { resourceType: 'folder', permission: 'read', subject: 'user:amy' });
  t.true(found.ids.includes(`${BUCKET}/pub/`));
  t.true(found.ids.every((id: string) => id.startsWith(`${BUCKET}/pub/`)), JSON.stringify(found.ids));
  t.deepEqual((await ok(tg, c, 'POST', '/lookup', { resourceType: 'object', permission: 'read', subject: 'user:amy' })).ids, []);
  const folders: string[] = (await ok(tg, c, 'GET', '/tuples?resourceType=folder')).tuples;
  t.true(folders.includes(`folder:${BUCKET}/pub/#reader@user:amy`));
  t.true(folders.every((tuple) => tuple.startsWith(`folder:${BUCKET}/pub/`)), JSON.stringify(folders));
  t.deepEqual((await ok(tg, c, 'GET', '/tuples?resourceType=group')).tuples, []);
  t.deepEqual((await ok(tg, c, 'GET', `/tuples?resourceType=object&resourceId=${OTHER}/k`)).tuples, []);
});

test('watch carries only the events of resources under the grant', async (t) => {
  const c = await scoped(['watch']);
  const api = remoteTransport({ endpoint: tg.gw.url, credentials: c, region: tg.config.region });
  const got: ServerEvent[] = [];
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), 10_000);
  const pending = api.events('/watch', {}, (e) => {
    got.push(e);
    if (e.data.includes('marker')) stop.abort();
  }, stop.signal);
  await new Promise((r) => setTimeout(r, 300));
  await ok(tg, ROOT, 'POST', '/tuples', { tenant: TENANT, updates: [{ op: 'touch', tuple: `folder:${BUCKET}/secret/#reader@user:bob` }], reason: 'hidden' });
  await ok(tg, ROOT, 'POST', '/tuples', { tenant: TENANT, updates: [{ op: 'touch', tuple: `folder:${BUCKET}/pub/marker/#reader@user:bob` }], reason: 'shown' });
  await pending;
  clearTimeout(timer);
  const resources = got.map((e) => JSON.parse(e.data).tuple?.resource?.id ?? `(${e.event})`);
  t.true(resources.includes(`${BUCKET}/pub/marker/`), JSON.stringify(resources));
  t.true(resources.every((id: string) => id.startsWith(`${BUCKET}/pub/`)), JSON.stringify(resources));
});

test('preconditions give no answer about tuples the caller may not read, and come after the writer is authorised', async (t) => {
  const w = await credential(tg, [{ families: ['tuples:write', 'tuples:read'], bucket: BUCKET, prefix: 'pub/' }]);
  await ok(tg, ROOT, 'POST', '/tuples', { tenant: TENANT, updates: [{ op: 'touch', tuple: `folder:${BUCKET}/pub/#owner@app:${w.accessKeyId}` }], reason: 'w owns pub/' });
  const body = (filter: Record<string, string>, op = 'must_exist', tuple = `folder:${BUCKET}/pub/docs/#reader@user:cy`) => ({
    updates: [{ op: 'touch', tuple }], reason: 'x', preconditions: [{ op, filter }],
  });
  // About a resource outside its reach: 403 whether the tuple exists or not (no 409 either way).
  const exists = await admin(tg, w, 'POST', '/tuples', body({ resourceType: 'folder', resourceId: `${BUCKET}/secret/` }));
  const missing = await admin(tg, w, 'POST', '/tuples', body({ resourceType: 'folder', resourceId: `${BUCKET}/nothing/` }));
  t.is(exists.status, 403);
  t.is(missing.status, 403);
  t.is(exists.json.error.message, missing.json.error.message.replace('nothing/', 'secret/'));
  t.is((await admin(tg, w, 'POST', '/tuples', body({ resourceType: 'group' }))).status, 403);
  // A refused write answers 403 before its preconditions are looked at (here one that would fail: 409 otherwise).
  const refused = await admin(tg, w, 'POST', '/tuples', body({ resourceType: 'folder', resourceId: `${BUCKET}/pub/` }, 'must_not_exist', `folder:${BUCKET}/secret/#reader@user:cy`));
  t.is(refused.status, 403);
  // Within reach, preconditions work as before.
  t.is((await admin(tg, w, 'POST', '/tuples', body({ resourceType: 'folder', resourceId: `${BUCKET}/pub/` }, 'must_not_exist'))).status, 409);
  t.is((await admin(tg, w, 'POST', '/tuples', body({ resourceType: 'folder', resourceId: `${BUCKET}/pub/` }))).status, 200);
});

test('tuples:write scoped to a prefix writes only under it, and only what the writer holds itself', async (t) => {
  const w = await credential(tg, [{ families: ['tuples:write'], bucket: BUCKET, prefix: 'pub/' }]);
  const write = (tuple: string) => admin(tg, w, 'POST', '/tuples', { updates: [{ op: 'touch', tuple }], reason: 'x' });
  // Nothing held yet: it cannot hand out read even under its prefix.
  t.is((await write(`folder:${BUCKET}/pub/a/#reader@user:dan`)).status, 403);
  await ok(tg, ROOT, 'POST', '/tuples', { tenant: TENANT, updates: [{ op: 'touch', tuple: `folder:${BUCKET}/pub/a/#reader@app:${w.accessKeyId}` }], reason: 'w reads pub/a/' });
  t.is((await write(`folder:${BUCKET}/pub/a/#reader@user:dan`)).status, 200);
  // Holding read is not holding write: it cannot make anyone a writer or owner.
  const owner = await write(`folder:${BUCKET}/pub/a/#owner@user:dan`);
  t.is(owner.status, 403);
  t.regex(owner.json.error.message, /does not hold (write|delete)/);
  // Outside its prefix, another bucket, or a tenant-level group: refused whatever it holds.
  for (const tuple of [`folder:${BUCKET}/secret/#reader@user:dan`, `object:${OTHER}/k#reader@user:dan`, 'group:eng#member@user:dan', `bucket:${BUCKET}#reader@user:dan`]) {
    t.is((await write(tuple)).status, 403, tuple);
  }
  t.true((await denials(tg)).some((d) => d.accessKeyId === w.accessKeyId && d.layer === 'relationship'));
});

test('create answers whether a tuple exists, so a writer without tuples:read there is refused alike and told to touch', async (t) => {
  const w = await credential(tg, [{ families: ['tuples:write'], bucket: BUCKET, prefix: 'pub/' }]);
  await ok(tg, ROOT, 'POST', '/tuples', { tenant: TENANT, reason: 'seed', updates: [
    { op: 'touch', tuple: `folder:${BUCKET}/pub/z/#owner@app:${w.accessKeyId}` },
    { op: 'touch', tuple: `folder:${BUCKET}/pub/z/#reader@user:erin` },
  ] });
  const create = (tuple: string) => admin(tg, w, 'POST', '/tuples', { updates: [{ op: 'create', tuple }], reason: 'x' });
  const existing = await create(`folder:${BUCKET}/pub/z/#reader@user:erin`);
  const absent = await create(`folder:${BUCKET}/pub/z/#reader@user:fay`);
  t.is(existing.status, 403);
  t.is(absent.status, 403);
  t.is(existing.json.error.message.replace('erin', '?'), absent.json.error.message.replace('fay', '?'));
  t.regex(existing.json.error.message, /use touch/);
  t.true((await denials(tg)).some((d) => d.accessKeyId === w.accessKeyId && d.action === 'Admin:WriteTuples' && d.layer === 'scope' && /use touch/.test(d.reason)));
  // touch answers alike whether the tuple existed; with tuples:read there, create keeps its conflict answer.
  const touch = (tuple: string) => admin(tg, w, 'POST', '/tuples', { updates: [{ op: 'touch', tuple }], reason: 'x' });
  t.is((await touch(`folder:${BUCKET}/pub/z/#reader@user:erin`)).status, 200);
  t.is((await touch(`folder:${BUCKET}/pub/z/#reader@user:fay`)).status, 200);
  const reader = await credential(tg, [{ families: ['tuples:write', 'tuples:read'], bucket: BUCKET, prefix: 'pub/' }]);
  await ok(tg, ROOT, 'POST', '/tuples', { tenant: TENANT, reason: 'seed', updates: [{ op: 'touch', tuple: `folder:${BUCKET}/pub/z/#owner@app:${reader.accessKeyId}` }] });
  t.is((await admin(tg, reader, 'POST', '/tuples', { updates: [{ op: 'create', tuple: `folder:${BUCKET}/pub/z/#reader@user:erin` }], reason: 'x' })).status, 409);
});

test('the schema is the whole tenant: reading or diffing it needs a grant on every bucket without a prefix, as its watch events do', async (t) => {
  const scopedRead = await scoped(['tuples:read']);
  const refused = await admin(tg, scopedRead, 'GET', '/schema');
  t.is(refused.status, 403, JSON.stringify(refused.json));
  t.true((await denials(tg)).some((d) => d.accessKeyId === scopedRead.accessKeyId && d.action === 'Admin:ReadSchema' && d.layer === 'scope'));
  const bucketAdmin = await credential(tg, [{ families: ['admin', 'tuples:read'], bucket: BUCKET }]);
  t.is((await admin(tg, bucketAdmin, 'GET', '/schema')).status, 403);
  t.is((await admin(tg, bucketAdmin, 'POST', '/schema/diff', { schema: 'definition user {}' })).status, 403);
  const tenantRead = await credential(tg, [{ families: ['tuples:read'], bucket: '*' }]);
  t.truthy((await ok(tg, tenantRead, 'GET', '/schema')).schema);
});

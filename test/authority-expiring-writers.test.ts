/**
 * Issue 9, follow-up of class 5: authority that lapses bounds what it hands out. A writer that holds a permission only
 * through expiring tuples may write a tuple conferring it only if that tuple expires no later (the latest-expiring
 * granting path counts; one that never expires wins), through relations, usersets and arrows alike; a delete that
 * lifts an exclusion for good needs the guarded permission held without expiry.
 */
import test from 'ava';
import { admin, ok } from './helpers/admin.ts';
import { BUCKET, credential, seed, TENANT } from './helpers/authority.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { DEFAULT_OBJECT_SCHEMA } from '../policy/relationships/schema.ts';

let tg: TestGateway;
const OTHER_TENANT = 'beta';

test.before(async () => {
  tg = await startTestGateway();
  await seed(tg);
  await ok(tg, ROOT, 'PUT', `/buckets/${BUCKET}/governance`, { governed: true });
  await ok(tg, ROOT, 'POST', '/tenants', { name: OTHER_TENANT });
  const schema = `${DEFAULT_OBJECT_SCHEMA}
definition doc {
  relation reader: app | app with expiration
  relation banned: user
  relation banned_app: app
  permission view = reader - banned - banned_app
}
`;
  await ok(tg, ROOT, 'PUT', '/schema', { tenant: OTHER_TENANT, schema, reason: 'exclusion case' });
});
test.after.always(async () => tg.close());

const inMinutes = (m: number) => new Date(Date.now() + m * 60_000).toISOString().replace(/\.\d+Z$/, 'Z');
const rootWrite = (tuples: string[], tenant = TENANT) =>
  ok(tg, ROOT, 'POST', '/tuples', { tenant, updates: tuples.map((tuple) => ({ op: 'touch', tuple })), reason: 'setup' });
const write = (w: { accessKeyId: string; secretAccessKey: string }, tuple: string, op = 'touch') =>
  admin(tg, w, 'POST', '/tuples', { updates: [{ op, tuple }], reason: 'delegate' });
const check = async (resource: string, subject: string, tenant = TENANT) =>
  (await ok(tg, ROOT, 'POST', '/check', { tenant, resource, permission: 'read', subject })).result;

/** A tuples:write credential on `prefix` of BUCKET. */
const writer = (prefix: string) => credential(tg, [{ families: ['tuples:write'], bucket: BUCKET, prefix }]);

test("an expiring writer's unexpiring tuple is refused, naming the bound; one expiring no later is accepted and lapses with it", async (t) => {
  const w = await writer('e1/');
  const bound = new Date(Date.now() + 4000).toISOString();
  await rootWrite([`folder:${BUCKET}/e1/sub/#reader@app:${w.accessKeyId}[expiration:${bound}]`]);
  const refused = await write(w, `folder:${BUCKET}/e1/sub/#reader@user:eve`);
  t.is(refused.status, 403, JSON.stringify(refused.json));
  t.regex(refused.json.error.message, /only until .*must expire no later/);
  const later = await write(w, `folder:${BUCKET}/e1/sub/#reader@user:eve[expiration:${inMinutes(60)}]`);
  t.is(later.status, 403, JSON.stringify(later.json));
  const within = await write(w, `folder:${BUCKET}/e1/sub/#reader@user:eve[expiration:${bound}]`);
  t.is(within.status, 200, JSON.stringify(within.json));
  t.is(await check(`folder:${BUCKET}/e1/sub/`, 'user:eve'), 'allowed');
  await new Promise((r) => setTimeout(r, Date.parse(bound) - Date.now() + 500));
  t.is(await check(`folder:${BUCKET}/e1/sub/`, `app:${w.accessKeyId}`), 'denied');
  t.is(await check(`folder:${BUCKET}/e1/sub/`, 'user:eve'), 'denied');
});

test('the bound follows usersets and arrows (implicit parents) to the expiring tuple', async (t) => {
  const w = await writer('e2/');
  const end = inMinutes(30);
  await rootWrite([`group:e2team#member@app:${w.accessKeyId}`, `folder:${BUCKET}/e2/g/#reader@group:e2team#member[expiration:${end}]`]);
  await rootWrite([`folder:${BUCKET}/e2/p/#reader@app:${w.accessKeyId}[expiration:${end}]`]);
  for (const resource of [`folder:${BUCKET}/e2/g/`, `folder:${BUCKET}/e2/p/deeper/`, `object:${BUCKET}/e2/p/k`]) {
    const res = await write(w, `${resource}#reader@user:eve`);
    t.is(res.status, 403, `${resource}: ${JSON.stringify(res.json)}`);
    t.true(res.json.error.message.includes(new Date(end).toISOString()), res.json.error.message);
    t.is((await write(w, `${resource}#reader@user:eve[expiration:${end}]`)).status, 200, resource);
  }
});

test('of several granting paths the latest-expiring one bounds the tuple, and an unexpiring one lifts the bound', async (t) => {
  const w = await writer('e3/');
  const soon = inMinutes(10);
  const late = inMinutes(60);
  await rootWrite([`folder:${BUCKET}/e3/#reader@app:${w.accessKeyId}[expiration:${soon}]`, `group:e3team#member@app:${w.accessKeyId}`]);
  await rootWrite([`folder:${BUCKET}/e3/#reader@group:e3team#member[expiration:${late}]`]);
  t.is((await write(w, `folder:${BUCKET}/e3/#reader@user:eve[expiration:${inMinutes(30)}]`)).status, 200);
  const over = await write(w, `folder:${BUCKET}/e3/#reader@user:eve[expiration:${inMinutes(90)}]`);
  t.is(over.status, 403, JSON.stringify(over.json));
  t.true(over.json.error.message.includes(new Date(late).toISOString()), over.json.error.message);
  await rootWrite([`folder:${BUCKET}/e3/#reader@app:${w.accessKeyId}`]);
  t.is((await write(w, `folder:${BUCKET}/e3/#reader@user:eve`)).status, 200);
});

test('a delete that lifts an exclusion for good needs the guarded permission held without expiry', async (t) => {
  const w = await credential(tg, [{ families: ['tuples:write'], bucket: '*' }], ROOT, OTHER_TENANT);
  await rootWrite([`doc:d1#reader@app:${w.accessKeyId}[expiration:${inMinutes(30)}]`, 'doc:d1#banned@user:eve', 'doc:d1#reader@user:eve'].slice(0, 2), OTHER_TENANT);
  const lifted = await write(w, 'doc:d1#banned@user:eve', 'delete');
  t.is(lifted.status, 403, JSON.stringify(lifted.json));
  t.regex(lifted.json.error.message, /lifts an exclusion for good/);
  await rootWrite([`doc:d1#reader@app:${w.accessKeyId}`], OTHER_TENANT);
  t.is((await write(w, 'doc:d1#banned@user:eve', 'delete')).status, 200);
});

test('a writer never writes a tuple about itself, even an exclusion that only narrows it; the refusal says so', async (t) => {
  const w = await credential(tg, [{ families: ['tuples:write'], bucket: '*' }], ROOT, OTHER_TENANT);
  await rootWrite([`doc:d2#reader@app:${w.accessKeyId}`], OTHER_TENANT);
  const self = await write(w, `doc:d2#banned_app@app:${w.accessKeyId}`);
  t.is(self.status, 403, JSON.stringify(self.json));
  t.regex(self.json.error.message, /covers the writer, and no tuple about the writer's own authority is written/);
  t.notRegex(self.json.error.message, /enlarge/);
  // Onto itself through a relation that grants: still "would enlarge".
  t.regex((await write(w, `doc:d3#reader@app:${w.accessKeyId}`)).json.error.message, /would enlarge the writer's own authority/);
});

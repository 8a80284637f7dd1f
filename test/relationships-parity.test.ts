/**
 * SpiceDB-parity features of governed buckets through real S3 clients: an expiring folder share
 * (https://authzed.com/docs/spicedb/concepts/expiring-relationships), a folder guarded by a `.all()` arrow
 * (https://authzed.com/docs/spicedb/concepts/schema#all-intersection-arrow), an exclusion over a userset arrow in
 * listings (issue 9, class 8), capabilities acting for their minter, and the validate / export / restore tooling.
 */
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FAMILIES, relationships as rel } from '../policy/index.ts';
import { ADMIN_PREFIX } from '../gateway/admin/index.ts';
import { admin, denials, ok, type Creds } from './helpers/admin.ts';
import { signedSend } from './helpers/raw.ts';
import { bodyBytes, ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';

interface Ctx extends TestGateway {
  tenantAdmin: Creds;
  app(name: string, families?: readonly string[]): Promise<{ creds: Creds; subject: string; s3: S3Client }>;
}
const test = anyTest as TestFn<Ctx>;
const BUCKET = 'parity';
const TENANT = 'acme';
const AUDIT = { actor: 'test', reason: 'test setup' };
const READ_LIST = ['object:read', 'object:list'] as const;
const KEYS = ['share/plan.txt', 'share/notes.txt', 'deal/terms.txt', 'deal/sub/annex.txt', 'team/a.txt', 'team/b.txt', 'private/p.txt', 'events/e1/guests.txt', 'top.txt'];

/** The ready-made schema plus what these tests exercise: clearance groups on folders (`.all()`) and blocklists. */
const SCHEMA = rel.DEFAULT_OBJECT_SCHEMA.replace(
  /definition folder \{\n  relation parent: bucket \| folder\n/,
  'definition folder {\n  relation parent: bucket | folder\n  relation clearance: group\n  relation blocklist: group#member\n',
).replace(
  'permission read = reader + write + parent->read\n  permission delete = owner + parent->delete\n}\ndefinition object',
  'permission read = (reader + write + parent->read + clearance.all(member)) - blocklist->member\n  permission delete = owner + parent->delete\n}\ndefinition object',
);

test.before(async (t) => {
  const tg = await startTestGateway();
  const { gw, s3 } = tg;
  await gw.policy.createTenant({ name: TENANT });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await gw.policy.assignBucket(BUCKET, TENANT, { reassign: true });
  for (const key of KEYS) await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: `body of ${key}` }));
  await gw.relationships.writeSchema(TENANT, SCHEMA, AUDIT);
  await gw.policy.setBucketGoverned(BUCKET, true);
  const c = await gw.policy.createCredential({ tenant: TENANT, name: 'tenant-admin', scopes: [{ families: [...FAMILIES], bucket: '*' }] });
  const app = async (name: string, families: readonly string[] = READ_LIST) => {
    const made = await gw.policy.createCredential({ tenant: TENANT, name, scopes: [{ families: [...families] as never, bucket: BUCKET }] });
    const creds = { accessKeyId: made.accessKeyId, secretAccessKey: made.secretKey };
    return { creds, subject: `app:${made.accessKeyId}`, s3: tg.client(creds) };
  };
  t.context = { ...tg, tenantAdmin: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretKey }, app };
});
test.after.always(async (t) => t.context.close());

const write = async (t: ExecutionContext<Ctx>, ...tuples: string[]) =>
  await t.context.gw.relationships.write(TENANT, tuples.map((tuple) => ({ op: 'touch' as const, tuple })), AUDIT);
const remove = async (t: ExecutionContext<Ctx>, ...tuples: string[]) =>
  await t.context.gw.relationships.write(TENANT, tuples.map((tuple) => ({ op: 'delete' as const, tuple })), AUDIT);

async function readable(s3: S3Client, key: string): Promise<boolean> {
  try {
    return (await bodyBytes((await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body)).toString() === `body of ${key}`;
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 403) return false;
    throw error;
  }
}

async function listing(s3: S3Client, opts: { Prefix?: string; Delimiter?: string } = {}): Promise<string[]> {
  const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, MaxKeys: 1000, ...opts }));
  return [...(page.Contents ?? []).map((c) => c.Key!), ...(page.CommonPrefixes ?? []).map((p) => p.Prefix!)].sort();
}

/** A signed admin GET with a query string; the status and the parsed answer. */
async function adminGet(t: ExecutionContext<Ctx>, creds: Creds, path: string, query: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const res = await signedSend({ url: t.context.gw.url, method: 'GET', path: ADMIN_PREFIX + path, query, creds });
  return { status: res.status, json: res.body ? JSON.parse(res.body) : undefined };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test.serial('an expiring folder share is readable and listed until its instant, then neither; GC removes it and the audit shows it', async (t) => {
  const { s3, creds, subject } = await t.context.app('contractor');
  // Scheduling only: the share must still be live when it is first used, so on a slow machine the expiry grows.
  // Nothing asserts a duration; the exact instant is covered with a controlled clock in expiration.test.ts.
  let expiry = 0;
  for (let lead = 2000; ; lead *= 2) {
    expiry = Date.now() + lead;
    const tuple = `folder:${BUCKET}/share/#reader@${subject}[expiration:${new Date(expiry).toISOString()}]`;
    write(t, tuple);
    const [plan, listed] = [await readable(s3, 'share/plan.txt'), await listing(s3)];
    if (Date.now() < expiry - 200) {
      t.true(plan);
      t.deepEqual(listed, ['share/notes.txt', 'share/plan.txt']);
      t.deepEqual(await listing(s3, { Delimiter: '/' }), ['share/']);
      break;
    }
    t.true(lead < 60_000, 'the machine is too slow to use a share before it expires');
  }
  await sleep(Math.max(0, expiry - Date.now()) + 50);
  t.false(await readable(s3, 'share/plan.txt'));
  t.deepEqual(await listing(s3), []);
  t.deepEqual(await listing(s3, { Delimiter: '/' }), []);
  const line = (await denials(t.context)).filter((d) => d.accessKeyId === creds.accessKeyId).at(-1);
  t.like(line, { layer: 'relationship', key: 'share/plan.txt' });
  // Still stored until garbage collection, which then reports the removal.
  const audit = async () => (await adminGet(t, ROOT, '/tuples/audit', { tenant: TENANT, limit: '10000' })).json.records;
  const before = (await audit()).length;
  t.true(await t.context.gw.relationships.store.collectExpired() >= 1);
  const records = (await audit()).slice(before);
  t.true(records.some((r: { kind: string; actor: string; tuple?: { subject: { id: string } } }) =>
    r.kind === 'tuple.delete' && r.actor === 'anvil:gc' && r.tuple?.subject.id === creds.accessKeyId));
});

test.serial('a folder guarded by clearance.all(member) is readable only by members of every clearance group', async (t) => {
  const both = await t.context.app('both-clearances');
  const one = await t.context.app('one-clearance');
  write(t,
    `folder:${BUCKET}/deal/#clearance@group:finance`,
    `folder:${BUCKET}/deal/#clearance@group:legal`,
    `group:finance#member@${both.subject}`,
    `group:legal#member@${both.subject}`,
    `group:finance#member@${one.subject}`,
  );
  t.true(await readable(both.s3, 'deal/terms.txt'));
  t.true(await readable(both.s3, 'deal/sub/annex.txt'));
  t.false(await readable(one.s3, 'deal/terms.txt'));
  t.deepEqual(await listing(both.s3, { Delimiter: '/' }), ['deal/']);
  t.deepEqual(await listing(both.s3), ['deal/sub/annex.txt', 'deal/terms.txt']);
  t.deepEqual(await listing(one.s3, { Delimiter: '/' }), []);
  // One more clearance group narrows the folder at once: every member must hold it too.
  write(t, `folder:${BUCKET}/deal/#clearance@group:board`);
  t.false(await readable(both.s3, 'deal/terms.txt'));
  t.deepEqual(await listing(both.s3, { Delimiter: '/' }), []);
  write(t, `group:board#member@${both.subject}`);
  t.true(await readable(both.s3, 'deal/terms.txt'));
});

test.serial('an exclusion over a userset arrow holds in reads and listings (blocklist@group:banned#member)', async (t) => {
  const guest = await t.context.app('guest');
  const other = await t.context.app('other-guest');
  write(t,
    `folder:${BUCKET}/events/#reader@${guest.subject}`,
    `folder:${BUCKET}/events/#reader@${other.subject}`,
    `folder:${BUCKET}/events/#blocklist@group:banned#member`,
    `group:banned#member@${guest.subject}`,
  );
  t.false(await readable(guest.s3, 'events/e1/guests.txt'));
  t.deepEqual(await listing(guest.s3), []);
  t.deepEqual(await listing(guest.s3, { Delimiter: '/' }), []);
  t.true(await readable(other.s3, 'events/e1/guests.txt'));
  t.deepEqual(await listing(other.s3), ['events/e1/guests.txt']);
  remove(t, `group:banned#member@${guest.subject}`);
  t.true(await readable(guest.s3, 'events/e1/guests.txt'));
});

test.serial('a capability acts for its minter: its scope and the minter’s current scopes and tuples must all allow', async (t) => {
  const { gw } = t.context;
  const minter = await t.context.app('minter', ['admin', 'object:read', 'object:list']);
  write(t, `folder:${BUCKET}/team/#reader@${minter.subject}`);
  const mint = async (prefix: string) =>
    (await ok(t.context, minter.creds, 'POST', '/capabilities', { bucket: BUCKET, prefix, actions: ['read', 'list'] })).capability as string;
  const team = await mint('team/');
  const priv = await mint('private/');
  const get = (cap: string, key: string) => fetch(`${gw.url}/${BUCKET}/${key}?X-Anvil-Capability=${cap}`);
  const list = async (cap: string, prefix: string) => {
    const res = await fetch(`${gw.url}/${BUCKET}?list-type=2&prefix=${prefix}&X-Anvil-Capability=${cap}`);
    return { status: res.status, keys: [...(await res.text()).matchAll(/<Key>([^<]+)<\/Key>/g)].map((m) => m[1]) };
  };
  const lastLine = async () => (await denials(t.context)).at(-1);

  let res = await get(team, 'team/a.txt');
  t.is(res.status, 200);
  t.is(await res.text(), 'body of team/a.txt');
  t.deepEqual(await list(team, 'team/'), { status: 200, keys: ['team/a.txt', 'team/b.txt'] });
  // Outside the capability's own scope: the capability refuses.
  t.is((await get(team, 'top.txt')).status, 403);
  t.is((await lastLine())?.layer, 'capability');
  // Inside its scope, but the minter holds no tuple there: relationships refuse, naming the minter.
  res = await get(priv, 'private/p.txt');
  t.is(res.status, 403);
  t.like((await lastLine()), { layer: 'relationship', key: 'private/p.txt' });
  t.regex((await lastLine())?.reason ?? '', new RegExp(`missing read on object:${BUCKET}/private/p\\.txt for ${minter.subject} \\(minter of capability:`));
  t.deepEqual((await list(priv, 'private/')).keys, []);
  // The minter's tuple is deleted: every share it minted ends on the next request.
  remove(t, `folder:${BUCKET}/team/#reader@${minter.subject}`);
  t.is((await get(team, 'team/a.txt')).status, 403);
  t.like((await lastLine()), { layer: 'relationship', key: 'team/a.txt' });
  t.deepEqual((await list(team, 'team/')).keys, []);
  write(t, `folder:${BUCKET}/team/#reader@${minter.subject}`);
  t.is((await get(team, 'team/a.txt')).status, 200);
  // The minter's credential is revoked: the capability no longer has anyone to act for.
  await gw.policy.revokeCredential(minter.creds.accessKeyId);
  t.is((await get(team, 'team/a.txt')).status, 403);
  t.like((await lastLine()), { layer: 'capability' });
  t.regex((await lastLine())?.reason ?? '', new RegExp(`minter ${minter.creds.accessKeyId} is revoked`));
  t.is((await list(team, 'team/')).status, 403);
  // Root's capabilities act for root, which relationships do not govern.
  const rootCap = (await ok(t.context, ROOT, 'POST', '/capabilities', { bucket: BUCKET, prefix: 'private/', actions: ['read'] })).capability;
  t.is((await get(rootCap, 'private/p.txt')).status, 200);
});

function anvil(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'gateway/cli/main.ts', ...args], { cwd: join(import.meta.dirname, '..'), env: { PATH: process.env.PATH ?? '', ...env } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }));
  });
}

test.serial('anvil schema validate reads zed validation files; export and restore move a tenant over the admin API', async (t) => {
  const good = await anvil(['schema', 'validate', 'test/policy/relationships/cases/expiration.yaml']);
  t.is(good.code, 0, good.stderr);
  t.regex(good.stdout, /^Success! - 11 relationships loaded, 13 assertions run, 2 expected relations validated$/m);
  const badFile = join(t.context.dataDir, 'bad.yaml');
  writeFileSync(badFile, 'schema: |-\n  definition user {}\n  definition doc { relation viewer: user }\nrelationships: |-\n  doc:1#viewer@user:amy\nassertions:\n  assertFalse:\n    - doc:1#viewer@user:amy\n');
  const bad = await anvil(['schema', 'validate', badFile]);
  t.is(bad.code, 1);
  t.regex(bad.stdout, /bad\.yaml:8: assertFalse failed: `doc:1#viewer@user:amy` is allowed\n {4}doc:1#viewer@user:amy\n/);

  const exported = await ok(t.context, t.context.tenantAdmin, 'GET', '/tuples/export');
  t.like(exported, { tenant: TENANT, format: 'yaml' });
  t.true(exported.count > 0);
  t.regex(exported.text, /^schema: \|/);
  const restored = await ok(t.context, ROOT, 'POST', '/tuples/restore', { tenant: 'acme-copy', text: exported.text, name: 'acme.yaml', reason: 'copy' });
  t.like(restored, { tenant: 'acme-copy', count: exported.count, name: 'acme.yaml' });
  const again = (await adminGet(t, ROOT, '/tuples/export', { tenant: 'acme-copy' })).json;
  t.is(again.text, exported.text);
  const lines = (await adminGet(t, ROOT, '/tuples/export', { tenant: TENANT, format: 'relationships' })).json;
  t.regex(lines.text, /^folder:parity\/deal\/ clearance group:finance$/m);
  // All or nothing: one bad line and nothing is written; apps without admin may not export or restore.
  const broken = await admin(t.context, ROOT, 'POST', '/tuples/restore', { tenant: 'acme-broken', text: exported.text.replace('group:finance', 'groop:finance'), reason: 'x' });
  t.is(broken.status, 400);
  t.is((await adminGet(t, ROOT, '/schema', { tenant: 'acme-broken' })).status, 404);
  const reader = await t.context.app('reader-only');
  t.is((await admin(t.context, reader.creds, 'GET', '/tuples/export')).status, 403);
  t.is((await adminGet(t, t.context.tenantAdmin, '/tuples/export', { format: 'xml' })).status, 400);
});

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import {
  authorize,
  ConflictError,
  InvalidInputError,
  MasterKeyMismatchError,
  NotFoundError,
  PolicyStore,
  queryAudit,
  type ResolveResult,
  type ScopeGrant,
} from '../../policy/index.ts';
import { tempDataDir } from './helpers.ts';

const SCOPES: ScopeGrant[] = [{ families: ['object:read', 'object:write', 'object:list'], bucket: 'backups', prefix: 'host1/' }];

function setup(t: Parameters<typeof tempDataDir>[0]): { dir: string; store: PolicyStore } {
  const dir = tempDataDir(t);
  const store = PolicyStore.open({ dataDir: dir });
  t.teardown(() => store.close());
  store.createTenant({ name: 'acme', description: 'Acme Corp' });
  return { dir, store };
}

function secretsOf(result: ResolveResult): string[] {
  return result.ok ? result.secrets : [];
}

test('create returns the secret once; show and list never do', (t) => {
  const { store } = setup(t);
  const created = store.createCredential({ tenant: 'acme', name: 'backup', description: 'nightly backup of host1', scopes: SCOPES });
  t.regex(created.accessKeyId, /^AKIA[A-Z2-7]{16}$/);
  t.is(created.secretKey.length, 40);
  t.like(created, { tenant: 'acme', name: 'backup', description: 'nightly backup of host1', status: 'active', isRoot: false });
  t.deepEqual(created.scopes, SCOPES);
  const shown = store.showCredential(created.accessKeyId);
  t.truthy(shown);
  t.false('secretKey' in (shown ?? {}));
  t.false(JSON.stringify(store.listCredentials()).includes(created.secretKey));
  t.false(JSON.stringify(store.listCredentials({ tenant: 'acme' })).includes(created.secretKey));
  t.is(store.listCredentials({ tenant: 'acme' }).length, 1);
});

test('resolve gives the secret and an app principal, and records last use', (t) => {
  const { store } = setup(t);
  const created = store.createCredential({ tenant: 'acme', name: 'backup', scopes: SCOPES });
  const result = store.resolveAccessKey(created.accessKeyId);
  t.true(result.ok);
  if (!result.ok) return;
  t.deepEqual(result.secrets, [created.secretKey]);
  t.like(result.principal, { tenant: 'acme', accessKeyId: created.accessKeyId, subject: `app:${created.accessKeyId}`, isRoot: false });
  t.deepEqual(result.principal.scopes, SCOPES);
  t.truthy(store.showCredential(created.accessKeyId)?.lastUsedAt);
  t.deepEqual(store.resolveAccessKey('AKIANOSUCHKEY0000000'), { ok: false, reason: 'unknown' });
});

test('rotate without grace: the old secret stops at once', (t) => {
  const { store } = setup(t);
  const created = store.createCredential({ tenant: 'acme', name: 'backup', scopes: SCOPES });
  store.resolveAccessKey(created.accessKeyId); // warm the cache
  const rotated = store.rotateCredential(created.accessKeyId);
  t.not(rotated.secretKey, created.secretKey);
  t.is(rotated.previousSecretValidUntil, undefined);
  t.deepEqual(secretsOf(store.resolveAccessKey(created.accessKeyId)), [rotated.secretKey]);
});

test('rotate with grace: both secrets verify until the grace period ends', (t) => {
  const { store } = setup(t);
  const created = store.createCredential({ tenant: 'acme', name: 'backup', scopes: SCOPES });
  const rotated = store.rotateCredential(created.accessKeyId, { graceSeconds: 300 });
  t.truthy(rotated.previousSecretValidUntil);
  t.deepEqual(secretsOf(store.resolveAccessKey(created.accessKeyId)), [rotated.secretKey, created.secretKey]);
  const later = new Date(Date.now() + 301_000);
  t.deepEqual(secretsOf(store.resolveAccessKey(created.accessKeyId, later)), [rotated.secretKey]);
  // A second rotation without grace drops the grace secret too.
  const again = store.rotateCredential(created.accessKeyId);
  t.deepEqual(secretsOf(store.resolveAccessKey(created.accessKeyId)), [again.secretKey]);
  t.throws(() => store.rotateCredential(created.accessKeyId, { graceSeconds: -1 }), { instanceOf: InvalidInputError });
});

test('revoke, expire and delete each refuse with a reason', (t) => {
  const { store } = setup(t);
  const revoked = store.createCredential({ tenant: 'acme', name: 'a', scopes: SCOPES });
  store.resolveAccessKey(revoked.accessKeyId);
  store.revokeCredential(revoked.accessKeyId);
  t.deepEqual(store.resolveAccessKey(revoked.accessKeyId), { ok: false, reason: 'revoked' });
  t.is(store.showCredential(revoked.accessKeyId)?.status, 'revoked');
  t.throws(() => store.rotateCredential(revoked.accessKeyId), { instanceOf: ConflictError });

  const expiresAt = new Date(Date.now() + 60_000);
  const expiring = store.createCredential({ tenant: 'acme', name: 'b', scopes: SCOPES, expiresAt });
  t.true(store.resolveAccessKey(expiring.accessKeyId).ok);
  t.deepEqual(store.resolveAccessKey(expiring.accessKeyId, new Date(expiresAt.getTime() + 1)), { ok: false, reason: 'expired' });
  t.is(store.showCredential(expiring.accessKeyId)?.expiresAt, expiresAt.toISOString());

  const deleted = store.createCredential({ tenant: 'acme', name: 'c', scopes: SCOPES });
  store.resolveAccessKey(deleted.accessKeyId);
  store.deleteCredential(deleted.accessKeyId);
  t.deepEqual(store.resolveAccessKey(deleted.accessKeyId), { ok: false, reason: 'unknown' });
  t.is(store.showCredential(deleted.accessKeyId), undefined);
  t.throws(() => store.deleteCredential(deleted.accessKeyId), { instanceOf: NotFoundError });
});

test('invalid credentials are refused', (t) => {
  const { store } = setup(t);
  t.throws(() => store.createCredential({ tenant: 'nope', name: 'a', scopes: SCOPES }), { instanceOf: NotFoundError });
  t.throws(() => store.createCredential({ tenant: 'acme', name: '', scopes: SCOPES }), { instanceOf: InvalidInputError });
  t.throws(() => store.createCredential({ tenant: 'acme', name: 'a', scopes: [{ families: ['nope' as 'admin'], bucket: 'b' }] }), { instanceOf: InvalidInputError });
});

test('secrets are encrypted at rest and master.key is 0600', (t) => {
  const { dir, store } = setup(t);
  const created = store.createCredential({ tenant: 'acme', name: 'backup', scopes: SCOPES });
  const rotated = store.rotateCredential(created.accessKeyId, { graceSeconds: 60 });
  t.is(statSync(join(dir, 'master.key')).mode & 0o777, 0o600);
  t.is(statSync(join(dir, 'policy.db')).mode & 0o777, 0o600);
  const files = readdirSync(dir);
  t.true(files.includes('policy.db'));
  for (const file of files) {
    const raw = readFileSync(join(dir, file));
    for (const secret of [created.secretKey, rotated.secretKey]) {
      t.false(raw.includes(Buffer.from(secret)), `${file} holds a plaintext secret`);
    }
  }
});

test('a configured master key is used, and a wrong one is refused at open', (t) => {
  const dir = tempDataDir(t);
  const key = 'a'.repeat(64);
  const store = PolicyStore.open({ dataDir: dir, masterKey: key });
  const created = store.createCredential({ tenant: 'root', name: 'x', scopes: SCOPES });
  store.close();
  t.false(readdirSync(dir).includes('master.key'));
  t.throws(() => PolicyStore.open({ dataDir: dir, masterKey: Buffer.alloc(32, 7).toString('base64') }), { instanceOf: MasterKeyMismatchError });
  t.throws(() => PolicyStore.open({ dataDir: dir, masterKey: 'short' }), { instanceOf: InvalidInputError });
  const again = PolicyStore.open({ dataDir: dir, masterKey: key });
  t.teardown(() => again.close());
  t.deepEqual(secretsOf(again.resolveAccessKey(created.accessKeyId)), [created.secretKey]);
});

test('revocation, rotation and tenant disable by another process are seen on the next lookup', (t) => {
  const { dir, store } = setup(t);
  const second = PolicyStore.open({ dataDir: dir });
  t.teardown(() => second.close());
  const a = store.createCredential({ tenant: 'acme', name: 'a', scopes: SCOPES });
  const b = store.createCredential({ tenant: 'acme', name: 'b', scopes: SCOPES });
  t.true(second.resolveAccessKey(a.accessKeyId).ok);
  t.true(second.resolveAccessKey(a.accessKeyId).ok); // now cached in the second process
  store.revokeCredential(a.accessKeyId);
  t.deepEqual(second.resolveAccessKey(a.accessKeyId), { ok: false, reason: 'revoked' });

  t.deepEqual(secretsOf(second.resolveAccessKey(b.accessKeyId)), [b.secretKey]);
  const rotated = store.rotateCredential(b.accessKeyId);
  t.deepEqual(secretsOf(second.resolveAccessKey(b.accessKeyId)), [rotated.secretKey]);

  store.disableTenant('acme');
  t.deepEqual(second.resolveAccessKey(b.accessKeyId), { ok: false, reason: 'tenant_disabled' });
  store.disableTenant('acme', { disabled: false });
  t.true(second.resolveAccessKey(b.accessKeyId).ok);

  store.assignBucket('backups', 'acme');
  t.is(second.bucketOwner('backups'), 'acme');
  store.releaseBucket('backups');
  t.is(second.bucketOwner('backups'), undefined);
});

test('ensureRoot generates once, then adopts a configured pair', (t) => {
  const dir = tempDataDir(t);
  const store = PolicyStore.open({ dataDir: dir });
  t.teardown(() => store.close());
  const first = store.ensureRoot();
  t.true(first.created);
  t.regex(first.accessKeyId, /^AKIA[A-Z2-7]{16}$/);
  t.is(first.secretKey?.length, 40);
  const second = store.ensureRoot();
  t.deepEqual(second, { accessKeyId: first.accessKeyId, created: false, updated: false });
  const resolved = store.resolveAccessKey(first.accessKeyId);
  t.like(resolved, { ok: true, principal: { isRoot: true, tenant: 'root' } });

  const given = { accessKeyId: 'AKIAGIVENGIVENGIVEN1', secretKey: 'given-secret-given-secret-given-secret-1' };
  t.like(store.ensureRoot(given), { ...given, created: false, updated: true });
  t.like(store.ensureRoot(given), { ...given, created: false, updated: false });
  t.deepEqual(store.resolveAccessKey(first.accessKeyId), { ok: false, reason: 'unknown' });
  t.deepEqual(secretsOf(store.resolveAccessKey(given.accessKeyId)), [given.secretKey]);
  t.like(store.ensureRoot({ ...given, secretKey: 'changed-secret-0123456789' }), { updated: true });
  t.deepEqual(secretsOf(store.resolveAccessKey(given.accessKeyId)), ['changed-secret-0123456789']);
  t.is(store.listCredentials({ tenant: 'root' }).filter((c) => c.isRoot).length, 1);
  t.throws(() => store.ensureRoot({ accessKeyId: 'AKIAONLYID' }), { instanceOf: InvalidInputError });
});

test('tenants: create, list, show, disable, delete only without buckets', (t) => {
  const { store } = setup(t);
  t.throws(() => store.createTenant({ name: 'acme' }), { instanceOf: ConflictError });
  t.throws(() => store.createTenant({ name: 'Bad Name' }), { instanceOf: InvalidInputError });
  t.deepEqual(store.listTenants().map((x) => x.name), ['acme', 'root']);
  const cred = store.createCredential({ tenant: 'acme', name: 'a', scopes: SCOPES });
  store.assignBucket('backups', 'acme');
  t.like(store.showTenant('acme'), { name: 'acme', description: 'Acme Corp', disabled: false, bucketCount: 1, credentialCount: 1 });
  t.throws(() => store.deleteTenant('acme'), { instanceOf: ConflictError });
  t.throws(() => store.disableTenant('root'), { instanceOf: InvalidInputError });
  t.throws(() => store.deleteTenant('root'), { instanceOf: InvalidInputError });
  store.releaseBucket('backups');
  store.deleteTenant('acme');
  t.is(store.showTenant('acme'), undefined);
  t.deepEqual(store.resolveAccessKey(cred.accessKeyId), { ok: false, reason: 'unknown' });
});

test('bucket ownership: assign, conflict, reassign, list, release', (t) => {
  const { store } = setup(t);
  store.createTenant({ name: 'globex' });
  store.assignBucket('backups', 'acme');
  store.assignBucket('backups', 'acme'); // idempotent
  store.assignBucket('photos', 'acme');
  t.is(store.bucketOwner('backups'), 'acme');
  t.throws(() => store.assignBucket('backups', 'globex'), { instanceOf: ConflictError });
  t.throws(() => store.assignBucket('x', 'nope'), { instanceOf: NotFoundError });
  store.assignBucket('gx', 'root');
  store.assignBucket('gx', 'globex', { reassign: true });
  t.deepEqual(store.listTenantBuckets('acme'), ['backups', 'photos']);
  t.deepEqual(store.listTenantBuckets('globex'), ['gx']);
  t.deepEqual([...store.bucketOwners()].sort(), [['backups', 'acme'], ['gx', 'globex'], ['photos', 'acme']]);
  store.releaseBucket('photos');
  store.releaseBucket('photos');
  t.is(store.bucketOwner('photos'), undefined);
});

test('a resolved principal meets tenant isolation through the store', (t) => {
  const { store } = setup(t);
  store.createTenant({ name: 'globex' });
  store.assignBucket('gx', 'globex');
  const cred = store.createCredential({ tenant: 'acme', name: 'all', scopes: [{ families: ['object:read', 'object:list'], bucket: '*' }] });
  const result = store.resolveAccessKey(cred.accessKeyId);
  if (!result.ok) return t.fail();
  const decision = authorize(result.principal, { family: 'object:read', bucket: 'gx', key: 'x', bucketOwner: store.bucketOwner('gx') });
  t.like(decision, { allowed: false, layer: 'tenant' });
});

test('changes are audited without secrets', async (t) => {
  const { dir, store } = setup(t);
  const created = store.createCredential({ tenant: 'acme', name: 'a', scopes: SCOPES, actor: 'AKIAADMIN' });
  const rotated = store.rotateCredential(created.accessKeyId, { actor: 'operator' });
  store.revokeCredential(created.accessKeyId);
  const records = await queryAudit(dir);
  t.deepEqual(records.map((r) => r.action), ['tenant.create', 'credential.create', 'credential.rotate', 'credential.revoke']);
  t.like(records[1], { actor: 'AKIAADMIN', tenant: 'acme', accessKeyId: created.accessKeyId });
  const raw = readFileSync(join(dir, 'audit.log'), 'utf8');
  t.false(raw.includes(created.secretKey));
  t.false(raw.includes(rotated.secretKey));
  t.deepEqual((await queryAudit(dir, { accessKeyId: created.accessKeyId, action: 'credential.revoke' })).length, 1);
});

test('unowned buckets are adopted by root, owned ones left alone', (t) => {
  const { store } = setup(t);
  store.assignBucket('backups', 'acme');
  t.deepEqual(store.adoptUnownedBuckets(['backups', 'legacy', 'old']), ['legacy', 'old']);
  t.is(store.bucketOwner('legacy'), 'root');
  t.is(store.bucketOwner('backups'), 'acme');
  t.deepEqual(store.adoptUnownedBuckets(['legacy']), []);
});

test('ensureRoot refuses to take over an application credential id', (t) => {
  const { store } = setup(t);
  const app = store.createCredential({ tenant: 'acme', name: 'a', scopes: SCOPES });
  t.throws(() => store.ensureRoot({ accessKeyId: app.accessKeyId, secretKey: 'whatever-secret' }), { instanceOf: ConflictError });
  t.true(store.resolveAccessKey(app.accessKeyId).ok);
});

test('two stores opening one fresh directory agree on the master key and one root', (t) => {
  const dir = tempDataDir(t);
  const a = PolicyStore.open({ dataDir: dir });
  const b = PolicyStore.open({ dataDir: dir });
  t.teardown(() => { a.close(); b.close(); });
  const rootA = a.ensureRoot();
  const rootB = b.ensureRoot();
  t.is(rootB.accessKeyId, rootA.accessKeyId);
  t.false(rootB.created);
  t.deepEqual(secretsOf(b.resolveAccessKey(rootA.accessKeyId)), [rootA.secretKey!]);
});

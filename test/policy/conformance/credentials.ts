/**
 * Conformance: credentials, tenants, bucket ownership, the root bootstrap and the audit log, as every policy database
 * engine must keep them (run by conformance-sqlite.test.ts and conformance-postgres.test.ts).
 */
import type { ExecutionContext, TestFn } from 'ava';
import {
  authorize,
  ConflictError,
  ConsoleSignOuts,
  InvalidInputError,
  MasterKeyMismatchError,
  NotFoundError,
  queryAudit,
  type PolicyStore,
  type ResolveResult,
  type ScopeGrant,
} from '../../../policy/index.ts';
import { eventually, type PolicyEnv, type PolicyFactory } from './factory.ts';

const SCOPES: ScopeGrant[] = [{ families: ['object:read', 'object:write', 'object:list'], bucket: 'backups', prefix: 'host1/' }];

function secretsOf(result: ResolveResult): string[] {
  return result.ok ? result.secrets : [];
}

/** Registers the credential and tenancy tests against one engine. */
export function credentialSuite(test: TestFn, f: PolicyFactory): void {
  async function setup(t: ExecutionContext): Promise<{ store: PolicyStore; env: PolicyEnv }> {
    const env = await f.fresh(t);
    const store = await env.store();
    await store.createTenant({ name: 'acme', description: 'Acme Corp' });
    return { env, store };
  }

  test(`${f.engine}: create returns the secret once; show and list never do`, async (t) => {
    const { store } = await setup(t);
    const created = await store.createCredential({ tenant: 'acme', name: 'backup', description: 'nightly backup of host1', scopes: SCOPES });
    t.regex(created.accessKeyId, /^AKIA[A-Z2-7]{16}$/);
    t.is(created.secretKey.length, 40);
    t.like(created, { tenant: 'acme', name: 'backup', description: 'nightly backup of host1', status: 'active', isRoot: false });
    t.deepEqual(created.scopes, SCOPES);
    const shown = await store.showCredential(created.accessKeyId);
    t.truthy(shown);
    t.false('secretKey' in (shown ?? {}));
    t.false(JSON.stringify(await store.listCredentials()).includes(created.secretKey));
    t.false(JSON.stringify(await store.listCredentials({ tenant: 'acme' })).includes(created.secretKey));
    t.is((await store.listCredentials({ tenant: 'acme' })).length, 1);
  });

  test(`${f.engine}: resolve gives the secret and an app principal, and records last use`, async (t) => {
    const { store } = await setup(t);
    const created = await store.createCredential({ tenant: 'acme', name: 'backup', scopes: SCOPES });
    const result = await store.resolveAccessKey(created.accessKeyId);
    t.true(result.ok);
    if (!result.ok) return;
    t.deepEqual(result.secrets, [created.secretKey]);
    t.like(result.principal, { tenant: 'acme', accessKeyId: created.accessKeyId, subject: `app:${created.accessKeyId}`, isRoot: false });
    t.deepEqual(result.principal.scopes, SCOPES);
    // Last use is written without holding up the request, so it lands a moment later.
    t.true(await eventually(async () => (await store.showCredential(created.accessKeyId))?.lastUsedAt !== undefined));
    t.deepEqual(await store.resolveAccessKey('AKIANOSUCHKEY0000000'), { ok: false, reason: 'unknown' });
  });

  test(`${f.engine}: rotate without grace: the old secret stops at once`, async (t) => {
    const { store } = await setup(t);
    const created = await store.createCredential({ tenant: 'acme', name: 'backup', scopes: SCOPES });
    await store.resolveAccessKey(created.accessKeyId); // warm the cache
    const rotated = await store.rotateCredential(created.accessKeyId);
    t.not(rotated.secretKey, created.secretKey);
    t.is(rotated.previousSecretValidUntil, undefined);
    t.deepEqual(secretsOf(await store.resolveAccessKey(created.accessKeyId)), [rotated.secretKey]);
  });

  test(`${f.engine}: rotate with grace: both secrets verify until the grace period ends`, async (t) => {
    const { store } = await setup(t);
    const created = await store.createCredential({ tenant: 'acme', name: 'backup', scopes: SCOPES });
    const rotated = await store.rotateCredential(created.accessKeyId, { graceSeconds: 300 });
    t.truthy(rotated.previousSecretValidUntil);
    t.deepEqual(secretsOf(await store.resolveAccessKey(created.accessKeyId)), [rotated.secretKey, created.secretKey]);
    const later = new Date(Date.now() + 301_000);
    t.deepEqual(secretsOf(await store.resolveAccessKey(created.accessKeyId, later)), [rotated.secretKey]);
    // A second rotation without grace drops the grace secret too.
    const again = await store.rotateCredential(created.accessKeyId);
    t.deepEqual(secretsOf(await store.resolveAccessKey(created.accessKeyId)), [again.secretKey]);
    await t.throwsAsync(store.rotateCredential(created.accessKeyId, { graceSeconds: -1 }), { instanceOf: InvalidInputError });
  });

  test(`${f.engine}: revoke, expire and delete each refuse with a reason`, async (t) => {
    const { store } = await setup(t);
    const revoked = await store.createCredential({ tenant: 'acme', name: 'a', scopes: SCOPES });
    await store.resolveAccessKey(revoked.accessKeyId);
    await store.revokeCredential(revoked.accessKeyId);
    t.deepEqual(await store.resolveAccessKey(revoked.accessKeyId), { ok: false, reason: 'revoked', tenant: 'acme' });
    t.is((await store.showCredential(revoked.accessKeyId))?.status, 'revoked');
    await t.throwsAsync(store.rotateCredential(revoked.accessKeyId), { instanceOf: ConflictError });

    const expiresAt = new Date(Date.now() + 60_000);
    const expiring = await store.createCredential({ tenant: 'acme', name: 'b', scopes: SCOPES, expiresAt });
    t.true((await store.resolveAccessKey(expiring.accessKeyId)).ok);
    t.deepEqual(await store.resolveAccessKey(expiring.accessKeyId, new Date(expiresAt.getTime() + 1)), { ok: false, reason: 'expired', tenant: 'acme' });
    t.is((await store.showCredential(expiring.accessKeyId))?.expiresAt, expiresAt.toISOString());

    const deleted = await store.createCredential({ tenant: 'acme', name: 'c', scopes: SCOPES });
    await store.resolveAccessKey(deleted.accessKeyId);
    await store.deleteCredential(deleted.accessKeyId);
    t.deepEqual(await store.resolveAccessKey(deleted.accessKeyId), { ok: false, reason: 'unknown' });
    t.is(await store.showCredential(deleted.accessKeyId), undefined);
    await t.throwsAsync(store.deleteCredential(deleted.accessKeyId), { instanceOf: NotFoundError });
  });

  test(`${f.engine}: invalid credentials are refused`, async (t) => {
    const { store } = await setup(t);
    await t.throwsAsync(store.createCredential({ tenant: 'nope', name: 'a', scopes: SCOPES }), { instanceOf: NotFoundError });
    await t.throwsAsync(store.createCredential({ tenant: 'acme', name: '', scopes: SCOPES }), { instanceOf: InvalidInputError });
    await t.throwsAsync(store.createCredential({ tenant: 'acme', name: 'a', scopes: [{ families: ['nope' as 'admin'], bucket: 'bkt' }] }), { instanceOf: InvalidInputError });
  });

  test(`${f.engine}: a wrong master key is refused at open, naming both keys' references; the right one opens the secrets`, async (t) => {
    const { env, store } = await setup(t);
    const created = await store.createCredential({ tenant: 'acme', name: 'x', scopes: SCOPES });
    const wrong = Buffer.alloc(32, 7).toString('base64');
    const refused = await t.throwsAsync(env.store({ masterKey: wrong }), { instanceOf: MasterKeyMismatchError });
    t.regex(refused?.message ?? '', /reference [0-9a-f]{16}\) does not match .* \(reference [0-9a-f]{16}\)/);
    await t.throwsAsync(env.store({ masterKey: 'short' }), { instanceOf: InvalidInputError });
    const again = await env.store();
    t.deepEqual(secretsOf(await again.resolveAccessKey(created.accessKeyId)), [created.secretKey]);
  });

  test(`${f.engine}: revocation, rotation and tenant disable made through another node are seen within the bound`, async (t) => {
    const { env, store } = await setup(t);
    const second = await env.store();
    const a = await store.createCredential({ tenant: 'acme', name: 'a', scopes: SCOPES });
    const b = await store.createCredential({ tenant: 'acme', name: 'b', scopes: SCOPES });
    t.true((await second.resolveAccessKey(a.accessKeyId)).ok);
    t.true((await second.resolveAccessKey(a.accessKeyId)).ok); // now cached by the second node
    await store.revokeCredential(a.accessKeyId);
    await env.bound();
    t.deepEqual(await second.resolveAccessKey(a.accessKeyId), { ok: false, reason: 'revoked', tenant: 'acme' });

    t.deepEqual(secretsOf(await second.resolveAccessKey(b.accessKeyId)), [b.secretKey]);
    const rotated = await store.rotateCredential(b.accessKeyId);
    await env.bound();
    t.deepEqual(secretsOf(await second.resolveAccessKey(b.accessKeyId)), [rotated.secretKey]);

    await store.disableTenant('acme');
    await env.bound();
    t.deepEqual(await second.resolveAccessKey(b.accessKeyId), { ok: false, reason: 'tenant_disabled', tenant: 'acme' });
    await store.disableTenant('acme', { disabled: false });
    await env.bound();
    t.true((await second.resolveAccessKey(b.accessKeyId)).ok);

    await store.assignBucket('backups', 'acme');
    await env.bound();
    t.is(await second.bucketOwner('backups'), 'acme');
    await store.releaseBucket('backups');
    await env.bound();
    t.is(await second.bucketOwner('backups'), undefined);
  });

  test(`${f.engine}: ensureRoot generates once, then adopts a configured pair`, async (t) => {
    const store = await (await f.fresh(t)).store();
    const first = await store.ensureRoot();
    t.true(first.created);
    t.regex(first.accessKeyId, /^AKIA[A-Z2-7]{16}$/);
    t.is(first.secretKey?.length, 40);
    const second = await store.ensureRoot();
    t.deepEqual(second, { accessKeyId: first.accessKeyId, created: false, updated: false });
    const resolved = await store.resolveAccessKey(first.accessKeyId);
    t.like(resolved, { ok: true, principal: { isRoot: true, tenant: 'root' } });

    const given = { accessKeyId: 'AKIAGIVENGIVENGIVEN1', secretKey: 'given-secret-given-secret-given-secret-1' };
    t.like(await store.ensureRoot(given), { ...given, created: false, updated: true });
    t.like(await store.ensureRoot(given), { ...given, created: false, updated: false });
    t.deepEqual(await store.resolveAccessKey(first.accessKeyId), { ok: false, reason: 'unknown' });
    t.deepEqual(secretsOf(await store.resolveAccessKey(given.accessKeyId)), [given.secretKey]);
    t.like(await store.ensureRoot({ ...given, secretKey: 'changed-secret-0123456789' }), { updated: true });
    t.deepEqual(secretsOf(await store.resolveAccessKey(given.accessKeyId)), ['changed-secret-0123456789']);
    t.is((await store.listCredentials({ tenant: 'root' })).filter((c) => c.isRoot).length, 1);
    await t.throwsAsync(store.ensureRoot({ accessKeyId: 'AKIAONLYID' }), { instanceOf: InvalidInputError });
  });

  test(`${f.engine}: tenants: create, list, show, disable, delete only without buckets`, async (t) => {
    const { store } = await setup(t);
    await t.throwsAsync(store.createTenant({ name: 'acme' }), { instanceOf: ConflictError });
    await t.throwsAsync(store.createTenant({ name: 'Bad Name' }), { instanceOf: InvalidInputError });
    t.deepEqual((await store.listTenants()).map((x) => x.name), ['acme', 'root']);
    const cred = await store.createCredential({ tenant: 'acme', name: 'a', scopes: SCOPES });
    await store.assignBucket('backups', 'acme');
    t.like(await store.showTenant('acme'), { name: 'acme', description: 'Acme Corp', disabled: false, bucketCount: 1, credentialCount: 1 });
    await t.throwsAsync(store.deleteTenant('acme'), { instanceOf: ConflictError });
    await t.throwsAsync(store.disableTenant('root'), { instanceOf: InvalidInputError });
    await t.throwsAsync(store.deleteTenant('root'), { instanceOf: InvalidInputError });
    await store.releaseBucket('backups');
    await store.deleteTenant('acme');
    t.is(await store.showTenant('acme'), undefined);
    t.deepEqual(await store.resolveAccessKey(cred.accessKeyId), { ok: false, reason: 'unknown' });
  });

  test(`${f.engine}: bucket ownership: assign, conflict, reassign, list, release`, async (t) => {
    const { store } = await setup(t);
    await store.createTenant({ name: 'globex' });
    await store.assignBucket('backups', 'acme');
    await store.assignBucket('backups', 'acme'); // idempotent
    await store.assignBucket('photos', 'acme');
    t.is(await store.bucketOwner('backups'), 'acme');
    await t.throwsAsync(store.assignBucket('backups', 'globex'), { instanceOf: ConflictError });
    await t.throwsAsync(store.assignBucket('x', 'nope'), { instanceOf: NotFoundError });
    await store.assignBucket('gx', 'root');
    await store.assignBucket('gx', 'globex', { reassign: true });
    t.deepEqual(await store.listTenantBuckets('acme'), ['backups', 'photos']);
    t.deepEqual(await store.listTenantBuckets('globex'), ['gx']);
    t.deepEqual([...(await store.bucketOwners())].sort(), [['backups', 'acme'], ['gx', 'globex'], ['photos', 'acme']]);
    await store.releaseBucket('photos');
    await store.releaseBucket('photos');
    t.is(await store.bucketOwner('photos'), undefined);
  });

  test(`${f.engine}: a resolved principal meets tenant isolation through the store`, async (t) => {
    const { store } = await setup(t);
    await store.createTenant({ name: 'globex' });
    await store.assignBucket('gx', 'globex');
    const cred = await store.createCredential({ tenant: 'acme', name: 'all', scopes: [{ families: ['object:read', 'object:list'], bucket: '*' }] });
    const result = await store.resolveAccessKey(cred.accessKeyId);
    if (!result.ok) return t.fail();
    const decision = authorize(result.principal, { family: 'object:read', bucket: 'gx', key: 'x', bucketOwner: await store.bucketOwner('gx') });
    t.like(decision, { allowed: false, layer: 'tenant' });
  });

  test(`${f.engine}: changes are audited without secrets`, async (t) => {
    const { store } = await setup(t);
    const created = await store.createCredential({ tenant: 'acme', name: 'a', scopes: SCOPES, actor: 'AKIAADMIN' });
    const rotated = await store.rotateCredential(created.accessKeyId, { actor: 'operator' });
    await store.revokeCredential(created.accessKeyId);
    const records = await queryAudit(store.database);
    t.deepEqual(records.map((r) => r.action), ['tenant.create', 'credential.create', 'credential.rotate', 'credential.revoke']);
    t.like(records[1], { actor: 'AKIAADMIN', tenant: 'acme', accessKeyId: created.accessKeyId });
    const raw = JSON.stringify(records);
    t.false(raw.includes(created.secretKey));
    t.false(raw.includes(rotated.secretKey));
    t.deepEqual((await queryAudit(store.database, { accessKeyId: created.accessKeyId, action: 'credential.revoke' })).length, 1);
  });

  test(`${f.engine}: unowned buckets are adopted by root, owned ones left alone`, async (t) => {
    const { store } = await setup(t);
    await store.assignBucket('backups', 'acme');
    t.deepEqual(await store.adoptUnownedBuckets(['backups', 'legacy', 'old']), ['legacy', 'old']);
    t.is(await store.bucketOwner('legacy'), 'root');
    t.is(await store.bucketOwner('backups'), 'acme');
    t.deepEqual(await store.adoptUnownedBuckets(['legacy']), []);
  });

  test(`${f.engine}: ensureRoot refuses to take over an application credential id`, async (t) => {
    const { store } = await setup(t);
    const app = await store.createCredential({ tenant: 'acme', name: 'a', scopes: SCOPES });
    await t.throwsAsync(store.ensureRoot({ accessKeyId: app.accessKeyId, secretKey: 'whatever-secret' }), { instanceOf: ConflictError });
    t.true((await store.resolveAccessKey(app.accessKeyId)).ok);
  });

  test(`${f.engine}: two nodes opening one fresh database together agree on the master key and one root`, async (t) => {
    const env = await f.fresh(t);
    const [a, b] = await Promise.all([env.store(), env.store()]);
    // PostgreSQL nodes race for real. SQLite's write lock blocks the thread while it waits, so two connections in
    // one process take turns (two processes would wait for each other the same way).
    const [rootA, rootB] = f.engine === 'postgres' ? await Promise.all([a.ensureRoot(), b.ensureRoot()]) : [await a.ensureRoot(), await b.ensureRoot()];
    const [made] = [rootA, rootB].filter((r) => r.created);
    t.truthy(made, 'exactly one of them made the root');
    t.is(rootB.accessKeyId, rootA.accessKeyId);
    t.false(rootA.created && rootB.created);
    t.deepEqual(secretsOf(await a.resolveAccessKey(made!.accessKeyId)), [made!.secretKey!]);
    t.deepEqual(secretsOf(await b.resolveAccessKey(made!.accessKeyId)), [made!.secretKey!]);
  });

  test(`${f.engine}: a console sign-out on one node is seen by another; rows go once their session has expired`, async (t) => {
    const env = await f.fresh(t);
    const [a, b] = await Promise.all([env.open(), env.open()]);
    const [onA, onB] = [new ConsoleSignOuts(a), new ConsoleSignOuts(b)];
    const now = Date.now();
    t.false(await onB.has('sess-Q1'), 'node B has read (and cached) the session as live');
    await onA.signOut({ id: 'sess-Q1', accessKeyId: 'AKIAEXAMPLE', expiresAt: now + 1000 }, 'acme', now);
    t.true(await onA.has('sess-Q1'));
    await env.bound();
    t.true(await onB.has('sess-Q1'));
    // A later sign-out, after sess-Q1 would have expired, purges sess-Q1's row: the table holds only sessions still alive.
    await onB.signOut({ id: 'sess-Q2', accessKeyId: 'AKIAEXAMPLE', expiresAt: now + 5000 }, 'acme', now + 1000);
    const ids = await a.db('policy').selectFrom('console_signouts').select('id').execute();
    t.deepEqual(ids.map((r) => r.id), ['sess-Q2']);
    const audit = await queryAudit(a, { action: 'console.sign-out' });
    t.is(audit.length, 2);
    t.true(audit.every((r) => r.actor === 'AKIAEXAMPLE' && r.tenant === 'acme' && !JSON.stringify(r).includes('sess-Q1')));
  });
}

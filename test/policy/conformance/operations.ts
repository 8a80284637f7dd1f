/**
 * Conformance: what the operator's tools keep in the policy database, on every engine — a tenant lockdown and a
 * tenant's every credential revoked (in force on another node within the bound, for credentials, sessions' tenant
 * check and capabilities alike), the access records every node writes and any node reads, recorded access audit
 * runs (which move no revision), and the whole-tenant reads `anvil audit check` makes of capabilities and
 * relationships (run by conformance-sqlite.test.ts and conformance-postgres.test.ts).
 */
import type { ExecutionContext, TestFn } from 'ava';
import {
  AccessRecords,
  appendAudit,
  CapabilityStore,
  ConflictError,
  objectScope,
  queryAudit,
  SessionStore,
  type PolicyStore,
  type ScopeGrant,
} from '../../../policy/index.ts';
import { compileSchema, DEFAULT_OBJECT_SCHEMA, Relationships } from '../../../policy/relationships/index.ts';
import type { PolicyEnv, PolicyFactory } from './factory.ts';

const SCOPES: ScopeGrant[] = [{ families: ['object:read'], bucket: 'docs', prefix: 'pub/' }];
const AUDIT = { actor: 'operator', reason: 'test', requestId: 'req-1' };
const DAY_MS = 86_400_000;

/** Registers the operator-tool tests against one engine. */
export function operationsSuite(test: TestFn, f: PolicyFactory): void {
  /** Two nodes on one fresh database, tenant acme made through the first. */
  async function twoNodes(t: ExecutionContext): Promise<{ env: PolicyEnv; a: PolicyStore; b: PolicyStore }> {
    const env = await f.fresh(t);
    const a = await env.store();
    const b = await env.store();
    await a.createTenant({ name: 'acme' });
    return { env, a, b };
  }

  test(`${f.engine}: a lockdown made through one node refuses the tenant's credentials, sessions and capabilities on another within the bound; only a lift undoes it`, async (t) => {
    const { env, a, b } = await twoNodes(t);
    const key = Buffer.from(env.masterKey, 'base64');
    const app = await a.createCredential({ tenant: 'acme', name: 'job', scopes: SCOPES });
    const revokedBefore = await a.createCredential({ tenant: 'acme', name: 'old', scopes: SCOPES });
    await a.revokeCredential(revokedBefore.accessKeyId);
    const capsA = CapabilityStore.open({ database: a.database, masterKey: key });
    const capsB = CapabilityStore.open({ database: b.database, masterKey: key });
    const sessionsB = SessionStore.open({ database: b.database, masterKey: key });
    const minted = await capsA.mint('acme', objectScope('docs', 'pub/'), { actions: ['read'] });
    // Node B warms every cache first, so what follows is a cache being dropped, not a first read.
    t.true((await b.resolveAccessKey(app.accessKeyId)).ok);
    t.is((await capsB.verify(minted.capability)).tenant, 'acme');
    t.true(await sessionsB.tenantEnabled('acme'));

    const cutOff = await a.lockdownTenant('acme', { reason: 'key leaked', actor: 'root-key' });
    t.deepEqual(cutOff, { credentials: 1, roles: 0, providers: 0, capabilities: 1 });
    await env.bound();
    t.deepEqual(await b.resolveAccessKey(app.accessKeyId), { ok: false, reason: 'tenant_disabled', tenant: 'acme' });
    await t.throwsAsync(capsB.verify(minted.capability), { message: /tenant acme is disabled or gone/ });
    t.false(await sessionsB.tenantEnabled('acme'));
    t.like(await b.showTenant('acme'), { disabled: true, lockedDown: true });
    // A second lockdown changes nothing and records nothing; enable is refused on every node.
    await a.lockdownTenant('acme', { reason: 'again' });
    await t.throwsAsync(b.disableTenant('acme', { disabled: false }), { instanceOf: ConflictError, message: /locked down: lift the lockdown/ });
    await t.throwsAsync(b.disableTenant('acme'), { instanceOf: ConflictError });
    await t.throwsAsync(a.lockdownTenant('acme', { reason: '' }), { message: /needs a reason/ });

    await b.lockdownTenant('acme', { lift: true, reason: 'rotated', actor: 'root-key' });
    await env.bound();
    t.true((await a.resolveAccessKey(app.accessKeyId)).ok);
    t.deepEqual(await a.resolveAccessKey(revokedBefore.accessKeyId), { ok: false, reason: 'revoked', tenant: 'acme' }, 'what was revoked stays revoked');
    t.is((await capsA.verify(minted.capability)).tenant, 'acme');
    await t.throwsAsync(a.lockdownTenant('acme', { lift: true, reason: 'twice' }), { instanceOf: ConflictError, message: /not locked down/ });
    const audited = await queryAudit(b.database, { tenant: 'acme' });
    const lockdown = audited.filter((r) => r.action === 'tenant.lockdown');
    t.is(lockdown.length, 1);
    t.like(lockdown[0]!, { actor: 'root-key', details: { reason: 'key leaked', cutOff, wasDisabled: false } });
    t.like(audited.find((r) => r.action === 'tenant.lockdown.lift'), { actor: 'root-key', details: { reason: 'rotated' } });
  });

  test(`${f.engine}: every credential of a tenant revoked through one node is refused on another within the bound`, async (t) => {
    const { env, a, b } = await twoNodes(t);
    await a.createTenant({ name: 'other' });
    const made = await Promise.all(['one', 'two', 'three'].map((name) => a.createCredential({ tenant: 'acme', name, scopes: SCOPES })));
    const bystander = await a.createCredential({ tenant: 'other', name: 'keep', scopes: SCOPES });
    for (const c of made) t.true((await b.resolveAccessKey(c.accessKeyId)).ok);
    for (const c of await a.listCredentials({ tenant: 'acme' })) await a.revokeCredential(c.accessKeyId, { actor: 'root-key' });
    await env.bound();
    for (const c of made) t.deepEqual(await b.resolveAccessKey(c.accessKeyId), { ok: false, reason: 'revoked', tenant: 'acme' });
    t.true((await b.resolveAccessKey(bystander.accessKeyId)).ok);
    t.is((await queryAudit(b.database, { tenant: 'acme', action: 'credential.revoke' })).length, 3);
  });

  test(`${f.engine}: access records written by every node are read by any node, once per day and combination`, async (t) => {
    const { a, b } = await twoNodes(t);
    const onA = new AccessRecords(a.database);
    const onB = new AccessRecords(b.database);
    const today = new Date();
    const old = new Date(Date.now() - 45 * DAY_MS);
    onA.record({ accessKeyId: 'AKIAONE', family: 'object:read', remoteAddress: '10.0.0.1', userAgent: 'job-a/1' });
    onA.record({ accessKeyId: 'AKIAONE', family: 'object:read', remoteAddress: '10.0.0.1', userAgent: 'job-a/1' });
    onB.record({ accessKeyId: 'AKIAONE', family: 'object:read', remoteAddress: '10.0.0.1', userAgent: 'job-a/1' });
    onB.record({ accessKeyId: 'AKIAONE', family: 'object:write', remoteAddress: '10.0.0.2', userAgent: 'x'.repeat(500) });
    onB.record({ accessKeyId: 'AKIATWO', family: 'object:list', time: old });
    await onB.close();
    const usage = await onA.usage({ since: new Date(Date.now() - 30 * DAY_MS) });
    t.deepEqual(usage.map((u) => u.accessKeyId), ['AKIAONE'], 'the use 45 days ago is outside a 30-day window');
    t.deepEqual(usage[0]!.families, ['object:read', 'object:write']);
    t.deepEqual(usage[0]!.remoteAddresses, ['10.0.0.1', '10.0.0.2']);
    t.deepEqual(usage[0]!.userAgents, ['job-a/1', 'x'.repeat(200)]);
    t.is(usage[0]!.lastDay, new Date(Math.floor(today.getTime() / DAY_MS) * DAY_MS).toISOString());
    const rows = await a.database.db('policy').selectFrom('credential_uses').select('day').where('access_key_id', '=', 'AKIAONE').execute();
    t.is(rows.length, 2, 'the same use from two nodes is one row');
    t.deepEqual((await onB.usage({ since: old })).map((u) => u.accessKeyId), ['AKIAONE', 'AKIATWO']);
  });

  test(`${f.engine}: a recorded audit run is an audit row every node reads, and moves no revision`, async (t) => {
    const { env, a, b } = await twoNodes(t);
    const app = await a.createCredential({ tenant: 'acme', name: 'job', scopes: SCOPES });
    t.true((await b.resolveAccessKey(app.accessKeyId)).ok);
    const revision = async () => (await a.database.db('policy').selectFrom('revisions').select('value').where('name', '=', 'policy').executeTakeFirstOrThrow()).value;
    const before = await revision();
    await appendAudit(a.database, { actor: 'AKIAROOT', action: 'audit.check', tenant: 'acme', details: { audited: 'acme', counts: { high: 1 }, findings: ['d1'] } });
    t.is(await revision(), before);
    await env.bound();
    const runs = await queryAudit(b.database, { action: 'audit.check', tenant: 'acme' });
    t.is(runs.length, 1);
    t.like(runs[0]!, { actor: 'AKIAROOT', tenant: 'acme', details: { audited: 'acme', findings: ['d1'] } });
    t.truthy(runs[0]!.node);
  });

  test(`${f.engine}: the audit's capability reads: every mint with its revocation and key reset, and each root key's age`, async (t) => {
    const { env, a } = await twoNodes(t);
    await a.createTenant({ name: 'other' });
    const caps = CapabilityStore.open({ database: a.database, masterKey: Buffer.from(env.masterKey, 'base64') });
    const first = await caps.mint('acme', objectScope('docs', 'pub/'), { actions: ['read'], mintedBy: 'AKIAMAKER' });
    const second = await caps.mint('acme', objectScope('docs', 'team/'), { actions: ['read', 'list'] });
    await caps.mint('other', objectScope('else'), {});
    await caps.revoke(second.id);
    let mints = await caps.listMints({ tenant: 'acme' });
    t.deepEqual(mints.map((m) => [m.id, m.revoked, m.keyReset]), [[first.id, false, false], [second.id, true, false]]);
    t.like(mints[0]!, { tenant: 'acme', mintedBy: 'AKIAMAKER', actions: ['read'] });
    t.is((await caps.listMints()).length, 3);
    t.deepEqual((await caps.rootKeys()).map((k) => [k.tenant, k.generation]), [['acme', 1], ['other', 1]]);
    await new Promise((r) => setTimeout(r, 5));
    await caps.resetRootKey('acme');
    mints = await caps.listMints({ tenant: 'acme' });
    t.true(mints.every((m) => m.keyReset), 'a reset key ends every earlier mint');
    t.deepEqual((await caps.rootKeys({ tenant: 'acme' })).map((k) => k.generation), [2]);
  });

  test(`${f.engine}: the audit's relationship reads: schema history, caveated tuples, app subjects, and tuples no audited write made`, async (t) => {
    const env = await f.fresh(t);
    const database = await env.open();
    const rel = Relationships.open({ database, gcIntervalMs: 0 });
    await rel.writeSchema('acme', DEFAULT_OBJECT_SCHEMA, AUDIT);
    await rel.write('acme', [
      { op: 'touch', tuple: 'bucket:docs#reader@user:amy[ip_allowlist:{"allowed":["10.0.0.0/8"]}]' },
      { op: 'touch', tuple: 'bucket:docs#reader@app:AKIAAPP' },
    ], AUDIT);
    await rel.importTuples('acme', 'bucket:docs#writer@user:bob\n', AUDIT);
    await rel.writeSchema('acme', `${DEFAULT_OBJECT_SCHEMA}\n`, { ...AUDIT, actor: 'AKIAADMIN' });
    // A row put into the table behind the gateway's back, at the current revision: no change event names it.
    await database.db('relationships').insertInto('tuples').values({
      tenant: 'acme', resource_type: 'bucket', resource_id: 'docs', relation: 'owner', subject_relation: '', subject_type: 'user', subject_id: 'mallory',
      caveat_name: null, caveat_hash: null, caveat_context: null, expires_at: null, created_revision: await rel.store.revision('acme'),
    }).execute();
    const history = await rel.store.schemaHistory('acme');
    t.deepEqual(history.map((h) => h.actor), ['operator', 'AKIAADMIN']);
    t.true(history.every((h) => h.text.includes('caveat ip_allowlist')));
    const caveated = await rel.store.caveatedTuples('acme');
    t.deepEqual(caveated.map((c) => [c.subject.id, c.caveat?.name, c.caveat?.hash]), [['amy', 'ip_allowlist', compileSchema(DEFAULT_OBJECT_SCHEMA).caveats.get('ip_allowlist')?.hash]]);
    t.deepEqual(await rel.store.subjectIds('acme', 'app'), ['AKIAAPP']);
    const unaudited = await rel.store.unauditedTuples('acme');
    t.is(unaudited.total, 1);
    t.deepEqual(unaudited.tuples.map((u) => `${u.relation}@${u.subject.id}`), ['owner@mallory']);
    t.deepEqual(await rel.store.unauditedTuples('other'), { tuples: [], total: 0 });
  });
}

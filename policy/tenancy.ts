/**
 * Tenants and bucket ownership. A tenant is the isolation boundary: every bucket belongs to exactly one, and a
 * disabled tenant's credentials stop working on every node within the consistency bound.
 */

import { randomBytes } from 'node:crypto';
import { ConflictError, InvalidInputError, NotFoundError } from './errors.ts';
import { StoreBase, type Actor, type PolicyTransaction } from './store-base.ts';
import * as schema from './store-schema.ts';

const TENANT_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** What a lockdown cuts off: the tenant's live credentials, its roles and providers, and unrevoked capabilities. */
export interface LockdownReach {
  credentials: number;
  roles: number;
  providers: number;
  capabilities: number;
}

async function lockdownReach(trx: PolicyTransaction, tenant: string): Promise<LockdownReach> {
  const count = async (q: { executeTakeFirstOrThrow(): Promise<{ n: number | string | bigint }> }) => Number((await q.executeTakeFirstOrThrow()).n);
  const n = trx.fn.countAll<number>().as('n');
  return {
    credentials: await count(trx.selectFrom('credentials').select(n).where('tenant', '=', tenant).where('revoked_at', 'is', null)),
    roles: await count(trx.selectFrom('sts_roles').select(n).where('tenant', '=', tenant)),
    providers: await count(trx.selectFrom('sts_oidc_providers').select(n).where('tenant', '=', tenant)),
    capabilities: await count(
      trx
        .selectFrom('capability_mints as m')
        .select(n)
        .where('m.tenant', '=', tenant)
        .where(({ not, exists, selectFrom }) => not(exists(selectFrom('capability_revocations as r').select('r.id').whereRef('r.id', '=', 'm.id')))),
    ),
  };
}

/** The tenant and bucket-ownership half of the policy store. */
export abstract class TenancyStore extends StoreBase {
  /**
   * The tenant owning a bucket, or undefined when no tenant does; cached, so cheap on every request. `now`: as of
   * this call rather than of the current request's start (a write's last check; ChangeSignal.sync).
   */
  async bucketOwner(bucket: string, options: { now?: boolean } = {}): Promise<string | undefined> {
    const owner = await this.cache.bucket(bucket, options.now);
    return owner === false ? undefined : owner.tenant;
  }

  // ── tenants ────────────────────────────────────────────────────────────────────────────────────────────────────

  /** Creates a tenant (lowercase letters, digits, `.`, `_`, `-`; up to 63 characters). */
  async createTenant(options: { name: string; description?: string } & Actor): Promise<schema.TenantInfo> {
    const { name } = options;
    const description = options.description ?? '';
    if (!TENANT_NAME.test(name)) throw new InvalidInputError('tenant name must be 1-63 lowercase letters, digits, ".", "_" or "-"');
    await this.commit(async (trx) => {
      if ((await this.tenantRows(trx).where('t.name', '=', name).executeTakeFirst()) !== undefined) throw new ConflictError(`tenant ${name} exists`);
      await trx.insertInto('tenants').values({ name, id: randomBytes(12).toString('hex'), description, disabled: 0, created_at: Date.now() }).execute();
      return { result: undefined, change: { actor: options.actor, action: 'tenant.create', tenant: name, details: { description } } };
    });
    return this.requireTenant(name);
  }

  private tenantRows(db: PolicyTransaction | StoreBase['db']) {
    return db
      .selectFrom('tenants as t')
      .selectAll('t')
      .select((eb) => [
        eb.selectFrom('buckets as b').select(eb.fn.countAll<number>().as('n')).whereRef('b.tenant', '=', 't.name').as('bucket_count'),
        eb.selectFrom('credentials as c').select(eb.fn.countAll<number>().as('n')).whereRef('c.tenant', '=', 't.name').as('credential_count'),
      ]);
  }

  /** Every tenant, the system tenant included. */
  async listTenants(): Promise<schema.TenantInfo[]> {
    return ((await this.tenantRows(this.db).orderBy('t.name').execute()) as schema.TenantRow[]).map(schema.tenantInfo);
  }

  /** One tenant with its bucket and credential counts, or undefined. */
  async showTenant(name: string): Promise<schema.TenantInfo | undefined> {
    const row = await this.tenantRows(this.db).where('t.name', '=', name).executeTakeFirst();
    return row === undefined ? undefined : schema.tenantInfo(row as schema.TenantRow);
  }

  /** The immutable id of the tenant that has this name now, or undefined. */
  async tenantId(name: string): Promise<string | undefined> {
    return (await this.db.selectFrom('tenants').select('id').where('name', '=', name).executeTakeFirst())?.id;
  }

  protected async requireTenant(name: string): Promise<schema.TenantInfo> {
    const info = await this.showTenant(name);
    if (info === undefined) throw new NotFoundError(`no tenant ${name}`);
    return info;
  }

  /** Disables (or with `disabled: false` re-enables) a tenant; a disabled tenant's credentials stop working. */
  async disableTenant(name: string, options: { disabled?: boolean } & Actor = {}): Promise<void> {
    const disabled = options.disabled ?? true;
    if (name === schema.ROOT_TENANT) throw new InvalidInputError('the system tenant cannot be disabled');
    await this.commit(async (trx) => {
      const row = await trx.selectFrom('tenants').select('disabled').where('name', '=', name).executeTakeFirst();
      if (row === undefined) throw new NotFoundError(`no tenant ${name}`);
      // Decided under the write lock, so a lockdown another node commits first is never undone by an enable.
      if (row.disabled === schema.TENANT_STATE.lockedDown) throw new ConflictError(`tenant ${name} is locked down: lift the lockdown instead (anvil tenant lockdown ${name} --lift)`);
      const state = disabled ? schema.TENANT_STATE.disabled : schema.TENANT_STATE.enabled;
      await trx.updateTable('tenants').set({ disabled: state }).where('name', '=', name).execute();
      return { result: undefined, change: { actor: options.actor, action: disabled ? 'tenant.disable' : 'tenant.enable', tenant: name } };
    });
  }

  /**
   * Locks a tenant down (an emergency stop after a leaked key): every credential, session, capability and share link
   * of the tenant is refused from its next request on every process, exactly as for a disabled tenant, but only
   * `lift` undoes it (`tenant enable` is refused), and both are audited with the reason and what was cut off.
   * Lifting returns the tenant to enabled; what was revoked meanwhile stays revoked. Returns the counts cut off.
   */
  async lockdownTenant(name: string, options: { lift?: boolean; reason: string } & Actor): Promise<LockdownReach> {
    if (name === schema.ROOT_TENANT) throw new InvalidInputError('the system tenant cannot be locked down');
    if (typeof options.reason !== 'string' || options.reason.trim() === '') throw new InvalidInputError('a lockdown needs a reason');
    const lift = options.lift === true;
    return this.commit(async (trx) => {
      const row = await trx.selectFrom('tenants').select('disabled').where('name', '=', name).executeTakeFirst();
      if (row === undefined) throw new NotFoundError(`no tenant ${name}`);
      const current = row.disabled;
      const reach = await lockdownReach(trx, name);
      if (lift && current !== schema.TENANT_STATE.lockedDown) throw new ConflictError(`tenant ${name} is not locked down`);
      if (!lift && current === schema.TENANT_STATE.lockedDown) return { result: reach };
      const state = lift ? schema.TENANT_STATE.enabled : schema.TENANT_STATE.lockedDown;
      await trx.updateTable('tenants').set({ disabled: state }).where('name', '=', name).execute();
      const details = { reason: options.reason, ...(lift ? {} : { cutOff: reach, wasDisabled: current === schema.TENANT_STATE.disabled }) };
      return { result: reach, change: { actor: options.actor, action: lift ? 'tenant.lockdown.lift' : 'tenant.lockdown', tenant: name, details } };
    });
  }

  /**
   * Deletes a tenant and everything of it in the policy store: credentials, roles, OpenID Connect providers,
   * capability root keys, mints and revocations (sessions, which carry the tenant's id, die with it). Refused while
   * it owns buckets. Its relationship schema and tuples live in their own store: the caller purges them.
   */
  async deleteTenant(name: string, options: Actor = {}): Promise<void> {
    if (name === schema.ROOT_TENANT) throw new InvalidInputError('the system tenant cannot be deleted');
    await this.requireTenant(name);
    await this.commit(async (trx) => {
      const { n } = await trx.selectFrom('buckets').select((eb) => eb.fn.countAll<number>().as('n')).where('tenant', '=', name).executeTakeFirstOrThrow();
      if (Number(n) > 0) throw new ConflictError(`tenant ${name} still owns ${n} bucket(s)`);
      for (const table of schema.TENANT_OWNED_TABLES) await trx.deleteFrom(table).where('tenant', '=', name).execute();
      await trx.deleteFrom('tenants').where('name', '=', name).execute();
      return { result: undefined, change: { actor: options.actor, action: 'tenant.delete', tenant: name } };
    });
  }

  // ── buckets ────────────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Records that a tenant owns a bucket; refused (ConflictError) when another tenant owns it, unless `reassign` (an
   * operator move). With `keepOwner` a bucket that already has an owner keeps it, unchanged (root creating a name
   * assigned beforehand). Resolves with the owner the bucket has afterwards.
   */
  async assignBucket(bucket: string, tenant: string, options: { reassign?: boolean; keepOwner?: boolean } & Actor = {}): Promise<string> {
    await this.requireTenant(tenant);
    return this.commit(async (trx) => {
      const current = await this.ownerRow(trx, bucket);
      if (current === tenant || (current !== undefined && options.keepOwner === true)) return { result: current };
      if (current !== undefined && options.reassign !== true) throw new ConflictError(`bucket ${bucket} is owned by another tenant`);
      await trx
        .insertInto('buckets')
        .values({ name: bucket, tenant, assigned_at: Date.now(), governed: 0 })
        .onConflict((oc) => oc.column('name').doUpdateSet((eb) => ({ tenant: eb.ref('excluded.tenant'), assigned_at: eb.ref('excluded.assigned_at') })))
        .execute();
      const action = current === undefined ? 'bucket.assign' : 'bucket.reassign';
      return { result: tenant, change: { actor: options.actor, action, tenant, bucket, details: current ? { from: current } : undefined } };
    });
  }

  /** Gives every bucket in `names` that has no owner to `tenant` (root by default), e.g. an upstream's existing buckets. */
  async adoptUnownedBuckets(names: Iterable<string>, tenant: string = schema.ROOT_TENANT, options: Actor = {}): Promise<string[]> {
    await this.requireTenant(tenant);
    return this.commit(async (trx) => {
      const adopted: string[] = [];
      for (const name of names) {
        const inserted = await trx
          .insertInto('buckets')
          .values({ name, tenant, assigned_at: Date.now(), governed: 0 })
          .onConflict((oc) => oc.column('name').doNothing())
          .executeTakeFirst();
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0) adopted.push(name);
      }
      const change = adopted.length > 0 ? { actor: options.actor ?? 'system', action: 'bucket.adopt', tenant, details: { buckets: adopted } } : undefined;
      return { result: adopted, change };
    });
  }

  /** Forgets a bucket's owner (after DeleteBucket). */
  async releaseBucket(bucket: string, options: Actor = {}): Promise<void> {
    await this.commit(async (trx) => {
      const current = await this.ownerRow(trx, bucket);
      if (current === undefined) return { result: undefined };
      await trx.deleteFrom('buckets').where('name', '=', bucket).execute();
      return { result: undefined, change: { actor: options.actor, action: 'bucket.release', tenant: current, bucket } };
    });
  }

  private async ownerRow(trx: PolicyTransaction, bucket: string): Promise<string | undefined> {
    return (await trx.selectFrom('buckets').select('tenant').where('name', '=', bucket).executeTakeFirst())?.tenant;
  }

  /** Whether relationships govern a bucket's objects (besides scopes); cached like the owner, and as fresh. */
  async bucketGoverned(bucket: string): Promise<boolean> {
    const owner = await this.cache.bucket(bucket);
    return owner !== false && owner.governed;
  }

  /** Turns relationship governance of an owned bucket on or off; audited as bucket.govern / bucket.ungovern. */
  async setBucketGoverned(bucket: string, governed: boolean, options: Actor = {}): Promise<void> {
    await this.commit(async (trx) => {
      const tenant = await this.ownerRow(trx, bucket);
      if (tenant === undefined) throw new NotFoundError(`no bucket ${bucket}`);
      const flag = governed ? 1 : 0;
      const updated = await trx.updateTable('buckets').set({ governed: flag }).where('name', '=', bucket).where('governed', '!=', flag).executeTakeFirst();
      const action = governed ? 'bucket.govern' : 'bucket.ungovern';
      return { result: undefined, change: Number(updated.numUpdatedRows) > 0 ? { actor: options.actor, action, tenant, bucket } : undefined };
    });
  }

  /** The governed buckets among those owned, by name. */
  async governedBuckets(): Promise<string[]> {
    return (await this.db.selectFrom('buckets').select('name').where('governed', '=', 1).orderBy('name').execute()).map((r) => r.name);
  }

  /** The buckets a tenant owns, by name. */
  async listTenantBuckets(tenant: string): Promise<string[]> {
    return (await this.db.selectFrom('buckets').select('name').where('tenant', '=', tenant).orderBy('name').execute()).map((r) => r.name);
  }

  /** Every owned bucket and its tenant. */
  async bucketOwners(): Promise<Map<string, string>> {
    const rows = await this.db.selectFrom('buckets').select(['name', 'tenant']).execute();
    return new Map(rows.map((row) => [row.name, row.tenant]));
  }
}

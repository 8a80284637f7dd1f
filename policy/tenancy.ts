/**
 * Tenants and bucket ownership. A tenant is the isolation boundary: every bucket belongs to exactly one, and a
 * disabled tenant's credentials stop working on every process at their next request.
 */

import type Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { ConflictError, InvalidInputError, NotFoundError } from './errors.ts';
import { StoreBase, type Actor } from './store-base.ts';
import * as schema from './store-schema.ts';

const TENANT_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const TENANT_SELECT = `SELECT t.*,
    (SELECT count(*) FROM buckets b WHERE b.tenant = t.name) AS bucket_count,
    (SELECT count(*) FROM credentials c WHERE c.tenant = t.name) AS credential_count
  FROM tenants t`;

/** The tenant and bucket-ownership half of the policy store. */
export abstract class TenancyStore extends StoreBase {
  /** The tenant owning a bucket, or undefined when no tenant does; cached, so cheap on every request. */
  bucketOwner(bucket: string): string | undefined {
    return this.cache.bucketOwner(bucket);
  }

  // ── tenants ────────────────────────────────────────────────────────────────────────────────────────────────────

  /** Creates a tenant (lowercase letters, digits, `.`, `_`, `-`; up to 63 characters). */
  createTenant(options: { name: string; description?: string } & Actor): schema.TenantInfo {
    const { name } = options;
    const description = options.description ?? '';
    if (!TENANT_NAME.test(name)) throw new InvalidInputError('tenant name must be 1-63 lowercase letters, digits, ".", "_" or "-"');
    if (this.showTenant(name) !== undefined) throw new ConflictError(`tenant ${name} exists`);
    this.change({ actor: options.actor, action: 'tenant.create', tenant: name, details: { description } }, () =>
      this.db.prepare('INSERT INTO tenants (name, id, description, created_at) VALUES (?, ?, ?, ?)').run(name, randomBytes(12).toString('hex'), description, Date.now()),
    );
    return this.requireTenant(name);
  }

  /** Every tenant, the system tenant included. */
  listTenants(): schema.TenantInfo[] {
    return (this.db.prepare(`${TENANT_SELECT} ORDER BY t.name`).all() as schema.TenantRow[]).map(schema.tenantInfo);
  }

  /** One tenant with its bucket and credential counts, or undefined. */
  showTenant(name: string): schema.TenantInfo | undefined {
    const row = this.db.prepare(`${TENANT_SELECT} WHERE t.name = ?`).get(name);
    return row === undefined ? undefined : schema.tenantInfo(row as schema.TenantRow);
  }

  /** The immutable id of the tenant that has this name now, or undefined. */
  tenantId(name: string): string | undefined {
    return this.db.prepare('SELECT id FROM tenants WHERE name = ?').pluck().get(name) as string | undefined;
  }

  protected requireTenant(name: string): schema.TenantInfo {
    const info = this.showTenant(name);
    if (info === undefined) throw new NotFoundError(`no tenant ${name}`);
    return info;
  }

  /** Disables (or with `disabled: false` re-enables) a tenant; a disabled tenant's credentials stop working. */
  disableTenant(name: string, options: { disabled?: boolean } & Actor = {}): void {
    const disabled = options.disabled ?? true;
    if (name === schema.ROOT_TENANT) throw new InvalidInputError('the system tenant cannot be disabled');
    if (this.requireTenant(name).lockedDown) throw new ConflictError(`tenant ${name} is locked down: lift the lockdown instead (anvil tenant lockdown ${name} --lift)`);
    this.change({ actor: options.actor, action: disabled ? 'tenant.disable' : 'tenant.enable', tenant: name }, () =>
      this.db.prepare('UPDATE tenants SET disabled = ? WHERE name = ?').run(disabled ? schema.TENANT_STATE.disabled : schema.TENANT_STATE.enabled, name),
    );
  }

  /**
   * Locks a tenant down (an emergency stop after a leaked key): every credential, session, capability and share link
   * of the tenant is refused from its next request on every process, exactly as for a disabled tenant, but only
   * `lift` undoes it (`tenant enable` is refused), and both are audited with the reason and what was cut off.
   * Lifting returns the tenant to enabled; what was revoked meanwhile stays revoked. Returns the counts cut off.
   */
  lockdownTenant(name: string, options: { lift?: boolean; reason: string } & Actor): { credentials: number; roles: number; providers: number; capabilities: number } {
    if (name === schema.ROOT_TENANT) throw new InvalidInputError('the system tenant cannot be locked down');
    if (typeof options.reason !== 'string' || options.reason.trim() === '') throw new InvalidInputError('a lockdown needs a reason');
    const lift = options.lift === true;
    return this.commit(() => {
      const current = this.db.prepare('SELECT disabled FROM tenants WHERE name = ?').pluck().get(name) as number | undefined;
      if (current === undefined) throw new NotFoundError(`no tenant ${name}`);
      const count = (sql: string) => this.db.prepare(sql).pluck().get(name) as number;
      const reach = {
        credentials: count('SELECT count(*) FROM credentials WHERE tenant = ? AND revoked_at IS NULL'),
        roles: count('SELECT count(*) FROM sts_roles WHERE tenant = ?'),
        providers: count('SELECT count(*) FROM sts_oidc_providers WHERE tenant = ?'),
        capabilities: count('SELECT count(*) FROM capability_mints m WHERE tenant = ? AND NOT EXISTS (SELECT 1 FROM capability_revocations r WHERE r.id = m.id)'),
      };
      if (lift && current !== schema.TENANT_STATE.lockedDown) throw new ConflictError(`tenant ${name} is not locked down`);
      if (!lift && current === schema.TENANT_STATE.lockedDown) return { result: reach };
      const state = lift ? schema.TENANT_STATE.enabled : schema.TENANT_STATE.lockedDown;
      this.db.prepare('UPDATE tenants SET disabled = ? WHERE name = ?').run(state, name);
      const details = { reason: options.reason, ...(lift ? {} : { cutOff: reach, wasDisabled: current === schema.TENANT_STATE.disabled }) };
      return { result: reach, change: { actor: options.actor, action: lift ? 'tenant.lockdown.lift' : 'tenant.lockdown', tenant: name, details } };
    });
  }

  /**
   * Deletes a tenant and everything of it in the policy store: credentials, roles, OpenID Connect providers,
   * capability root keys, mints and revocations (sessions, which carry the tenant's id, die with it). Refused while
   * it owns buckets. Its relationship schema and tuples live in their own store: the caller purges them.
   */
  deleteTenant(name: string, options: Actor = {}): void {
    if (name === schema.ROOT_TENANT) throw new InvalidInputError('the system tenant cannot be deleted');
    this.requireTenant(name);
    this.commit(() => {
      const buckets = this.db.prepare('SELECT count(*) FROM buckets WHERE tenant = ?').pluck().get(name) as number;
      if (buckets > 0) throw new ConflictError(`tenant ${name} still owns ${buckets} bucket(s)`);
      for (const table of schema.TENANT_OWNED_TABLES) this.db.prepare(`DELETE FROM ${table} WHERE tenant = ?`).run(name);
      this.db.prepare('DELETE FROM tenants WHERE name = ?').run(name);
      return { result: undefined, change: { actor: options.actor, action: 'tenant.delete', tenant: name } };
    });
  }

  // ── buckets ────────────────────────────────────────────────────────────────────────────────────────────────────

  /** Records that a tenant owns a bucket; refused when another tenant owns it, unless `reassign` (an operator move). */
  assignBucket(bucket: string, tenant: string, options: { reassign?: boolean } & Actor = {}): void {
    this.requireTenant(tenant);
    this.commit(() => {
      const current = this.ownerRow(bucket);
      if (current === tenant) return { result: undefined };
      if (current !== undefined && options.reassign !== true) throw new ConflictError(`bucket ${bucket} is owned by another tenant`);
      this.db
        .prepare('INSERT INTO buckets (name, tenant, assigned_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET tenant = excluded.tenant, assigned_at = excluded.assigned_at')
        .run(bucket, tenant, Date.now());
      const action = current === undefined ? 'bucket.assign' : 'bucket.reassign';
      return { result: undefined, change: { actor: options.actor, action, tenant, bucket, details: current ? { from: current } : undefined } };
    });
  }

  /** Gives every bucket in `names` that has no owner to `tenant` (root by default), e.g. an upstream's existing buckets. */
  adoptUnownedBuckets(names: Iterable<string>, tenant: string = schema.ROOT_TENANT, options: Actor = {}): string[] {
    this.requireTenant(tenant);
    return this.commit(() => {
      const insert = this.db.prepare('INSERT INTO buckets (name, tenant, assigned_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING');
      const adopted = [...names].filter((name) => insert.run(name, tenant, Date.now()).changes > 0);
      const change = adopted.length > 0 ? { actor: options.actor ?? 'system', action: 'bucket.adopt', tenant, details: { buckets: adopted } } : undefined;
      return { result: adopted, change };
    });
  }

  /** Forgets a bucket's owner (after DeleteBucket). */
  releaseBucket(bucket: string, options: Actor = {}): void {
    this.commit(() => {
      const current = this.ownerRow(bucket);
      if (current === undefined) return { result: undefined };
      this.db.prepare('DELETE FROM buckets WHERE name = ?').run(bucket);
      return { result: undefined, change: { actor: options.actor, action: 'bucket.release', tenant: current, bucket } };
    });
  }

  private ownerRow(bucket: string): string | undefined {
    return this.db.prepare('SELECT tenant FROM buckets WHERE name = ?').pluck().get(bucket) as string | undefined;
  }

  /**
   * Whether relationships govern a bucket's objects (besides scopes). One indexed point read per call, so a change
   * made by any process is in force on the next request.
   */
  bucketGoverned(bucket: string): boolean {
    this.governedStmt ??= this.db.prepare('SELECT governed FROM buckets WHERE name = ?').pluck();
    return this.governedStmt.get(bucket) === 1;
  }

  private governedStmt?: Database.Statement;

  /** Turns relationship governance of an owned bucket on or off; audited as bucket.govern / bucket.ungovern. */
  setBucketGoverned(bucket: string, governed: boolean, options: Actor = {}): void {
    this.commit(() => {
      const tenant = this.ownerRow(bucket);
      if (tenant === undefined) throw new NotFoundError(`no bucket ${bucket}`);
      const changed = this.db.prepare('UPDATE buckets SET governed = ? WHERE name = ? AND governed != ?').run(governed ? 1 : 0, bucket, governed ? 1 : 0).changes > 0;
      const action = governed ? 'bucket.govern' : 'bucket.ungovern';
      return { result: undefined, change: changed ? { actor: options.actor, action, tenant, bucket } : undefined };
    });
  }

  /** The governed buckets among those owned, by name. */
  governedBuckets(): string[] {
    return this.db.prepare('SELECT name FROM buckets WHERE governed = 1 ORDER BY name').pluck().all() as string[];
  }

  /** The buckets a tenant owns, by name. */
  listTenantBuckets(tenant: string): string[] {
    return this.db.prepare('SELECT name FROM buckets WHERE tenant = ? ORDER BY name').pluck().all(tenant) as string[];
  }

  /** Every owned bucket and its tenant. */
  bucketOwners(): Map<string, string> {
    const rows = this.db.prepare('SELECT name, tenant FROM buckets').all() as { name: string; tenant: string }[];
    return new Map(rows.map((row) => [row.name, row.tenant]));
  }
}

/**
 * The gateway's capability state: one root key per tenant (sealed with the master key, replaced as a whole by a
 * reset so every earlier capability fails at once) and the revocation list by capability id. Capabilities
 * themselves are never stored; they carry everything and are verified on every use.
 */
import type Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import type { AuditLog } from '../audit-log.ts';
import { InvalidInputError } from '../errors.ts';
import { loadMasterKey, open, seal } from '../secret-box.ts';
import { openPolicyDatabase, tenantEnabled, tenantIdOf } from '../sessions/database.ts';
import { CapabilityError, createCapabilityService, type CapabilityContents, type CapabilityService, type JsonValue } from './token.ts';
import { capabilityGrant } from './s3.ts';

/** A verified capability and the tenant whose root key signed it. */
export interface TenantCapability extends CapabilityContents {
  tenant: string;
  /** The application credential that minted it (absent: root or the operator), whose authority bounds it. */
  mintedBy?: string;
}

/** What was recorded when a capability was minted. */
export interface CapabilityMint {
  id: string;
  tenant: string;
  tenantId: string;
  scope: JsonValue[];
  actions?: string[];
  mintedBy?: string;
}

/** The tenant a key id (`tenant/generation`) or capability id (`tenant:random`) names. */
export function tenantOfCapabilityId(id: string): string {
  const colon = id.indexOf(':');
  if (colon <= 0) throw new InvalidInputError(`capability id ${id} names no tenant`);
  return id.slice(0, colon);
}

/** Per-tenant capability root keys and revocations, in dataDir/policy.db. */
export class CapabilityStore {
  private constructor(private readonly db: Database.Database, private readonly masterKey: Buffer, private readonly audit?: AuditLog) {}

  /** Opens the capability tables of a data directory whose policy store already exists. */
  static open(options: { dataDir: string; masterKey?: string | Buffer; audit?: AuditLog }): CapabilityStore {
    return new CapabilityStore(openPolicyDatabase(options.dataDir, ''), loadMasterKey(options.dataDir, options.masterKey), options.audit);
  }

  close(): void {
    this.db.close();
  }

  private keyRow(tenant: string): { generation: number; key_ct: Buffer; key_iv: Buffer; key_tag: Buffer } | undefined {
    return this.db.prepare('SELECT * FROM capability_root_keys WHERE tenant = ?').get(tenant) as never;
  }

  private writeKey(tenant: string, generation: number): void {
    const sealed = seal(this.masterKey, randomBytes(32).toString('base64'), `capability-root:${tenant}/${generation}`);
    this.db
      .prepare(
        `INSERT INTO capability_root_keys (tenant, generation, key_ct, key_iv, key_tag, created_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (tenant) DO UPDATE SET generation = excluded.generation, key_ct = excluded.key_ct,
           key_iv = excluded.key_iv, key_tag = excluded.key_tag, created_at = excluded.created_at`,
      )
      .run(tenant, generation, sealed.ciphertext, sealed.iv, sealed.tag, Date.now());
  }

  /** The root key a key id names, only while it is its tenant's current one. */
  rootKey(keyId: string): Buffer | undefined {
    const slash = keyId.lastIndexOf('/');
    if (slash <= 0) return undefined;
    const tenant = keyId.slice(0, slash);
    const row = this.keyRow(tenant);
    if (row === undefined || `${tenant}/${row.generation}` !== keyId) return undefined;
    return Buffer.from(open(this.masterKey, { ciphertext: row.key_ct, iv: row.key_iv, tag: row.key_tag }, `capability-root:${keyId}`), 'base64');
  }

  /** The tenant's current key id, creating its first root key on first use. */
  currentKeyId(tenant: string): string {
    return this.db.transaction(() => {
      const row = this.keyRow(tenant);
      if (row !== undefined) return `${tenant}/${row.generation}`;
      this.writeKey(tenant, 1);
      return `${tenant}/1`;
    }).immediate();
  }

  /** Replaces the tenant's root key: every capability minted before stops verifying on every process at once. */
  resetRootKey(tenant: string, options: { actor?: string } = {}): { keyId: string } {
    const keyId = this.db.transaction(() => {
      const generation = (this.keyRow(tenant)?.generation ?? 0) + 1;
      this.writeKey(tenant, generation);
      return `${tenant}/${generation}`;
    }).immediate();
    this.audit?.write({ actor: options.actor ?? 'operator', action: 'capability.reset', tenant, details: { keyId } });
    return { keyId };
  }

  /** Adds a capability id to the revocation list. */
  revoke(id: string, options: { actor?: string } = {}): { id: string; tenant: string } {
    const tenant = tenantOfCapabilityId(id);
    this.db.prepare('INSERT OR IGNORE INTO capability_revocations (id, tenant, revoked_at) VALUES (?, ?, ?)').run(id, tenant, Date.now());
    this.audit?.write({ actor: options.actor ?? 'operator', action: 'capability.revoke', tenant, details: { id } });
    return { id, tenant };
  }

  /** Whether a capability id is on the revocation list. */
  isRevoked(id: string): boolean {
    return this.db.prepare('SELECT 1 FROM capability_revocations WHERE id = ?').get(id) !== undefined;
  }

  /** The capability service over the stored root keys and revocation list. */
  service(now?: () => Date): CapabilityService {
    return createCapabilityService({ rootKeys: (keyId) => this.rootKey(keyId), isRevoked: (id) => this.isRevoked(id), now });
  }

  /** The mint record of a capability id, or undefined (never minted here, or its tenant was deleted). */
  mintRecord(id: string): CapabilityMint | undefined {
    const row = this.db.prepare('SELECT * FROM capability_mints WHERE id = ?').get(id) as
      | { id: string; tenant: string; tenant_id: string; scope: string; actions: string | null; minted_by: string | null }
      | undefined;
    if (row === undefined) return undefined;
    return {
      id: row.id, tenant: row.tenant, tenantId: row.tenant_id, scope: JSON.parse(row.scope) as JsonValue[],
      ...(row.actions !== null ? { actions: JSON.parse(row.actions) as string[] } : {}),
      ...(row.minted_by !== null ? { mintedBy: row.minted_by } : {}),
    };
  }

  /**
   * Every capability minted here (of one tenant, or all), with when, whether it is on the revocation list, and
   * whether its tenant's root key was reset after it was minted (then it verifies nowhere any more).
   */
  listMints(filter: { tenant?: string } = {}): Array<CapabilityMint & { createdAt: string; revoked: boolean; keyReset: boolean }> {
    const rows = this.db
      .prepare(
        `SELECT m.*, r.id IS NOT NULL AS revoked, coalesce(k.created_at > m.created_at, 1) AS key_reset
         FROM capability_mints m LEFT JOIN capability_revocations r ON r.id = m.id LEFT JOIN capability_root_keys k ON k.tenant = m.tenant
         WHERE @tenant IS NULL OR m.tenant = @tenant ORDER BY m.created_at`,
      )
      .all({ tenant: filter.tenant ?? null }) as Array<{ id: string; created_at: number; revoked: number; key_reset: number }>;
    return rows.map((row) => ({ ...this.mintRecord(row.id)!, createdAt: new Date(row.created_at).toISOString(), revoked: row.revoked === 1, keyReset: row.key_reset === 1 }));
  }

  /** Each tenant's current capability root key: its generation and when it was made. */
  rootKeys(filter: { tenant?: string } = {}): Array<{ tenant: string; generation: number; createdAt: string }> {
    const rows = this.db
      .prepare('SELECT tenant, generation, created_at FROM capability_root_keys WHERE @tenant IS NULL OR tenant = @tenant ORDER BY tenant')
      .all({ tenant: filter.tenant ?? null }) as Array<{ tenant: string; generation: number; created_at: number }>;
    return rows.map((r) => ({ tenant: r.tenant, generation: r.generation, createdAt: new Date(r.created_at).toISOString() }));
  }

  /**
   * Mints a capability under the tenant's current root key (the caller has checked the minter's authority) and
   * records who minted it: `mintedBy` (an application credential; absent for root and the operator) bounds the
   * capability at every use, and revoking or deleting it ends the capability.
   */
  mint(tenant: string, scope: Parameters<CapabilityService['mint']>[0], options: { expiresAt?: Date; actions?: string[]; actor?: string; mintedBy?: string } = {}): { id: string; capability: string } {
    const tenantId = tenantIdOf(this.db, tenant);
    if (tenantId === undefined) throw new InvalidInputError(`no tenant ${tenant}`);
    const id = `${tenant}:${randomBytes(12).toString('base64url')}`;
    const capability = this.service().mint(scope, { keyId: this.currentKeyId(tenant), id, expiresAt: options.expiresAt, actions: options.actions });
    this.db
      .prepare('INSERT INTO capability_mints (id, tenant, tenant_id, scope, actions, minted_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(id, tenant, tenantId, JSON.stringify(scope), options.actions ? JSON.stringify(options.actions) : null, options.mintedBy ?? null, Date.now());
    this.audit?.write({
      actor: options.actor ?? 'operator', action: 'capability.mint', tenant,
      details: { id, scope, actions: options.actions, expiresAt: options.expiresAt?.toISOString() },
    });
    return { id, capability };
  }

  /**
   * Verifies a capability presented on a request: its chain, root key, expiry and revocation, that it was minted
   * here for the tenant that has its name now (a tenant deleted and re-created is another tenant), and that the
   * tenant is enabled. The caller bounds it by its minter's authority.
   */
  verify(capability: string, now: Date = new Date()): TenantCapability {
    const contents = this.service(() => now).verify(capability);
    const tenant = contents.keyId.slice(0, contents.keyId.lastIndexOf('/'));
    if (tenantOfCapabilityId(contents.id) !== tenant) throw new CapabilityError('capability id and root key name different tenants');
    const mint = this.mintRecord(contents.id);
    if (mint === undefined || mint.tenant !== tenant) throw new CapabilityError('capability was not minted by this gateway for this tenant');
    if (!tenantEnabled(this.db, tenant, mint.tenantId)) throw new CapabilityError(`tenant ${tenant} is disabled or gone`);
    // A holder may append anything to the scope: what is no object scope (a number, null, {exact: false}) is refused
    // here as a bad capability, never left to fail later.
    capabilityGrant(contents.scope, contents.actions);
    return { ...contents, tenant, ...(mint.mintedBy !== undefined ? { mintedBy: mint.mintedBy } : {}) };
  }
}

/**
 * The gateway's capability state, in the policy database so every node verifies what any node minted: one root key
 * per tenant (sealed with the master key, replaced as a whole by a reset so every earlier capability fails at once),
 * the revocation list by capability id, and a record of each mint. Capabilities themselves are never stored; they
 * carry everything and are verified on every use, against reads cached until the policy revision moves.
 */
import type { Kysely } from 'kysely';
import { randomBytes } from 'node:crypto';
import type { PolicyDatabase } from '../database/policy-database.ts';
import { RevisionCache } from '../database/revision-cache.ts';
import type { PolicyTables } from '../database/tables.ts';
import { InvalidInputError } from '../errors.ts';
import { open, seal } from '../secret-box.ts';
import { tenantEnabled, tenantState, type TenantState } from '../sessions/database.ts';
import { commitPolicy, type PolicyTransaction } from '../store-base.ts';
import { CapabilityError, createCapabilityService, inspectCapability, type CapabilityContents, type CapabilityService, type JsonValue } from './token.ts';
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

type KeyRow = PolicyTables['capability_root_keys'];
type MintRow = PolicyTables['capability_mints'];

/** Per-tenant capability root keys, revocations and mint records. */
export class CapabilityStore {
  private readonly db: Kysely<PolicyTables>;
  private readonly keys: RevisionCache<KeyRow | null>;
  private readonly revoked: RevisionCache<boolean>;
  private readonly mints: RevisionCache<MintRow | null>;
  private readonly tenants: RevisionCache<TenantState>;

  private constructor(private readonly database: PolicyDatabase, private readonly masterKey: Buffer) {
    this.db = database.db('policy');
    const signal = database.signals.policy;
    this.keys = new RevisionCache(signal, 1000);
    this.revoked = new RevisionCache(signal);
    this.mints = new RevisionCache(signal);
    this.tenants = new RevisionCache(signal);
  }

  /** The capability tables of an open policy database, with the master key the policy store verified. */
  static open(options: { database: PolicyDatabase; masterKey: Buffer }): CapabilityStore {
    return new CapabilityStore(options.database, options.masterKey);
  }

  private keyRow(tenant: string): Promise<KeyRow | null> {
    return this.keys.get(tenant, async () => (await this.db.selectFrom('capability_root_keys').selectAll().where('tenant', '=', tenant).executeTakeFirst()) ?? null);
  }

  private async writeKey(trx: PolicyTransaction, tenant: string, generation: number): Promise<void> {
    const sealed = seal(this.masterKey, randomBytes(32).toString('base64'), `capability-root:${tenant}/${generation}`);
    await trx
      .insertInto('capability_root_keys')
      .values({ tenant, generation, key_ct: sealed.ciphertext, key_iv: sealed.iv, key_tag: sealed.tag, created_at: Date.now() })
      .onConflict((oc) =>
        oc.column('tenant').doUpdateSet((eb) => ({
          generation: eb.ref('excluded.generation'),
          key_ct: eb.ref('excluded.key_ct'),
          key_iv: eb.ref('excluded.key_iv'),
          key_tag: eb.ref('excluded.key_tag'),
          created_at: eb.ref('excluded.created_at'),
        })),
      )
      .execute();
  }

  /** The root key a key id names, only while it is its tenant's current one. */
  async rootKey(keyId: string): Promise<Buffer | undefined> {
    const slash = keyId.lastIndexOf('/');
    if (slash <= 0) return undefined;
    const tenant = keyId.slice(0, slash);
    const row = await this.keyRow(tenant);
    if (row === null || `${tenant}/${row.generation}` !== keyId) return undefined;
    return Buffer.from(open(this.masterKey, { ciphertext: row.key_ct, iv: row.key_iv, tag: row.key_tag }, `capability-root:${keyId}`), 'base64');
  }

  /** The tenant's current key id, creating its first root key on first use (once, whichever node asks first). */
  async currentKeyId(tenant: string): Promise<string> {
    const row = await this.keyRow(tenant);
    if (row !== null) return `${tenant}/${row.generation}`;
    return commitPolicy(this.database, async (trx) => {
      const existing = await trx.selectFrom('capability_root_keys').select('generation').where('tenant', '=', tenant).executeTakeFirst();
      if (existing !== undefined) return { result: `${tenant}/${existing.generation}` };
      await this.writeKey(trx, tenant, 1);
      return { result: `${tenant}/1`, change: { actor: 'system', action: 'capability.key.create', tenant, details: { keyId: `${tenant}/1` } } };
    });
  }

  /** Replaces the tenant's root key: every capability minted before stops verifying on every node. */
  async resetRootKey(tenant: string, options: { actor?: string } = {}): Promise<{ keyId: string }> {
    const keyId = await commitPolicy(this.database, async (trx) => {
      const current = await trx.selectFrom('capability_root_keys').select('generation').where('tenant', '=', tenant).executeTakeFirst();
      const generation = (current?.generation ?? 0) + 1;
      await this.writeKey(trx, tenant, generation);
      const id = `${tenant}/${generation}`;
      return { result: id, change: { actor: options.actor, action: 'capability.reset', tenant, details: { keyId: id } } };
    });
    return { keyId };
  }

  /** Adds a capability id to the revocation list. */
  async revoke(id: string, options: { actor?: string } = {}): Promise<{ id: string; tenant: string }> {
    const tenant = tenantOfCapabilityId(id);
    await commitPolicy(this.database, async (trx) => {
      await trx.insertInto('capability_revocations').values({ id, tenant, revoked_at: Date.now() }).onConflict((oc) => oc.column('id').doNothing()).execute();
      return { result: undefined, change: { actor: options.actor, action: 'capability.revoke', tenant, details: { id } } };
    });
    return { id, tenant };
  }

  /** Whether a capability id is on the revocation list. */
  isRevoked(id: string): Promise<boolean> {
    return this.revoked.get(id, async () => (await this.db.selectFrom('capability_revocations').select('id').where('id', '=', id).executeTakeFirst()) !== undefined);
  }

  /** The mint record of a capability id, or undefined (never minted here, or its tenant was deleted). */
  async mintRecord(id: string): Promise<CapabilityMint | undefined> {
    const row = await this.mints.get(id, async () => (await this.db.selectFrom('capability_mints').selectAll().where('id', '=', id).executeTakeFirst()) ?? null);
    if (row === null) return undefined;
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
  async listMints(filter: { tenant?: string } = {}): Promise<Array<CapabilityMint & { createdAt: string; revoked: boolean; keyReset: boolean }>> {
    const rows = await this.db
      .selectFrom('capability_mints as m')
      .leftJoin('capability_revocations as r', 'r.id', 'm.id')
      .leftJoin('capability_root_keys as k', 'k.tenant', 'm.tenant')
      .selectAll('m')
      .select(['r.id as revoked_id', 'k.created_at as key_created_at'])
      .$if(filter.tenant !== undefined, (q) => q.where('m.tenant', '=', filter.tenant!))
      .orderBy('m.created_at')
      .execute();
    return rows.map((row) => ({
      id: row.id, tenant: row.tenant, tenantId: row.tenant_id, scope: JSON.parse(row.scope) as JsonValue[],
      ...(row.actions !== null ? { actions: JSON.parse(row.actions) as string[] } : {}),
      ...(row.minted_by !== null ? { mintedBy: row.minted_by } : {}),
      createdAt: new Date(row.created_at).toISOString(),
      revoked: row.revoked_id !== null,
      // No root key, or one made after the mint: the capability verifies nowhere any more.
      keyReset: row.key_created_at === null || row.key_created_at > row.created_at,
    }));
  }

  /** Each tenant's current capability root key: its generation and when it was made. */
  async rootKeys(filter: { tenant?: string } = {}): Promise<Array<{ tenant: string; generation: number; createdAt: string }>> {
    const rows = await this.db
      .selectFrom('capability_root_keys')
      .select(['tenant', 'generation', 'created_at'])
      .$if(filter.tenant !== undefined, (q) => q.where('tenant', '=', filter.tenant!))
      .orderBy('tenant')
      .execute();
    return rows.map((r) => ({ tenant: r.tenant, generation: r.generation, createdAt: new Date(r.created_at).toISOString() }));
  }

  /**
   * Mints a capability under the tenant's current root key (the caller has checked the minter's authority) and
   * records who minted it: `mintedBy` (an application credential; absent for root and the operator) bounds the
   * capability at every use, and revoking or deleting it ends the capability.
   */
  async mint(tenant: string, scope: Parameters<CapabilityService['mint']>[0], options: { expiresAt?: Date; actions?: string[]; actor?: string; mintedBy?: string } = {}): Promise<{ id: string; capability: string }> {
    const tenantId = (await tenantState(this.tenants, this.db, tenant))?.id;
    if (tenantId === undefined) throw new InvalidInputError(`no tenant ${tenant}`);
    const id = `${tenant}:${randomBytes(12).toString('base64url')}`;
    const keyId = await this.currentKeyId(tenant);
    const rootKey = await this.rootKey(keyId);
    const capability = createCapabilityService({ rootKeys: { [keyId]: rootKey! } }).mint(scope, { keyId, id, expiresAt: options.expiresAt, actions: options.actions });
    const details = { id, scope, actions: options.actions, expiresAt: options.expiresAt?.toISOString() };
    await commitPolicy(this.database, async (trx) => {
      await trx
        .insertInto('capability_mints')
        .values({ id, tenant, tenant_id: tenantId, scope: JSON.stringify(scope), actions: options.actions ? JSON.stringify(options.actions) : null, minted_by: options.mintedBy ?? null, created_at: Date.now() })
        .execute();
      return { result: undefined, change: { actor: options.actor, action: 'capability.mint', tenant, details } };
    });
    return { id, capability };
  }

  /**
   * Verifies a capability presented on a request: its chain, root key, expiry and revocation, that it was minted
   * here for the tenant that has its name now (a tenant deleted and re-created is another tenant), and that the
   * tenant is enabled. The caller bounds it by its minter's authority.
   */
  async verify(capability: string, now: Date = new Date()): Promise<TenantCapability> {
    // The chain is checked by the synchronous verifier; what it consults (root key, revocation) is read first.
    const claimed = inspectCapability(capability);
    const rootKey = await this.rootKey(claimed.keyId);
    const revoked = await this.isRevoked(claimed.id);
    const service = createCapabilityService({
      rootKeys: (keyId) => (keyId === claimed.keyId ? rootKey : undefined),
      isRevoked: (id) => id === claimed.id && revoked,
      now: () => now,
    });
    const contents = service.verify(capability);
    const tenant = contents.keyId.slice(0, contents.keyId.lastIndexOf('/'));
    if (tenantOfCapabilityId(contents.id) !== tenant) throw new CapabilityError('capability id and root key name different tenants');
    const mint = await this.mintRecord(contents.id);
    if (mint === undefined || mint.tenant !== tenant) throw new CapabilityError('capability was not minted by this gateway for this tenant');
    if (!(await tenantEnabled(this.tenants, this.db, tenant, mint.tenantId))) throw new CapabilityError(`tenant ${tenant} is disabled or gone`);
    // A holder may append anything to the scope: what is no object scope (a number, null, {exact: false}) is refused
    // here as a bad capability, never left to fail later.
    capabilityGrant(contents.scope, contents.actions);
    return { ...contents, tenant, ...(mint.mintedBy !== undefined ? { mintedBy: mint.mintedBy } : {}) };
  }
}

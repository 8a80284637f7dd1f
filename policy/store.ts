/**
 * The policy store: application credentials (secrets sealed at rest), the root bootstrap and the per-request lookup,
 * on top of tenants and bucket ownership (tenancy.ts), in the policy database (policy/database/: SQLite files in the
 * data directory, or PostgreSQL shared by every node). Each change bumps the policy revision, which is how every
 * node's caches learn of it.
 */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CredentialCache, type ResolveResult } from './credential-cache.ts';
import { credentialStates } from './credential-state.ts';
import { isPostgresUrl, redactUrl } from './database/dialects.ts';
import type { PolicyDatabase } from './database/policy-database.ts';
import { ConflictError, InvalidInputError, MasterKeyMismatchError, NotFoundError } from './errors.ts';
import { invalidGrantReason, normalizeGrant } from './scopes.ts';
import { loadMasterKey, MASTER_KEY_FILE, newAccessKeyId, newSecretKey, open, seal } from './secret-box.ts';
import type { Actor, Change, PolicyTransaction } from './store-base.ts';
import * as schema from './store-schema.ts';
import { TenancyStore } from './tenancy.ts';
import { FAMILIES, type ScopeGrant } from './types.ts';

/** How to open a store. */
export interface PolicyStoreOptions {
  /** The open policy database. */
  database: PolicyDatabase;
  /** The node's data directory: where a generated master key lives (SQLite only). */
  dataDir: string;
  /**
   * 32 bytes as base64 or hex (or raw); absent: dataDir/master.key, generated on first start with SQLite. With
   * PostgreSQL every node needs the same key, so none is ever generated: give it, or place the file on every node.
   */
  masterKey?: string | Buffer;
  /** Maximum cached credentials (and bucket owners). */
  cacheSize?: number;
}

export type { Actor } from './store-base.ts';

/** A newly created credential: its details and, this once, its secret. */
export type CreatedCredential = schema.CredentialInfo & { secretKey: string };

/** What ensureRoot did; secretKey only when generated now or given. */
export interface RootResult {
  accessKeyId: string;
  secretKey?: string;
  created: boolean;
  updated: boolean;
}

/** What rotateCredential returns: the new secret, this once. */
export interface RotatedCredential {
  accessKeyId: string;
  secretKey: string;
  previousSecretValidUntil?: string;
}

const ROOT_KEY_ID = /^[A-Za-z0-9]{3,128}$/;
const ROOT_SCOPES: ScopeGrant[] = [{ families: [...FAMILIES], bucket: '*' }];

/**
 * The master key a node uses: configured, or the data directory's file (generated there only for SQLite, where the
 * policy is this node's alone). `policyDatabase` is the PostgreSQL URL when the policy is shared. Load it before the
 * database opens, so a missing or damaged key stops a start before anything is created.
 */
export function nodeMasterKey(policyDatabase: string | undefined, dataDir: string, configured?: string | Buffer): Buffer {
  if (configured === undefined && isPostgresUrl(policyDatabase) && !existsSync(join(dataDir, MASTER_KEY_FILE))) {
    throw new MasterKeyMismatchError(
      `the policy is in PostgreSQL (${redactUrl(policyDatabase)}), shared by every node, so every node needs the same master key: ` +
        `set ANVIL_MASTER_KEY or ANVIL_MASTER_KEY_FILE (none is generated, so no node can seal secrets others cannot open)`,
    );
  }
  return loadMasterKey(dataDir, configured);
}

/** Tenants, credentials and bucket ownership, with the per-request lookups cached. */
export class PolicyStore extends TenancyStore {
  private constructor(
    database: PolicyDatabase,
    /** The key secrets are sealed with; the session and capability stores beside this one use it too. */
    readonly masterKey: Buffer,
    cacheSize: number | undefined,
  ) {
    super(database, new CredentialCache(database.db('policy'), database.signals.policy, masterKey, cacheSize));
  }

  /** Opens the store on an open policy database, checking the master key against the one the database knows. */
  static async open(options: PolicyStoreOptions): Promise<PolicyStore> {
    const postgres = options.database.dialect === 'postgres' ? options.database.location : undefined;
    const masterKey = nodeMasterKey(postgres, options.dataDir, options.masterKey);
    await schema.verifyMasterKey(options.database.db('policy'), masterKey);
    return new PolicyStore(options.database, masterKey, options.cacheSize);
  }

  /** Writes the last-use times this node gathered (before it closes). */
  flushLastUse(): Promise<void> {
    return this.cache.flushUses();
  }

  /** Lookups answered from the cache and those that reached the database. */
  get cacheStats(): { hits: number; misses: number } {
    return this.cache.stats;
  }

  // ── hot path ───────────────────────────────────────────────────────────────────────────────────────────────────

  /** The secrets and Principal of an access key, or why it cannot be used ('unknown', 'revoked', …). */
  resolveAccessKey(accessKeyId: string, now: Date = new Date()): Promise<ResolveResult> {
    return this.cache.resolve(accessKeyId, now);
  }

  // ── root ───────────────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Makes sure the root credential exists: generated on first start, or exactly the given pair when both are given
   * (replacing a different one). Decided inside one transaction, so processes starting together agree on one root.
   */
  async ensureRoot(given: { accessKeyId?: string; secretKey?: string } = {}): Promise<RootResult> {
    const { accessKeyId: wantId, secretKey: wantSecret } = given;
    if ((wantId === undefined) !== (wantSecret === undefined)) {
      throw new InvalidInputError('root access key id and secret key must be given together');
    }
    if (wantId !== undefined && !ROOT_KEY_ID.test(wantId)) throw new InvalidInputError('root access key id must be 3-128 letters or digits');
    if (wantSecret !== undefined && wantSecret.length < 8) throw new InvalidInputError('root secret key must be at least 8 characters');
    return this.commit<RootResult>(async (trx) => {
      const existing = (await trx.selectFrom('credentials').selectAll().where('is_root', '=', 1).executeTakeFirst()) as schema.CredentialRow | undefined;
      if (wantId === undefined || wantSecret === undefined) {
        if (existing) return { result: { accessKeyId: existing.access_key_id, created: false, updated: false } };
        const accessKeyId = newAccessKeyId();
        const secretKey = newSecretKey();
        await this.insertRoot(trx, accessKeyId, secretKey);
        return { result: { accessKeyId, secretKey, created: true, updated: false }, change: rootChange('root.create', accessKeyId) };
      }
      const unchanged =
        existing?.access_key_id === wantId &&
        existing.revoked_at === null &&
        open(this.masterKey, { ciphertext: existing.secret_ct, iv: existing.secret_iv, tag: existing.secret_tag }, wantId) === wantSecret;
      const result = { accessKeyId: wantId, secretKey: wantSecret, created: existing === undefined, updated: existing !== undefined };
      if (unchanged) return { result: { ...result, updated: false } };
      const clash = await trx.selectFrom('credentials').select('access_key_id').where('access_key_id', '=', wantId).where('is_root', '=', 0).executeTakeFirst();
      if (clash) throw new ConflictError(`access key id ${wantId} belongs to an application credential`);
      await trx.deleteFrom('credentials').where('is_root', '=', 1).execute();
      await this.insertRoot(trx, wantId, wantSecret);
      return { result, change: rootChange(existing ? 'root.update' : 'root.create', wantId) };
    });
  }

  /**
   * Deletes the root credential `accessKeyId` that this process generated moments ago and never showed (a first
   * start that failed after creating it), so that the next start generates and shows a new one. Any other is kept.
   */
  async discardRoot(accessKeyId: string): Promise<void> {
    await this.commit(async (trx) => {
      const gone = await trx.deleteFrom('credentials').where('access_key_id', '=', accessKeyId).where('is_root', '=', 1).executeTakeFirst();
      return { result: undefined, change: gone.numDeletedRows > 0n ? rootChange('root.discard', accessKeyId) : undefined };
    });
  }

  private insertRoot(trx: PolicyTransaction, accessKeyId: string, secretKey: string): Promise<void> {
    const description = 'bootstrap root credential';
    return this.insertCredential(trx, { accessKeyId, secretKey, tenant: schema.ROOT_TENANT, name: 'root', description, scopes: ROOT_SCOPES, isRoot: true });
  }

  private async insertCredential(
    trx: PolicyTransaction,
    c: { accessKeyId: string; secretKey: string; tenant: string; name: string; description: string; scopes: ScopeGrant[]; isRoot: boolean; expiresAt?: Date; createdBy?: string },
  ): Promise<void> {
    const sealed = seal(this.masterKey, c.secretKey, c.accessKeyId);
    await trx
      .insertInto('credentials')
      .values({
        access_key_id: c.accessKeyId,
        tenant: c.tenant,
        name: c.name,
        description: c.description,
        is_root: c.isRoot ? 1 : 0,
        scopes: JSON.stringify(c.scopes),
        secret_ct: sealed.ciphertext,
        secret_iv: sealed.iv,
        secret_tag: sealed.tag,
        prev_ct: null,
        prev_iv: null,
        prev_tag: null,
        prev_until: null,
        expires_at: c.expiresAt?.getTime() ?? null,
        created_at: Date.now(),
        rotated_at: null,
        last_used_at: null,
        revoked_at: null,
        created_by: c.createdBy ?? null,
      })
      .execute();
  }

  // ── credentials ────────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Creates an application credential; the only time (besides rotate) its secret is returned. `maker` is the
   * application credential creating it (absent for root and the operator): the new credential can never do more than
   * its maker can at that moment, and revoking, expiring or deleting the maker ends it.
   */
  async createCredential(
    options: { tenant: string; name: string; description?: string; scopes: ScopeGrant[]; expiresAt?: Date; maker?: string } & Actor,
  ): Promise<CreatedCredential> {
    const { tenant, name, expiresAt } = options;
    const description = options.description ?? '';
    if (name.trim() === '' || name.length > 128) throw new InvalidInputError('credential name must be 1-128 characters');
    if (description.length > 1024) throw new InvalidInputError('credential description must be at most 1024 characters');
    const invalid = invalidGrantReason(options.scopes);
    if (invalid !== undefined) throw new InvalidInputError(invalid);
    if (expiresAt !== undefined && Number.isNaN(expiresAt.getTime())) throw new InvalidInputError('invalid expiry time');
    await this.requireTenant(tenant);
    // Copy only the known fields, so nothing a caller tacked on is stored.
    const scopes = options.scopes.map(normalizeGrant);
    if (options.maker !== undefined && (await this.showCredential(options.maker))?.tenant !== tenant) {
      throw new InvalidInputError(`credential ${options.maker} of another tenant cannot make credentials of tenant ${tenant}`);
    }
    const accessKeyId = newAccessKeyId();
    const secretKey = newSecretKey();
    const details = { name, description, scopes, expiresAt: expiresAt?.toISOString(), createdBy: options.maker };
    await this.change({ actor: options.actor, action: 'credential.create', tenant, accessKeyId, details }, (trx) =>
      this.insertCredential(trx, { accessKeyId, secretKey, tenant, name, description, scopes, isRoot: false, expiresAt, createdBy: options.maker }),
    );
    return { ...(await this.requireCredential(accessKeyId)), secretKey };
  }

  /**
   * Every credential, or those of one tenant; never with secrets. Each status is what a request with the key would
   * meet, its maker chain and tenant included (credential-state.ts), not only its own row.
   */
  async listCredentials(filter: { tenant?: string } = {}): Promise<schema.CredentialInfo[]> {
    const q = this.credentialRows();
    const rows = await (filter.tenant === undefined ? q.orderBy('c.tenant').orderBy('c.created_at') : q.where('c.tenant', '=', filter.tenant).orderBy('c.created_at')).execute();
    return this.shown(rows);
  }

  /** One credential without its secret, or undefined; its status as listCredentials gives it. */
  async showCredential(accessKeyId: string): Promise<schema.CredentialInfo | undefined> {
    const row = await this.credentialRows().where('c.access_key_id', '=', accessKeyId).executeTakeFirst();
    return row === undefined ? undefined : (await this.shown([row]))[0];
  }

  /** Credentials rows with their tenant's disabled flag. */
  private credentialRows() {
    return this.db.selectFrom('credentials as c').innerJoin('tenants as t', 't.name', 'c.tenant').selectAll('c').select('t.disabled as tenant_disabled');
  }

  /** `rows` as shown, each status following its maker chain (makers outside `rows` are read as needed). */
  private async shown(rows: Array<schema.CredentialRow & { tenant_disabled: number }>): Promise<schema.CredentialInfo[]> {
    const states = await credentialStates(rows, (id) => this.credentialRows().where('c.access_key_id', '=', id).executeTakeFirst());
    const now = Date.now();
    return rows.map((row) => schema.credentialInfo(row, states.get(row.access_key_id)!, now));
  }

  private async requireCredential(accessKeyId: string): Promise<schema.CredentialInfo> {
    const info = await this.showCredential(accessKeyId);
    if (info === undefined) throw new NotFoundError(`no credential ${accessKeyId}`);
    return info;
  }

  /**
   * Gives a credential a new secret, returned this once. The old secret stops working at once, or keeps verifying
   * for `graceSeconds` when given (a secret already in grace from an earlier rotation stops now).
   */
  async rotateCredential(accessKeyId: string, options: { graceSeconds?: number } & Actor = {}): Promise<RotatedCredential> {
    const grace = options.graceSeconds ?? 0;
    if (!Number.isFinite(grace) || grace < 0) throw new InvalidInputError('grace period must be a non-negative number of seconds');
    const info = await this.requireCredential(accessKeyId);
    if (info.status === 'revoked') throw new ConflictError(`credential ${accessKeyId} is revoked`);
    const secretKey = newSecretKey();
    const sealed = seal(this.masterKey, secretKey, accessKeyId);
    const now = Date.now();
    const until = grace > 0 ? now + grace * 1000 : null;
    const change = { actor: options.actor, action: 'credential.rotate', tenant: info.tenant, accessKeyId, details: { graceSeconds: grace } };
    await this.change(change, async (trx) => {
      // With a grace period the current secret becomes the previous one; without, no previous secret is kept.
      await trx
        .updateTable('credentials')
        .set((eb) => ({
          prev_ct: until === null ? null : eb.ref('secret_ct'),
          prev_iv: until === null ? null : eb.ref('secret_iv'),
          prev_tag: until === null ? null : eb.ref('secret_tag'),
          prev_until: until,
          secret_ct: sealed.ciphertext,
          secret_iv: sealed.iv,
          secret_tag: sealed.tag,
          rotated_at: now,
        }))
        .where('access_key_id', '=', accessKeyId)
        .execute();
    });
    return until === null ? { accessKeyId, secretKey } : { accessKeyId, secretKey, previousSecretValidUntil: new Date(until).toISOString() };
  }

  /** Revokes a credential: every process refuses it from its next request on. */
  async revokeCredential(accessKeyId: string, options: Actor = {}): Promise<void> {
    const { tenant } = await this.requireCredential(accessKeyId);
    await this.change({ actor: options.actor, action: 'credential.revoke', tenant, accessKeyId }, (trx) =>
      trx
        .updateTable('credentials')
        .set((eb) => ({ revoked_at: eb.fn.coalesce('revoked_at', eb.val(Date.now())) }))
        .where('access_key_id', '=', accessKeyId)
        .execute(),
    );
  }

  /** Deletes a credential; afterwards its access key is unknown. */
  async deleteCredential(accessKeyId: string, options: Actor = {}): Promise<void> {
    const { tenant } = await this.requireCredential(accessKeyId);
    await this.change({ actor: options.actor, action: 'credential.delete', tenant, accessKeyId }, (trx) =>
      trx.deleteFrom('credentials').where('access_key_id', '=', accessKeyId).execute(),
    );
  }

}

function rootChange(action: string, accessKeyId: string): Change {
  return { actor: 'system', action, tenant: schema.ROOT_TENANT, accessKeyId };
}

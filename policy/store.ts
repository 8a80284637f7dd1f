/**
 * The policy store: tenants, application credentials (secrets sealed at rest) and bucket ownership in
 * dataDir/policy.db (SQLite, WAL, shared by every gateway process on the data directory). Each change bumps a
 * revision row in the same transaction, which is how other processes know to drop their caches.
 */

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { AuditLog, type AuditRecord } from './audit-log.ts';
import { CredentialCache, type ResolveResult } from './credential-cache.ts';
import { ConflictError, InvalidInputError, MasterKeyMismatchError, NotFoundError } from './errors.ts';
import { invalidGrantReason } from './scopes.ts';
import { loadMasterKey, newAccessKeyId, newSecretKey, open, seal } from './secret-box.ts';
import * as schema from './store-schema.ts';
import { FAMILIES, type ScopeGrant } from './types.ts';

/** How to open a store. */
export interface PolicyStoreOptions {
  dataDir: string;
  /** 32 bytes as base64 or hex (or raw); absent: dataDir/master.key, generated on first start. */
  masterKey?: string | Buffer;
  /** Where changes are recorded; defaults to dataDir/audit.log, `false` for none. */
  audit?: AuditLog | false;
  /** Maximum cached credentials (and bucket owners). */
  cacheSize?: number;
}

/** Who made a change, for the audit log (an access key id, `operator`, …). */
export interface Actor {
  actor?: string;
}

/** A newly created credential: its details and, this once, its secret. */
export type CreatedCredential = schema.CredentialInfo & { secretKey: string };

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const KEY_ID = /^[A-Za-z0-9]{3,128}$/;
const ROOT_SCOPES: ScopeGrant[] = [{ families: [...FAMILIES], bucket: '*' }];

/** Tenants, credentials and bucket ownership, with the per-request lookups cached. */
export class PolicyStore {
  private readonly cache: CredentialCache;

  private constructor(
    private readonly db: Database.Database,
    private readonly masterKey: Buffer,
    private readonly audit: AuditLog | undefined,
    cacheSize: number | undefined,
  ) {
    this.cache = new CredentialCache(db, masterKey, cacheSize);
  }

  /** Opens (creating and migrating when needed) the store of a data directory. */
  static open(options: PolicyStoreOptions): PolicyStore {
    mkdirSync(options.dataDir, { recursive: true });
    const masterKey = loadMasterKey(options.dataDir, options.masterKey);
    const db = new Database(join(options.dataDir, 'policy.db'));
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('busy_timeout = 5000');
      db.pragma('foreign_keys = ON');
      db.pragma('synchronous = NORMAL');
      schema.migrate(db);
      checkMasterKey(db, masterKey);
    } catch (error) {
      db.close();
      throw error;
    }
    const audit = options.audit === false ? undefined : (options.audit ?? new AuditLog({ dataDir: options.dataDir }));
    return new PolicyStore(db, masterKey, audit, options.cacheSize);
  }

  /** Closes the database connection. */
  close(): void {
    this.db.close();
  }

  /** Runs a change in one immediate transaction that bumps the revision, then drops this process's caches. */
  private change<T>(record: Omit<AuditRecord, 'time' | 'actor'> & Actor, fn: () => T): T {
    const result = this.db.transaction(() => {
      const value = fn();
      this.db.prepare("UPDATE meta SET value = value + 1 WHERE key = 'revision'").run();
      return value;
    }).immediate();
    this.cache.invalidate();
    this.audit?.write({ ...record, actor: record.actor ?? 'operator' });
    return result;
  }

  // ── hot path ────────────────────────────────────────────────────────────────────────────────────────────────────

  /** The secrets and Principal of an access key, or why it cannot be used ('unknown', 'revoked', …). */
  resolveAccessKey(accessKeyId: string, now: Date = new Date()): ResolveResult {
    return this.cache.resolve(accessKeyId, now);
  }

  /** The tenant owning a bucket, or undefined when no tenant does. */
  bucketOwner(bucket: string): string | undefined {
    return this.cache.bucketOwner(bucket);
  }

  // ── root ────────────────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Makes sure the root credential exists: generated on first start, or exactly the given pair when both are given
   * (replacing a different one). The secret is returned only when generated or given.
   */
  ensureRoot(given: { accessKeyId?: string; secretKey?: string } = {}): { accessKeyId: string; secretKey?: string; created: boolean; updated: boolean } {
    if ((given.accessKeyId === undefined) !== (given.secretKey === undefined)) {
      throw new InvalidInputError('root access key id and secret key must be given together');
    }
    const existing = this.db.prepare('SELECT * FROM credentials WHERE is_root = 1').get() as schema.CredentialRow | undefined;
    if (given.accessKeyId === undefined || given.secretKey === undefined) {
      if (existing !== undefined) return { accessKeyId: existing.access_key_id, created: false, updated: false };
      const accessKeyId = newAccessKeyId();
      const secretKey = newSecretKey();
      this.change({ actor: 'system', action: 'root.create', tenant: schema.ROOT_TENANT, accessKeyId }, () => this.insertRoot(accessKeyId, secretKey));
      return { accessKeyId, secretKey, created: true, updated: false };
    }
    const { accessKeyId, secretKey } = given;
    if (!KEY_ID.test(accessKeyId)) throw new InvalidInputError('root access key id must be 3-128 letters or digits');
    if (secretKey.length < 8) throw new InvalidInputError('root secret key must be at least 8 characters');
    const same =
      existing !== undefined &&
      existing.access_key_id === accessKeyId &&
      existing.revoked_at === null &&
      open(this.masterKey, { ciphertext: existing.secret_ct, iv: existing.secret_iv, tag: existing.secret_tag }, accessKeyId) === secretKey;
    if (same) return { accessKeyId, secretKey, created: false, updated: false };
    this.change({ actor: 'system', action: existing ? 'root.update' : 'root.create', tenant: schema.ROOT_TENANT, accessKeyId }, () => {
      this.db.prepare('DELETE FROM credentials WHERE is_root = 1 OR access_key_id = ?').run(accessKeyId);
      this.insertRoot(accessKeyId, secretKey);
    });
    return { accessKeyId, secretKey, created: existing === undefined, updated: existing !== undefined };
  }

  private insertRoot(accessKeyId: string, secretKey: string): void {
    this.insertCredential({ accessKeyId, secretKey, tenant: schema.ROOT_TENANT, name: 'root', description: 'bootstrap root credential', scopes: ROOT_SCOPES, isRoot: true });
  }

  private insertCredential(c: { accessKeyId: string; secretKey: string; tenant: string; name: string; description: string; scopes: ScopeGrant[]; isRoot: boolean; expiresAt?: Date }): void {
    const sealed = seal(this.masterKey, c.secretKey, c.accessKeyId);
    this.db
      .prepare(
        `INSERT INTO credentials (access_key_id, tenant, name, description, is_root, scopes, secret_ct, secret_iv, secret_tag, expires_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(c.accessKeyId, c.tenant, c.name, c.description, c.isRoot ? 1 : 0, JSON.stringify(c.scopes), sealed.ciphertext, sealed.iv, sealed.tag, c.expiresAt?.getTime() ?? null, Date.now());
  }

  // ── credentials ─────────────────────────────────────────────────────────────────────────────────────────────────

  /** Creates an application credential; the only time (besides rotate) its secret is returned. */
  createCredential(options: { tenant: string; name: string; description?: string; scopes: ScopeGrant[]; expiresAt?: Date } & Actor): CreatedCredential {
    const { tenant, name, scopes } = options;
    const description = options.description ?? '';
    if (name.trim() === '' || name.length > 128) throw new InvalidInputError('credential name must be 1-128 characters');
    if (description.length > 1024) throw new InvalidInputError('credential description must be at most 1024 characters');
    const invalid = invalidGrantReason(scopes);
    if (invalid !== undefined) throw new InvalidInputError(invalid);
    if (options.expiresAt !== undefined && Number.isNaN(options.expiresAt.getTime())) throw new InvalidInputError('invalid expiry');
    this.requireTenant(tenant);
    const accessKeyId = newAccessKeyId();
    const secretKey = newSecretKey();
    const clean = scopes.map((g): ScopeGrant => (g.prefix ? { families: [...g.families], bucket: g.bucket, prefix: g.prefix } : { families: [...g.families], bucket: g.bucket }));
    this.change({ actor: options.actor, action: 'credential.create', tenant, accessKeyId, details: { name, description, scopes: clean, expiresAt: options.expiresAt?.toISOString() } }, () =>
      this.insertCredential({ accessKeyId, secretKey, tenant, name, description, scopes: clean, isRoot: false, expiresAt: options.expiresAt }),
    );
    return { ...this.requireCredential(accessKeyId), secretKey };
  }

  /** Every credential, or those of one tenant; never with secrets. */
  listCredentials(filter: { tenant?: string } = {}): schema.CredentialInfo[] {
    const rows = (filter.tenant === undefined
      ? this.db.prepare('SELECT * FROM credentials ORDER BY tenant, created_at').all()
      : this.db.prepare('SELECT * FROM credentials WHERE tenant = ? ORDER BY created_at').all(filter.tenant)) as schema.CredentialRow[];
    const now = Date.now();
    return rows.map((row) => schema.credentialInfo(row, now));
  }

  /** One credential without its secret, or undefined. */
  showCredential(accessKeyId: string): schema.CredentialInfo | undefined {
    const row = this.db.prepare('SELECT * FROM credentials WHERE access_key_id = ?').get(accessKeyId) as schema.CredentialRow | undefined;
    return row === undefined ? undefined : schema.credentialInfo(row, Date.now());
  }

  private requireCredential(accessKeyId: string): schema.CredentialInfo {
    const info = this.showCredential(accessKeyId);
    if (info === undefined) throw new NotFoundError(`no credential ${accessKeyId}`);
    return info;
  }

  /**
   * Gives a credential a new secret, returned this once. The old secret stops working at once, or keeps verifying
   * for `graceSeconds` when given.
   */
  rotateCredential(accessKeyId: string, options: { graceSeconds?: number } & Actor = {}): { accessKeyId: string; secretKey: string; previousSecretValidUntil?: string } {
    const grace = options.graceSeconds ?? 0;
    if (!Number.isFinite(grace) || grace < 0) throw new InvalidInputError('grace period must be a non-negative number of seconds');
    const info = this.requireCredential(accessKeyId);
    if (info.status === 'revoked') throw new ConflictError(`credential ${accessKeyId} is revoked`);
    const secretKey = newSecretKey();
    const sealed = seal(this.masterKey, secretKey, accessKeyId);
    const now = Date.now();
    const until = grace > 0 ? now + grace * 1000 : null;
    this.change({ actor: options.actor, action: 'credential.rotate', tenant: info.tenant, accessKeyId, details: { graceSeconds: grace } }, () =>
      this.db
        .prepare(
          `UPDATE credentials SET
             prev_ct = CASE WHEN @until IS NULL THEN NULL ELSE secret_ct END,
             prev_iv = CASE WHEN @until IS NULL THEN NULL ELSE secret_iv END,
             prev_tag = CASE WHEN @until IS NULL THEN NULL ELSE secret_tag END,
             prev_until = @until, secret_ct = @ct, secret_iv = @iv, secret_tag = @tag, rotated_at = @now
           WHERE access_key_id = @id`,
        )
        .run({ until, ct: sealed.ciphertext, iv: sealed.iv, tag: sealed.tag, now, id: accessKeyId }),
    );
    const result: { accessKeyId: string; secretKey: string; previousSecretValidUntil?: string } = { accessKeyId, secretKey };
    if (until !== null) result.previousSecretValidUntil = new Date(until).toISOString();
    return result;
  }

  /** Revokes a credential: every process refuses it from its next request on. */
  revokeCredential(accessKeyId: string, options: Actor = {}): void {
    const info = this.requireCredential(accessKeyId);
    this.change({ actor: options.actor, action: 'credential.revoke', tenant: info.tenant, accessKeyId }, () =>
      this.db.prepare('UPDATE credentials SET revoked_at = coalesce(revoked_at, ?) WHERE access_key_id = ?').run(Date.now(), accessKeyId),
    );
  }

  /** Deletes a credential; afterwards its access key is unknown. */
  deleteCredential(accessKeyId: string, options: Actor = {}): void {
    const info = this.requireCredential(accessKeyId);
    this.change({ actor: options.actor, action: 'credential.delete', tenant: info.tenant, accessKeyId }, () =>
      this.db.prepare('DELETE FROM credentials WHERE access_key_id = ?').run(accessKeyId),
    );
  }

  // ── tenants ─────────────────────────────────────────────────────────────────────────────────────────────────────

  private static readonly TENANT_SELECT = `SELECT t.*,
      (SELECT count(*) FROM buckets b WHERE b.tenant = t.name) AS bucket_count,
      (SELECT count(*) FROM credentials c WHERE c.tenant = t.name) AS credential_count
    FROM tenants t`;

  /** Creates a tenant (lowercase letters, digits, `.`, `_`, `-`; up to 63 characters). */
  createTenant(options: { name: string; description?: string } & Actor): schema.TenantInfo {
    const { name } = options;
    if (!NAME.test(name)) throw new InvalidInputError('tenant name must be 1-63 lowercase letters, digits, ".", "_" or "-"');
    if (this.showTenant(name) !== undefined) throw new ConflictError(`tenant ${name} exists`);
    this.change({ actor: options.actor, action: 'tenant.create', tenant: name, details: { description: options.description ?? '' } }, () =>
      this.db.prepare('INSERT INTO tenants (name, description, created_at) VALUES (?, ?, ?)').run(name, options.description ?? '', Date.now()),
    );
    return this.requireTenant(name);
  }

  /** Every tenant, the system tenant included. */
  listTenants(): schema.TenantInfo[] {
    return (this.db.prepare(`${PolicyStore.TENANT_SELECT} ORDER BY t.name`).all() as schema.TenantRow[]).map(schema.tenantInfo);
  }

  /** One tenant, or undefined. */
  showTenant(name: string): schema.TenantInfo | undefined {
    const row = this.db.prepare(`${PolicyStore.TENANT_SELECT} WHERE t.name = ?`).get(name) as schema.TenantRow | undefined;
    return row === undefined ? undefined : schema.tenantInfo(row);
  }

  private requireTenant(name: string): schema.TenantInfo {
    const info = this.showTenant(name);
    if (info === undefined) throw new NotFoundError(`no tenant ${name}`);
    return info;
  }

  /** Disables (or with `disabled: false` re-enables) a tenant; a disabled tenant's credentials stop working. */
  disableTenant(name: string, options: { disabled?: boolean } & Actor = {}): void {
    const disabled = options.disabled ?? true;
    if (name === schema.ROOT_TENANT) throw new InvalidInputError('the system tenant cannot be disabled');
    this.requireTenant(name);
    this.change({ actor: options.actor, action: disabled ? 'tenant.disable' : 'tenant.enable', tenant: name }, () =>
      this.db.prepare('UPDATE tenants SET disabled = ? WHERE name = ?').run(disabled ? 1 : 0, name),
    );
  }

  /** Deletes a tenant and its credentials; refused while it owns buckets. */
  deleteTenant(name: string, options: Actor = {}): void {
    if (name === schema.ROOT_TENANT) throw new InvalidInputError('the system tenant cannot be deleted');
    const info = this.requireTenant(name);
    if (info.bucketCount > 0) throw new ConflictError(`tenant ${name} still owns ${info.bucketCount} bucket(s)`);
    this.change({ actor: options.actor, action: 'tenant.delete', tenant: name }, () => {
      this.db.prepare('DELETE FROM credentials WHERE tenant = ?').run(name);
      this.db.prepare('DELETE FROM tenants WHERE name = ?').run(name);
    });
  }

  // ── buckets ─────────────────────────────────────────────────────────────────────────────────────────────────────

  /** Records that a tenant owns a bucket; refused when another tenant owns it, unless `reassign` (operator move). */
  assignBucket(bucket: string, tenant: string, options: { reassign?: boolean } & Actor = {}): void {
    this.requireTenant(tenant);
    const current = this.db.prepare('SELECT tenant FROM buckets WHERE name = ?').pluck().get(bucket) as string | undefined;
    if (current === tenant) return;
    if (current !== undefined && options.reassign !== true) throw new ConflictError(`bucket ${bucket} is owned by another tenant`);
    this.change({ actor: options.actor, action: current === undefined ? 'bucket.assign' : 'bucket.reassign', tenant, bucket, details: current ? { from: current } : undefined }, () =>
      this.db.prepare('INSERT INTO buckets (name, tenant, assigned_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET tenant = excluded.tenant, assigned_at = excluded.assigned_at').run(bucket, tenant, Date.now()),
    );
  }

  /** Forgets a bucket's owner (after DeleteBucket). */
  releaseBucket(bucket: string, options: Actor = {}): void {
    const current = this.db.prepare('SELECT tenant FROM buckets WHERE name = ?').pluck().get(bucket) as string | undefined;
    if (current === undefined) return;
    this.change({ actor: options.actor, action: 'bucket.release', tenant: current, bucket }, () =>
      this.db.prepare('DELETE FROM buckets WHERE name = ?').run(bucket),
    );
  }

  /** The buckets a tenant owns, by name. */
  listTenantBuckets(tenant: string): string[] {
    return this.db.prepare('SELECT name FROM buckets WHERE tenant = ? ORDER BY name').pluck().all(tenant) as string[];
  }

  /** Every owned bucket and its tenant (for ListBuckets by root and for visibleBuckets). */
  bucketOwners(): Map<string, string> {
    const rows = this.db.prepare('SELECT name, tenant FROM buckets').all() as { name: string; tenant: string }[];
    return new Map(rows.map((row) => [row.name, row.tenant]));
  }
}

/** Verifies the master key against a sealed marker, written on first open, so a wrong key fails at start. */
function checkMasterKey(db: Database.Database, key: Buffer): void {
  const stored = db.prepare("SELECT value FROM meta WHERE key = 'key_check'").pluck().get() as string | undefined;
  if (stored === undefined) {
    const sealed = seal(key, 'anvil-key-check', 'key_check');
    const value = JSON.stringify({ ct: sealed.ciphertext.toString('base64'), iv: sealed.iv.toString('base64'), tag: sealed.tag.toString('base64') });
    db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('key_check', ?)").run(value);
    return checkMasterKey(db, key); // another process may have won the insert
  }
  const parts = JSON.parse(stored) as { ct: string; iv: string; tag: string };
  try {
    open(key, { ciphertext: Buffer.from(parts.ct, 'base64'), iv: Buffer.from(parts.iv, 'base64'), tag: Buffer.from(parts.tag, 'base64') }, 'key_check');
  } catch {
    throw new MasterKeyMismatchError('the master key does not match the one the stored secrets were sealed with');
  }
}

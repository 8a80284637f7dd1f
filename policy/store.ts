/**
 * The policy store: application credentials (secrets sealed at rest), the root bootstrap and the per-request lookup,
 * on top of tenants and bucket ownership (tenancy.ts), all in dataDir/policy.db (SQLite, WAL, shared by every gateway
 * process on the data directory). Each change bumps a revision row, which is how other processes drop their caches.
 */

import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { AuditLog } from './audit-log.ts';
import { CredentialCache, type ResolveResult } from './credential-cache.ts';
import { ConflictError, InvalidInputError, NotFoundError } from './errors.ts';
import { invalidGrantReason, normalizeGrant } from './scopes.ts';
import { loadMasterKey, newAccessKeyId, newSecretKey, open, seal } from './secret-box.ts';
import type { Actor, Change } from './store-base.ts';
import * as schema from './store-schema.ts';
import { TenancyStore } from './tenancy.ts';
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

/** Tenants, credentials and bucket ownership, with the per-request lookups cached. */
export class PolicyStore extends TenancyStore {
  private constructor(
    db: Database.Database,
    private readonly masterKey: Buffer,
    audit: AuditLog | undefined,
    cacheSize: number | undefined,
  ) {
    super(db, new CredentialCache(db, masterKey, cacheSize), audit);
  }

  /** Opens (creating and migrating when needed) the store of a data directory. */
  static open(options: PolicyStoreOptions): PolicyStore {
    mkdirSync(options.dataDir, { recursive: true });
    const masterKey = loadMasterKey(options.dataDir, options.masterKey);
    const path = join(options.dataDir, 'policy.db');
    const db = new Database(path);
    try {
      chmodSync(path, 0o600); // ciphertexts only, but no reason for anyone else to read them; WAL files inherit it

      db.pragma('journal_mode = WAL');
      db.pragma('busy_timeout = 5000');
      db.pragma('foreign_keys = ON');
      // FULL: a commit (a revocation, a tuple delete, a new signing key or root credential) survives a power cut, not
      // only a crash; NORMAL could roll the last ones back.
      db.pragma('synchronous = FULL');
      schema.migrate(db);
      schema.verifyMasterKey(db, masterKey);
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

  // ── hot path ───────────────────────────────────────────────────────────────────────────────────────────────────

  /** The secrets and Principal of an access key, or why it cannot be used ('unknown', 'revoked', …). */
  resolveAccessKey(accessKeyId: string, now: Date = new Date()): ResolveResult {
    return this.cache.resolve(accessKeyId, now);
  }

  // ── root ───────────────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Makes sure the root credential exists: generated on first start, or exactly the given pair when both are given
   * (replacing a different one). Decided inside one transaction, so processes starting together agree on one root.
   */
  ensureRoot(given: { accessKeyId?: string; secretKey?: string } = {}): RootResult {
    const { accessKeyId: wantId, secretKey: wantSecret } = given;
    if ((wantId === undefined) !== (wantSecret === undefined)) {
      throw new InvalidInputError('root access key id and secret key must be given together');
    }
    if (wantId !== undefined && !ROOT_KEY_ID.test(wantId)) throw new InvalidInputError('root access key id must be 3-128 letters or digits');
    if (wantSecret !== undefined && wantSecret.length < 8) throw new InvalidInputError('root secret key must be at least 8 characters');
    return this.commit<RootResult>(() => {
      const existing = this.db.prepare('SELECT * FROM credentials WHERE is_root = 1').get() as schema.CredentialRow | undefined;
      if (wantId === undefined || wantSecret === undefined) {
        if (existing) return { result: { accessKeyId: existing.access_key_id, created: false, updated: false } };
        const accessKeyId = newAccessKeyId();
        const secretKey = newSecretKey();
        this.insertRoot(accessKeyId, secretKey);
        return { result: { accessKeyId, secretKey, created: true, updated: false }, change: rootChange('root.create', accessKeyId) };
      }
      const unchanged =
        existing?.access_key_id === wantId &&
        existing.revoked_at === null &&
        open(this.masterKey, { ciphertext: existing.secret_ct, iv: existing.secret_iv, tag: existing.secret_tag }, wantId) === wantSecret;
      const result = { accessKeyId: wantId, secretKey: wantSecret, created: existing === undefined, updated: existing !== undefined };
      if (unchanged) return { result: { ...result, updated: false } };
      const clash = this.db.prepare('SELECT 1 FROM credentials WHERE access_key_id = ? AND is_root = 0').get(wantId);
      if (clash) throw new ConflictError(`access key id ${wantId} belongs to an application credential`);
      this.db.prepare('DELETE FROM credentials WHERE is_root = 1').run();
      this.insertRoot(wantId, wantSecret);
      return { result, change: rootChange(existing ? 'root.update' : 'root.create', wantId) };
    });
  }

  private insertRoot(accessKeyId: string, secretKey: string): void {
    const description = 'bootstrap root credential';
    this.insertCredential({ accessKeyId, secretKey, tenant: schema.ROOT_TENANT, name: 'root', description, scopes: ROOT_SCOPES, isRoot: true });
  }

  private insertCredential(c: {
    accessKeyId: string;
    secretKey: string;
    tenant: string;
    name: string;
    description: string;
    scopes: ScopeGrant[];
    isRoot: boolean;
    expiresAt?: Date;
    createdBy?: string;
  }): void {
    const sealed = seal(this.masterKey, c.secretKey, c.accessKeyId);
    this.db
      .prepare(
        `INSERT INTO credentials (access_key_id, tenant, name, description, is_root, scopes,
           secret_ct, secret_iv, secret_tag, expires_at, created_at, created_by)
         VALUES (@id, @tenant, @name, @description, @isRoot, @scopes, @ct, @iv, @tag, @expiresAt, @now, @createdBy)`,
      )
      .run({
        id: c.accessKeyId,
        tenant: c.tenant,
        name: c.name,
        description: c.description,
        isRoot: c.isRoot ? 1 : 0,
        scopes: JSON.stringify(c.scopes),
        ct: sealed.ciphertext,
        iv: sealed.iv,
        tag: sealed.tag,
        expiresAt: c.expiresAt?.getTime() ?? null,
        now: Date.now(),
        createdBy: c.createdBy ?? null,
      });
  }

  // ── credentials ────────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Creates an application credential; the only time (besides rotate) its secret is returned. `maker` is the
   * application credential creating it (absent for root and the operator): the new credential can never do more than
   * its maker can at that moment, and revoking, expiring or deleting the maker ends it.
   */
  createCredential(
    options: { tenant: string; name: string; description?: string; scopes: ScopeGrant[]; expiresAt?: Date; maker?: string } & Actor,
  ): CreatedCredential {
    const { tenant, name, expiresAt } = options;
    const description = options.description ?? '';
    if (name.trim() === '' || name.length > 128) throw new InvalidInputError('credential name must be 1-128 characters');
    if (description.length > 1024) throw new InvalidInputError('credential description must be at most 1024 characters');
    const invalid = invalidGrantReason(options.scopes);
    if (invalid !== undefined) throw new InvalidInputError(invalid);
    if (expiresAt !== undefined && Number.isNaN(expiresAt.getTime())) throw new InvalidInputError('invalid expiry time');
    this.requireTenant(tenant);
    // Copy only the known fields, so nothing a caller tacked on is stored.
    const scopes = options.scopes.map(normalizeGrant);
    if (options.maker !== undefined && this.showCredential(options.maker)?.tenant !== tenant) {
      throw new InvalidInputError(`credential ${options.maker} of another tenant cannot make credentials of tenant ${tenant}`);
    }
    const accessKeyId = newAccessKeyId();
    const secretKey = newSecretKey();
    const details = { name, description, scopes, expiresAt: expiresAt?.toISOString(), createdBy: options.maker };
    this.change({ actor: options.actor, action: 'credential.create', tenant, accessKeyId, details }, () =>
      this.insertCredential({ accessKeyId, secretKey, tenant, name, description, scopes, isRoot: false, expiresAt, createdBy: options.maker }),
    );
    return { ...this.requireCredential(accessKeyId), secretKey };
  }

  /** Every credential, or those of one tenant; never with secrets. */
  listCredentials(filter: { tenant?: string } = {}): schema.CredentialInfo[] {
    const rows = (
      filter.tenant === undefined
        ? this.db.prepare('SELECT * FROM credentials ORDER BY tenant, created_at').all()
        : this.db.prepare('SELECT * FROM credentials WHERE tenant = ? ORDER BY created_at').all(filter.tenant)
    ) as schema.CredentialRow[];
    const now = Date.now();
    return rows.map((row) => schema.credentialInfo(row, now));
  }

  /** One credential without its secret, or undefined. */
  showCredential(accessKeyId: string): schema.CredentialInfo | undefined {
    const row = this.db.prepare('SELECT * FROM credentials WHERE access_key_id = ?').get(accessKeyId);
    return row === undefined ? undefined : schema.credentialInfo(row as schema.CredentialRow, Date.now());
  }

  private requireCredential(accessKeyId: string): schema.CredentialInfo {
    const info = this.showCredential(accessKeyId);
    if (info === undefined) throw new NotFoundError(`no credential ${accessKeyId}`);
    return info;
  }

  /**
   * Gives a credential a new secret, returned this once. The old secret stops working at once, or keeps verifying
   * for `graceSeconds` when given (a secret already in grace from an earlier rotation stops now).
   */
  rotateCredential(accessKeyId: string, options: { graceSeconds?: number } & Actor = {}): RotatedCredential {
    const grace = options.graceSeconds ?? 0;
    if (!Number.isFinite(grace) || grace < 0) throw new InvalidInputError('grace period must be a non-negative number of seconds');
    const info = this.requireCredential(accessKeyId);
    if (info.status === 'revoked') throw new ConflictError(`credential ${accessKeyId} is revoked`);
    const secretKey = newSecretKey();
    const sealed = seal(this.masterKey, secretKey, accessKeyId);
    const now = Date.now();
    const until = grace > 0 ? now + grace * 1000 : null;
    const change = { actor: options.actor, action: 'credential.rotate', tenant: info.tenant, accessKeyId, details: { graceSeconds: grace } };
    this.change(change, () =>
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
    return until === null ? { accessKeyId, secretKey } : { accessKeyId, secretKey, previousSecretValidUntil: new Date(until).toISOString() };
  }

  /** Revokes a credential: every process refuses it from its next request on. */
  revokeCredential(accessKeyId: string, options: Actor = {}): void {
    const { tenant } = this.requireCredential(accessKeyId);
    this.change({ actor: options.actor, action: 'credential.revoke', tenant, accessKeyId }, () =>
      this.db.prepare('UPDATE credentials SET revoked_at = coalesce(revoked_at, ?) WHERE access_key_id = ?').run(Date.now(), accessKeyId),
    );
  }

  /** Deletes a credential; afterwards its access key is unknown. */
  deleteCredential(accessKeyId: string, options: Actor = {}): void {
    const { tenant } = this.requireCredential(accessKeyId);
    this.change({ actor: options.actor, action: 'credential.delete', tenant, accessKeyId }, () =>
      this.db.prepare('DELETE FROM credentials WHERE access_key_id = ?').run(accessKeyId),
    );
  }

}

function rootChange(action: string, accessKeyId: string): Change {
  return { actor: 'system', action, tenant: schema.ROOT_TENANT, accessKeyId };
}

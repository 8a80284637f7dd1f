/**
 * The policy database's schema (applied as numbered migrations) and the row shapes store.ts reads. Times are epoch
 * milliseconds; scopes are JSON; secrets are AES-256-GCM ciphertext, iv and tag columns, never plaintext.
 */

import type Database from 'better-sqlite3';
import { MasterKeyMismatchError } from './errors.ts';
import { applyMigrations } from './migrations.ts';
import { open, seal } from './secret-box.ts';
import type { ScopeGrant } from './types.ts';

/** The system tenant the root credential (and buckets it creates) belong to. */
export const ROOT_TENANT = 'root';

/** Ordered schema changes; an entry, once released, is never edited, only followed by a new one. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value ANY) STRICT;
   INSERT INTO meta (key, value) VALUES ('revision', 0);
   CREATE TABLE tenants (
     name TEXT PRIMARY KEY,
     description TEXT NOT NULL DEFAULT '',
     disabled INTEGER NOT NULL DEFAULT 0,
     created_at INTEGER NOT NULL
   ) STRICT;
   INSERT INTO tenants (name, description, created_at) VALUES ('${ROOT_TENANT}', 'system tenant of the root credential', unixepoch() * 1000);
   CREATE TABLE credentials (
     access_key_id TEXT PRIMARY KEY,
     tenant TEXT NOT NULL REFERENCES tenants(name) ON DELETE CASCADE,
     name TEXT NOT NULL,
     description TEXT NOT NULL DEFAULT '',
     is_root INTEGER NOT NULL DEFAULT 0,
     scopes TEXT NOT NULL,
     secret_ct BLOB NOT NULL, secret_iv BLOB NOT NULL, secret_tag BLOB NOT NULL,
     prev_ct BLOB, prev_iv BLOB, prev_tag BLOB, prev_until INTEGER,
     expires_at INTEGER,
     created_at INTEGER NOT NULL,
     rotated_at INTEGER,
     last_used_at INTEGER,
     revoked_at INTEGER
   ) STRICT;
   CREATE INDEX credentials_tenant ON credentials (tenant);
   CREATE TABLE buckets (
     name TEXT PRIMARY KEY,
     tenant TEXT NOT NULL REFERENCES tenants(name),
     assigned_at INTEGER NOT NULL
   ) STRICT;
   CREATE INDEX buckets_tenant ON buckets (tenant);`,
  // 2: buckets whose object access relationships govern as well as scopes.
  `ALTER TABLE buckets ADD COLUMN governed INTEGER NOT NULL DEFAULT 0;`,
  // 3: authority never grows. Tenants and roles get immutable ids (a re-created name is a new thing); every
  // delegation records its maker (NULL: root or the operator), whose authority bounds it at every use; the session
  // and capability tables join the numbered migrations; capabilities are recorded when minted. Providers made
  // before this name roles by name only and are left with no role ids: they fail closed until re-registered.
  `ALTER TABLE tenants ADD COLUMN id TEXT;
   UPDATE tenants SET id = lower(hex(randomblob(12)));
   CREATE UNIQUE INDEX tenants_id ON tenants (id);
   ALTER TABLE credentials ADD COLUMN created_by TEXT;
   CREATE TABLE IF NOT EXISTS sts_roles (
     tenant TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
     scopes TEXT NOT NULL, max_duration_s INTEGER NOT NULL, trust TEXT,
     created_at INTEGER NOT NULL, PRIMARY KEY (tenant, name)
   ) STRICT;
   ALTER TABLE sts_roles ADD COLUMN id TEXT;
   ALTER TABLE sts_roles ADD COLUMN created_by TEXT;
   UPDATE sts_roles SET id = 'role-' || lower(hex(randomblob(12)));
   CREATE UNIQUE INDEX sts_roles_id ON sts_roles (id);
   CREATE TABLE IF NOT EXISTS sts_oidc_providers (
     id TEXT PRIMARY KEY, tenant TEXT NOT NULL, issuer TEXT NOT NULL, audience TEXT NOT NULL, jwks TEXT NOT NULL,
     algorithms TEXT NOT NULL, roles TEXT NOT NULL, created_at INTEGER NOT NULL, UNIQUE (tenant, issuer)
   ) STRICT;
   ALTER TABLE sts_oidc_providers ADD COLUMN role_ids TEXT NOT NULL DEFAULT '[]';
   ALTER TABLE sts_oidc_providers ADD COLUMN created_by TEXT;
   CREATE TABLE IF NOT EXISTS sts_signing_keys (
     kid TEXT PRIMARY KEY, alg TEXT NOT NULL, public_jwk TEXT NOT NULL,
     private_ct BLOB NOT NULL, private_iv BLOB NOT NULL, private_tag BLOB NOT NULL,
     created_at INTEGER NOT NULL, retire_at INTEGER
   ) STRICT;
   CREATE TABLE IF NOT EXISTS capability_root_keys (
     tenant TEXT PRIMARY KEY,
     generation INTEGER NOT NULL,
     key_ct BLOB NOT NULL, key_iv BLOB NOT NULL, key_tag BLOB NOT NULL,
     created_at INTEGER NOT NULL
   ) STRICT;
   CREATE TABLE IF NOT EXISTS capability_revocations (
     id TEXT PRIMARY KEY,
     tenant TEXT NOT NULL,
     revoked_at INTEGER NOT NULL
   ) STRICT;
   CREATE TABLE capability_mints (
     id TEXT PRIMARY KEY,
     tenant TEXT NOT NULL,
     tenant_id TEXT NOT NULL,
     scope TEXT NOT NULL,
     actions TEXT,
     minted_by TEXT,
     created_at INTEGER NOT NULL
   ) STRICT;
   CREATE INDEX capability_mints_tenant ON capability_mints (tenant);`,
];

/**
 * Values of tenants.disabled: 0 enabled, 1 disabled, 2 locked down (an emergency stop that only a lift undoes).
 * Everything that reads the column treats any non-zero value as "refuse the tenant's callers".
 */
export const TENANT_STATE = { enabled: 0, disabled: 1, lockedDown: 2 } as const;

/** Tables whose rows belong to one tenant (by its name): a tenant's deletion removes them with it. */
export const TENANT_OWNED_TABLES = ['credentials', 'sts_roles', 'sts_oidc_providers', 'capability_root_keys', 'capability_revocations', 'capability_mints'] as const;

/** Applies the migrations not yet recorded in the migrations table, in one immediate transaction. */
export function migrate(db: Database.Database): void {
  applyMigrations(db, MIGRATIONS);
}

/** Verifies the master key against a sealed marker written on first open, so a wrong key fails at start. */
export function verifyMasterKey(db: Database.Database, key: Buffer): void {
  const read = db.prepare("SELECT value FROM meta WHERE key = 'key_check'").pluck();
  if (read.get() === undefined) {
    const sealed = seal(key, 'anvil-key-check', 'key_check');
    const value = JSON.stringify({ ct: sealed.ciphertext.toString('base64'), iv: sealed.iv.toString('base64'), tag: sealed.tag.toString('base64') });
    // OR IGNORE: another process starting at the same moment may have written its marker first; that one wins.
    db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('key_check', ?)").run(value);
  }
  const parts = JSON.parse(read.get() as string) as { ct: string; iv: string; tag: string };
  try {
    const sealed = { ciphertext: Buffer.from(parts.ct, 'base64'), iv: Buffer.from(parts.iv, 'base64'), tag: Buffer.from(parts.tag, 'base64') };
    open(key, sealed, 'key_check');
  } catch {
    throw new MasterKeyMismatchError('the master key does not match the one the stored secrets were sealed with');
  }
}

/** A credentials row. */
export interface CredentialRow {
  access_key_id: string;
  tenant: string;
  name: string;
  description: string;
  is_root: number;
  scopes: string;
  secret_ct: Buffer;
  secret_iv: Buffer;
  secret_tag: Buffer;
  prev_ct: Buffer | null;
  prev_iv: Buffer | null;
  prev_tag: Buffer | null;
  prev_until: number | null;
  expires_at: number | null;
  created_at: number;
  rotated_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
  /** The application credential that created this one (NULL: root or the operator). */
  created_by: string | null;
}

/** A tenants row with its counts. */
export interface TenantRow {
  name: string;
  id: string;
  description: string;
  disabled: number;
  created_at: number;
  bucket_count: number;
  credential_count: number;
}

/** A tenant as the store shows it. */
export interface TenantInfo {
  name: string;
  /** Immutable: a tenant deleted and created again under the same name has a new id. */
  id: string;
  description: string;
  /** Its callers are refused: disabled, or locked down. */
  disabled: boolean;
  /** Locked down (`anvil tenant lockdown`): disabled until the lockdown is lifted; `tenant enable` cannot undo it. */
  lockedDown: boolean;
  createdAt: string;
  bucketCount: number;
  credentialCount: number;
}

/** Whether a credential works now, and if not why. */
export type CredentialStatus = 'active' | 'revoked' | 'expired';

/** A credential as the store shows it: everything but the secret. */
export interface CredentialInfo {
  accessKeyId: string;
  tenant: string;
  name: string;
  description: string;
  isRoot: boolean;
  scopes: ScopeGrant[];
  status: CredentialStatus;
  createdAt: string;
  expiresAt?: string;
  rotatedAt?: string;
  lastUsedAt?: string;
  revokedAt?: string;
  /** Until when the secret replaced by the last rotation still verifies. */
  previousSecretValidUntil?: string;
  /** The credential that created this one, whose authority bounds it at every use (absent: root or the operator). */
  createdBy?: string;
}

function iso(ms: number | null): string | undefined {
  return ms === null ? undefined : new Date(ms).toISOString();
}

/** A credentials row shown without its secrets. */
export function credentialInfo(row: CredentialRow, nowMs: number): CredentialInfo {
  const status: CredentialStatus =
    row.revoked_at !== null ? 'revoked' : row.expires_at !== null && row.expires_at <= nowMs ? 'expired' : 'active';
  const info: CredentialInfo = {
    accessKeyId: row.access_key_id,
    tenant: row.tenant,
    name: row.name,
    description: row.description,
    isRoot: row.is_root === 1,
    scopes: JSON.parse(row.scopes) as ScopeGrant[],
    status,
    createdAt: new Date(row.created_at).toISOString(),
  };
  const optional = {
    expiresAt: iso(row.expires_at),
    rotatedAt: iso(row.rotated_at),
    lastUsedAt: iso(row.last_used_at),
    revokedAt: iso(row.revoked_at),
    previousSecretValidUntil: row.prev_until !== null && row.prev_until > nowMs ? iso(row.prev_until) : undefined,
    createdBy: row.created_by ?? undefined,
  };
  for (const [name, value] of Object.entries(optional)) if (value !== undefined) Object.assign(info, { [name]: value });
  return info;
}

/** A tenants row as the store shows it. */
export function tenantInfo(row: TenantRow): TenantInfo {
  return {
    name: row.name,
    id: row.id,
    description: row.description,
    disabled: row.disabled !== TENANT_STATE.enabled,
    lockedDown: row.disabled === TENANT_STATE.lockedDown,
    createdAt: new Date(row.created_at).toISOString(),
    bucketCount: row.bucket_count,
    credentialCount: row.credential_count,
  };
}

/**
 * The row shapes store.ts reads and how they are shown (the tables and their migrations are in policy/database/),
 * and the master key check. Times are epoch milliseconds; scopes are JSON; secrets are AES-256-GCM ciphertext, iv and
 * tag columns, never plaintext.
 */

import { createHmac } from 'node:crypto';
import type { Kysely } from 'kysely';
import { credentialFailure, type CredentialFailure, type CredentialState } from './credential-state.ts';
import type { PolicyTables } from './database/tables.ts';
import { MasterKeyMismatchError } from './errors.ts';
import { open, seal } from './secret-box.ts';
import type { ScopeGrant } from './types.ts';

/** The system tenant the root credential (and buckets it creates) belong to. */
export const ROOT_TENANT = 'root';

/**
 * Values of tenants.disabled: 0 enabled, 1 disabled, 2 locked down (an emergency stop that only a lift undoes).
 * Everything that reads the column treats any non-zero value as "refuse the tenant's callers".
 */
export const TENANT_STATE = { enabled: 0, disabled: 1, lockedDown: 2 } as const;

/** Tables whose rows belong to one tenant (by its name): a tenant's deletion removes them with it. */
export const TENANT_OWNED_TABLES = ['credentials', 'sts_roles', 'sts_oidc_providers', 'capability_root_keys', 'capability_revocations', 'capability_mints'] as const;

/** The meta key of the sealed marker that verifies the master key, and of the key's public reference. */
const KEY_CHECK = 'key_check';
const KEY_REFERENCE = 'master_key_id';

/**
 * The master key's public reference: an HMAC of a fixed label under the key, so nodes and operators can tell which
 * key sealed the stored secrets without the key itself ever leaving configuration.
 */
export function masterKeyReference(key: Buffer): string {
  return createHmac('sha256', key).update('anvil master key reference').digest('hex').slice(0, 16);
}

/**
 * Verifies the master key against the sealed marker the database holds (written by the first node to open it), so
 * a node given another key fails at start instead of failing every secret later. The database keeps the key's
 * reference beside the marker; the error names both references.
 */
export async function verifyMasterKey(db: Kysely<PolicyTables>, key: Buffer): Promise<void> {
  const sealed = seal(key, 'anvil-key-check', KEY_CHECK);
  const value = JSON.stringify({ ct: sealed.ciphertext.toString('base64'), iv: sealed.iv.toString('base64'), tag: sealed.tag.toString('base64') });
  // DO NOTHING: another node starting at the same moment may have written its marker first; that one wins.
  await db.insertInto('meta').values({ key: KEY_CHECK, value }).onConflict((oc) => oc.column('key').doNothing()).execute();
  const rows = await db.selectFrom('meta').select(['key', 'value']).where('key', 'in', [KEY_CHECK, KEY_REFERENCE]).execute();
  const stored = new Map(rows.map((r) => [r.key, r.value]));
  const parts = JSON.parse(stored.get(KEY_CHECK)!) as { ct: string; iv: string; tag: string };
  try {
    open(key, { ciphertext: Buffer.from(parts.ct, 'base64'), iv: Buffer.from(parts.iv, 'base64'), tag: Buffer.from(parts.tag, 'base64') }, KEY_CHECK);
  } catch {
    throw new MasterKeyMismatchError(
      `the master key (reference ${masterKeyReference(key)}) does not match the one the stored secrets were sealed with ` +
        `(reference ${stored.get(KEY_REFERENCE) ?? 'unknown'}): every node needs the same key`,
    );
  }
  // Recorded only once the key is proven right (databases from before references existed get theirs now).
  if (!stored.has(KEY_REFERENCE)) {
    await db.insertInto('meta').values({ key: KEY_REFERENCE, value: masterKeyReference(key) }).onConflict((oc) => oc.column('key').doNothing()).execute();
  }
}

/** A credentials row (`created_by`: the application credential that created it; NULL for root or the operator). */
export type CredentialRow = PolicyTables['credentials'];

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

/** Whether a credential works now, and if not why: the reasons requests give (credential-state.ts). */
export type CredentialStatus = 'active' | Exclude<CredentialFailure, 'unknown'>;

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

/** A credentials row shown without its secrets, with the status `state` (its maker chain's included) has at `nowMs`. */
export function credentialInfo(row: CredentialRow, state: CredentialState, nowMs: number): CredentialInfo {
  const status: CredentialStatus = credentialFailure(state, nowMs) ?? 'active';
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

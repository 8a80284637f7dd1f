/**
 * A second connection to dataDir/policy.db for the session and capability tables. They live beside the core policy
 * tables (same file, same WAL, same master key) but are created here with IF NOT EXISTS, so the core migration
 * list stays the policy store's own.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** Opens policy.db (created and migrated by PolicyStore.open first) and applies `ddl` (if any) in one immediate transaction. */
export function openPolicyDatabase(dataDir: string, ddl: string): Database.Database {
  const db = new Database(join(dataDir, 'policy.db'));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    // FULL: a commit (a revocation, a tuple delete, a new signing key or root credential) survives a power cut, not
    // only a crash; NORMAL could roll the last ones back.
    db.pragma('synchronous = FULL');
    db.transaction(() => db.exec(ddl)).immediate();
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/**
 * Whether a tenant exists and is enabled, read from the core tenants table; with `id`, only while the tenant of that
 * name is still the one with that immutable id (a re-created tenant of the same name is another tenant).
 */
export function tenantEnabled(db: Database.Database, tenant: string, id?: string): boolean {
  const row = db.prepare('SELECT disabled, id FROM tenants WHERE name = ?').get(tenant) as { disabled: number; id: string } | undefined;
  return row !== undefined && row.disabled === 0 && (id === undefined || row.id === id);
}

/** The immutable id of the tenant that has this name now, or undefined. */
export function tenantIdOf(db: Database.Database, tenant: string): string | undefined {
  return db.prepare('SELECT id FROM tenants WHERE name = ?').pluck().get(tenant) as string | undefined;
}

/**
 * A second connection to dataDir/policy.db for the session and capability tables. They live beside the core policy
 * tables (same file, same WAL, same master key) but are created here with IF NOT EXISTS, so the core migration
 * list stays the policy store's own.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** Opens policy.db (created by PolicyStore.open first) and applies `ddl` idempotently in one immediate transaction. */
export function openPolicyDatabase(dataDir: string, ddl: string): Database.Database {
  const db = new Database(join(dataDir, 'policy.db'));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    db.pragma('synchronous = NORMAL');
    db.transaction(() => db.exec(ddl)).immediate();
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/** Whether a tenant exists and is enabled, read from the core tenants table. */
export function tenantEnabled(db: Database.Database, tenant: string): boolean {
  const row = db.prepare('SELECT disabled FROM tenants WHERE name = ?').get(tenant) as { disabled: number } | undefined;
  return row !== undefined && row.disabled === 0;
}

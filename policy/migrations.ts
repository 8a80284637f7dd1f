/**
 * Numbered schema migrations for the SQLite databases in policy/ (policy.db, relationships.db): migration N is the
 * N-th SQL text of a list, applied once and recorded in that database's `migrations` table.
 */
import type Database from 'better-sqlite3';

/** Applies the migrations not yet recorded in the database's migrations table, in one immediate transaction. */
export function applyMigrations(db: Database.Database, migrations: readonly string[]): void {
  db.exec('CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT');
  db.transaction(() => {
    const applied = db.prepare('SELECT coalesce(max(version), 0) FROM migrations').pluck().get() as number;
    migrations.slice(applied).forEach((sql, index) => {
      db.exec(sql);
      db.prepare('INSERT INTO migrations (version, applied_at) VALUES (?, ?)').run(applied + index + 1, Date.now());
    });
  }).immediate();
}

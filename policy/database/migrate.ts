/**
 * Versioned schema migrations, run on every start for both dialects: migration N is the N-th entry of a concern's
 * list, applied once and recorded in that concern's `migrations (version, applied_at)` table, all pending ones in one
 * transaction. Written here rather than with Kysely's Migrator because SQLite deployments already record their
 * versions in this table (an integer per migration), and the SQL of a migration is dialect-specific DDL anyway.
 */
import type Database from 'better-sqlite3';
import type pg from 'pg';
import { PolicyError } from '../errors.ts';

/** One schema change, in each dialect's DDL (an empty string: nothing to do in that dialect). */
export interface Migration {
  sqlite: string;
  postgres: string;
}

/** The database was migrated by a newer gateway than this one: running on it could misread what it wrote. */
export class SchemaTooNewError extends PolicyError {
  override name = 'SchemaTooNewError';
}

function tooNew(where: string, applied: number, known: number): SchemaTooNewError {
  return new SchemaTooNewError(`${where} is at schema version ${applied}, newer than the ${known} this gateway knows: upgrade this node first`);
}

/** Applies the pending migrations to a SQLite database in one immediate transaction. */
export function migrateSqlite(db: Database.Database, migrations: readonly Migration[], where: string): void {
  db.exec('CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT');
  db.transaction(() => {
    const applied = db.prepare('SELECT coalesce(max(version), 0) FROM migrations').pluck().get() as number;
    if (applied > migrations.length) throw tooNew(where, applied, migrations.length);
    migrations.slice(applied).forEach((m, index) => {
      if (m.sqlite !== '') db.exec(m.sqlite);
      db.prepare('INSERT INTO migrations (version, applied_at) VALUES (?, ?)').run(applied + index + 1, Date.now());
    });
  }).immediate();
}

/**
 * Applies the pending migrations to one PostgreSQL schema (created when missing) in one transaction that holds an
 * advisory lock named after the schema, so nodes starting together run each migration exactly once.
 */
export async function migratePostgres(pool: pg.Pool, schema: string, migrations: readonly Migration[]): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`anvil-migrate:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.query(`SET LOCAL search_path TO "${schema}"`);
    await client.query('CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
    const { rows } = await client.query<{ v: number }>('SELECT coalesce(max(version), 0)::int AS v FROM migrations');
    const applied = rows[0]!.v;
    if (applied > migrations.length) throw tooNew(`schema ${schema}`, applied, migrations.length);
    for (const [index, m] of migrations.slice(applied).entries()) {
      if (m.postgres !== '') await client.query(m.postgres);
      await client.query('INSERT INTO migrations (version, applied_at) VALUES ($1, $2)', [applied + index + 1, Date.now()]);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/**
 * The two engines under the one query layer: SQLite through better-sqlite3 and PostgreSQL through node-postgres,
 * both as Kysely dialects. Only what differs between them lives here: SQLite's write transactions begin IMMEDIATE
 * (taking the write lock up front, so two processes never deadlock upgrading a read lock) and its prepared statements
 * are reused; PostgreSQL's 64-bit integers come back as numbers (epoch milliseconds and revisions fit in 2^53).
 */
import type Database from 'better-sqlite3';
import {
  CompiledQuery,
  PostgresDialect,
  SqliteDialect,
  SqliteDriver,
  type DatabaseConnection,
  type Dialect,
  type SqliteDatabase,
  type SqliteStatement,
  type TransactionSettings,
} from 'kysely';
import { LRUCache } from 'lru-cache';
import pg from 'pg';

/** Which engine holds the policy. */
export type DialectName = 'sqlite' | 'postgres';

/** SQLite's driver with write transactions that take the write lock at BEGIN; read-only ones stay deferred. */
class ImmediateSqliteDriver extends SqliteDriver {
  // Kysely passes the transaction settings although SqliteDriver declares only the connection.
  override async beginTransaction(connection: DatabaseConnection, settings?: TransactionSettings): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(settings?.accessMode === 'read only' ? 'begin deferred' : 'begin immediate'));
  }
}

/** A better-sqlite3 connection whose statements are prepared once per SQL text (Kysely prepares per query). */
function reusingStatements(db: Database.Database): SqliteDatabase {
  const statements = new LRUCache<string, SqliteStatement>({ max: 1000 });
  return {
    close: () => db.close(),
    prepare(text) {
      let statement = statements.get(text);
      if (statement === undefined) {
        statement = db.prepare(text) as unknown as SqliteStatement;
        statements.set(text, statement);
      }
      return statement;
    },
  };
}

/** The Kysely dialect of one SQLite connection. */
export function sqliteDialect(db: Database.Database): Dialect {
  const config = { database: reusingStatements(db) };
  const base = new SqliteDialect(config);
  return {
    createAdapter: () => base.createAdapter(),
    createDriver: () => new ImmediateSqliteDriver(config),
    createIntrospector: (kysely) => base.createIntrospector(kysely),
    createQueryCompiler: () => base.createQueryCompiler(),
  };
}

const INT8_OID = 20;

/** node-postgres settings shared by the pool and the listening connection: 64-bit integers as numbers. */
export function postgresClientConfig(url: string): pg.ClientConfig {
  return {
    connectionString: url,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
    },
  };
}

/** A node's connection pool and its Kysely dialect. */
export function postgresDialect(url: string, max: number): { pool: pg.Pool; dialect: Dialect } {
  const pool = new pg.Pool({ ...postgresClientConfig(url), max, application_name: 'anvil-gateway' });
  // A connection the server ended must not crash the process: idle ones are the pool's 'error'; a checked-out one
  // (between two queries of a transaction) emits on the client, and its next query fails instead. The pool drops it.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return { pool, dialect: new PostgresDialect({ pool }) };
}

/** Whether an error is a unique-constraint violation, in either engine. */
export function isUniqueViolation(error: unknown): boolean {
  const code = String((error as { code?: unknown } | null)?.code ?? '');
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** A PostgreSQL URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparseable URL)';
  }
}

/** Whether a policy-database setting names PostgreSQL. */
export function isPostgresUrl(url: string | undefined): url is string {
  return url !== undefined && /^postgres(ql)?:\/\//i.test(url);
}

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

/** How long one PostgreSQL interaction of a request may take before it fails as unavailable (ANVIL_POLICY_TIMEOUT_MS). */
export const DEFAULT_POSTGRES_TIMEOUT_MS = 5_000;

/**
 * The bound of maintenance statements (migrations, log purges and queries, whole-tenant reads), which may
 * legitimately run long on a big database but must still end when the server hangs.
 */
export const LONG_POSTGRES_TIMEOUT_MS = 600_000;

/**
 * node-postgres settings shared by the pools and the listening connection: 64-bit integers as numbers, and bounded
 * waits, so a server that stops answering without closing the connection (SIGSTOPped, a partition that drops
 * packets instead of resetting) fails each interaction within `timeoutMs` instead of hanging it: connecting
 * (connectionTimeoutMillis), each statement on the server (statement_timeout: a live server cancels it and the
 * connection stays usable) and on the client (query_timeout: a hung server; a little later than the server's, so a
 * live one answers first). TCP keepalive ends connections whose peer has gone for good. A `timeoutMs` of
 * LONG_POSTGRES_TIMEOUT_MS lifts the server's limit (statement_timeout 0) and keeps only the client's.
 */
export function postgresClientConfig(url: string, timeoutMs = DEFAULT_POSTGRES_TIMEOUT_MS): pg.ClientConfig {
  const long = timeoutMs >= LONG_POSTGRES_TIMEOUT_MS;
  return {
    connectionString: url,
    connectionTimeoutMillis: Math.min(timeoutMs, DEFAULT_POSTGRES_TIMEOUT_MS * 2),
    statement_timeout: long ? 0 : timeoutMs,
    query_timeout: timeoutMs + 1_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
    },
  };
}

/**
 * Errors of a connection that was already gone: the server ended it (SQLSTATE 57P01 admin_shutdown, 57P02
 * crash_shutdown, 57P03 cannot_connect_now) or the socket closed under it.
 */
function isConnectionLost(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  if (e?.code === '57P01' || e?.code === '57P02' || e?.code === '57P03' || e?.code === 'ECONNRESET' || e?.code === 'EPIPE') return true;
  return typeof e?.message === 'string' && /^Connection terminated|Client has encountered a connection error/.test(e.message);
}

/** node-postgres's own timeout of a statement the server did not answer (query_timeout). */
function isClientTimeout(error: unknown): boolean {
  return (error as { message?: unknown } | null)?.message === 'Query read timeout';
}

/** Statements that change nothing when sent again: a transaction's start, a read. */
const REPEATABLE = /^\s*(begin|start transaction|select)\b/i;

type QueryCallback = (err: Error | null, result?: pg.QueryResult) => void;

/**
 * One checkout of a pooled connection that survives the server having ended the connection while it sat idle in the
 * pool (a failover, a restart, `idle_session_timeout`, an operator's pg_terminate_backend): the server's notice of
 * that arrives asynchronously, so the pool can hand out a connection that is already gone, and the request that drew
 * it would answer 503 although the database is up. When the checkout's first statement fails because its connection
 * was gone and is a BEGIN or a read, nothing of it ran (or running it twice changes nothing), so it is sent again on
 * another connection, which the checkout keeps from then on. Anything else (a write outside a transaction, a
 * statement inside one, any other error, a connection that cannot be opened) is thrown as it came: the caller
 * answers 503 rather than guess.
 */
class Checkout {
  private sent = 0;
  /** The client-side timeout that left this connection with a statement the server never answered. */
  private stalled?: Error;
  /** The connection went back to the pool for a second attempt that found none: nothing left to release. */
  private released = false;

  constructor(
    private readonly pool: ResilientPool,
    private client: pg.PoolClient,
  ) {}

  query(text: string, values?: unknown[] | QueryCallback, callback?: QueryCallback): Promise<pg.QueryResult> | undefined {
    if (typeof values === 'function') [values, callback] = [undefined, values];
    const answer = this.run(text, values);
    if (callback === undefined) return answer;
    answer.then((result) => callback(null, result), (err: Error) => callback(err));
    return undefined;
  }

  release(err?: Error | boolean): void {
    // pg-pool throws on a second release, and from its query callback that ended the process.
    if (this.released) return;
    this.released = true;
    // A connection whose statement timed out on the client still waits for that answer: never hand it out again.
    this.client.release(this.stalled ?? err);
  }

  // pg-pool's `query` also listens for 'error' on the client and releases it on one, which would hand back a
  // connection a second attempt still uses. A lost connection fails the statement in flight as well (node-postgres
  // rejects the active query), so the checkout reports it through that statement alone.
  once(): this {
    return this;
  }

  removeListener(): this {
    return this;
  }

  private async run(text: string, values: unknown[] | undefined): Promise<pg.QueryResult> {
    const repeatable = this.sent++ === 0 && typeof text === 'string' && REPEATABLE.test(text);
    // Every idle connection may have been ended at once, and the pool hands them out before their notice arrives:
    // each is dropped as it fails, so a connection opened afresh comes within the pool's size. A failure to open
    // one is thrown from checkOut at once (the database is really gone).
    // After a client-side timeout the server may still be stalled: what follows (a ROLLBACK) fails at once rather
    // than wait for it a second time, and the connection is destroyed at release.
    if (this.stalled !== undefined) throw this.stalled;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.client.query(text, values);
      } catch (err) {
        if (isClientTimeout(err)) this.stalled = err as Error;
        if (!repeatable || attempt > (this.pool.options.max ?? 10) || !isConnectionLost(err)) throw err;
        this.client.release(err as Error);
        this.released = true;
        this.client = await this.pool.checkOut();
        this.released = false;
      }
    }
  }
}

/** A pg.Pool whose checkouts (and so its `query`, which checks out) are Checkouts. */
class ResilientPool extends pg.Pool {
  /** A bare connection from the pool, for a Checkout's second attempt. */
  checkOut(): Promise<pg.PoolClient> {
    return super.connect();
  }

  // pg-pool's own `query` calls connect with a callback and then client.query(text, values, callback).
  override connect(): Promise<pg.PoolClient>;
  override connect(callback: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void): void;
  override connect(callback?: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void): Promise<pg.PoolClient> | void {
    const wrap = (client: pg.PoolClient) => new Checkout(this, client) as unknown as pg.PoolClient;
    if (callback === undefined) return super.connect().then(wrap);
    super.connect((err, client, done) => {
      if (err || client === undefined) return callback(err, undefined, done);
      const checkout = wrap(client);
      callback(undefined, checkout, (release) => checkout.release(release as Error | undefined));
    });
  }
}

/**
 * A node's connection pool and its Kysely dialect; every interaction is bounded by `timeoutMs` (postgresClientConfig),
 * waiting for a free pooled connection included.
 */
export function postgresDialect(url: string, options: { max: number; timeoutMs?: number; name?: string }): { pool: pg.Pool; dialect: Dialect } {
  const config = postgresClientConfig(url, options.timeoutMs);
  const pool = new ResilientPool({ ...config, max: options.max, application_name: options.name ?? 'anvil-gateway' });
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

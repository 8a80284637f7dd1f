/**
 * The policy database: one Kysely instance per concern (policy, relationships, logs), its versioned migrations run on
 * open, the change signals caches follow, and the two transaction shapes every store uses — a write holding the
 * concern's write lock that bumps its revision and announces the change, and a read-only snapshot.
 *
 * SQLite (the default): dataDir/policy.db, relationships.db and logs.db, WAL, for one host. PostgreSQL (a
 * `postgres://` URL): the schemas anvil_policy, anvil_relationships and anvil_logs of one database, shared by every
 * node. The stores above are written once against Kysely and run unchanged on either.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, sql, type Transaction } from 'kysely';
import {
  DEFAULT_POSTGRES_TIMEOUT_MS,
  isPostgresUrl,
  isUniqueViolation,
  LONG_POSTGRES_TIMEOUT_MS,
  postgresClientConfig,
  postgresDialect,
  redactUrl,
  sqliteDialect,
  type DialectName,
} from './dialects.ts';
import { migratePostgres, migrateSqlite, type Migration } from './migrate.ts';
import { LOG_MIGRATIONS } from './migrations/logs.ts';
import { POLICY_MIGRATIONS } from './migrations/policy.ts';
import { RELATIONSHIP_MIGRATIONS } from './migrations/relationships.ts';
import { CHANGE_CHANNEL, PostgresChannel, RequestStarts, SqliteSignal, type ChangeSignal, type ChannelState, type SignalledConcern } from './signals.ts';
import type { Concern, ConcernTables } from './tables.ts';

/** How to open the policy database. */
export interface PolicyDatabaseOptions {
  /** A `postgres://` URL selects PostgreSQL; absent or empty, SQLite files in dataDir. */
  url?: string;
  /** The node's data directory (SQLite's files live here). */
  dataDir: string;
  /** PostgreSQL connections this node may hold (default 10). */
  poolSize?: number;
  /** This node's name in log rows (default host:pid). */
  node?: string;
  /**
   * PostgreSQL: how long one interaction (connecting, waiting for a pooled connection, one statement) may take before
   * it fails as unavailable, in milliseconds (default DEFAULT_POSTGRES_TIMEOUT_MS). Maintenance statements have
   * LONG_POSTGRES_TIMEOUT_MS instead (see `db`).
   */
  timeoutMs?: number;
}

/**
 * Which bound a statement runs under: `request` (the node's timeout: every lookup and change of a request), or `long`
 * (LONG_POSTGRES_TIMEOUT_MS, on a small pool of its own: migrations, log queries and purges, whole-tenant reads,
 * which may read much of a big table). SQLite has no such bounds: its files answer or fail at once.
 */
export type StatementBound = 'request' | 'long';

/** What a write transaction's body reports: its result, whether it changed anything, and the one tenant it touched. */
export interface ChangeOutcome<T> {
  result: T;
  changed: boolean;
  /** The tenant whose relationships alone moved, so other tenants' caches stay. */
  hint?: string;
}

const MIGRATIONS: Record<Concern, readonly Migration[]> = { policy: POLICY_MIGRATIONS, relationships: RELATIONSHIP_MIGRATIONS, logs: LOG_MIGRATIONS };

/** The PostgreSQL schema of each concern. */
export const POSTGRES_SCHEMAS: Record<Concern, string> = { policy: 'anvil_policy', relationships: 'anvil_relationships', logs: 'anvil_logs' };

/** The SQLite file of each concern, inside the data directory. */
export const SQLITE_FILES: Record<Concern, string> = { policy: 'policy.db', relationships: 'relationships.db', logs: 'logs.db' };

type Handles = { [C in Concern]: Kysely<ConcernTables[C]> };

/** Connections of the pool for long statements (they are rare: an operator's query, the hourly purge). */
const LONG_POOL_SIZE = 2;

/** The open policy database. */
export class PolicyDatabase {
  private constructor(
    readonly dialect: DialectName,
    private readonly handles: Handles,
    /** The change signal of each concern caches follow. */
    readonly signals: Record<SignalledConcern, ChangeSignal>,
    /** This node's name in log rows. */
    readonly node: string,
    /** Where the policy lives, for messages (a PostgreSQL URL without its password, or the data directory). */
    readonly location: string,
    private readonly closers: Array<() => unknown>,
    private readonly channel?: PostgresChannel,
    private readonly requests?: RequestStarts,
    private readonly longHandles: Handles = handles,
  ) {}

  /**
   * A request (of any API) arrived, before any of its lookups: on SQLite the caches check for other processes'
   * commits once per request from now on, at the first lookup after each start (signals.ts, RequestStarts), instead
   * of at every lookup. PostgreSQL's signals need nothing.
   */
  requestStarted(): void {
    this.requests?.started();
  }

  /** Opens (creating and migrating when needed) the policy database the options name. */
  static async open(options: PolicyDatabaseOptions): Promise<PolicyDatabase> {
    const node = options.node ?? `${hostname()}:${process.pid}`;
    return isPostgresUrl(options.url)
      ? PolicyDatabase.openPostgres(options.url, node, options.poolSize ?? 10, options.timeoutMs ?? DEFAULT_POSTGRES_TIMEOUT_MS)
      : PolicyDatabase.openSqlite(options.dataDir, node);
  }

  private static async openSqlite(dataDir: string, node: string): Promise<PolicyDatabase> {
    mkdirSync(dataDir, { recursive: true });
    const raw = {} as Record<Concern, Database.Database>;
    try {
      for (const concern of ['policy', 'relationships', 'logs'] as const) {
        const path = join(dataDir, SQLITE_FILES[concern]);
        const db = new Database(path);
        raw[concern] = db;
        chmodSync(path, 0o600); // ciphertexts only, but no reason for anyone else to read them; WAL files inherit it
        // The busy timeout first: switching to WAL waits for a lock too when another process opens the file at once.
        db.pragma('busy_timeout = 5000');
        db.pragma('journal_mode = WAL');
        db.pragma('foreign_keys = ON');
        // FULL: a commit (a revocation, a tuple delete, a new signing key or root credential) survives a power cut, not
        // only a crash; NORMAL could roll the last ones back. Denial lines may lose their last moments instead.
        db.pragma(concern === 'logs' ? 'synchronous = NORMAL' : 'synchronous = FULL');
        migrateSqlite(db, MIGRATIONS[concern], path);
      }
    } catch (error) {
      for (const db of Object.values(raw)) db.close();
      throw error;
    }
    const requests = new RequestStarts();
    const watch = (concern: SignalledConcern) => {
      const db = new Database(join(dataDir, SQLITE_FILES[concern]));
      db.pragma('busy_timeout = 5000');
      return new SqliteSignal(db, concern, requests);
    };
    const signals = { policy: watch('policy'), relationships: watch('relationships') };
    const handles: Handles = {
      policy: new Kysely({ dialect: sqliteDialect(raw.policy) }),
      relationships: new Kysely({ dialect: sqliteDialect(raw.relationships) }),
      logs: new Kysely({ dialect: sqliteDialect(raw.logs) }),
    };
    // The raw connections are closed here too: Kysely's destroy() closes nothing when the handle never ran a query
    // (its driver was never initialized), and a connection left open keeps the deleted files of a removed data
    // directory, and their space, until garbage collection happens to finalize it. Closing twice is harmless.
    const closers = [
      () => signals.policy.close(),
      () => signals.relationships.close(),
      ...Object.values(handles).map((h) => () => h.destroy()),
      ...Object.values(raw).map((db) => () => db.close()),
    ];
    return new PolicyDatabase('sqlite', handles, signals, node, dataDir, closers, undefined, requests);
  }

  private static async openPostgres(url: string, node: string, poolSize: number, timeoutMs: number): Promise<PolicyDatabase> {
    const { pool, dialect } = postgresDialect(url, { max: poolSize, timeoutMs });
    const long = postgresDialect(url, { max: LONG_POOL_SIZE, timeoutMs: LONG_POSTGRES_TIMEOUT_MS, name: 'anvil-maintenance' });
    const kyselys: Array<Kysely<unknown>> = [];
    const handlesOf = (base: Kysely<unknown>) =>
      ({
        policy: base.withSchema(POSTGRES_SCHEMAS.policy),
        relationships: base.withSchema(POSTGRES_SCHEMAS.relationships),
        logs: base.withSchema(POSTGRES_SCHEMAS.logs),
      }) as unknown as Handles;
    try {
      // A migration may rewrite a big table, and waits for another node's migration: the long bound.
      for (const concern of ['policy', 'relationships', 'logs'] as const) await migratePostgres(long.pool, POSTGRES_SCHEMAS[concern], MIGRATIONS[concern]);
      kyselys.push(new Kysely<unknown>({ dialect }), new Kysely<unknown>({ dialect: long.dialect }));
      const channel = await PostgresChannel.open(postgresClientConfig(url, timeoutMs), pool, POSTGRES_SCHEMAS);
      const closers = kyselys.map((k) => () => k.destroy());
      return new PolicyDatabase('postgres', handlesOf(kyselys[0]!), channel.signals, node, redactUrl(url), closers, channel, undefined, handlesOf(kyselys[1]!));
    } catch (error) {
      if (kyselys.length > 0) for (const k of kyselys) await k.destroy();
      else await Promise.all([pool.end().catch(() => {}), long.pool.end().catch(() => {})]);
      throw new Error(`cannot open the policy database at ${redactUrl(url)}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** The Kysely instance of one concern, its statements under `bound` (default `request`). */
  db<C extends Concern>(concern: C, bound: StatementBound = 'request'): Kysely<ConcernTables[C]> {
    return (bound === 'long' ? this.longHandles : this.handles)[concern];
  }

  /** The state of the PostgreSQL push channel (undefined for SQLite, which needs none). */
  channelState(): ChannelState | undefined {
    return this.channel?.state();
  }

  /**
   * Runs `fn` in a write transaction holding the concern's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: the
   * revision row, locked first), so writes of a concern are serialized and each reads what the previous committed.
   * `next` is the revision the change gets; when `fn` reports a change the revision moves to it, every node is told
   * (NOTIFY, delivered at commit), and this node's listeners hear it before the promise resolves.
   */
  async change<C extends SignalledConcern, T>(
    concern: C,
    fn: (trx: Transaction<ConcernTables[C]>, next: number) => Promise<ChangeOutcome<T>>,
  ): Promise<{ result: T; revision?: number }> {
    const db = this.handles[concern] as unknown as Kysely<ConcernTables['policy']>;
    const postgres = this.dialect === 'postgres';
    const done = await db.transaction().execute(async (trx) => {
      const current = await trx
        .selectFrom('revisions')
        .select('value')
        .where('name', '=', concern)
        .$if(postgres, (q) => q.forUpdate())
        .executeTakeFirstOrThrow();
      const next = current.value + 1;
      const outcome = await fn(trx as unknown as Transaction<ConcernTables[C]>, next);
      if (!outcome.changed) return { outcome };
      await trx.updateTable('revisions').set({ value: next }).where('name', '=', concern).execute();
      if (postgres) await sql`SELECT pg_notify(${CHANGE_CHANNEL}, ${[concern, next, outcome.hint ?? ''].join(' ')})`.execute(trx);
      return { outcome, revision: next };
    });
    if (done.revision !== undefined) this.signals[concern].committed(done.revision, done.outcome.hint);
    return { result: done.outcome.result, revision: done.revision };
  }

  /** Runs `fn` in a read-only transaction that sees one snapshot (PostgreSQL: REPEATABLE READ), under `bound`. */
  snapshot<C extends Concern, T>(concern: C, fn: (trx: Transaction<ConcernTables[C]>) => Promise<T>, bound: StatementBound = 'request'): Promise<T> {
    const builder = this.db(concern, bound).transaction().setAccessMode('read only');
    return (this.dialect === 'postgres' ? builder.setIsolationLevel('repeatable read') : builder).execute(fn);
  }

  /** Resolves when the policy concern answers a query (readiness): SQLite's file, or a round trip to PostgreSQL. */
  async ping(): Promise<void> {
    await sql`SELECT 1`.execute(this.handles.policy);
  }

  /** Whether an error is a unique-constraint violation. */
  isUniqueViolation(error: unknown): boolean {
    return isUniqueViolation(error);
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    await this.channel?.close();
    for (const close of this.closers) await close();
  }
}

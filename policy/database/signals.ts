/**
 * How a node learns that another node changed policy, so its caches never serve a revoked credential, a deleted
 * tuple or a disabled tenant for long. Every change bumps its concern's revision by exactly one under the concern's
 * write lock; a ChangeSignal follows that counter and tells the caches when it moved (naming the tenant when only
 * one tenant's relationships moved, so other tenants keep their caches).
 *
 * SQLite (one host): `PRAGMA data_version` is read once per request (no I/O: it changes when another connection
 * commits), and only when it moved is the revision row read. A change is in force on the next request. Once the
 * gateway reports request starts (RequestStarts), the first lookup after a request started checks, and the lookups
 * after it share that check until the next request starts: a request that started after a commit has its lookups
 * answered by a check made after that start, so it sees the commit; without reported starts every sync checks.
 *
 * PostgreSQL (many nodes): each node keeps one connection LISTENing on CHANGE_CHANNEL; every write transaction sends
 * `pg_notify` (delivered at commit). The same connection runs a heartbeat every HEARTBEAT_MS that reads the revision
 * counters, which also catches a notification lost in a reconnect. Caches are trusted only while the last heartbeat
 * that came back was sent less than FRESH_MS ago; otherwise (listener down, stalled or reconnecting) every request
 * first reads the revisions itself. A lost notification connection thus costs a query per request, never a stale
 * allow: a change committed at time t is seen by every request that starts after t + FRESH_MS, and usually within
 * milliseconds. CONSISTENCY_BOUND_MS is the bound the README promises and the multi-node test checks.
 */
import type Database from 'better-sqlite3';
import { performance } from 'node:perf_hooks';
import pg from 'pg';

/** The PostgreSQL NOTIFY channel every node listens on. */
export const CHANGE_CHANNEL = 'anvil_policy_changes';

/** How often the listening connection confirms the revisions. */
export const HEARTBEAT_MS = 250;

/** How old the last confirmation may be for caches to be trusted without a per-request revision read. */
export const FRESH_MS = 750;

/** A heartbeat unanswered for this long ends the listening connection, which is then opened again. */
const HEARTBEAT_TIMEOUT_MS = 2_000;

/** The promised bound: a change made on any node is in force on every node for requests starting this much later. */
export const CONSISTENCY_BOUND_MS = 1_000;

/** The concerns whose changes caches follow. */
export type SignalledConcern = 'policy' | 'relationships';

/** Follows one concern's revision counter. */
export interface ChangeSignal {
  /** The newest revision this node knows of. */
  readonly revision: number;
  /**
   * Makes sure every change committed before the call has been announced to the listeners (SQLite, once the
   * gateway reports request starts: every change committed before the current request started). Returns at once (no
   * promise) when the push channel vouches for freshness; otherwise reads the revision from the database. `now`
   * (SQLite): every change committed before this call, even when this request already checked — for a request's
   * last check of what it started under (PostgreSQL: as without, within CONSISTENCY_BOUND_MS).
   */
  sync(now?: boolean): void | Promise<void>;
  /** Registers a listener for changes (`hint`: the only tenant whose relationships moved); returns its removal. */
  onChange(listener: (hint?: string) => void): () => void;
  /** Records a change this node committed (revision `revision`), announcing it at once. */
  committed(revision: number, hint?: string): void;
}

/** The revision bookkeeping both dialects share. */
class RevisionTracker implements ChangeSignal {
  private readonly listeners = new Set<(hint?: string) => void>();

  constructor(public revision: number) {}

  sync(_now?: boolean): void | Promise<void> {}

  onChange(listener: (hint?: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  committed(revision: number, hint?: string): void {
    this.advance(revision, hint);
  }

  /**
   * Moves to `revision` when it is newer. The hint holds only for the very next revision: a gap means changes this
   * node has not seen one by one, so every cache of the concern goes.
   */
  advance(revision: number, hint?: string): void {
    if (revision <= this.revision) return;
    const next = revision === this.revision + 1 ? hint : undefined;
    this.revision = revision;
    for (const listener of this.listeners) listener(next);
  }
}

/**
 * The requests a node has started, counted, for SQLite's once-per-request check. The gateway calls started() as
 * each request (of any API) arrives, before any of its lookups; until the first call, every sync checks.
 */
export class RequestStarts {
  /** Requests started so far; -1 while nobody reports them. */
  count = -1;

  /** A request arrived: the next sync of each concern checks again. */
  started(): void {
    this.count = this.count < 0 ? 1 : this.count + 1;
  }
}

/**
 * SQLite: `PRAGMA data_version` once per request (see RequestStarts), the revision row when it moved; a timer keeps
 * watchers fed too. It reads on a connection of its own, so it never sees a write transaction of this process before
 * that commits (a rolled-back revision must never be taken for a committed one).
 */
export class SqliteSignal extends RevisionTracker {
  private readonly dataVersion: Database.Statement;
  private readonly read: Database.Statement;
  private lastDataVersion: number;
  /** RequestStarts.count when this signal last checked. */
  private checkedAt = -1;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly db: Database.Database,
    concern: SignalledConcern,
    private readonly requests: RequestStarts = new RequestStarts(),
  ) {
    const read = db.prepare('SELECT value FROM revisions WHERE name = ?').pluck();
    super(read.get(concern) as number);
    this.read = read.bind(concern);
    this.dataVersion = db.prepare('PRAGMA data_version').pluck();
    this.lastDataVersion = this.dataVersion.get() as number;
    // Requests sync on their own; this only wakes watch streams when another process wrote.
    this.timer = setInterval(() => this.check(), 100);
    this.timer.unref();
  }

  /**
   * Checks unless a check was made since the latest request started: every lookup of a request then sees what was
   * committed before the request started (a check made after its start), at one statement per request, not per
   * lookup. Without reported request starts (count -1), every call checks.
   */
  override sync(now = false): void {
    const started = this.requests.count;
    if (!now && started >= 0 && this.checkedAt === started) return;
    this.check();
    this.checkedAt = started;
  }

  /** Reads data_version now, and the revision row when it moved. */
  private check(): void {
    const version = this.dataVersion.get() as number;
    if (version === this.lastDataVersion) return;
    this.lastDataVersion = version;
    this.advance(this.read.get() as number);
  }

  /** Stops the timer and closes the connection. */
  close(): void {
    clearInterval(this.timer);
    this.db.close();
  }
}

/** The state of a node's push channel, for health answers and tests. */
export interface ChannelState {
  connected: boolean;
  /** Milliseconds since the newest confirmed heartbeat was sent (Infinity: none yet). */
  confirmedAgoMs: number;
}

/** PostgreSQL: trusted while the channel is fresh, else one revision read per sync (shared by concurrent callers). */
class PostgresSignal extends RevisionTracker {
  private pending?: Promise<void>;

  constructor(revision: number, private readonly channel: PostgresChannel, private readonly concern: SignalledConcern) {
    super(revision);
  }

  override sync(): void | Promise<void> {
    if (this.channel.fresh()) return;
    // Joining a read already in flight is safe: it started after the channel went stale, moments ago.
    this.pending ??= this.channel
      .readRevisions()
      .then((revisions) => this.advance(revisions[this.concern]))
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }
}

/** The schemas the revision counters live in. */
export type ConcernSchemas = Record<SignalledConcern, string>;

/**
 * One node's LISTEN connection and heartbeat, feeding a signal per concern. Notifications carry
 * `<concern> <revision> [<tenant>]`.
 */
export class PostgresChannel {
  readonly signals: Record<SignalledConcern, PostgresSignal>;
  private client?: pg.Client;
  private connected = false;
  private confirmedAt = Number.NEGATIVE_INFINITY;
  private closed = false;
  private timer?: NodeJS.Timeout;
  private retryMs = 250;

  private constructor(
    private readonly config: pg.ClientConfig,
    private readonly pool: pg.Pool,
    private readonly schemas: ConcernSchemas,
    revisions: Record<SignalledConcern, number>,
  ) {
    this.signals = {
      policy: new PostgresSignal(revisions.policy, this, 'policy'),
      relationships: new PostgresSignal(revisions.relationships, this, 'relationships'),
    };
  }

  /** Reads the revisions, then starts listening (requests read revisions themselves until the first heartbeat). */
  static async open(config: pg.ClientConfig, pool: pg.Pool, schemas: ConcernSchemas): Promise<PostgresChannel> {
    const query = revisionsQuery(schemas);
    const { rows } = await pool.query<Record<SignalledConcern, number>>(query);
    const channel = new PostgresChannel(config, pool, schemas, rows[0]!);
    channel.connect();
    return channel;
  }

  /** Whether caches may be trusted without a per-request revision read. */
  fresh(): boolean {
    return this.connected && performance.now() - this.confirmedAt < FRESH_MS;
  }

  /** Connected or not, and how old the newest confirmation is. */
  state(): ChannelState {
    return { connected: this.connected, confirmedAgoMs: performance.now() - this.confirmedAt };
  }

  /** The current revisions, read through the pool. */
  async readRevisions(): Promise<Record<SignalledConcern, number>> {
    const { rows } = await this.pool.query<Record<SignalledConcern, number>>(revisionsQuery(this.schemas));
    return rows[0]!;
  }

  private connect(): void {
    if (this.closed) return;
    const client = new pg.Client({ ...this.config, application_name: 'anvil-changes', keepAlive: true });
    this.client = client;
    const lost = () => {
      if (this.client !== client) return;
      this.connected = false;
      this.client = undefined;
      clearTimeout(this.timer);
      client.end().catch(() => {});
      if (this.closed) return;
      setTimeout(() => this.connect(), this.retryMs).unref();
      this.retryMs = Math.min(this.retryMs * 2, 5_000);
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (message) => {
      if (message.channel !== CHANGE_CHANNEL || message.payload === undefined) return;
      const [concern, revision, hint] = message.payload.split(' ');
      const signal = this.signals[concern as SignalledConcern];
      if (signal !== undefined && revision !== undefined) signal.advance(Number(revision), hint || undefined);
    });
    client
      .connect()
      .then(() => client.query(`LISTEN ${CHANGE_CHANNEL}`))
      .then(() => {
        if (this.client !== client) return;
        this.connected = true;
        this.retryMs = 250;
        this.heartbeat(client);
      })
      .catch(lost);
  }

  /** Reads the revisions on the listening connection; a timely answer renews the confirmation. */
  private heartbeat(client: pg.Client): void {
    if (this.client !== client || this.closed) return;
    const sent = performance.now();
    const timeout = setTimeout(() => client.emit('error', new Error('heartbeat timed out')), HEARTBEAT_TIMEOUT_MS);
    client
      .query<Record<SignalledConcern, number>>(revisionsQuery(this.schemas))
      .then(({ rows }) => {
        clearTimeout(timeout);
        if (this.client !== client) return;
        for (const concern of ['policy', 'relationships'] as const) this.signals[concern].advance(rows[0]![concern]);
        this.confirmedAt = sent;
        this.timer = setTimeout(() => this.heartbeat(client), HEARTBEAT_MS);
        this.timer.unref();
      })
      .catch((error: Error) => {
        clearTimeout(timeout);
        // A failed heartbeat means a broken connection: open a new one rather than trust this one again.
        client.emit('error', error);
      });
  }

  /** Stops listening. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    this.connected = false;
    await client?.end().catch(() => {});
  }
}

function revisionsQuery(schemas: ConcernSchemas): string {
  return `SELECT (SELECT value FROM "${schemas.policy}".revisions WHERE name = 'policy') AS policy,
    (SELECT value FROM "${schemas.relationships}".revisions WHERE name = 'relationships') AS relationships`;
}

/**
 * The denial log: one row per refused request in the policy database's logs concern, from every node, optionally
 * echoed as a JSON line to a stream (stdout, for log shippers). Rows are written in batches (every FLUSH_MS, or
 * sooner when BATCH_ROWS are waiting), so a burst of refusals costs a few inserts, never a round trip per request. It
 * never holds a secret or a signature: the record type has none, and free-text fields are scrubbed of anything shaped
 * like one.
 */

import type { Selectable } from 'kysely';
import type { PolicyDatabase } from './database/policy-database.ts';
import type { LogTables } from './database/tables.ts';
import { defineLog, type LogFilter } from './log-query.ts';
import { scrubSecrets } from './scrub.ts';
import type { DenialLayer, DenialRecord } from './types.ts';

/**
 * Between the true reason of a denial line about something hidden and the reason a missing one's line gives, which
 * is all an admin narrower than its tenant is shown of it (gateway/admin/view.ts); such a line ends with `)`.
 */
export const SHOWN_AS = ' (the caller is shown: ';

/** Where and how denials are written. */
export interface DenialLogOptions {
  database: PolicyDatabase;
  /** Also write each line here (for example process.stdout). */
  stream?: { write(chunk: string): unknown };
  /** Longest a line waits before its batch is written, in milliseconds (default FLUSH_MS). */
  flushMs?: number;
}

/** Which denials a query or a follow returns. */
export interface DenialFilter extends LogFilter {
  tenant?: string;
  accessKeyId?: string;
  layer?: DenialLayer;
  bucket?: string;
  keyPrefix?: string;
  /** Only records the asker may see (an admin narrower than its tenant); applied before `limit`. */
  visible?: (record: DenialRecord) => boolean;
}

/** Longest a denial line waits for its batch by default. */
export const FLUSH_MS = 200;

/** Rows per insert. */
const BATCH_ROWS = 500;

/** Lines held while the database cannot be written; beyond this the oldest are dropped (and counted). */
const MAX_QUEUED = 50_000;

/**
 * A record safe to write: free-text fields scrubbed as text; key and copy source as names (policy/scrub.ts), since
 * content-addressed keys are often sha256 hex but a key may still carry query-like text.
 */
export function sanitizeDenial(record: DenialRecord): DenialRecord {
  const clean: DenialRecord = { ...record, reason: scrubSecrets(record.reason), action: scrubSecrets(record.action) };
  clean.requestId = scrubSecrets(record.requestId);
  if (record.userAgent !== undefined) clean.userAgent = scrubSecrets(record.userAgent);
  if (record.subject !== undefined) clean.subject = scrubSecrets(record.subject);
  if (record.key !== undefined) clean.key = scrubSecrets(record.key, 'name');
  if (record.copySource !== undefined) clean.copySource = scrubSecrets(record.copySource, 'name');
  return clean;
}

type Insert = Omit<LogTables['denials'], 'id'>;
type Row = Selectable<LogTables['denials']>;

function rowOf(r: DenialRecord, node: string): Insert {
  return {
    time: Date.parse(r.time),
    request_id: r.requestId,
    tenant: r.tenant ?? null,
    access_key_id: r.accessKeyId ?? null,
    subject: r.subject ?? null,
    action: r.action,
    bucket: r.bucket ?? null,
    key: r.key ?? null,
    copy_source: r.copySource ?? null,
    layer: r.layer,
    reason: r.reason,
    remote_address: r.remoteAddress ?? null,
    user_agent: r.userAgent ?? null,
    node,
  };
}

function recordOf(row: Row): DenialRecord {
  const record: DenialRecord = { time: new Date(row.time).toISOString(), requestId: row.request_id, action: row.action, layer: row.layer as DenialLayer, reason: row.reason };
  const optional: Array<[keyof DenialRecord, string | null]> = [
    ['tenant', row.tenant], ['accessKeyId', row.access_key_id], ['subject', row.subject], ['bucket', row.bucket], ['key', row.key],
    ['copySource', row.copy_source], ['remoteAddress', row.remote_address], ['userAgent', row.user_agent], ['node', row.node],
  ];
  for (const [name, value] of optional) if (value !== null) Object.assign(record, { [name]: value });
  return record;
}

/** Appends denial records to the logs concern in batches. */
export class DenialLog {
  private queue: Insert[] = [];
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<boolean>;
  private closed = false;
  /** Lines dropped because the database could not take them for too long. */
  dropped = 0;

  /** Called with each record as written, already scrubbed (a subclass counts or echoes it); never throws. */
  protected written(_record: DenialRecord): void {}

  constructor(private readonly options: DenialLogOptions) {}

  /** Records one denial; never throws (a database outage must not turn a 403 into a 500). */
  write(record: DenialRecord): void {
    const clean = sanitizeDenial(record);
    this.written(clean);
    try {
      this.options.stream?.write(JSON.stringify(clean) + '\n');
    } catch {
      // Losing an echoed line beats failing the request.
    }
    if (this.closed) return;
    this.queue.push(rowOf(clean, this.options.database.node));
    if (this.queue.length > MAX_QUEUED) this.dropped += this.queue.splice(0, this.queue.length - MAX_QUEUED).length;
    if (this.queue.length >= BATCH_ROWS) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.options.flushMs ?? FLUSH_MS);
  }

  /**
   * Writes every line queued before the call (one insert per BATCH_ROWS), waiting for a write already under way;
   * lines the database refuses stay queued for the next try.
   */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.queue.length > 0) {
      this.flushing ??= this.writeQueued().finally(() => {
        this.flushing = undefined;
      });
      if (!(await this.flushing)) {
        // The database is away: keep the lines and try again later.
        if (!this.closed) this.timer ??= setTimeout(() => void this.flush(), 1_000);
        return;
      }
    }
  }

  /** Inserts the queued lines batch by batch; false when the database refused one. */
  private async writeQueued(): Promise<boolean> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.slice(0, BATCH_ROWS);
        await this.options.database.db('logs').insertInto('denials').values(batch).execute();
        this.queue.splice(0, batch.length);
      }
      return true;
    } catch {
      return false;
    }
  }

  /** Writes what is waiting and takes no more lines. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    clearTimeout(this.timer);
  }
}

const DENIALS = defineLog<DenialFilter, Row, DenialRecord>({
  rows: (database) => database.db('logs', 'long').selectFrom('denials').selectAll(),
  narrow(q, filter) {
    if (filter.tenant !== undefined) q = q.where('tenant', '=', filter.tenant);
    if (filter.accessKeyId !== undefined) q = q.where('access_key_id', '=', filter.accessKeyId);
    if (filter.layer !== undefined) q = q.where('layer', '=', filter.layer);
    if (filter.bucket !== undefined) q = q.where('bucket', '=', filter.bucket);
    // A prefix match by range, so no character of the prefix acts as a LIKE wildcard.
    if (filter.keyPrefix !== undefined && filter.keyPrefix !== '') q = q.where('key', '>=', filter.keyPrefix).where('key', '<', `${filter.keyPrefix}\u{10FFFF}`);
    return q;
  },
  record: recordOf,
  async remove(database, before) {
    return Number((await database.db('logs', 'long').deleteFrom('denials').where('time', '<', before).executeTakeFirst()).numDeletedRows);
  },
});

/** The denials matching `filter`, from every node, oldest first (the newest `limit` when it names one). */
export const queryDenials = DENIALS.query;

/** Calls onRecord for each matching denial written from now on, by any node, until `signal` aborts. */
export const followDenials = DENIALS.follow;

/** Deletes denial rows older than `before`; returns how many went. */
export const purgeDenials = DENIALS.purge;

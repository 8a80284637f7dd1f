/**
 * What the denial and audit logs share: the time window and newest-`limit` cut every query takes, following a log
 * that several nodes append to, and retention (defineLog builds all three from a log's table and filters). Rows are
 * stamped when the event happened and reach the database a little later (a node batches its denial lines), and row
 * ids are not in commit order across nodes, so a follower re-reads a window of FOLLOW_OVERLAP_MS behind the newest
 * time it has seen and skips the ids it already printed.
 */

import type { SelectQueryBuilder } from 'kysely';
import type { PolicyDatabase } from './database/policy-database.ts';

/** The time window every log query takes, and the newest-`limit` cut. */
export interface LogFilter {
  since?: Date;
  until?: Date;
  /** Keep only the newest `limit` matches. */
  limit?: number;
}

/** How far behind its newest row a follower looks again for rows committed late. */
export const FOLLOW_OVERLAP_MS = 10_000;

/** How often a follower polls. */
export const FOLLOW_POLL_MS = 500;

/** A row a follower can place: its id and the epoch-millisecond time it was stamped with. */
export interface LogRow {
  id: number;
  time: number;
}

/**
 * Calls `onRow` for each row appended from now on, oldest first per poll, until `signal` aborts. `fetch` returns the
 * matching rows stamped at or after a time, in any order.
 */
export async function followRows<R extends LogRow>(options: {
  fetch: (sinceMs: number) => Promise<R[]>;
  onRow: (row: R) => void;
  signal: AbortSignal;
  pollMs?: number;
}): Promise<void> {
  const { fetch, onRow, signal } = options;
  let seen = new Map<number, number>();
  let newest = Date.now();
  // What is already there when the follow starts is not new: remember it without printing it.
  for (const row of await fetch(newest - FOLLOW_OVERLAP_MS)) {
    seen.set(row.id, row.time);
    newest = Math.max(newest, row.time);
  }
  while (!signal.aborted) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, options.pollMs ?? FOLLOW_POLL_MS);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
    if (signal.aborted) break;
    const from = newest - FOLLOW_OVERLAP_MS;
    const rows = (await fetch(from)).sort((a, b) => a.time - b.time || a.id - b.id);
    for (const row of rows) {
      if (seen.has(row.id)) continue;
      seen.set(row.id, row.time);
      newest = Math.max(newest, row.time);
      onRow(row);
    }
    // Ids older than the window are never fetched again.
    seen = new Map([...seen].filter(([, time]) => time >= from));
  }
}

// Both log tables have `id` and `time`; their other columns differ, so the builder is typed by its rows only.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type LogQuery<R> = SelectQueryBuilder<any, any, R>;

/** A log's query, follow and retention, from how to select its rows, apply its own filters, and show a row. */
export function defineLog<F extends LogFilter & { visible?: (record: T) => boolean }, R extends LogRow, T>(spec: {
  /** Every row of the log's table. */
  rows(database: PolicyDatabase): LogQuery<R>;
  /** The log's own filters (the time window is applied here). */
  narrow(query: LogQuery<R>, filter: F): LogQuery<R>;
  record(row: R): T;
  /** Deletes rows stamped before `before` (epoch ms); how many went. */
  remove(database: PolicyDatabase, before: number): Promise<number>;
}) {
  const select = (database: PolicyDatabase, filter: F, sinceMs: number | undefined): LogQuery<R> => {
    let q = spec.narrow(spec.rows(database), filter);
    if (sinceMs !== undefined) q = q.where('time', '>=', sinceMs);
    if (filter.until !== undefined) q = q.where('time', '<=', filter.until.getTime());
    return q;
  };
  return {
    /** The records matching `filter`, from every node, oldest first (the newest `limit` when it names one). */
    async query(database: PolicyDatabase, filter: F = {} as F): Promise<T[]> {
      const q = select(database, filter, filter.since?.getTime());
      const { visible } = filter;
      if (visible !== undefined) {
        // What the asker may see is decided per record, before the newest `limit` are kept.
        const seen = ((await q.orderBy('time').orderBy('id').execute()) as R[]).map(spec.record).filter(visible);
        return filter.limit === undefined ? seen : seen.slice(Math.max(0, seen.length - filter.limit));
      }
      const rows = filter.limit === undefined
        ? await q.orderBy('time').orderBy('id').execute()
        : (await q.orderBy('time', 'desc').orderBy('id', 'desc').limit(filter.limit).execute()).reverse();
      return (rows as R[]).map(spec.record);
    },
    /** Calls onRecord for each matching record written from now on, by any node, until `signal` aborts. */
    follow(database: PolicyDatabase, filter: F, onRecord: (record: T) => void, signal: AbortSignal): Promise<void> {
      return followRows({
        fetch: async (sinceMs) => (await select(database, filter, sinceMs).execute()) as R[],
        onRow: (row) => {
          const record = spec.record(row);
          if (filter.visible === undefined || filter.visible(record)) onRecord(record);
        },
        signal,
      });
    },
    /** Deletes rows older than `before`; returns how many went. */
    purge: (database: PolicyDatabase, before: Date): Promise<number> => spec.remove(database, before.getTime()),
  };
}

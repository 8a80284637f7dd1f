/**
 * What the denial and audit logs share: the time window and newest-`limit` cut every query takes, retention, and
 * following a log that several nodes append to. Rows are stamped when the event happened and reach the database a
 * little later (a node batches its denial lines), and row ids are not in commit order across nodes, so a follower
 * re-reads a window of FOLLOW_OVERLAP_MS behind the newest time it has seen and skips the ids it already printed.
 */

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

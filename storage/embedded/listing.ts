/**
 * Prefix/delimiter listing over an index kept in UTF-8 byte order. The walker seeks with range queries, so a page
 * costs O(page × log n) however many keys sit under a rolled-up prefix.
 */

/** Where a scan resumes: keys >= `key`, or, with `after`, rows past (`key`, `after`) in (key, sub-key) order. */
export interface Cursor {
  key: Buffer;
  after?: string;
}

/** A row the walker can place: its key bytes. */
export interface KeyedRow {
  key: Buffer;
}

/** What the walker needs from a table. */
export interface WalkSource<R extends KeyedRow> {
  /**
   * Up to `n` rows at or past `from` and with key < `below`, in (key, sub-key) order. Lazily produced (a SQLite
   * cursor): the walker stops reading at the first key it rolls up, so a seek costs one index probe, not `n` rows.
   */
  fetch(from: Cursor, below: Buffer, n: number): Iterable<R>;
  /** The first row at or past `from` below `below`: a cheap probe after seeking past a rolled-up prefix. */
  first(from: Cursor, below: Buffer): R | undefined;
  /** The cursor just past `row`. */
  next(row: R): Cursor;
}

/** One walker output: a row, or a common prefix as bytes. */
export type WalkEntry<R> = { kind: 'row'; row: R } | { kind: 'prefix'; prefix: Buffer };

/** Above every valid UTF-8 string: 0xFF never occurs in UTF-8. */
export const KEY_MAX = Buffer.from([0xff]);

/** The smallest byte string greater than every string starting with `prefix` (memcmp order). */
export function prefixUpperBound(prefix: Buffer): Buffer {
  let i = prefix.length - 1;
  while (i >= 0 && prefix[i] === 0xff) i--;
  if (i < 0) return KEY_MAX;
  const out = Buffer.from(prefix.subarray(0, i + 1));
  out[i] = out[i]! + 1;
  return out;
}

/** The smallest byte string strictly greater than `key`. */
export function successor(key: Buffer): Buffer {
  return Buffer.concat([key, Buffer.from([0])]);
}

/** The larger of two byte strings. */
function maxBytes(a: Buffer, b: Buffer): Buffer {
  return Buffer.compare(a, b) >= 0 ? a : b;
}

/** Inputs of one listing walk, keys already as UTF-8 bytes. */
export interface WalkInput {
  prefix: Buffer;
  delimiter?: Buffer;
  /** Start strictly after this cursor (a key, or a key plus sub-key for uploads). */
  start?: Cursor;
  /** How many entries to return; one more is probed to answer isTruncated. */
  limit: number;
}

/**
 * Walks rows and common prefixes in byte order, honouring the contract's rules: each entry is past the start, and a
 * common prefix at or before the start key is skipped whole.
 */
export function walk<R extends KeyedRow>(source: WalkSource<R>, input: WalkInput): { entries: WalkEntry<R>[]; isTruncated: boolean } {
  const { prefix, delimiter, limit } = input;
  const entries: WalkEntry<R>[] = [];
  if (limit <= 0) return { entries, isTruncated: false };
  const below = prefixUpperBound(prefix);
  const startKey = input.start?.key;
  let cursor: Cursor = { key: prefix };
  if (input.start) {
    const s = input.start;
    const past: Cursor = s.after !== undefined ? s : { key: successor(s.key) };
    if (Buffer.compare(past.key, prefix) >= 0) cursor = past;
  }
  // One query for the whole page and the entry after it (rows are read lazily, so LIMIT bounds nothing in memory).
  const batch = limit + 1;
  const rollUp = (key: Buffer): Buffer | undefined => {
    if (delimiter === undefined || delimiter.length === 0) return undefined;
    const at = key.indexOf(delimiter, prefix.length);
    return at >= 0 ? key.subarray(0, at + delimiter.length) : undefined;
  };
  /** Emits a common prefix unless it is at or before the start; false when the page was already full. */
  const emitPrefix = (common: Buffer): boolean => {
    if (startKey !== undefined && Buffer.compare(common, startKey) <= 0) return true;
    if (entries.length === limit) return false;
    entries.push({ kind: 'prefix', prefix: Buffer.from(common) });
    return true;
  };
  const full = { entries, isTruncated: true };
  const done = { entries, isTruncated: false };
  for (;;) {
    if (delimiter !== undefined && delimiter.length > 0) {
      // Probe one row first: under rolled-up prefixes, one index probe per prefix is all a page costs.
      const row = source.first(cursor, below);
      if (!row) return done;
      const common = rollUp(row.key);
      if (common) {
        if (!emitPrefix(common)) return full;
        cursor = { key: maxBytes(prefixUpperBound(common), cursor.key) };
        continue;
      }
    }
    let seen = 0;
    let last: R | undefined;
    let seek: Cursor | undefined;
    for (const row of source.fetch(cursor, below, batch)) {
      seen++;
      last = row;
      const common = rollUp(row.key);
      if (common) {
        if (!emitPrefix(common)) return full;
        seek = { key: maxBytes(prefixUpperBound(common), cursor.key) };
        break;
      }
      if (entries.length === limit) return full;
      entries.push({ kind: 'row', row });
    }
    if (seek) cursor = seek;
    else if (seen < batch || last === undefined) return done;
    else cursor = source.next(last);
  }
}

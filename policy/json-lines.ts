/**
 * Append-only JSON-lines files with size-based rotation (name, name.1 … name.N), shared by the denial and audit logs.
 * Several gateway processes may append to the same file: each line is one O_APPEND write, so lines never interleave.
 */

import { createReadStream, appendFileSync, closeSync, openSync, readdirSync, readSync, renameSync, statSync, fstatSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';

/** Default size after which a log file is rotated. */
export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;

/** Default number of rotated files kept beside the live one. */
export const DEFAULT_KEEP = 5;

/** Where and how a rotating JSON-lines file is written. */
export interface JsonLinesOptions {
  path: string;
  maxBytes?: number;
  keep?: number;
}

/** Appends one JSON value per line to a file, rotating it once it grows past maxBytes. */
export class JsonLinesWriter {
  readonly path: string;
  private readonly maxBytes: number;
  private readonly keep: number;
  /** Bytes written since the size was last read from disk; other processes append too, so it is only a hint. */
  private sizeHint: number;

  constructor(options: JsonLinesOptions) {
    this.path = options.path;
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.keep = options.keep ?? DEFAULT_KEEP;
    this.sizeHint = fileSize(this.path);
  }

  /** Appends one value as a line. */
  append(value: unknown): void {
    const line = JSON.stringify(value) + '\n';
    if (this.sizeHint + line.length > this.maxBytes) this.rotateIfFull();
    appendFileSync(this.path, line, { mode: 0o600 });
    this.sizeHint += Buffer.byteLength(line);
  }

  private rotateIfFull(): void {
    const size = fileSize(this.path);
    this.sizeHint = size;
    if (size < this.maxBytes) return;
    // Two processes may both rotate at once; the cost is one short file shifted early, never a lost line.
    for (let n = this.keep - 1; n >= 1; n--) renameQuietly(`${this.path}.${n}`, `${this.path}.${n + 1}`);
    if (this.keep >= 1) renameQuietly(this.path, `${this.path}.1`);
    this.sizeHint = 0;
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function renameQuietly(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** The live file and its rotated siblings, oldest first. */
export function rotatedFiles(path: string): string[] {
  const name = basename(path);
  let entries: string[];
  try {
    entries = readdirSync(dirname(path));
  } catch {
    return [];
  }
  const numbered = entries
    .map((entry) => ({ entry, n: entry.startsWith(`${name}.`) ? Number(entry.slice(name.length + 1)) : NaN }))
    .filter(({ n }) => Number.isInteger(n) && n > 0)
    .sort((a, b) => b.n - a.n)
    .map(({ entry }) => join(dirname(path), entry));
  return entries.includes(name) ? [...numbered, path] : numbered;
}

/** Reads every line of the file and its rotated siblings, oldest first, keeping the last `limit` that match. */
export async function readJsonLines<T>(path: string, match: (value: T) => boolean, limit?: number): Promise<T[]> {
  const out: T[] = [];
  for (const file of rotatedFiles(path)) {
    const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
    for await (const line of lines) {
      const value = parseLine<T>(line);
      if (value === undefined || !match(value)) continue;
      out.push(value);
      if (limit !== undefined && out.length > limit * 2) out.splice(0, out.length - limit);
    }
  }
  return limit === undefined ? out : out.slice(Math.max(0, out.length - limit));
}

function parseLine<T>(line: string): T | undefined {
  if (line.trim() === '') return undefined;
  try {
    return JSON.parse(line) as T;
  } catch {
    return undefined; // a torn or foreign line is skipped, not fatal
  }
}

/** Options of followJsonLines. */
export interface FollowOptions<T> {
  path: string;
  match: (value: T) => boolean;
  onValue: (value: T) => void;
  signal: AbortSignal;
  intervalMs?: number;
}

/**
 * Calls onValue for each line appended after the call, until the signal aborts. Polls the size; on rotation it
 * drains the renamed file through the descriptor it still holds, then moves on to the new live file.
 */
export async function followJsonLines<T>(options: FollowOptions<T>): Promise<void> {
  const { path, match, onValue, signal } = options;
  const interval = options.intervalMs ?? 250;
  let fd: number | undefined;
  let offset = 0;
  let partial = '';
  const openLive = (atEnd: boolean): void => {
    try {
      fd = openSync(path, 'r');
      offset = atEnd ? fstatSync(fd).size : 0;
    } catch {
      fd = undefined;
      offset = 0;
    }
  };
  const drain = (): void => {
    if (fd === undefined) return;
    const buffer = Buffer.alloc(64 * 1024);
    for (;;) {
      const read = readSync(fd, buffer, 0, buffer.length, offset);
      if (read === 0) break;
      offset += read;
      partial += buffer.toString('utf8', 0, read);
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const value = parseLine<T>(line);
        if (value !== undefined && match(value)) onValue(value);
      }
    }
  };
  openLive(true);
  try {
    while (!signal.aborted) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, interval);
        signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
      });
      drain();
      if (fd === undefined) { openLive(false); drain(); continue; }
      let live: number | undefined;
      try { live = statSync(path).ino; } catch { live = undefined; }
      if (live !== fstatSync(fd).ino) {
        closeSync(fd);
        partial = '';
        openLive(false);
        drain();
      }
    }
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The time window every log query takes, and the newest-`limit` cut. */
export interface LogFilter {
  since?: Date;
  until?: Date;
  /** Keep only the newest `limit` matches. */
  limit?: number;
}

/** One kind of JSON-lines log kept in a data directory: its file name and how a filter selects its records. */
export interface JsonLinesLog<T extends { time: string }, F extends LogFilter> {
  readonly file: string;
  /** Whether a record passes a filter: the time window, then `matches`. */
  matches(record: T, filter: F): boolean;
  /** A writer appending to dataDir/file, rotated by size. */
  writer(options: { dataDir: string; maxBytes?: number; keep?: number }): JsonLinesWriter;
  /** The records matching `filter` from the rotated files and the live one, oldest first (the newest `limit`). */
  query(dataDir: string, filter?: F): Promise<T[]>;
  /** Calls onRecord for each matching record appended from now on (limit ignored) until `signal` aborts. */
  follow(dataDir: string, filter: F, onRecord: (record: T) => void, signal: AbortSignal): Promise<void>;
}

/** Defines a JSON-lines log: the denial log and the audit log are two of these. */
export function jsonLinesLog<T extends { time: string }, F extends LogFilter>(
  file: string,
  matches: (record: T, filter: F) => boolean,
): JsonLinesLog<T, F> {
  const passes = (record: T, filter: F): boolean => {
    const time = Date.parse(record.time);
    if (filter.since !== undefined && !(time >= filter.since.getTime())) return false;
    if (filter.until !== undefined && !(time <= filter.until.getTime())) return false;
    return matches(record, filter);
  };
  return {
    file,
    matches: passes,
    writer: (options) => new JsonLinesWriter({ path: join(options.dataDir, file), maxBytes: options.maxBytes, keep: options.keep }),
    query: (dataDir, filter = {} as F) => readJsonLines<T>(join(dataDir, file), (record) => passes(record, filter), filter.limit),
    follow: (dataDir, filter, onRecord, signal) =>
      followJsonLines<T>({ path: join(dataDir, file), match: (record) => passes(record, filter), onValue: onRecord, signal }),
  };
}

/** The CLI's text side: scope and time arguments in, aligned tables and key/value listings out. */
import { formatGrant, type ScopeGrant } from '../../policy/index.ts';

/** A command-line mistake: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Milliseconds of a duration like `90s`, `15m`, `1h`, `30d`, `2w`, or undefined when it is none. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+)([smhdw])$/.exec(text.trim());
  return m ? Number(m[1]) * UNITS[m[2]!]! : undefined;
}

/**
 * An ISO time from an argument that is either ISO 8601 or a duration, counted back from now (`--since 1h`) or
 * forward (`--expires 30d`).
 */
export function timeArg(name: string, text: string | undefined, direction: -1 | 1, now = Date.now()): string | undefined {
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (ms !== undefined) return new Date(now + direction * ms).toISOString();
  const date = /^\d{4}-\d{2}-\d{2}/.test(text) ? new Date(text) : new Date(NaN);
  if (Number.isNaN(date.getTime())) throw new UsageError(`--${name} takes an ISO time (2027-01-01T00:00:00Z) or a duration (30d, 1h)`);
  return date.toISOString();
}

/** Parses `object:read,object:list@bucket/prefix` (`@*` for every bucket of the tenant) into a grant. */
export function parseScope(text: string): ScopeGrant {
  const at = text.lastIndexOf('@');
  if (at <= 0 || at === text.length - 1) throw new UsageError(`--scope "${text}" must look like object:read,object:list@bucket/prefix or admin@*`);
  const families = text.slice(0, at).split(',').map((f) => f.trim()).filter(Boolean);
  const where = text.slice(at + 1);
  const slash = where.indexOf('/');
  const bucket = slash < 0 ? where : where.slice(0, slash);
  const prefix = slash < 0 ? '' : where.slice(slash + 1);
  return { families: families as ScopeGrant['families'], bucket, ...(prefix ? { prefix } : {}) };
}

/** A grant written back in --scope syntax. */
export const formatScope: (grant: ScopeGrant) => string = formatGrant;

let color = false;

/** Turns ANSI colour on (a terminal without NO_COLOR) or off (pipes, files, tests) for tables. */
export function setColor(on: boolean): void {
  color = on;
}

/** Columns padded to their widest cell (the last column is never padded); the header bold on a terminal. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const head = formatRow(headers, widths);
  return [color ? `\x1b[1m${head}\x1b[0m` : head, ...rows.map((row) => formatRow(row, widths))].join('\n') + '\n';
}

/** One row padded to the given widths. */
export function formatRow(row: string[], widths: number[]): string {
  return row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
}

/** `key: value` lines for one object, nested values as JSON. */
export function keyValues(record: Record<string, unknown>): string {
  const entries = Object.entries(record).filter(([, v]) => v !== undefined);
  const width = Math.max(...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${typeof v === 'string' ? v : JSON.stringify(v)}`).join('\n') + '\n';
}

/** A time shortened for tables: `2026-05-01 12:34:56`. */
export function shortTime(iso: string | undefined): string {
  return iso === undefined ? '-' : iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, '');
}

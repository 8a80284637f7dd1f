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
export function table(headers: string[], cells: string[][]): string {
  const rows = cells.map((row) => row.map(printable));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const head = formatRow(headers, widths);
  return [color ? `\x1b[1m${head}\x1b[0m` : head, ...rows.map((row) => formatRow(row, widths))].join('\n') + '\n';
}

/** One row padded to the given widths, each cell through `printable`. */
export function formatRow(row: string[], widths: number[]): string {
  return row.map(printable).map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
}

/** `key: value` lines for one object, nested values as JSON, every value through `printable`. */
export function keyValues(record: Record<string, unknown>): string {
  const entries = Object.entries(record).filter(([, v]) => v !== undefined);
  const width = Math.max(...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${printable(typeof v === 'string' ? v : JSON.stringify(v))}`).join('\n') + '\n';
}

/** A time shortened for tables: `2026-05-01 12:34:56`. */
export function shortTime(iso: string | undefined): string {
  return iso === undefined ? '-' : iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, '');
}

/**
 * Characters a terminal acts on instead of showing: C0 controls (newline and tab included), DEL, C1 controls, and the
 * Unicode bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069) that reorder what a reader sees
 * (CVE-2021-42574, "Trojan Source"). Text a caller chose (object keys, names, user agents, reasons) goes through
 * `printable` before it reaches a human, so it can neither retitle or recolour the operator's terminal nor forge a
 * table row.
 */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const UNPRINTABLE_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeOne(ch: string): string {
  const named = NAMED[ch];
  if (named) return named;
  const code = ch.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** `text` with every control character and bidi override shown as an escape (`\x1b`, `\n`, `\u202e`); one line. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, escapeOne);
}

/** Like `printable`, but keeps line breaks: for documents of many lines (a schema, an export, a report). */
export function printableLines(text: string): string {
  return text.replace(UNPRINTABLE_BUT_NEWLINE, escapeOne);
}

/** A template tag: the literal parts as written, every interpolated value through `printable`. */
export function say(parts: TemplateStringsArray, ...values: unknown[]): string {
  return parts.reduce((acc, part, i) => acc + part + (i < values.length ? printable(String(values[i])) : ''), '');
}

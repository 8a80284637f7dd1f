/**
 * The bench's one table: a row per workload, a column per server, then the ratios the targets are stated in
 * (gateway ÷ MinIO direct, gateway → MinIO ÷ MinIO direct, gateway ÷ bare), gateway → MinIO ÷ bare proxy → MinIO
 * (how much of the upstream gap is the gateway's own work rather than the cost of a Node proxy hop), and TCP forwarder
 * → MinIO ÷ MinIO direct (the most any hop in front of MinIO can keep on this machine). Printed as Markdown, so a run's output
 * goes into the README as it is.
 */
import type { BenchRow } from '../policy/relationships/bench.ts';
import { SERVER_TITLES, SERVERS, type ServerName } from './servers.ts';

/** What a row's figures count. */
export type Unit = 'op/s' | 'MiB/s' | 'keys/s' | 'MiB' | 'µs';

/** One workload's figures, by server; a server left out did not run it (or cannot: bare lists nothing). */
export interface Row {
  workload: string;
  unit: Unit;
  values: Partial<Record<ServerName, number>>;
  /** Marks a figure whose run had errors (non-2xx answers, timeouts), which makes it no figure to trust. */
  errors?: Partial<Record<ServerName, number>>;
  /** A word on how a figure was obtained, printed beside it (e.g. a walk cut short). */
  notes?: Partial<Record<ServerName, string>>;
}

/** The ratio columns: numerator, denominator. */
export const RATIOS: ReadonlyArray<[string, ServerName, ServerName]> = [
  ['gateway ÷ MinIO', 'gateway', 'minio'],
  ['gateway→MinIO ÷ MinIO', 'upstream', 'minio'],
  ['gateway→MinIO ÷ bare proxy', 'upstream', 'proxy'],
  ['TCP forwarder ÷ MinIO', 'forwarder', 'minio'],
  ['gateway ÷ bare', 'gateway', 'bare'],
];

/** A figure with thousands separators; fewer than 100 keeps one decimal. */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return '—';
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1);
}

function cell(row: Row, server: ServerName, withUnit: boolean): string {
  const v = row.values[server];
  if (v === undefined) return '—';
  const errors = row.errors?.[server];
  const note = row.notes?.[server];
  const text = formatNumber(v) + (withUnit ? ` ${row.unit}` : '') + (note ? ` (${note})` : '');
  return errors ? `${text} (${errors} errors!)` : text;
}

/** Units of costs (lower is better), whose rows get no ratio columns: those are stated for rates. */
const COSTS: ReadonlySet<Unit> = new Set(['MiB', 'µs']);

/** gateway ÷ baseline for rate rows; cost rows (memory, CPU per request) have none. */
export function ratio(row: Row, num: ServerName, den: ServerName): string {
  const a = row.values[num];
  const b = row.values[den];
  if (COSTS.has(row.unit) || a === undefined || b === undefined || b === 0) return '';
  return (a / b).toFixed(2);
}

/** The table as Markdown lines: the unit is written in the first server column of each row. */
export function formatTable(rows: Row[]): string {
  const head = ['workload', ...SERVERS.map((s) => SERVER_TITLES[s]), ...RATIOS.map(([title]) => title)];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const row of rows) {
    const firstValue = SERVERS.find((s) => row.values[s] !== undefined);
    const cells = [row.workload, ...SERVERS.map((s) => cell(row, s, s === firstValue)), ...RATIOS.map(([, n, d]) => ratio(row, n, d))];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** The relationship engine's own rows (test/policy/relationships/bench.ts) as a second Markdown table. */
export function formatEngineTable(rows: BenchRow[]): string {
  const num = (n: number | undefined, unit: string) => (n === undefined ? '' : `${formatNumber(n)} ${unit}`);
  const lines = ['| relationship engine | p50 | p99 | count | per second | note |', '|---|---:|---:|---:|---:|---|'];
  for (const r of rows) {
    const count = r.count === undefined ? '' : formatNumber(r.count);
    lines.push(`| ${r.label} | ${num(r.p50, 'µs')} | ${num(r.p99, 'µs')} | ${count} | ${num(r.perSecond, 'keys/s')} | ${r.note ?? ''} |`);
  }
  return lines.join('\n');
}

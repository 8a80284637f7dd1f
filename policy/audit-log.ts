/**
 * The audit log: one JSON line per change to tenants, credentials or bucket ownership (who, what, when) in
 * dataDir/audit.log, rotated by size like the denial log. Secrets never appear in it.
 */

import { join } from 'node:path';
import { followJsonLines, JsonLinesWriter, readJsonLines } from './json-lines.ts';

/** The audit log's file name inside the data directory. */
export const AUDIT_LOG_FILE = 'audit.log';

/** One change. */
export interface AuditRecord {
  time: string;
  /** Who made the change: an access key id, `operator` for the CLI, or `system` for bootstrap. */
  actor: string;
  /** What happened, e.g. `credential.create`, `tenant.disable`, `bucket.assign`. */
  action: string;
  tenant?: string;
  accessKeyId?: string;
  bucket?: string;
  /** Non-secret details (names, descriptions, scopes, grace period). */
  details?: Record<string, unknown>;
}

/** Which audit records a query returns. */
export interface AuditFilter {
  since?: Date;
  until?: Date;
  actor?: string;
  action?: string;
  tenant?: string;
  accessKeyId?: string;
  limit?: number;
}

/** Appends audit records to dataDir/audit.log. */
export class AuditLog {
  private readonly writer: JsonLinesWriter;

  constructor(options: { dataDir: string; maxBytes?: number; keep?: number }) {
    this.writer = new JsonLinesWriter({ path: join(options.dataDir, AUDIT_LOG_FILE), maxBytes: options.maxBytes, keep: options.keep });
  }

  /** Records one change, stamping the time when absent. */
  write(record: Omit<AuditRecord, 'time'> & { time?: string }): void {
    this.writer.append({ ...record, time: record.time ?? new Date().toISOString() });
  }
}

function auditMatches(record: AuditRecord, filter: AuditFilter): boolean {
  const time = Date.parse(record.time);
  if (filter.since !== undefined && !(time >= filter.since.getTime())) return false;
  if (filter.until !== undefined && !(time <= filter.until.getTime())) return false;
  if (filter.actor !== undefined && record.actor !== filter.actor) return false;
  if (filter.action !== undefined && record.action !== filter.action) return false;
  if (filter.tenant !== undefined && record.tenant !== filter.tenant) return false;
  if (filter.accessKeyId !== undefined && record.accessKeyId !== filter.accessKeyId) return false;
  return true;
}

/** The audit records matching `filter`, oldest first. */
export function queryAudit(dataDir: string, filter: AuditFilter = {}): Promise<AuditRecord[]> {
  return readJsonLines<AuditRecord>(join(dataDir, AUDIT_LOG_FILE), (record) => auditMatches(record, filter), filter.limit);
}

/** Streams audit records appended from now on until `signal` aborts. */
export function followAudit(
  dataDir: string,
  filter: AuditFilter,
  onRecord: (record: AuditRecord) => void,
  signal: AbortSignal,
): Promise<void> {
  return followJsonLines<AuditRecord>({
    path: join(dataDir, AUDIT_LOG_FILE),
    match: (record) => auditMatches(record, filter),
    onValue: onRecord,
    signal,
  });
}

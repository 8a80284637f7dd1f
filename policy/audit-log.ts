/**
 * The audit log: one JSON line per change to tenants, credentials or bucket ownership (who, what, when) in
 * dataDir/audit.log, rotated by size like the denial log. Secrets never appear in it.
 */

import { jsonLinesLog, type JsonLinesWriter, type LogFilter } from './json-lines.ts';

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
export interface AuditFilter extends LogFilter {
  actor?: string;
  action?: string;
  tenant?: string;
  accessKeyId?: string;
  /** Only records the asker may see (an admin narrower than its tenant); applied before `limit`. */
  visible?: (record: AuditRecord) => boolean;
}

/** The audit log's file and filter. */
const AUDIT = jsonLinesLog<AuditRecord, AuditFilter>(
  AUDIT_LOG_FILE,
  (record, filter) =>
    (filter.actor === undefined || record.actor === filter.actor) &&
    (filter.action === undefined || record.action === filter.action) &&
    (filter.tenant === undefined || record.tenant === filter.tenant) &&
    (filter.accessKeyId === undefined || record.accessKeyId === filter.accessKeyId) &&
    (filter.visible === undefined || filter.visible(record)),
);

/** Appends audit records to dataDir/audit.log. */
export class AuditLog {
  private readonly writer: JsonLinesWriter;

  constructor(options: { dataDir: string; maxBytes?: number; keep?: number }) {
    this.writer = AUDIT.writer(options);
  }

  /** Records one change, stamping the time when absent. */
  write(record: Omit<AuditRecord, 'time'> & { time?: string }): void {
    this.writer.append({ ...record, time: record.time ?? new Date().toISOString() });
  }
}

/** The audit records matching `filter`, oldest first. */
export const queryAudit = AUDIT.query;

/** Streams audit records appended from now on until `signal` aborts. */
export const followAudit = AUDIT.follow;

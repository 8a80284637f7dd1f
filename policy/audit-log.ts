/**
 * The audit log: one row per change to tenants, credentials, bucket ownership, roles, providers, signing keys and
 * capabilities (who, what, when, on which node), in the policy database. A row is written in the transaction of the
 * change it records, so every committed change has its row and no row describes a change that did not happen; every
 * node's changes are one query away. Secrets never appear in it.
 */

import type { Kysely, Selectable } from 'kysely';
import type { PolicyDatabase } from './database/policy-database.ts';
import type { PolicyTables } from './database/tables.ts';
import { defineLog, type LogFilter } from './log-query.ts';
import { scrubStrings } from './scrub.ts';

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
  /** The gateway node (or CLI process) that made the change. */
  node?: string;
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

type Row = Selectable<PolicyTables['audit_log']>;

/** Writes one audit row inside the transaction of the change it records. */
export async function insertAudit(trx: Kysely<PolicyTables>, record: Omit<AuditRecord, 'time'> & { time?: string }, node: string): Promise<void> {
  await trx
    .insertInto('audit_log')
    .values({
      time: record.time === undefined ? Date.now() : Date.parse(record.time),
      actor: record.actor,
      action: record.action,
      tenant: record.tenant ?? null,
      access_key_id: record.accessKeyId ?? null,
      bucket: record.bucket ?? null,
      // Descriptions and reasons are caller-chosen text: scrubbed like every log (policy/scrub.ts).
      details: record.details === undefined ? null : JSON.stringify(scrubStrings(record.details)),
      node,
    })
    .execute();
}

/**
 * Writes one audit row for an event that changes no policy (a recorded access audit run): no write lock, no revision
 * moved, so no node drops a cache over it.
 */
export function appendAudit(database: PolicyDatabase, record: Omit<AuditRecord, 'time' | 'node'>): Promise<void> {
  return insertAudit(database.db('policy'), record, database.node);
}

function recordOf(row: Row): AuditRecord {
  const record: AuditRecord = { time: new Date(row.time).toISOString(), actor: row.actor, action: row.action };
  if (row.tenant !== null) record.tenant = row.tenant;
  if (row.access_key_id !== null) record.accessKeyId = row.access_key_id;
  if (row.bucket !== null) record.bucket = row.bucket;
  if (row.details !== null) record.details = JSON.parse(row.details) as Record<string, unknown>;
  if (row.node !== null) record.node = row.node;
  return record;
}

const AUDIT = defineLog<AuditFilter, Row, AuditRecord>({
  rows: (database) => database.db('policy', 'long').selectFrom('audit_log').selectAll(),
  narrow(q, filter) {
    if (filter.actor !== undefined) q = q.where('actor', '=', filter.actor);
    if (filter.action !== undefined) q = q.where('action', '=', filter.action);
    if (filter.tenant !== undefined) q = q.where('tenant', '=', filter.tenant);
    if (filter.accessKeyId !== undefined) q = q.where('access_key_id', '=', filter.accessKeyId);
    return q;
  },
  record: recordOf,
  async remove(database, before) {
    return Number((await database.db('policy', 'long').deleteFrom('audit_log').where('time', '<', before).executeTakeFirst()).numDeletedRows);
  },
});

/** The audit records matching `filter`, from every node, oldest first (the newest `limit` when it names one). */
export const queryAudit = AUDIT.query;

/** Calls onRecord for each matching audit record written from now on, by any node, until `signal` aborts. */
export const followAudit = AUDIT.follow;

/** Deletes audit rows older than `before`; returns how many went. */
export const purgeAudit = AUDIT.purge;

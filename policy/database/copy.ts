/**
 * Moves an embedded deployment's policy (SQLite files in a data directory) into an empty PostgreSQL policy database,
 * all or nothing: every row of every concern — tenants, credentials (still sealed: the same master key opens them),
 * buckets, STS roles, providers and signing keys, capability keys, revocations and mints, the audit log, access
 * records, schemas, tuples, the changelog and import records, denial rows — and the revision counters, in one
 * PostgreSQL transaction.
 * Row ids and changelog sequence numbers are kept (so watch clients resume where they were), and PostgreSQL's
 * sequences continue after them.
 */
import type { Kysely, Transaction } from 'kysely';
import { sql } from 'kysely';
import { ConflictError, InvalidInputError } from '../errors.ts';
import { POSTGRES_SCHEMAS, type PolicyDatabase } from './policy-database.ts';
import type { Concern } from './tables.ts';

/** Each concern's tables in the order rows go in (referenced before referencing), with key columns to page by. */
const TABLES: Record<Concern, Array<{ table: string; key: string[]; serial?: string }>> = {
  policy: [
    { table: 'meta', key: ['key'] },
    { table: 'revisions', key: ['name'] },
    { table: 'tenants', key: ['name'] },
    { table: 'credentials', key: ['access_key_id'] },
    { table: 'buckets', key: ['name'] },
    { table: 'sts_roles', key: ['id'] },
    { table: 'sts_oidc_providers', key: ['id'] },
    { table: 'sts_signing_keys', key: ['kid'] },
    { table: 'capability_root_keys', key: ['tenant'] },
    { table: 'capability_revocations', key: ['id'] },
    { table: 'capability_mints', key: ['id'] },
    { table: 'audit_log', key: ['id'], serial: 'id' },
    { table: 'credential_uses', key: ['access_key_id', 'day', 'family', 'remote_address', 'user_agent'] },
    { table: 'console_signouts', key: ['id'] },
  ],
  relationships: [
    { table: 'revisions', key: ['name'] },
    { table: 'tenant_revisions', key: ['tenant'] },
    { table: 'schemas', key: ['tenant', 'revision'] },
    { table: 'tuples', key: ['tenant', 'resource_type', 'resource_id', 'relation', 'subject_relation', 'subject_type', 'subject_id'] },
    { table: 'changelog', key: ['seq'], serial: 'seq' },
    { table: 'import_sources', key: ['id'], serial: 'id' },
  ],
  logs: [{ table: 'denials', key: ['id'], serial: 'id' }],
};

/** Rows read and written per statement. */
const PAGE = 2_000;

/** How many rows of each table were copied, by `concern.table`. */
export type CopyCounts = Record<string, number>;

type AnyDb = Kysely<Record<string, Record<string, unknown>>>;

/** Whether the target holds anything a node made: it must be empty but for what its migrations seeded. */
async function assertEmpty(target: PolicyDatabase): Promise<void> {
  const count = async (concern: Concern, table: string, where?: [string, string, string]) => {
    let q = (target.db(concern) as unknown as AnyDb).selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n'));
    if (where) q = q.where(where[0], where[1] as '!=', where[2]);
    return Number((await q.executeTakeFirstOrThrow()).n);
  };
  const held = [
    ['credentials', await count('policy', 'credentials')],
    ['tenants', await count('policy', 'tenants', ['name', '!=', 'root'])],
    ['audit rows', await count('policy', 'audit_log')],
    ['tuples', await count('relationships', 'tuples')],
    ['changelog rows', await count('relationships', 'changelog')],
    ['denial rows', await count('logs', 'denials')],
  ].filter(([, n]) => (n as number) > 0);
  if (held.length > 0) {
    throw new ConflictError(`the target already holds policy (${held.map(([what, n]) => `${n} ${what}`).join(', ')}): migrate into an empty database, before any node starts on it`);
  }
}

/**
 * Copies every row of `source` (SQLite) into `target` (PostgreSQL, migrated and empty) in one transaction; returns
 * the counts. Throws ConflictError when the target already holds policy, and leaves it untouched on any failure.
 */
export async function copyPolicy(source: PolicyDatabase, target: PolicyDatabase): Promise<CopyCounts> {
  if (source.dialect !== 'sqlite') throw new InvalidInputError('the source must be an embedded (SQLite) policy store');
  if (target.dialect !== 'postgres') throw new InvalidInputError('the target must be a PostgreSQL policy database');
  await assertEmpty(target);
  const counts: CopyCounts = {};
  await (target.db('policy') as unknown as AnyDb).transaction().execute(async (policyTrx) => {
    for (const concern of ['policy', 'relationships', 'logs'] as const) {
      const into = policyTrx.withSchema(POSTGRES_SCHEMAS[concern]) as Transaction<Record<string, Record<string, unknown>>>;
      // What the target's migrations seeded (the root tenant, zeroed revisions) makes way for the source's rows.
      for (const { table } of [...TABLES[concern]].reverse()) await into.deleteFrom(table).execute();
      await source.snapshot(concern, async (from) => {
        const reader = from as unknown as Transaction<Record<string, Record<string, unknown>>>;
        for (const { table, key, serial } of TABLES[concern]) {
          let copied = 0;
          for (let offset = 0; ; offset += PAGE) {
            const ordered = key.reduce((q, column) => q.orderBy(column), reader.selectFrom(table).selectAll());
            const rows = await ordered.limit(PAGE).offset(offset).execute();
            if (rows.length > 0) await into.insertInto(table).values(rows).execute();
            copied += rows.length;
            if (rows.length < PAGE) break;
          }
          counts[`${concern}.${table}`] = copied;
          if (serial !== undefined) {
            const qualified = `${POSTGRES_SCHEMAS[concern]}.${table}`;
            await sql`SELECT setval(pg_get_serial_sequence(${qualified}, ${serial}), (SELECT coalesce(max(${sql.ref(serial)}), 0) + 1 FROM ${sql.id(POSTGRES_SCHEMAS[concern], table)}), false)`.execute(into);
          }
        }
      });
    }
  });
  return counts;
}

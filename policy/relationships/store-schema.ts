/**
 * The relationship database's tables (numbered migrations, like policy/store-schema.ts), row shapes and revision
 * tokens. Tuples are a WITHOUT ROWID table keyed for forward lookup (resource → subjects, usersets and direct subjects
 * as separate key ranges) with a reverse index (subject → resources). `meta.revision` is the global counter every
 * write bumps; `tenant_revisions` holds each tenant's latest revision, which is what caches are keyed by.
 */

import type Database from 'better-sqlite3';
import { InvalidInputError } from '../errors.ts';
import { applyMigrations } from '../migrations.ts';
import type { Tuple } from './tuples.ts';

/** Ordered schema changes; an entry, once released, is never edited, only followed by a new one. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value ANY) STRICT;
   INSERT INTO meta (key, value) VALUES ('revision', 0);
   CREATE TABLE tenant_revisions (
     tenant TEXT PRIMARY KEY,
     revision INTEGER NOT NULL,
     schema_revision INTEGER NOT NULL DEFAULT 0
   ) STRICT;
   CREATE TABLE schemas (
     tenant TEXT NOT NULL,
     revision INTEGER NOT NULL,
     text TEXT NOT NULL,
     actor TEXT NOT NULL,
     written_at INTEGER NOT NULL,
     PRIMARY KEY (tenant, revision)
   ) STRICT;
   CREATE TABLE tuples (
     tenant TEXT NOT NULL,
     resource_type TEXT NOT NULL,
     resource_id TEXT NOT NULL,
     relation TEXT NOT NULL,
     subject_relation TEXT NOT NULL,
     subject_type TEXT NOT NULL,
     subject_id TEXT NOT NULL,
     caveat_name TEXT,
     caveat_hash TEXT,
     caveat_context TEXT,
     created_revision INTEGER NOT NULL,
     PRIMARY KEY (tenant, resource_type, resource_id, relation, subject_relation, subject_type, subject_id)
   ) STRICT, WITHOUT ROWID;
   CREATE INDEX tuples_reverse ON tuples (tenant, subject_type, subject_id, subject_relation, resource_type, relation);
   CREATE TABLE changelog (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     tenant TEXT NOT NULL,
     revision INTEGER NOT NULL,
     kind TEXT NOT NULL,
     tuple TEXT,
     caveat_name TEXT,
     caveat_hash TEXT,
     details TEXT,
     request_id TEXT,
     actor TEXT NOT NULL,
     reason TEXT NOT NULL,
     at INTEGER NOT NULL
   ) STRICT;
   CREATE INDEX changelog_tenant ON changelog (tenant, revision, seq);
   CREATE TABLE import_sources (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     tenant TEXT NOT NULL,
     revision INTEGER NOT NULL,
     name TEXT NOT NULL,
     digest TEXT NOT NULL,
     count INTEGER NOT NULL,
     actor TEXT NOT NULL,
     reason TEXT NOT NULL,
     request_id TEXT,
     at INTEGER NOT NULL
   ) STRICT;
   CREATE INDEX import_sources_tenant ON import_sources (tenant, id);`,
  // Relationship expiration (SpiceDB's OptionalExpiresAt): epoch milliseconds, NULL for never; a plain column.
  `ALTER TABLE tuples ADD COLUMN expires_at INTEGER;
   CREATE INDEX tuples_expiry ON tuples (expires_at) WHERE expires_at IS NOT NULL;`,
];

/** Applies the migrations not yet recorded, in one immediate transaction. */
export function migrate(db: Database.Database): void {
  applyMigrations(db, MIGRATIONS);
}

/** A tuples row. */
export interface TupleRow {
  resource_type: string;
  resource_id: string;
  relation: string;
  subject_type: string;
  subject_id: string;
  subject_relation: string;
  caveat_name: string | null;
  caveat_hash: string | null;
  caveat_context: string | null;
  /** Epoch milliseconds from which the tuple grants nothing; null when it never expires. */
  expires_at: number | null;
}

/** The columns of TupleRow, for SELECT lists. */
export const TUPLE_COLUMNS = 'resource_type, resource_id, relation, subject_type, subject_id, subject_relation, caveat_name, caveat_hash, caveat_context, expires_at';

/** Whether a row has expired at `now` (epoch ms): from its expiry instant on, it grants nothing. */
export function expired(row: { expires_at: number | null }, now: number): boolean {
  return row.expires_at !== null && row.expires_at <= now;
}

/** A tuples row as a Tuple. */
export function rowTuple(row: TupleRow): Tuple {
  const tuple: Tuple = {
    resource: { type: row.resource_type, id: row.resource_id },
    relation: row.relation,
    subject: { type: row.subject_type, id: row.subject_id },
  };
  if (row.subject_relation !== '') tuple.subject.relation = row.subject_relation;
  if (row.caveat_name !== null && row.caveat_hash !== null) {
    tuple.caveat = { name: row.caveat_name, hash: row.caveat_hash };
    if (row.caveat_context !== null) tuple.caveat.context = JSON.parse(row.caveat_context) as Record<string, unknown>;
  }
  if (row.expires_at !== null) tuple.expiration = new Date(row.expires_at).toISOString().replace('.000Z', 'Z');
  return tuple;
}

/** A Tuple as named SQL parameters. */
export function tupleParams(tenant: string, t: Tuple): Record<string, string | number | null> {
  return {
    tenant,
    rt: t.resource.type,
    rid: t.resource.id,
    rel: t.relation,
    st: t.subject.type,
    sid: t.subject.id,
    srel: t.subject.relation ?? '',
    cn: t.caveat?.name ?? null,
    ch: t.caveat?.hash ?? null,
    cc: t.caveat?.context === undefined ? null : JSON.stringify(t.caveat.context),
    exp: t.expiration === undefined ? null : Date.parse(t.expiration),
  };
}

const TOKEN_PREFIX = 'rv1.';

/** The opaque token of a revision. */
export function encodeRevision(revision: number): string {
  return TOKEN_PREFIX + Buffer.from(String(revision)).toString('base64url');
}

/** The revision a token stands for; throws InvalidInputError on anything that is not a token. */
export function decodeRevision(token: string): number {
  const digits = token.startsWith(TOKEN_PREFIX) ? Buffer.from(token.slice(TOKEN_PREFIX.length), 'base64url').toString() : '';
  if (!/^\d{1,15}$/.test(digits)) throw new InvalidInputError('invalid revision token');
  return Number(digits);
}

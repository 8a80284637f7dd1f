/**
 * The relationship store's row shapes and revision tokens (the tables and their migrations are in
 * policy/database/). Tuples are keyed for forward lookup (resource → subjects, usersets and direct subjects as
 * separate key ranges) with a reverse index (subject → resources). The concern's revision counter is the global one
 * every write bumps; `tenant_revisions` holds each tenant's latest revision, which is what caches are keyed by.
 */

import type { TuplesTable } from '../database/tables.ts';
import { InvalidInputError } from '../errors.ts';
import type { Tuple } from './tuples.ts';

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
export const TUPLE_COLUMNS = [
  'resource_type',
  'resource_id',
  'relation',
  'subject_type',
  'subject_id',
  'subject_relation',
  'caveat_name',
  'caveat_hash',
  'caveat_context',
  'expires_at',
] as const;

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

/** A Tuple as a tuples row of `tenant` written at `revision`. */
export function tupleValues(tenant: string, t: Tuple, revision: number): TuplesTable {
  return {
    tenant,
    resource_type: t.resource.type,
    resource_id: t.resource.id,
    relation: t.relation,
    subject_type: t.subject.type,
    subject_id: t.subject.id,
    subject_relation: t.subject.relation ?? '',
    caveat_name: t.caveat?.name ?? null,
    caveat_hash: t.caveat?.hash ?? null,
    caveat_context: t.caveat?.context === undefined ? null : JSON.stringify(t.caveat.context),
    expires_at: t.expiration === undefined ? null : Date.parse(t.expiration),
    created_revision: revision,
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

/**
 * The shapes the relationship store takes and gives: audit context, updates, filters, preconditions, change events
 * and import records.
 */
import type { TupleReader } from './store-reads.ts';
import type { CompiledSchema } from './schema.ts';
import type { Tuple } from './tuples.ts';

/** Who changes something and why; the reason is required, the request id ties it to the gateway's logs. */
export interface AuditContext {
  actor: string;
  reason: string;
  requestId?: string;
}

/** One update of a batch: create fails if the tuple exists, touch upserts, delete removes (absent is fine). */
export interface TupleUpdate {
  op: 'create' | 'touch' | 'delete';
  tuple: Tuple | string;
}

/** Tuples a precondition looks for; absent fields match anything. */
export interface TupleFilter {
  resourceType: string;
  resourceId?: string;
  relation?: string;
  subjectType?: string;
  subjectId?: string;
  subjectRelation?: string;
}

/** A batch precondition: some tuple matching the filter must (not) exist. */
export interface Precondition {
  op: 'must_exist' | 'must_not_exist';
  filter: TupleFilter;
}

/** What a write's guard decides against: the tenant's state inside the write transaction, before the write. */
export interface GuardContext {
  schema: CompiledSchema;
  /** The tenant's revision before the write. */
  revision: number;
  /** Reads inside the write transaction. */
  reader: TupleReader;
}

/** Options of a tuple write; `guard` runs inside the transaction, after validation, before anything is written. */
export interface WriteOptions extends AuditContext {
  preconditions?: Precondition[];
  /** The guarded writer's subject (`app:AKIA…`), recorded with each change so its tuples can go with it. */
  writer?: string;
  guard?: (updates: Array<{ op: TupleUpdate['op']; tuple: Tuple }>, context: GuardContext) => Promise<void>;
}

/** One change event of the watch stream. */
export interface ChangeEvent {
  revision: string;
  kind: 'tuple.create' | 'tuple.touch' | 'tuple.delete' | 'schema.write' | 'caveat.write';
  tuple?: Tuple;
  caveat?: { name: string; hash: string | null };
  at: string;
}

/** One audited change: a change event plus who, why and the request. */
export interface RelationshipAuditRecord extends ChangeEvent {
  actor: string;
  reason: string;
  requestId?: string;
}

/** The record an accepted import leaves. */
export interface ImportSource {
  id: number;
  revision: string;
  name: string;
  digest: string;
  count: number;
  actor: string;
  reason: string;
  at: string;
}

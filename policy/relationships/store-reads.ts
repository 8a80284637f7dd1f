/**
 * The engine's reads of the tuples table, as one reader over a connection, a write transaction (a guard deciding
 * inside a write sees that write's state) or a lazily opened read snapshot (a check that misses its caches reads one
 * consistent state, and a check answered from caches opens nothing). The point reads are prepared once (see
 * policy/database/prepared.ts): they are what a cold check costs.
 */
import type { Kysely, Transaction } from 'kysely';
import type { PolicyDatabase } from '../database/policy-database.ts';
import { prepare, type QueryRunner } from '../database/prepared.ts';
import type { RelationshipTables } from '../database/tables.ts';
import { TUPLE_COLUMNS, type TupleRow } from './store-schema.ts';

type Db = Kysely<RelationshipTables>;
type Ref = { type: string; id: string };
type SubjectKey = { type: string; id: string; relation?: string };

/** What the engine reads; every method sees the reader's one connection or snapshot. */
export interface TupleReader {
  /** The one tuple (resource, relation, exact subject), or undefined. */
  exact(tenant: string, resource: Ref, relation: string, subject: SubjectKey): Promise<TupleRow | undefined>;
  /** Tuples of (resource, relation) whose subject is a userset. */
  usersets(tenant: string, resource: Ref, relation: string): Promise<TupleRow[]>;
  /** Tuples of (resource, relation) whose subject is a plain object or wildcard. */
  objects(tenant: string, resource: Ref, relation: string): Promise<TupleRow[]>;
  /** Every tuple of (resource, relation), usersets and objects alike: what an arrow walks. */
  relationRows(tenant: string, resource: Ref, relation: string): Promise<TupleRow[]>;
  /** Every tuple on resources of a type with ids in [from, to]. */
  range(tenant: string, type: string, from: string, to: string): Promise<TupleRow[]>;
  /** Up to `limit` tuples of one resource (forward index). */
  resource(tenant: string, resource: Ref, limit: number): Promise<TupleRow[]>;
  /** Tuples making the subject a member of one of the `type#relation` usersets in `targets` (reverse index). */
  memberships(tenant: string, subject: SubjectKey, targets: Set<string>): Promise<TupleRow[]>;
  /** Distinct subject ids of a type in the tenant's tuples (wildcards excluded). */
  subjectIds(tenant: string, subjectType: string): Promise<string[]>;
}

/** The prepared queries of one database handle; readers bind them to a runner. */
export class TupleQueries {
  readonly exact;
  readonly usersets;
  readonly objects;
  readonly relationRows;
  readonly range;
  readonly resource;
  readonly memberships;
  readonly subjectIds;

  constructor(db: Db) {
    const key = (t: string, rt: string, rid: string, rel: string) =>
      db.selectFrom('tuples').select(TUPLE_COLUMNS).where('tenant', '=', t).where('resource_type', '=', rt).where('resource_id', '=', rid).where('relation', '=', rel);
    this.exact = prepare(7, (t: string, rt: string, rid: string, rel: string, srel: string, st: string, sid: string) =>
      key(t, rt, rid, rel).where('subject_relation', '=', srel).where('subject_type', '=', st).where('subject_id', '=', sid),
    );
    this.usersets = prepare(4, (t: string, rt: string, rid: string, rel: string) => key(t, rt, rid, rel).where('subject_relation', '>', ''));
    this.objects = prepare(4, (t: string, rt: string, rid: string, rel: string) => key(t, rt, rid, rel).where('subject_relation', '=', ''));
    this.relationRows = prepare(4, key);
    this.range = prepare(4, (t: string, rt: string, from: string, to: string) =>
      db.selectFrom('tuples').select(TUPLE_COLUMNS).where('tenant', '=', t).where('resource_type', '=', rt).where('resource_id', '>=', from).where('resource_id', '<=', to),
    );
    this.resource = prepare(4, (t: string, rt: string, rid: string, limit: number) =>
      db.selectFrom('tuples').select(TUPLE_COLUMNS).where('tenant', '=', t).where('resource_type', '=', rt).where('resource_id', '=', rid).limit(limit),
    );
    this.memberships = prepare(6, (t: string, st: string, sid: string, srel: string, rt: string, rel: string) =>
      db
        .selectFrom('tuples')
        .select(TUPLE_COLUMNS)
        .where('tenant', '=', t)
        .where('subject_type', '=', st)
        .where('subject_id', '=', sid)
        .where('subject_relation', '=', srel)
        .where('resource_type', '=', rt)
        .where('relation', '=', rel),
    );
    this.subjectIds = prepare(2, (t: string, st: string) =>
      db.selectFrom('tuples').select('subject_id').distinct().where('tenant', '=', t).where('subject_type', '=', st).where('subject_id', '!=', '*'),
    );
  }

  /** A reader running these queries on `runner` (a connection or a transaction). */
  reader(runner: QueryRunner): TupleReader {
    return {
      exact: async (t, r, rel, s) => (await this.exact(runner, t, r.type, r.id, rel, s.relation ?? '', s.type, s.id))[0] as TupleRow | undefined,
      usersets: (t, r, rel) => this.usersets(runner, t, r.type, r.id, rel) as Promise<TupleRow[]>,
      objects: (t, r, rel) => this.objects(runner, t, r.type, r.id, rel) as Promise<TupleRow[]>,
      relationRows: (t, r, rel) => this.relationRows(runner, t, r.type, r.id, rel) as Promise<TupleRow[]>,
      range: (t, type, from, to) => this.range(runner, t, type, from, to) as Promise<TupleRow[]>,
      resource: (t, r, limit) => this.resource(runner, t, r.type, r.id, limit) as Promise<TupleRow[]>,
      memberships: async (t, s, targets) => {
        const out: TupleRow[] = [];
        for (const target of targets) {
          const [type, relation] = target.split('#') as [string, string];
          out.push(...((await this.memberships(runner, t, s.type, s.id, s.relation ?? '', type, relation)) as TupleRow[]));
        }
        return out;
      },
      subjectIds: async (t, st) => (await this.subjectIds(runner, t, st)).map((r) => r.subject_id),
    };
  }
}

/** A reader that opens its read snapshot on its first query, and closes it with end(). */
export interface SnapshotReader extends TupleReader {
  /** Ends the snapshot, if one was opened. */
  end(): Promise<void>;
}

/** A reader over one read-only snapshot of the relationships concern, opened lazily. */
export function snapshotReader(database: PolicyDatabase, queries: TupleQueries): SnapshotReader {
  let opened: Promise<Transaction<RelationshipTables>> | undefined;
  const builder = () => {
    const b = database.db('relationships').startTransaction().setAccessMode('read only');
    return database.dialect === 'postgres' ? b.setIsolationLevel('repeatable read') : b;
  };
  const runner: QueryRunner = {
    async executeQuery(query) {
      opened ??= builder().execute();
      return (await opened).executeQuery(query);
    },
  };
  return {
    ...queries.reader(runner),
    async end() {
      if (opened === undefined) return;
      const trx = (await opened) as Awaited<ReturnType<ReturnType<typeof builder>['execute']>>;
      opened = undefined;
      await trx.commit().execute();
    },
  };
}

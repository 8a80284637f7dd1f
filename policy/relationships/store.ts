/**
 * The relationship store: per-tenant schemas, tuples, the changelog (which is also the audit trail: request id,
 * actor, tuple, caveat reference and reason of every change) and import sources, in the policy database's
 * relationships concern (SQLite's relationships.db, or PostgreSQL's anvil_relationships shared by every node). Every
 * write is one transaction under the concern's write lock that bumps the global revision and the tenant's, so
 * revisions are dense and committed in order; every node's caches follow them through the concern's change signal.
 * Expired tuples stay in the table (the engine ignores them from their expiry instant) until collectExpired() deletes
 * them with a `tuple.delete` change event, as SpiceDB's garbage collection does (store-maintenance.ts).
 */

import { createHash } from 'node:crypto';
import type { ExpressionBuilder, Kysely, Transaction } from 'kysely';
import type { PolicyDatabase } from '../database/policy-database.ts';
import type { RelationshipTables, TuplesTable } from '../database/tables.ts';
import { InvalidInputError, NotFoundError } from '../errors.ts';
import { scrubSecrets } from '../scrub.ts';
import { PreconditionFailedError, SchemaConflictError } from './errors.ts';
import { compileSchema, type CompiledSchema } from './schema.ts';
import { snapshotReader, TupleQueries, type SnapshotReader, type TupleReader } from './store-reads.ts';
import * as db from './store-schema.ts';
import type { AuditContext, ChangeEvent, ImportSource, Precondition, RelationshipAuditRecord, TupleFilter, TupleUpdate, WriteOptions } from './store-types.ts';
import { assertTupleFits, bindCaveat, formatTuple, parseTuple, tupleFromJson, tupleProblem, type Tuple } from './tuples.ts';

export type * from './store-types.ts';

/** A write transaction of the relationships concern. */
export type RelationshipTransaction = Transaction<RelationshipTables>;

/** One changelog entry a write records. */
export type LogEntry = { kind: ChangeEvent['kind']; tuple?: Tuple; caveat?: { name: string; hash: string | null }; details?: Record<string, unknown> };

/** What a write body gets: its transaction, the revision it writes, the tenant as it was, and the changelog. */
export interface WriteContext {
  trx: RelationshipTransaction;
  revision: number;
  /** The tenant's revision and schema before this write, read inside it. */
  before: { revision: number; schema: CompiledSchema | undefined };
  log(entry: LogEntry): void;
}

type TenantRevision = { revision: number; schemaRevision: number };

/**
 * Schemas, tuples and their history: reads, schema and tuple writes, the changelog. The engine reads through readers
 * (store-reads.ts); bulk work (imports, exports, expiry collection, purges) is RelationshipStore's (store-bulk.ts).
 */
export abstract class RelationshipStoreCore {
  protected readonly db: Kysely<RelationshipTables>;
  /** The engine's prepared reads. */
  readonly queries: TupleQueries;
  private readonly revisions = new Map<string, TenantRevision>();
  private readonly schemas = new Map<string, { schemaRevision: number; schema: CompiledSchema }>();
  private generation = 0;

  /** The clock expiry is decided by (epoch ms). */
  readonly clock: () => number;

  protected constructor(readonly database: PolicyDatabase, clock?: () => number) {
    this.clock = clock ?? Date.now;
    this.db = database.db('relationships');
    this.queries = new TupleQueries(this.db);
    database.signals.relationships.onChange((tenant) => {
      this.generation++;
      if (tenant === undefined) this.revisions.clear();
      else this.revisions.delete(tenant);
    });
  }

  /** A reader on the concern's connection, each query seeing the latest commit. */
  reader(): TupleReader {
    return this.queries.reader(this.db);
  }

  /** A reader over one read snapshot, opened on its first query; end() it when done. */
  snapshot(): SnapshotReader {
    return snapshotReader(this.database, this.queries);
  }

  // ── revisions and schemas ──────────────────────────────────────────────────────────────────────────────────────

  private async tenantState(tenant: string): Promise<TenantRevision> {
    await this.database.signals.relationships.sync();
    const cached = this.revisions.get(tenant);
    if (cached !== undefined) return cached;
    const generation = this.generation;
    const state = await readTenantRevision(this.db, tenant);
    if (generation === this.generation) this.revisions.set(tenant, state);
    return state;
  }

  /** The tenant's current revision (0 before its first write); cached, and as fresh as the change signal. */
  async revision(tenant: string): Promise<number> {
    return (await this.tenantState(tenant)).revision;
  }

  /** The tenant's compiled schema, or undefined when none was written. */
  async schema(tenant: string): Promise<CompiledSchema | undefined> {
    return this.compiled(this.db, tenant, (await this.tenantState(tenant)).schemaRevision);
  }

  /** The schema written at `schemaRevision` (0: none), compiled once per revision. */
  protected async compiled(runner: Kysely<RelationshipTables>, tenant: string, schemaRevision: number): Promise<CompiledSchema | undefined> {
    if (schemaRevision === 0) return undefined;
    const cached = this.schemas.get(tenant);
    if (cached?.schemaRevision === schemaRevision) return cached.schema;
    const row = await runner.selectFrom('schemas').select('text').where('tenant', '=', tenant).where('revision', '=', schemaRevision).executeTakeFirstOrThrow();
    const schema = compileSchema(row.text);
    this.schemas.set(tenant, { schemaRevision, schema });
    return schema;
  }

  /** The tenant's schema text and the revision that wrote it. */
  async readSchema(tenant: string): Promise<{ text: string; revision: string } | undefined> {
    const row = await this.db.selectFrom('schemas').select(['text', 'revision']).where('tenant', '=', tenant).orderBy('revision', 'desc').limit(1).executeTakeFirst();
    return row && { text: row.text, revision: db.encodeRevision(row.revision) };
  }

  /**
   * Validates and stores a tenant's schema (caveats included). Refused, listing them, when existing tuples would no
   * longer fit; tuples whose caveat definition changed stay and fail closed at check time.
   */
  async writeSchema(tenant: string, text: string, audit: AuditContext): Promise<string> {
    requireReason(audit);
    const schema = compileSchema(text);
    return this.commit(tenant, audit, (w) => this.storeSchema(w, tenant, schema, audit.actor), true);
  }

  /** Inside a commit: refuses a schema that would strand tuples, stores it and logs it and its caveat changes. */
  protected async storeSchema(w: WriteContext, tenant: string, schema: CompiledSchema, actor: string): Promise<void> {
    const previous = w.before.schema;
    const bad = await this.invalidTuples(w.trx, tenant, schema);
    if (bad.total > 0) throw new SchemaConflictError(bad.tuples, bad.total);
    await w.trx.insertInto('schemas').values({ tenant, revision: w.revision, text: schema.text, actor, written_at: Date.now() }).execute();
    w.log({ kind: 'schema.write', details: { digest: sha256(schema.text) } });
    const names = new Set([...schema.caveats.keys(), ...(previous?.caveats.keys() ?? [])]);
    for (const name of names) {
      const hash = schema.caveats.get(name)?.hash ?? null;
      if (hash !== (previous?.caveats.get(name)?.hash ?? null)) w.log({ kind: 'caveat.write', caveat: { name, hash } });
    }
  }

  private async invalidTuples(trx: RelationshipTransaction, tenant: string, schema: CompiledSchema): Promise<{ tuples: string[]; total: number }> {
    const shapes = await trx
      .selectFrom('tuples')
      .select((eb) => [
        'resource_type',
        'relation',
        'subject_type',
        'subject_relation',
        'caveat_name',
        eb.case().when('subject_id', '=', '*').then(1).else(0).end().as('wildcard'),
        eb.case().when('expires_at', 'is not', null).then(1).else(0).end().as('expiring'),
        eb.fn.countAll<number>().as('n'),
      ])
      .where('tenant', '=', tenant)
      .groupBy(['resource_type', 'relation', 'subject_type', 'subject_relation', 'caveat_name', 'wildcard', 'expiring'])
      .execute();
    const tuples: string[] = [];
    let total = 0;
    for (const s of shapes) {
      const probe: Tuple = { resource: { type: s.resource_type, id: 'x' }, relation: s.relation, subject: { type: s.subject_type, id: s.wildcard ? '*' : 'x' } };
      if (s.subject_relation !== '') probe.subject.relation = s.subject_relation;
      const caveat = s.caveat_name === null ? undefined : schema.caveats.get(s.caveat_name);
      if (s.caveat_name !== null) probe.caveat = { name: s.caveat_name, hash: caveat?.hash ?? '0000000000000000' };
      if (s.expiring) probe.expiration = '2000-01-01T00:00:00Z';
      if (tupleProblem(schema, probe) === undefined) continue;
      total += Number(s.n);
      if (tuples.length >= 100) continue;
      const rows = await trx
        .selectFrom('tuples')
        .select(db.TUPLE_COLUMNS)
        .where('tenant', '=', tenant)
        .where('resource_type', '=', s.resource_type)
        .where('relation', '=', s.relation)
        .where('subject_type', '=', s.subject_type)
        .where('subject_relation', '=', s.subject_relation)
        .where('subject_id', s.wildcard ? '=' : '!=', '*')
        .where('caveat_name', s.caveat_name === null ? 'is' : '=', s.caveat_name)
        .where('expires_at', s.expiring ? 'is not' : 'is', null)
        .limit(100 - tuples.length)
        .execute();
      tuples.push(...rows.map((r) => formatTuple(db.rowTuple(r))));
    }
    return { tuples, total };
  }

  // ── tuple writes ───────────────────────────────────────────────────────────────────────────────────────────────

  /** Applies a batch atomically: every tuple validated, preconditions checked, then all or nothing; returns the revision token. */
  async write(tenant: string, updates: TupleUpdate[], options: WriteOptions): Promise<string> {
    return (await this.writeCounted(tenant, updates, options)).revision;
  }

  /**
   * `write`, also answering how many updates changed something. A delete of a tuple that does not exist (or has
   * expired) changes nothing and, as in SpiceDB, records nothing in the changelog or the watch feed.
   */
  async writeCounted(tenant: string, updates: TupleUpdate[], options: WriteOptions): Promise<{ revision: string; written: number }> {
    requireReason(options);
    if (updates.length === 0) throw new InvalidInputError('a write needs at least one update');
    const parsed = updates.map((u) => ({ op: u.op, tuple: typeof u.tuple === 'string' ? parseTuple(u.tuple) : tupleFromJson(u.tuple) }));
    const keys = new Set<string>();
    for (const u of parsed) {
      if (!['create', 'touch', 'delete'].includes(u.op)) throw new InvalidInputError(`unknown update operation ${String(u.op)}`);
      const key = identity(u.tuple);
      if (keys.has(key)) throw new InvalidInputError(`tuple ${key} appears twice in one batch`);
      keys.add(key);
    }
    let written = 0;
    const revision = await this.commit(tenant, options, async (w) => {
      written = 0;
      const schema = w.before.schema;
      if (!schema) throw new NotFoundError(`tenant ${tenant} has no schema`);
      const bound = parsed.map((u) => (u.op === 'delete' ? u : { op: u.op, tuple: bindCaveat(schema, u.tuple) }));
      for (const u of bound) if (u.op !== 'delete') assertTupleFits(schema, u.tuple);
      // The writer is authorised first: a refused writer learns nothing from the preconditions.
      await options.guard?.(bound, { schema, revision: w.before.revision, reader: this.queries.reader(w.trx) });
      const now = this.clock();
      for (const p of options.preconditions ?? []) await checkPrecondition(w.trx, tenant, p, now);
      for (const u of bound) {
        const values = db.tupleValues(tenant, u.tuple, w.revision);
        if (u.op === 'delete') {
          const existing = await w.trx.selectFrom('tuples').select('expires_at').where(keyIs(values)).executeTakeFirst();
          if (!existing) continue;
          await w.trx.deleteFrom('tuples').where(keyIs(values)).execute();
          if (db.expired(existing, now)) continue;
        } else {
          if (u.op === 'create') {
            // An expired tuple no longer exists (SpiceDB): creating over it replaces it.
            const existing = await w.trx.selectFrom('tuples').select('expires_at').where(keyIs(values)).executeTakeFirst();
            if (existing && !db.expired(existing, now)) throw new PreconditionFailedError(`tuple ${formatTuple(u.tuple)} already exists`);
          }
          await upsertTuples(w.trx, [values]);
        }
        // A guarded (application) write hangs from its writer: purgeWrittenBy finds it by this mark.
        w.log({ kind: `tuple.${u.op}`, tuple: u.tuple, ...(options.guard ? { details: { guarded: true, writer: options.writer } } : {}) });
        written++;
      }
    });
    return { revision, written };
  }

  /**
   * One write transaction: `fn` runs against the state before the write (so guards and validation read the
   * current revision), its changelog entries are recorded, then the tenant's revision moves. The change signal tells
   * this node's caches (and, through NOTIFY, every node's) that this tenant moved.
   */
  protected async commit(tenant: string, audit: AuditContext, fn: (w: WriteContext) => Promise<void>, schemaWrite = false): Promise<string> {
    const { revision } = await this.database.change('relationships', async (trx, next) => {
      const state = await readTenantRevision(trx, tenant);
      const before = { revision: state.revision, schema: await this.compiled(trx, tenant, state.schemaRevision) };
      const entries: LogEntry[] = [];
      await fn({ trx, revision: next, before, log: (entry) => entries.push(entry) });
      await insertChangelog(trx, tenant, next, audit, entries);
      await trx
        .insertInto('tenant_revisions')
        .values({ tenant, revision: next, schema_revision: schemaWrite ? next : 0 })
        .onConflict((oc) => oc.column('tenant').doUpdateSet((eb) => ({ revision: next, schema_revision: schemaWrite ? next : eb.ref('tenant_revisions.schema_revision') })))
        .execute();
      return { result: undefined, changed: true, hint: tenant };
    });
    return db.encodeRevision(revision!);
  }

  // ── watch and audit ────────────────────────────────────────────────────────────────────────────────────────────

  /** The tenant's changes after a revision token (or from the start with `''`), oldest first. */
  async changesSince(tenant: string, token: string, options: { limit?: number } = {}): Promise<ChangeEvent[]> {
    return (await this.auditRecords(tenant, { since: token, limit: options.limit })).map(({ actor: _a, reason: _r, requestId: _q, ...event }) => event);
  }

  /** The tenant's audit trail after a revision token, oldest first. */
  async auditRecords(tenant: string, options: { since?: string; limit?: number } = {}): Promise<RelationshipAuditRecord[]> {
    const since = options.since ? db.decodeRevision(options.since) : 0;
    const limit = Math.min(Math.max(options.limit ?? 1000, 1), 10_000);
    const rows = await this.db.selectFrom('changelog').selectAll().where('tenant', '=', tenant).where('revision', '>', since).orderBy('seq').limit(limit).execute();
    return rows.map((r) => {
      const record: RelationshipAuditRecord = { revision: db.encodeRevision(r.revision), kind: r.kind as ChangeEvent['kind'], at: new Date(r.at).toISOString(), actor: r.actor, reason: r.reason };
      if (r.tuple !== null) record.tuple = parseTuple(r.tuple);
      else if (r.caveat_name !== null) record.caveat = { name: r.caveat_name, hash: r.caveat_hash };
      if (r.request_id !== null) record.requestId = r.request_id;
      return record;
    });
  }

  /** Unexpired tuples matching a filter (forward index), up to `limit`. */
  async readTuples(tenant: string, filter: TupleFilter, limit = 1000): Promise<Tuple[]> {
    const rows = await this.db.selectFrom('tuples').select(db.TUPLE_COLUMNS).where(matching(tenant, filter, this.clock())).limit(limit).execute();
    return rows.map(db.rowTuple);
  }

  /** Whether any tuple, expired or not, names the subject (any relation of it) or a wildcard of its type as its subject. */
  async namesSubject(tenant: string, subject: { type: string; id: string }): Promise<boolean> {
    const row = await this.db
      .selectFrom('tuples')
      .select('tenant')
      .where('tenant', '=', tenant)
      .where('subject_type', '=', subject.type)
      .where('subject_id', 'in', [subject.id, '*'])
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** The tenant's import records, oldest first. */
  async importSources(tenant: string): Promise<ImportSource[]> {
    const rows = await this.db.selectFrom('import_sources').selectAll().where('tenant', '=', tenant).orderBy('id').execute();
    return rows.map((r) => ({ id: r.id, revision: db.encodeRevision(r.revision), name: r.name, digest: r.digest, count: r.count, actor: r.actor, reason: r.reason, at: new Date(r.at).toISOString() }));
  }
}

/** The tenant's revision and schema revision as a connection or transaction sees them (0, 0 before any write). */
async function readTenantRevision(runner: Kysely<RelationshipTables>, tenant: string): Promise<TenantRevision> {
  const row = await runner.selectFrom('tenant_revisions').select(['revision', 'schema_revision']).where('tenant', '=', tenant).executeTakeFirst();
  return row ? { revision: row.revision, schemaRevision: row.schema_revision } : { revision: 0, schemaRevision: 0 };
}

/** Records a write's changelog entries, in order. */
async function insertChangelog(trx: RelationshipTransaction, tenant: string, revision: number, audit: AuditContext, entries: LogEntry[]): Promise<void> {
  const at = Date.now();
  // The reason is caller-chosen text, scrubbed like every log; as a name, since it may cite a digest (policy/scrub.ts).
  const reason = scrubSecrets(audit.reason, 'name');
  const rows = entries.map((e) => {
    const caveat = e.tuple?.caveat ?? e.caveat;
    return {
      tenant, revision, kind: e.kind, tuple: e.tuple ? formatTuple(e.tuple) : null, caveat_name: caveat?.name ?? null, caveat_hash: caveat?.hash ?? null,
      details: e.details ? JSON.stringify(e.details) : null, request_id: audit.requestId ?? null, actor: audit.actor, reason, at,
    };
  });
  for (let i = 0; i < rows.length; i += CHUNK) await trx.insertInto('changelog').values(rows.slice(i, i + CHUNK)).execute();
}

/** Rows per multi-row statement. */
export const CHUNK = 500;

/** Inserts or replaces tuples (caveat, expiry and revision replaced), in chunks. */
export async function upsertTuples(trx: RelationshipTransaction, rows: TuplesTable[]): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) {
    await trx
      .insertInto('tuples')
      .values(rows.slice(i, i + CHUNK))
      .onConflict((oc) =>
        oc.columns(KEY_COLUMNS).doUpdateSet((eb) => ({
          caveat_name: eb.ref('excluded.caveat_name'),
          caveat_hash: eb.ref('excluded.caveat_hash'),
          caveat_context: eb.ref('excluded.caveat_context'),
          expires_at: eb.ref('excluded.expires_at'),
          created_revision: eb.ref('excluded.created_revision'),
        })),
      )
      .execute();
  }
}

/** The key columns of a tuple (its identity, caveat and expiry aside). */
const KEY_COLUMNS = ['tenant', 'resource_type', 'resource_id', 'relation', 'subject_relation', 'subject_type', 'subject_id'] as const;

type TupleExpressions = ExpressionBuilder<RelationshipTables, 'tuples'>;

/** The condition naming one tuple by its key. */
export function keyIs(v: TuplesTable) {
  return (eb: TupleExpressions) => eb.and(KEY_COLUMNS.map((column) => eb(column, '=', v[column])));
}

const FILTER_COLUMNS: Array<[keyof TupleFilter, 'resource_id' | 'relation' | 'subject_type' | 'subject_id' | 'subject_relation']> = [
  ['resourceId', 'resource_id'],
  ['relation', 'relation'],
  ['subjectType', 'subject_type'],
  ['subjectId', 'subject_id'],
  ['subjectRelation', 'subject_relation'],
];

/** The condition selecting a tenant's unexpired tuples matching a filter; only the filter's own fields are read. */
function matching(tenant: string, f: TupleFilter, now: number) {
  return (eb: TupleExpressions) =>
    eb.and([
      eb('tenant', '=', tenant),
      eb('resource_type', '=', f.resourceType),
      eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]),
      ...FILTER_COLUMNS.filter(([field]) => f[field] !== undefined).map(([field, column]) => eb(column, '=', f[field]!)),
    ]);
}

async function checkPrecondition(trx: RelationshipTransaction, tenant: string, p: Precondition, now: number): Promise<void> {
  const found = (await trx.selectFrom('tuples').select('tenant').where(matching(tenant, p.filter, now)).limit(1).executeTakeFirst()) !== undefined;
  if (found !== (p.op === 'must_exist')) throw new PreconditionFailedError(`precondition ${p.op} failed for ${JSON.stringify(p.filter)}`);
}

/** A tuple's identity: everything but its caveat and expiry (a batch may not name one twice; SpiceDB's rule). */
export function identity(t: Tuple): string {
  return formatTuple({ resource: t.resource, relation: t.relation, subject: t.subject });
}

/** Refuses a write without an actor or a reason. */
export function requireReason(audit: AuditContext): void {
  if (typeof audit.actor !== 'string' || audit.actor.trim() === '') throw new InvalidInputError('a write needs an actor');
  if (typeof audit.reason !== 'string' || audit.reason.trim() === '') throw new InvalidInputError('a write needs a source reason');
}

/** The hex SHA-256 of a text. */
export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

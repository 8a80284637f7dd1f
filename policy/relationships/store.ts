/**
 * The relationship store: per-tenant schemas, tuples, the changelog (which is also the audit trail: request id,
 * actor, tuple, caveat reference and reason of every change) and import sources, in dataDir/relationships.db (SQLite,
 * WAL, shared by every gateway process). Every write is one immediate transaction that bumps the global revision and
 * the tenant's; readers notice other processes' commits through `PRAGMA data_version`, read on every revision() call.
 * Expired tuples stay in the table (the engine ignores them from their expiry instant) until collectExpired() deletes
 * them with a `tuple.delete` change event, as SpiceDB's garbage collection does.
 */

import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { InvalidInputError, NotFoundError } from '../errors.ts';
import { ImportError, PreconditionFailedError, SchemaConflictError, TupleValidationError } from './errors.ts';
import { compileSchema, type CompiledSchema } from './schema.ts';
import { appSubject } from '../subjects.ts';
import * as db from './store-schema.ts';
import { TUPLE_COLUMNS } from './store-schema.ts';
import { assertTupleFits, bindCaveat, formatTuple, parseTuple, tupleFromJson, tupleProblem, type Tuple } from './tuples.ts';

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

/** Options of a tuple write; `guard` runs inside the transaction, after validation, before anything is written. */
export interface WriteOptions extends AuditContext {
  preconditions?: Precondition[];
  /** The guarded writer's subject (`app:AKIA…`), recorded with each change so its tuples can go with it. */
  writer?: string;
  guard?: (updates: Array<{ op: TupleUpdate['op']; tuple: Tuple }>, schema: CompiledSchema) => void;
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

type Row = db.TupleRow;

/** Schemas, tuples and their history; the engine reads through the query methods at the bottom. */
export class RelationshipStore {
  private readonly dataVersion: Database.Statement;
  private readonly tenantRow: Database.Statement;
  private readonly exactRow: Database.Statement;
  private readonly usersetRows: Database.Statement;
  private readonly objectRows: Database.Statement;
  private readonly relationRowsStmt: Database.Statement;
  private readonly rangeRows: Database.Statement;
  private readonly resourceRowsStmt: Database.Statement;
  private readonly membershipStmt: Database.Statement;
  private lastDataVersion = -1;
  private readonly revisions = new Map<string, { revision: number; schemaRevision: number }>();
  private readonly schemas = new Map<string, { schemaRevision: number; schema: CompiledSchema }>();

  /** The clock expiry is decided by (epoch ms). */
  readonly clock: () => number;

  private constructor(private readonly db: Database.Database, clock?: () => number) {
    this.clock = clock ?? Date.now;
    this.dataVersion = db.prepare('PRAGMA data_version').pluck();
    this.tenantRow = db.prepare('SELECT revision, schema_revision AS schemaRevision FROM tenant_revisions WHERE tenant = ?');
    const cols = TUPLE_COLUMNS;
    const key = 'tenant = ? AND resource_type = ? AND resource_id = ? AND relation = ?';
    this.exactRow = db.prepare(`SELECT ${cols} FROM tuples WHERE ${key} AND subject_relation = ? AND subject_type = ? AND subject_id = ?`);
    this.usersetRows = db.prepare(`SELECT ${cols} FROM tuples WHERE ${key} AND subject_relation > ''`);
    this.objectRows = db.prepare(`SELECT ${cols} FROM tuples WHERE ${key} AND subject_relation = ''`);
    this.relationRowsStmt = db.prepare(`SELECT ${cols} FROM tuples WHERE ${key}`);
    this.resourceRowsStmt = db.prepare(`SELECT ${cols} FROM tuples WHERE tenant = ? AND resource_type = ? AND resource_id = ? LIMIT ?`);
    this.membershipStmt = db.prepare(
      `SELECT ${cols} FROM tuples INDEXED BY tuples_reverse
       WHERE tenant = ? AND subject_type = ? AND subject_id = ? AND subject_relation = ? AND resource_type = ? AND relation = ?`,
    );
    this.rangeRows = db.prepare(`SELECT ${cols} FROM tuples WHERE tenant = ? AND resource_type = ? AND resource_id >= ? AND resource_id < ?`);
  }

  /** Opens (creating and migrating when needed) dataDir/relationships.db; `clock` decides expiry (Date.now). */
  static open(options: { dataDir: string; clock?: () => number }): RelationshipStore {
    mkdirSync(options.dataDir, { recursive: true });
    const path = join(options.dataDir, 'relationships.db');
    const conn = new Database(path);
    try {
      chmodSync(path, 0o600);
      conn.pragma('journal_mode = WAL');
      conn.pragma('busy_timeout = 5000');
      // FULL: a commit (a revocation, a tuple delete, a new signing key or root credential) survives a power cut, not
      // only a crash; NORMAL could roll the last ones back.
      conn.pragma('synchronous = FULL');
      db.migrate(conn);
    } catch (error) {
      conn.close();
      throw error;
    }
    return new RelationshipStore(conn, options.clock);
  }

  /** Closes the database connection. */
  close(): void {
    this.db.close();
  }

  // ── revisions and schemas ──────────────────────────────────────────────────────────────────────────────────────

  private tenantState(tenant: string): { revision: number; schemaRevision: number } {
    const version = this.dataVersion.get() as number;
    if (version !== this.lastDataVersion) {
      this.lastDataVersion = version;
      this.revisions.clear();
    }
    let state = this.revisions.get(tenant);
    if (state === undefined) {
      state = (this.tenantRow.get(tenant) as typeof state | undefined) ?? { revision: 0, schemaRevision: 0 };
      this.revisions.set(tenant, state);
    }
    return state;
  }

  /** The tenant's current revision (0 before its first write); cheap, and never stale across processes. */
  revision(tenant: string): number {
    return this.tenantState(tenant).revision;
  }

  /** The tenant's compiled schema, or undefined when none was written. */
  schema(tenant: string): CompiledSchema | undefined {
    const { schemaRevision } = this.tenantState(tenant);
    if (schemaRevision === 0) return undefined;
    const cached = this.schemas.get(tenant);
    if (cached?.schemaRevision === schemaRevision) return cached.schema;
    const text = this.db.prepare('SELECT text FROM schemas WHERE tenant = ? AND revision = ?').pluck().get(tenant, schemaRevision) as string;
    const schema = compileSchema(text);
    this.schemas.set(tenant, { schemaRevision, schema });
    return schema;
  }

  /** The tenant's schema text and the revision that wrote it. */
  readSchema(tenant: string): { text: string; revision: string } | undefined {
    const row = this.db.prepare('SELECT text, revision FROM schemas WHERE tenant = ? ORDER BY revision DESC LIMIT 1').get(tenant) as
      | { text: string; revision: number }
      | undefined;
    return row && { text: row.text, revision: db.encodeRevision(row.revision) };
  }

  /**
   * Validates and stores a tenant's schema (caveats included). Refused, listing them, when existing tuples would no
   * longer fit; tuples whose caveat definition changed stay and fail closed at check time.
   */
  writeSchema(tenant: string, text: string, audit: AuditContext): string {
    requireReason(audit);
    const schema = compileSchema(text);
    return this.commit(tenant, audit, (revision, log) => this.storeSchema(tenant, schema, { revision, log, actor: audit.actor }), true);
  }

  /** Inside a commit: refuses a schema that would strand tuples, stores it and logs it and its caveat changes. */
  private storeSchema(tenant: string, schema: CompiledSchema, at: { revision: number; log: (entry: LogEntry) => void; actor: string }): void {
    const previous = this.schema(tenant);
    const bad = this.invalidTuples(tenant, schema);
    if (bad.total > 0) throw new SchemaConflictError(bad.tuples, bad.total);
    this.db.prepare('INSERT INTO schemas (tenant, revision, text, actor, written_at) VALUES (?, ?, ?, ?, ?)').run(tenant, at.revision, schema.text, at.actor, Date.now());
    at.log({ kind: 'schema.write', details: { digest: sha256(schema.text) } });
    const names = new Set([...schema.caveats.keys(), ...(previous?.caveats.keys() ?? [])]);
    for (const name of names) {
      const hash = schema.caveats.get(name)?.hash ?? null;
      if (hash !== (previous?.caveats.get(name)?.hash ?? null)) at.log({ kind: 'caveat.write', caveat: { name, hash } });
    }
  }

  private invalidTuples(tenant: string, schema: CompiledSchema): { tuples: string[]; total: number } {
    const shapes = this.db
      .prepare(
        `SELECT resource_type, relation, subject_type, subject_relation, subject_id = '*' AS wildcard, caveat_name,
           expires_at IS NOT NULL AS expiring, count(*) AS n
         FROM tuples WHERE tenant = ? GROUP BY 1, 2, 3, 4, 5, 6, 7`,
      )
      .all(tenant) as Array<{ resource_type: string; relation: string; subject_type: string; subject_relation: string; wildcard: number; caveat_name: string | null; expiring: number; n: number }>;
    const tuples: string[] = [];
    let total = 0;
    for (const s of shapes) {
      const probe: Tuple = { resource: { type: s.resource_type, id: 'x' }, relation: s.relation, subject: { type: s.subject_type, id: s.wildcard ? '*' : 'x' } };
      if (s.subject_relation !== '') probe.subject.relation = s.subject_relation;
      const caveat = s.caveat_name === null ? undefined : schema.caveats.get(s.caveat_name);
      if (s.caveat_name !== null) probe.caveat = { name: s.caveat_name, hash: caveat?.hash ?? '0000000000000000' };
      if (s.expiring) probe.expiration = '2000-01-01T00:00:00Z';
      if (tupleProblem(schema, probe) === undefined) continue;
      total += s.n;
      if (tuples.length >= 100) continue;
      const rows = this.db
        .prepare(
          `SELECT * FROM tuples WHERE tenant = ? AND resource_type = ? AND relation = ? AND subject_type = ? AND subject_relation = ?
             AND (subject_id = '*') = ? AND caveat_name IS ? AND (expires_at IS NOT NULL) = ? LIMIT ?`,
        )
        .all(tenant, s.resource_type, s.relation, s.subject_type, s.subject_relation, s.wildcard, s.caveat_name, s.expiring, 100 - tuples.length) as Row[];
      tuples.push(...rows.map((r) => formatTuple(db.rowTuple(r))));
    }
    return { tuples, total };
  }

  // ── tuple writes ───────────────────────────────────────────────────────────────────────────────────────────────

  /** Applies a batch atomically: every tuple validated, preconditions checked, then all or nothing; returns the revision token. */
  write(tenant: string, updates: TupleUpdate[], options: WriteOptions): string {
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
    return this.commit(tenant, options, (revision, log) => {
      const schema = this.schema(tenant);
      if (!schema) throw new NotFoundError(`tenant ${tenant} has no schema`);
      const bound = parsed.map((u) => (u.op === 'delete' ? u : { op: u.op, tuple: bindCaveat(schema, u.tuple) }));
      for (const u of bound) if (u.op !== 'delete') assertTupleFits(schema, u.tuple);
      // The writer is authorised first: a refused writer learns nothing from the preconditions.
      options.guard?.(bound, schema);
      const now = this.clock();
      for (const p of options.preconditions ?? []) this.checkPrecondition(tenant, p, now);
      for (const u of bound) {
        const params = { ...db.tupleParams(tenant, u.tuple), rev: revision };
        if (u.op === 'delete') {
          this.db.prepare(DELETE_TUPLE).run(params);
        } else if (u.op === 'create') {
          // An expired tuple no longer exists (SpiceDB): creating over it replaces it.
          const existing = this.db.prepare(`SELECT expires_at FROM tuples WHERE ${KEY}`).get(params) as { expires_at: number | null } | undefined;
          if (existing && !db.expired(existing, now)) throw new PreconditionFailedError(`tuple ${formatTuple(u.tuple)} already exists`);
          this.db.prepare(UPSERT_TUPLE).run(params);
        } else this.db.prepare(UPSERT_TUPLE).run(params);
        // A guarded (application) write hangs from its writer: purgeWrittenBy finds it by this mark.
        log({ kind: `tuple.${u.op}`, tuple: u.tuple, ...(options.guard ? { details: { guarded: true, writer: options.writer } } : {}) });
      }
    });
  }

  private checkPrecondition(tenant: string, p: Precondition, now: number): void {
    const f = p.filter;
    const clauses = ['tenant = @tenant', 'resource_type = @resourceType', LIVE];
    for (const [field, column] of FILTER_COLUMNS) if (f[field] !== undefined) clauses.push(`${column} = @${field}`);
    const found = this.db.prepare(`SELECT 1 FROM tuples WHERE ${clauses.join(' AND ')} LIMIT 1`).get({ ...pick(f), tenant, now }) !== undefined;
    if (found !== (p.op === 'must_exist')) throw new PreconditionFailedError(`precondition ${p.op} failed for ${JSON.stringify(f)}`);
  }

  /**
   * Imports a text of tuples (one per line, `#` and `//` comments and blank lines ignored) as touches in one batch.
   * Every line is validated first; any bad line refuses the whole import (ImportError lists the line numbers). With
   * `schema`, that schema is written in the same transaction first (a restore): the tuples are validated against it,
   * and a schema that would strand existing tuples refuses everything. An accepted import leaves an import source
   * record (who, when, sha256 of `source` or of the text, count).
   */
  importTuples(tenant: string, text: string, options: AuditContext & { name?: string; schema?: string; source?: string }): ImportSource {
    requireReason(options);
    const current = this.schema(tenant);
    const schema = options.schema !== undefined ? compileSchema(options.schema) : current;
    if (!schema) throw new NotFoundError(`tenant ${tenant} has no schema`);
    const tuples: Tuple[] = [];
    const bad: Array<{ line: number; error: string }> = [];
    text.split(/\r?\n/).forEach((raw, index) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#') || line.startsWith('//')) return;
      try {
        const tuple = bindCaveat(schema, parseTuple(line));
        assertTupleFits(schema, tuple);
        tuples.push(tuple);
      } catch (error) {
        bad.push({ line: index + 1, error: error instanceof TupleValidationError ? error.message : String(error) });
      }
    });
    if (bad.length > 0) throw new ImportError(bad);
    const digest = sha256(options.source ?? text);
    const writesSchema = options.schema !== undefined && options.schema !== current?.text;
    let id = 0;
    const token = this.commit(tenant, options, (revision, log) => {
      if (this.schema(tenant)?.text !== current?.text) throw new PreconditionFailedError('the schema changed during the import; retry');
      if (writesSchema) this.storeSchema(tenant, schema, { revision, log, actor: options.actor });
      const upsert = this.db.prepare(UPSERT_TUPLE);
      for (const tuple of tuples) {
        upsert.run({ ...db.tupleParams(tenant, tuple), rev: revision });
        log({ kind: 'tuple.touch', tuple });
      }
      id = Number(
        this.db
          .prepare('INSERT INTO import_sources (tenant, revision, name, digest, count, actor, reason, request_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
          .run(tenant, revision, options.name ?? '', digest, tuples.length, options.actor, options.reason, options.requestId ?? null, Date.now()).lastInsertRowid,
      );
    }, writesSchema);
    return this.importSources(tenant).find((s) => s.id === id) ?? { id, revision: token, name: '', digest, count: tuples.length, actor: options.actor, reason: options.reason, at: '' };
  }

  /**
   * The tenant's schema text and the tuples that still grant (unexpired, caveats on their current definition), in
   * key order, for a backup; `skipped` counts the tuples left out because they grant nothing.
   */
  exportTenant(tenant: string, now = this.clock()): { schema: string; tuples: Tuple[]; skipped: number } {
    const schema = this.schema(tenant);
    if (!schema) throw new NotFoundError(`tenant ${tenant} has no schema`);
    const tuples: Tuple[] = [];
    let skipped = 0;
    for (const row of this.db.prepare(`SELECT ${TUPLE_COLUMNS} FROM tuples WHERE tenant = ? ORDER BY resource_type, resource_id, relation, subject_relation, subject_type, subject_id`).iterate(tenant) as Iterable<Row>) {
      const stale = row.caveat_name !== null && schema.caveats.get(row.caveat_name)?.hash !== row.caveat_hash;
      if (stale || db.expired(row, now)) skipped++;
      else tuples.push(db.rowTuple(row));
    }
    return { schema: schema.text, tuples, skipped };
  }

  /**
   * Deletes the tuples that expired at or before `before` (epoch ms, now by default), each as a `tuple.delete` change
   * event of actor `anvil:gc` and reason `expired`, so watchers see the removal; returns how many went. A tuple
   * re-written with a later expiry in the meantime stays.
   */
  collectExpired(options: { before?: number; limit?: number } = {}): number {
    const before = options.before ?? this.clock();
    const rows = this.db
      .prepare(`SELECT tenant, ${TUPLE_COLUMNS} FROM tuples INDEXED BY tuples_expiry WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?`)
      .all(before, options.limit ?? 10_000) as Array<Row & { tenant: string }>;
    const byTenant = new Map<string, Row[]>();
    for (const row of rows) byTenant.set(row.tenant, [...(byTenant.get(row.tenant) ?? []), row]);
    let removed = 0;
    for (const [tenant, expired] of byTenant) {
      this.commit(tenant, { actor: 'anvil:gc', reason: 'expired' }, (revision, log) => {
        const remove = this.db.prepare(`${DELETE_TUPLE} AND expires_at <= @before`);
        for (const row of expired) {
          const tuple = db.rowTuple(row);
          if (remove.run({ ...db.tupleParams(tenant, tuple), before }).changes === 0) continue;
          removed++;
          log({ kind: 'tuple.delete', tuple });
        }
      });
    }
    return removed;
  }

  /** The tenant's import records, oldest first. */
  importSources(tenant: string): ImportSource[] {
    const rows = this.db.prepare('SELECT * FROM import_sources WHERE tenant = ? ORDER BY id').all(tenant) as Array<Omit<ImportSource, 'revision' | 'at'> & { revision: number; at: number }>;
    return rows.map((r) => ({ id: r.id, revision: db.encodeRevision(r.revision), name: r.name, digest: r.digest, count: r.count, actor: r.actor, reason: r.reason, at: new Date(r.at).toISOString() }));
  }

  /**
   * One immediate transaction: `fn` runs against the state before the write (so guards and validation read the
   * current revision), then the global and tenant revisions move. Cached tenant state is dropped whatever happens,
   * since a rolled-back attempt must leave nothing behind.
   */
  private commit(tenant: string, audit: AuditContext, fn: (revision: number, log: (entry: LogEntry) => void) => void, schemaWrite = false): string {
    try {
      const revision = this.db.transaction(() => {
        const next = (this.db.prepare("SELECT value FROM meta WHERE key = 'revision'").pluck().get() as number) + 1;
        const insert = this.db.prepare(
          `INSERT INTO changelog (tenant, revision, kind, tuple, caveat_name, caveat_hash, details, request_id, actor, reason, at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        );
        const at = Date.now();
        fn(next, (e) => {
          const caveat = e.tuple?.caveat ?? e.caveat;
          insert.run(tenant, next, e.kind, e.tuple ? formatTuple(e.tuple) : null, caveat?.name ?? null, caveat?.hash ?? null,
            e.details ? JSON.stringify(e.details) : null, audit.requestId ?? null, audit.actor, audit.reason, at);
        });
        this.db.prepare("UPDATE meta SET value = ? WHERE key = 'revision'").run(next);
        this.db
          .prepare(
            `INSERT INTO tenant_revisions (tenant, revision, schema_revision) VALUES (@tenant, @next, CASE WHEN @schema THEN @next ELSE 0 END)
             ON CONFLICT (tenant) DO UPDATE SET revision = @next, schema_revision = CASE WHEN @schema THEN @next ELSE schema_revision END`,
          )
          .run({ tenant, next, schema: schemaWrite ? 1 : 0 });
        return next;
      }).immediate();
      return db.encodeRevision(revision);
    } finally {
      // Our own commits do not move our connection's data_version, so forget the tenant's cached state here.
      this.revisions.delete(tenant);
    }
  }

  /**
   * Removes everything of a tenant (schemas, tuples, change log, import records) when the tenant is deleted, so a new
   * tenant of the same name starts empty. The tenant's revision still moves forward (to a fresh global revision with
   * no schema), so nothing cached under an earlier revision is ever reused.
   */
  purgeTenant(tenant: string): void {
    try {
      this.db.transaction(() => {
        for (const table of ['schemas', 'tuples', 'changelog', 'import_sources']) this.db.prepare(`DELETE FROM ${table} WHERE tenant = ?`).run(tenant);
        const next = (this.db.prepare("SELECT value FROM meta WHERE key = 'revision'").pluck().get() as number) + 1;
        this.db.prepare("UPDATE meta SET value = ? WHERE key = 'revision'").run(next);
        this.db
          .prepare('INSERT INTO tenant_revisions (tenant, revision, schema_revision) VALUES (?, ?, 0) ON CONFLICT (tenant) DO UPDATE SET revision = excluded.revision, schema_revision = 0')
          .run(tenant, next);
      }).immediate();
    } finally {
      this.revisions.delete(tenant);
      this.schemas.delete(tenant);
    }
  }

  /**
   * Deletes the tuples that guarded writers wrote — by access key id (`actors`) or as one of their subjects (sessions
   * of a credential write as `app:<its id>`) — and that nobody has written since: the authority an application handed
   * out dies with it (revoked or deleted, or its maker gone). Tuples written by root, the operator or a tenant-wide
   * admin are the tenant's own data and stay. Returns how many were deleted.
   */
  purgeWrittenBy(tenant: string, actors: string[], audit: AuditContext): number {
    if (actors.length === 0) return 0;
    const subjects = new Set(actors.map(appSubject));
    const rows = this.db.prepare('SELECT tuple, kind, actor, details FROM changelog WHERE tenant = ? AND tuple IS NOT NULL ORDER BY seq').all(tenant) as Array<{
      tuple: string; kind: string; actor: string; details: string | null;
    }>;
    const last = new Map<string, { tuple: Tuple; kind: string; mine: boolean }>();
    for (const row of rows) {
      const tuple = parseTuple(row.tuple);
      const details = (row.details === null ? {} : JSON.parse(row.details)) as { guarded?: boolean; writer?: string };
      const mine = details.guarded === true && (actors.includes(row.actor) || (details.writer !== undefined && subjects.has(details.writer)));
      last.set(identity(tuple), { tuple, kind: row.kind, mine });
    }
    const doomed = [...last.values()].filter((e) => e.mine && e.kind !== 'tuple.delete');
    if (doomed.length === 0) return 0;
    this.write(tenant, doomed.map((e) => ({ op: 'delete' as const, tuple: e.tuple })), audit);
    return doomed.length;
  }

  // ── watch and audit ────────────────────────────────────────────────────────────────────────────────────────────

  /** The tenant's changes after a revision token (or from the start with `''`), oldest first. */
  changesSince(tenant: string, token: string, options: { limit?: number } = {}): ChangeEvent[] {
    return this.auditRecords(tenant, { since: token, limit: options.limit }).map(({ actor: _a, reason: _r, requestId: _q, ...event }) => event);
  }

  /** The tenant's audit trail after a revision token, oldest first. */
  auditRecords(tenant: string, options: { since?: string; limit?: number } = {}): RelationshipAuditRecord[] {
    const since = options.since ? db.decodeRevision(options.since) : 0;
    const limit = Math.min(Math.max(options.limit ?? 1000, 1), 10_000);
    const rows = this.db.prepare('SELECT * FROM changelog WHERE tenant = ? AND revision > ? ORDER BY seq LIMIT ?').all(tenant, since, limit) as ChangelogRow[];
    return rows.map((r) => {
      const record: RelationshipAuditRecord = { revision: db.encodeRevision(r.revision), kind: r.kind as ChangeEvent['kind'], at: new Date(r.at).toISOString(), actor: r.actor, reason: r.reason };
      if (r.tuple !== null) record.tuple = parseTuple(r.tuple);
      else if (r.caveat_name !== null) record.caveat = { name: r.caveat_name, hash: r.caveat_hash };
      if (r.request_id !== null) record.requestId = r.request_id;
      return record;
    });
  }

  // ── engine reads ───────────────────────────────────────────────────────────────────────────────────────────────

  /** The one tuple (resource, relation, exact subject), or undefined. */
  exact(tenant: string, resource: { type: string; id: string }, relation: string, subject: { type: string; id: string; relation?: string }): Row | undefined {
    return this.exactRow.get(tenant, resource.type, resource.id, relation, subject.relation ?? '', subject.type, subject.id) as Row | undefined;
  }

  /** Tuples of (resource, relation) whose subject is a userset. */
  usersets(tenant: string, resource: { type: string; id: string }, relation: string): Row[] {
    return this.usersetRows.all(tenant, resource.type, resource.id, relation) as Row[];
  }

  /** Tuples of (resource, relation) whose subject is a plain object or wildcard. */
  objects(tenant: string, resource: { type: string; id: string }, relation: string): Row[] {
    return this.objectRows.all(tenant, resource.type, resource.id, relation) as Row[];
  }

  /** Every tuple on resources of a type with ids in [from, to). */
  range(tenant: string, type: string, from: string, to: string): Row[] {
    return this.rangeRows.all(tenant, type, from, to) as Row[];
  }

  /** Tuples whose subject is exactly this (the reverse index), optionally on one resource type. */
  bySubject(tenant: string, subject: { type: string; id: string; relation?: string }, resourceType?: string): Row[] {
    const sql = `SELECT * FROM tuples INDEXED BY tuples_reverse WHERE tenant = ? AND subject_type = ? AND subject_id = ? AND subject_relation = ?${resourceType ? ' AND resource_type = ?' : ''}`;
    const args = [tenant, subject.type, subject.id, subject.relation ?? '', ...(resourceType ? [resourceType] : [])];
    return this.db.prepare(sql).all(...args) as Row[];
  }

  /** Distinct subject ids of a type in the tenant's tuples (wildcards excluded). */
  subjectIds(tenant: string, subjectType: string): string[] {
    return this.db.prepare("SELECT DISTINCT subject_id FROM tuples INDEXED BY tuples_reverse WHERE tenant = ? AND subject_type = ? AND subject_id != '*'").pluck().all(tenant, subjectType) as string[];
  }

  /** Up to `limit` tuples of one resource (forward index). */
  resource(tenant: string, resource: { type: string; id: string }, limit: number): Row[] {
    return this.resourceRowsStmt.all(tenant, resource.type, resource.id, limit) as Row[];
  }

  /** Tuples making the subject a member of one of the `type#relation` usersets in `targets` (reverse index). */
  memberships(tenant: string, subject: { type: string; id: string; relation?: string }, targets: Set<string>): Row[] {
    const out: Row[] = [];
    for (const target of targets) {
      const [type, relation] = target.split('#') as [string, string];
      out.push(...(this.membershipStmt.all(tenant, subject.type, subject.id, subject.relation ?? '', type, relation) as Row[]));
    }
    return out;
  }

  /** Unexpired tuples matching a filter (forward index), up to `limit`. */
  readTuples(tenant: string, filter: TupleFilter, limit = 1000): Tuple[] {
    const clauses = ['tenant = @tenant', 'resource_type = @resourceType', LIVE];
    for (const [field, column] of FILTER_COLUMNS) if (filter[field] !== undefined) clauses.push(`${column} = @${field}`);
    const rows = this.db.prepare(`SELECT * FROM tuples WHERE ${clauses.join(' AND ')} LIMIT @limit`).all({ ...pick(filter), tenant, limit, now: this.clock() }) as Row[];
    return rows.map(db.rowTuple);
  }

  /** Every tuple of (resource, relation), usersets and objects alike: what an arrow walks. */
  relationRows(tenant: string, resource: { type: string; id: string }, relation: string): Row[] {
    return this.relationRowsStmt.all(tenant, resource.type, resource.id, relation) as Row[];
  }

  // ── access audit reads (anvil audit check) ────────────────────────────────────────────────────────────────────

  /** Every schema the tenant deployed, oldest first: its revision, text, author and when it was written. */
  schemaHistory(tenant: string): Array<{ revision: string; text: string; actor: string; writtenAt: string }> {
    const rows = this.db.prepare('SELECT revision, text, actor, written_at FROM schemas WHERE tenant = ? ORDER BY revision').all(tenant) as Array<{ revision: number; text: string; actor: string; written_at: number }>;
    return rows.map((r) => ({ revision: db.encodeRevision(r.revision), text: r.text, actor: r.actor, writtenAt: new Date(r.written_at).toISOString() }));
  }

  /** Up to `limit` of the tenant's tuples that name a caveat, each with the definition hash it was written against. */
  caveatedTuples(tenant: string, limit = 100_000): Tuple[] {
    const rows = this.db.prepare(`SELECT ${TUPLE_COLUMNS} FROM tuples WHERE tenant = ? AND caveat_name IS NOT NULL LIMIT ?`).all(tenant, limit) as Row[];
    return rows.map(db.rowTuple);
  }

  /**
   * The tenant's tuples that no audited write made: no `tuple.create` or `tuple.touch` change event names them at
   * the revision that last wrote them (rows put into the database behind the gateway's back). Up to `limit` of
   * them, and how many there are.
   */
  unauditedTuples(tenant: string, limit = 1000): { tuples: Tuple[]; total: number } {
    const logged = this.db.prepare("SELECT tuple FROM changelog WHERE tenant = ? AND revision = ? AND kind IN ('tuple.create', 'tuple.touch')").pluck();
    const rows = this.db.prepare(`SELECT ${TUPLE_COLUMNS}, created_revision FROM tuples WHERE tenant = ? ORDER BY created_revision`).iterate(tenant) as Iterable<Row & { created_revision: number }>;
    let revision = -1;
    let written = new Set<string>();
    const tuples: Tuple[] = [];
    let total = 0;
    for (const row of rows) {
      if (row.created_revision !== revision) {
        revision = row.created_revision;
        written = new Set((logged.all(tenant, revision) as string[]).map((text) => identity(parseTuple(text))));
      }
      const tuple = db.rowTuple(row);
      if (written.has(identity(tuple))) continue;
      total++;
      if (tuples.length < limit) tuples.push(tuple);
    }
    return { tuples, total };
  }

  /** Runs `fn` inside one read transaction, so a multi-query evaluation sees one snapshot. */
  snapshot<T>(fn: () => T): T {
    return this.db.inTransaction ? fn() : this.db.transaction(fn).deferred();
  }
}

type LogEntry = { kind: ChangeEvent['kind']; tuple?: Tuple; caveat?: { name: string; hash: string | null }; details?: Record<string, unknown> };
type ChangelogRow = { revision: number; kind: string; tuple: string | null; caveat_name: string | null; caveat_hash: string | null; request_id: string | null; actor: string; reason: string; at: number };

/** Unexpired at @now (epoch ms). */
const LIVE = '(expires_at IS NULL OR expires_at > @now)';
const KEY = 'tenant = @tenant AND resource_type = @rt AND resource_id = @rid AND relation = @rel AND subject_relation = @srel AND subject_type = @st AND subject_id = @sid';
const DELETE_TUPLE = `DELETE FROM tuples WHERE ${KEY}`;
const UPSERT_TUPLE = `INSERT INTO tuples (tenant, resource_type, resource_id, relation, subject_relation, subject_type, subject_id, caveat_name, caveat_hash, caveat_context, expires_at, created_revision)
  VALUES (@tenant, @rt, @rid, @rel, @srel, @st, @sid, @cn, @ch, @cc, @exp, @rev)
  ON CONFLICT DO UPDATE SET caveat_name = excluded.caveat_name, caveat_hash = excluded.caveat_hash, caveat_context = excluded.caveat_context,
    expires_at = excluded.expires_at, created_revision = excluded.created_revision`;
const FILTER_COLUMNS: Array<[keyof TupleFilter, string]> = [
  ['resourceId', 'resource_id'],
  ['relation', 'relation'],
  ['subjectType', 'subject_type'],
  ['subjectId', 'subject_id'],
  ['subjectRelation', 'subject_relation'],
];

/** A tuple's identity: everything but its caveat and expiry (a batch may not name one twice; SpiceDB's rule). */
function identity(t: Tuple): string {
  return formatTuple({ resource: t.resource, relation: t.relation, subject: t.subject });
}

/** Only the filter's own fields, so a caller cannot smuggle other SQL parameters in. */
function pick(f: TupleFilter): Partial<TupleFilter> {
  const fields: Array<keyof TupleFilter> = ['resourceType', ...FILTER_COLUMNS.map(([field]) => field)];
  return Object.fromEntries(fields.map((field) => [field, f[field]]).filter(([, v]) => v !== undefined));
}

function requireReason(audit: AuditContext): void {
  if (typeof audit.actor !== 'string' || audit.actor.trim() === '') throw new InvalidInputError('a write needs an actor');
  if (typeof audit.reason !== 'string' || audit.reason.trim() === '') throw new InvalidInputError('a write needs a source reason');
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The relationship store's bulk work: imports and restores (all or nothing), exports for backups, expiry garbage
 * collection, the purges that make authority die with its holder (a deleted tenant, a revoked application), and the
 * whole-tenant reads the access audit makes (`anvil audit check`).
 */
import { sql } from 'kysely';
import type { PolicyDatabase } from '../database/policy-database.ts';
import { NotFoundError } from '../errors.ts';
import { scrubSecrets } from '../scrub.ts';
import { ImportError, PreconditionFailedError, TupleValidationError } from './errors.ts';
import { compileSchema } from './schema.ts';
import * as db from './store-schema.ts';
import { identity, keyIs, RelationshipStoreCore, requireReason, sha256, upsertTuples } from './store.ts';
import type { AuditContext, ImportSource } from './store-types.ts';
import { appSubject } from '../subjects.ts';
import { assertTupleFits, bindCaveat, parseTuple, type Tuple } from './tuples.ts';

/** Schemas, tuples and their history, in the policy database's relationships concern. */
export class RelationshipStore extends RelationshipStoreCore {
  /** The store over an open policy database; `clock` decides expiry (Date.now). */
  static open(options: { database: PolicyDatabase; clock?: () => number }): RelationshipStore {
    return new RelationshipStore(options.database, options.clock);
  }

  /**
   * Imports a text of tuples (one per line, `#` and `//` comments and blank lines ignored) as touches in one batch.
   * Every line is validated first; any bad line refuses the whole import (ImportError lists the line numbers). With
   * `schema`, that schema is written in the same transaction first (a restore): the tuples are validated against it,
   * and a schema that would strand existing tuples refuses everything. An accepted import leaves an import source
   * record (who, when, sha256 of `source` or of the text, count).
   */
  async importTuples(tenant: string, text: string, options: AuditContext & { name?: string; schema?: string; source?: string }): Promise<ImportSource> {
    requireReason(options);
    const current = await this.schema(tenant);
    const schema = options.schema !== undefined ? compileSchema(options.schema) : current;
    if (!schema) throw new NotFoundError(`tenant ${tenant} has no schema`);
    const tuples = new Map<string, Tuple>();
    const bad: Array<{ line: number; error: string }> = [];
    text.split(/\r?\n/).forEach((raw, index) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#') || line.startsWith('//')) return;
      try {
        const tuple = bindCaveat(schema, parseTuple(line));
        assertTupleFits(schema, tuple);
        // A tuple named twice is touched twice: the later line wins, as it would one touch after the other.
        tuples.delete(identity(tuple));
        tuples.set(identity(tuple), tuple);
      } catch (error) {
        bad.push({ line: index + 1, error: error instanceof TupleValidationError ? error.message : String(error) });
      }
    });
    if (bad.length > 0) throw new ImportError(bad);
    const digest = sha256(options.source ?? text);
    const writesSchema = options.schema !== undefined && options.schema !== current?.text;
    let id = 0;
    const token = await this.commit(tenant, options, async (w) => {
      if (w.before.schema?.text !== current?.text) throw new PreconditionFailedError('the schema changed during the import; retry');
      if (writesSchema) await this.storeSchema(w, tenant, schema, options.actor);
      await upsertTuples(w.trx, [...tuples.values()].map((tuple) => db.tupleValues(tenant, tuple, w.revision)));
      for (const tuple of tuples.values()) w.log({ kind: 'tuple.touch', tuple });
      const row = await w.trx
        .insertInto('import_sources')
        .values({ tenant, revision: w.revision, name: options.name ?? '', digest, count: tuples.size, actor: options.actor, reason: scrubSecrets(options.reason, 'name'), request_id: options.requestId ?? null, at: Date.now() })
        .returning('id')
        .executeTakeFirstOrThrow();
      id = Number(row.id);
    }, writesSchema);
    const sources = await this.importSources(tenant);
    return sources.find((s) => s.id === id) ?? { id, revision: token, name: '', digest, count: tuples.size, actor: options.actor, reason: options.reason, at: '' };
  }

  /**
   * The tenant's schema text and the tuples that still grant (unexpired, caveats on their current definition), in
   * key order, for a backup; `skipped` counts the tuples left out because they grant nothing. Read in one snapshot.
   */
  async exportTenant(tenant: string, now = this.clock()): Promise<{ schema: string; tuples: Tuple[]; skipped: number }> {
    const schema = await this.schema(tenant);
    if (!schema) throw new NotFoundError(`tenant ${tenant} has no schema`);
    const rows = await this.database.snapshot('relationships', (trx) =>
      trx
        .selectFrom('tuples')
        .select(db.TUPLE_COLUMNS)
        .where('tenant', '=', tenant)
        .orderBy('resource_type')
        .orderBy('resource_id')
        .orderBy('relation')
        .orderBy('subject_relation')
        .orderBy('subject_type')
        .orderBy('subject_id')
        .execute(),
      'long', // a whole tenant, which may be millions of tuples
    );
    const tuples: Tuple[] = [];
    let skipped = 0;
    for (const row of rows) {
      const stale = row.caveat_name !== null && schema.caveats.get(row.caveat_name)?.hash !== row.caveat_hash;
      if (stale || db.expired(row, now)) skipped++;
      else tuples.push(db.rowTuple(row));
    }
    return { schema: schema.text, tuples, skipped };
  }

  /**
   * Deletes the tuples that expired at or before `before` (epoch ms, now by default), each as a `tuple.delete` change
   * event of actor `anvil:gc` and reason `expired`, so watchers see the removal; returns how many went. A tuple
   * re-written with a later expiry in the meantime stays. Several nodes may collect at once: each tuple goes once.
   */
  async collectExpired(options: { before?: number; limit?: number } = {}): Promise<number> {
    const before = options.before ?? this.clock();
    const rows = await this.db
      .selectFrom('tuples')
      .select(['tenant', ...db.TUPLE_COLUMNS])
      .where('expires_at', 'is not', null)
      .where('expires_at', '<=', before)
      .limit(options.limit ?? 10_000)
      .execute();
    const byTenant = new Map<string, db.TupleRow[]>();
    for (const row of rows) byTenant.set(row.tenant, [...(byTenant.get(row.tenant) ?? []), row]);
    let removed = 0;
    for (const [tenant, expired] of byTenant) {
      await this.commit(tenant, { actor: 'anvil:gc', reason: 'expired' }, async (w) => {
        for (const row of expired) {
          const tuple = db.rowTuple(row);
          const gone = await w.trx.deleteFrom('tuples').where(keyIs(db.tupleValues(tenant, tuple, 0))).where('expires_at', '<=', before).executeTakeFirst();
          if (Number(gone.numDeletedRows) === 0) continue;
          removed++;
          w.log({ kind: 'tuple.delete', tuple });
        }
      });
    }
    return removed;
  }

  /**
   * Removes everything of a tenant (schemas, tuples, change log, import records) when the tenant is deleted, so a new
   * tenant of the same name starts empty. The tenant's revision still moves forward (to a fresh global revision with
   * no schema), so nothing cached under an earlier revision is ever reused.
   */
  async purgeTenant(tenant: string): Promise<void> {
    await this.database.change('relationships', async (trx, next) => {
      for (const table of ['schemas', 'tuples', 'changelog', 'import_sources'] as const) await trx.deleteFrom(table).where('tenant', '=', tenant).execute();
      await trx
        .insertInto('tenant_revisions')
        .values({ tenant, revision: next, schema_revision: 0 })
        .onConflict((oc) => oc.column('tenant').doUpdateSet({ revision: next, schema_revision: 0 }))
        .execute();
      return { result: undefined, changed: true, hint: tenant };
    });
  }

  /**
   * Deletes the tuples that guarded writers wrote — by access key id (`actors`) or as one of their subjects (sessions
   * of a credential write as `app:<its id>`) — and that nobody has written since: the authority an application handed
   * out dies with it (revoked or deleted, or its maker gone). Tuples written by root, the operator or a tenant-wide
   * admin are the tenant's own data and stay. Returns how many were deleted.
   */
  async purgeWrittenBy(tenant: string, actors: string[], audit: AuditContext): Promise<number> {
    if (actors.length === 0) return 0;
    const subjects = new Set(actors.map(appSubject));
    const doomed = (await this.guardedWrites(tenant)).filter((e) => actors.includes(e.actor) || (e.writer !== undefined && subjects.has(e.writer)));
    if (doomed.length === 0) return 0;
    await this.write(tenant, doomed.map((e) => ({ op: 'delete' as const, tuple: e.tuple })), audit);
    return doomed.length;
  }

  /**
   * The tenant's tuples whose latest change event is a write the tenant-application guard judged (not root, the
   * operator, a tenant-wide admin or an import, and not deleted since), as that write wrote them, with who wrote them.
   * The changelog is read in pages, oldest first, so a long history never sits in memory as one result.
   */
  async guardedWrites(tenant: string): Promise<GuardedWrite[]> {
    const last = new Map<string, GuardedWrite>();
    let seq = 0;
    for (;;) {
      const rows = await this.db
        .selectFrom('changelog')
        .select(['seq', 'tuple', 'kind', 'actor', 'details'])
        .where('tenant', '=', tenant)
        .where('tuple', 'is not', null)
        .where('seq', '>', seq)
        .orderBy('seq')
        .limit(10_000)
        .execute();
      for (const row of rows) {
        const tuple = parseTuple(row.tuple!);
        const details = (row.details === null ? {} : JSON.parse(row.details)) as { guarded?: boolean; writer?: string };
        // A later unguarded write (or any delete) makes the tuple the tenant's own, or gone: only the latest counts.
        if (details.guarded === true && row.kind !== 'tuple.delete') last.set(identity(tuple), { tuple, actor: row.actor, ...(details.writer !== undefined ? { writer: details.writer } : {}) });
        else last.delete(identity(tuple));
      }
      if (rows.length < 10_000) break;
      seq = rows.at(-1)!.seq;
    }
    return [...last.values()];
  }

  // ── access audit reads (anvil audit check) ────────────────────────────────────────────────────────────────────

  /** Every schema the tenant deployed, oldest first: its revision, text, author and when it was written. */
  async schemaHistory(tenant: string): Promise<Array<{ revision: string; text: string; actor: string; writtenAt: string }>> {
    const rows = await this.db.selectFrom('schemas').select(['revision', 'text', 'actor', 'written_at']).where('tenant', '=', tenant).orderBy('revision').execute();
    return rows.map((r) => ({ revision: db.encodeRevision(r.revision), text: r.text, actor: r.actor, writtenAt: new Date(r.written_at).toISOString() }));
  }

  /** Up to `limit` of the tenant's tuples that name a caveat, each with the definition hash it was written against. */
  async caveatedTuples(tenant: string, limit = 100_000): Promise<Tuple[]> {
    const rows = await this.db.selectFrom('tuples').select(db.TUPLE_COLUMNS).where('tenant', '=', tenant).where('caveat_name', 'is not', null).limit(limit).execute();
    return rows.map(db.rowTuple);
  }

  /** Distinct subject ids of a type in the tenant's tuples (wildcards excluded). */
  subjectIds(tenant: string, subjectType: string): Promise<string[]> {
    return this.queries.reader(this.db).subjectIds(tenant, subjectType);
  }

  /**
   * The tenant's tuples that no audited write made: no `tuple.create` or `tuple.touch` change event names them at
   * the revision that last wrote them (rows put into the database behind the gateway's back). Up to `limit` of
   * them, and how many there are. Read in primary-key pages, so a large tenant never sits in memory at once.
   */
  async unauditedTuples(tenant: string, limit = 1000): Promise<{ tuples: Tuple[]; total: number }> {
    const tuples: Tuple[] = [];
    let total = 0;
    let after: db.TupleRow | undefined;
    for (;;) {
      const page = await this.db
        .selectFrom('tuples')
        .select([...db.TUPLE_COLUMNS, 'created_revision'])
        .where('tenant', '=', tenant)
        .$if(after !== undefined, (q) =>
          q.where(sql<boolean>`(resource_type, resource_id, relation, subject_relation, subject_type, subject_id) > (${after!.resource_type}, ${after!.resource_id}, ${after!.relation}, ${after!.subject_relation}, ${after!.subject_type}, ${after!.subject_id})`),
        )
        .orderBy('resource_type').orderBy('resource_id').orderBy('relation').orderBy('subject_relation').orderBy('subject_type').orderBy('subject_id')
        .limit(AUDIT_PAGE)
        .execute();
      if (page.length === 0) break;
      const revisions = [...new Set(page.map((r) => r.created_revision))];
      const logged = new Set<string>();
      for (let i = 0; i < revisions.length; i += AUDIT_PAGE) {
        const entries = await this.db
          .selectFrom('changelog')
          .select(['revision', 'tuple'])
          .where('tenant', '=', tenant)
          .where('revision', 'in', revisions.slice(i, i + AUDIT_PAGE))
          .where('kind', 'in', ['tuple.create', 'tuple.touch'])
          .execute();
        for (const e of entries) if (e.tuple !== null) logged.add(`${e.revision} ${identity(parseTuple(e.tuple))}`);
      }
      for (const row of page) {
        const tuple = db.rowTuple(row);
        if (logged.has(`${row.created_revision} ${identity(tuple)}`)) continue;
        total++;
        if (tuples.length < limit) tuples.push(tuple);
      }
      if (page.length < AUDIT_PAGE) break;
      after = page.at(-1);
    }
    return { tuples, total };
  }
}

/** A tuple as the guarded write that last wrote it left it (RelationshipStore.guardedWrites). */
export interface GuardedWrite {
  tuple: Tuple;
  /** The access key id that wrote it (a session's own id when a session wrote it). */
  actor: string;
  /** The writer's subject as the guard judged it (`app:AKIA…` for a credential and its sessions). */
  writer?: string;
}

/** Rows per page of the access audit's whole-tenant reads. */
const AUDIT_PAGE = 5000;

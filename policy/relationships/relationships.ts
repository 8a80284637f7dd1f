/**
 * The gateway-facing facade: one store plus one engine, with checks, listing filters, lookups, writes (operator or
 * tenant application), schema writes, imports and the watch feed. Also the S3 hierarchy as implicit parents.
 */

import { DeniedError } from '../errors.ts';
import { RelationshipEngine, type CheckOptions, type CheckResult, type ImplicitParents } from './engine.ts';
import { formatBackup, parseBackup, type BackupFormat } from './backup.ts';
import { appWriteGuard, type AppScope } from './guard.ts';
import { schemaDiff, type SchemaDiff } from './schema-diff.ts';
import type { PermissionExpr } from './schema-parser.ts';
import type { PolicyDatabase } from '../database/policy-database.ts';
import { RelationshipStore } from './store-bulk.ts';
import type { AuditContext, ChangeEvent, ImportSource, Precondition, TupleUpdate } from './store-types.ts';
import { formatSubject, parseSubject, type ObjectRef, type SubjectRef } from './tuples.ts';

/**
 * Parents of the S3 objects of DEFAULT_OBJECT_SCHEMA: object `b/a/c.txt` → folder `b/a/`; folder `b/a/x/` → folder
 * `b/a/`; folder `b/a/` (top) and object `b/k` → bucket `b`.
 */
export function s3ParentOf(resource: ObjectRef): ObjectRef[] {
  const { type, id } = resource;
  if (type !== 'object' && type !== 'folder') return [];
  const slash = id.indexOf('/');
  if (slash <= 0) return [];
  const bucket = id.slice(0, slash);
  const inner = type === 'folder' ? id.slice(0, -1) : id;
  const last = inner.lastIndexOf('/');
  return last <= slash ? [{ type: 'bucket', id: bucket }] : [{ type: 'folder', id: inner.slice(0, last + 1) }];
}

/** How to open the facade. */
export interface RelationshipsOptions {
  /** The open policy database whose relationships concern holds the tuples. */
  database: PolicyDatabase;
  cacheSize?: number;
  maxDepth?: number;
  /** Computed parents; defaults to s3ParentOf. */
  implicitParents?: ImplicitParents;
  /** The clock tuple expiry is decided by (epoch ms); Date.now by default. */
  clock?: () => number;
  /** How often expired tuples are garbage-collected (a `tuple.delete` event each); 60 s by default, 0 never. */
  gcIntervalMs?: number;
}

/** Schemas, tuples and checks of every tenant. */
export class Relationships {
  readonly store: RelationshipStore;
  readonly engine: RelationshipEngine;
  private readonly gc?: NodeJS.Timeout;

  private constructor(options: RelationshipsOptions) {
    this.store = RelationshipStore.open({ database: options.database, clock: options.clock });
    this.engine = new RelationshipEngine({ store: this.store, cacheSize: options.cacheSize, maxDepth: options.maxDepth, implicitParents: options.implicitParents ?? s3ParentOf, clock: options.clock });
    const every = options.gcIntervalMs ?? 60_000;
    if (every > 0) {
      this.gc = setInterval(() => {
        // Busy or closing: the next round collects what this one missed; expired tuples grant nothing meanwhile.
        this.store.collectExpired().catch(() => {});
      }, every);
      this.gc.unref();
    }
  }

  /** The engine and store over an open policy database. */
  static open(options: RelationshipsOptions): Relationships {
    return new Relationships(options);
  }

  /** Stops garbage collection (the policy database is closed by whoever opened it). */
  close(): void {
    clearInterval(this.gc);
  }

  /** Decides one permission: allowed, denied or conditional (with the missing caveat parameters). */
  async check(tenant: string, resource: ObjectRef | string, permission: string, subject: SubjectRef | string, options?: CheckOptions): Promise<CheckResult> {
    return this.engine.check(tenant, resource, permission, subject, options);
  }

  /** Check with the granting path or the reason for the denial. */
  async explain(tenant: string, resource: ObjectRef | string, permission: string, subject: SubjectRef | string, options?: CheckOptions): Promise<CheckResult> {
    return this.engine.explain(tenant, resource, permission, subject, options);
  }

  /**
   * The ids (of a page the storage listed) the subject holds `permission` on, in the given order; conditional
   * results are left out. One range query prefetches the page's tuples; keys with no tuple that matters to the subject
   * share one evaluation per folder (engine.filterPage); folders and buckets are memoized.
   */
  async filterResources(tenant: string, type: string, ids: string[], permission: string, subject: SubjectRef | string, options: CheckOptions = {}): Promise<string[]> {
    const sub = typeof subject === 'string' ? parseSubject(subject) : subject;
    return this.engine.session(tenant, options, async (state) => (state ? this.engine.filterPage(state, type, ids, permission, sub) : []));
  }

  /**
   * Ids of `resourceType` under `idPrefix` that have tuples and that the subject reaches, sorted. Objects known only
   * to storage (no tuple of their own, reachable through implicit parents) are not enumerated: list storage and use
   * filterResources for those.
   */
  async lookupResources(tenant: string, resourceType: string, permission: string, subject: SubjectRef | string, options: CheckOptions & { idPrefix?: string; limit?: number } = {}): Promise<string[]> {
    const prefix = options.idPrefix ?? '';
    const rows = await this.store.reader().range(tenant, resourceType, prefix, `${prefix}\u{10FFFF}`);
    const ids = [...new Set(rows.map((r) => r.resource_id))].filter((id) => id.startsWith(prefix));
    const found = await this.filterResources(tenant, resourceType, ids, permission, subject, options);
    return options.limit === undefined ? found : found.slice(0, options.limit);
  }

  /**
   * Whether holding `permission` on a folder or bucket implies it on every object and folder beneath: true when the
   * tenant's object and folder definitions grant it as a union that includes `parent->permission`, so that no
   * exclusion or intersection can take away what the parent gives. Listings use it to settle subtrees in one check.
   */
  async subtreeInherits(tenant: string, permission: string): Promise<boolean> {
    const schema = await this.store.schema(tenant);
    if (!schema) return false;
    return ['object', 'folder'].every((type) => {
      const expr = schema.definitions.get(type)?.permissions.get(permission);
      return expr !== undefined && unionHasArrow(expr, 'parent', permission);
    });
  }

  /** Subjects (ids of `subjectType` that appear in the tenant's tuples) holding the permission on a resource. */
  async lookupSubjects(tenant: string, resource: ObjectRef | string, permission: string, subjectType: string, options: CheckOptions = {}): Promise<string[]> {
    const res = typeof resource === 'string' ? parseSubject(resource) : resource;
    return this.engine.session(tenant, options, async (state) => {
      if (!state) return [];
      const found: string[] = [];
      for (const id of await state.reader.subjectIds(tenant, subjectType)) {
        if ((await this.engine.evaluate(state, res, permission, { type: subjectType, id })).result === 'allowed') found.push(id);
      }
      return found;
    });
  }

  /**
   * Whether any tuple could give the subject authority: one naming it as a subject (directly, expired or not) or a
   * wildcard of its type. False means the subject holds nothing by relationships (every permission bottoms out in such
   * a tuple), which is what handing its identity to someone else may then reveal.
   */
  subjectHasGrants(tenant: string, subject: SubjectRef | string): Promise<boolean> {
    const sub = typeof subject === 'string' ? parseSubject(subject) : subject;
    return this.store.namesSubject(tenant, sub);
  }

  /**
   * Writes a batch atomically and returns its revision token. Without `scope` it is an operator write; with it, a
   * tenant application's, refused (DeniedError, layer relationship) outside its scope or when it would enlarge the
   * writer's own authority.
   */
  async write(tenant: string, updates: TupleUpdate[], options: AuditContext & { preconditions?: Precondition[]; scope?: AppScope }): Promise<string> {
    return (await this.writeCounted(tenant, updates, options)).revision;
  }

  /** `write`, also answering how many updates changed something (a delete of a missing tuple does not). */
  async writeCounted(tenant: string, updates: TupleUpdate[], options: AuditContext & { preconditions?: Precondition[]; scope?: AppScope }): Promise<{ revision: string; written: number }> {
    const guard = options.scope ? appWriteGuard(this.engine, tenant, options.scope) : undefined;
    const writer = options.scope === undefined ? undefined : typeof options.scope.writer === 'string' ? options.scope.writer : formatSubject(options.scope.writer);
    return this.store.writeCounted(tenant, updates, { ...options, guard, writer });
  }

  /** Writes a tenant's schema (and caveats); applications (`scope` given) are always refused. */
  async writeSchema(tenant: string, text: string, options: AuditContext & { scope?: AppScope }): Promise<string> {
    if (options.scope) throw new DeniedError('relationship', 'tenant applications cannot write schemas or caveats');
    return this.store.writeSchema(tenant, text, options);
  }

  /** What the proposed schema would change against the tenant's deployed one. */
  async diffSchema(tenant: string, proposed: string): Promise<SchemaDiff> {
    return schemaDiff(proposed, (await this.store.readSchema(tenant))?.text);
  }

  /** Bulk import, all or nothing; applications may not import. */
  async importTuples(tenant: string, text: string, options: AuditContext & { name?: string }): Promise<ImportSource> {
    return this.store.importTuples(tenant, text, options);
  }

  /**
   * The tenant's schema and every tuple that still grants, in a zed text form (backup.ts), with how many tuples were
   * left out because they grant nothing (expired, or written against an older caveat definition).
   */
  async exportTenant(tenant: string, format: BackupFormat = 'yaml'): Promise<{ text: string; count: number; skipped: number }> {
    const exported = await this.store.exportTenant(tenant);
    return { text: formatBackup(exported, format), count: exported.tuples.length, skipped: exported.skipped };
  }

  /**
   * Restores a backup text (backup.ts forms) into a tenant, all or nothing: its schema (when it carries one) and its
   * tuples in one transaction, recorded as an import source. Applications may not restore.
   */
  async importBackup(tenant: string, text: string, options: AuditContext & { name?: string }): Promise<ImportSource> {
    const backup = parseBackup(text);
    return this.store.importTuples(tenant, backup.relationships, { ...options, schema: backup.schema, source: text });
  }

  /** The tenant's change events after a revision token (`''` for all), oldest first. */
  async changesSince(tenant: string, revision: string, options?: { limit?: number }): Promise<ChangeEvent[]> {
    return this.store.changesSince(tenant, revision, options);
  }
}

/** Whether `relation->target` is one of the terms of a union (or the whole expression). */
function unionHasArrow(expr: PermissionExpr, relation: string, target: string): boolean {
  if (expr.kind === 'arrow') return expr.relation === relation && expr.target === target;
  if (expr.kind === 'union') return unionHasArrow(expr.left, relation, target) || unionHasArrow(expr.right, relation, target);
  return false;
}

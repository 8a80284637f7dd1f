/**
 * The check engine: does `subject` hold `permission` on `resource` under the tenant's schema and tuples? Evaluation
 * walks the permission expression with one indexed query per step (exact subject and wildcard are point lookups;
 * usersets and arrow bases are key ranges), with a per-call memo, cycle cut-off and depth limit, and an LRU across
 * calls keyed by (tenant, tenant revision, resource, name, subject). The revision comes from the store, which follows
 * the relationships change signal (policy/database/signals.ts), so a delete committed on any node is not served from
 * cache once the signal has carried it; a warm check reads nothing. The reads a cold check needs share one snapshot.
 * Caveated results are never cached across calls, since they depend on request context such as `now`.
 *
 * Expiring tuples (https://authzed.com/docs/spicedb/concepts/expiring-relationships) grant nothing from their expiry
 * instant on, by the engine's clock (never the request's `now`, which callers supply): every read skips expired rows,
 * and a result that read a still-live expiring row carries that expiry (`until`), after which no cache serves it.
 * Arrows follow SpiceDB: `rel->perm` and `rel.any(perm)` walk every tuple of `rel`, userset subjects included (the
 * subject relation is ignored: `team:t#member` is walked as `team:t`), and `rel.all(perm)` needs every one of them.
 */

import { LRUCache } from 'lru-cache';
import type { CaveatOutcome } from './caveats.ts';
import { and, DENIED, exclude, lapses, prefix, toResult, union, type CheckResult, type Eval } from './eval-result.ts';
import { compareUtf8, matters, parentsKey, shareableTuplesets, type PageShape } from './page-filter.ts';
import type { CompiledSchema } from './schema.ts';
import type { PermissionExpr } from './schema-parser.ts';
import type { SnapshotReader, TupleReader } from './store-reads.ts';
import type { RelationshipStoreCore } from './store.ts';
import { expired, rowTuple, type TupleRow } from './store-schema.ts';
import { formatObject, formatSubject, formatTuple, parseSubject, type ObjectRef, type SubjectRef } from './tuples.ts';

export type { CheckResult } from './eval-result.ts';

/** Facts of the request the gateway supplies: `now` and `client_ip` at least; fill caveat params of those names. */
export type RequestContext = { now?: Date; client_ip?: string } & Record<string, unknown>;

/** Computed parents of an object (e.g. an S3 key's folder), treated as tuples of the parent relation. */
export type ImplicitParents = (resource: ObjectRef) => ObjectRef[];

/** Per-call options of check and the listing helpers. */
export interface CheckOptions {
  context?: RequestContext;
  /** Overrides the engine's implicit parents for this call. */
  implicitParents?: ImplicitParents;
}

/** What an evaluation inside a write decides against: the write's reader and the tenant's state before it. */
export interface WriteState {
  reader: TupleReader;
  revision: number;
  schema: CompiledSchema;
}

/** How to build an engine. */
export interface EngineOptions {
  store: RelationshipStoreCore;
  /** The clock expiry is decided by (epoch ms); Date.now by default. */
  clock?: () => number;
  cacheSize?: number;
  /** Nesting beyond this many steps is denied ("depth limit exceeded"); 50 by default. */
  maxDepth?: number;
  implicitParents?: ImplicitParents;
  /** The relation implicit parents stand for; `parent` by default. */
  parentRelation?: string;
}

/** One evaluation's state. */
export interface EvalState {
  tenant: string;
  revision: number;
  /** Where tuples are read: a lazily opened snapshot, or the write transaction a guard decides in. */
  reader: TupleReader;
  schema: CompiledSchema;
  context: RequestContext;
  implicit?: ImplicitParents;
  memo: Map<string, Eval>;
  active: Set<string>;
  /** Every tuple of the resources of `type` with ids in [from, to] (a listed page), by resource id. */
  prefetch?: { type: string; from: string; to: string; rows: Map<string, TupleRow[]> };
  /** Usersets each subject is in, from the reverse index (see closure()). */
  closures: Map<string, Closure | undefined>;
  /** The engine clock at the start of the evaluation: rows expired by then do not exist for it. */
  now: number;
  /** One entry per evaluation of a name in progress: the earliest expiry of a live row it read (Infinity: none). */
  frames: number[];
  /** One entry per evaluation of a name in progress: how many nested steps below it its evaluation took so far. */
  heights: number[];
}

/** The usersets (`type:id#relation`) a subject is in through tuples alone; `caveated` ones need full evaluation. */
interface Closure {
  plain: Set<string>;
  caveated: Set<string>;
  /** The earliest expiry among the membership rows it was built from. */
  until: number;
}

/** Above this many usersets the reverse walk is abandoned for plain forward evaluation. */
const CLOSURE_LIMIT = 5000;

/** Resources with at most this many tuples are read whole, in one query, and cached per revision. */
const SMALL_RESOURCE = 64;


/** Answers checks over a RelationshipStore. */
export class RelationshipEngine {
  readonly store: RelationshipStoreCore;
  private readonly cache: LRUCache<string, Eval>;
  /** Lookups in the cross-call cache since the engine opened (the gateway's metrics read them). */
  readonly cacheStats = { hits: 0, misses: 0 };
  private readonly maxDepth: number;
  private readonly implicit?: ImplicitParents;
  private readonly parentRelation: string;
  private readonly closureCache: LRUCache<string, Closure | false>;
  private readonly rowsCache: LRUCache<string, TupleRow[] | false>;
  private readonly clock: () => number;
  /** Each implicit-parents function as evaluations call it, and every type it has returned (see page-filter.ts). */
  private readonly recorded = new WeakMap<ImplicitParents, { fn: ImplicitParents; types: Set<string> }>();

  constructor(options: EngineOptions) {
    this.store = options.store;
    this.clock = options.clock ?? Date.now;
    this.cache = new LRUCache({ max: options.cacheSize ?? 100_000 });
    this.maxDepth = options.maxDepth ?? 50;
    this.implicit = options.implicitParents;
    this.parentRelation = options.parentRelation ?? 'parent';
    this.closureCache = new LRUCache({ max: 10_000 });
    this.rowsCache = new LRUCache({ max: 50_000 });
  }

  /**
   * Runs `fn` with a fresh evaluation state for one request (undefined when the tenant has no schema). Its reads
   * share one snapshot, opened on the first read a cache could not answer and closed when `fn` settles; inside a
   * write (`write`), they go through the write's transaction instead.
   */
  async session<T>(tenant: string, options: CheckOptions & { write?: WriteState }, fn: (state: EvalState | undefined) => Promise<T>): Promise<T> {
    const write = options.write;
    const revision = write?.revision ?? (await this.store.revision(tenant));
    const schema = write?.schema ?? (await this.store.schema(tenant));
    if (!schema) return fn(undefined);
    const snapshot: SnapshotReader | undefined = write ? undefined : this.store.snapshot();
    const reader = write?.reader ?? snapshot!;
    const implicit = this.recording(options.implicitParents ?? this.implicit)?.fn;
    const state: EvalState = { tenant, revision, reader, schema, context: options.context ?? {}, implicit, memo: new Map(), active: new Set(), closures: new Map(), now: this.clock(), frames: [], heights: [] };
    try {
      return await fn(state);
    } finally {
      await snapshot?.end();
    }
  }

  /** The implicit-parents function wrapped to record the types it returns (one wrapper per function). */
  private recording(base: ImplicitParents | undefined): { fn: ImplicitParents; types: Set<string> } | undefined {
    if (base === undefined) return undefined;
    let entry = this.recorded.get(base);
    if (!entry) {
      const types = new Set<string>();
      const fn: ImplicitParents = (resource) => {
        const parents = base(resource);
        for (const p of parents) types.add(p.type);
        return parents;
      };
      entry = { fn, types };
      this.recorded.set(base, entry);
      this.recorded.set(fn, entry);
    }
    return entry;
  }

  /** Decides one permission (or relation); subjects and resources may be given as `type:id[#relation]` strings. */
  async check(tenant: string, resource: ObjectRef | string, permission: string, subject: SubjectRef | string, options: CheckOptions = {}): Promise<CheckResult> {
    const res = typeof resource === 'string' ? parseSubject(resource) : resource;
    const sub = typeof subject === 'string' ? parseSubject(subject) : subject;
    return this.session(tenant, options, async (state) => {
      if (!state) return { result: 'denied', reason: `tenant ${tenant} has no schema` };
      if (!state.schema.definitions.get(res.type)) return { result: 'denied', reason: `unknown type ${res.type}` };
      return toResult(await this.evalName(state, { type: res.type, id: res.id }, permission, sub, 0), res, permission);
    });
  }

  /** Like check, always with the path that granted or the reason it did not. */
  async explain(tenant: string, resource: ObjectRef | string, permission: string, subject: SubjectRef | string, options: CheckOptions = {}): Promise<CheckResult> {
    const result = await this.check(tenant, resource, permission, subject, options);
    return { ...result, path: result.path ?? [] };
  }

  /** Evaluates `name` on a resource inside an existing state (shared memo, for listings and guards). */
  async evaluate(state: EvalState, resource: ObjectRef, name: string, subject: SubjectRef): Promise<CheckResult> {
    return toResult(await this.evalName(state, resource, name, subject, 0), resource, name);
  }

  private async evalName(s: EvalState, res: ObjectRef, name: string, subject: SubjectRef, depth: number): Promise<Eval> {
    // Ids are length-prefixed, so no id can spell another key (names cannot contain ':', '#' or '@').
    const key = `${res.type}:${res.id.length}:${res.id}#${name}@${subject.type}:${subject.id.length}:${subject.id}#${subject.relation ?? ''}`;
    // A result found earlier (in this call's memo or the cache across calls) answers here only when its evaluation
    // would have stayed within the depth limit from this depth too: then a fresh evaluation would have walked the
    // same steps to the same answer. Otherwise the name is evaluated again from here, so a depth-limited question
    // gets the same answer whatever was asked before it (a chain that grants from one object but is too long from
    // another is never allowed from the latter through a result cached for the former).
    const fits = (e: Eval) => depth + (e.height ?? 0) <= this.maxDepth;
    const memo = s.memo.get(key);
    if (memo && fits(memo)) return this.seen(s, memo);
    if (s.active.has(key)) return { level: 0, reason: 'cycle', provisional: true };
    if (depth > this.maxDepth) {
      this.below(s, 0);
      return { level: 0, reason: `depth limit ${this.maxDepth} exceeded`, provisional: true };
    }
    const cacheKey = `${s.tenant}\u0000${s.revision}\u0000${key}`;
    const cached = this.cache.get(cacheKey);
    if (cached && (cached.until === undefined || cached.until > s.now) && fits(cached)) {
      this.cacheStats.hits++;
      return this.seen(s, cached);
    }
    this.cacheStats.misses++;
    const def = s.schema.definitions.get(res.type);
    let out: Eval;
    s.frames.push(Infinity);
    s.heights.push(0);
    try {
      if (subject.relation === name && subject.type === res.type && subject.id === res.id) out = { level: 2, path: [`${formatObject(res)}#${name}`] };
      else if (!def) out = { level: 0, reason: `unknown type ${res.type}` };
      else {
        s.active.add(key);
        try {
          const expr = def.permissions.get(name);
          if (expr) out = prefix(`${formatObject(res)}#${name}`, await this.evalExpr(s, res, expr, subject, depth));
          else if (def.relations.has(name)) out = await this.evalRelation(s, res, name, subject, depth);
          else out = { level: 0, reason: `${res.type} has no relation or permission ${name}` };
        } finally {
          s.active.delete(key);
        }
      }
    } finally {
      const until = s.frames.pop() as number;
      const height = s.heights.pop() as number;
      this.expiresAt(s, until);
      this.below(s, height);
      if (until !== Infinity) out = { ...out!, until };
      if (height > 0) out = { ...out!, height };
    }
    if (!out.provisional) {
      s.memo.set(key, out);
      if (!out.contextual) this.cache.set(cacheKey, out);
    }
    return out;
  }

  /** A memoized or cached result reused inside the current evaluation, which then depends on its expiry too. */
  private seen(s: EvalState, e: Eval): Eval {
    if (e.until !== undefined) this.expiresAt(s, e.until);
    this.below(s, e.height ?? 0);
    return e;
  }

  /** Records that a step directly below the evaluation in progress took `height` nested steps of its own. */
  private below(s: EvalState, height: number): void {
    const top = s.heights.length - 1;
    if (top >= 0 && height + 1 > (s.heights[top] as number)) s.heights[top] = height + 1;
  }

  /** Records that the evaluation in progress read something live only until `until` (epoch ms). */
  private expiresAt(s: EvalState, until: number): void {
    const top = s.frames.length - 1;
    if (top >= 0 && until < (s.frames[top] as number)) s.frames[top] = until;
  }

  /** The rows that still exist at the evaluation's instant, noting the expiry of those that will expire. */
  private live(s: EvalState, rows: TupleRow[]): TupleRow[] {
    let out: TupleRow[] | undefined;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i] as TupleRow;
      if (row.expires_at === null) {
        out?.push(row);
      } else if (expired(row, s.now)) {
        out ??= rows.slice(0, i);
      } else {
        this.expiresAt(s, row.expires_at);
        out?.push(row);
      }
    }
    return out ?? rows;
  }

  private liveRow(s: EvalState, row: TupleRow | undefined): TupleRow | undefined {
    if (row === undefined || row.expires_at === null) return row;
    if (expired(row, s.now)) return undefined;
    this.expiresAt(s, row.expires_at);
    return row;
  }

  private async evalExpr(s: EvalState, res: ObjectRef, expr: PermissionExpr, subject: SubjectRef, depth: number): Promise<Eval> {
    switch (expr.kind) {
      case 'nil':
        return DENIED;
      case 'ref':
        return this.evalName(s, res, expr.name, subject, depth + 1);
      case 'arrow':
        return expr.all ? this.evalAllArrow(s, res, expr, subject, depth) : this.evalArrow(s, res, expr, subject, depth);
      case 'union': {
        const left = await this.evalExpr(s, res, expr.left, subject, depth);
        // A grant that lapses does not end the search: a later-lapsing (or lasting) one may follow (see holdsUntil).
        return left.level === 2 && !lapses(left) ? left : union(left, await this.evalExpr(s, res, expr.right, subject, depth));
      }
      case 'intersection': {
        const left = await this.evalExpr(s, res, expr.left, subject, depth);
        if (left.level === 0) return left;
        const right = await this.evalExpr(s, res, expr.right, subject, depth);
        return and(left, right);
      }
      case 'exclusion': {
        const left = await this.evalExpr(s, res, expr.left, subject, depth);
        if (left.level === 0) return left;
        return exclude(left, await this.evalExpr(s, res, expr.right, subject, depth));
      }
    }
  }

  /** `rel->perm` / `rel.any(perm)`: some tuple of `rel` (with its caveat) leads to a subject object holding `perm`. */
  private async evalArrow(s: EvalState, res: ObjectRef, expr: Arrow, subject: SubjectRef, depth: number): Promise<Eval> {
    let best: Eval = DENIED;
    for (const base of await this.arrowBases(s, res, expr.relation)) {
      if (!hasName(s.schema, base.object.type, expr.target)) continue;
      best = union(best, await this.arrowStep(s, res, expr, base, subject, depth));
      if (best.level === 2 && !lapses(best)) break;
    }
    return best;
  }

  /**
   * `rel.all(perm)`: every subject of `rel` must hold `perm` (each with its tuple's caveat); no tuple at all denies.
   * SpiceDB's intersection arrow (checkIntersectionTupleToUserset in internal/graph/check.go).
   */
  private async evalAllArrow(s: EvalState, res: ObjectRef, expr: Arrow, subject: SubjectRef, depth: number): Promise<Eval> {
    const bases = await this.arrowBases(s, res, expr.relation);
    if (bases.length === 0) return { level: 0, reason: `${formatObject(res)}#${expr.relation} is empty, so ${expr.relation}.all(${expr.target}) does not hold` };
    let all: Eval = { level: 2, path: [] };
    for (const base of bases) {
      const step = hasName(s.schema, base.object.type, expr.target)
        ? await this.arrowStep(s, res, expr, base, subject, depth)
        : { level: 0 as const, reason: `${base.object.type} has no ${expr.target}` };
      if (step.level === 0) {
        const who = base.row ? formatTuple(rowTuple(base.row)) : `${formatObject(base.object)} (implicit)`;
        return { ...step, reason: `${expr.relation}.all(${expr.target}) fails for ${who}: ${step.reason ?? `no ${expr.target}`}` };
      }
      all = and(all, step);
    }
    return all;
  }

  private async arrowStep(s: EvalState, res: ObjectRef, expr: Arrow, base: ArrowBase, subject: SubjectRef, depth: number): Promise<Eval> {
    const sub = await this.evalName(s, base.object, expr.target, subject, depth + 1);
    if (base.row) return and(this.caveat(s, base.row), sub, formatTuple(rowTuple(base.row)));
    return prefix(`${formatObject(res)}#${expr.relation}@${formatObject(base.object)} (implicit)`, sub);
  }

  private async evalRelation(s: EvalState, res: ObjectRef, relation: string, subject: SubjectRef, depth: number): Promise<Eval> {
    let best: Eval = DENIED;
    const direct = await this.exact(s, res, relation, subject);
    if (direct) best = and(this.caveat(s, direct), { level: 2 }, formatTuple(rowTuple(direct)));
    if (best.level === 2 && !lapses(best)) return best;
    if (subject.relation === undefined && subject.id !== '*') {
      const wildcard = await this.exact(s, res, relation, { type: subject.type, id: '*' });
      if (wildcard) best = union(best, and(this.caveat(s, wildcard), { level: 2 }, formatTuple(rowTuple(wildcard))));
      if (best.level === 2 && !lapses(best)) return best;
    }
    if (relation === this.parentRelation && subject.relation === undefined && s.implicit) {
      if (s.implicit(res).some((p) => p.type === subject.type && p.id === subject.id)) return { level: 2, path: [`${formatObject(res)}#${relation}@${formatSubject(subject)} (implicit)`] };
    }
    const closure = subject.relation === undefined ? await this.closure(s, subject) : undefined;
    if (closure) this.expiresAt(s, closure.until);
    for (const row of await this.rows(s, res, relation, 'usersets')) {
      if (closure) {
        const userset = `${row.subject_type}:${row.subject_id}#${row.subject_relation}`;
        // The reverse index knows membership, not how long it lasts: with an expiry in sight, evaluate forward.
        if (closure.plain.has(userset) && row.caveat_name === null && row.expires_at === null && closure.until === Infinity) {
          return { level: 2, path: [formatTuple(rowTuple(row)), `${formatSubject(subject)} in ${userset} (reverse index)`] };
        }
        if (!closure.plain.has(userset) && !closure.caveated.has(userset)) continue;
      }
      const sub = await this.evalName(s, { type: row.subject_type, id: row.subject_id }, row.subject_relation, subject, depth + 1);
      if (sub.level === 0 && !sub.provisional && !sub.reason) continue;
      best = union(best, and(this.caveat(s, row), sub, formatTuple(rowTuple(row))));
      if (best.level === 2 && !lapses(best)) break;
    }
    return best;
  }

  /** A row's own condition: its caveat, and its expiry as the lapse of whatever it grants. */
  private caveat(s: EvalState, row: TupleRow): Eval {
    const outcome = this.caveatOutcome(s, row);
    return row.expires_at === null || outcome.level === 0 ? outcome : { ...outcome, holdsUntil: row.expires_at };
  }

  private caveatOutcome(s: EvalState, row: TupleRow): Eval {
    if (row.caveat_name === null) return { level: 2 };
    const compiled = s.schema.caveats.get(row.caveat_name);
    if (!compiled || compiled.hash !== row.caveat_hash) return { level: 0, reason: 'invalid caveat hash' };
    const tupleContext = row.caveat_context === null ? {} : (JSON.parse(row.caveat_context) as Record<string, unknown>);
    // SpiceDB's rule: the tuple's own context wins; tuples may not set the request's facts (now, client_ip) at all.
    const outcome: CaveatOutcome = compiled.evaluate({ ...s.context, ...tupleContext });
    if (outcome.result === 'conditional') return { level: 1, missing: outcome.missing, contextual: true };
    return { level: outcome.result === 'allowed' ? 2 : 0, reason: outcome.reason, contextual: true };
  }

  /** All tuples of a resource (one indexed range, cached per revision), or undefined when it has too many to hold. */
  private async resourceRows(s: EvalState, res: ObjectRef): Promise<TupleRow[] | undefined> {
    const page = s.prefetch;
    if (page?.type === res.type && compareUtf8(res.id, page.from) >= 0 && compareUtf8(res.id, page.to) <= 0) return page.rows.get(res.id) ?? [];
    const key = `${s.tenant}\u0000${s.revision}\u0000${res.type}:${res.id}`;
    let rows = this.rowsCache.get(key);
    if (rows === undefined) {
      const found = await s.reader.resource(s.tenant, res, SMALL_RESOURCE + 1);
      rows = found.length > SMALL_RESOURCE ? false : found;
      this.rowsCache.set(key, rows);
    }
    return rows === false ? undefined : rows;
  }

  private async exact(s: EvalState, res: ObjectRef, relation: string, subject: SubjectRef): Promise<TupleRow | undefined> {
    const rows = await this.resourceRows(s, res);
    if (!rows) return this.liveRow(s, await s.reader.exact(s.tenant, res, relation, subject));
    const srel = subject.relation ?? '';
    return this.liveRow(s, rows.find((r) => r.relation === relation && r.subject_type === subject.type && r.subject_id === subject.id && r.subject_relation === srel));
  }

  /** The live tuples of (resource, relation) whose subjects are usersets, objects, or either (`all`). */
  private async rows(s: EvalState, res: ObjectRef, relation: string, which: 'usersets' | 'objects' | 'all'): Promise<TupleRow[]> {
    const rows = await this.resourceRows(s, res);
    if (!rows) {
      const r = s.reader;
      const read = await (which === 'usersets' ? r.usersets(s.tenant, res, relation) : which === 'objects' ? r.objects(s.tenant, res, relation) : r.relationRows(s.tenant, res, relation));
      return this.live(s, read);
    }
    return this.live(s, rows.filter((r) => r.relation === relation && (which === 'all' || (which === 'usersets') === (r.subject_relation !== ''))));
  }

  /**
   * The subject objects an arrow over `relation` walks: every live tuple's subject object, a userset's too (SpiceDB
   * ignores the subject relation here), plus the implicit parents. Wildcards are never walked (schemas may not
   * allow them on arrow relations).
   */
  private async arrowBases(s: EvalState, res: ObjectRef, relation: string): Promise<ArrowBase[]> {
    const bases: ArrowBase[] = (await this.rows(s, res, relation, 'all'))
      .filter((r) => r.subject_id !== '*')
      .map((row) => ({ object: { type: row.subject_type, id: row.subject_id }, row }));
    if (relation === this.parentRelation && s.implicit) for (const object of s.implicit(res)) bases.push({ object });
    return bases;
  }

  /**
   * Walks up from a subject through the reverse index: the usersets it is in (directly, via `type:*`, and through
   * nested usersets). Usable only when every userset subject type in the schema names a relation (not a permission)
   * other than the implicit parent relation, since then membership is made of tuples alone; undefined otherwise.
   */
  private async closure(s: EvalState, subject: SubjectRef): Promise<Closure | undefined> {
    const key = `${subject.type}:${subject.id}`;
    if (s.closures.has(key)) return s.closures.get(key);
    const cacheKey = `${s.tenant}\u0000${s.revision}\u0000closure\u0000${key}`;
    let closure = this.closureCache.get(cacheKey);
    if (closure === undefined || (closure !== false && closure.until <= s.now)) {
      closure = (await this.walkUp(s, subject)) ?? false;
      this.closureCache.set(cacheKey, closure);
    }
    const usable = closure === false ? undefined : closure;
    s.closures.set(key, usable);
    return usable;
  }

  private async walkUp(s: EvalState, subject: SubjectRef): Promise<Closure | undefined> {
    const targets = usersetTargets(s.schema, this.parentRelation);
    if (!targets) return undefined;
    const closure: Closure = { plain: new Set(), caveated: new Set(), until: Infinity };
    let frontier: Array<{ subject: SubjectRef; caveated: boolean }> = [{ subject, caveated: false }, { subject: { type: subject.type, id: '*' }, caveated: false }];
    for (let depth = 0; frontier.length > 0; depth++) {
      if (depth > this.maxDepth) return undefined;
      const next: typeof frontier = [];
      for (const f of frontier) {
        for (const row of await s.reader.memberships(s.tenant, f.subject, targets)) {
          if (row.expires_at !== null) {
            if (expired(row, s.now)) continue;
            closure.until = Math.min(closure.until, row.expires_at);
          }
          const userset = `${row.resource_type}:${row.resource_id}#${row.relation}`;
          const caveated = f.caveated || row.caveat_name !== null;
          if (closure.plain.has(userset) || (caveated && closure.caveated.has(userset))) continue;
          (caveated ? closure.caveated : closure.plain).add(userset);
          if (closure.plain.size + closure.caveated.size > CLOSURE_LIMIT) return undefined;
          next.push({ subject: { type: row.resource_type, id: row.resource_id, relation: row.relation }, caveated });
        }
      }
      frontier = next;
    }
    for (const u of closure.plain) closure.caveated.delete(u);
    return closure;
  }

  /** Loads every tuple of `type` with ids in [from, to] into the state, so a page of checks costs one range query. */
  async prefetch(state: EvalState, type: string, from: string, to: string): Promise<void> {
    const rows = new Map<string, TupleRow[]>();
    for (const row of await state.reader.range(state.tenant, type, from, to)) {
      const list = rows.get(row.resource_id);
      if (list) list.push(row);
      else rows.set(row.resource_id, [row]);
    }
    state.prefetch = { type, from, to, rows };
  }

  /**
   * The ids (of `type`) the subject holds `name` on, in the given order: exactly the per-key answers (`evaluate`),
   * with conditional ones left out. One range query reads the page's tuples; keys with no tuple that matters to the
   * subject and the same implicit parents share one evaluation (page-filter.ts says when that is exact).
   */
  async filterPage(s: EvalState, type: string, ids: string[], name: string, subject: SubjectRef): Promise<string[]> {
    if (ids.length === 0) return [];
    if (ids.length > 4) {
      const { from, to } = idRange(ids);
      await this.prefetch(s, type, from, to);
    }
    const tuplesets = s.prefetch && subject.type !== type ? shareableTuplesets(s.schema, type) : undefined;
    const closure = tuplesets && subject.relation === undefined ? await this.closure(s, subject) : undefined;
    const shape: PageShape | undefined = tuplesets && { tuplesets, subject, closure };
    const types = this.recording(s.implicit)?.types;
    const shared = new Map<string, boolean>();
    const allowed: string[] = [];
    for (const id of ids) {
      const res = { type, id };
      let key: string | undefined;
      const rows = s.prefetch?.rows.get(id);
      if (shape && (rows === undefined || !rows.some((row) => matters(row, shape)))) {
        key = parentsKey(s.implicit?.(res) ?? []);
        const known = shared.get(key);
        if (known !== undefined) {
          if (known) allowed.push(id);
          continue;
        }
      }
      // Allowed exactly when check's result would be 'allowed' (toResult), without building its reason.
      const granted = (await this.evalName(s, res, name, subject, 0)).level === 2;
      // Shared only while no walk has reached a resource of this type through implicit parents.
      if (key !== undefined && !types?.has(type)) shared.set(key, granted);
      if (granted) allowed.push(id);
    }
    return allowed;
  }
}

/** The least and greatest of `ids` in UTF-8 byte order, the order of the range query they bound. */
function idRange(ids: string[]): { from: string; to: string } {
  let from = ids[0] as string;
  let to = from;
  // Below U+D800 code units compare as code points do, so the native comparison is exact: the common case.
  const exact = (id: string) => !SURROGATE_OR_ABOVE.test(id);
  if (ids.every(exact)) {
    for (const id of ids) {
      if (id < from) from = id;
      else if (id > to) to = id;
    }
  } else {
    for (const id of ids) {
      if (compareUtf8(id, from) < 0) from = id;
      else if (compareUtf8(id, to) > 0) to = id;
    }
  }
  return { from, to };
}

const SURROGATE_OR_ABOVE = /[\uD800-\uFFFF]/;

const TARGETS = new WeakMap<CompiledSchema, Set<string> | false>();

/** `type#relation` pairs usersets in the schema point at, or undefined when one of them is a permission. */
function usersetTargets(schema: CompiledSchema, parentRelation: string): Set<string> | undefined {
  let targets = TARGETS.get(schema);
  if (targets === undefined) {
    targets = new Set<string>();
    for (const def of schema.definitions.values()) {
      for (const allowed of def.relations.values()) {
        for (const a of allowed) {
          if (a.relation === undefined) continue;
          const target = schema.definitions.get(a.type);
          if (!target?.relations.has(a.relation) || a.relation === parentRelation) targets = false;
          if (targets) targets.add(`${a.type}#${a.relation}`);
        }
      }
    }
    TARGETS.set(schema, targets);
  }
  return targets === false ? undefined : targets;
}

type Arrow = Extract<PermissionExpr, { kind: 'arrow' }>;
type ArrowBase = { object: ObjectRef; row?: TupleRow };

function hasName(schema: CompiledSchema, type: string, name: string): boolean {
  const def = schema.definitions.get(type);
  return def !== undefined && (def.relations.has(name) || def.permissions.has(name));
}

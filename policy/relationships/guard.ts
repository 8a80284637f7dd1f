/**
 * The tenant-application write guard: an app with tuples:write writes only inside its tenant, only the namespaces and
 * relations its scope names, never schemas or caveats, and never a tuple that would enlarge its own authority.
 */

import { DeniedError } from '../errors.ts';
import type { EvalState, RelationshipEngine } from './engine.ts';
import { leaves } from './schema.ts';
import type { PermissionExpr } from './schema-parser.ts';
import type { WriteOptions } from './store.ts';
import { expiresAt, formatSubject, formatTuple, parseSubject, type ObjectRef, type SubjectRef, type Tuple } from './tuples.ts';
import type { ScopeGrant } from '../types.ts';

/** Where a relationship resource lies in S3 terms: object `b/k`, folder `b/p/`, bucket `b`. */
export interface ResourceLocation {
  bucket: string;
  key: string;
}

/**
 * The S3 location of a resource of the S3 types (object, folder, bucket), or undefined for every other type (groups,
 * users, an application's own types), which lie at the level of the whole tenant.
 */
export function resourceLocation(resource: ObjectRef): ResourceLocation | undefined {
  if (resource.type === 'bucket') return { bucket: resource.id, key: '' };
  if (resource.type !== 'object' && resource.type !== 'folder') return undefined;
  const slash = resource.id.indexOf('/');
  if (slash <= 0) return resource.type === 'folder' ? { bucket: resource.id, key: '' } : undefined;
  return { bucket: resource.id.slice(0, slash), key: resource.id.slice(slash + 1) };
}

/**
 * Whether a grant reaches a relationship resource: an S3 resource lies in the grant's bucket under its prefix (one
 * exact key reaches only that object); any other resource only a grant on every bucket (`*`) without a prefix.
 */
export function grantReaches(grant: ScopeGrant, resource: ObjectRef): boolean {
  const at = resourceLocation(resource);
  if (at === undefined) return grant.bucket === '*' && !grant.prefix && !grant.exact;
  if (grant.bucket !== '*' && grant.bucket !== at.bucket) return false;
  if (grant.exact) return resource.type === 'object' && at.key === grant.prefix;
  return at.key.startsWith(grant.prefix ?? '');
}

/** What a tenant application may write; the gateway builds it from the credential's scope. */
export interface AppScope {
  tenant: string;
  /** The writer as a subject, e.g. `app:AKIA…`. */
  writer: SubjectRef | string;
  /**
   * Subjects whose authority bounds the writer's (a web-identity session's provider registrar, a credential's makers
   * without tenant-wide authority): every rule below applies to each of them as to the writer, so the batch hands out
   * and enlarges nothing any of them lacks.
   */
  boundedBy?: Array<SubjectRef | string>;
  /** Resource types it may write; absent means any. */
  namespaces?: string[];
  /** Relations it may write; absent means any. */
  relations?: string[];
  /**
   * The grants it writes under (tuples:write or admin): each tuple's resource must be reached by one of them, whose
   * own namespaces and relations also allow it. Absent: no location limit.
   */
  grants?: ScopeGrant[];
}

/** A batch as a guard sees it: each update with its tuple parsed. */
type GuardUpdates = Parameters<NonNullable<WriteOptions['guard']>>[0];

const refuse = (reason: string): never => {
  throw new DeniedError('relationship', reason);
};

/**
 * The store guard for an application's batch. Refused: a tuple whose resource no grant of the writer reaches (or whose
 * namespace or relation that grant does not name); a tuple conferring a permission the writer does not hold itself on
 * its resource (nobody hands out what they cannot use: writing a relation needs every permission it feeds, deleting
 * from the excluded side of `-` every permission that exclusion guards); a subject that is the writer, a userset the
 * writer is (transitively, or conditionally) in, a wildcard of the writer's type, an object the writer holds anything
 * on when written into a relation arrows walk (linking a resource under something the writer controls), and deleting
 * the writer out of a relation used on the excluded side of `-`. Authority that lapses bounds what it hands out: when
 * the writer holds a permission the tuple confers only through expiring tuples (the latest-expiring granting path
 * counts; one that never expires wins), the tuple must carry an expiration no later than that instant (it is refused,
 * naming the instant, never silently capped), and a delete that lifts an exclusion, which lasts for good, is refused.
 */
export function appWriteGuard(engine: RelationshipEngine, tenant: string, scope: AppScope): NonNullable<WriteOptions['guard']> {
  const writers = guardedWriters(tenant, scope);
  return (updates, write) => engine.session(tenant, { write }, (state) => guardAll({ engine, state, writers, scope, updates }));
}

/**
 * Why appWriteGuard would refuse `updates` for `scope` against the tenant as it stands now (its reason), or
 * undefined when it would let them through: the access audit's second look at tuples written long ago (policy
 * tuple-writers.ts). Nothing is written. Other errors (a tenant without a schema aside, which passes) are thrown.
 */
export async function guardRefusal(engine: RelationshipEngine, tenant: string, scope: AppScope, updates: GuardUpdates): Promise<string | undefined> {
  try {
    const writers = guardedWriters(tenant, scope);
    await engine.session(tenant, {}, (state) => guardAll({ engine, state, writers, scope, updates }));
    return undefined;
  } catch (error) {
    if (error instanceof DeniedError) return error.reason;
    throw error;
  }
}

/** The writer and every subject bounding it; refuses a scope of another tenant. */
function guardedWriters(tenant: string, scope: AppScope): SubjectRef[] {
  if (scope.tenant !== tenant) refuse(`applications of tenant ${scope.tenant} cannot write tuples of tenant ${tenant}`);
  return [scope.writer, ...(scope.boundedBy ?? [])].map((w) => (typeof w === 'string' ? parseSubject(w) : w));
}

/** Every check of appWriteGuard, for the writer and then each subject bounding it. */
async function guardAll(g: { engine: RelationshipEngine; state: EvalState | undefined; writers: SubjectRef[]; scope: AppScope; updates: GuardUpdates }): Promise<void> {
  const { engine, state, writers, scope, updates } = g;
  if (!state) return;
  for (const [i, writer] of writers.entries()) {
    await guardOne({ engine, state, schema: state.schema, updates, writer, scope, who: i === 0 ? 'the writer' : `${formatSubject(writer)} (which bounds the writer)` });
  }
}

/** The checks of appWriteGuard for one writer (the writer itself, or a subject bounding it). */
async function guardOne(g: {
  engine: RelationshipEngine;
  state: EvalState;
  /** The schema the batch is written against. */
  schema: EvalState['schema'];
  updates: GuardUpdates;
  writer: SubjectRef;
  scope: AppScope;
  who: string;
}): Promise<void> {
  const { engine, state, schema, updates, writer, scope, who } = g;
  const covers = async (subject: SubjectRef): Promise<boolean> => {
    if (subject.relation === undefined) return subject.type === writer.type && (subject.id === writer.id || subject.id === '*');
    return (await engine.evaluate(state, { type: subject.type, id: subject.id }, subject.relation, writer)).result !== 'denied';
  };
  for (const { op, tuple } of updates) {
    const label = formatTuple(tuple);
    if (scope.namespaces && !scope.namespaces.includes(tuple.resource.type)) refuse(`${label}: namespace ${tuple.resource.type} is outside the application's scope`);
    if (scope.relations && !scope.relations.includes(tuple.relation)) refuse(`${label}: relation ${tuple.relation} is outside the application's scope`);
    if (scope.grants) {
      const reaching = scope.grants.filter((gr) => grantReaches(gr, tuple.resource));
      const inNamespace = reaching.filter((gr) => namesAllow(gr.namespaces, tuple.resource.type));
      if (reaching.length === 0) refuse(`${label}: ${tuple.resource.type}:${tuple.resource.id} is outside the buckets and prefixes of the writer's grants`);
      if (inNamespace.length === 0) refuse(`${label}: namespace ${tuple.resource.type} is outside the application's scope`);
      if (!inNamespace.some((gr) => namesAllow(gr.relations, tuple.relation))) refuse(`${label}: relation ${tuple.relation} is outside the application's scope`);
    }
    const def = schema.definitions.get(tuple.resource.type);
    const exprs = [...(def?.permissions.values() ?? [])];
    const fed = def ? dependents(def.permissions, tuple.relation) : { positive: [], negative: [] };
    const on = `${tuple.resource.type}:${tuple.resource.id}`;
    /** Requires each permission held; the instant the first of them lapses for the writer (undefined: none lapses). */
    const requireHeld = async (needed: string[]): Promise<{ name: string; at: number } | undefined> => {
      let bound: { name: string; at: number } | undefined;
      for (const name of needed) {
        const held = await engine.evaluate(state, tuple.resource, name, writer);
        if (held.result !== 'allowed') refuse(`${label}: ${who} does not hold ${name} on ${on} itself`);
        if (held.holdsUntil !== undefined && (bound === undefined || held.holdsUntil < bound.at)) bound = { name, at: held.holdsUntil };
      }
      return bound;
    };
    if (op === 'delete') {
      if (exprs.some((e) => excludedRefs(e).includes(tuple.relation)) && (await covers(tuple.subject))) refuse(`${label}: deleting it would lift an exclusion on ${who}`);
      const lapsing = await requireHeld(fed.negative);
      if (lapsing) refuse(`${label}: deleting it lifts an exclusion for good, but ${who} holds ${lapsing.name} on ${on} only until ${new Date(lapsing.at).toISOString()}`);
      continue;
    }
    if (await covers(tuple.subject)) {
      const whose = who === 'the writer' ? "the writer's own authority" : `the authority of ${who}`;
      // A relation this definition only subtracts narrows here, but may still widen a permission elsewhere that
      // subtracts one built on it, so it is refused all the same, saying why.
      if (fed.positive.length === 0 && fed.negative.length > 0) refuse(`${label}: its subject covers ${who}, and no tuple about ${whose} is written through the relationship API, even one that only narrows it`);
      refuse(`${label}: would enlarge ${whose}`);
    }
    const arrowBase = exprs.some((e) => leaves(e).some((l) => l.kind === 'arrow' && l.relation === tuple.relation));
    // Arrows walk userset subjects as their objects too (SpiceDB), so a userset is linking just as an object is.
    if (arrowBase && tuple.subject.id !== '*' && (await holdsAnything(engine, state, tuple, writer))) {
      refuse(`${label}: links a resource under ${tuple.subject.type}:${tuple.subject.id}, on which ${who} holds authority`);
    }
    const lapsing = await requireHeld(fed.positive.length > 0 ? fed.positive : [tuple.relation]);
    const expiry = expiresAt(tuple);
    if (lapsing && (expiry === null || expiry > lapsing.at)) {
      const until = new Date(lapsing.at).toISOString();
      refuse(`${label}: ${who} holds ${lapsing.name} on ${on} only until ${until}, so the tuple must expire no later ([expiration:${until}] or earlier)`);
    }
  }
}

async function holdsAnything(engine: RelationshipEngine, state: EvalState, tuple: Tuple, writer: SubjectRef): Promise<boolean> {
  const def = state.schema.definitions.get(tuple.subject.type);
  if (!def) return false;
  for (const n of [...def.relations.keys(), ...def.permissions.keys()]) {
    if ((await engine.evaluate(state, { type: tuple.subject.type, id: tuple.subject.id }, n, writer)).result !== 'denied') return true;
  }
  return false;
}

function namesAllow(names: string[] | undefined, name: string): boolean {
  return names === undefined || names.includes(name);
}

/** The names an expression mentions (refs, and the base relation of arrows), each with +1 or −1 for excluded. */
function mentions(e: PermissionExpr, sign: 1 | -1, out: Array<[string, 1 | -1]>): Array<[string, 1 | -1]> {
  if (e.kind === 'ref') out.push([e.name, sign]);
  else if (e.kind === 'arrow') {
    out.push([e.relation, sign]);
    // Under `.all()` one more tuple can also take the permission away, and deleting one can grant it.
    if (e.all) out.push([e.relation, sign === 1 ? -1 : 1]);
  }
  else if (e.kind === 'exclusion') {
    mentions(e.left, sign, out);
    mentions(e.right, sign === 1 ? -1 : 1, out);
  } else if (e.kind === 'union' || e.kind === 'intersection') {
    mentions(e.left, sign, out);
    mentions(e.right, sign, out);
  }
  return out;
}

/**
 * The permissions of one definition a relation feeds, through other permissions of the same definition: positive
 * (a tuple in it can grant them) and negative (a tuple in it can take them away, via the excluded side of `-`).
 */
export function dependents(permissions: Map<string, PermissionExpr>, relation: string): { positive: string[]; negative: string[] } {
  const direct = new Map([...permissions].map(([name, expr]) => [name, mentions(expr, 1, [])] as const));
  const positive = new Set<string>();
  const negative = new Set<string>();
  let changed = true;
  while (changed) {
    changed = false;
    for (const [perm, refs] of direct) {
      for (const [name, sign] of refs) {
        const signs: Array<1 | -1> = [];
        if (name === relation) signs.push(sign);
        if (positive.has(name)) signs.push(sign);
        if (negative.has(name)) signs.push(sign === 1 ? -1 : 1);
        for (const s of signs) {
          const set = s === 1 ? positive : negative;
          if (!set.has(perm)) {
            set.add(perm);
            changed = true;
          }
        }
      }
    }
  }
  return { positive: [...positive].sort(), negative: [...negative].sort() };
}

function excludedRefs(e: PermissionExpr): string[] {
  if (e.kind === 'exclusion') return [...excludedRefs(e.left), ...leaves(e.right).map((l) => (l.kind === 'ref' ? l.name : l.relation))];
  if (e.kind === 'union' || e.kind === 'intersection') return [...excludedRefs(e.left), ...excludedRefs(e.right)];
  return [];
}

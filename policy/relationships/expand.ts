/**
 * Expand: every subject that holds a relation or permission, and through which relations it was found, as SpiceDB's
 * recursive expansion computes it for validation files' expected relations (internal/graph/expand.go and
 * internal/developmentmembership in SpiceDB; https://authzed.com/docs/spicedb/modeling/developing-a-schema
 * #expected-relations). A found subject is a plain subject (`user:amy`), a userset (`group:eng#member`) or a
 * wildcard (`user:*`, with the subjects excluded from it); it is caveated (`[...]`) when any caveat lies on its way.
 * A development tool: it reads every tuple it walks, so it is not used on the request path.
 */

import type { ImplicitParents } from './engine.ts';
import type { CompiledSchema } from './schema.ts';
import type { PermissionExpr } from './schema-parser.ts';
import type { TupleReader } from './store-reads.ts';
import { expired, type TupleRow } from './store-schema.ts';
import { formatObject, formatSubject, type ObjectRef } from './tuples.ts';

/** One subject found by an expansion. */
export interface FoundSubject {
  /** `user:amy`, `group:eng#member` or `user:*`. */
  subject: string;
  /** The `type:id#relation` where tuples naming this subject were found, e.g. `document:1#viewer`. */
  relationships: Set<string>;
  caveated: boolean;
  /** For a wildcard: the subjects excluded from it, each with whether its exclusion is caveated. */
  excluded: Map<string, boolean>;
}

/** The subjects of an expansion, keyed by subject string. */
export type SubjectSet = Map<string, FoundSubject>;

/** What an expansion reads. */
export interface ExpandSource {
  tenant: string;
  reader: TupleReader;
  schema: CompiledSchema;
  now: number;
  implicitParents?: ImplicitParents;
  parentRelation?: string;
}

const isWildcard = (subject: string): boolean => subject.endsWith(':*');
/** The wildcard a subject falls under: `user:*` for `user:amy`; none for usersets. */
const wildcardOf = (subject: string): string | undefined => (subject.includes('#') ? undefined : `${subject.slice(0, subject.indexOf(':'))}:*`);

function clone(f: FoundSubject): FoundSubject {
  return { subject: f.subject, relationships: new Set(f.relationships), caveated: f.caveated, excluded: new Map(f.excluded) };
}

function joined(a: FoundSubject, b: FoundSubject, caveated: boolean): FoundSubject {
  return { subject: a.subject, relationships: new Set([...a.relationships, ...b.relationships]), caveated, excluded: new Map(a.excluded) };
}

/** Union: a subject in either; caveated only when caveated on both sides; a wildcard excludes what both exclude. */
export function unionSets(a: SubjectSet, b: SubjectSet): SubjectSet {
  const out: SubjectSet = new Map([...a].map(([k, v]) => [k, clone(v)]));
  for (const [key, f] of b) {
    const mine = out.get(key);
    if (!mine) out.set(key, clone(f));
    else {
      const both = joined(mine, f, mine.caveated && f.caveated);
      both.excluded = new Map([...mine.excluded].filter(([x]) => f.excluded.has(x)).map(([x, c]) => [x, c && (f.excluded.get(x) ?? false)]));
      out.set(key, both);
    }
  }
  // A concrete subject added back lifts its uncaveated exclusion from a wildcard.
  for (const f of out.values()) {
    const wild = out.get(wildcardOf(f.subject) ?? '');
    if (wild && !isWildcard(f.subject) && !f.caveated) wild.excluded.delete(f.subject);
  }
  return out;
}

/** Intersection: concrete subjects on both sides (or under the other side's wildcard), wildcards on both sides. */
export function intersectSets(a: SubjectSet, b: SubjectSet): SubjectSet {
  const out: SubjectSet = new Map();
  const meet = (f: FoundSubject, other: SubjectSet): void => {
    const direct = other.get(f.subject);
    if (direct) {
      const both = joined(f, direct, f.caveated || direct.caveated);
      for (const [x, c] of direct.excluded) both.excluded.set(x, c || (both.excluded.get(x) ?? false));
      out.set(f.subject, both);
      return;
    }
    const wild = isWildcard(f.subject) ? undefined : other.get(wildcardOf(f.subject) ?? '');
    if (!wild || (wild.excluded.has(f.subject) && !wild.excluded.get(f.subject))) return;
    const prior = out.get(f.subject);
    const next = joined(f, wild, f.caveated || wild.caveated || wild.excluded.has(f.subject));
    out.set(f.subject, prior ? joined(prior, next, prior.caveated && next.caveated) : next);
  };
  for (const f of a.values()) meet(f, b);
  for (const f of b.values()) if (!isWildcard(f.subject) && !a.has(f.subject)) meet(f, a);
  return out;
}

/** Exclusion: `a` minus `b`; a caveated subtraction leaves the subject caveated; a wildcard gains exclusions. */
export function excludeSets(a: SubjectSet, b: SubjectSet): SubjectSet {
  const out: SubjectSet = new Map();
  for (const f of a.values()) {
    const kept = clone(f);
    if (isWildcard(f.subject)) {
      const other = b.get(f.subject);
      if (other) {
        // `*` minus `* - {x}` leaves exactly the x's, when this side had them.
        if (!other.caveated) {
          for (const [x, c] of other.excluded) if (!f.excluded.has(x)) out.set(x, { subject: x, relationships: new Set(f.relationships), caveated: c || f.caveated, excluded: new Map() });
          continue;
        }
        kept.caveated = true;
      }
      for (const s of b.values()) if (!isWildcard(s.subject) && wildcardOf(s.subject) === f.subject) kept.excluded.set(s.subject, s.caveated || (kept.excluded.get(s.subject) ?? false));
      out.set(f.subject, kept);
      continue;
    }
    const direct = b.get(f.subject);
    const wild = b.get(wildcardOf(f.subject) ?? '');
    // Under b's wildcard unless b excludes it outright; conditionally when either is caveated.
    const exclusion = wild?.excluded.get(f.subject);
    const underWildcard = wild !== undefined && exclusion !== false;
    const surely = (direct !== undefined && !direct.caveated) || (underWildcard && !wild!.caveated && exclusion === undefined);
    if (surely) continue;
    if (direct !== undefined || underWildcard) kept.caveated = true;
    out.set(f.subject, kept);
  }
  return out;
}

function caveatAll(set: SubjectSet): SubjectSet {
  for (const f of set.values()) f.caveated = true;
  return set;
}

/** Expands `name` on `resource`: every subject found, recursively through usersets and arrows. */
export function expand(src: ExpandSource, resource: ObjectRef, name: string): Promise<SubjectSet> {
  return expandName(src, resource, name, new Set());
}

async function liveRows(src: ExpandSource, resource: ObjectRef, relation: string): Promise<TupleRow[]> {
  return (await src.reader.relationRows(src.tenant, resource, relation)).filter((r) => !expired(r, src.now));
}

async function expandName(src: ExpandSource, resource: ObjectRef, name: string, active: Set<string>): Promise<SubjectSet> {
  const onr = `${formatObject(resource)}#${name}`;
  const def = src.schema.definitions.get(resource.type);
  // A cycle adds nothing (SpiceDB stops with max depth exceeded; nothing new can be found on it).
  if (!def || active.has(onr)) return new Map();
  active.add(onr);
  try {
    const expr = def.permissions.get(name);
    if (expr) return expandExpr(src, resource, expr, active);
    if (!def.relations.has(name)) return new Map();
    let out: SubjectSet = new Map();
    const leaf = (subject: string, caveated: boolean): void => {
      const found: FoundSubject = { subject, relationships: new Set([onr]), caveated, excluded: new Map() };
      out = unionSets(out, new Map([[subject, found]]));
    };
    for (const row of await liveRows(src, resource, name)) {
      const subject = formatSubject({ type: row.subject_type, id: row.subject_id, ...(row.subject_relation ? { relation: row.subject_relation } : {}) });
      leaf(subject, row.caveat_name !== null);
      if (row.subject_relation === '') continue;
      const nested = await expandName(src, { type: row.subject_type, id: row.subject_id }, row.subject_relation, active);
      out = unionSets(out, row.caveat_name !== null ? caveatAll(nested) : nested);
    }
    if (name === (src.parentRelation ?? 'parent') && src.implicitParents) {
      for (const parent of src.implicitParents(resource)) leaf(formatObject(parent), false);
    }
    return out;
  } finally {
    active.delete(onr);
  }
}

async function expandExpr(src: ExpandSource, resource: ObjectRef, expr: PermissionExpr, active: Set<string>): Promise<SubjectSet> {
  switch (expr.kind) {
    case 'nil':
      return new Map();
    case 'ref':
      return expandName(src, resource, expr.name, active);
    case 'union':
      return unionSets(await expandExpr(src, resource, expr.left, active), await expandExpr(src, resource, expr.right, active));
    case 'intersection':
      return intersectSets(await expandExpr(src, resource, expr.left, active), await expandExpr(src, resource, expr.right, active));
    case 'exclusion':
      return excludeSets(await expandExpr(src, resource, expr.left, active), await expandExpr(src, resource, expr.right, active));
    case 'arrow': {
      const parts: SubjectSet[] = [];
      const bases = (await liveRows(src, resource, expr.relation))
        .filter((r) => r.subject_id !== '*')
        .map((r) => ({ object: { type: r.subject_type, id: r.subject_id }, caveated: r.caveat_name !== null }));
      if (expr.relation === (src.parentRelation ?? 'parent') && src.implicitParents) {
        for (const object of src.implicitParents(resource)) bases.push({ object, caveated: false });
      }
      for (const base of bases) {
        const found = await expandName(src, base.object, expr.target, active);
        parts.push(base.caveated ? caveatAll(found) : found);
      }
      if (parts.length === 0) return new Map();
      return parts.reduce((acc, p) => (expr.all ? intersectSets(acc, p) : unionSets(acc, p)));
    }
  }
}

/** How SpiceDB prints a found subject in expected relations: `user:amy`, `user:amy[...]`, `user:* - {user:bob}`. */
export function subjectLabel(f: FoundSubject): string {
  const excluded = [...f.excluded].map(([x, c]) => `${x}${c ? '[...]' : ''}`).sort();
  return `${f.subject}${f.caveated ? '[...]' : ''}${excluded.length > 0 ? ` - {${excluded.join(', ')}}` : ''}`;
}

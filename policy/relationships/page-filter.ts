/**
 * What lets a listing decide a page of resources with far fewer evaluations than keys, exactly as per-key checks
 * would: most keys of a filtered page have no tuple that can matter to the caller, and such a key's answer depends
 * only on its implicit parents (its folder), so keys that share them share one evaluation.
 *
 * Why that is exact: evaluating `name` on resource X for subject S reads X's own tuples only in these ways
 * (engine.ts): the exact-subject and `S.type:*` lookups, the userset tuples (of which, when S's reverse-index closure
 * is known, only usersets in it are walked; otherwise all), and every tuple of a relation some arrow of X's type walks
 * (`rel->p`, `rel.all(p)`). A tuple that is none of these ("irrelevant") is skipped by every step, whatever its caveat
 * or expiry. So two resources X, Y of type T with no relevant tuple and the same implicit parents evaluate alike,
 * step for step, provided the walk from X never reaches another resource of type T (which could be Y): no relation of
 * the schema may take T as a subject type (then no tuple leads to a T), implicit parents must never have yielded a T
 * (the engine records every type they return), and S itself is not of type T (S = X is a check of its own).
 */

import type { CompiledSchema } from './schema.ts';
import type { PermissionExpr } from './schema-parser.ts';
import type { TupleRow } from './store-schema.ts';
import type { ObjectRef, SubjectRef } from './tuples.ts';

/** How the keys of one page are told apart: which of their tuples can matter to the subject. */
export interface PageShape {
  /** Relations of the type that arrows walk: every tuple of them matters. */
  tuplesets: Set<string>;
  subject: SubjectRef;
  /** The usersets the subject is in (reverse index), or undefined when unknown (then every userset tuple matters). */
  closure?: { plain: Set<string>; caveated: Set<string> };
}

const TUPLESETS = new WeakMap<CompiledSchema, Map<string, Set<string> | false>>();

/**
 * The relations arrows of `type` walk, or undefined when keys of `type` cannot share evaluations at all: the type is
 * unknown, or some relation of the schema takes it as a subject type (a tuple could lead from one key to another).
 */
export function shareableTuplesets(schema: CompiledSchema, type: string): Set<string> | undefined {
  let byType = TUPLESETS.get(schema);
  if (!byType) TUPLESETS.set(schema, (byType = new Map()));
  let found = byType.get(type);
  if (found === undefined) {
    const def = schema.definitions.get(type);
    const isSubject = [...schema.definitions.values()].some((d) => [...d.relations.values()].some((allowed) => allowed.some((a) => a.type === type)));
    found = def === undefined || isSubject ? false : new Set([...def.permissions.values()].flatMap(arrowRelations));
    byType.set(type, found);
  }
  return found === false ? undefined : found;
}

function arrowRelations(expr: PermissionExpr): string[] {
  if (expr.kind === 'arrow') return [expr.relation];
  if (expr.kind === 'union' || expr.kind === 'intersection' || expr.kind === 'exclusion') return [...arrowRelations(expr.left), ...arrowRelations(expr.right)];
  return [];
}

/** Whether a tuple of a page's key can change what evaluating it for the shape's subject decides (see above). */
export function matters(row: TupleRow, shape: PageShape): boolean {
  if (shape.tuplesets.has(row.relation)) return true;
  const { subject, closure } = shape;
  if (row.subject_type === subject.type) {
    if (row.subject_id === subject.id && row.subject_relation === (subject.relation ?? '')) return true;
    if (row.subject_id === '*' && subject.relation === undefined) return true;
  }
  if (row.subject_relation === '') return false;
  if (closure === undefined) return true;
  const userset = `${row.subject_type}:${row.subject_id}#${row.subject_relation}`;
  return closure.plain.has(userset) || closure.caveated.has(userset);
}

/** The key under which keys with no tuple that matters share one evaluation: their implicit parents, unambiguously. */
export function parentsKey(parents: ObjectRef[]): string {
  let key = '';
  for (const p of parents) key += `${p.type}:${p.id.length}:${p.id}\u0000`;
  return key;
}

/**
 * Compares two strings in UTF-8 byte order, the order of the tuples index (SQLite's BINARY, PostgreSQL's COLLATE "C"),
 * which is code point order; JavaScript's `<` compares UTF-16 code units, which puts U+10000 and above before
 * U+E000..U+FFFF. A page's range query and the ids it covers must agree on this.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/** Surrogates (0xD800..0xDFFF) rank above every other code unit, as the code points they encode do. */
function codePointRank(unit: number): number {
  return unit >= 0xd800 ? (unit <= 0xdfff ? unit + 0x2000 : unit - 0x800) : unit;
}

/**
 * schemaDiff: what a proposed schema changes about who can get each permission. For every permission it computes the
 * relations that can grant it (positive positions: both sides of `+` and `&`, the left of `-`, through arrows) and the
 * subject types that can reach it (through usersets, transitively), and compares proposed with deployed. A subject
 * type that gains a restriction (`user` → `user with expiration`, `user with c` → `user with c and expiration`)
 * narrows; losing one widens. `rel->p` becoming `rel.all(p)` narrows (every subject must hold p, not one), the
 * reverse widens, flipped under the right side of `-`, and followed through the permissions and arrows that use it.
 */

import { compileSchema, subjectTypeLabel, type CompiledSchema } from './schema.ts';
import type { AllowedSubject, PermissionExpr } from './schema-parser.ts';

/** What can grant one permission. */
export interface PermissionReach {
  /** `type#relation` leaves that can grant it, e.g. `bucket#owner`. */
  grantedBy: string[];
  /** Subject types that can end up holding it: `user`, `user:*`, `app`, `group#member`, `user with ip_allowlist`. */
  subjectTypes: string[];
}

/** One permission's change. */
export interface PermissionDiff extends PermissionReach {
  permission: string;
  change: 'added' | 'removed' | 'widened' | 'narrowed' | 'changed' | 'unchanged';
  grantedByAdded: string[];
  grantedByRemoved: string[];
  subjectTypesAdded: string[];
  subjectTypesRemoved: string[];
}

/** The whole diff; `caveats` lists caveats added, removed or whose definition (hash) changed. */
export interface SchemaDiff {
  permissions: PermissionDiff[];
  caveats: Array<{ name: string; change: 'added' | 'removed' | 'changed' }>;
}

/** Reach of every permission of a schema, keyed `type#permission`. */
export function permissionReach(schema: CompiledSchema): Map<string, PermissionReach> {
  const out = new Map<string, PermissionReach>();
  for (const def of schema.definitions.values()) {
    for (const name of def.permissions.keys()) {
      const relations = new Set<string>();
      collect(schema, def.name, name, relations, new Set());
      const subjects = new Set<string>();
      for (const leaf of relations) subjectsOf(schema, leaf, subjects, new Set());
      out.set(`${def.name}#${name}`, { grantedBy: [...relations].sort(), subjectTypes: [...subjects].sort() });
    }
  }
  return out;
}

function collect(schema: CompiledSchema, type: string, name: string, out: Set<string>, seen: Set<string>): void {
  const key = `${type}#${name}`;
  if (seen.has(key)) return;
  seen.add(key);
  const def = schema.definitions.get(type);
  if (def?.relations.has(name)) out.add(key);
  const expr = def?.permissions.get(name);
  if (!expr || !def) return;
  const walk = (e: PermissionExpr): void => {
    if (e.kind === 'ref') collect(schema, type, e.name, out, seen);
    else if (e.kind === 'arrow') for (const s of def.relations.get(e.relation) ?? []) collect(schema, s.type, e.target, out, seen);
    else if (e.kind === 'union' || e.kind === 'intersection') (walk(e.left), walk(e.right));
    else if (e.kind === 'exclusion') walk(e.left);
  };
  walk(expr);
}

function subjectsOf(schema: CompiledSchema, relationKey: string, out: Set<string>, seen: Set<string>): void {
  if (seen.has(relationKey)) return;
  seen.add(relationKey);
  const [type, relation] = relationKey.split('#') as [string, string];
  for (const s of schema.definitions.get(type)?.relations.get(relation) ?? []) {
    out.add(subjectTypeLabel(s));
    if (s.relation === undefined) continue;
    const nested = new Set<string>();
    collect(schema, s.type, s.relation, nested, new Set());
    for (const leaf of nested) subjectsOf(schema, leaf, out, seen);
  }
}

/** Compares a proposed schema text with the deployed one (absent: nothing deployed). */
export function schemaDiff(proposed: string, deployed?: string): SchemaDiff {
  const next = compileSchema(proposed);
  const prev = deployed === undefined ? undefined : compileSchema(deployed);
  const after = permissionReach(next);
  const before = prev ? permissionReach(prev) : new Map<string, PermissionReach>();
  const shapes = prev ? directions(prev, next) : undefined;
  const permissions: PermissionDiff[] = [];
  for (const key of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const a = before.get(key);
    const b = after.get(key);
    const minus = (x: string[] = [], y: string[] = []): string[] => x.filter((v) => !y.includes(v));
    const diff = {
      grantedByAdded: minus(b?.grantedBy, a?.grantedBy),
      grantedByRemoved: minus(a?.grantedBy, b?.grantedBy),
      subjectTypesAdded: minus(b?.subjectTypes, a?.subjectTypes),
      subjectTypesRemoved: minus(a?.subjectTypes, b?.subjectTypes),
    };
    const [type, name] = key.split('#') as [string, string];
    const shape = a && b && shapes ? shapes(type, name) : 'same';
    const wider = diff.grantedByAdded.length > 0 || diff.subjectTypesAdded.some((l) => !subsumed(l, a?.subjectTypes ?? [])) || shape === 'wider';
    const narrower = diff.grantedByRemoved.length > 0 || diff.subjectTypesRemoved.some((l) => !subsumed(l, b?.subjectTypes ?? [])) || shape === 'narrower';
    const exprChanged = JSON.stringify(prev?.definitions.get(type)?.permissions.get(name)) !== JSON.stringify(next.definitions.get(type)?.permissions.get(name));
    const change = !a ? 'added' : !b ? 'removed' : wider && narrower ? 'changed' : wider ? 'widened' : narrower ? 'narrowed'
      : exprChanged || shape === 'unknown' ? 'changed' : 'unchanged';
    permissions.push({ permission: key, change, grantedBy: (b ?? a)?.grantedBy ?? [], subjectTypes: (b ?? a)?.subjectTypes ?? [], ...diff });
  }
  const caveats: SchemaDiff['caveats'] = [];
  for (const name of new Set([...(prev?.caveats.keys() ?? []), ...next.caveats.keys()])) {
    const a = prev?.caveats.get(name);
    const b = next.caveats.get(name);
    if (!a) caveats.push({ name, change: 'added' });
    else if (!b) caveats.push({ name, change: 'removed' });
    else if (a.hash !== b.hash) caveats.push({ name, change: 'changed' });
  }
  return { permissions, caveats };
}

/** `user with expiration` is subsumed by `user` (and by `user with expiration` itself): it grants no more. */
function subsumed(label: string, others: string[]): boolean {
  const [base, traits] = splitLabel(label);
  return others.some((o) => {
    const [otherBase, otherTraits] = splitLabel(o);
    return otherBase === base && otherTraits.every((t) => traits.includes(t));
  });
}

function splitLabel(label: string): [string, string[]] {
  const at = label.indexOf(' with ');
  return at < 0 ? [label, []] : [label.slice(0, at), label.slice(at + 6).split(' and ')];
}

type Direction = 'same' | 'wider' | 'narrower' | 'unknown';

function combine(a: Direction, b: Direction): Direction {
  if (a === 'same') return b;
  if (b === 'same' || a === b) return a;
  return 'unknown';
}

const flip = (d: Direction): Direction => (d === 'wider' ? 'narrower' : d === 'narrower' ? 'wider' : d);

/**
 * How each permission's definition moved between two schemas, judging only what reach cannot see: arrow functions
 * (any ↔ all) and the same through refs and arrow targets. Anything else structural is 'unknown'.
 */
function directions(prev: CompiledSchema, next: CompiledSchema): (type: string, name: string) => Direction {
  const memo = new Map<string, Direction>();
  const of = (type: string, name: string): Direction => {
    const key = `${type}#${name}`;
    const known = memo.get(key);
    if (known !== undefined) return known;
    memo.set(key, 'same'); // a cycle adds nothing new
    const a = prev.definitions.get(type);
    const b = next.definitions.get(type);
    const ea = a?.permissions.get(name);
    const eb = b?.permissions.get(name);
    let d: Direction = 'same';
    if (ea && eb) d = compare(type, ea, eb);
    else if (ea || eb) d = 'unknown';
    else d = relationDirection(a?.relations.get(name) ?? [], b?.relations.get(name) ?? []);
    memo.set(key, d);
    return d;
  };
  const compare = (type: string, a: PermissionExpr, b: PermissionExpr): Direction => {
    if (a.kind !== b.kind) return 'unknown';
    switch (a.kind) {
      case 'nil':
        return 'same';
      case 'ref':
        return a.name === (b as typeof a).name ? of(type, a.name) : 'unknown';
      case 'arrow': {
        const other = b as typeof a;
        if (a.relation !== other.relation || a.target !== other.target) return 'unknown';
        const fn: Direction = !!a.all === !!other.all ? 'same' : a.all ? 'wider' : 'narrower';
        const types = new Set([...(prev.definitions.get(type)?.relations.get(a.relation) ?? []), ...(next.definitions.get(type)?.relations.get(a.relation) ?? [])].map((s) => s.type));
        return [...types].reduce<Direction>((d, t) => combine(d, of(t, a.target)), fn);
      }
      case 'union':
      case 'intersection':
        return combine(compare(type, a.left, (b as typeof a).left), compare(type, a.right, (b as typeof a).right));
      case 'exclusion':
        return combine(compare(type, a.left, (b as typeof a).left), flip(compare(type, a.right, (b as typeof a).right)));
    }
  };
  return of;
}

/** A relation's own allowed subject types: gaining an unrestricted one widens, losing one narrows. */
function relationDirection(a: AllowedSubject[], b: AllowedSubject[]): Direction {
  const before = a.map(subjectTypeLabel);
  const after = b.map(subjectTypeLabel);
  const wider = after.some((l) => !subsumed(l, before));
  const narrower = before.some((l) => !subsumed(l, after));
  return wider && narrower ? 'unknown' : wider ? 'wider' : narrower ? 'narrower' : 'same';
}

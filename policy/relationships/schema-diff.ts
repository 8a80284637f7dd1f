/**
 * schemaDiff: what a proposed schema changes about who can get each permission. For every permission it computes the
 * relations that can grant it (positive positions: both sides of `+` and `&`, the left of `-`, through arrows) and the
 * subject types that can reach it (through usersets, transitively), and compares proposed with deployed.
 */

import { compileSchema, subjectTypeLabel, type CompiledSchema } from './schema.ts';
import type { PermissionExpr } from './schema-parser.ts';

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
    const added = diff.grantedByAdded.length + diff.subjectTypesAdded.length > 0;
    const removed = diff.grantedByRemoved.length + diff.subjectTypesRemoved.length > 0;
    const [type, name] = key.split('#') as [string, string];
    const exprChanged = JSON.stringify(prev?.definitions.get(type)?.permissions.get(name)) !== JSON.stringify(next.definitions.get(type)?.permissions.get(name));
    const change = !a ? 'added' : !b ? 'removed' : added && removed ? 'changed' : added ? 'widened' : removed ? 'narrowed' : exprChanged ? 'changed' : 'unchanged';
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

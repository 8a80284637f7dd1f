/**
 * A tenant's schema as the engine uses it: parsed, validated the way SpiceDB's type system does (types, relations,
 * arrows, wildcards, caveats, expiration; https://authzed.com/docs/spicedb/concepts/schema) and compiled, plus the
 * ready-made schema for S3 objects. What SpiceDB only warns about (an arrow to a name no subject type has, recursion
 * without a base case) is a warning here too: such a permission simply never grants.
 */

import { compileCaveat, type CompiledCaveat } from './caveats.ts';
import { SchemaValidationError } from './errors.ts';
import { parseSchema, type AllowedSubject, type DefinitionAst, type PermissionExpr } from './schema-parser.ts';

/** A validated schema. */
export interface CompiledSchema {
  text: string;
  definitions: Map<string, DefinitionAst>;
  caveats: Map<string, CompiledCaveat>;
  /** `use expiration` was given, so `with expiration` subject types may exist. */
  useExpiration: boolean;
  /** What SpiceDB's linter would warn about; the schema is accepted. */
  warnings: string[];
}

/**
 * The schema the gateway uses for S3: buckets, folders (`bucket/dir/`) and objects (`bucket/key`), with the
 * hierarchy supplied as implicit `parent` tuples (see s3ParentOf), users, groups and application credentials.
 * Readers and writers may be time-bound (`with expiration`); readers may be bound to client networks
 * (`ip_allowlist`, a list of CIDRs such as `10.0.0.0/8` or `192.0.2.7/32`).
 */
export const DEFAULT_OBJECT_SCHEMA = `use expiration

definition user {}
definition app {}
definition group {
  relation member: user | app | group#member
}
definition bucket {
  relation owner: user | app | group#member
  relation reader: user | app | user:* | group#member | user with ip_allowlist | app with ip_allowlist | user with expiration | app with expiration | group#member with expiration
  relation writer: user | app | group#member | user with expiration | app with expiration | group#member with expiration
  permission write = owner + writer
  permission read = reader + write
  permission delete = owner
}
definition folder {
  relation parent: bucket | folder
  relation owner: user | app | group#member
  relation reader: user | app | user:* | group#member | user with ip_allowlist | app with ip_allowlist | user with expiration | app with expiration | group#member with expiration
  relation writer: user | app | group#member | user with expiration | app with expiration | group#member with expiration
  permission write = owner + writer + parent->write
  permission read = reader + write + parent->read
  permission delete = owner + parent->delete
}
definition object {
  relation parent: folder | bucket
  relation owner: user | app | group#member
  relation reader: user | app | user:* | group#member | user with ip_allowlist | app with ip_allowlist | user with expiration | app with expiration | group#member with expiration
  relation writer: user | app | group#member | user with expiration | app with expiration | group#member with expiration
  permission write = owner + writer + parent->write
  permission read = reader + write + parent->read
  permission delete = owner + parent->delete
}
caveat ip_allowlist(client_ip ipaddress, allowed list<string>) { allowed.exists(cidr, client_ip.in_cidr(cidr)) }
`;

/** Parses and validates a schema text; throws SchemaValidationError listing every problem. */
export function compileSchema(text: string): CompiledSchema {
  const ast = parseSchema(text);
  const errors: string[] = [];
  const warnings: string[] = [];
  const caveats = new Map<string, CompiledCaveat>();
  for (const caveat of ast.caveats.values()) {
    const compiled = compileCaveat(caveat);
    errors.push(...compiled.errors);
    if (compiled.caveat) caveats.set(caveat.name, compiled.caveat);
  }
  const wildcards = wildcardFinder(ast.definitions);
  for (const def of ast.definitions.values()) {
    const where = `line ${def.line}: ${def.name}`;
    for (const [relation, allowed] of def.relations) {
      const seen = new Set<string>();
      for (const subject of allowed) {
        const label = subjectTypeLabel(subject);
        if (seen.has(label)) errors.push(`${where}#${relation}: duplicate allowed subject type "${label}"`);
        seen.add(label);
        const target = ast.definitions.get(subject.type);
        if (!target) errors.push(`${where}#${relation}: unknown type "${subject.type}"`);
        else if (subject.relation !== undefined && !target.relations.has(subject.relation) && !target.permissions.has(subject.relation)) {
          errors.push(`${where}#${relation}: unknown relation "${subject.type}#${subject.relation}"`);
        } else if (subject.relation !== undefined) {
          // SpiceDB: a userset subject type may not bring a wildcard in transitively.
          const via = wildcards(subject.type, subject.relation);
          if (via) errors.push(`${where}#${relation}: "${subject.type}#${subject.relation}" includes wildcard type ${via}; wildcards cannot be included transitively`);
        }
        if (subject.caveat !== undefined && !ast.caveats.has(subject.caveat)) errors.push(`${where}#${relation}: unknown caveat "${subject.caveat}"`);
      }
    }
    for (const [permission, expr] of def.permissions) {
      for (const leaf of leaves(expr)) {
        if (leaf.kind === 'ref' && !def.relations.has(leaf.name) && !def.permissions.has(leaf.name)) {
          errors.push(`${where}#${permission}: unknown relation or permission "${leaf.name}"`);
        } else if (leaf.kind === 'arrow') {
          const base = def.relations.get(leaf.relation);
          const arrow = arrowLabel(leaf);
          if (!base) {
            const what = def.permissions.has(leaf.relation) ? 'is a permission, arrows need a relation' : 'is not a relation';
            errors.push(`${where}#${permission}: arrow over "${leaf.relation}", which ${what}`);
            continue;
          }
          const via = wildcards(def.name, leaf.relation);
          if (via) errors.push(`${where}#${permission}: "${arrow}" walks ${def.name}#${leaf.relation}, which includes wildcard type ${via}; arrows cannot walk wildcards`);
          if (!base.some((s) => hasName(ast.definitions.get(s.type), leaf.target))) {
            warnings.push(`${where}#${permission}: "${arrow}": no subject type of ${leaf.relation} has "${leaf.target}", so it never grants`);
          }
        }
      }
    }
  }
  if (errors.length === 0) {
    for (const name of ungrounded(ast.definitions)) warnings.push(`permission ${name}: recursion without a base case, so it never grants`);
  }
  if (errors.length > 0) throw new SchemaValidationError(errors);
  return { text, definitions: ast.definitions, caveats, useExpiration: ast.useExpiration, warnings };
}

/** How an arrow is written: `rel->perm` or `rel.all(perm)`. */
export function arrowLabel(a: { relation: string; target: string; all?: true }): string {
  return a.all ? `${a.relation}.all(${a.target})` : `${a.relation}->${a.target}`;
}

/**
 * Whether a relation admits a wildcard, directly or through the relations its userset subject types name (SpiceDB's
 * referencesWildcardType); returns the wildcard type (`user:*`) found, memoized per relation.
 */
function wildcardFinder(definitions: Map<string, DefinitionAst>): (type: string, relation: string) => string | undefined {
  const memo = new Map<string, string | undefined>();
  const find = (type: string, relation: string, seen: Set<string>): string | undefined => {
    const key = `${type}#${relation}`;
    if (memo.has(key)) return memo.get(key);
    if (seen.has(key)) return undefined;
    seen.add(key);
    let found: string | undefined;
    for (const s of definitions.get(type)?.relations.get(relation) ?? []) {
      found = s.wildcard ? `${s.type}:*` : s.relation !== undefined ? find(s.type, s.relation, seen) : undefined;
      if (found) break;
    }
    memo.set(key, found);
    return found;
  };
  return (type, relation) => find(type, relation, new Set());
}

function hasName(def: DefinitionAst | undefined, name: string): boolean {
  return def !== undefined && (def.relations.has(name) || def.permissions.has(name));
}

/** The refs and arrows of an expression. */
export function leaves(expr: PermissionExpr): Array<Extract<PermissionExpr, { kind: 'ref' | 'arrow' }>> {
  if (expr.kind === 'ref' || expr.kind === 'arrow') return [expr];
  if (expr.kind === 'nil') return [];
  return [...leaves(expr.left), ...leaves(expr.right)];
}

/**
 * Permissions that can never be granted by any finite set of tuples: a least fixpoint of "grounded" where relations
 * are grounded, unions need one grounded side, intersections both, exclusions their left side, arrows their target.
 */
function ungrounded(definitions: Map<string, DefinitionAst>): string[] {
  const grounded = new Set<string>();
  const isGrounded = (def: DefinitionAst, expr: PermissionExpr): boolean => {
    switch (expr.kind) {
      case 'nil':
        return true;
      case 'ref':
        return def.relations.has(expr.name) || grounded.has(`${def.name}#${expr.name}`);
      case 'arrow':
        return (def.relations.get(expr.relation) ?? []).some((s) => {
          const target = definitions.get(s.type);
          return target !== undefined && (target.relations.has(expr.target) || grounded.has(`${s.type}#${expr.target}`));
        });
      case 'union':
        return isGrounded(def, expr.left) || isGrounded(def, expr.right);
      case 'intersection':
        return isGrounded(def, expr.left) && isGrounded(def, expr.right);
      case 'exclusion':
        return isGrounded(def, expr.left);
    }
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (const def of definitions.values()) {
      for (const [name, expr] of def.permissions) {
        const key = `${def.name}#${name}`;
        if (!grounded.has(key) && isGrounded(def, expr)) {
          grounded.add(key);
          changed = true;
        }
      }
    }
  }
  return [...definitions.values()].flatMap((def) => [...def.permissions.keys()].map((p) => `${def.name}#${p}`)).filter((k) => !grounded.has(k));
}

/**
 * How a subject type is written in allowed-subject lists and diffs: `user`, `user:*`, `group#member`,
 * `user with ip_allowlist`, `user with expiration`, `user with ip_allowlist and expiration`.
 */
export function subjectTypeLabel(s: AllowedSubject): string {
  const base = `${s.type}${s.wildcard ? ':*' : ''}${s.relation !== undefined ? `#${s.relation}` : ''}`;
  const traits = [...(s.caveat ? [s.caveat] : []), ...(s.expiration ? ['expiration'] : [])];
  return traits.length === 0 ? base : `${base} with ${traits.join(' and ')}`;
}

/** A permission or relation name of a type: whether it is a relation, a permission or unknown. */
export function kindOf(schema: CompiledSchema, type: string, name: string): 'relation' | 'permission' | undefined {
  const def = schema.definitions.get(type);
  return def?.relations.has(name) ? 'relation' : def?.permissions.has(name) ? 'permission' : undefined;
}

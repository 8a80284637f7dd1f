/**
 * Parser of SpiceDB's schema language (https://authzed.com/docs/spicedb/concepts/schema): `use expiration`,
 * `definition` blocks of `relation` and `permission` lines, and `caveat` definitions whose CEL body is kept as text
 * for caveats.ts. Definition and caveat names may carry namespace prefixes (`acme/document`). Allowed subjects are
 * `user`, `group#member`, `user:*`, each optionally `with caveat`, `with expiration` or `with caveat and expiration`
 * (https://authzed.com/docs/spicedb/concepts/expiring-relationships). Operator precedence, loosest first: `+`, `-`,
 * `&`, then arrows (`rel->perm`, `rel.any(perm)`, `rel.all(perm)`); all left-associative; parentheses group.
 * Produces syntax only; schema.ts validates meaning. Hand-written: the schema language is the product's own input
 * format and no maintained JavaScript parser of it exists.
 */

import { SchemaValidationError } from './errors.ts';

/**
 * One allowed subject type of a relation: `user`, `group#member`, `user:*`, optionally `with caveat`,
 * `with expiration` or `with caveat and expiration`.
 */
export interface AllowedSubject {
  type: string;
  relation?: string;
  wildcard?: boolean;
  caveat?: string;
  /** Tuples of this shape carry an expiry (and tuples without one do not match it). */
  expiration?: boolean;
}

/**
 * A permission expression. An arrow walks every tuple of `relation` and asks `target` on each tuple's subject
 * object; `all` (from `relation.all(target)`) requires every one of them to hold it, otherwise (`->`, `.any()`) one.
 */
export type PermissionExpr =
  | { kind: 'ref'; name: string }
  | { kind: 'arrow'; relation: string; target: string; all?: true }
  | { kind: 'union' | 'intersection' | 'exclusion'; left: PermissionExpr; right: PermissionExpr }
  | { kind: 'nil' };

/** A parsed `definition`. */
export interface DefinitionAst {
  name: string;
  line: number;
  relations: Map<string, AllowedSubject[]>;
  permissions: Map<string, PermissionExpr>;
}

/** A parsed `caveat`: parameters in declared order and the CEL body as written. */
export interface CaveatAst {
  name: string;
  line: number;
  params: Array<{ name: string; type: string }>;
  expression: string;
}

/** A parsed schema text; `useExpiration` is set by a `use expiration` clause. */
export interface SchemaAst {
  definitions: Map<string, DefinitionAst>;
  caveats: Map<string, CaveatAst>;
  useExpiration: boolean;
}

const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;
const SYMBOLS = ['->', '{', '}', '(', ')', ':', '|', '#', '*', '+', '&', '-', '=', ',', '<', '>', '.'];
/**
 * How deep parentheses may nest in one permission expression, and type arguments in one caveat parameter type
 * (`list<map<…>>`). The parser recurses once per level, so without a bound a hostile schema of a few thousand `(`
 * overflows the stack; 100 levels is far beyond any schema a person writes. SpiceDB bounds its own parser's
 * recursion too (its schema compiler refuses expressions nested beyond a fixed limit).
 */
export const MAX_SCHEMA_NESTING = 100;
/**
 * How many operators (`+`, `-`, `&`) one permission expression may hold. A chain of them is a tree as deep as it is
 * long, and compiling, diffing and checking walk it recursively: 4,000 keeps every walk clear of the stack's end
 * (10,000 overflowed it) and is far beyond a hand-written permission.
 */
export const MAX_PERMISSION_OPERATORS = 4000;
/**
 * SpiceDB's length bounds on names (https://authzed.com/docs/spicedb/concepts/schema, "Identifier Rules": 3–64
 * characters; its API caps a definition name with its namespace prefixes at 128 bytes): a longer name would deploy
 * here and then fail to load in zed or SpiceDB. Only the upper bounds are enforced: SpiceDB's lower bound (3) and
 * lowercase-only rule would refuse schemas this engine has always accepted and stored.
 */
export const MAX_NAME_LENGTH = 64;
/** The longest definition or caveat name with its namespace prefixes (`acme/document`), SpiceDB's 128 bytes. */
export const MAX_QUALIFIED_NAME_LENGTH = 128;
/** Features `use` may enable; SpiceDB names others (e.g. `typechecking`) that this engine does not implement. */
const USE_FEATURES = new Set(['expiration']);

class Cursor {
  pos = 0;
  /** Open parentheses (or `<` of a parameter type) around the current position. */
  nesting = 0;
  /** Operators read so far in the current permission expression. */
  operators = 0;
  constructor(readonly text: string) {}

  line(at = this.pos): number {
    let n = 1;
    for (let i = 0; i < at && i < this.text.length; i++) if (this.text.charCodeAt(i) === 10) n++;
    return n;
  }

  fail(message: string, at = this.pos): never {
    throw new SchemaValidationError([`line ${this.line(at)}: ${message}`]);
  }

  /** Counts one more operator of the current permission; fails naming the line past MAX_PERMISSION_OPERATORS. */
  operator(): void {
    if (++this.operators > MAX_PERMISSION_OPERATORS) this.fail(`permission expression has more than ${MAX_PERMISSION_OPERATORS} operators`);
  }

  /** Enters one more nesting level; fails naming the line past MAX_SCHEMA_NESTING. */
  enter(what: string): void {
    if (++this.nesting > MAX_SCHEMA_NESTING) this.fail(`${what} nested deeper than ${MAX_SCHEMA_NESTING} levels`);
  }

  skip(): void {
    const t = this.text;
    for (;;) {
      while (this.pos < t.length && /\s/.test(t[this.pos] as string)) this.pos++;
      if (t.startsWith('//', this.pos)) {
        const end = t.indexOf('\n', this.pos);
        this.pos = end < 0 ? t.length : end;
      } else if (t.startsWith('/*', this.pos)) {
        const end = t.indexOf('*/', this.pos + 2);
        if (end < 0) this.fail('unterminated comment');
        this.pos = end + 2;
      } else return;
    }
  }

  peek(): string | undefined {
    this.skip();
    if (this.pos >= this.text.length) return undefined;
    IDENT.lastIndex = this.pos;
    const ident = IDENT.exec(this.text);
    if (ident) return ident[0];
    return SYMBOLS.find((s) => this.text.startsWith(s, this.pos)) ?? this.text[this.pos];
  }

  next(): string {
    const token = this.peek();
    if (token === undefined) this.fail('unexpected end of schema');
    this.pos += token.length;
    return token;
  }

  expect(token: string): void {
    const at = this.pos;
    const got = this.next();
    if (got !== token) this.fail(`expected "${token}" but found "${got}"`, at);
  }

  ident(what: string): string {
    this.skip();
    const at = this.pos;
    const got = this.next();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(got)) this.fail(`expected ${what} but found "${got}"`, at);
    return got;
  }

  /** A relation, permission or namespace segment name: an identifier of at most MAX_NAME_LENGTH characters. */
  name(what: string): string {
    this.skip();
    const at = this.pos;
    const got = this.ident(what);
    if (got.length > MAX_NAME_LENGTH) this.fail(`${what} "${got.slice(0, 16)}…" is ${got.length} characters long; SpiceDB allows at most ${MAX_NAME_LENGTH}`, at);
    return got;
  }

  /** A definition or caveat name, with optional namespace prefixes written without spaces: `acme/document`. */
  qualified(what: string): string {
    this.skip();
    const at = this.pos;
    let name = this.name(what);
    while (this.text[this.pos] === '/' && /[A-Za-z_]/.test(this.text[this.pos + 1] ?? '')) {
      this.pos++;
      name += `/${this.name(what)}`;
    }
    if (name.length > MAX_QUALIFIED_NAME_LENGTH) this.fail(`${what} is ${name.length} characters long with its prefixes; SpiceDB allows at most ${MAX_QUALIFIED_NAME_LENGTH}`, at);
    return name;
  }

  /** The raw text up to the `}` closing an already consumed `{`, skipping braces inside CEL string literals. */
  block(): string {
    const start = this.pos;
    let depth = 1;
    for (let i = start; i < this.text.length; i++) {
      const c = this.text[i];
      if (c === '"' || c === "'") {
        for (i++; i < this.text.length && this.text[i] !== c; i++) if (this.text[i] === '\\') i++;
      } else if (c === '{') depth++;
      else if (c === '}' && --depth === 0) {
        this.pos = i + 1;
        return this.text.slice(start, i).trim();
      }
    }
    return this.fail('unterminated caveat body', start);
  }
}

/** Parses a schema text; throws SchemaValidationError naming the line of the first syntax error. */
export function parseSchema(text: string): SchemaAst {
  const c = new Cursor(text);
  const ast: SchemaAst = { definitions: new Map(), caveats: new Map(), useExpiration: false };
  while (c.peek() !== undefined) {
    const at = c.pos;
    const keyword = c.next();
    if (keyword === 'use') {
      const feature = c.ident('a feature name after "use"');
      if (!USE_FEATURES.has(feature)) c.fail(`unsupported feature "use ${feature}" (supported: use expiration)`, at);
      if (ast.definitions.size + ast.caveats.size > 0) c.fail(`"use ${feature}" must come before every definition and caveat`, at);
      ast.useExpiration = true;
    } else if (keyword === 'definition') {
      const def = parseDefinition(c, at, ast.useExpiration);
      if (ast.definitions.has(def.name) || ast.caveats.has(def.name)) c.fail(`duplicate name "${def.name}"`, at);
      ast.definitions.set(def.name, def);
    } else if (keyword === 'caveat') {
      const caveat = parseCaveat(c, at);
      if (ast.definitions.has(caveat.name) || ast.caveats.has(caveat.name)) c.fail(`duplicate name "${caveat.name}"`, at);
      ast.caveats.set(caveat.name, caveat);
    } else c.fail(`expected "use", "definition" or "caveat" but found "${keyword}"`, at);
  }
  return ast;
}

function parseDefinition(c: Cursor, at: number, useExpiration: boolean): DefinitionAst {
  const def: DefinitionAst = { name: c.qualified('a definition name'), line: c.line(at), relations: new Map(), permissions: new Map() };
  c.expect('{');
  for (;;) {
    const start = c.pos;
    const keyword = c.next();
    if (keyword === '}') return def;
    if (keyword !== 'relation' && keyword !== 'permission') c.fail(`expected "relation", "permission" or "}" but found "${keyword}"`, start);
    const name = c.name(`a ${keyword} name`);
    if (def.relations.has(name) || def.permissions.has(name)) c.fail(`duplicate relation or permission "${def.name}#${name}"`, start);
    if (keyword === 'relation') {
      c.expect(':');
      const allowed = [parseAllowed(c, useExpiration)];
      while (c.peek() === '|') {
        c.next();
        allowed.push(parseAllowed(c, useExpiration));
      }
      def.relations.set(name, allowed);
    } else {
      c.expect('=');
      c.operators = 0;
      def.permissions.set(name, parseUnion(c));
    }
  }
}

/**
 * `type`, `type#relation` or `type:*`, then optionally `with caveat`, `with expiration` or `with caveat and
 * expiration`. Without `use expiration`, `expiration` is an ordinary caveat name, as in SpiceDB.
 */
function parseAllowed(c: Cursor, useExpiration: boolean): AllowedSubject {
  const subject: AllowedSubject = { type: c.qualified('a subject type') };
  const next = c.peek();
  if (next === '#') {
    c.next();
    subject.relation = c.ident('a relation name');
  } else if (next === ':') {
    c.next();
    c.expect('*');
    subject.wildcard = true;
  }
  if (c.peek() !== 'with') return subject;
  c.next();
  const name = c.qualified('a caveat name or "expiration"');
  if (useExpiration && name === 'expiration') subject.expiration = true;
  else {
    subject.caveat = name;
    if (c.peek() === 'and') {
      c.next();
      const at = c.pos;
      if (c.ident('"expiration" after "and"') !== 'expiration' || !useExpiration) {
        c.fail(useExpiration ? 'expected "expiration" after "and"' : '"and expiration" needs "use expiration" at the top of the schema', at);
      }
      subject.expiration = true;
    }
  }
  return subject;
}

function parseUnion(c: Cursor): PermissionExpr {
  let left = parseExclusion(c);
  while (c.peek() === '+') {
    c.operator();
    c.next();
    left = { kind: 'union', left, right: parseExclusion(c) };
  }
  return left;
}

function parseExclusion(c: Cursor): PermissionExpr {
  let left = parseIntersection(c);
  while (c.peek() === '-') {
    c.operator();
    c.next();
    left = { kind: 'exclusion', left, right: parseIntersection(c) };
  }
  return left;
}

function parseIntersection(c: Cursor): PermissionExpr {
  let left = parseTerm(c);
  while (c.peek() === '&') {
    c.operator();
    c.next();
    left = { kind: 'intersection', left, right: parseTerm(c) };
  }
  return left;
}

function parseTerm(c: Cursor): PermissionExpr {
  if (c.peek() === '(') {
    c.enter('parentheses');
    c.next();
    const inner = parseUnion(c);
    c.expect(')');
    c.nesting--;
    return inner;
  }
  const name = c.ident('a relation, permission or "("');
  if (name === 'nil') return { kind: 'nil' };
  if (c.peek() === '->') {
    c.next();
    return { kind: 'arrow', relation: name, target: c.ident('a permission name after "->"') };
  }
  if (c.peek() === '.') {
    c.next();
    const at = c.pos;
    const fn = c.ident('"any" or "all" after "."');
    if (fn !== 'any' && fn !== 'all') c.fail(`unknown arrow function "${fn}" (SpiceDB defines .any() and .all())`, at);
    c.expect('(');
    const target = c.ident(`a permission name in .${fn}()`);
    c.expect(')');
    // `.any()` is defined as `->`, so it is stored as one; only `.all()` differs.
    return fn === 'all' ? { kind: 'arrow', relation: name, target, all: true } : { kind: 'arrow', relation: name, target };
  }
  return { kind: 'ref', name };
}

function parseCaveat(c: Cursor, at: number): CaveatAst {
  const caveat: CaveatAst = { name: c.qualified('a caveat name'), line: c.line(at), params: [], expression: '' };
  c.expect('(');
  while (c.peek() !== ')') {
    if (caveat.params.length > 0) c.expect(',');
    const name = c.ident('a parameter name');
    if (caveat.params.some((p) => p.name === name)) c.fail(`duplicate caveat parameter "${name}"`);
    caveat.params.push({ name, type: parseParamType(c) });
  }
  c.expect(')');
  c.expect('{');
  caveat.expression = c.block();
  if (caveat.expression === '') c.fail(`caveat "${caveat.name}" has an empty expression`);
  return caveat;
}

function parseParamType(c: Cursor): string {
  const base = c.ident('a parameter type');
  if (c.peek() !== '<') return base;
  c.enter('type arguments');
  c.next();
  const args = [parseParamType(c)];
  while (c.peek() === ',') {
    c.next();
    args.push(parseParamType(c));
  }
  c.expect('>');
  c.nesting--;
  return `${base}<${args.join(', ')}>`;
}

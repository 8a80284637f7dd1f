/**
 * Tuples and their two wire forms, and their validation against a schema.
 *
 * String form (SpiceDB's, https://authzed.com/docs/spicedb/concepts/relationships, with one extension):
 * `type:id#relation@subject_type:subject_id[#subject_relation]`, then optionally a caveat and then an expiry:
 * `[name]`, `[name:{"json":"object"}]` (SpiceDB's forms, bound to the caveat's current definition when written) or
 * `[name:hash]`, `[name:hash:{"json":"object"}]` (this gateway's form, naming the definition it was written
 * against), followed by `[expiration:2026-12-31T00:00:00Z]` (RFC 3339). E.g. `object:photos/a%20b.jpg#reader@user:
 * amy[ip_allowlist:a07946243f735a2f:{"allowed":["10.0.0.0/8"]}][expiration:2026-12-31T00:00:00Z]`. Ids
 * percent-encode (UTF-8, uppercase hex) `%`, `#`, `@`, `:`, `[`, `]`, `*`, whitespace and control characters;
 * everything else, `/` and non-ASCII letters included, is written raw. A raw `*` as the whole subject id is the
 * wildcard; an escape that decodes to a whole id of `*` (`%2A`, `%2a`) is refused, since no stored id could tell it
 * from the wildcard (and a resource id `*` would read as one to SpiceDB). Relation names are `[A-Za-z_][A-Za-z0-9_]*`; type and caveat names may carry
 * namespace prefixes (`acme/document`).
 * JSON form: `{resource:{type,id}, relation, subject:{type,id,relation?}, caveat?:{name,hash?,context?},
 * expiration?: "RFC 3339"}`, raw ids.
 * A namespace label is data only: a tuple about `bucket:x` creates no bucket and grants nothing outside the engine.
 */

import { REQUEST_CONTEXT_PARAMS } from './caveats.ts';
import { TupleValidationError } from './errors.ts';
import type { CompiledSchema } from './schema.ts';
import { subjectTypeLabel } from './schema.ts';

/** An object: a type (namespace) and an id. */
export interface ObjectRef {
  type: string;
  id: string;
}

/** A subject: an object, a userset (`group:eng#member`) or a wildcard (`user:*`, id `*`). */
export interface SubjectRef extends ObjectRef {
  relation?: string;
}

/**
 * The caveat a tuple carries: its name, the hash of the definition it was written against (absent in SpiceDB's form
 * until a write binds it to the current definition), and fixed context.
 */
export interface CaveatRef {
  name: string;
  hash?: string;
  context?: Record<string, unknown>;
}

/** One relationship; `expiration` (RFC 3339, UTC) is the instant from which it grants nothing. */
export interface Tuple {
  resource: ObjectRef;
  relation: string;
  subject: SubjectRef;
  caveat?: CaveatRef;
  expiration?: string;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const QUALIFIED = /^(?:[A-Za-z_][A-Za-z0-9_]{0,63}\/){0,7}[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const EXPIRATION_SUFFIX = /\[expiration:([^\]]*)\]$/;
// RFC 3339 with a zone, as SpiceDB's tuple parser reads it.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** Normalizes an RFC 3339 instant to UTC (`2026-12-31T00:00:00Z`, milliseconds only when present); throws otherwise. */
export function normalizeExpiration(text: string): string {
  const date = RFC3339.test(text) ? new Date(text) : undefined;
  if (!date || Number.isNaN(date.getTime())) throw new TupleValidationError(`expiration "${text}" must be an RFC 3339 time such as 2026-12-31T00:00:00Z`);
  return date.toISOString().replace('.000Z', 'Z');
}

/** The expiry of a tuple in epoch milliseconds, or null when it never expires. */
export function expiresAt(t: Tuple): number | null {
  return t.expiration === undefined ? null : Date.parse(t.expiration);
}
const ESCAPED = /[%#@:[\]*\s\u0000-\u001f\u007f-\u009f]/gu;
const MAX_ID = 4096;

/** ESCAPED without the global flag: whether an id holds anything to escape at all (most do not). */
const HAS_ESCAPED = new RegExp(ESCAPED.source, 'u');

/** Percent-encodes the characters the string form reserves. */
export function escapeId(id: string): string {
  if (!HAS_ESCAPED.test(id)) return id;
  return id.replace(ESCAPED, (c) => encodeURIComponent(c).replace(/[!'()*]/g, (x) => `%${x.charCodeAt(0).toString(16).toUpperCase()}`));
}

/**
 * Decodes an escaped id; throws on raw reserved characters, bad escapes, and an escape spelling the whole id `*`:
 * the stored form keeps ids raw, where a decoded `*` would be the wildcard (`user:%2A` must never mean `user:*`).
 * Decoded `#`, `@`, `:`, `/`, `[` and `]` stay data: ids are kept in their own column and re-escaped whenever
 * written out, so they never become a relation, a subject, a type or a caveat.
 */
export function unescapeId(text: string): string {
  if (/[#@:[\]*\s]/u.test(text)) throw new TupleValidationError(`id "${text}" has an unescaped reserved character`);
  let id: string;
  try {
    id = decodeURIComponent(text);
  } catch {
    throw new TupleValidationError(`id "${text}" has an invalid percent escape`);
  }
  if (id === '*') throw new TupleValidationError(`id "${text}" decodes to "*", which only the wildcard subject may be (written raw)`);
  return id;
}

/** Formats a subject as `type:id[#relation]`. */
export function formatSubject(s: SubjectRef): string {
  const id = s.id === '*' && s.relation === undefined ? '*' : escapeId(s.id);
  return `${s.type}:${id}${s.relation !== undefined ? `#${s.relation}` : ''}`;
}

/** Formats an object as `type:id`. */
export function formatObject(o: ObjectRef): string {
  return `${o.type}:${escapeId(o.id)}`;
}

/** Parses `type:id[#relation]`, e.g. the Principal subject `app:AKIA…` or `group:eng#member`. */
export function parseSubject(text: string): SubjectRef {
  const colon = text.indexOf(':');
  if (colon < 0) throw new TupleValidationError(`subject "${text}" must be type:id`);
  const type = qualified(text.slice(0, colon), 'subject type');
  const rest = text.slice(colon + 1);
  const hash = rest.indexOf('#');
  const rawId = hash < 0 ? rest : rest.slice(0, hash);
  const id = rawId === '*' ? '*' : checkId(unescapeId(rawId));
  // SpiceDB writes a plain subject's (empty) relation as `...`, the ellipsis.
  if (hash < 0 || rest.slice(hash + 1) === '...') return { type, id };
  if (id === '*') throw new TupleValidationError(`subject "${text}": the wildcard names no userset`);
  return { type, id, relation: name(rest.slice(hash + 1), 'subject relation') };
}

/** Parses the string form (see the file comment). */
export function parseTuple(text: string): Tuple {
  let line = text.trim();
  let expiration: string | undefined;
  const expiry = EXPIRATION_SUFFIX.exec(line);
  if (expiry) {
    expiration = normalizeExpiration(expiry[1] as string);
    line = line.slice(0, expiry.index);
  }
  let main = line;
  let caveat: CaveatRef | undefined;
  const open = line.indexOf('[');
  if (open >= 0) {
    if (!line.endsWith(']')) throw new TupleValidationError('a caveat is written [name], [name:{...}], [name:hash] or [name:hash:{...}], before any [expiration:...]');
    main = line.slice(0, open);
    caveat = parseCaveatRef(line.slice(open + 1, -1));
  }
  const at = main.indexOf('@');
  if (at < 0 || main.indexOf('@', at + 1) >= 0) throw new TupleValidationError(`tuple "${text}" must have exactly one "@"`);
  const left = main.slice(0, at);
  const colon = left.indexOf(':');
  const hash = left.lastIndexOf('#');
  if (colon < 0 || hash < colon) throw new TupleValidationError(`tuple "${text}" must start with type:id#relation`);
  const rawId = left.slice(colon + 1, hash);
  const tuple: Tuple = {
    resource: { type: qualified(left.slice(0, colon), 'resource type'), id: checkId(unescapeId(rawId)) },
    relation: name(left.slice(hash + 1), 'relation'),
    subject: parseSubject(main.slice(at + 1)),
  };
  if (caveat) tuple.caveat = caveat;
  if (expiration !== undefined) tuple.expiration = expiration;
  return tuple;
}

/** `name`, `name:{ctx}` (SpiceDB), `name:hash` or `name:hash:{ctx}`. */
function parseCaveatRef(inner: string): CaveatRef {
  const first = inner.indexOf(':');
  const ref: CaveatRef = { name: qualified(first < 0 ? inner : inner.slice(0, first), 'caveat name') };
  if (first < 0) return ref;
  let rest = inner.slice(first + 1);
  if (!rest.startsWith('{')) {
    const second = rest.indexOf(':');
    ref.hash = second < 0 ? rest : rest.slice(0, second);
    rest = second < 0 ? '' : rest.slice(second + 1);
  }
  if (rest !== '') {
    let context: unknown;
    try {
      context = JSON.parse(rest);
    } catch {
      throw new TupleValidationError('caveat context must be a JSON object');
    }
    ref.context = context as Record<string, unknown>;
  }
  return checkCaveatRef(ref);
}

function checkCaveatRef(ref: CaveatRef): CaveatRef {
  if (ref.hash !== undefined && !/^[0-9a-f]{16}$/.test(ref.hash)) throw new TupleValidationError('caveat hash must be 16 lowercase hex characters');
  const c = ref.context;
  if (c !== undefined && (c === null || typeof c !== 'object' || Array.isArray(c))) throw new TupleValidationError('caveat context must be a JSON object');
  return ref;
}

/** Formats a tuple in the string form; parseTuple(formatTuple(t)) deep-equals t. */
export function formatTuple(t: Tuple): string {
  return format(t, false);
}

/** Formats a tuple exactly as SpiceDB and zed read and write it: the caveat hash is left out. */
export function formatSpiceDbTuple(t: Tuple): string {
  return format(t, true);
}

function format(t: Tuple, spicedb: boolean): string {
  let caveat = '';
  if (t.caveat) {
    const hash = t.caveat.hash !== undefined && !spicedb ? `:${t.caveat.hash}` : '';
    caveat = `[${t.caveat.name}${hash}${t.caveat.context ? `:${JSON.stringify(t.caveat.context)}` : ''}]`;
  }
  const expiration = t.expiration !== undefined ? `[expiration:${t.expiration}]` : '';
  return `${formatObject(t.resource)}#${t.relation}@${formatSubject(t.subject)}${caveat}${expiration}`;
}

/** Reads the JSON form (raw ids), copying only the known fields. */
export function tupleFromJson(value: unknown): Tuple {
  const v = value as { resource?: ObjectRef; relation?: string; subject?: SubjectRef; caveat?: CaveatRef; expiration?: unknown } | null;
  if (typeof v !== 'object' || v === null || typeof v.resource !== 'object' || typeof v.subject !== 'object' || v.resource === null || v.subject === null) {
    throw new TupleValidationError('tuple must be {resource:{type,id}, relation, subject:{type,id,relation?}, caveat?}');
  }
  const str = (x: unknown, what: string): string => {
    if (typeof x !== 'string') throw new TupleValidationError(`${what} must be a string`);
    return x;
  };
  const tuple: Tuple = {
    resource: { type: qualified(str(v.resource.type, 'resource.type'), 'resource type'), id: resourceId(str(v.resource.id, 'resource.id')) },
    relation: name(str(v.relation, 'relation'), 'relation'),
    subject: { type: qualified(str(v.subject.type, 'subject.type'), 'subject type'), id: checkId(str(v.subject.id, 'subject.id')) },
  };
  if (v.subject.relation !== undefined) tuple.subject.relation = name(str(v.subject.relation, 'subject.relation'), 'subject relation');
  if (v.caveat !== undefined) {
    const c = v.caveat as CaveatRef;
    if (typeof c !== 'object' || c === null) throw new TupleValidationError('caveat must be {name, hash?, context?}');
    const ref: CaveatRef = { name: qualified(str(c.name, 'caveat.name'), 'caveat name') };
    if (c.hash !== undefined) ref.hash = str(c.hash, 'caveat.hash');
    if (c.context !== undefined) ref.context = c.context;
    tuple.caveat = checkCaveatRef(ref);
  }
  if (v.expiration !== undefined) tuple.expiration = normalizeExpiration(str(v.expiration, 'expiration'));
  return tuple;
}

/** The JSON form of a tuple. */
export function tupleToJson(t: Tuple): Tuple {
  return structuredClone(t);
}

function name(text: string, what: string): string {
  if (!NAME.test(text)) throw new TupleValidationError(`${what} "${text}" must match [A-Za-z_][A-Za-z0-9_]*`);
  return text;
}

/** A type or caveat name, optionally with namespace prefixes: `acme/document`. */
function qualified(text: string, what: string): string {
  if (!QUALIFIED.test(text)) throw new TupleValidationError(`${what} "${text}" must be a name ([A-Za-z_][A-Za-z0-9_]*), optionally prefixed: acme/name`);
  return text;
}

/** A raw (JSON form) resource id: `*` is refused, as no escape may spell it either (SpiceDB has no resource wildcard). */
function resourceId(id: string): string {
  if (id === '*') throw new TupleValidationError('resource id "*" is refused: the wildcard is a subject only');
  return checkId(id);
}

function checkId(id: string): string {
  if (id.length === 0 || id.length > MAX_ID) throw new TupleValidationError(`ids must be 1-${MAX_ID} characters`);
  return id;
}

/** Why a tuple does not fit the schema, or undefined when it does. */
export function tupleProblem(schema: CompiledSchema, t: Tuple): string | undefined {
  const def = schema.definitions.get(t.resource.type);
  if (!def) return `unknown type "${t.resource.type}"`;
  const allowed = def.relations.get(t.relation);
  if (!allowed) {
    return def.permissions.has(t.relation)
      ? `${t.resource.type}#${t.relation} is a permission; tuples name relations`
      : `unknown relation "${t.resource.type}#${t.relation}"`;
  }
  const s = t.subject;
  const wildcard = s.id === '*' && s.relation === undefined;
  const bases = allowed.filter((a) => a.type === s.type && !!a.wildcard === wildcard && a.relation === s.relation);
  const where = `${t.resource.type}#${t.relation}`;
  if (bases.length === 0) {
    const label = `${s.type}${wildcard ? ':*' : ''}${s.relation !== undefined ? `#${s.relation}` : ''}`;
    return `subject ${label} not allowed on ${where} (allowed: ${allowed.map(subjectTypeLabel).join(' | ')})`;
  }
  // SpiceDB: a tuple with an expiry matches only `with expiration` subject types, and one without only the others.
  const expiring = t.expiration !== undefined;
  const shapes = bases.filter((a) => !!a.expiration === expiring);
  if (shapes.length === 0) return expiring ? `${where} does not allow expiration for ${s.type} (no "with expiration")` : `${where} requires an expiration for ${s.type}`;
  if (!t.caveat) return shapes.some((a) => a.caveat === undefined) ? undefined : `${where} requires a caveat for ${s.type}`;
  if (!shapes.some((a) => a.caveat === t.caveat?.name)) return `caveat ${t.caveat.name} not allowed for ${s.type} on ${where}`;
  const caveat = schema.caveats.get(t.caveat.name);
  if (!caveat) return `unknown caveat "${t.caveat.name}"`;
  if (t.caveat.hash === undefined) return `caveat ${t.caveat.name} names no definition hash`;
  if (caveat.hash !== t.caveat.hash) return 'invalid caveat hash';
  for (const [key, value] of Object.entries(t.caveat.context ?? {})) {
    if ((REQUEST_CONTEXT_PARAMS as readonly string[]).includes(key)) return `caveat context may not set ${key}; the request supplies it`;
    if (!caveat.params.some((p) => p.name === key)) return `caveat ${caveat.name} has no parameter ${key}`;
    try {
      caveat.convert(key, value);
    } catch (error) {
      return `caveat ${caveat.name}: ${(error as Error).message}`;
    }
  }
  return undefined;
}

/**
 * The tuple with its caveat bound to the schema's current definition when it names none (SpiceDB's form); a tuple
 * that already names a hash is returned as is, so a stale hash still fails closed.
 */
export function bindCaveat(schema: CompiledSchema, t: Tuple): Tuple {
  if (!t.caveat || t.caveat.hash !== undefined) return t;
  const hash = schema.caveats.get(t.caveat.name)?.hash;
  return hash === undefined ? t : { ...t, caveat: { ...t.caveat, hash } };
}

/** Throws TupleValidationError when a tuple does not fit the schema. */
export function assertTupleFits(schema: CompiledSchema, t: Tuple): void {
  const problem = tupleProblem(schema, t);
  if (problem !== undefined) throw new TupleValidationError(`${formatTuple(t)}: ${problem}`);
}

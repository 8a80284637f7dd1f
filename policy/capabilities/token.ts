/**
 * Capabilities as macaroon-style HMAC chains: a random id under a root key, then caveats a holder may only append.
 * sig0 = HMAC(rootKey, header), sig_{i+1} = HMAC(sig_i, caveat_i); the string is base64url of the JSON array
 * [version, keyId, id, caveats, sig]. Only the final signature travels, so a holder can add a caveat (narrow) but
 * never remove one, and any other change breaks the chain. Decoding is strict: the string must be exactly the
 * canonical encoding of what it decodes to, so no byte of it can change without the capability changing.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** A JSON value, the element type of a capability's scope. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** One restriction in the chain: scope segments appended, an expiry (epoch seconds), or a subset of actions. */
export type Caveat = { append: JsonValue[] } | { exp: number } | { actions: string[] };

/** What a capability says once its chain has been checked. */
export interface CapabilityContents {
  /** Identifies the capability for revocation. */
  id: string;
  /** Names the root key the chain starts from. */
  keyId: string;
  /** Every appended segment, in order: longer is narrower. */
  scope: JsonValue[];
  /** The earliest expiry of all expiry caveats, if any. */
  expiresAt?: Date;
  /** The intersection of all action caveats; undefined means no action restriction. */
  actions?: string[];
  caveats: Caveat[];
}

/** Why a capability was refused. */
export class CapabilityError extends Error {
  override name = 'CapabilityError';
}

/** The encoding version this module writes and accepts. */
export const CAPABILITY_VERSION = 1;

type Encoded = [number, string, string, Caveat[], string];

/** JSON with object keys sorted, so a caveat's MAC input does not depend on how it was written. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}

function mac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** The first link: binds version, key id and capability id to the root key. */
function headSignature(rootKey: Buffer, keyId: string, id: string): Buffer {
  return mac(rootKey, canonicalJson(['anvil-capability', CAPABILITY_VERSION, keyId, id]));
}

function chain(sig: Buffer, caveats: Caveat[]): Buffer {
  return caveats.reduce((s, caveat) => mac(s, canonicalJson(caveat)), sig);
}

function checkCaveat(caveat: unknown): Caveat {
  if (caveat === null || typeof caveat !== 'object' || Array.isArray(caveat)) throw new CapabilityError('malformed caveat');
  const keys = Object.keys(caveat);
  const c = caveat as Record<string, unknown>;
  if (keys.length !== 1) throw new CapabilityError('malformed caveat');
  if (keys[0] === 'append' && Array.isArray(c.append) && c.append.length > 0) return caveat as Caveat;
  if (keys[0] === 'exp' && typeof c.exp === 'number' && Number.isFinite(c.exp)) return caveat as Caveat;
  if (keys[0] === 'actions' && Array.isArray(c.actions) && c.actions.every((a) => typeof a === 'string')) return caveat as Caveat;
  // Unknown caveats fail closed: a restriction this verifier does not understand must not be ignored.
  throw new CapabilityError(`unknown caveat ${keys[0]}`);
}

function encode(e: Encoded): string {
  return Buffer.from(JSON.stringify(e), 'utf8').toString('base64url');
}

/** Decodes without checking the signature; throws on anything but the exact canonical encoding. */
function decode(cap: string): Encoded {
  if (typeof cap !== 'string' || !/^[A-Za-z0-9_-]+$/.test(cap)) throw new CapabilityError('not a capability');
  const bytes = Buffer.from(cap, 'base64url');
  // base64url has spare bits in its last character; only the one canonical spelling is accepted.
  if (bytes.toString('base64url') !== cap) throw new CapabilityError('not a capability');
  const text = bytes.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CapabilityError('not a capability');
  }
  if (JSON.stringify(value) !== text || Buffer.from(text, 'utf8').compare(bytes) !== 0) throw new CapabilityError('not a capability');
  if (!Array.isArray(value) || value.length !== 5) throw new CapabilityError('not a capability');
  const [version, keyId, id, caveats, sig] = value as unknown[];
  if (version !== CAPABILITY_VERSION) throw new CapabilityError('unsupported capability version');
  if (typeof keyId !== 'string' || typeof id !== 'string' || typeof sig !== 'string' || !Array.isArray(caveats)) {
    throw new CapabilityError('not a capability');
  }
  return [version, keyId, id, caveats.map(checkCaveat), sig];
}

function contentsOf(keyId: string, id: string, caveats: Caveat[]): CapabilityContents {
  const scope: JsonValue[] = [];
  let exp: number | undefined;
  let actions: string[] | undefined;
  for (const c of caveats) {
    if ('append' in c) scope.push(...c.append);
    else if ('exp' in c) exp = exp === undefined ? c.exp : Math.min(exp, c.exp);
    else actions = actions === undefined ? [...new Set(c.actions)] : actions.filter((a) => c.actions.includes(a));
  }
  return { id, keyId, scope, caveats, ...(exp !== undefined ? { expiresAt: new Date(exp * 1000) } : {}), ...(actions ? { actions } : {}) };
}

/** How a holder narrows a capability: more scope segments, an earlier expiry, fewer actions. */
export interface Narrowing {
  append?: JsonValue[];
  expiresAt?: Date | number;
  actions?: string[];
}

function narrowingCaveats(n: Narrowing): Caveat[] {
  const out: Caveat[] = [];
  if (n.append !== undefined && !isJsonValue(n.append)) throw new CapabilityError('append must be a list of JSON values');
  if (n.append !== undefined && n.append.length > 0) out.push({ append: JSON.parse(JSON.stringify(n.append)) as JsonValue[] });
  if (n.expiresAt !== undefined) {
    const ms = n.expiresAt instanceof Date ? n.expiresAt.getTime() : n.expiresAt;
    if (!Number.isFinite(ms)) throw new CapabilityError('invalid expiry');
    out.push({ exp: Math.floor(ms / 1000) });
  }
  if (n.actions !== undefined) out.push({ actions: [...n.actions] });
  return out;
}

const NARROWING_FIELDS: readonly string[] = ['append', 'expiresAt', 'actions'];

/** Whether a value is JSON exactly as given (finite numbers, plain objects): nothing JSON.stringify would change. */
function isJsonValue(value: unknown, depth = 0): value is JsonValue {
  if (depth > 32) return false;
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every((v) => isJsonValue(v, depth + 1));
  if (typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return false;
  return Object.values(value).every((v) => isJsonValue(v, depth + 1));
}

/**
 * The narrowing as given, or CapabilityError: an unknown field (`prefix`, `exp`, `expires`: a typo would otherwise
 * return the capability un-narrowed) or a field of the wrong type is refused, never ignored.
 */
function checkNarrowing(n: unknown): Narrowing {
  if (n === null || typeof n !== 'object' || Array.isArray(n)) throw new CapabilityError('a narrowing is an object of append, expiresAt, actions');
  const fields = n as Record<string, unknown>;
  const unknown = Object.keys(fields).find((k) => !NARROWING_FIELDS.includes(k));
  if (unknown !== undefined) throw new CapabilityError(`unknown narrowing field ${unknown} (expected ${NARROWING_FIELDS.join(', ')})`);
  const { append, expiresAt, actions } = fields;
  if (append !== undefined && !(Array.isArray(append) && isJsonValue(append))) throw new CapabilityError('append must be a list of JSON values');
  if (expiresAt !== undefined && !(expiresAt instanceof Date || typeof expiresAt === 'number')) throw new CapabilityError('expiresAt must be a Date or epoch milliseconds');
  if (actions !== undefined && !(Array.isArray(actions) && actions.every((a) => typeof a === 'string'))) throw new CapabilityError('actions must be a list of strings');
  return fields as Narrowing;
}

/**
 * Narrows a capability offline, without any key: each restriction becomes a caveat chained onto the signature.
 * The result is never broader than the input (it does not check the input's signature). Throws CapabilityError for
 * a narrowing with an unknown or mistyped field, so a misspelt restriction never yields an un-narrowed capability.
 */
export function narrowCapability(cap: string, narrowing: Narrowing): string {
  const [version, keyId, id, caveats, sig] = decode(cap);
  const added = narrowingCaveats(checkNarrowing(narrowing));
  const next = chain(Buffer.from(sig, 'base64url'), added);
  return encode([version, keyId, id, [...caveats, ...added], next.toString('base64url')]);
}

/** The contents of a capability without verifying it: for display only, never for a decision. */
export function inspectCapability(cap: string): CapabilityContents {
  const [, keyId, id, caveats] = decode(cap);
  return contentsOf(keyId, id, caveats);
}

/** Matches any one scope position in an unwrap pattern. */
export const ANY: unique symbol = Symbol('ANY');

/** One position of an unwrap pattern: a literal JSON value or ANY. */
export type PatternElement = JsonValue | typeof ANY;

function sameJson(a: JsonValue, b: JsonValue): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/**
 * Matches a verified scope against a pattern: one element per pattern position, null where the scope stops short
 * (the capability is broader than the pattern needs). Throws on a mismatch or a scope narrower than the pattern.
 */
export function matchScope(scope: readonly JsonValue[], pattern: readonly PatternElement[]): Array<JsonValue | null> {
  if (scope.length > pattern.length) throw new CapabilityError('capability is narrower than the pattern');
  return pattern.map((want, i) => {
    if (i >= scope.length) return null;
    const have = scope[i]!;
    if (want !== ANY && !sameJson(want as JsonValue, have)) throw new CapabilityError(`capability does not match the pattern at position ${i}`);
    return have;
  });
}

/** Root keys by key id: a map, one key (id `default`), or a lookup function. */
export type RootKeys = Record<string, Uint8Array | string> | ((keyId: string) => Uint8Array | string | undefined);

/** The verifier context of createCapabilityService. */
export interface CapabilityServiceOptions {
  /** One root key (key id `default`). */
  rootKey?: Uint8Array | string;
  /** Several root keys by id, for rotation; new capabilities use currentKeyId. */
  rootKeys?: RootKeys;
  currentKeyId?: string;
  /** Clock for expiry checks. */
  now?: () => Date;
  /** Called with each verified capability's id; return true when it is revoked. */
  isRevoked?: (id: string) => boolean;
}

/** Mints, narrows, verifies and unwraps capabilities under the given root keys. */
export interface CapabilityService {
  /** A new capability with `scope` and optional expiry and actions. */
  mint(scope: JsonValue[], options?: { expiresAt?: Date | number; actions?: string[]; keyId?: string; id?: string }): string;
  narrow(cap: string, narrowing: Narrowing): string;
  /** The capability's contents; throws CapabilityError when the chain, key, expiry or revocation says no. */
  verify(cap: string): CapabilityContents;
  /** verify, then matchScope against the pattern: one element per position, null where the scope stops short. */
  unwrapCapability(cap: string, pattern: readonly PatternElement[]): Array<JsonValue | null>;
  /** The same as unwrapCapability. */
  unwrap(cap: string, pattern: readonly PatternElement[]): Array<JsonValue | null>;
}

function keyBytes(key: Uint8Array | string): Buffer {
  const buf = typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key);
  if (buf.length < 16) throw new CapabilityError('a root key must be at least 16 bytes');
  return buf;
}

/** Builds a capability service (the library entry point for application code). */
export function createCapabilityService(options: CapabilityServiceOptions): CapabilityService {
  const lookup = (keyId: string): Buffer | undefined => {
    if (options.rootKeys !== undefined) {
      const found = typeof options.rootKeys === 'function' ? options.rootKeys(keyId) : Object.hasOwn(options.rootKeys, keyId) ? options.rootKeys[keyId] : undefined;
      if (found !== undefined) return keyBytes(found);
    }
    return options.rootKey !== undefined && keyId === 'default' ? keyBytes(options.rootKey) : undefined;
  };
  const now = options.now ?? (() => new Date());
  const currentKeyId = options.currentKeyId ?? 'default';

  const verify = (cap: string): CapabilityContents => {
    const [, keyId, id, caveats, sig] = decode(cap);
    const rootKey = lookup(keyId);
    if (rootKey === undefined) throw new CapabilityError('unknown or retired root key');
    const expected = chain(headSignature(rootKey, keyId, id), caveats);
    const given = Buffer.from(sig, 'base64url');
    if (given.toString('base64url') !== sig) throw new CapabilityError('capability signature does not verify');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new CapabilityError('capability signature does not verify');
    const contents = contentsOf(keyId, id, caveats);
    if (contents.expiresAt !== undefined && contents.expiresAt.getTime() <= now().getTime()) throw new CapabilityError('capability expired');
    if (options.isRevoked?.(id)) throw new CapabilityError('capability revoked');
    return contents;
  };

  const unwrapCapability = (cap: string, pattern: readonly PatternElement[]) => matchScope(verify(cap).scope, pattern);
  return {
    mint(scope, mintOptions = {}) {
      const keyId = mintOptions.keyId ?? currentKeyId;
      const rootKey = lookup(keyId);
      if (rootKey === undefined) throw new CapabilityError(`no root key ${keyId}`);
      const id = mintOptions.id ?? randomBytes(16).toString('base64url');
      const caveats = narrowingCaveats({ append: scope, expiresAt: mintOptions.expiresAt, actions: mintOptions.actions });
      const sig = chain(headSignature(rootKey, keyId, id), caveats);
      return encode([CAPABILITY_VERSION, keyId, id, caveats, sig.toString('base64url')]);
    },
    narrow: narrowCapability,
    verify,
    unwrapCapability,
    unwrap: unwrapCapability,
  };
}

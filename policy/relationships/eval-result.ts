/**
 * The three-valued results the check engine combines (denied, conditional, allowed) and how unions, intersections,
 * caveats and `.all()` arrows combine them, as SpiceDB's check does
 * (https://authzed.com/docs/spicedb/concepts/caveats#issuing-checks).
 */

import { formatObject, type ObjectRef } from './tuples.ts';

/** The answer of a check; `missing` names caveat parameters the context lacked; `path` is the granting chain (explain). */
export interface CheckResult {
  result: 'allowed' | 'denied' | 'conditional';
  reason: string;
  missing?: string[];
  path?: string[];
  /**
   * When allowed or conditional through tuples that expire: the epoch ms at which the latest-expiring granting path
   * lapses. Absent when some granting path never expires.
   */
  holdsUntil?: number;
}

/** 0 denied, 1 conditional, 2 allowed. */
export type Level = 0 | 1 | 2;

/** One step's result inside an evaluation. */
export interface Eval {
  level: Level;
  missing?: string[];
  reason?: string;
  path?: string[];
  /** Depends on request context (a caveat was evaluated). */
  contextual?: boolean;
  /** Cut short by a cycle or the depth limit; not memoized. */
  provisional?: boolean;
  /** Epoch ms at which a tuple it read expires: the result holds only before then. */
  until?: number;
  /**
   * How many nested steps (names evaluated one inside another) the deepest walk below this one took; absent: none.
   * A stored result is reused at depth d only while d + height stays within the depth limit (engine.ts evalName).
   */
  height?: number;
  /**
   * For a granting (or conditional) result: epoch ms at which the latest-expiring path that grants it lapses (the
   * earliest expiry along that path); absent when some path never expires. Unlike `until` (when the answer may
   * change, which a tuple expiring on the excluded side of `-` also does), this bounds only the grant itself.
   */
  holdsUntil?: number;
}

export const DENIED: Eval = { level: 0 };

/** The later of two grant lapses (absent: never). */
function later(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined ? undefined : Math.max(a, b);
}

/** The earlier of two grant lapses (absent: never). */
function earlier(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

/** `holdsUntil` as an object to spread (nothing when the grant never lapses). */
function lapse(at: number | undefined): Pick<Eval, 'holdsUntil'> {
  return at === undefined ? {} : { holdsUntil: at };
}

/** Whether a granting result lapses (so another path may still outlast it). */
export function lapses(e: Eval): boolean {
  return e.level !== 0 && e.holdsUntil !== undefined;
}
const LABEL = ['denied', 'conditional', 'allowed'] as const;

/** Adds a step in front of the path of a granting (or conditional) result. */
export function prefix(step: string, e: Eval): Eval {
  return e.level === 0 ? e : { ...e, path: [step, ...(e.path ?? [])] };
}

export function merged(a: Eval, b: Eval): Pick<Eval, 'contextual' | 'provisional'> {
  const flags: Pick<Eval, 'contextual' | 'provisional'> = {};
  if (a.contextual || b.contextual) flags.contextual = true;
  if (a.provisional || b.provisional) flags.provisional = true;
  return flags;
}

/** Either may hold; of two grants, the one lasting longer is kept (its path and its lapse). */
export function union(a: Eval, b: Eval): Eval {
  const flags = merged(a, b);
  if (a.level === 2 || b.level === 2) {
    const kept = b.level !== 2 || (a.level === 2 && (a.holdsUntil ?? Infinity) >= (b.holdsUntil ?? Infinity)) ? a : b;
    return { ...kept, contextual: kept.contextual, provisional: kept.provisional };
  }
  if (a.level === 1 || b.level === 1) {
    const holdsUntil = a.level === 1 && b.level === 1 ? later(a.holdsUntil, b.holdsUntil) : (a.level === 1 ? a : b).holdsUntil;
    return { level: 1, missing: [...(a.missing ?? []), ...(b.missing ?? [])], path: a.level === 1 ? a.path : b.path, ...flags, ...lapse(holdsUntil) };
  }
  const reason = a.reason === 'invalid caveat hash' || b.reason === undefined ? a.reason : b.reason;
  return reason === undefined ? { level: 0, ...flags } : { level: 0, reason, ...flags };
}

/** Both must hold (a tuple's caveat and what its subject reaches; or an intersection); `step` prefixes the path. */
export function and(a: Eval, b: Eval, step?: string): Eval {
  const flags = merged(a, b);
  if (a.level === 0 || b.level === 0) return { level: 0, reason: a.level === 0 ? a.reason : b.reason, ...flags };
  const path = step === undefined ? [...(a.path ?? []), ...(b.path ?? [])] : [step, ...(b.path ?? [])];
  const until = lapse(earlier(a.holdsUntil, b.holdsUntil));
  if (a.level === 2 && b.level === 2) return { level: 2, path, ...flags, ...until };
  return { level: 1, missing: [...(a.missing ?? []), ...(b.missing ?? [])], path, ...flags, ...until };
}

/** `left - right`: right allowed excludes, right conditional makes the result conditional (SpiceDB). */
export function exclude(left: Eval, right: Eval): Eval {
  const flags = merged(left, right);
  if (right.level === 2) return { level: 0, reason: 'excluded', ...flags };
  if (right.level === 0 && !right.provisional) return { ...left, ...flags };
  if (right.level === 0) return { level: 0, reason: right.reason, ...flags };
  return { level: 1, missing: [...(left.missing ?? []), ...(right.missing ?? [])], path: left.path, ...flags, ...lapse(left.holdsUntil) };
}

/** The CheckResult of an evaluation of `name` on `res`. */
export function toResult(e: Eval, res: ObjectRef, name: string): CheckResult {
  const result = LABEL[e.level];
  const until = e.holdsUntil === undefined ? {} : { holdsUntil: e.holdsUntil };
  if (e.level === 2) return { result, reason: `granted via ${e.path?.join(' → ') ?? name}`, path: e.path ?? [], ...until };
  if (e.level === 1) {
    const missing = [...new Set(e.missing ?? [])].sort();
    return { result, missing, reason: `caveat context missing: ${missing.join(', ')}`, path: e.path ?? [] };
  }
  return { result, reason: e.reason ?? `no relationship grants ${formatObject(res)}#${name}` };
}

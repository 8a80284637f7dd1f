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
}

export const DENIED: Eval = { level: 0 };
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

/** Either may hold. */
export function union(a: Eval, b: Eval): Eval {
  const flags = merged(a, b);
  if (a.level === 2 || b.level === 2) return { ...(a.level === 2 ? a : b), ...(a.level === 2 ? { contextual: a.contextual, provisional: a.provisional } : { contextual: b.contextual, provisional: b.provisional }) };
  if (a.level === 1 || b.level === 1) {
    return { level: 1, missing: [...(a.missing ?? []), ...(b.missing ?? [])], path: a.level === 1 ? a.path : b.path, ...flags };
  }
  const reason = a.reason === 'invalid caveat hash' || b.reason === undefined ? a.reason : b.reason;
  return reason === undefined ? { level: 0, ...flags } : { level: 0, reason, ...flags };
}

/** Both must hold (a tuple's caveat and what its subject reaches; or an intersection); `step` prefixes the path. */
export function and(a: Eval, b: Eval, step?: string): Eval {
  const flags = merged(a, b);
  if (a.level === 0 || b.level === 0) return { level: 0, reason: a.level === 0 ? a.reason : b.reason, ...flags };
  const path = step === undefined ? [...(a.path ?? []), ...(b.path ?? [])] : [step, ...(b.path ?? [])];
  if (a.level === 2 && b.level === 2) return { level: 2, path, ...flags };
  return { level: 1, missing: [...(a.missing ?? []), ...(b.missing ?? [])], path, ...flags };
}

/** `left - right`: right allowed excludes, right conditional makes the result conditional (SpiceDB). */
export function exclude(left: Eval, right: Eval): Eval {
  const flags = merged(left, right);
  if (right.level === 2) return { level: 0, reason: 'excluded', ...flags };
  if (right.level === 0 && !right.provisional) return { ...left, ...flags };
  if (right.level === 0) return { level: 0, reason: right.reason, ...flags };
  return { level: 1, missing: [...(left.missing ?? []), ...(right.missing ?? [])], path: left.path, ...flags };
}

/** The CheckResult of an evaluation of `name` on `res`. */
export function toResult(e: Eval, res: ObjectRef, name: string): CheckResult {
  const result = LABEL[e.level];
  if (e.level === 2) return { result, reason: `granted via ${e.path?.join(' → ') ?? name}`, path: e.path ?? [] };
  if (e.level === 1) {
    const missing = [...new Set(e.missing ?? [])].sort();
    return { result, missing, reason: `caveat context missing: ${missing.join(', ')}`, path: e.path ?? [] };
  }
  return { result, reason: e.reason ?? `no relationship grants ${formatObject(res)}#${name}` };
}

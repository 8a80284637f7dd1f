/**
 * Capabilities for objects: scope ["s3", bucket, prefix parts…] (the parts after the bucket are concatenated, so
 * appending a part narrows the key prefix) and actions read, list, write, delete. A verified capability becomes an
 * ordinary Principal, so authorize(), listings and the reserved prefix apply to it unchanged.
 */
import { escapeId } from '../relationships/tuples.ts';
import { boundedBy } from '../scopes.ts';
import { type Family, type Principal, type ScopeGrant } from '../types.ts';
import { CapabilityError, type JsonValue } from './token.ts';

/** The actions an object capability may carry and the API family each one allows. */
export const CAPABILITY_ACTIONS = {
  read: 'object:read',
  list: 'object:list',
  write: 'object:write',
  delete: 'object:delete',
} as const satisfies Record<string, Family>;

/** One capability action. */
export type CapabilityAction = keyof typeof CAPABILITY_ACTIONS;

/** Whether a string is a capability action. */
export function isCapabilityAction(action: string): action is CapabilityAction {
  return Object.hasOwn(CAPABILITY_ACTIONS, action);
}

/**
 * Scope element that turns the key prefix before it into one exact key. Appending it narrows (a prefix becomes one
 * key), so any holder may add it; nothing can follow it.
 */
export const EXACT_KEY = { exact: true } as const;

function isExactMarker(part: JsonValue): boolean {
  return typeof part === 'object' && part !== null && !Array.isArray(part) && Object.keys(part).length === 1 && part.exact === true;
}

/** The scope of an object capability on a bucket (`*` for every bucket of the tenant) and key prefix, or one key. */
export function objectScope(bucket: string, prefix = '', exact = false): JsonValue[] {
  if (bucket === '*') return ['s3'];
  const base: JsonValue[] = prefix === '' ? ['s3', bucket] : ['s3', bucket, prefix];
  return exact && prefix !== '' ? [...base, { ...EXACT_KEY }] : base;
}

/** The grant a capability scope and action list amount to. */
export function capabilityGrant(scope: readonly JsonValue[], actions: readonly string[] | undefined): ScopeGrant {
  const marker = scope.findIndex(isExactMarker);
  const exact = marker >= 0;
  const path = exact ? scope.slice(0, marker) : scope;
  if (path[0] !== 's3' || !path.every((part) => typeof part === 'string')) throw new CapabilityError('not an object capability');
  const [, bucket, ...parts] = path as string[];
  const prefix = parts.join('');
  // Nothing narrower than one exact key exists: anything appended after the marker grants nothing.
  if (exact && (marker !== scope.length - 1 || prefix === '')) return { families: [], bucket: bucket ?? '*', prefix, exact: true };
  let families = (actions ?? Object.keys(CAPABILITY_ACTIONS)).filter(isCapabilityAction).map((a) => CAPABILITY_ACTIONS[a]);
  // Listing a single key would show its siblings that share the prefix; an exact capability cannot list.
  if (exact) families = families.filter((f) => f !== 'object:list');
  return { families: [...new Set(families)], bucket: bucket ?? '*', ...(prefix ? { prefix } : {}), ...(exact ? { exact: true } : {}) };
}

/** The type of the subject a capability acts as; no relationship schema defines it, so governed buckets refuse it. */
export const CAPABILITY_SUBJECT_TYPE = 'capability';

/**
 * The principal a verified object capability acts as: not root, its one grant bounded by its minter's authority now
 * (`minter`: the minting credential's principal; undefined when root or the operator minted it), the capability id
 * (escaped) as subject.
 */
export function capabilityPrincipal(c: { id: string; tenant: string; scope: readonly JsonValue[]; actions?: readonly string[] }, minter?: Principal): Principal {
  const grant = capabilityGrant(c.scope, c.actions);
  return {
    tenant: c.tenant,
    accessKeyId: `capability:${c.id}`,
    subject: `${CAPABILITY_SUBJECT_TYPE}:${escapeId(c.id)}`,
    isRoot: false,
    scopes: grant.families.length > 0 ? boundedBy([grant], minter) : [],
    ...(minter ? { minter } : {}),
  };
}


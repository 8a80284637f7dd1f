/**
 * Capabilities for objects: scope ["s3", bucket, prefix parts…] (the parts after the bucket are concatenated, so
 * appending a part narrows the key prefix) and actions read, list, write, delete. A verified capability becomes an
 * ordinary Principal, so authorize(), listings and the reserved prefix apply to it unchanged.
 */
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

/** The scope of an object capability on a bucket (`*` for every bucket of the tenant) and key prefix. */
export function objectScope(bucket: string, prefix = ''): JsonValue[] {
  return bucket === '*' ? ['s3'] : prefix === '' ? ['s3', bucket] : ['s3', bucket, prefix];
}

/** The grant a capability scope and action list amount to. */
export function capabilityGrant(scope: readonly JsonValue[], actions: readonly string[] | undefined): ScopeGrant {
  if (scope[0] !== 's3' || !scope.every((part) => typeof part === 'string')) throw new CapabilityError('not an object capability');
  const [, bucket, ...parts] = scope as string[];
  const families = (actions ?? Object.keys(CAPABILITY_ACTIONS)).filter(isCapabilityAction).map((a) => CAPABILITY_ACTIONS[a]);
  const prefix = parts.join('');
  return { families: [...new Set(families)], bucket: bucket ?? '*', ...(prefix ? { prefix } : {}) };
}

/** The principal a verified object capability acts as: not root, one grant, the capability id as subject. */
export function capabilityPrincipal(c: { id: string; tenant: string; scope: readonly JsonValue[]; actions?: readonly string[] }): Principal {
  const grant = capabilityGrant(c.scope, c.actions);
  return {
    tenant: c.tenant,
    accessKeyId: `capability:${c.id}`,
    subject: `capability:${c.id}`,
    isRoot: false,
    scopes: grant.families.length > 0 ? [grant] : [],
  };
}


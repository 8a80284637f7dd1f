/**
 * Token scopes: pure decisions over a Principal's grants. Tenant isolation comes first (a bucket of another tenant is
 * refused at layer 'tenant'), then a grant must cover family × bucket × key prefix (layer 'scope'). The reserved
 * namespace is refused here too, so every backend gets the same rule from one place.
 */

import { isReservedKey, listPrefixTouchesReserved, RESERVED_NAME, RESERVED_PREFIX } from './reserved.ts';
import { DeniedError } from './errors.ts';
import { FAMILIES, type Decision, type Family, type Principal, type ScopeGrant } from './types.ts';

/** What a request asks for, as the gateway's route table names it. */
export interface AccessRequest {
  family: Family;
  bucket?: string;
  /** The decoded object key, for object-level operations. */
  key?: string;
  /** The tenant owning `bucket`; absent when the bucket has no owner (does not exist yet, or nobody was given it). */
  bucketOwner?: string;
  /** The request creates the bucket (CreateBucket): the only one that may name a bucket without an owner. */
  creating?: boolean;
  /**
   * The request creates or deletes the bucket, or reads or changes its own configuration (tagging, CORS): only a
   * grant naming the family on the whole bucket covers it. AWS keeps these apart from object access too (s3:GetBucketTagging, s3:PutBucketCORS
   * apply to the bucket ARN only; Service Authorization Reference, Amazon S3).
   */
  wholeBucket?: boolean;
}

/** Families whose grant prefix restricts keys; every other family is bucket-level and ignores the prefix. */
export const KEY_FAMILIES: ReadonlySet<Family> = new Set(['object:read', 'object:write', 'object:delete', 'object:list']);

/** How a listing must be filtered: everything, nothing, or only keys under some grant prefixes. */
export type ListingPlan =
  | { kind: 'all' }
  | { kind: 'none'; layer: 'scope' | 'reserved_namespace'; reason: string }
  | { kind: 'filtered'; grantPrefixes: string[] };

const ALLOWED: Decision = { allowed: true };

/** The grant's bucket applies to the named bucket (`*` means every bucket of the tenant). */
function grantsBucket(grant: ScopeGrant, bucket: string | undefined): boolean {
  return bucket === undefined || grant.bucket === '*' || grant.bucket === bucket;
}

/**
 * Whether one grant covers family × bucket × key; bucket:read is implied by any grant on the bucket, except for the
 * bucket's configuration, which needs the family itself granted on the whole bucket (no prefix, not exact).
 */
export function grantCovers(grant: ScopeGrant, request: Omit<AccessRequest, 'bucketOwner' | 'creating'>): boolean {
  if (!grantsBucket(grant, request.bucket)) return false;
  if (request.wholeBucket) return grant.families.includes(request.family) && !grant.exact && !grant.prefix;
  // HeadBucket and GetBucketLocation succeed in any bucket the credential holds a grant in.
  if (request.family !== 'bucket:read' && !grant.families.includes(request.family)) return false;
  if (!KEY_FAMILIES.has(request.family) || request.key === undefined) return true;
  return grant.exact ? request.key === grant.prefix : request.key.startsWith(grant.prefix ?? '');
}

/** Decides one request: reserved namespace, then tenant isolation, then scope. Root skips only the latter two. */
export function authorize(principal: Principal, request: AccessRequest): Decision {
  if (request.key !== undefined && isReservedKey(request.key)) {
    return { allowed: false, layer: 'reserved_namespace', reason: `keys under ${RESERVED_PREFIX} are reserved` };
  }
  if (principal.isRoot) return ALLOWED;
  if (request.bucket !== undefined) {
    // A bucket without an owner is reachable by root only; a tenant may name one only to create it. Another tenant's
    // bucket and a missing one are refused alike, so neither answer reveals which names exist.
    const creating = request.bucketOwner === undefined && request.family === 'bucket:admin' && request.creating === true;
    if (!creating && request.bucketOwner !== principal.tenant) {
      return { allowed: false, layer: 'tenant', reason: `bucket ${request.bucket} is not owned by tenant ${principal.tenant}` };
    }
  }
  if (principal.scopes.some((grant) => grantCovers(grant, request))) return ALLOWED;
  const where = request.bucket === undefined ? 'any bucket' : `bucket ${request.bucket}`;
  const under = request.wholeBucket ? ' as a whole (the bucket itself or its configuration)' : KEY_FAMILIES.has(request.family) && request.key !== undefined ? ` for key ${request.key}` : '';
  return { allowed: false, layer: 'scope', reason: `no grant of ${request.family} on ${where}${under}` };
}

/** Throws DeniedError unless the decision allows. */
export function assertAllowed(decision: Decision): void {
  if (!decision.allowed) throw new DeniedError(decision.layer, decision.reason);
}

/**
 * How to filter an object:list of `bucket` under `listPrefix`. Call after authorize (which checks the tenant).
 * 'all' when a grant covers the whole prefix; 'filtered' when the prefix is broader than some grants.
 */
export function listingPlan(principal: Principal, bucket: string, listPrefix: string): ListingPlan {
  if (listPrefix !== RESERVED_NAME && listPrefixTouchesReserved(listPrefix)) {
    return { kind: 'none', layer: 'reserved_namespace', reason: `listing under ${RESERVED_PREFIX} is reserved` };
  }
  if (principal.isRoot) return { kind: 'all' };
  const prefixes = principal.scopes
    .filter((grant) => grantsBucket(grant, bucket) && grant.families.includes('object:list') && !grant.exact)
    .map((grant) => grant.prefix ?? '');
  if (prefixes.some((prefix) => listPrefix.startsWith(prefix))) return { kind: 'all' };
  const narrower = [...new Set(prefixes.filter((prefix) => prefix.startsWith(listPrefix) && !isReservedKey(prefix)))];
  if (narrower.length > 0) return { kind: 'filtered', grantPrefixes: narrower.sort() };
  return { kind: 'none', layer: 'scope', reason: `no grant of object:list on bucket ${bucket} under prefix "${listPrefix}"` };
}

/** Whether a listed key may be shown under the plan; reserved keys never are. */
export function keyVisible(plan: ListingPlan, key: string): boolean {
  if (isReservedKey(key)) return false;
  if (plan.kind === 'all') return true;
  if (plan.kind === 'none') return false;
  return plan.grantPrefixes.some((prefix) => key.startsWith(prefix));
}

/** Whether a common prefix may be shown: it lies inside a grant prefix or leads to one; `_anvil/` never is. */
export function prefixVisible(plan: ListingPlan, commonPrefix: string): boolean {
  if (listPrefixTouchesReserved(commonPrefix)) return false;
  if (plan.kind === 'all') return true;
  if (plan.kind === 'none') return false;
  return plan.grantPrefixes.some((prefix) => commonPrefix.startsWith(prefix) || prefix.startsWith(commonPrefix));
}

/** The buckets ListBuckets shows: the principal's tenant's buckets it holds any grant in (root sees all). */
export function visibleBuckets(
  principal: Principal,
  allBucketNames: Iterable<string>,
  ownerOf: (bucket: string) => string | undefined,
): string[] {
  const names = [...allBucketNames];
  if (principal.isRoot) return names;
  return names.filter(
    (bucket) => ownerOf(bucket) === principal.tenant && principal.scopes.some((grant) => grantsBucket(grant, bucket)),
  );
}

/** Whether `held` covers the key space of `want`: an exact grant only the same exact key, a prefix anything beneath. */
function keySpaceWithin(want: ScopeGrant, held: ScopeGrant): boolean {
  const wantPrefix = want.prefix ?? '';
  return held.exact ? want.exact === true && wantPrefix === held.prefix : wantPrefix.startsWith(held.prefix ?? '');
}

/** Whether a limiting list (namespaces, relations) of `want` is within `held`'s: absent means unlimited. */
function namesWithin(want: string[] | undefined, held: string[] | undefined): boolean {
  return held === undefined || (want !== undefined && want.every((n) => held.includes(n)));
}

/**
 * Whether `holder` holds every family × bucket × key space in `requested` (and, for tuples:write, every namespace
 * and relation the requested grant may write): nobody can grant more than they hold.
 */
export function grantWithin(holder: Principal, requested: ScopeGrant[]): Decision {
  if (holder.isRoot) return ALLOWED;
  for (const want of requested) {
    for (const family of want.families) {
      const held = holder.scopes.some(
        (grant) =>
          grant.families.includes(family) &&
          (grant.bucket === '*' || grant.bucket === want.bucket) &&
          keySpaceWithin(want, grant) &&
          (family !== 'tuples:write' || (namesWithin(want.namespaces, grant.namespaces) && namesWithin(want.relations, grant.relations))),
      );
      if (!held) {
        const wantPrefix = want.prefix ?? '';
        const prefix = wantPrefix === '' ? '' : ` ${want.exact ? 'on key' : 'under prefix'} "${wantPrefix}"`;
        return { allowed: false, layer: 'scope', reason: `cannot grant ${family} on bucket ${want.bucket}${prefix}: not held` };
      }
    }
  }
  return ALLOWED;
}

/** Every family on every bucket of the tenant, unlimited: what schema writes, imports and resets need. */
export const TENANT_WIDE: readonly ScopeGrant[] = Object.freeze([{ families: [...FAMILIES], bucket: '*' }]);

/** Whether a principal holds authority over its whole tenant (root, or every family on `*` without limits). */
export function holdsTenantWide(principal: Principal): boolean {
  return grantWithin(principal, [...TENANT_WIDE]).allowed;
}

/**
 * The subjects whose relationships bound what `maker` makes (a credential, a session, a capability): its own unless it
 * is root or tenant-wide (such a maker could write itself any tuple, so it bounds nothing more), then those bounding
 * it in turn (Principal.boundingMakers). Empty in the common case, so nothing extra is checked then.
 */
export function relationshipBounds(maker: Principal): readonly string[] {
  const own = maker.isRoot || holdsTenantWide(maker) ? [] : [maker.subject];
  const above = maker.boundingMakers ?? [];
  return own.length === 0 ? above : [...own, ...above];
}

/** A grant as the CLI spells it: `families@bucket/prefix`, e.g. `object:read,object:list@data/reports/`. */
export function formatGrant(grant: ScopeGrant): string {
  return `${grant.families.join(',')}@${grant.bucket}${grant.prefix ? `/${grant.prefix}` : ''}`;
}

/** A grant rebuilt from its known fields only, so nothing a caller tacked on is stored or silently dropped. */
export function normalizeGrant(grant: ScopeGrant): ScopeGrant {
  const { families, bucket, prefix, exact, namespaces, relations } = grant;
  return {
    families: [...new Set(families)],
    bucket,
    ...(prefix ? { prefix } : {}),
    ...(exact ? { exact: true } : {}),
    ...(namespaces ? { namespaces: [...namespaces] } : {}),
    ...(relations ? { relations: [...relations] } : {}),
  };
}

/** Intersection of two limiting lists, where absent means unlimited. */
function intersectNames(a: string[] | undefined, b: string[] | undefined): string[] | undefined {
  if (a === undefined) return b === undefined ? undefined : [...b];
  return b === undefined ? [...a] : a.filter((n) => b.includes(n));
}

/** The key space both grants cover, or undefined when they share no key. */
function intersectKeySpace(a: ScopeGrant, b: ScopeGrant): { prefix: string; exact: boolean } | undefined {
  const pa = a.prefix ?? '';
  const pb = b.prefix ?? '';
  if (a.exact && b.exact) return pa === pb ? { prefix: pa, exact: true } : undefined;
  if (a.exact) return pa.startsWith(pb) ? { prefix: pa, exact: true } : undefined;
  if (b.exact) return pb.startsWith(pa) ? { prefix: pb, exact: true } : undefined;
  if (pa.startsWith(pb)) return { prefix: pa, exact: false };
  if (pb.startsWith(pa)) return { prefix: pb, exact: false };
  return undefined;
}

/** The one grant both cover exactly (every restriction of both kept), or undefined when they share nothing. */
export function intersectGrant(a: ScopeGrant, b: ScopeGrant): ScopeGrant | undefined {
  const bucket = a.bucket === '*' ? b.bucket : b.bucket === '*' || b.bucket === a.bucket ? a.bucket : undefined;
  if (bucket === undefined) return undefined;
  const keys = intersectKeySpace(a, b);
  if (keys === undefined) return undefined;
  const families = a.families.filter((f) => b.families.includes(f));
  if (families.length === 0) return undefined;
  const namespaces = intersectNames(a.namespaces, b.namespaces);
  const relations = intersectNames(a.relations, b.relations);
  return normalizeGrant({ families, bucket, prefix: keys.prefix, exact: keys.exact, namespaces, relations });
}

/** Every family × bucket × key space held in both lists: the authority of someone bounded by both. */
export function intersectScopes(a: readonly ScopeGrant[], b: readonly ScopeGrant[]): ScopeGrant[] {
  const out: ScopeGrant[] = [];
  for (const x of a) for (const y of b) {
    const both = intersectGrant(x, y);
    if (both) out.push(both);
  }
  return out;
}

/** `scopes` bounded by a maker's authority: unchanged under root, intersected otherwise. */
export function boundedBy(scopes: readonly ScopeGrant[], maker: Principal | undefined): ScopeGrant[] {
  return maker === undefined || maker.isRoot ? [...scopes] : intersectScopes(scopes, maker.scopes);
}

/**
 * Whether `actor` may manage credentials of `tenant`: root may anywhere; otherwise the actor needs the admin family,
 * its own tenant, and (when `scopes` is given: the scopes to grant, or those of the credential to rotate) to hold them.
 */
export function authorizeCredentialAdmin(actor: Principal, target: { tenant: string; scopes?: ScopeGrant[]; isRoot?: boolean }): Decision {
  if (actor.isRoot) return ALLOWED;
  if (target.isRoot) return { allowed: false, layer: 'scope', reason: 'only root may manage the root credential' };
  if (target.tenant !== actor.tenant) {
    return { allowed: false, layer: 'tenant', reason: `tenant ${target.tenant} is not tenant ${actor.tenant}` };
  }
  if (!actor.scopes.some((grant) => grant.families.includes('admin'))) {
    return { allowed: false, layer: 'scope', reason: 'no grant of admin' };
  }
  return target.scopes === undefined ? ALLOWED : grantWithin(actor, target.scopes);
}

/** Whether `actor` may create, disable or delete tenants: root only. */
export function authorizeTenantAdmin(actor: Principal): Decision {
  return actor.isRoot ? ALLOWED : { allowed: false, layer: 'scope', reason: 'only root may manage tenants' };
}

/**
 * The shape of a bucket a grant may name: every name S3 has allowed (storage/bucket-names.ts holds the same rule for
 * addressing; policy/ does not import storage/). A grant naming anything else would silently grant nothing.
 */
const GRANT_BUCKET = /^[A-Za-z0-9][A-Za-z0-9._-]{2,254}$/;

/** Why a grant list is malformed, or undefined when every grant is well-formed. */
export function invalidGrantReason(scopes: unknown): string | undefined {
  if (!Array.isArray(scopes)) return 'scopes must be an array';
  for (const grant of scopes as Partial<ScopeGrant>[]) {
    if (typeof grant !== 'object' || grant === null) return 'each grant must be an object';
    if (typeof grant.bucket !== 'string' || grant.bucket === '') return 'each grant needs a bucket (or "*")';
    if (grant.bucket !== '*' && !GRANT_BUCKET.test(grant.bucket)) {
      return `bucket ${JSON.stringify(grant.bucket)} is not a bucket name (3 to 255 letters, digits, ".", "-" or "_", starting with a letter or digit) or "*"`;
    }
    if (grant.prefix !== undefined && typeof grant.prefix !== 'string') return 'a grant prefix must be a string';
    if (!Array.isArray(grant.families) || grant.families.length === 0) return 'each grant needs at least one family';
    const unknown = grant.families.find((family) => !(FAMILIES as readonly string[]).includes(family));
    if (unknown !== undefined) return `unknown family ${String(unknown)}`;
    if (grant.prefix !== undefined && isReservedKey(grant.prefix)) return `prefix ${grant.prefix} is reserved`;
    if (grant.exact !== undefined && (typeof grant.exact !== 'boolean' || (grant.exact && !grant.prefix))) {
      return 'an exact grant needs the whole key as its prefix';
    }
    for (const field of ['namespaces', 'relations'] as const) {
      const names = grant[field];
      if (names !== undefined && (!Array.isArray(names) || !names.every((n) => typeof n === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(n)))) {
        return `a grant's ${field} must be a list of names`;
      }
    }
  }
  return undefined;
}

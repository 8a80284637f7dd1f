/**
 * Relationship governance of S3 objects: in a bucket the policy store marks governed, every object request must also
 * hold a relationship permission on `object:<bucket>/<key>` (read, write or delete) for the caller's subject, decided
 * by the tenant's relationship engine with the request's facts (now, client_ip). Listings keep only readable keys,
 * settling whole subtrees with one folder (or bucket) check when the schema makes that sound.
 *
 * A capability acts for the principal that minted it, attenuated by its own scope: a use is allowed only when the
 * capability verifies and covers the request, its scope already bounded by the minter's scopes as they stand now
 * (capabilityPrincipal; layer capability), and the minter's subject holds the permission by relationships now (layer
 * relationship or caveat, the reason naming the minter). Deleting the minter's tuple ends every share it minted; a
 * revoked or deleted minter is refused at authentication. Capabilities minted by root or the operator act for root.
 *
 * A web-identity session whose OpenID Connect provider was registered by a principal without tenant-wide authority
 * is bounded the same way by that registrar: its own subject and the registrar's must both hold the permission now,
 * so an issuer the registrar runs cannot mint `sub=alice` into more than the registrar itself may do.
 *
 * A credential made by a principal without tenant-wide authority is bounded likewise by that maker, and by each such
 * maker up its chain (Principal.boundingMakers, as the chain stands now): deleting a narrowed admin's tuple ends what
 * its credentials, their sessions and the capabilities they mint reached through that tuple. Makers that are root,
 * the operator or tenant-wide bound nothing (they could write themselves any tuple), so no extra check is made then.
 */
import { actorLabel, actorsOf, relationships as rel, type PolicyStore, type RelationshipActor } from '../policy/index.ts';
import type { Decision, Family, Principal } from '../policy/types.ts';

/** The relationship permission each family needs in a governed bucket (undefined: none); a new family must choose. */
export const PERMISSION_OF: Readonly<Record<Family, string | undefined>> = {
  'object:read': 'read',
  'object:write': 'write',
  'object:delete': 'delete',
  'object:list': undefined,
  'bucket:read': undefined,
  'bucket:admin': undefined,
  'tuples:read': undefined,
  'tuples:write': undefined,
  check: undefined,
  watch: undefined,
  admin: undefined,
};

/** How a governed listing is narrowed: a batched page filter, and a one-check answer for a whole common prefix. */
export interface GovernedListing {
  /** Of these keys (one fetched page), those the caller may read. */
  readable(keys: string[]): Promise<ReadonlySet<string>>;
  /** True when one folder (or bucket) read settles that every key under `prefix` is readable. */
  settles(prefix: string): Promise<boolean>;
}

/** The relationship half of one request's authorizer. */
export interface Governance {
  /** Allowed, or the relationship/caveat refusal with the missing permission in the reason. */
  decide(family: Family, bucket: string, key: string): Promise<Decision>;
  /** The listing narrowing for a governed bucket, or undefined when nothing needs filtering. */
  listing(bucket: string, prefix: string): Promise<GovernedListing | undefined>;
  /** Why this caller cannot be checked at all in a governed bucket (a capability, an unknown subject type), if so. */
  refusal(bucket: string): Promise<Decision | undefined>;
}

const ALLOWED: Decision = { allowed: true };

/** A client address as caveats compare it: IPv4-mapped IPv6 addresses become plain IPv4. */
export function clientIp(remoteAddress: string | undefined): string | undefined {
  return remoteAddress?.startsWith('::ffff:') && remoteAddress.includes('.') ? remoteAddress.slice(7) : remoteAddress;
}

/**
 * The resource whose read settles every key starting with `prefix`: the folder up to its last `/` (every such key
 * lies beneath it), or the bucket when the prefix holds no `/`.
 */
export function settlingResource(bucket: string, prefix: string): { type: string; id: string } {
  const cut = prefix.lastIndexOf('/') + 1;
  return cut === 0 ? { type: 'bucket', id: bucket } : { type: 'folder', id: `${bucket}/${prefix.slice(0, cut)}` };
}

/**
 * Why a subject cannot be checked in a governed bucket, or undefined when it can: a subject whose type the tenant's
 * schema lacks, or that does not parse. Refused cleanly (fail closed, a denial line with its layer) instead of
 * surfacing the engine's validation error.
 */
async function subjectRefusal(subject: string, relationships: rel.Relationships, tenant: string): Promise<Decision | undefined> {
  let type: string;
  try {
    type = rel.parseSubject(subject).type;
  } catch {
    return { allowed: false, layer: 'relationship', reason: `subject ${subject} cannot be checked` };
  }
  if (!(await relationships.store.schema(tenant))?.definitions.has(type)) {
    return { allowed: false, layer: 'relationship', reason: `the tenant's schema has no subject type ${type}` };
  }
  return undefined;
}

/**
 * Builds the governance of one request. Root bypasses relationships as it bypasses scopes (the reserved prefix is
 * decided before and still applies); ungoverned buckets are decided by scopes alone, exactly as before.
 */
export function createGovernance(opts: {
  principal: Principal;
  policy: PolicyStore;
  relationships: rel.Relationships | undefined;
  remoteAddress: string | undefined;
}): Governance {
  const { principal, policy, relationships } = opts;
  // The request's time is taken now; the caveat context and the actors are built only for a governed bucket, which
  // most requests never reach (ungoverned buckets are decided by scopes alone).
  const startedAt = Date.now();
  let context: { now: Date; client_ip: string } | undefined;
  const contextOf = () => (context ??= { now: new Date(startedAt), client_ip: clientIp(opts.remoteAddress) ?? '' });
  let actors: RelationshipActor[] | undefined | null = null;
  const actorsNow = (): RelationshipActor[] | undefined => (actors === null ? (actors = actorsOf(principal)) : actors);
  const governed = async (bucket: string): Promise<string | undefined> => {
    if (principal.isRoot || relationships === undefined || actorsNow() === undefined || !(await policy.bucketGoverned(bucket))) return undefined;
    return policy.bucketOwner(bucket);
  };
  const refusalOf = async (r: rel.Relationships, tenant: string): Promise<Decision | undefined> => {
    for (const a of actorsNow() ?? []) {
      const refused = await subjectRefusal(a.subject, r, tenant);
      if (refused) return refused;
    }
    return undefined;
  };
  return {
    async refusal(bucket) {
      const tenant = await governed(bucket);
      return tenant === undefined || relationships === undefined ? undefined : refusalOf(relationships, tenant);
    },
    async decide(family, bucket, key) {
      const permission = PERMISSION_OF[family];
      const tenant = permission === undefined ? undefined : await governed(bucket);
      if (tenant === undefined || permission === undefined) return ALLOWED;
      const resource = { type: 'object', id: `${bucket}/${key}` };
      const refused = await refusalOf(relationships!, tenant);
      if (refused) return refused;
      for (const a of actorsNow()!) {
        const r = await relationships!.check(tenant, resource, permission, a.subject, { context: contextOf() });
        if (r.result === 'allowed') continue;
        const layer = r.result === 'conditional' || /caveat/.test(r.reason) ? 'caveat' : 'relationship';
        return { allowed: false, layer, reason: `missing ${permission} on ${rel.formatSubject(resource)} for ${actorLabel(a)}: ${r.reason}` };
      }
      return ALLOWED;
    },
    async listing(bucket, prefix) {
      const tenant = await governed(bucket);
      if (tenant === undefined) return undefined;
      const r = relationships!;
      // Callers refused outright (access.listing asks refusal() first) read nothing here either.
      if (await refusalOf(r, tenant)) return { settles: async () => false, readable: async () => new Set<string>() };
      const inherits = await r.subtreeInherits(tenant, 'read');
      const settles = async (p: string): Promise<boolean> => {
        if (!inherits) return false;
        for (const a of actorsNow()!) if ((await r.check(tenant, settlingResource(bucket, p), 'read', a.subject, { context: contextOf() })).result !== 'allowed') return false;
        return true;
      };
      if (await settles(prefix)) return undefined;
      return {
        settles,
        async readable(keys) {
          // A key shows only when every actor may read it: filter the page by each in turn.
          let ids = keys.map((k) => `${bucket}/${k}`);
          for (const a of actorsNow()!) ids = await r.filterResources(tenant, 'object', ids, 'read', a.subject, { context: contextOf() });
          return new Set(ids.map((id) => id.slice(bucket.length + 1)));
        },
      };
    },
  };
}

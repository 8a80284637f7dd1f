/**
 * The per-request authorizer: binds the caller, the policy store and the denial log, so operations ask one-line
 * questions and every refusal is logged the same way, with the client told only AccessDenied.
 */
import {
  appSubject,
  authorize,
  holdsTenantWide,
  keyVisible,
  listingPlan,
  prefixVisible,
  RESERVED_PREFIX,
  ROOT_TENANT,
  visibleBuckets,
  type AccessRecords,
  type DenialLog,
  type PolicyStore,
  type relationships,
} from '../policy/index.ts';
import type { Decision, DenialLayer, Family, Principal } from '../policy/types.ts';
import { accessDenied, S3Error } from './errors.ts';
import { createGovernance, type Governance } from './governance.ts';
import type { Access, ListingFilter } from './operation.ts';

/** What a denial line needs to know about the request besides the decision. */
export interface RequestFacts {
  requestId: string;
  action: string;
  remoteAddress?: string;
  userAgent?: string;
}

/** Writes one denial line for this request. */
export function logDenial(
  denials: DenialLog,
  facts: RequestFacts,
  d: { layer: DenialLayer; reason: string; principal?: Principal; accessKeyId?: string; tenant?: string; bucket?: string; key?: string; copySource?: string },
): void {
  denials.write({
    time: new Date().toISOString(),
    requestId: facts.requestId,
    tenant: d.principal?.tenant ?? d.tenant,
    accessKeyId: d.principal?.accessKeyId ?? d.accessKeyId,
    subject: d.principal?.subject,
    action: facts.action,
    bucket: d.bucket || undefined,
    key: d.key || undefined,
    copySource: d.copySource,
    layer: d.layer,
    reason: d.reason,
    remoteAddress: facts.remoteAddress,
    userAgent: facts.userAgent,
  });
}

/**
 * Records an authorized use of an application credential (the access audit's families-used and shared-key checks);
 * sessions and capabilities act for their makers and are not recorded as the key they present.
 */
export function recordUse(records: AccessRecords | undefined, use: { principal: Principal; family: Family; remoteAddress?: string; userAgent?: string }): void {
  const { principal, family, remoteAddress, userAgent } = use;
  if (records === undefined || principal.subject !== appSubject(principal.accessKeyId)) return;
  records.record({ accessKeyId: principal.accessKeyId, family, remoteAddress, userAgent });
}

/** S3's answer to creating a bucket name that is already taken by someone else. */
function bucketTaken(bucket: string): S3Error {
  return new S3Error('BucketAlreadyExists', undefined, { fields: { BucketName: bucket } });
}

/**
 * Just past every key that starts with the reserved prefix, for listings to resume after, in the order storage and
 * S3 sort keys (UTF-8 bytes). U+FFFF is not enough there: astral characters (4 UTF-8 bytes, F0-F4) sort after it.
 * U+10FFFF (F4 8F BF BF) is the greatest character, and 254 of them make a 1023-byte key, above every reserved key
 * of up to S3's 1024 bytes (but the few that start with this very cursor) and below `_anvil0`, the next name.
 */
const PAST_RESERVED = RESERVED_PREFIX + '\u{10FFFF}'.repeat(254);

/** What one request's Access is built from. */
interface AccessOptions {
  principal: Principal;
  policy: PolicyStore;
  denials: DenialLog;
  facts: RequestFacts;
  relationships?: relationships.Relationships;
}

/**
 * Builds the Access object for one authenticated request. Scopes decide first (reserved prefix, tenant, scope); in a
 * governed bucket an object request must then also hold its relationship permission: both must allow.
 */
export function createAccess(opts: AccessOptions): Access {
  return new RequestAccess(opts);
}

/**
 * One request's Access. A class rather than an object of closures: every request builds one, and its methods then
 * live once on the prototype instead of a dozen closures per request.
 */
class RequestAccess implements Access {
  private readonly principal: Principal;
  private readonly policy: PolicyStore;
  /** Only CreateBucket may name a bucket nobody owns: DeleteBucket of a missing bucket answers as one of another tenant. */
  private readonly creating: boolean;
  private readonly governance: Governance;

  constructor(private readonly opts: AccessOptions) {
    this.principal = opts.principal;
    this.policy = opts.policy;
    this.creating = opts.facts.action === 'CreateBucket';
    this.governance = createGovernance({ principal: opts.principal, policy: opts.policy, relationships: opts.relationships, remoteAddress: opts.facts.remoteAddress });
  }

  private async decide(family: Family, bucket: string, key?: string, wholeBucket?: boolean): Promise<Decision> {
    const { principal, policy, creating } = this;
    const bucketOwner = bucket ? await policy.bucketOwner(bucket) : undefined;
    const scoped = authorize(principal, { family, bucket: bucket || undefined, key, bucketOwner, creating, wholeBucket });
    if (scoped.allowed && this.opts.facts.action === 'DeleteBucket') return this.deletable(bucket);
    if (!scoped.allowed || !bucket || key === undefined) return scoped;
    return this.governance.decide(family, bucket, key);
  }

  /**
   * Creating a name another tenant owns fails as in S3, BucketAlreadyExists (CreateBucket API reference), when the
   * caller could have created the name were it free: the failure reveals only that the name is taken, which the
   * failed creation reveals anyway (CreateBucket is whole-bucket, gateway/routes.ts). Every other request on another
   * tenant's bucket stays AccessDenied.
   */
  private mayCreate(family: Family, bucket: string): boolean {
    return authorize(this.principal, { family, bucket, creating: this.creating, wholeBucket: true }).allowed;
  }

  /**
   * Deleting a governed bucket ends its governance (a bucket re-created under the name starts ungoverned), so it
   * needs the authority that turns governance off (gateway/admin/relationships.ts setGovernance): every family on
   * every bucket of the tenant, or root.
   */
  private async deletable(bucket: string): Promise<Decision> {
    const principal = this.principal;
    return principal.isRoot || holdsTenantWide(principal) || !(await this.policy.bucketGoverned(bucket))
      ? { allowed: true }
      : { allowed: false, layer: 'scope', reason: `deleting governed bucket ${bucket} ends its governance: it needs every family on every bucket` };
  }

  private deny(layer: DenialLayer, reason: string, where: { bucket?: string; key?: string; copySource?: string }): void {
    logDenial(this.opts.denials, this.opts.facts, { layer, reason, principal: this.principal, ...where });
  }

  async require(family: Family, bucket: string, key?: string, extra: { copySource?: string; wholeBucket?: boolean; expectedOwner?: string } = {}): Promise<void> {
    const d = await this.decide(family, bucket, key, extra.wholeBucket);
    if (!d.allowed) {
      this.deny(d.layer, d.reason, { bucket, key, copySource: extra.copySource });
      if (this.creating && d.layer === 'tenant' && this.mayCreate(family, bucket)) throw bucketTaken(bucket);
      throw accessDenied();
    }
    if (extra.expectedOwner !== undefined && bucket && !this.creating) {
      const owner = (await this.policy.bucketOwner(bucket)) ?? ROOT_TENANT;
      if (owner !== extra.expectedOwner) {
        this.deny('tenant', 'bucket owner is not the expected bucket owner', { bucket, key, copySource: extra.copySource });
        throw accessDenied();
      }
    }
  }

  async allows(family: Family, bucket: string, key: string): Promise<boolean> {
    const d = await this.decide(family, bucket, key);
    if (!d.allowed) this.deny(d.layer, d.reason, { bucket, key });
    return d.allowed;
  }

  async listing(bucket: string, prefix: string): Promise<ListingFilter> {
    const { principal, governance } = this;
    const refused = await governance.refusal(bucket);
    if (refused && !refused.allowed) {
      this.deny(refused.layer, refused.reason, { bucket, key: prefix });
      throw accessDenied();
    }
    const plan = listingPlan(principal, bucket, prefix);
    if (plan.kind === 'none') {
      this.deny(plan.layer, plan.reason, { bucket, key: prefix });
      throw accessDenied();
    }
    const scoped: ListingFilter = {
      keyVisible: (key) => keyVisible(plan, key),
      async prefixVisible(p, probe) {
        if (!prefixVisible(plan, p)) return false;
        if (plan.kind === 'all') return true;
        // The prefix only leads towards a grant: show it when a granted key really lies beneath it.
        for (const g of plan.grantPrefixes) {
          if (p.startsWith(g)) return true;
          if (g.startsWith(p) && (await probe(g))) return true;
        }
        return false;
      },
      skipPast: (key) => (key === '_anvil' || key.startsWith(RESERVED_PREFIX) ? PAST_RESERVED : undefined),
    };
    const governed = await governance.listing(bucket, prefix);
    if (governed === undefined) return scoped;
    return {
      ...scoped,
      // A common prefix shows when one folder read settles it, or when a readable key really lies beneath it.
      prefixVisible: async (p, probe) => (await scoped.prefixVisible(p, probe)) && ((await governed.settles(p)) || (await probe(p))),
      readable: (keys) => governed.readable(keys),
    };
  }

  async visibleBuckets(names: string[]): Promise<string[]> {
    const policy = this.policy;
    // One owner lookup per bucket, each cached: decided up front so the scope rule stays synchronous.
    const owners = new Map(await Promise.all(names.map(async (b) => [b, await policy.bucketOwner(b)] as const)));
    return visibleBuckets(this.principal, names, (b) => owners.get(b));
  }

  async bucketCreated(bucket: string): Promise<void> {
    // Root creating a name the operator assigned to a tenant beforehand (PUT /buckets/{b}/owner) creates it for that
    // tenant: the assignment is the operator's decision, and root re-creating an existing tenant bucket also leaves
    // its owner as it is. Anyone else meets a ConflictError (the name went to another tenant after authorization).
    await this.policy.assignBucket(bucket, this.principal.tenant, { actor: this.principal.accessKeyId, keepOwner: this.principal.isRoot });
  }

  async bucketDeleted(bucket: string): Promise<void> {
    await this.policy.releaseBucket(bucket, { actor: this.principal.accessKeyId });
  }

  async ownsBucket(bucket: string): Promise<boolean> {
    return this.principal.isRoot || (await this.policy.bucketOwner(bucket)) === this.principal.tenant;
  }

  bodyRefused(err: { code: string; message: string }, bucket: string, key?: string): void {
    this.deny('signature', `${err.code}: ${err.message}`, { bucket, key });
  }

  ownerCheck(bucket: string, key?: string): (() => Promise<void>) | undefined {
    const principal = this.principal;
    if (principal.isRoot) return undefined;
    return async () => {
      // As of now: the request's own start-of-request check may predate a change another worker committed since.
      const owner = await this.policy.bucketOwner(bucket, { now: true });
      if (owner === principal.tenant) return;
      if (owner === undefined) throw new S3Error('NoSuchBucket', undefined, { fields: { BucketName: bucket } });
      // Not naming the new owner: the caller's tenant may read this line.
      this.deny('tenant', `bucket ${bucket} stopped belonging to tenant ${principal.tenant} (deleted and created again, or moved) while the write was in progress`, { bucket, key });
      throw accessDenied();
    };
  }
}

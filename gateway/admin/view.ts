/**
 * What an admin may see of its tenant. Root and a tenant-wide admin (every family on every bucket) see all of it; an
 * admin narrower than that sees only what it has authority over: credentials, roles and providers whose scopes it
 * holds itself (those it could make, rotate or delete), and denial and audit lines about those credentials or about
 * resources its admin grants reach. Everything else of the tenant answers as if it did not exist.
 */
import { grantWithin, holdsTenantWide, relationships, SHOWN_AS, visibleBuckets, type AuditRecord, type CredentialInfo, type DenialLayer, type DenialRecord, type OidcProviderInfo, type ScopeGrant } from '../../policy/index.ts';
import { tokenStoresOf } from '../sts/stores.ts';
import { notFound, type AdminCall } from './call.ts';
import { AdminError } from './errors.ts';

/** Filters for one caller; `undefined` from adminView means the caller sees the whole tenant. */
export interface AdminView {
  /** Whether the caller holds every one of these scopes (a credential's, a role's). */
  holds(scopes: ScopeGrant[]): boolean;
  /** Whether the caller sees a credential: itself, or one (not root) whose scopes it holds. */
  credential(info: CredentialInfo): boolean;
  /** The same for a credential named by access key id in a record or finding (an unknown id is not seen). */
  credentialId(id: string | undefined): boolean;
  /** Whether the caller sees an OpenID Connect provider: it holds every role the provider's sessions may assume. */
  provider(p: OidcProviderInfo): boolean;
  /** Whether a denial line is about the caller's reach or a credential it holds. */
  denial(record: DenialRecord): boolean;
  /**
   * A denial line as the caller is shown it: a refusal about something beyond its view reads as the refusal about a
   * missing one (layer tenant, the missing one's reason), so its own lines and those of the credentials it holds
   * cannot tell "exists but beyond me" from "missing". Root and tenant-wide admins read every line as written.
   */
  shown(record: DenialRecord): DenialRecord;
  /** Whether an audit line is by or about a credential it holds, or about a bucket it administers whole. */
  audit(record: AuditRecord): boolean;
  /** Whether its admin grants reach a relationship resource (relationships.grantReaches), and so the tuples on it. */
  resource(resource: relationships.ObjectRef): boolean;
}

/** How a missing thing (or another tenant's) is answered: the 404's message, and its denial line's reason and bucket. */
export interface Missing {
  message: string;
  reason: string;
  bucket?: string;
}

/** Between a hidden thing's true reason and the missing one's in a denial line (policy/denial-log.ts). */
export { SHOWN_AS };

/** Answers 404 for a missing thing, after a denial line (layer tenant) for any caller but root, which sees all. */
export function missing(call: AdminCall, m: Missing): never {
  if (!call.principal.isRoot) call.deny({ layer: 'tenant', reason: m.reason, ...(m.bucket ? { bucket: m.bucket } : {}) });
  throw notFound(m.message);
}

/**
 * Answers for something beyond the caller's view exactly as for a missing one: the same 404, and a denial line that
 * root and tenant-wide admins read with the true layer and reason (`truth`) and the caller is shown exactly as the
 * missing one's line (layer tenant, `m.reason`).
 */
export function hidden(call: AdminCall, truth: string, m: Missing): never {
  call.deny({ layer: 'scope', reason: `${truth}${SHOWN_AS}${m.reason})`, ...(m.bucket ? { bucket: m.bucket } : {}) });
  throw notFound(m.message);
}

/** Layers an S3 request of a credential reaches only in a bucket of its tenant: before them come signature to tenant. */
const IN_BUCKET_LAYERS: ReadonlySet<DenialLayer> = new Set(['scope', 'relationship', 'caveat']);

/**
 * The refusal when a name a narrower admin picks (a role name, an issuer) is taken by something beyond its view: it
 * names neither that thing nor what holds it, only who may use the name (the denial line keeps the real reason).
 */
export function reservedName(call: AdminCall, what: string, reason: string): never {
  call.deny({ layer: 'scope', reason });
  throw new AdminError('AccessDenied', `${what} is reserved: only root or an admin holding every family on every bucket may use it`);
}

/**
 * The view of a caller narrower than its tenant, or undefined for root and tenant-wide admins. What the filters
 * consult (the tenant's credentials and roles) is read once here, so the filters themselves are plain predicates.
 */
export async function adminView(call: AdminCall): Promise<AdminView | undefined> {
  const { principal } = call;
  if (principal.isRoot || holdsTenantWide(principal)) return undefined;
  const holds = (scopes: ScopeGrant[]) => grantWithin(principal, scopes).allowed;
  const grants = principal.scopes.filter((g) => g.families.includes('admin'));
  const credential = (c: CredentialInfo) => c.accessKeyId === principal.accessKeyId || (!c.isRoot && holds(c.scopes));
  const held = new Set([principal.accessKeyId, ...(await call.policy.listCredentials({ tenant: principal.tenant })).filter(credential).map((c) => c.accessKeyId)]);
  const holdsCredential = (id: string | undefined): boolean => id !== undefined && held.has(id);
  const roles = new Map((await tokenStoresOf(call.policy).sessions.listRoles({ tenant: principal.tenant })).map((r) => [r.id, r]));
  const reaches = (bucket: string | undefined, key: string | undefined): boolean =>
    bucket !== undefined &&
    grants.some((g) => (g.bucket === '*' || g.bucket === bucket) && (g.exact ? key === g.prefix : (key ?? '').startsWith(g.prefix ?? '')));
  // A refusal about a role of the tenant reads as the missing role's refusal unless the caller sees that role
  // (holds its scopes); the line names it in the missing role's reason (policy/sessions/assume.ts).
  const shownSts = (r: DenialRecord): DenialRecord => {
    const at = r.reason.lastIndexOf(SHOWN_AS);
    if (at < 0) return r;
    const masked = r.reason.slice(at + SHOWN_AS.length, -1);
    const name = /^no role (\S+) in tenant /.exec(masked)?.[1];
    const role = [...roles.values()].find((x) => x.name === name);
    return role !== undefined && holds(role.scopes) ? { ...r, reason: r.reason.slice(0, at) } : { ...r, reason: masked };
  };
  return {
    holds,
    credential,
    credentialId: holdsCredential,
    // A role gone since counts as held: it lets nobody assume anything.
    provider: (p) => p.roleIds.every((id) => {
      const role = roles.get(id);
      return role === undefined || holds(role.scopes);
    }),
    denial: (r) => holdsCredential(r.accessKeyId) || reaches(r.bucket, r.key),
    shown(r) {
      if (r.action.startsWith('Admin:')) {
        const at = r.layer === 'scope' ? r.reason.lastIndexOf(SHOWN_AS) : -1;
        return at < 0 ? r : { ...r, layer: 'tenant', reason: r.reason.slice(at + SHOWN_AS.length, -1) };
      }
      if (r.action.startsWith('STS:')) return shownSts(r);
      // An S3 refusal past the tenant layer in a bucket of the tenant that the caller holds no grant in (a credential
      // it holds tried one) reads as the refusal of a missing bucket, which the tenant layer writes.
      if (r.bucket === undefined || !IN_BUCKET_LAYERS.has(r.layer) || visibleBuckets(principal, [r.bucket], () => principal.tenant).length > 0) return r;
      return { ...r, layer: 'tenant', reason: `bucket ${r.bucket} is not owned by tenant ${r.tenant ?? principal.tenant}` };
    },
    audit: (r) =>
      holdsCredential(r.actor) || holdsCredential(r.accessKeyId) || grants.some((g) => (g.bucket === '*' || g.bucket === r.bucket) && r.bucket !== undefined && !g.prefix),
    resource: (resource) => grants.some((g) => relationships.grantReaches(g, resource)),
  };
}

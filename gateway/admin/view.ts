/**
 * What an admin may see of its tenant. Root and a tenant-wide admin (every family on every bucket) see all of it; an
 * admin narrower than that sees only what it has authority over: credentials, roles and providers whose scopes it
 * holds itself (those it could make, rotate or delete), and denial and audit lines about those credentials or about
 * resources its admin grants reach. Everything else of the tenant answers as if it did not exist.
 */
import { grantWithin, holdsTenantWide, type AuditRecord, type CredentialInfo, type DenialRecord, type OidcProviderInfo, type ScopeGrant } from '../../policy/index.ts';
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
  /** Whether an audit line is by or about a credential it holds, or about a bucket it administers whole. */
  audit(record: AuditRecord): boolean;
}

/**
 * Answers for something beyond the caller's view exactly as for a missing one (404, `missing` being the message a
 * missing one gets), after a denial line with the real reason.
 */
export function hidden(call: AdminCall, reason: string, missing: string): never {
  call.deny({ layer: 'scope', reason });
  throw notFound(missing);
}

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
    audit: (r) =>
      holdsCredential(r.actor) || holdsCredential(r.accessKeyId) || grants.some((g) => (g.bucket === '*' || g.bucket === r.bucket) && r.bucket !== undefined && !g.prefix),
  };
}

/**
 * What an admin may see of its tenant. Root and a tenant-wide admin (every family on every bucket) see all of it; an
 * admin narrower than that sees only what it has authority over: credentials, roles and providers whose scopes it
 * holds itself (those it could make, rotate or delete), and denial and audit lines about those credentials or about
 * resources its admin grants reach. Everything else of the tenant answers as if it did not exist.
 */
import { grantWithin, holdsTenantWide, type AuditRecord, type CredentialInfo, type DenialRecord, type ScopeGrant } from '../../policy/index.ts';
import type { AdminCall } from './call.ts';

/** Filters for one caller; `undefined` from adminView means the caller sees the whole tenant. */
export interface AdminView {
  /** Whether the caller holds every one of these scopes (a credential's, a role's). */
  holds(scopes: ScopeGrant[]): boolean;
  /** Whether a denial line is about the caller's reach or a credential it holds. */
  denial(record: DenialRecord): boolean;
  /** Whether an audit line is by or about a credential it holds, or about a bucket it administers whole. */
  audit(record: AuditRecord): boolean;
}

/** The view of a caller narrower than its tenant, or undefined for root and tenant-wide admins. */
export function adminView(call: AdminCall): AdminView | undefined {
  const { principal } = call;
  if (principal.isRoot || holdsTenantWide(principal)) return undefined;
  const holds = (scopes: ScopeGrant[]) => grantWithin(principal, scopes).allowed;
  const grants = principal.scopes.filter((g) => g.families.includes('admin'));
  let held: Set<string> | undefined;
  const holdsCredential = (id: string | undefined): boolean => {
    if (id === undefined) return false;
    held ??= new Set([
      principal.accessKeyId,
      ...call.policy.listCredentials({ tenant: principal.tenant }).filter((c: CredentialInfo) => !c.isRoot && holds(c.scopes)).map((c) => c.accessKeyId),
    ]);
    return held.has(id);
  };
  const reaches = (bucket: string | undefined, key: string | undefined): boolean =>
    bucket !== undefined &&
    grants.some((g) => (g.bucket === '*' || g.bucket === bucket) && (g.exact ? key === g.prefix : (key ?? '').startsWith(g.prefix ?? '')));
  return {
    holds,
    denial: (r) => holdsCredential(r.accessKeyId) || reaches(r.bucket, r.key),
    audit: (r) =>
      holdsCredential(r.actor) || holdsCredential(r.accessKeyId) || grants.some((g) => (g.bucket === '*' || g.bucket === r.bucket) && r.bucket !== undefined && !g.prefix),
  };
}

/**
 * The access audit's checks on credentials and what they made: stale keys, broad grants, families never used, keys
 * shared by several jobs, reserved-prefix attempts, governed buckets reachable by scope alone, delegations their
 * maker could no longer make, and old capability root keys. Pure functions over AuditFacts.
 */
import { capabilityGrant } from '../capabilities/s3.ts';
import { authorizeCredentialAdmin, boundedBy, formatGrant, grantWithin } from '../scopes.ts';
import type { CredentialInfo } from '../store-schema.ts';
import { appSubject } from '../subjects.ts';
import type { Family, Principal, ScopeGrant } from '../types.ts';
import type { AuditFacts, AuditOptions, Finding } from './types.ts';

const DAY_MS = 86_400_000;

/** Whole days between two times, rounded down. */
const daysBetween = (from: Date, to: Date) => Math.floor((to.getTime() - from.getTime()) / DAY_MS);

/** The application credentials the credential checks look at: live ones, never root. */
function liveCredentials(facts: AuditFacts): CredentialInfo[] {
  return facts.credentials.filter((c) => !c.isRoot && c.status !== 'revoked');
}

/** Scope flags for a command line, quoted for a shell. */
function scopeFlags(grants: ScopeGrant[]): string {
  return grants.map((g) => `--scope '${formatGrant(g)}'`).join(' ');
}

/** The command that replaces a credential by a narrower one: create the replacement, then revoke the old key. */
function replaceWith(c: CredentialInfo, grants: ScopeGrant[] | string): string {
  const scopes = typeof grants === 'string' ? grants : scopeFlags(grants);
  return `anvil credential create --tenant ${c.tenant} --name ${c.name}-narrow ${scopes} && anvil credential revoke ${c.accessKeyId}`;
}

/** stale-credential: unused for more than the window, never used since before it, or expired but still present. */
export function staleCredentials(facts: AuditFacts, options: AuditOptions): Finding[] {
  const since = new Date(facts.now.getTime() - options.days * DAY_MS);
  const out: Finding[] = [];
  for (const c of facts.credentials.filter((x) => !x.isRoot)) {
    const base = { check: 'stale-credential' as const, tenant: c.tenant, accessKeyId: c.accessKeyId, subject: c.accessKeyId };
    if (c.status === 'expired') {
      out.push({ ...base, id: `stale-credential:${c.accessKeyId}:expired`, severity: 'low', message: `${c.name} expired ${c.expiresAt !== undefined && new Date(c.expiresAt) <= facts.now ? `on ${c.expiresAt}` : 'with its maker'} but is still present`, fix: `anvil credential delete ${c.accessKeyId}` });
    } else if (c.status === 'active' && c.lastUsedAt === undefined && new Date(c.createdAt) < since) {
      out.push({ ...base, id: `stale-credential:${c.accessKeyId}:never`, severity: 'medium', message: `${c.name} was never used since it was created ${daysBetween(new Date(c.createdAt), facts.now)} days ago`, fix: `anvil credential revoke ${c.accessKeyId}` });
    } else if (c.status === 'active' && c.lastUsedAt !== undefined && new Date(c.lastUsedAt) < since) {
      out.push({ ...base, id: `stale-credential:${c.accessKeyId}:unused`, severity: 'medium', message: `${c.name} was last used ${daysBetween(new Date(c.lastUsedAt), facts.now)} days ago (${c.lastUsedAt})`, fix: `anvil credential revoke ${c.accessKeyId}` });
    }
  }
  return out;
}

/** broad-scope: the admin family, grants on every bucket, grants on a whole bucket without a prefix. */
export function broadScopes(facts: AuditFacts): Finding[] {
  const out: Finding[] = [];
  for (const c of liveCredentials(facts)) {
    const base = { check: 'broad-scope' as const, tenant: c.tenant, accessKeyId: c.accessKeyId, subject: c.accessKeyId };
    const admin = c.scopes.filter((g) => g.families.includes('admin'));
    const everyBucket = c.scopes.filter((g) => g.bucket === '*' && !g.families.includes('admin'));
    const wholeBucket = c.scopes.filter((g) => g.bucket !== '*' && !g.prefix && !g.families.includes('admin'));
    if (admin.length > 0) {
      out.push({ ...base, id: `broad-scope:${c.accessKeyId}:admin`, severity: 'medium', message: `${c.name} holds the admin family (${admin.map(formatGrant).join(' ')}): it can make credentials, roles and capabilities`, fix: replaceWith(c, c.scopes.map((g) => ({ ...g, families: g.families.filter((f) => f !== 'admin') })).filter((g) => g.families.length > 0)) });
    }
    if (everyBucket.length > 0) {
      out.push({ ...base, id: `broad-scope:${c.accessKeyId}:every-bucket`, severity: 'medium', message: `${c.name} is granted ${everyBucket.map(formatGrant).join(' ')} on every bucket of tenant ${c.tenant}`, fix: replaceWith(c, "--scope 'FAMILIES@BUCKET/PREFIX/'") });
    }
    if (wholeBucket.length > 0) {
      out.push({ ...base, id: `broad-scope:${c.accessKeyId}:whole-bucket`, severity: 'low', message: `${c.name} is granted whole buckets without a key prefix: ${wholeBucket.map(formatGrant).join(' ')}`, fix: replaceWith(c, wholeBucket.map((g) => ({ ...g, prefix: 'PREFIX/' }))) });
    }
  }
  return out;
}

/**
 * unused-families: families granted but not used in the window, for credentials older than the window that were
 * used in it (a credential not used at all is stale instead). The fix keeps only the families used.
 */
export function unusedFamilies(facts: AuditFacts, options: AuditOptions): Finding[] {
  const since = new Date(facts.now.getTime() - options.days * DAY_MS);
  const usage = new Map(facts.usage.map((u) => [u.accessKeyId, u]));
  const out: Finding[] = [];
  for (const c of liveCredentials(facts)) {
    const used = usage.get(c.accessKeyId);
    if (used === undefined || new Date(c.createdAt) >= since) continue;
    const granted = [...new Set(c.scopes.flatMap((g) => g.families))];
    const unused = granted.filter((f) => !used.families.includes(f));
    if (unused.length === 0) continue;
    const narrowed = c.scopes.map((g) => ({ ...g, families: g.families.filter((f) => used.families.includes(f)) })).filter((g) => g.families.length > 0);
    out.push({
      id: `unused-families:${c.accessKeyId}:${unused.sort().join(',')}`, check: 'unused-families', severity: 'low', tenant: c.tenant, accessKeyId: c.accessKeyId, subject: c.accessKeyId,
      message: `${c.name} did not use ${unused.join(', ')} in ${options.days} days (used: ${used.families.join(', ')})`,
      fix: replaceWith(c, narrowed),
    });
  }
  return out;
}

/** shared-credential: one key used from more remote addresses or user agents than one job would. */
export function sharedCredentials(facts: AuditFacts, options: AuditOptions): Finding[] {
  const byId = new Map(liveCredentials(facts).map((c) => [c.accessKeyId, c]));
  const out: Finding[] = [];
  for (const u of facts.usage) {
    const c = byId.get(u.accessKeyId);
    if (c === undefined || (u.remoteAddresses.length <= options.maxAddresses && u.userAgents.length <= options.maxAgents)) continue;
    out.push({
      id: `shared-credential:${c.accessKeyId}`, check: 'shared-credential', severity: 'medium', tenant: c.tenant, accessKeyId: c.accessKeyId, subject: c.accessKeyId,
      message: `${c.name} was used from ${u.remoteAddresses.length} remote address(es) and ${u.userAgents.length} user agent(s) in ${options.days} days: one key shared by several jobs?`,
      fix: `anvil credential create --tenant ${c.tenant} --name JOB ${scopeFlags(c.scopes)} (one per job), then anvil credential revoke ${c.accessKeyId}`,
    });
  }
  return out;
}

/** reserved-namespace: refusals by the reserved-prefix layer in the window, one finding per credential and address. */
export function reservedAttempts(facts: AuditFacts, options: AuditOptions): Finding[] {
  const groups = new Map<string, { key?: string; address?: string; tenant?: string; count: number; first: string; last: string; example: string }>();
  for (const d of facts.reservedDenials) {
    const id = `${d.accessKeyId ?? '-'}@${d.remoteAddress ?? '-'}`;
    const g = groups.get(id) ?? { key: d.accessKeyId, address: d.remoteAddress, tenant: d.tenant, count: 0, first: d.time, last: d.time, example: `${d.action} ${d.bucket ?? ''}/${d.key ?? ''}` };
    g.count++;
    g.last = d.time;
    groups.set(id, g);
  }
  const live = new Set(liveCredentials(facts).map((c) => c.accessKeyId));
  return [...groups].map(([id, g]) => ({
    id: `reserved-namespace:${id}`, check: 'reserved-namespace', severity: 'high', tenant: g.tenant, ...(g.key ? { accessKeyId: g.key } : {}), subject: id,
    message: `${g.count} attempt(s) on the reserved prefix _anvil/ by ${g.key ?? 'an unknown caller'} from ${g.address ?? 'an unknown address'} in ${options.days} days (${g.first} to ${g.last}; e.g. ${g.example})`,
    fix: g.key !== undefined && live.has(g.key) ? `anvil credential revoke ${g.key}` : `anvil denials --layer reserved_namespace --since ${options.days}d${g.key ? ` --access-key ${g.key}` : ''}`,
  }));
}

/** Families that answer about relationships by scope alone, whatever tuples the caller holds. */
const RELATIONSHIP_FAMILIES: readonly Family[] = ['watch', 'check', 'tuples:read'];

/**
 * governance-gap: in a relationship-governed bucket, object requests and listings are decided per key by
 * relationships too, but the watch feed, checks, lookups and tuple reads answer by scope alone. A credential whose
 * grants reach the bucket with one of those families while its subject holds no tuple of the tenant sees more
 * through them than relationships would ever give it. Tenant admins (the admin family) are excluded: that is their
 * job.
 */
export function governanceGaps(facts: AuditFacts): Finding[] {
  const subjects = new Map(facts.relationships.map((r) => [r.tenant, r.appSubjects]));
  const out: Finding[] = [];
  for (const { bucket, tenant } of facts.governedBuckets) {
    for (const c of liveCredentials(facts).filter((x) => x.tenant === tenant)) {
      const reach = c.scopes.filter((g) => !g.families.includes('admin') && (g.bucket === '*' || g.bucket === bucket));
      const families = [...new Set(reach.flatMap((g) => g.families.filter((f) => RELATIONSHIP_FAMILIES.includes(f))))];
      if (families.length === 0 || subjects.get(tenant)?.has(c.accessKeyId)) continue;
      out.push({
        id: `governance-gap:${bucket}:${c.accessKeyId}`, check: 'governance-gap', severity: 'medium', tenant, accessKeyId: c.accessKeyId, subject: `${c.accessKeyId} on ${bucket}`,
        message: `${c.name} may use ${families.join(', ')} on governed bucket ${bucket} by scope alone, but ${appSubject(c.accessKeyId)} holds no tuple of tenant ${tenant}`,
        fix: replaceWith(c, c.scopes.map((g) => ({ ...g, families: g.families.filter((f) => !RELATIONSHIP_FAMILIES.includes(f)) })).filter((g) => g.families.length > 0)),
      });
    }
  }
  return out;
}

/**
 * Each credential's effective authority now, as the gateway would resolve it: live, its tenant enabled, its scopes
 * bounded by its maker's down the chain; undefined (with why) when it could not act today.
 */
export function effectivePrincipals(facts: AuditFacts): Map<string, Principal | string> {
  const byId = new Map(facts.credentials.map((c) => [c.accessKeyId, c]));
  const disabled = new Set(facts.tenants.filter((t) => t.disabled).map((t) => t.name));
  const out = new Map<string, Principal | string>();
  const resolve = (id: string, depth: number): Principal | string => {
    const known = out.get(id);
    if (known !== undefined) return known;
    const c = byId.get(id);
    let result: Principal | string;
    if (c === undefined) result = 'deleted';
    else if (c.status !== 'active') result = c.status;
    else if (disabled.has(c.tenant)) result = 'in a disabled tenant';
    else {
      const maker = c.createdBy === undefined ? undefined : depth < 32 ? resolve(c.createdBy, depth + 1) : 'made by too long a chain';
      const principal: Principal = { tenant: c.tenant, accessKeyId: c.accessKeyId, subject: appSubject(c.accessKeyId), isRoot: c.isRoot, scopes: c.scopes };
      if (typeof maker === 'string') result = `made by ${c.createdBy}, which is ${maker}`;
      else if (maker !== undefined && maker.tenant !== c.tenant) result = `made by ${c.createdBy} of another tenant`;
      else result = { ...principal, scopes: boundedBy(c.scopes, maker) };
    }
    out.set(id, result);
    return result;
  };
  for (const c of facts.credentials) resolve(c.accessKeyId, 0);
  return out;
}

/** Why `maker` could not make something needing `needs` in `tenant` today, or undefined when it could. */
function makerCannot(makers: Map<string, Principal | string>, maker: string, tenant: string, needs: (p: Principal) => boolean): string | undefined {
  const p = makers.get(maker) ?? 'deleted';
  if (typeof p === 'string') return `its maker ${maker} is ${p}`;
  if (p.tenant !== tenant) return `its maker ${maker} belongs to tenant ${p.tenant}`;
  return needs(p) ? undefined : `its maker ${maker} no longer holds what it grants`;
}

/*
 * leftover-role, leftover-provider, leftover-capability: delegations an application credential made that it could
 * not make today (revoked, deleted, expired or narrowed since). They fail closed at every use already; they are
 * reported so they are removed instead of lying in wait for a maker to be widened again.
 */

/** leftover-role: roles whose maker could not create them today. */
export function leftoverRoles(facts: AuditFacts): Finding[] {
  const makers = effectivePrincipals(facts);
  return facts.roles.flatMap((role): Finding[] => {
    if (role.createdBy === undefined) return [];
    const why = makerCannot(makers, role.createdBy, role.tenant, (p) => authorizeCredentialAdmin(p, { tenant: role.tenant, scopes: role.scopes }).allowed);
    return why ? [{ id: `leftover-role:${role.id}`, check: 'leftover-role', severity: 'medium', tenant: role.tenant, accessKeyId: role.createdBy, subject: `role ${role.tenant}/${role.name}`, message: `role ${role.name}: ${why}`, fix: `anvil role delete ${role.tenant} ${role.name}` }] : [];
  });
}

/** leftover-provider: OpenID Connect providers whose maker could not register them today (it must hold their roles). */
export function leftoverProviders(facts: AuditFacts): Finding[] {
  const makers = effectivePrincipals(facts);
  const roles = new Map(facts.roles.map((r) => [`${r.tenant}/${r.name}`, r]));
  return facts.providers.flatMap((provider): Finding[] => {
    if (provider.createdBy === undefined) return [];
    const scopes = provider.roles.flatMap((name) => roles.get(`${provider.tenant}/${name}`)?.scopes ?? []);
    const why = makerCannot(makers, provider.createdBy, provider.tenant, (p) => authorizeCredentialAdmin(p, { tenant: provider.tenant, scopes }).allowed);
    return why ? [{ id: `leftover-provider:${provider.id}`, check: 'leftover-provider', severity: 'medium', tenant: provider.tenant, accessKeyId: provider.createdBy, subject: `provider ${provider.issuer}`, message: `OpenID Connect provider ${provider.issuer} (${provider.id}): ${why}`, fix: `anvil oidc delete ${provider.id}` }] : [];
  });
}

/** leftover-capability: live capabilities (not revoked, root key not reset since) their minter could not mint today. */
export function leftoverCapabilities(facts: AuditFacts): Finding[] {
  const makers = effectivePrincipals(facts);
  return facts.capabilities.flatMap((mint): Finding[] => {
    if (mint.mintedBy === undefined || mint.revoked || mint.keyReset) return [];
    let grant: ScopeGrant;
    try {
      grant = capabilityGrant(mint.scope, mint.actions);
    } catch {
      return []; // not an object capability: nothing the gateway would honour
    }
    const why = makerCannot(makers, mint.mintedBy, mint.tenant, (p) => grantWithin(p, [grant]).allowed);
    return why ? [{ id: `leftover-capability:${mint.id}`, check: 'leftover-capability', severity: 'medium', tenant: mint.tenant, accessKeyId: mint.mintedBy, subject: `capability ${mint.id}`, message: `capability ${mint.id} (${formatGrant(grant)}, minted ${mint.createdAt}): ${why}`, fix: `anvil capability revoke ${mint.id}` }] : [];
  });
}

/** old-capability-key: a tenant's capability root key older than the configured age. */
export function oldCapabilityKeys(facts: AuditFacts, options: AuditOptions): Finding[] {
  return facts.capabilityKeys
    .filter((k) => daysBetween(new Date(k.createdAt), facts.now) > options.keyAgeDays)
    .map((k) => ({
      id: `old-capability-key:${k.tenant}/${k.generation}`, check: 'old-capability-key', severity: 'low', tenant: k.tenant, subject: `${k.tenant}/${k.generation}`,
      message: `the capability root key of tenant ${k.tenant} is ${daysBetween(new Date(k.createdAt), facts.now)} days old (more than ${options.keyAgeDays}); resetting it ends every capability minted under it`,
      fix: `anvil capability reset --tenant ${k.tenant}`,
    }));
}

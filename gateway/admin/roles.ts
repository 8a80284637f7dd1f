/**
 * Admin handlers for temporary credentials: roles, OpenID Connect providers and the session-token signing keys.
 * Root manages any tenant's; a tenant admin only its own tenant's, and only roles whose scopes it holds itself.
 * JWKS file paths are root-only (a path names a file on the gateway's host); tenant admins give https URLs.
 */
import { authorizeCredentialAdmin, authorizeTenantAdmin, invalidGrantReason, redactUrl, type OidcProviderInfo, type ScopeGrant } from '../../policy/index.ts';
import { tokenStoresOf } from '../sts/stores.ts';
import { makerOf, onlyFields, optionalInteger, optionalString, queryParam, requiredString, type AdminCall } from './call.ts';
import { invalidInput } from './errors.ts';
import { adminView, hidden, missing, reservedName } from './view.ts';

function tenantOf(call: AdminCall): string {
  const tenant = optionalString(call.body, 'tenant') ?? (call.principal.isRoot ? undefined : call.principal.tenant);
  if (tenant === undefined) throw invalidInput('"tenant" is required');
  return tenant;
}

function stringList(value: unknown, name: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v === '')) throw invalidInput(`"${name}" must be a list of strings`);
  return value as string[];
}

/** GET /roles?tenant= */
export async function listRoles(call: AdminCall): Promise<unknown> {
  const tenant = queryParam(call.query, 'tenant') ?? (call.principal.isRoot ? undefined : call.principal.tenant);
  if (tenant !== undefined) call.require(authorizeCredentialAdmin(call.principal, { tenant }));
  const view = await adminView(call);
  const roles = await tokenStoresOf(call.policy).sessions.listRoles(tenant === undefined ? {} : { tenant });
  return { roles: view ? roles.filter((r) => view.holds(r.scopes)) : roles };
}

/** POST /roles {tenant, name, description, scopes, maxDurationSeconds, trust, replace} */
export async function putRole(call: AdminCall): Promise<unknown> {
  const { body, principal } = call;
  onlyFields(body, ['tenant', 'name', 'description', 'scopes', 'maxDurationSeconds', 'trust', 'replace']);
  const tenant = tenantOf(call);
  const name = requiredString(body, 'name');
  const invalid = invalidGrantReason(body.scopes);
  if (invalid !== undefined) throw invalidInput(invalid);
  const scopes = body.scopes as ScopeGrant[];
  call.require(authorizeCredentialAdmin(principal, { tenant, scopes }));
  const { sessions } = tokenStoresOf(call.policy);
  // Replacing a role also takes away what it allowed: only someone holding that may do it.
  // A name taken by a role beyond a narrower admin's view is refused without saying so (a conflict would reveal it).
  const taken = await sessions.role(tenant, name);
  if (taken !== undefined && (await adminView(call))?.holds(taken.scopes) === false) reservedName(call, `role name ${name}`, `role ${name} exists beyond the caller's scopes`);
  const existing = body.replace === true ? taken : undefined;
  if (existing !== undefined) call.require(authorizeCredentialAdmin(principal, { tenant, scopes: existing.scopes }));
  return await sessions.putRole({
    tenant, name, scopes, maker: makerOf(principal),
    description: optionalString(body, 'description'),
    maxDurationSeconds: optionalInteger(body.maxDurationSeconds, 'maxDurationSeconds', 10_000_000),
    trust: stringList(body.trust, 'trust'),
    replace: body.replace === true,
    actor: principal.accessKeyId,
  });
}

/** GET /roles/{tenant}/{name} */
export async function showRole(call: AdminCall): Promise<unknown> {
  const { tenant, name } = call.params;
  call.require(authorizeCredentialAdmin(call.principal, { tenant: tenant! }));
  const role = await tokenStoresOf(call.policy).sessions.role(tenant!, name!);
  const absent = { message: `no role ${name} in tenant ${tenant}`, reason: `no role ${name} in tenant ${tenant}` };
  if (role === undefined) missing(call, absent);
  if ((await adminView(call))?.holds(role.scopes) === false) hidden(call, `role ${name} is beyond the caller's scopes`, absent);
  return role;
}

/**
 * DELETE /roles/{tenant}/{name}: its sessions end on their next request; only someone holding its scopes may. A
 * role beyond a narrower admin's view answers as a missing one.
 */
export async function deleteRole(call: AdminCall): Promise<unknown> {
  const { tenant, name } = call.params;
  call.require(authorizeCredentialAdmin(call.principal, { tenant: tenant! }));
  const { sessions } = tokenStoresOf(call.policy);
  const role = await sessions.role(tenant!, name!);
  const absent = { message: `no role ${name} in tenant ${tenant}`, reason: `no role ${name} in tenant ${tenant}` };
  if (role === undefined) missing(call, absent);
  if ((await adminView(call))?.holds(role.scopes) === false) hidden(call, `role ${name} is beyond the caller's scopes`, absent);
  call.require(authorizeCredentialAdmin(call.principal, { tenant: tenant!, scopes: role.scopes }));
  await sessions.deleteRole(tenant!, name!, { actor: call.principal.accessKeyId });
  return { deleted: `${tenant}/${name}` };
}

/** GET /oidc-providers?tenant= */
export async function listOidcProviders(call: AdminCall): Promise<unknown> {
  const tenant = queryParam(call.query, 'tenant') ?? (call.principal.isRoot ? undefined : call.principal.tenant);
  if (tenant !== undefined) call.require(authorizeCredentialAdmin(call.principal, { tenant }));
  const view = await adminView(call);
  // A narrower admin sees the providers whose every role it holds (those it could register or remove).
  const providers = await tokenStoresOf(call.policy).sessions.listOidcProviders(tenant === undefined ? {} : { tenant });
  return { providers: (view ? providers.filter(view.provider) : providers).map(shownProvider) };
}

/** A provider as the admin API shows it: a JWKS URL without its query string or fragment (they may hold a token). */
function shownProvider(p: OidcProviderInfo): OidcProviderInfo {
  return /^[a-z][a-z0-9+.-]*:/i.test(p.jwks) ? { ...p, jwks: redactUrl(p.jwks) } : p;
}

/**
 * Requires the caller to hold every scope of the named roles: an issuer can mint any subject, so whoever registers
 * (or removes) one hands out (or takes away) everything those roles allow. A role beyond a narrower admin's view is
 * refused exactly as a missing one (400, as the store answers for a role that does not exist).
 */
async function requireRolesHeld(call: AdminCall, tenant: string, roleNames: string[]): Promise<void> {
  const { sessions } = tokenStoresOf(call.policy);
  const view = await adminView(call);
  for (const name of roleNames) {
    const role = await sessions.role(tenant, name);
    if (role === undefined) continue;
    if (view && !view.holds(role.scopes)) {
      call.deny({ layer: 'scope', reason: `role ${name} is beyond the caller's scopes` });
      throw invalidInput(`no role ${name} in tenant ${tenant}`);
    }
    call.require(authorizeCredentialAdmin(call.principal, { tenant, scopes: role.scopes }));
  }
}

/**
 * POST /oidc-providers {tenant, issuer, audience, jwks, algorithms, roles}: root, or a tenant admin holding every
 * scope of every role the issuer's tokens may assume. The provider's sessions are bounded by its maker's authority.
 */
export async function addOidcProvider(call: AdminCall): Promise<unknown> {
  const { body, principal } = call;
  onlyFields(body, ['tenant', 'issuer', 'audience', 'jwks', 'algorithms', 'roles']);
  const tenant = tenantOf(call);
  call.require(authorizeCredentialAdmin(principal, { tenant }));
  const jwks = requiredString(body, 'jwks');
  if (!/^https?:\/\//i.test(jwks) && !principal.isRoot) call.require({ allowed: false, layer: 'scope', reason: 'only root may name a JWKS file on the gateway host' });
  const roles = stringList(body.roles, 'roles') ?? [];
  await requireRolesHeld(call, tenant, roles);
  // OpenID Connect Discovery 1.0 §3: an issuer identifier has no query or fragment (nor could logs show one safely).
  const issuer = requiredString(body, 'issuer');
  if (/[?#]/.test(issuer)) throw invalidInput('"issuer" must be a URL without query or fragment');
  // An issuer is trusted once per tenant; one trusted by a provider beyond a narrower admin's view is refused
  // without naming that provider (a conflict would reveal it).
  const view = await adminView(call);
  const taken = await tokenStoresOf(call.policy).sessions.oidcProvidersFor(tenant, issuer);
  if (view && taken.some((p) => !view.provider(p))) reservedName(call, `issuer ${issuer}`, `issuer ${issuer} is trusted by a provider beyond the caller's scopes`);
  return shownProvider(await tokenStoresOf(call.policy).sessions.addOidcProvider({
    tenant, jwks, roles,
    issuer,
    audience: requiredString(body, 'audience'),
    algorithms: stringList(body.algorithms, 'algorithms'),
    actor: principal.accessKeyId,
    maker: makerOf(principal),
  }));
}

/**
 * DELETE /oidc-providers/{id}: sessions it vouched for end on their next request. Another tenant's provider answers
 * as a missing one; removing one needs the same authority as adding it.
 */
export async function deleteOidcProvider(call: AdminCall): Promise<unknown> {
  const { sessions } = tokenStoresOf(call.policy);
  const { principal } = call;
  const info = await sessions.oidcProvider(call.params.id!);
  const absent = { message: `no OIDC provider ${call.params.id}`, reason: `no OIDC provider ${call.params.id} in tenant ${principal.tenant}` };
  if (info === undefined || (!principal.isRoot && info.tenant !== principal.tenant)) missing(call, absent);
  // One whose roles a narrower admin does not all hold is beyond its view: it answers as a missing one.
  if ((await adminView(call))?.provider(info) === false) hidden(call, `OIDC provider ${info.id} is beyond the caller's scopes`, absent);
  call.require(authorizeCredentialAdmin(principal, { tenant: info.tenant }));
  await requireRolesHeld(call, info.tenant, info.roles);
  await sessions.deleteOidcProvider(info.id, { actor: principal.accessKeyId });
  return { deleted: info.id };
}

/** GET /sts/keys: the published JWKS (root only here; GET /_anvil/keys serves it to anyone). */
export async function listSigningKeys(call: AdminCall): Promise<unknown> {
  call.require(authorizeTenantAdmin(call.principal));
  return await tokenStoresOf(call.policy).sessions.publicKeys();
}

/** POST /sts/keys/rotate {graceSeconds}: sign with a new key; 0 retires the old ones now, ending their sessions. */
export async function rotateSigningKey(call: AdminCall): Promise<unknown> {
  call.require(authorizeTenantAdmin(call.principal));
  onlyFields(call.body, ['graceSeconds']);
  const graceSeconds = optionalInteger(call.body.graceSeconds, 'graceSeconds', 10_000_000);
  return await tokenStoresOf(call.policy).sessions.rotateSigningKey({ graceSeconds, actor: call.principal.accessKeyId });
}

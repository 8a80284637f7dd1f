/**
 * Admin handlers for temporary credentials: roles, OpenID Connect providers and the session-token signing keys.
 * Root manages any tenant's; a tenant admin only its own tenant's, and only roles whose scopes it holds itself.
 * JWKS file paths are root-only (a path names a file on the gateway's host); tenant admins give https URLs.
 */
import { authorizeCredentialAdmin, authorizeTenantAdmin, invalidGrantReason, type ScopeGrant } from '../../policy/index.ts';
import { tokenStoresOf } from '../sts/stores.ts';
import { notFound, onlyFields, optionalInteger, optionalString, queryParam, requiredString, type AdminCall } from './call.ts';
import { invalidInput } from './errors.ts';

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
export function listRoles(call: AdminCall): unknown {
  const tenant = queryParam(call.query, 'tenant') ?? (call.principal.isRoot ? undefined : call.principal.tenant);
  if (tenant !== undefined) call.require(authorizeCredentialAdmin(call.principal, { tenant }));
  return { roles: tokenStoresOf(call.policy).sessions.listRoles(tenant === undefined ? {} : { tenant }) };
}

/** POST /roles {tenant, name, description, scopes, maxDurationSeconds, trust, replace} */
export function putRole(call: AdminCall): unknown {
  const { body, principal } = call;
  onlyFields(body, ['tenant', 'name', 'description', 'scopes', 'maxDurationSeconds', 'trust', 'replace']);
  const tenant = tenantOf(call);
  const name = requiredString(body, 'name');
  const invalid = invalidGrantReason(body.scopes);
  if (invalid !== undefined) throw invalidInput(invalid);
  const scopes = body.scopes as ScopeGrant[];
  call.require(authorizeCredentialAdmin(principal, { tenant, scopes }));
  return tokenStoresOf(call.policy).sessions.putRole({
    tenant, name, scopes,
    description: optionalString(body, 'description'),
    maxDurationSeconds: optionalInteger(body.maxDurationSeconds, 'maxDurationSeconds', 10_000_000),
    trust: stringList(body.trust, 'trust'),
    replace: body.replace === true,
    actor: principal.accessKeyId,
  });
}

/** GET /roles/{tenant}/{name} */
export function showRole(call: AdminCall): unknown {
  const { tenant, name } = call.params;
  call.require(authorizeCredentialAdmin(call.principal, { tenant: tenant! }));
  const role = tokenStoresOf(call.policy).sessions.role(tenant!, name!);
  if (role === undefined) throw notFound(`no role ${name} in tenant ${tenant}`);
  return role;
}

/** DELETE /roles/{tenant}/{name}: its sessions end on their next request. */
export function deleteRole(call: AdminCall): unknown {
  const { tenant, name } = call.params;
  call.require(authorizeCredentialAdmin(call.principal, { tenant: tenant! }));
  tokenStoresOf(call.policy).sessions.deleteRole(tenant!, name!, { actor: call.principal.accessKeyId });
  return { deleted: `${tenant}/${name}` };
}

/** GET /oidc-providers?tenant= */
export function listOidcProviders(call: AdminCall): unknown {
  const tenant = queryParam(call.query, 'tenant') ?? (call.principal.isRoot ? undefined : call.principal.tenant);
  if (tenant !== undefined) call.require(authorizeCredentialAdmin(call.principal, { tenant }));
  return { providers: tokenStoresOf(call.policy).sessions.listOidcProviders(tenant === undefined ? {} : { tenant }) };
}

/** POST /oidc-providers {tenant, issuer, audience, jwks, algorithms, roles} */
export function addOidcProvider(call: AdminCall): unknown {
  const { body, principal } = call;
  onlyFields(body, ['tenant', 'issuer', 'audience', 'jwks', 'algorithms', 'roles']);
  const tenant = tenantOf(call);
  call.require(authorizeCredentialAdmin(principal, { tenant }));
  const jwks = requiredString(body, 'jwks');
  if (!/^https?:\/\//i.test(jwks) && !principal.isRoot) call.require({ allowed: false, layer: 'scope', reason: 'only root may name a JWKS file on the gateway host' });
  return tokenStoresOf(call.policy).sessions.addOidcProvider({
    tenant, jwks,
    issuer: requiredString(body, 'issuer'),
    audience: requiredString(body, 'audience'),
    algorithms: stringList(body.algorithms, 'algorithms'),
    roles: stringList(body.roles, 'roles') ?? [],
    actor: principal.accessKeyId,
  });
}

/** DELETE /oidc-providers/{id}: sessions it vouched for end on their next request. */
export function deleteOidcProvider(call: AdminCall): unknown {
  const { sessions } = tokenStoresOf(call.policy);
  const info = sessions.oidcProvider(call.params.id!);
  if (info === undefined) throw notFound(`no OIDC provider ${call.params.id}`);
  call.require(authorizeCredentialAdmin(call.principal, { tenant: info.tenant }));
  sessions.deleteOidcProvider(info.id, { actor: call.principal.accessKeyId });
  return { deleted: info.id };
}

/** GET /sts/keys: the published JWKS (root only here; GET /_anvil/keys serves it to anyone). */
export function listSigningKeys(call: AdminCall): unknown {
  call.require(authorizeTenantAdmin(call.principal));
  return tokenStoresOf(call.policy).sessions.publicKeys();
}

/** POST /sts/keys/rotate {graceSeconds}: sign with a new key; 0 retires the old ones now, ending their sessions. */
export async function rotateSigningKey(call: AdminCall): Promise<unknown> {
  call.require(authorizeTenantAdmin(call.principal));
  onlyFields(call.body, ['graceSeconds']);
  const graceSeconds = optionalInteger(call.body.graceSeconds, 'graceSeconds', 10_000_000);
  return tokenStoresOf(call.policy).sessions.rotateSigningKey({ graceSeconds, actor: call.principal.accessKeyId });
}

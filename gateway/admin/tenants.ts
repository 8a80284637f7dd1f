/** Admin handlers for tenants: create, list, disable, enable and delete are root-only; a tenant admin may show its own. */
import { authorizeCredentialAdmin, authorizeTenantAdmin, visibleBuckets } from '../../policy/index.ts';
import { notFound, onlyFields, optionalString, requiredString, type AdminCall } from './call.ts';
import { adminView } from './view.ts';

/** GET /tenants */
export async function listTenants(call: AdminCall): Promise<unknown> {
  call.require(authorizeTenantAdmin(call.principal));
  return { tenants: await call.policy.listTenants() };
}

/**
 * POST /tenants {name, description}. A new tenant starts empty even if an earlier tenant of its name left
 * relationship data behind (a deletion interrupted between the two stores): that is purged first.
 */
export async function createTenant(call: AdminCall): Promise<unknown> {
  call.require(authorizeTenantAdmin(call.principal));
  onlyFields(call.body, ['name', 'description']);
  const name = requiredString(call.body, 'name');
  const description = optionalString(call.body, 'description');
  if ((await call.policy.showTenant(name)) === undefined) await call.relationships?.store.purgeTenant(name);
  return await call.policy.createTenant({ name, description, actor: call.principal.accessKeyId });
}

/**
 * GET /tenants/{name}: root, or an admin of that tenant. An admin narrower than its tenant gets the buckets it holds a
 * grant in (as in GET /buckets) and counts over what it sees (README "Who may do what"): its bucketCount is those
 * buckets, its credentialCount the credentials GET /credentials shows it, never the whole tenant's.
 */
export async function showTenant(call: AdminCall): Promise<unknown> {
  const { name } = call.params;
  // Decide before looking, so a tenant admin cannot probe which other tenants exist.
  call.require(authorizeCredentialAdmin(call.principal, { tenant: name! }));
  const info = await call.policy.showTenant(name!);
  if (info === undefined) throw notFound(`no tenant ${name}`);
  const buckets = await call.policy.listTenantBuckets(name!);
  const view = await adminView(call);
  if (view === undefined) return { ...info, buckets };
  const seen = visibleBuckets(call.principal, buckets, () => name);
  const credentials = (await call.policy.listCredentials({ tenant: name! })).filter(view.credential);
  return { ...info, bucketCount: seen.length, credentialCount: credentials.length, buckets: seen };
}

/** POST /tenants/{name}/disable and /enable */
export function setTenantDisabled(disabled: boolean): (call: AdminCall) => Promise<unknown> {
  return async function toggleTenant(call) {
    call.require(authorizeTenantAdmin(call.principal));
    onlyFields(call.body, []);
    await call.policy.disableTenant(call.params.name!, { disabled, actor: call.principal.accessKeyId });
    return call.policy.showTenant(call.params.name!);
  };
}

/**
 * POST /tenants/{name}/lockdown {reason} and /lockdown/lift {reason} (root only): every credential, session,
 * capability and share link of the tenant refused from its next request, until lifted; both audited with the reason.
 */
export function lockdownTenant(lift: boolean): (call: AdminCall) => unknown {
  return async function lockdown(call) {
    call.require(authorizeTenantAdmin(call.principal));
    onlyFields(call.body, ['reason']);
    const name = call.params.name!;
    const cutOff = await call.policy.lockdownTenant(name, { lift, reason: requiredString(call.body, 'reason'), actor: call.principal.accessKeyId });
    return { ...(await call.policy.showTenant(name)), ...(lift ? {} : { cutOff }) };
  };
}

/**
 * DELETE /tenants/{name}: refused (409) while the tenant owns buckets. Everything hanging from the tenant goes with
 * it: credentials, roles, providers, capability keys and mints (policy store), schemas and tuples (relationships).
 */
export async function deleteTenant(call: AdminCall): Promise<unknown> {
  call.require(authorizeTenantAdmin(call.principal));
  await call.policy.deleteTenant(call.params.name!, { actor: call.principal.accessKeyId });
  await call.relationships?.store.purgeTenant(call.params.name!);
  return { deleted: call.params.name };
}

/** Admin handlers for tenants: create, list, disable, enable and delete are root-only; a tenant admin may show its own. */
import { authorizeCredentialAdmin, authorizeTenantAdmin } from '../../policy/index.ts';
import { notFound, onlyFields, optionalString, requiredString, type AdminCall } from './call.ts';

/** GET /tenants */
export function listTenants(call: AdminCall): unknown {
  call.require(authorizeTenantAdmin(call.principal));
  return { tenants: call.policy.listTenants() };
}

/** POST /tenants {name, description} */
export function createTenant(call: AdminCall): unknown {
  call.require(authorizeTenantAdmin(call.principal));
  onlyFields(call.body, ['name', 'description']);
  const name = requiredString(call.body, 'name');
  const description = optionalString(call.body, 'description');
  return call.policy.createTenant({ name, description, actor: call.principal.accessKeyId });
}

/** GET /tenants/{name}: root, or an admin of that tenant. */
export function showTenant(call: AdminCall): unknown {
  const { name } = call.params;
  // Decide before looking, so a tenant admin cannot probe which other tenants exist.
  call.require(authorizeCredentialAdmin(call.principal, { tenant: name! }));
  const info = call.policy.showTenant(name!);
  if (info === undefined) throw notFound(`no tenant ${name}`);
  return { ...info, buckets: call.policy.listTenantBuckets(name!) };
}

/** POST /tenants/{name}/disable and /enable */
export function setTenantDisabled(disabled: boolean): (call: AdminCall) => unknown {
  return function toggleTenant(call) {
    call.require(authorizeTenantAdmin(call.principal));
    onlyFields(call.body, []);
    call.policy.disableTenant(call.params.name!, { disabled, actor: call.principal.accessKeyId });
    return call.policy.showTenant(call.params.name!);
  };
}

/** DELETE /tenants/{name}: refused (409) while the tenant owns buckets. */
export function deleteTenant(call: AdminCall): unknown {
  call.require(authorizeTenantAdmin(call.principal));
  call.policy.deleteTenant(call.params.name!, { actor: call.principal.accessKeyId });
  return { deleted: call.params.name };
}

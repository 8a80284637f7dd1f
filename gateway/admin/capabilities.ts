/**
 * Admin handlers for object capabilities: minting (only within the minter's own authority at that moment, and only
 * on buckets of its tenant), revocation by id, and resetting a tenant's root key (every earlier capability dies).
 */
import {
  authorizeCredentialAdmin,
  capabilityGrant,
  grantWithin,
  isCapabilityAction,
  isReservedKey,
  objectScope,
  tenantOfCapabilityId,
  TENANT_WIDE,
  visibleBuckets,
  type CapabilityAction,
} from '../../policy/index.ts';
import { tokenStoresOf } from '../sts/stores.ts';
import { makerOf, onlyFields, optionalString, optionalTime, requiredString, type AdminCall } from './call.ts';
import { AdminError, invalidInput } from './errors.ts';
import { hidden, missing, SHOWN_AS } from './view.ts';

/** POST /capabilities {bucket, prefix, exact, actions, expiresAt, tenant}: the capability string and its id. */
export async function mintCapability(call: AdminCall): Promise<unknown> {
  const { body, principal, policy } = call;
  onlyFields(body, ['tenant', 'bucket', 'prefix', 'exact', 'actions', 'expiresAt']);
  const bucket = requiredString(body, 'bucket');
  const prefix = optionalString(body, 'prefix') ?? '';
  if (isReservedKey(prefix)) throw invalidInput(`prefix ${prefix} is reserved`);
  const actions = (body.actions ?? ['read']) as unknown;
  if (!Array.isArray(actions) || actions.length === 0 || !actions.every((a) => typeof a === 'string' && isCapabilityAction(a))) {
    throw invalidInput('"actions" must be a non-empty list of read, list, write, delete');
  }
  let expiresAt = optionalTime(body.expiresAt, 'expiresAt');
  if (expiresAt !== undefined && expiresAt.getTime() <= Date.now()) throw invalidInput('"expiresAt" must be in the future');
  // A capability stops working with its minter's credential, so it never claims to outlive it.
  const minter = principal.isRoot ? undefined : await policy.resolveAccessKey(principal.accessKeyId);
  const minterEnd = minter?.ok ? minter.expiresAt : undefined;
  if (minterEnd && (expiresAt === undefined || expiresAt > minterEnd)) expiresAt = minterEnd;
  // A tenant admin names only its own tenant, as in POST /credentials: another is refused the same way (403, layer
  // tenant, "tenant other is not tenant acme"), never silently replaced by its own.
  const asked = optionalString(body, 'tenant');
  if (!principal.isRoot && asked !== undefined) call.require(authorizeCredentialAdmin(principal, { tenant: asked }));
  const owner = bucket === '*' ? undefined : await policy.bucketOwner(bucket);
  // Only root learns that a name is free: to anyone else it answers as another tenant's bucket does.
  if (bucket !== '*' && owner === undefined && principal.isRoot) throw invalidInput(`bucket ${bucket} belongs to no tenant`);
  const tenant = principal.isRoot ? (asked ?? owner) : principal.tenant;
  if (tenant === undefined) throw invalidInput('"tenant" is required for a capability on every bucket');
  const notOwned = `bucket ${bucket} is not owned by tenant ${tenant}`;
  if (bucket !== '*' && owner !== tenant) call.require({ allowed: false, layer: 'tenant', reason: notOwned }, { bucket });
  // A bucket of the tenant that a narrower admin holds no grant in answers as a missing or another tenant's one does
  // (README "Who may do what"); the denial line keeps the true reason for root and tenant-wide admins (view.ts).
  if (bucket !== '*' && !principal.isRoot && visibleBuckets(principal, [bucket], () => owner).length === 0) {
    call.deny({ layer: 'scope', reason: `bucket ${bucket} is beyond the caller's scopes${SHOWN_AS}${notOwned})`, bucket });
    throw new AdminError('AccessDenied', notOwned);
  }
  if (body.exact !== undefined && typeof body.exact !== 'boolean') throw invalidInput('"exact" must be true or false');
  const exact = body.exact === true;
  if (exact && prefix === '') throw invalidInput('an exact capability needs the object key as "prefix"');
  const scope = objectScope(bucket, prefix, exact);
  call.require(grantWithin(principal, [capabilityGrant(scope, actions)]), { bucket });
  const minted = await tokenStoresOf(policy).capabilities.mint(tenant, scope, {
    expiresAt, actions: actions as CapabilityAction[], actor: principal.accessKeyId, mintedBy: makerOf(principal),
  });
  return { ...minted, tenant, bucket, prefix, ...(exact ? { exact } : {}), actions, ...(expiresAt ? { expiresAt: expiresAt.toISOString() } : {}) };
}

/**
 * POST /capabilities/{id}/revoke: refused on its next use, on every node. A tenant admin may revoke only a
 * capability of its tenant whose grant it holds itself; an id never minted here answers 404 (it verifies nowhere).
 */
export async function revokeCapability(call: AdminCall): Promise<unknown> {
  onlyFields(call.body, []);
  const id = call.params.id!;
  let tenant: string;
  try {
    tenant = tenantOfCapabilityId(id);
  } catch {
    throw invalidInput(`${id} is not a capability id`);
  }
  call.require(authorizeCredentialAdmin(call.principal, { tenant }));
  const { capabilities } = tokenStoresOf(call.policy);
  const mint = await capabilities.mintRecord(id);
  const absent = { message: `no capability ${id}`, reason: `no capability ${id} in tenant ${tenant}` };
  if (mint === undefined) {
    if (!call.principal.isRoot) missing(call, absent);
  } else if (!authorizeCredentialAdmin(call.principal, { tenant, scopes: [capabilityGrant(mint.scope, mint.actions)] }).allowed) {
    // One whose grant the caller does not hold is beyond its view: it answers as one never minted.
    hidden(call, `capability ${id} grants more than the caller holds`, absent);
  }
  return await capabilities.revoke(id, { actor: call.principal.accessKeyId });
}

/**
 * POST /capabilities/reset {tenant}: a new root key for the tenant; every capability minted before stops working.
 * It reaches every capability of the tenant, so a tenant admin needs authority over the whole tenant.
 */
export async function resetCapabilities(call: AdminCall): Promise<unknown> {
  onlyFields(call.body, ['tenant']);
  const tenant = optionalString(call.body, 'tenant') ?? (call.principal.isRoot ? undefined : call.principal.tenant);
  if (tenant === undefined) throw invalidInput('"tenant" is required');
  call.require(authorizeCredentialAdmin(call.principal, { tenant, scopes: [...TENANT_WIDE] }));
  if ((await call.policy.showTenant(tenant)) === undefined) throw invalidInput(`no tenant ${tenant}`);
  return { tenant, ...(await tokenStoresOf(call.policy).capabilities.resetRootKey(tenant, { actor: call.principal.accessKeyId })) };
}

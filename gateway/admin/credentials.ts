/**
 * Admin handlers for credentials. Root may manage any; a tenant admin only its own tenant's, and only credentials
 * whose scopes it holds itself (grantWithin), so no credential it creates, rotates or revokes can exceed its own.
 * The secret leaves the gateway in exactly two responses: create and rotate.
 */
import { appSubject, authorizeCredentialAdmin, holdsTenantWide, invalidGrantReason, type CredentialInfo, type ScopeGrant } from '../../policy/index.ts';
import { makerOf, notFound, onlyFields, optionalInteger, optionalString, optionalTime, queryParam, requiredString, type AdminCall } from './call.ts';
import { invalidInput } from './errors.ts';
import { adminView, hidden, missing } from './view.ts';

/** Longest rotation grace period: an old secret that never dies would defeat the rotation. */
export const MAX_GRACE_SECONDS = 30 * 24 * 3600;

/** GET /credentials?tenant=: root sees all (or one tenant's); a tenant admin its own tenant's. */
export async function listCredentials(call: AdminCall): Promise<unknown> {
  const { principal } = call;
  const tenant = queryParam(call.query, 'tenant') ?? (principal.isRoot ? undefined : principal.tenant);
  if (tenant !== undefined) call.require(authorizeCredentialAdmin(principal, { tenant }));
  const view = await adminView(call);
  const all = await call.policy.listCredentials(tenant === undefined ? {} : { tenant });
  return { credentials: view ? all.filter(view.credential) : all };
}

/** POST /credentials {tenant, name, description, scopes, expiresAt}: answers with the secret, this once. */
export async function createCredential(call: AdminCall): Promise<unknown> {
  const { principal, body } = call;
  onlyFields(body, ['tenant', 'name', 'description', 'scopes', 'expiresAt']);
  const tenant = optionalString(body, 'tenant') ?? (principal.isRoot ? undefined : principal.tenant);
  if (tenant === undefined) throw invalidInput('"tenant" is required');
  const name = requiredString(body, 'name');
  const description = optionalString(body, 'description');
  const invalid = invalidGrantReason(body.scopes);
  if (invalid !== undefined) throw invalidInput(invalid);
  const scopes = body.scopes as ScopeGrant[];
  const expiresAt = optionalTime(body.expiresAt, 'expiresAt');
  if (expiresAt !== undefined && expiresAt.getTime() <= Date.now()) throw invalidInput('"expiresAt" must be in the future');
  call.require(authorizeCredentialAdmin(principal, { tenant, scopes }));
  return await call.policy.createCredential({ tenant, name, description, scopes, expiresAt, actor: principal.accessKeyId, maker: makerOf(principal) });
}

/**
 * The credential a path names, after checking the caller may see it (and, for changes, holds its scopes). A
 * credential of another tenant answers exactly as a missing one (404), so ids are no oracle across tenants.
 */
async function targetCredential(call: AdminCall, change: boolean): Promise<CredentialInfo> {
  const id = call.params.id!;
  const info = await call.policy.showCredential(id);
  const { principal } = call;
  const absent = { message: `no credential ${id}`, reason: `no credential ${id} in tenant ${principal.tenant}` };
  if (info === undefined || (!principal.isRoot && info.tenant !== principal.tenant)) missing(call, absent);
  // An admin narrower than its tenant sees only credentials it holds (or itself); the others answer as missing, to
  // a change as to a read, so "exists but broader" and "missing" cannot be told apart.
  const view = await adminView(call);
  if (view && !view.credential(info)) hidden(call, `credential ${id} is beyond the caller's scopes`, absent);
  const target = { tenant: info.tenant, isRoot: info.isRoot, scopes: change ? info.scopes : undefined };
  call.require(authorizeCredentialAdmin(principal, target));
  return info;
}

/** GET /credentials/{id} */
export function showCredential(call: AdminCall): Promise<unknown> {
  return targetCredential(call, false);
}

/**
 * Rotation hands the caller the credential's secret, and with it everything the credential can do: its scopes
 * (targetCredential) and its subject's relationships. Tuples are written by others and hold authority the caller may
 * lack, so unless the caller is root or holds tenant-wide authority (which can write itself any tuple anyway), the
 * credential's subject must hold no relationship grant at all: no tuple names it and no wildcard covers its type.
 */
async function requireIdentityHeld(call: AdminCall, info: CredentialInfo): Promise<void> {
  const { principal } = call;
  // Rotating one's own secret hands over nothing one did not have.
  if (principal.isRoot || holdsTenantWide(principal) || info.accessKeyId === principal.accessKeyId) return;
  const subject = appSubject(info.accessKeyId);
  if (await call.relationships?.subjectHasGrants(info.tenant, subject)) {
    call.require({
      allowed: false,
      layer: 'relationship',
      reason: `${subject} holds relationship grants: only root or an admin holding every family on every bucket may take over its secret`,
    });
  }
}

/** POST /credentials/{id}/rotate {graceSeconds}: the new secret, this once. */
export async function rotateCredential(call: AdminCall): Promise<unknown> {
  const info = await targetCredential(call, true);
  await requireIdentityHeld(call, info);
  onlyFields(call.body, ['graceSeconds']);
  const graceSeconds = optionalInteger(call.body.graceSeconds, 'graceSeconds', MAX_GRACE_SECONDS) ?? 0;
  return await call.policy.rotateCredential(info.accessKeyId, { graceSeconds, actor: call.principal.accessKeyId });
}

/**
 * The credential and every credential made from it, down the chain (all of which end with it), by access key id.
 */
async function madeFrom(call: AdminCall, root: CredentialInfo): Promise<string[]> {
  const all = await call.policy.listCredentials({ tenant: root.tenant });
  const ids = [root.accessKeyId];
  for (let i = 0; i < ids.length; i++) ids.push(...all.filter((c) => c.createdBy === ids[i]).map((c) => c.accessKeyId));
  return ids;
}

/** The tuples the credential and what it made wrote as applications go with them (see RelationshipStore.purgeWrittenBy). */
async function purgeTuples(call: AdminCall, ids: string[], info: CredentialInfo, what: string): Promise<void> {
  await call.relationships?.store.purgeWrittenBy(info.tenant, ids, { actor: call.principal.accessKeyId, reason: `credential ${info.accessKeyId} ${what}`, requestId: call.requestId });
}

/** Revokes a credential and purges the tuples it and what it made wrote as applications. */
async function revokeAndPurge(call: AdminCall, info: CredentialInfo): Promise<void> {
  const ids = await madeFrom(call, info);
  await call.policy.revokeCredential(info.accessKeyId, { actor: call.principal.accessKeyId });
  await purgeTuples(call, ids, info, 'revoked');
}

/** POST /credentials/{id}/revoke: refused on every node within the consistency bound, with all it made. */
export async function revokeCredential(call: AdminCall): Promise<unknown> {
  const info = await targetCredential(call, true);
  onlyFields(call.body, []);
  await revokeAndPurge(call, info);
  return call.policy.showCredential(info.accessKeyId);
}

/**
 * POST /tenants/{name}/credentials/revoke: every live application credential of the tenant (the emergency answer to
 * a leaked key whose owner is unknown), each exactly as a single revoke (what it made ends with it). A tenant admin
 * may do it in its own tenant and revokes what it holds the scopes of, its own credential last; the rest is listed
 * as refused. The root credential is never among them. An admin narrower than its tenant (view.ts) acts on the
 * credentials it sees and is told `partial`: whatever lies beyond its authority is neither revoked nor named.
 */
export async function revokeTenantCredentials(call: AdminCall): Promise<unknown> {
  const tenant = call.params.name!;
  onlyFields(call.body, []);
  call.require(authorizeCredentialAdmin(call.principal, { tenant }));
  if ((await call.policy.showTenant(tenant)) === undefined) throw notFound(`no tenant ${tenant}`);
  const self = call.principal.accessKeyId;
  const view = await adminView(call);
  const live = (await call.policy.listCredentials({ tenant })).filter((c) => !c.isRoot && c.status !== 'revoked' && (view?.credential(c) ?? true));
  const ordered = [...live.filter((c) => c.accessKeyId !== self), ...live.filter((c) => c.accessKeyId === self)];
  const revoked: string[] = [];
  const refused: Array<{ accessKeyId: string; reason: string }> = [];
  for (const info of ordered) {
    // Revoking an earlier one may already have ended this one down its chain; it is revoked all the same.
    const decision = authorizeCredentialAdmin(call.principal, { tenant, isRoot: info.isRoot, scopes: info.scopes });
    if (!decision.allowed) {
      call.deny({ layer: decision.layer, reason: `${info.accessKeyId}: ${decision.reason}` });
      refused.push({ accessKeyId: info.accessKeyId, reason: decision.reason });
      continue;
    }
    await revokeAndPurge(call, info);
    revoked.push(info.accessKeyId);
  }
  return { tenant, revoked, refused, ...(view ? { partial: true } : {}) };
}

/** DELETE /credentials/{id}: everything it made ends with it (credentials, roles, providers, capabilities, tuples). */
export async function deleteCredential(call: AdminCall): Promise<unknown> {
  const info = await targetCredential(call, true);
  const ids = await madeFrom(call, info);
  await call.policy.deleteCredential(info.accessKeyId, { actor: call.principal.accessKeyId });
  await purgeTuples(call, ids, info, 'deleted');
  return { deleted: info.accessKeyId };
}

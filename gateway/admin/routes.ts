/**
 * The admin API's routing table (method + path pattern → action and handler) and the dispatcher both the gateway
 * and the CLI's local mode call: it gates every action on the admin family, records refusals, and runs the handler.
 */
import { type AccessRecords, type DenialLog, type Family, type PolicyStore, type Principal, type relationships } from '../../policy/index.ts';
import { listAuditChecks, previewAuditCheck, pruneLeftoverTuples, runAuditCheck } from './audit-check.ts';
import { assignBucket, listBuckets } from './buckets.ts';
import { mintCapability, resetCapabilities, revokeCapability } from './capabilities.ts';
import { NEEDS_ADMIN, type AdminCall, type CallerNow, type AdminRefusal, type AdminRoute, type AdminTarget } from './call.ts';
import { createCredential, deleteCredential, listCredentials, revokeCredential, revokeTenantCredentials, rotateCredential, showCredential } from './credentials.ts';
import { AdminError, invalidInput } from './errors.ts';
import { AUDIT_QUERY, DENIAL_QUERY, listAudit, listDenials } from './logs.ts';
import { parseAdminBody } from './schemas.ts';
import { RELATIONSHIP_ADMIN_ROUTES, RELATIONSHIP_FAMILY_ROUTES } from './relationships.ts';
import {
  addOidcProvider, deleteOidcProvider, deleteRole, listOidcProviders, listRoles, listSigningKeys, putRole, rotateSigningKey, showRole,
} from './roles.ts';
import { createTenant, deleteTenant, listTenants, lockdownTenant, setTenantDisabled, showTenant } from './tenants.ts';
import { whoami } from './whoami.ts';

/** The URL path every admin endpoint lives under; `_anvil` is no valid S3 bucket name, so it never collides. */
export const ADMIN_PREFIX = '/_anvil/admin/v1';

export type { AdminRoute };

/** Every endpoint that needs the admin family. */
export const ADMIN_ROUTES: AdminRoute[] = [
  { method: 'GET', pattern: '/tenants', action: 'Admin:ListTenants', query: [], run: listTenants },
  { method: 'POST', pattern: '/tenants', action: 'Admin:CreateTenant', status: 201, run: createTenant },
  { method: 'GET', pattern: '/tenants/:name', action: 'Admin:GetTenant', run: showTenant },
  { method: 'DELETE', pattern: '/tenants/:name', action: 'Admin:DeleteTenant', run: deleteTenant },
  { method: 'POST', pattern: '/tenants/:name/disable', action: 'Admin:DisableTenant', run: setTenantDisabled(true) },
  { method: 'POST', pattern: '/tenants/:name/enable', action: 'Admin:EnableTenant', run: setTenantDisabled(false) },
  { method: 'POST', pattern: '/tenants/:name/lockdown', action: 'Admin:LockdownTenant', run: lockdownTenant(false) },
  { method: 'POST', pattern: '/tenants/:name/lockdown/lift', action: 'Admin:LiftTenantLockdown', run: lockdownTenant(true) },
  { method: 'POST', pattern: '/tenants/:name/credentials/revoke', action: 'Admin:RevokeTenantCredentials', run: revokeTenantCredentials },

  { method: 'GET', pattern: '/credentials', action: 'Admin:ListCredentials', query: ['tenant'], run: listCredentials },
  { method: 'POST', pattern: '/credentials', action: 'Admin:CreateCredential', status: 201, run: createCredential },
  { method: 'GET', pattern: '/credentials/:id', action: 'Admin:GetCredential', run: showCredential },
  { method: 'DELETE', pattern: '/credentials/:id', action: 'Admin:DeleteCredential', run: deleteCredential },
  { method: 'POST', pattern: '/credentials/:id/rotate', action: 'Admin:RotateCredential', run: rotateCredential },
  { method: 'POST', pattern: '/credentials/:id/revoke', action: 'Admin:RevokeCredential', run: revokeCredential },

  { method: 'GET', pattern: '/buckets', action: 'Admin:ListBuckets', query: [], run: listBuckets },
  { method: 'PUT', pattern: '/buckets/:bucket/owner', action: 'Admin:AssignBucket', run: assignBucket },

  { method: 'GET', pattern: '/roles', action: 'Admin:ListRoles', query: ['tenant'], run: listRoles },
  { method: 'POST', pattern: '/roles', action: 'Admin:PutRole', status: 201, run: putRole },
  { method: 'GET', pattern: '/roles/:tenant/:name', action: 'Admin:GetRole', run: showRole },
  { method: 'DELETE', pattern: '/roles/:tenant/:name', action: 'Admin:DeleteRole', run: deleteRole },
  { method: 'GET', pattern: '/oidc-providers', action: 'Admin:ListOidcProviders', query: ['tenant'], run: listOidcProviders },
  { method: 'POST', pattern: '/oidc-providers', action: 'Admin:AddOidcProvider', status: 201, run: addOidcProvider },
  { method: 'DELETE', pattern: '/oidc-providers/:id', action: 'Admin:DeleteOidcProvider', run: deleteOidcProvider },
  { method: 'GET', pattern: '/sts/keys', action: 'Admin:ListSigningKeys', run: listSigningKeys },
  { method: 'POST', pattern: '/sts/keys/rotate', action: 'Admin:RotateSigningKey', run: rotateSigningKey },

  { method: 'POST', pattern: '/capabilities', action: 'Admin:MintCapability', status: 201, run: mintCapability },
  { method: 'POST', pattern: '/capabilities/reset', action: 'Admin:ResetCapabilities', run: resetCapabilities },
  { method: 'POST', pattern: '/capabilities/:id/revoke', action: 'Admin:RevokeCapability', run: revokeCapability },

  ...RELATIONSHIP_ADMIN_ROUTES,

  { method: 'GET', pattern: '/denials', action: 'Admin:QueryDenials', query: DENIAL_QUERY, run: listDenials },
  { method: 'GET', pattern: '/audit', action: 'Admin:QueryAudit', query: AUDIT_QUERY, run: listAudit },
  { method: 'GET', pattern: '/audit/check', action: 'Admin:PreviewAuditCheck', run: previewAuditCheck },
  { method: 'POST', pattern: '/audit/check', action: 'Admin:RunAuditCheck', run: runAuditCheck },
  { method: 'GET', pattern: '/audit/checks', action: 'Admin:ListAuditChecks', query: ['tenant', 'limit'], run: listAuditChecks },
  { method: 'POST', pattern: '/tuples/prune-leftovers', action: 'Admin:PruneLeftoverTuples', run: pruneLeftoverTuples },
];

/** Endpoints other families open (relationship reads, writes, checks, watch); admin opens them too. */
export const FAMILY_ROUTES: AdminRoute[] = [
  ...RELATIONSHIP_FAMILY_ROUTES,
  // Any live credential may ask who it is (`anvil whoami`), one without a single grant too: that is when its user
  // most needs to see its grants, and the answer tells the caller only about itself.
  { method: 'GET', pattern: '/whoami', action: 'Admin:WhoAmI', families: [], run: whoami },
];

const ALL_ROUTES = [...ADMIN_ROUTES, ...FAMILY_ROUTES];

/** A request to dispatch: the path after ADMIN_PREFIX, decoded once. */
export interface AdminRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  body: Record<string, unknown>;
  /** A text/plain body, for routes that take one. */
  text?: string;
}

/** What the dispatcher needs besides the request. */
export interface AdminContext {
  principal: Principal;
  policy: PolicyStore;
  dataDir: string;
  relationships?: relationships.Relationships;
  /** This node's denial log, written before a denial query so the node reads its own lines. */
  denials?: DenialLog;
  records?: AccessRecords;
  requestId?: string;
  /** Request headers by lower-case name, when the call came over HTTP. */
  header?: (name: string) => string | undefined;
  /** The caller as it stands now (AdminCall.callerNow), when the call came over HTTP. */
  callerNow?: () => Promise<CallerNow>;
  /** Records one refused admin request (a denial line). */
  deny(action: string, refusal: AdminRefusal): void;
  /** Records the family an admitted request used (the access records), when the call came over HTTP. */
  used?(family: Family): void;
}

/** A successful answer. */
export interface AdminResponse {
  status: number;
  body: unknown;
}

function matchPattern(pattern: string, segments: string[]): Record<string, string> | undefined {
  const parts = pattern.split('/').slice(1);
  if (parts.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, part] of parts.entries()) {
    if (part.startsWith(':')) {
      if (segments[i] === '') return undefined;
      params[part.slice(1)] = segments[i]!;
    } else if (part !== segments[i]) return undefined;
  }
  return params;
}

/** The route and parameters a method and path name; 404 for no path, 405 for a path without that method. */
export function matchAdminRoute(method: string, path: string): { route: AdminRoute; params: Record<string, string> } {
  const segments = path.split('/').slice(1);
  let pathKnown = false;
  for (const route of ALL_ROUTES) {
    const params = matchPattern(route.pattern, segments);
    if (params === undefined) continue;
    if (route.method === method) return { route, params };
    pathKnown = true;
  }
  if (pathKnown) throw new AdminError('MethodNotAllowed', `${method} is not allowed on ${ADMIN_PREFIX}${path}`);
  throw new AdminError('NotFound', `no admin endpoint ${ADMIN_PREFIX}${path}`);
}

/** Runs one admin request for an authenticated principal. */
export async function dispatchAdmin(req: AdminRequest, ctx: AdminContext): Promise<AdminResponse> {
  const { route, params } = matchAdminRoute(req.method, req.path);
  const refuse = (refusal: AdminRefusal, message: string): never => {
    ctx.deny(route.action, refusal);
    throw new AdminError('AccessDenied', message);
  };
  const { principal } = ctx;
  // Every endpoint needs the admin family (or one its route names): an ordinary credential learns nothing here.
  const families = route.families ?? ['admin'];
  const holds = (family: Family) => principal.isRoot || principal.scopes.some((grant) => grant.families.includes(family));
  if (families.length > 0 && !families.some(holds)) {
    const needs = families.join(' or ');
    refuse({ layer: 'scope', reason: `no grant of ${needs}` }, families.length === 1 && families[0] === 'admin' ? NEEDS_ADMIN : `this operation needs the ${needs} family`);
  }
  // A repeated parameter is refused on every endpoint: handlers read one value (URLSearchParams.get, the first), so
  // `?bucket=a&bucket=b` would answer rows filtered by half of what was asked, and `?tenant=mine&tenant=other` would
  // pass for `mine` while asking for `other` (o12d F5).
  const repeated = repeatedParameters(req.query);
  if (repeated.length > 0) {
    throw invalidInput(`query parameter ${repeated.map((n) => `"${n}"`).join(', ')} is repeated (${ADMIN_PREFIX}${req.path} takes each parameter once)`);
  }
  if (route.query !== undefined) {
    const unknown = [...new Set(req.query.keys())].filter((name) => !route.query!.includes(name));
    if (unknown.length > 0) {
      throw invalidInput(`unknown query parameter ${unknown.map((n) => `"${n}"`).join(', ')} (${ADMIN_PREFIX}${req.path} takes ${route.query.length > 0 ? route.query.join(', ') : 'none'})`);
    }
  }
  const call: AdminCall = {
    principal,
    policy: ctx.policy,
    dataDir: ctx.dataDir,
    params,
    query: req.query,
    // Declared at the edge: a JSON body of the wrong shape is a 400 here, before any handler reads it (a text/plain
    // body comes with its fields in the query instead).
    body: req.text === undefined ? parseAdminBody(route.action, req.body) : req.body,
    text: req.text,
    relationships: ctx.relationships,
    denials: ctx.denials,
    records: ctx.records,
    requestId: ctx.requestId,
    header: (name) => ctx.header?.(name),
    ...(ctx.callerNow ? { callerNow: ctx.callerNow } : {}),
    require(decision, where = {}) {
      if (!decision.allowed) refuse({ layer: decision.layer, reason: decision.reason, ...where }, decision.reason);
    },
    deny: (refusal) => ctx.deny(route.action, refusal),
  };
  const body = await route.run(call);
  // The family an answered request used: the narrowest one that opens it (whoami, open without one, uses none).
  if (families.length > 0) ctx.used?.(families.find((f) => f !== 'admin' && holds(f)) ?? 'admin');
  return { status: route.status ?? 200, body };
}

/** The names given more than once in `query`, in their first order. */
function repeatedParameters(query: URLSearchParams): string[] {
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const name of query.keys()) (seen.has(name) ? repeated : seen).add(name);
  return [...repeated];
}

/** ADMIN_PREFIX as the bucket and key prefix it addresses (split once: every S3 request asks adminTargetOf). */
const ADMIN_TARGET = (() => {
  const [, bucket, ...rest] = ADMIN_PREFIX.split('/');
  return { bucket: bucket!, base: rest.join('/') };
})();

/** The admin target when a request addresses ADMIN_PREFIX (path-style), else undefined. */
export function adminTargetOf(target: { bucket: string; key: string; query: URLSearchParams }): AdminTarget | undefined {
  const { bucket, base } = ADMIN_TARGET;
  if (target.bucket !== bucket || (target.key !== base && !target.key.startsWith(`${base}/`))) return undefined;
  return { path: target.key.slice(base.length), query: target.query };
}

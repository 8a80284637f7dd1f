/**
 * Admin handlers for the denial and audit logs, which hold every node's lines. Both need the admin family (checked
 * by the dispatcher); a tenant admin reads only its own tenant's lines: the tenant filter is forced, and asking for
 * another tenant is refused. An admin narrower than its tenant reads only lines within its reach (view.ts).
 */
import { authorizeCredentialAdmin, queryAudit, queryDenials, type DenialFilter, type DenialLayer } from '../../policy/index.ts';
import { optionalInteger, optionalTime, queryParam, type AdminCall } from './call.ts';
import { invalidInput } from './errors.ts';
import { adminView } from './view.ts';

/** Most lines one query returns; the newest are kept. */
export const MAX_LOG_LIMIT = 10_000;

/** Lines a query returns when it names no limit. */
export const DEFAULT_LOG_LIMIT = 1000;

const LAYERS: readonly DenialLayer[] = ['signature', 'credential', 'scope', 'tenant', 'reserved_namespace', 'relationship', 'caveat', 'capability'];

/** The time window, limit and tenant every log query shares, with the tenant forced for non-root callers. */
async function commonFilter(call: AdminCall): Promise<{ since?: Date; until?: Date; tenant?: string; limit: number }> {
  const { principal, query } = call;
  const asked = queryParam(query, 'tenant');
  if (asked !== undefined && !principal.isRoot) call.require(authorizeCredentialAdmin(principal, { tenant: asked }));
  let since = optionalTime(queryParam(query, 'since'), 'since');
  // A tenant admin reads nothing from before its tenant existed: an earlier tenant of the same name is another one.
  const created = principal.isRoot ? undefined : (await call.policy.showTenant(principal.tenant))?.createdAt;
  if (created !== undefined && (since === undefined || since < new Date(created))) since = new Date(created);
  return {
    since,
    until: optionalTime(queryParam(query, 'until'), 'until'),
    tenant: principal.isRoot ? asked : principal.tenant,
    limit: optionalInteger(queryParam(query, 'limit'), 'limit', MAX_LOG_LIMIT) ?? DEFAULT_LOG_LIMIT,
  };
}

/** The query parameters GET /denials takes (anything else is refused). */
export const DENIAL_QUERY = ['since', 'until', 'tenant', 'limit', 'accessKey', 'layer', 'bucket', 'keyPrefix'] as const;
/** The query parameters GET /audit takes. */
export const AUDIT_QUERY = ['since', 'until', 'tenant', 'limit', 'actor', 'action', 'accessKey'] as const;

/** GET /denials?since=&until=&tenant=&accessKey=&layer=&bucket=&keyPrefix=&limit= (oldest first). */
export async function listDenials(call: AdminCall): Promise<unknown> {
  const layer = queryParam(call.query, 'layer');
  if (layer !== undefined && !(LAYERS as readonly string[]).includes(layer)) {
    throw invalidInput(`"layer" must be one of ${LAYERS.join(', ')}`);
  }
  const view = await adminView(call);
  const filter: DenialFilter = {
    ...(await commonFilter(call)),
    // A narrower admin gets its lines as it is shown them (view.ts), and a layer filter matches what it is shown:
    // filtering on the written layer would tell a hidden thing's line from a missing one's by what it leaves out.
    ...(view ? { visible: (r) => view.denial(r) && (layer === undefined || view.shown(r).layer === layer) } : { layer: layer as DenialLayer | undefined }),
    accessKeyId: queryParam(call.query, 'accessKey'),
    bucket: queryParam(call.query, 'bucket'),
    keyPrefix: queryParam(call.query, 'keyPrefix'),
  };
  // This node's own lines first, so a refusal is in the answer of the next query made here; other nodes' lines
  // arrive within their batch interval (FLUSH_MS).
  await call.denials?.flush();
  const denials = await queryDenials(call.policy.database, filter);
  return { denials: view ? denials.map(view.shown) : denials };
}

/** GET /audit?since=&until=&tenant=&actor=&action=&accessKey=&limit= (oldest first). */
export async function listAudit(call: AdminCall): Promise<unknown> {
  const view = await adminView(call);
  const filter = {
    ...(await commonFilter(call)),
    ...(view ? { visible: view.audit } : {}),
    actor: queryParam(call.query, 'actor'),
    action: queryParam(call.query, 'action'),
    accessKeyId: queryParam(call.query, 'accessKey'),
  };
  return { audit: await queryAudit(call.policy.database, filter) };
}

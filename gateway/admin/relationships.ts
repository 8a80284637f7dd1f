/**
 * Admin handlers for relationships: bucket governance, schemas, tuples (batched writes, import, reads, audit),
 * check/explain, lookups and the watch feed. Each is gated by its family in RELATIONSHIP_ROUTES; every handler acts
 * inside one tenant (the caller's own, or the one root names). Applications without the admin family write tuples
 * only through the engine's guard, scoped by their grants' namespaces and relations.
 */
import { Readable } from 'node:stream';
import {
  actorLabel,
  actorsOf,
  authorizeCredentialAdmin,
  checkActors,
  DeniedError,
  holdsTenantWide,
  lookupActors,
  relationships as rel,
  subjectStanding,
  tupleWriteScope,
  type RelationshipActor,
  type Family,
  type Principal,
  type ScopeGrant,
  type SubjectStanding,
  visibleBuckets,
} from '../../policy/index.ts';
import { tokenStoresOf } from '../sts/stores.ts';
import { AdminStream, notFound, type AdminRefusal, onlyFields, optionalInteger, optionalString, queryParam, requiredString, type AdminCall, type AdminRoute } from './call.ts';
import { AdminError, invalidInput } from './errors.ts';
import { adminView, hidden, missing } from './view.ts';
import { withinReach } from './explain-reach.ts';

/**
 * The watch feed reads the shared changelog whenever the relationships change signal says the tenant moved (a NOTIFY
 * from any node, or this node's own write), and at least this often besides; and sends a keep-alive comment.
 */
export const WATCH_POLL_MS = 1_000;
const WATCH_HEARTBEAT_MS = 15_000;
/** Most change events one poll reads. */
const WATCH_BATCH = 10_000;

/**
 * The caller's grants that open an endpoint (one of `families`, or admin), which bound where it reaches; undefined for
 * root, whom nothing bounds. A grant on a bucket or prefix answers only about resources under it (grantReaches).
 */
function reachOf(principal: Principal, families: Family[]): ScopeGrant[] | undefined {
  if (principal.isRoot) return undefined;
  return principal.scopes.filter((g) => g.families.some((f) => f === 'admin' || families.includes(f)));
}

function reaches(grants: ScopeGrant[] | undefined, resource: rel.ObjectRef): boolean {
  return grants === undefined || grants.some((g) => rel.grantReaches(g, resource));
}

/** Refuses (403, denial line) unless the grants reach the resource. */
function requireReach(call: AdminCall, grants: ScopeGrant[] | undefined, resource: rel.ObjectRef, family: Family): void {
  if (reaches(grants, resource)) return;
  const at = rel.resourceLocation(resource);
  call.require({ allowed: false, layer: 'scope', reason: `no grant of ${family} reaches ${resource.type}:${resource.id}` }, at ? { bucket: at.bucket } : {});
}

/** Schemas, imports and capability-wide changes reach every resource of the tenant: root or a tenant-wide holder only. */
function requireTenantWide(call: AdminCall, what: string): void {
  if (!holdsTenantWide(call.principal)) {
    call.require({ allowed: false, layer: 'scope', reason: `${what} reaches the whole tenant: it needs every family on every bucket` });
  }
}

/** Which change events a caller may see: tuple events on resources its grants reach; the rest only tenant-wide. */
function eventVisible(grants: ScopeGrant[] | undefined): (e: rel.ChangeEvent) => boolean {
  return (e) => reaches(grants, e.tuple ? e.tuple.resource : TENANT_LEVEL);
}

/** Where the tenant's schema (and its caveats) lies: at the tenant, reached only by a grant on `*` without a prefix. */
const TENANT_LEVEL: rel.ObjectRef = { type: '', id: '' };

/**
 * The schema describes the whole tenant, so reading it (or a diff against it) needs a grant reaching the tenant level,
 * as its events in the watch feed do: `*` without a prefix. A grant on a bucket or prefix is refused (403).
 */
function requireTenantLevel(call: AdminCall, families: Family[], what: string): void {
  if (reaches(reachOf(call.principal, families), TENANT_LEVEL)) return;
  call.require({ allowed: false, layer: 'scope', reason: `${what} describes the whole tenant: it needs ${families.join(' or ')} on every bucket (*) without a prefix` });
}

function engineOf(call: AdminCall): rel.Relationships {
  if (!call.relationships) throw new AdminError('InternalError', 'the relationship engine is not open');
  return call.relationships;
}

/** The tenant a call acts in: the caller's own; root names one (`tenant` in the body or query). */
function tenantOf(call: AdminCall): string {
  const asked = optionalString(call.body, 'tenant') ?? queryParam(call.query, 'tenant');
  const { principal } = call;
  if (principal.isRoot) {
    if (asked === undefined) throw invalidInput('"tenant" is required');
    return asked;
  }
  if (asked !== undefined && asked !== principal.tenant) {
    call.require({ allowed: false, layer: 'tenant', reason: `tenant ${asked} is not tenant ${principal.tenant}` });
  }
  return principal.tenant;
}

/** Who a change is recorded as, why, and the request that made it. */
function audit(call: AdminCall, reason: string): rel.AuditContext {
  return { actor: call.principal.accessKeyId, reason, requestId: call.requestId };
}

/** Runs an engine call, turning its refusals (self-escalation, app schema writes) into 403s with a denial line. */
async function guarded<T>(call: AdminCall, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof DeniedError) call.require({ allowed: false, layer: error.layer, reason: error.reason });
    throw error;
  }
}

/**
 * GET/PUT /buckets/{bucket}/governance: root, or an admin of the owning tenant; a bucket of another tenant answers
 * as a missing one. Changing it needs every object family on the whole bucket: turning governance off widens what
 * every credential may do there, turning it on narrows it.
 */
async function governedBucket(call: AdminCall, change: boolean): Promise<{ bucket: string; tenant: string }> {
  const bucket = call.params.bucket!;
  const tenant = await call.policy.bucketOwner(bucket);
  const { principal } = call;
  const absent = { message: `no bucket ${bucket}`, reason: `no bucket ${bucket} of tenant ${principal.tenant}`, bucket };
  if (tenant === undefined || (!principal.isRoot && tenant !== principal.tenant)) missing(call, absent);
  // A bucket of the tenant in which a narrower admin holds no grant is beyond its view (GET /buckets omits it).
  if (!holdsTenantWide(principal) && visibleBuckets(principal, [bucket], () => tenant).length === 0) {
    hidden(call, `bucket ${bucket} is beyond the caller's scopes`, absent);
  }
  const scopes: ScopeGrant[] | undefined = change ? [{ families: ['admin', 'object:read', 'object:write', 'object:delete', 'object:list'], bucket }] : undefined;
  call.require(authorizeCredentialAdmin(principal, { tenant, scopes }), { bucket });
  return { bucket, tenant };
}

export async function showGovernance(call: AdminCall): Promise<unknown> {
  const { bucket, tenant } = await governedBucket(call, false);
  return { bucket, tenant, governed: await call.policy.bucketGoverned(bucket) };
}

/**
 * PUT /buckets/{bucket}/governance {governed}: governing a bucket deploys the default schema if the tenant has none.
 * Turning governance off releases the relationship restriction of every credential in the bucket, whatever tuples
 * (written by whomever) said: like replacing the schema, that needs authority over the whole tenant's relationships,
 * so root or an admin holding every family on every bucket (who could write itself any tuple or schema anyway).
 */
export async function setGovernance(call: AdminCall): Promise<unknown> {
  const { bucket, tenant } = await governedBucket(call, true);
  onlyFields(call.body, ['governed']);
  const governed = call.body.governed;
  if (typeof governed !== 'boolean') throw invalidInput('"governed" must be true or false');
  if (!governed && !holdsTenantWide(call.principal)) {
    const reason = `turning governance of ${bucket} off lifts every tuple's restriction there: it needs every family on every bucket`;
    call.require({ allowed: false, layer: 'scope', reason }, { bucket });
  }
  const engine = engineOf(call);
  let schemaDeployed = false;
  if (governed && (await engine.store.schema(tenant)) === undefined) {
    await engine.writeSchema(tenant, rel.DEFAULT_OBJECT_SCHEMA, audit(call, `bucket ${bucket} governed: default object schema`));
    schemaDeployed = true;
  }
  await call.policy.setBucketGoverned(bucket, governed, { actor: call.principal.accessKeyId });
  return { bucket, tenant, governed, schemaDeployed };
}

/** GET /schema: the tenant's schema text, its revision and its caveats' hashes (which caveated tuples must name). */
export async function readSchema(call: AdminCall): Promise<unknown> {
  const tenant = tenantOf(call);
  requireTenantLevel(call, READ, 'the schema');
  const engine = engineOf(call);
  const stored = await engine.store.readSchema(tenant);
  if (!stored) throw notFound(`tenant ${tenant} has no schema`);
  const caveats = [...((await engine.store.schema(tenant))?.caveats.values() ?? [])].map((c) => ({ name: c.name, hash: c.hash }));
  return { tenant, revision: stored.revision, schema: stored.text, caveats };
}

/** PUT /schema {schema, reason}: admin only; the engine refuses applications outright. */
export async function writeSchema(call: AdminCall): Promise<unknown> {
  onlyFields(call.body, ['tenant', 'schema', 'reason']);
  const tenant = tenantOf(call);
  const text = requiredString(call.body, 'schema');
  const reason = requiredString(call.body, 'reason');
  requireTenantWide(call, 'a schema write');
  const revision = await guarded(call, () => engineOf(call).writeSchema(tenant, text, audit(call, reason)));
  return { tenant, revision };
}

/** POST /schema/diff {schema}: what the proposed schema would change about who can hold each permission. */
export async function diffSchema(call: AdminCall): Promise<unknown> {
  onlyFields(call.body, ['tenant', 'schema']);
  const tenant = tenantOf(call);
  requireTenantLevel(call, ['admin'], 'a schema diff');
  return { tenant, ...(await engineOf(call).diffSchema(tenant, requiredString(call.body, 'schema'))) };
}

const FILTER_FIELDS = ['resourceType', 'resourceId', 'relation', 'subjectType', 'subjectId', 'subjectRelation'] as const;

/** GET /tuples?resourceType=&resourceId=&relation=&subjectType=&subjectId=&subjectRelation=&limit= */
export async function readTuples(call: AdminCall): Promise<unknown> {
  const tenant = tenantOf(call);
  const filter = Object.fromEntries(FILTER_FIELDS.map((f) => [f, queryParam(call.query, f)]).filter(([, v]) => v !== undefined));
  if (filter.resourceType === undefined) throw invalidInput('"resourceType" is required');
  const limit = optionalInteger(queryParam(call.query, 'limit'), 'limit', 10_000) ?? 1000;
  const grants = reachOf(call.principal, READ);
  const tuples = (await engineOf(call).store.readTuples(tenant, filter as unknown as rel.TupleFilter, limit)).filter((t) => reaches(grants, t.resource));
  return { tenant, tuples: tuples.map(rel.formatTuple) };
}

function updatesOf(value: unknown): rel.TupleUpdate[] {
  if (!Array.isArray(value) || value.length === 0) throw invalidInput('"updates" must be a non-empty list of {op, tuple}');
  return value.map((u: { op?: unknown; tuple?: unknown }) => {
    if (typeof u !== 'object' || u === null || !['create', 'touch', 'delete'].includes(u.op as string)) {
      throw invalidInput('each update is {op: create|touch|delete, tuple: "type:id#relation@subject" or its JSON form}');
    }
    return { op: u.op as rel.TupleUpdate['op'], tuple: typeof u.tuple === 'string' ? u.tuple : rel.tupleFromJson(u.tuple) };
  });
}

function preconditionsOf(value: unknown): rel.Precondition[] | undefined {
  if (value === undefined) return undefined;
  const ok = Array.isArray(value) && value.every((p) => typeof p === 'object' && p !== null && ['must_exist', 'must_not_exist'].includes(p.op) && typeof p.filter?.resourceType === 'string');
  if (!ok) throw invalidInput('"preconditions" must be a list of {op: must_exist|must_not_exist, filter: {resourceType, …}}');
  return value as rel.Precondition[];
}

/**
 * Preconditions answer whether tuples exist, so each must be about one resource the caller may read (tuples:read or
 * admin reaching it); otherwise the write is refused before any precondition is looked at.
 */
function requirePreconditionsReadable(call: AdminCall, preconditions: rel.Precondition[] | undefined): void {
  const grants = reachOf(call.principal, READ);
  if (grants === undefined || holdsTenantWide(call.principal)) return;
  for (const p of preconditions ?? []) {
    const { resourceType, resourceId } = p.filter;
    if (resourceId === undefined) {
      call.require({ allowed: false, layer: 'scope', reason: 'a precondition must name one resource the caller may read (resourceId)' });
    }
    requireReach(call, grants.filter((g) => g.families.some((f) => READ.includes(f))), { type: resourceType, id: resourceId! }, 'tuples:read');
  }
}

/**
 * A `create` fails when its tuple exists, so its answer (409, naming the tuple) tells whether a tuple exists: like a
 * precondition, it is for resources the caller may read (tuples:read or admin reaching them). A writer that may not
 * read them uses `touch`, whose answer is the same either way.
 */
function requireCreatesReadable(call: AdminCall, updates: rel.TupleUpdate[]): void {
  const grants = reachOf(call.principal, READ);
  if (grants === undefined || holdsTenantWide(call.principal)) return;
  for (const u of updates) {
    if (u.op !== 'create') continue;
    const tuple = typeof u.tuple === 'string' ? rel.parseTuple(u.tuple) : u.tuple;
    if (reaches(grants, tuple.resource)) continue;
    const at = rel.resourceLocation(tuple.resource);
    const reason = `create answers whether ${rel.formatTuple(tuple)} exists, which needs tuples:read on ${tuple.resource.type}:${tuple.resource.id}: use touch`;
    call.require({ allowed: false, layer: 'scope', reason }, at ? { bucket: at.bucket } : {});
  }
}

/** Whether the caller may read (tuples:read reaching it) the resource of every update. */
function readsAll(call: AdminCall, updates: rel.TupleUpdate[]): boolean {
  const grants = reachOf(call.principal, READ);
  if (grants === undefined || holdsTenantWide(call.principal)) return true;
  return updates.every((u) => reaches(grants, (typeof u.tuple === 'string' ? rel.parseTuple(u.tuple) : u.tuple).resource));
}

/** POST /tuples {updates, preconditions, reason}: one atomic batch; answers its revision and how many changed. */
export async function writeTuples(call: AdminCall): Promise<unknown> {
  onlyFields(call.body, ['tenant', 'updates', 'preconditions', 'reason']);
  const tenant = tenantOf(call);
  const updates = updatesOf(call.body.updates);
  const preconditions = preconditionsOf(call.body.preconditions);
  const reason = requiredString(call.body, 'reason');
  const scope = tupleWriteScope(call.principal, tenant);
  requirePreconditionsReadable(call, preconditions);
  await requireCreatesReadable(call, updates);
  const { revision, written } = await guarded(call, () => engineOf(call).writeCounted(tenant, updates, { ...audit(call, reason), preconditions, scope }));
  // Only real changes count (a delete of a missing tuple does not), but only for a caller that may read every
  // resource of the batch: to any other writer, touch and delete answer alike whether the tuple existed.
  return { tenant, revision, written: readsAll(call, updates) ? written : updates.length };
}

/**
 * POST /tuples/import {text, name, reason}, or a text/plain body with ?tenant&name&reason (what the CLI streams,
 * beyond the JSON body limit): admin only, all or nothing; a refusal lists the bad line numbers.
 */
export async function importTuples(call: AdminCall): Promise<unknown> {
  const fields = call.text === undefined ? call.body : Object.fromEntries(call.query);
  onlyFields(fields, ['tenant', 'text', 'name', 'reason']);
  const tenant = tenantOf(call);
  const text = call.text ?? requiredString(fields, 'text');
  requireTenantWide(call, 'an import');
  const options = { ...audit(call, requiredString(fields, 'reason')), name: optionalString(fields, 'name') };
  return { tenant, ...(await engineOf(call).importTuples(tenant, text, options)) };
}

/** GET /tuples/export?format=yaml|relationships|schema: the tenant in a zed text form (tenant-wide admin only). */
export async function exportTuples(call: AdminCall): Promise<unknown> {
  const tenant = tenantOf(call);
  requireTenantWide(call, 'an export');
  const format = queryParam(call.query, 'format') ?? 'yaml';
  if (!(rel.BACKUP_FORMATS as readonly string[]).includes(format)) throw invalidInput(`"format" must be one of ${rel.BACKUP_FORMATS.join(', ')}`);
  return { tenant, format, ...(await engineOf(call).exportTenant(tenant, format as rel.BackupFormat)) };
}

/** POST /tuples/restore {text, name, reason}: a backup's schema and tuples, all or nothing (tenant-wide admin only). */
export async function restoreTuples(call: AdminCall): Promise<unknown> {
  // Like an import: JSON {text, …}, or the file as a text/plain body with the fields in the query (the CLI streams).
  const fields = call.text === undefined ? call.body : Object.fromEntries(call.query);
  onlyFields(fields, ['tenant', 'text', 'name', 'reason']);
  const tenant = tenantOf(call);
  const text = call.text ?? requiredString(fields, 'text');
  requireTenantWide(call, 'a restore');
  const options = { ...audit(call, requiredString(fields, 'reason')), name: optionalString(fields, 'name') };
  return { tenant, ...(await engineOf(call).importBackup(tenant, text, options)) };
}

/** GET /tuples/audit?after=&limit=: who changed which tuple, why, and in which request. */
export async function tupleAudit(call: AdminCall): Promise<unknown> {
  const tenant = tenantOf(call);
  const since = revisionParam(queryParam(call.query, 'after'));
  const limit = optionalInteger(queryParam(call.query, 'limit'), 'limit', 10_000);
  const visible = eventVisible(reachOf(call.principal, []));
  return { tenant, records: (await engineOf(call).store.auditRecords(tenant, { since, limit })).filter(visible) };
}

/** The request context of a check: `now` defaults to the present; other facts only as given. */
function contextOf(value: unknown): rel.RequestContext {
  if (value === undefined) return { now: new Date() };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidInput('"context" must be a JSON object');
  const context = { ...(value as Record<string, unknown>) };
  context.now = typeof context.now === 'string' ? new Date(context.now) : new Date();
  return context;
}

/**
 * The principal a check or lookup asks about (policy/actors.ts subjectStanding): a credential or capability S3 decides
 * for with more than one actor is answered as S3 decides, one that cannot act in the tenant holds nothing.
 */
function standingOf(call: AdminCall, tenant: string, subject: string, now: Date): Promise<SubjectStanding> {
  const { capabilities } = tokenStoresOf(call.policy);
  const sources = { resolveAccessKey: (id: string, at: Date) => call.policy.resolveAccessKey(id, at), mintRecord: (id: string) => capabilities.mintRecord(id), isRevoked: (id: string) => capabilities.isRevoked(id) };
  return subjectStanding(rel.parseSubject(subject), tenant, sources, now);
}

/**
 * How an answer names the actors: in full for root and tenant-wide admins; to a narrower caller, a maker, registrar
 * or minter it may not see (view.ts) only by its part, without the path or reason that name its tuples, so a check is
 * no way to learn another credential's chain.
 */
async function actorNames(call: AdminCall, subject: string): Promise<{ label: (a: RelationshipActor) => string; detailed: (a: RelationshipActor) => boolean }> {
  const view = await adminView(call);
  if (view === undefined) return { label: actorLabel, detailed: () => true };
  const seen = (a: RelationshipActor): boolean => {
    const named = rel.parseSubject(a.subject);
    return a.role === undefined || (named.type === 'app' && view.credentialId(named.id));
  };
  const part = (a: RelationshipActor) => (a.role!.startsWith('minter') ? 'its minter' : 'a maker or registrar');
  return { label: (a) => (seen(a) ? actorLabel(a) : `a credential bounding ${subject} (${part(a)})`), detailed: seen };
}

/**
 * POST /check {resource, permission, subject, context, explain}: allowed, denied or conditional (missing params).
 * A subject naming a credential (`app:<access key id>`) or capability is decided as S3 decides for it: for every
 * actor (policy/actors.ts), so a derived credential is never told it may do what its narrowed maker no longer may.
 */
export async function check(call: AdminCall): Promise<unknown> {
  onlyFields(call.body, ['tenant', 'resource', 'permission', 'subject', 'context', 'explain']);
  const tenant = tenantOf(call);
  const resource = requiredString(call.body, 'resource');
  const permission = requiredString(call.body, 'permission');
  const subject = requiredString(call.body, 'subject');
  requireReach(call, reachOf(call.principal, ['check']), rel.parseSubject(resource), 'check');
  const options = { context: contextOf(call.body.context) };
  const engine = engineOf(call);
  const explain = call.body.explain === true;
  // An explanation shows a caller narrower than its tenant only the relationships its check and tuples:read grants
  // reach (explain-reach.ts); a plain check's answer names no path.
  const reach = holdsTenantWide(call.principal) ? undefined : reachOf(call.principal, ['check', 'tuples:read']);
  const within = explain && reach !== undefined ? <R extends rel.CheckResult>(r: R) => withinReach(r, (ref) => reaches(reach, ref)) : undefined;
  const standing = await standingOf(call, tenant, subject, new Date());
  let result: rel.CheckResult;
  if (standing.kind === 'gone') result = { result: 'denied', reason: standing.reason, ...(explain ? { path: [] } : {}) };
  else if (standing.kind === 'principal') {
    result = await checkActors({ relationships: engine, tenant, resource, permission, actors: standing.actors, ...(await actorNames(call, subject)), ...(within ? { within } : {}), explain, options });
  } else {
    result = await (explain ? engine.explain(tenant, resource, permission, subject, options) : engine.check(tenant, resource, permission, subject, options));
    if (within) result = within(result);
  }
  return { tenant, resource, permission, subject, ...result };
}

/**
 * POST /lookup {resourceType, permission, subject, idPrefix, limit, context}: ids with tuples the subject reaches,
 * only those under the caller's check grants. For a credential or capability, the ids every actor reaches (as S3
 * lists for it); none for one that cannot act in the tenant.
 */
export async function lookup(call: AdminCall): Promise<unknown> {
  onlyFields(call.body, ['tenant', 'resourceType', 'permission', 'subject', 'idPrefix', 'limit', 'context']);
  const tenant = tenantOf(call);
  const resourceType = requiredString(call.body, 'resourceType');
  const permission = requiredString(call.body, 'permission');
  const subject = requiredString(call.body, 'subject');
  const grants = reachOf(call.principal, ['check']);
  const limit = optionalInteger(call.body.limit, 'limit', 100_000);
  const options = { context: contextOf(call.body.context), idPrefix: optionalString(call.body, 'idPrefix') };
  const engine = engineOf(call);
  const standing = await standingOf(call, tenant, subject, new Date());
  let found: string[];
  if (standing.kind === 'gone') found = [];
  else if (standing.kind === 'principal') found = await lookupActors({ relationships: engine, tenant, resourceType, permission, actors: standing.actors, options });
  else found = await engine.lookupResources(tenant, resourceType, permission, subject, options);
  const ids = found.filter((id) => reaches(grants, { type: resourceType, id }));
  return { tenant, ids: limit === undefined ? ids : ids.slice(0, limit) };
}

function revisionParam(value: string | undefined): string {
  if (value === undefined || value === '') return '';
  try {
    rel.decodeRevision(value);
  } catch {
    throw invalidInput(`"${value}" is not a revision token`);
  }
  return value;
}

/**
 * GET /watch?after=: the tenant's changes as Server-Sent Events (`id` is the revision, `event` the kind, `data` the
 * event as JSON), from after the revision given by Last-Event-ID or `after` (from the start without either). Whole
 * revisions are sent at once, so resuming at any id loses nothing; revisions are the shared changelog's, so a client
 * may resume on any node. The feed ends when the client disconnects.
 *
 * A stream is a request that goes on delivering, so its authority is decided at every delivery, not only at the
 * start: after each read of the changelog (and so before any event read is written), the caller is resolved again
 * (call.callerNow: revoked, expired, maker gone, tenant disabled or locked down, session or console session ended)
 * and its watch grants as they stand now must still reach every event the stream would send. Otherwise the feed
 * writes a denial line and ends without sending them; a reconnect is then refused as any new request is.
 */
export function watch(call: AdminCall): AdminStream {
  const tenant = tenantOf(call);
  const engine = engineOf(call);
  const visible = eventVisible(reachOf(call.principal, ['watch']));
  let after = revisionParam(call.header('last-event-id') ?? queryParam(call.query, 'after'));
  let running: Promise<void> | undefined;
  let again = false;
  let ended = false;
  // Why the caller may no longer receive `shown` (read after them: a revocation committed before they were written is
  // seen here), or undefined when it still may. Without callerNow (the CLI's local mode) the operator is the caller.
  const refusalNow = async (shown: rel.ChangeEvent[]): Promise<AdminRefusal | undefined> => {
    if (!call.callerNow) return undefined;
    const now = await call.callerNow();
    if (!now.ok) return { layer: 'credential', reason: `the watch stream's caller no longer stands: ${now.reason}` };
    const visibleNow = eventVisible(reachOf(now.principal, ['watch']));
    const refused = shown.find((e) => !visibleNow(e));
    if (refused === undefined) return undefined;
    const at = refused.tuple ? `${refused.tuple.resource.type}:${refused.tuple.resource.id}` : `tenant ${tenant}`;
    return { layer: 'scope', reason: `no grant of watch reaches ${at} any longer` };
  };
  const end = (refusal: AdminRefusal): void => {
    ended = true;
    call.deny(refusal);
    stream.push(null);
    stop();
  };
  const poll = async (): Promise<void> => {
    for (;;) {
      again = false;
      if (ended) return;
      let events = await engine.changesSince(tenant, after, { limit: WATCH_BATCH });
      // A full batch may end inside a revision: hold that revision back for the next poll unless it is all there is.
      const last = events.at(-1)?.revision;
      const full = events.length === WATCH_BATCH;
      if (full && events[0]!.revision !== last) events = events.filter((e) => e.revision !== last);
      // The position moves past events the caller may not see, without sending them.
      const shown = events.filter(visible);
      const refused = await refusalNow(shown);
      if (refused !== undefined) return end(refused);
      for (const e of shown) stream.push(`id: ${e.revision}\nevent: ${e.kind}\ndata: ${JSON.stringify(e)}\n\n`);
      if (events.length > 0) after = events.at(-1)!.revision;
      if (!full && !again) return;
    }
  };
  // One read at a time; a change announced during a read triggers one more.
  const wake = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = poll()
      .catch((error: Error) => {
        stream.destroy(error);
      })
      .finally(() => {
        running = undefined;
      });
  };
  const stopListening = engine.store.database.signals.relationships.onChange((moved) => {
    if (moved === undefined || moved === tenant) wake();
  });
  const timer = setInterval(wake, WATCH_POLL_MS);
  const heartbeat = setInterval(() => stream.push(': keep-alive\n\n'), WATCH_HEARTBEAT_MS);
  const stop = (): void => {
    stopListening();
    clearInterval(timer);
    clearInterval(heartbeat);
  };
  const stream = new Readable({
    read() {},
    destroy(error, done) {
      stop();
      done(error);
    },
  });
  stream.push(`retry: 1000\n: changes of tenant ${tenant} after ${after || 'the start'}\n\n`);
  wake();
  return new AdminStream('text/event-stream; charset=utf-8', stream);
}

const READ: Family[] = ['tuples:read', 'admin'];

/** The relationship endpoints only the admin family (or root) may use. */
export const RELATIONSHIP_ADMIN_ROUTES: AdminRoute[] = [
  { method: 'GET', pattern: '/buckets/:bucket/governance', action: 'Admin:GetBucketGovernance', run: showGovernance },
  { method: 'PUT', pattern: '/buckets/:bucket/governance', action: 'Admin:PutBucketGovernance', run: setGovernance },
  { method: 'PUT', pattern: '/schema', action: 'Admin:WriteSchema', run: writeSchema },
  { method: 'POST', pattern: '/schema/diff', action: 'Admin:DiffSchema', run: diffSchema },
  { method: 'POST', pattern: '/tuples/import', action: 'Admin:ImportTuples', textBody: true, run: importTuples },
  { method: 'GET', pattern: '/tuples/export', action: 'Admin:ExportTuples', run: exportTuples },
  { method: 'POST', pattern: '/tuples/restore', action: 'Admin:RestoreTuples', textBody: true, run: restoreTuples },
  { method: 'GET', pattern: '/tuples/audit', action: 'Admin:TupleAudit', run: tupleAudit },
];

/** The relationship endpoints the tuples:read, tuples:write, check and watch families open (admin opens them all). */
export const RELATIONSHIP_FAMILY_ROUTES: AdminRoute[] = [
  { method: 'GET', pattern: '/schema', action: 'Admin:ReadSchema', families: READ, run: readSchema },
  { method: 'GET', pattern: '/tuples', action: 'Admin:ReadTuples', families: READ, query: ['tenant', ...FILTER_FIELDS, 'limit'], run: readTuples },
  { method: 'POST', pattern: '/tuples', action: 'Admin:WriteTuples', families: ['tuples:write', 'admin'], run: writeTuples },
  { method: 'POST', pattern: '/check', action: 'Admin:Check', families: ['check', 'admin'], run: check },
  { method: 'POST', pattern: '/lookup', action: 'Admin:LookupResources', families: ['check', 'admin'], run: lookup },
  { method: 'GET', pattern: '/watch', action: 'Admin:Watch', families: ['watch', 'admin'], run: watch },
];

/**
 * Admin handlers for the access audit (`anvil audit check`): they read the facts through the stores, let
 * policy/audit decide the findings, and record each run in the audit log (time, who, counts and the findings'
 * digests) so the next run, on any node, can say what is new. Root audits every tenant (or one it names); a tenant
 * admin audits its own tenant and reads only what the admin API would show it there: an admin narrower than its
 * tenant (view.ts) gets the findings about what it has authority over, and compares with its own recorded runs only.
 */
import { appendAudit, audit, capabilityGrant, holdsTenantWide, queryAudit, queryDenials, relationships as rel, tuplesBeyondWriters, type AuditRecord } from '../../policy/index.ts';
import { tokenStoresOf } from '../sts/stores.ts';
import { onlyFields, optionalInteger, queryParam, requiredString, type AdminCall } from './call.ts';
import { AdminError, invalidInput } from './errors.ts';
import { adminView, type AdminView } from './view.ts';

const DAY_MS = 86_400_000;

/** The audit log action a recorded run writes. */
export const AUDIT_RUN_ACTION = 'audit.check';

/** Most finding digests one run records; a larger report records its counts only beyond this. */
const MAX_RECORDED_FINDINGS = 5000;

/** A finding in an answer: whether the previous recorded run had it too. */
export type ReportedFinding = audit.Finding & { new: boolean };

/** What a run answers. */
export interface AuditReport {
  time: string;
  /** The tenant audited, or `*` for every tenant. */
  tenant: string;
  options: audit.AuditOptions;
  previousRun?: { time: string; actor: string; counts: audit.SeverityCounts };
  findings: ReportedFinding[];
  counts: audit.SeverityCounts;
  /** Findings of the previous run that are gone now. */
  resolved: number;
}

const OPTION_LIMITS: Record<keyof audit.AuditOptions, number> = { days: 400, keyAgeDays: 3650, maxAddresses: 10_000, maxAgents: 10_000 };

/** The thresholds from a body or query, each bounded; defaults for what is absent. */
function optionsOf(read: (name: keyof audit.AuditOptions) => unknown): audit.AuditOptions {
  const out = { ...audit.DEFAULT_AUDIT_OPTIONS };
  for (const name of Object.keys(OPTION_LIMITS) as Array<keyof audit.AuditOptions>) {
    const value = optionalInteger(read(name), name, OPTION_LIMITS[name]);
    if (value === 0) throw invalidInput(`"${name}" must be at least 1`);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** The tenant a call audits: the caller's own for a tenant admin; root names one or audits all (undefined). */
function scopeOf(call: AdminCall, asked: unknown): string | undefined {
  if (asked !== undefined && typeof asked !== 'string') throw invalidInput('"tenant" must be a string');
  const { principal } = call;
  if (principal.isRoot) return asked === '' ? undefined : asked;
  if (asked !== undefined && asked !== principal.tenant) {
    call.require({ allowed: false, layer: 'tenant', reason: `tenant ${asked} is not tenant ${principal.tenant}` });
  }
  return principal.tenant;
}

/** Who a narrower admin's run was recorded for: runs of different views are never compared. */
const viewerOf = (call: AdminCall, view: AdminView | undefined) => (view ? call.principal.accessKeyId : undefined);

/**
 * Recorded runs of this scope, oldest first; a tenant admin reads none from before its tenant existed, and an admin
 * narrower than its tenant only its own (another's counts and digests are about more than it may see).
 */
async function recordedRuns(call: AdminCall, scope: string | undefined, limit?: number): Promise<AuditRecord[]> {
  const created = call.principal.isRoot || scope === undefined ? undefined : (await call.policy.showTenant(scope))?.createdAt;
  const records = await queryAudit(call.policy.database, { action: AUDIT_RUN_ACTION, tenant: scope, since: created ? new Date(created) : undefined });
  const viewer = viewerOf(call, await adminView(call));
  const mine = records.filter((r) => r.details?.audited === (scope ?? '*') && r.details?.viewer === viewer);
  return limit === undefined ? mine : mine.slice(-limit);
}

/**
 * The findings an admin narrower than its tenant may see: about credentials it sees (view.ts) and, for leftover
 * delegations, about roles, providers and capabilities within its authority too; reserved-prefix attempts from the
 * denial lines it sees and leftover tuples of credentials it sees on resources its admin grants reach (the facts were
 * narrowed to those). Findings about the tenant as a whole (its schema, other tuples, capability root key) name no
 * credential and are not shown.
 */
function visibleFinding(view: AdminView, facts: audit.AuditFacts): (f: audit.Finding) => boolean {
  const held = (mint: audit.AuditFacts['capabilities'][number]) => {
    try {
      return view.holds([capabilityGrant(mint.scope, mint.actions)]);
    } catch {
      return false;
    }
  };
  // The ids the leftover-* checks give their findings (policy/audit/credential-checks.ts).
  const delegations = new Set([
    ...facts.roles.filter((r) => view.holds(r.scopes)).map((r) => `leftover-role:${r.id}`),
    ...facts.providers.filter(view.provider).map((p) => `leftover-provider:${p.id}`),
    ...facts.capabilities.filter(held).map((m) => `leftover-capability:${m.id}`),
  ]);
  return (f) =>
    f.check === 'reserved-namespace' || f.check === 'leftover-tuple' || (view.credentialId(f.accessKeyId) && (!f.check.startsWith('leftover-') || delegations.has(f.id)));
}

/** Everything the checks read, narrowed to the scope. */
async function gatherFacts(call: AdminCall, scope: string | undefined, options: audit.AuditOptions, previousRunAt?: Date, view?: AdminView): Promise<audit.AuditFacts> {
  const { policy } = call;
  const now = new Date();
  const inScope = (tenant: string | undefined) => scope === undefined || tenant === scope;
  const tenants = (await policy.listTenants()).filter((t) => inScope(t.name));
  // This node's gathered last-use times first (they are written within a second), so a key used here just now is
  // not reported as never used; other nodes' reach the database within that second too.
  await policy.flushLastUse();
  const credentials = await policy.listCredentials(scope === undefined ? {} : { tenant: scope });
  const keys = new Set(credentials.map((c) => c.accessKeyId));
  const since = new Date(now.getTime() - options.days * DAY_MS);
  // A tenant admin reads no denial from before its tenant existed (as `anvil denials` answers it).
  const created = call.principal.isRoot ? undefined : tenants.find((t) => t.name === scope)?.createdAt;
  const denialsSince = created !== undefined && new Date(created) > since ? new Date(created) : since;
  const owners = await policy.bucketOwners();
  // This node's pending denial lines first, so an attempt made here is in this report.
  await call.denials?.flush();
  const { sessions, capabilities } = tokenStoresOf(policy);
  const filter = scope === undefined ? {} : { tenant: scope };
  const relationships: audit.TenantRelationshipFacts[] = [];
  const engine = call.relationships;
  const store = engine?.store;
  const resolveAccessKey = (id: string, at: Date) => policy.resolveAccessKey(id, at);
  for (const { name: tenant } of store ? tenants : []) {
    const schemas = await store!.schemaHistory(tenant);
    if (schemas.length === 0) continue;
    const compiled = await store!.schema(tenant);
    relationships.push({
      tenant,
      schemas,
      caveatHashes: new Map([...(compiled?.caveats.values() ?? [])].map((c) => [c.name, c.hash])),
      caveatedTuples: await store!.caveatedTuples(tenant),
      unaudited: await store!.unauditedTuples(tenant),
      imports: await store!.importSources(tenant),
      appSubjects: new Set(await store!.subjectIds(tenant, 'app')),
      beyondWriters: (await tuplesBeyondWriters({ relationships: engine!, tenant, resolveAccessKey, now })).filter(
        (b) => view === undefined || (view.credentialId(b.accessKeyId) && view.resource(b.tuple.resource)),
      ),
    });
  }
  return {
    now,
    tenants,
    credentials,
    usage: ((await call.records?.usage({ since })) ?? []).filter((u) => keys.has(u.accessKeyId)),
    reservedDenials: await queryDenials(call.policy.database, { layer: 'reserved_namespace', since: denialsSince, tenant: scope, ...(view ? { visible: view.denial } : {}) }),
    governedBuckets: (await policy.governedBuckets()).map((bucket) => ({ bucket, tenant: owners.get(bucket)! })).filter((b) => inScope(b.tenant)),
    relationships,
    roles: await sessions.listRoles(filter),
    providers: await sessions.listOidcProviders(filter),
    capabilities: await capabilities.listMints(filter),
    capabilityKeys: await capabilities.rootKeys(filter),
    previousRunAt,
  };
}

/** Runs the checks for a call: the report, marked against the previous recorded run. */
async function runChecks(call: AdminCall, scope: string | undefined, options: audit.AuditOptions): Promise<AuditReport> {
  const previous = (await recordedRuns(call, scope)).at(-1);
  const view = await adminView(call);
  const facts = await gatherFacts(call, scope, options, previous ? new Date(previous.time) : undefined, view);
  const all = audit.auditFindings(facts, options);
  const findings = view ? all.filter(visibleFinding(view, facts)) : all;
  const before = new Set((previous?.details?.findings as string[] | undefined) ?? []);
  const digests = new Set(findings.map((f) => audit.findingDigest(f.id)));
  return {
    time: facts.now.toISOString(),
    tenant: scope ?? '*',
    options,
    ...(previous ? { previousRun: { time: previous.time, actor: previous.actor, counts: previous.details?.counts as audit.SeverityCounts } } : {}),
    findings: findings.map((f) => ({ ...f, new: previous === undefined || !before.has(audit.findingDigest(f.id)) })),
    counts: audit.countBySeverity(findings),
    resolved: [...before].filter((d) => !digests.has(d)).length,
  };
}

/** GET /audit/check?tenant&days&keyAgeDays&maxAddresses&maxAgents: the findings now, not recorded (the console's view). */
export async function previewAuditCheck(call: AdminCall): Promise<unknown> {
  const scope = scopeOf(call, queryParam(call.query, 'tenant'));
  return runChecks(call, scope, optionsOf((name) => queryParam(call.query, name)));
}

/**
 * POST /audit/check {tenant, days, keyAgeDays, maxAddresses, maxAgents, sinceLast}: runs the checks and records
 * the run in the audit log; with sinceLast only the findings the previous run did not have are listed.
 */
export async function runAuditCheck(call: AdminCall): Promise<unknown> {
  onlyFields(call.body, ['tenant', 'days', 'keyAgeDays', 'maxAddresses', 'maxAgents', 'sinceLast']);
  const scope = scopeOf(call, call.body.tenant);
  if (call.body.sinceLast !== undefined && typeof call.body.sinceLast !== 'boolean') throw invalidInput('"sinceLast" must be true or false');
  const report = await runChecks(call, scope, optionsOf((name) => call.body[name]));
  const digests = report.findings.map((f) => audit.findingDigest(f.id));
  const viewer = viewerOf(call, await adminView(call));
  await appendAudit(call.policy.database, {
    actor: call.principal.accessKeyId,
    action: AUDIT_RUN_ACTION,
    ...(scope !== undefined ? { tenant: scope } : {}),
    details: {
      audited: report.tenant,
      ...(viewer ? { viewer } : {}),
      counts: report.counts,
      total: report.findings.length,
      new: report.findings.filter((f) => f.new).length,
      resolved: report.resolved,
      findings: digests.slice(0, MAX_RECORDED_FINDINGS),
    },
  });
  return call.body.sinceLast === true ? { ...report, findings: report.findings.filter((f) => f.new), sinceLast: true } : report;
}

/** GET /audit/checks?tenant&limit: the recorded runs (time, who, counts), oldest first. */
export async function listAuditChecks(call: AdminCall): Promise<unknown> {
  const scope = scopeOf(call, queryParam(call.query, 'tenant'));
  const limit = optionalInteger(queryParam(call.query, 'limit'), 'limit', 10_000) ?? 100;
  const runs = await recordedRuns(call, scope, limit);
  return {
    runs: runs.map((r) => ({ time: r.time, actor: r.actor, tenant: r.details?.audited, counts: r.details?.counts, total: r.details?.total, new: r.details?.new, resolved: r.details?.resolved })),
  };
}

/**
 * POST /tuples/prune-leftovers {tenant, reason}: the opt-in clean-up of the leftover-tuple check. Deletes every tuple
 * that check reports now (no cap), in one batch recorded with the reason, and answers them with their writer and why.
 * Root (naming the tenant) or a tenant-wide admin only: an admin narrower than its tenant deletes the findings it sees
 * one by one with their fix commands. Nothing runs it on its own. Answers {tenant, deleted, revision?, tuples}.
 */
export async function pruneLeftoverTuples(call: AdminCall): Promise<unknown> {
  onlyFields(call.body, ['tenant', 'reason']);
  const tenant = scopeOf(call, call.body.tenant);
  if (tenant === undefined) throw invalidInput('"tenant" is required');
  const reason = requiredString(call.body, 'reason');
  if (!holdsTenantWide(call.principal)) {
    call.require({ allowed: false, layer: 'scope', reason: 'pruning leftover tuples reaches the whole tenant: it needs every family on every bucket' });
  }
  if (!call.relationships) throw new AdminError('InternalError', 'the relationship engine is not open');
  const found = await tuplesBeyondWriters({ relationships: call.relationships, tenant, resolveAccessKey: (id, at) => call.policy.resolveAccessKey(id, at), now: new Date() });
  const tuples = found.map((b) => ({ tuple: rel.formatSpiceDbTuple(b.tuple), writer: b.writer, why: b.reason }));
  if (found.length === 0) return { tenant, deleted: 0, tuples };
  const updates = found.map((b) => ({ op: 'delete' as const, tuple: b.tuple }));
  const revision = await call.relationships.write(tenant, updates, { actor: call.principal.accessKeyId, reason, requestId: call.requestId });
  return { tenant, deleted: found.length, revision, tuples };
}

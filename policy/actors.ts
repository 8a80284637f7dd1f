/**
 * Who a relationship decision is made for. S3 governance (gateway/governance.ts) and the admin API's check and lookup
 * (gateway/admin/relationships.ts) both name the actors here, so an answer about a principal can never be wider than
 * what S3 lets that principal do: every actor must hold the permission.
 */
import { CAPABILITY_SUBJECT_TYPE, capabilityPrincipal } from './capabilities/s3.ts';
import type { CapabilityMint } from './capabilities/store.ts';
import type { ResolveResult } from './credential-cache.ts';
import type { CheckOptions, CheckResult, Relationships, SubjectRef } from './relationships/index.ts';
import type { Principal } from './types.ts';

/**
 * One subject relationships are decided for. `role` says why it is decided for (`a maker of K`, `minter of
 * capability:K`, …), absent for the principal's own subject.
 */
export interface RelationshipActor {
  subject: string;
  role?: string;
}

/** How a decision names an actor: its subject, and why it is decided for when it is not the principal itself. */
export function actorLabel(a: RelationshipActor): string {
  return a.role === undefined ? a.subject : `${a.subject} (${a.role})`;
}

/** The makers bounding `of` (Principal.boundingMakers) as actors, each naming whom it bounds. */
function makersOf(of: Principal, whose: string): RelationshipActor[] {
  return (of.boundingMakers ?? []).map((subject) => ({ subject, role: `a maker of ${whose}` }));
}

/**
 * Who relationships are decided for, every one of whom must hold the permission: the caller, plus the registrar of
 * its identity provider when that bounds it (Principal.registrar), plus every maker up its chain (or the registrar's)
 * without tenant-wide authority (Principal.boundingMakers); for a capability its minter and the minter's makers
 * instead. Undefined when nothing is decided (a capability minted by root or the operator acts for root).
 */
export function actorsOf(principal: Principal): RelationshipActor[] | undefined {
  if (!principal.subject.startsWith(`${CAPABILITY_SUBJECT_TYPE}:`)) {
    const registrar = principal.registrar;
    const self = { subject: principal.subject };
    // The common case (made by root or a tenant-wide admin, no registrar): the caller alone, nothing more built.
    if (registrar === undefined && principal.boundingMakers === undefined) return [self];
    const own = [self, ...makersOf(principal, principal.accessKeyId)];
    if (registrar === undefined) return own;
    const role = `registrar of the identity provider of ${principal.subject}`;
    return [...own, { subject: registrar.subject, role }, ...makersOf(registrar, registrar.accessKeyId)];
  }
  const minter = principal.minter;
  if (minter === undefined || minter.isRoot) return undefined;
  return [{ subject: minter.subject, role: `minter of ${principal.accessKeyId}` }, ...makersOf(minter, minter.accessKeyId)];
}

/** What answers about a subject string must allow for: the principal it names, if any. */
export type SubjectStanding =
  /** No principal (`user:alice`, `group:eng#member`, a capability root minted): answered for the subject alone. */
  | { kind: 'subject' }
  /** It names a credential or capability that cannot act in the tenant now (unknown, another tenant's, revoked, …). */
  | { kind: 'gone'; reason: string }
  /** A principal S3 decides for with more than one actor: every one must hold the permission. */
  | { kind: 'principal'; actors: RelationshipActor[] };

/** The lookups subjectStanding needs (the policy store's credential cache, the capability store). */
export interface StandingSources {
  resolveAccessKey(accessKeyId: string, now: Date): Promise<ResolveResult>;
  mintRecord(id: string): Promise<CapabilityMint | undefined>;
  isRevoked(id: string): Promise<boolean>;
}

/**
 * The principal a subject names in `tenant`, as S3 would decide for it now: `app:<access key id>` is that credential
 * (its sessions act with its subject and its bounds) and `capability:<id>` that capability. A web-identity session's
 * subject (`user:<sub>`) is shared with every other use of the name, so it names no single principal.
 * A credential or capability that is unknown, of another tenant, or unusable now answers alike (`gone`, one reason),
 * so the answer tells nothing about other tenants' credentials.
 */
export async function subjectStanding(subject: SubjectRef, tenant: string, sources: StandingSources, now: Date): Promise<SubjectStanding> {
  if (subject.relation !== undefined || subject.id === '*') return { kind: 'subject' };
  const gone: SubjectStanding = { kind: 'gone', reason: `${subject.type}:${subject.id} names no credential or capability that can act in tenant ${tenant} now` };
  let principal: Principal;
  if (subject.type === 'app') {
    const resolved = await sources.resolveAccessKey(subject.id, now);
    // Root bypasses relationships in S3, in every tenant; its subject is answered for itself, as before.
    if (resolved.ok && resolved.principal.isRoot) return { kind: 'subject' };
    if (!resolved.ok || resolved.principal.tenant !== tenant) return gone;
    principal = resolved.principal;
  } else if (subject.type === CAPABILITY_SUBJECT_TYPE) {
    const mint = await sources.mintRecord(subject.id);
    if (mint === undefined || mint.tenant !== tenant || (await sources.isRevoked(subject.id))) return gone;
    if (mint.mintedBy === undefined) return { kind: 'subject' };
    const minter = await sources.resolveAccessKey(mint.mintedBy, now);
    if (!minter.ok) return gone;
    principal = capabilityPrincipal(mint, minter.principal);
  } else return { kind: 'subject' };
  const actors = actorsOf(principal);
  return actors === undefined || (actors.length === 1 && actors[0]!.subject === principal.subject) ? { kind: 'subject' } : { kind: 'principal', actors };
}

/** One actor's answer inside a check made for several. */
export interface ActorAnswer extends CheckResult {
  actor: string;
}

/** An actor's answer without what names its tuples: the result, the missing parameters, when it lapses. */
function undetailed(r: CheckResult): CheckResult {
  const reason = r.result === 'allowed' ? 'granted' : r.result === 'conditional' ? `conditional on ${(r.missing ?? []).join(', ')}` : 'not granted';
  return { result: r.result, reason, ...(r.missing ? { missing: r.missing } : {}), ...(r.holdsUntil !== undefined ? { holdsUntil: r.holdsUntil } : {}) };
}

/**
 * A check for every actor, combined as S3 decides: any denied → denied (naming that actor); otherwise any
 * conditional → conditional with the union of the missing parameters; otherwise allowed (holding until the first
 * actor's grant lapses). `label` names an actor in the answer and `detailed` says whether its path and reason are
 * shown (a caller may not see every maker).
 */
export async function checkActors(opts: {
  relationships: Relationships;
  tenant: string;
  resource: string;
  permission: string;
  actors: RelationshipActor[];
  label: (a: RelationshipActor) => string;
  /** Whether an actor's path and reason (which name its tuples, and so its subject) may be shown; default all. */
  detailed?: (a: RelationshipActor) => boolean;
  /** What of a detailed answer the reader may see (its path and reason cut to the reader's reach); default all. */
  within?: (r: CheckResult) => CheckResult;
  explain: boolean;
  options: CheckOptions;
}): Promise<CheckResult & { actors?: ActorAnswer[] }> {
  const { relationships: r, tenant, resource, permission } = opts;
  const answers: ActorAnswer[] = [];
  for (const a of opts.actors) {
    const one = await (opts.explain ? r.explain(tenant, resource, permission, a.subject, opts.options) : r.check(tenant, resource, permission, a.subject, opts.options));
    answers.push({ actor: opts.label(a), ...((opts.detailed?.(a) ?? true) ? (opts.within?.(one) ?? one) : undetailed(one)) });
    if (one.result === 'denied') break;
  }
  const shown = opts.explain ? { actors: answers } : {};
  const denied = answers.find((x) => x.result === 'denied');
  if (denied) return { result: 'denied', reason: `missing ${permission} on ${resource} for ${denied.actor}: ${denied.reason}`, ...(denied.path || opts.explain ? { path: denied.path ?? [] } : {}), ...shown };
  const conditional = answers.filter((x) => x.result === 'conditional');
  const lapses = answers.map((x) => x.holdsUntil).filter((t): t is number => t !== undefined);
  const holdsUntil = lapses.length > 0 ? { holdsUntil: Math.min(...lapses) } : {};
  const path = answers[0]!.path ? { path: answers[0]!.path } : {};
  if (conditional.length > 0) {
    const missing = [...new Set(conditional.flatMap((x) => x.missing ?? []))];
    return { result: 'conditional', reason: conditional.map((x) => `${x.actor}: ${x.reason}`).join('; '), missing, ...path, ...holdsUntil, ...shown };
  }
  return { result: 'allowed', reason: answers[0]!.reason, ...path, ...holdsUntil, ...shown };
}

/** The ids every actor holds `permission` on (lookupResources of each, intersected), in the first actor's order. */
export async function lookupActors(opts: {
  relationships: Relationships;
  tenant: string;
  resourceType: string;
  permission: string;
  actors: RelationshipActor[];
  options: CheckOptions & { idPrefix?: string };
}): Promise<string[]> {
  let ids: string[] | undefined;
  for (const a of opts.actors) {
    if (ids === undefined) ids = await opts.relationships.lookupResources(opts.tenant, opts.resourceType, opts.permission, a.subject, opts.options);
    // Later actors filter what the earlier ones kept (one batched evaluation of those ids, not another range read).
    else if (ids.length > 0) ids = await opts.relationships.filterResources(opts.tenant, opts.resourceType, ids, opts.permission, a.subject, opts.options);
  }
  return ids ?? [];
}

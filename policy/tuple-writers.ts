/**
 * Tuples written by applications through the tuple write guard (relationships/guard.ts): the scope a principal writes
 * in, and the second look the access audit takes at what applications wrote, judged against their writers as they
 * stand now. The guard judges a write only when it is made; a writer narrowed since (a maker's tuple deleted, its
 * scopes replaced) keeps granting through what it wrote until someone deletes it (README "Who may do what").
 */
import { actorsOf } from './actors.ts';
import type { CredentialFailure, ResolveResult } from './credential-cache.ts';
import { expiresAt, guardRefusal, parseSubject, type AppScope, type Relationships, type Tuple } from './relationships/index.ts';
import { holdsTenantWide } from './scopes.ts';
import type { Principal } from './types.ts';

/**
 * The scope `principal` writes tuples of `tenant` in, or undefined when the guard does not apply (root, or every
 * family on every bucket): itself as the writer (no self-escalation, nothing it does not hold itself), its tuples:write
 * and admin grants, each of which bounds the buckets, prefixes, namespaces and relations of the tuples written under
 * it, and every subject bounding it (policy/actors.ts: a web-identity session's provider registrar, every maker up its
 * chain without tenant-wide authority), so a derived credential never hands out what a maker no longer holds.
 */
export function tupleWriteScope(principal: Principal, tenant: string): AppScope | undefined {
  if (principal.isRoot || holdsTenantWide(principal)) return undefined;
  // The same actors S3 decides for, but the writer itself: the guard checks it as the writer.
  const boundedBy = (actorsOf(principal) ?? []).filter((a) => a.role !== undefined).map((a) => a.subject);
  const grants = principal.scopes.filter((g) => g.families.some((f) => f === 'admin' || f === 'tuples:write'));
  return { tenant, writer: principal.subject, grants, ...(boundedBy.length > 0 ? { boundedBy } : {}) };
}

/** Why a writer that cannot act cannot, in words (credential-state.ts's failures). */
const GONE: Record<CredentialFailure, string> = {
  unknown: 'is deleted',
  revoked: 'is revoked',
  expired: 'has expired',
  tenant_disabled: 'is in a disabled tenant',
  maker_gone: 'was made by a maker that is gone',
};

/** A live tuple an application wrote that the guard would refuse it today. */
export interface TupleBeyondWriter {
  tuple: Tuple;
  /** The writer's subject as the guard judged it (`app:AKIA…`). */
  writer: string;
  /** The writer's access key id (the credential; a session writes as its parent's subject). */
  accessKeyId: string;
  /** Why the guard would refuse it now, as the guard says it (or why the writer cannot act at all). */
  reason: string;
}

/**
 * The tenant's live tuples (not expired) whose latest write went through the guard and that the guard would refuse
 * today if the same writer wrote them again: the guard's rules re-run, as a `touch`, for the writer as it resolves now
 * (its scopes bounded by its makers) and every subject bounding it now, against the tenant as it stands (the tuple
 * included: the guard refuses any tuple whose subject covers a writer, so its own presence never lets it pass). A
 * writer that can no longer act (expired, its maker gone, its tenant disabled) could write nothing: its tuples are
 * listed with why. A writer now holding every family on every bucket passes, as its writes would. Writers that
 * name no credential (a web-identity session's `user:` subject) cannot be judged again and are skipped.
 * Cost: one guard evaluation per guarded tuple; the audit runs on demand.
 */
export async function tuplesBeyondWriters(opts: {
  relationships: Relationships;
  tenant: string;
  resolveAccessKey: (accessKeyId: string, now: Date) => Promise<ResolveResult>;
  now: Date;
}): Promise<TupleBeyondWriter[]> {
  const { relationships, tenant, now } = opts;
  const resolved = new Map<string, ResolveResult>();
  const out: TupleBeyondWriter[] = [];
  for (const w of await relationships.store.guardedWrites(tenant)) {
    const expiry = expiresAt(w.tuple);
    if (expiry !== null && expiry <= now.getTime()) continue;
    const subject = w.writer === undefined ? undefined : parseSubject(w.writer);
    if (subject === undefined || subject.type !== 'app' || subject.relation !== undefined) continue;
    const id = subject.id;
    if (!resolved.has(id)) resolved.set(id, await opts.resolveAccessKey(id, now));
    const writer = resolved.get(id)!;
    let reason: string | undefined;
    if (!writer.ok) reason = `its writer ${w.writer} ${GONE[writer.reason]}, so it could write nothing`;
    else {
      const scope = tupleWriteScope(writer.principal, writer.principal.tenant);
      if (scope === undefined) continue;
      reason = await guardRefusal(relationships.engine, tenant, scope, [{ op: 'touch', tuple: w.tuple }]);
    }
    if (reason !== undefined) out.push({ tuple: w.tuple, writer: w.writer!, accessKeyId: id, reason });
  }
  return out;
}

/**
 * The store's foundation: the policy database, the per-node cache and the one way to change anything — a write
 * transaction holding the policy concern's lock that records the change in the audit log and bumps the revision, which
 * every node's caches follow (policy/database/signals.ts).
 */

import type { Kysely, Transaction } from 'kysely';
import { insertAudit, type AuditRecord } from './audit-log.ts';
import type { CredentialCache } from './credential-cache.ts';
import type { PolicyDatabase } from './database/policy-database.ts';
import type { PolicyTables } from './database/tables.ts';

/** Who made a change, for the audit log (an access key id, `operator` for the CLI, …). */
export interface Actor {
  actor?: string;
}

/** One audited change. */
export type Change = Omit<AuditRecord, 'time' | 'actor'> & Actor;

/** A write transaction of the policy concern. */
export type PolicyTransaction = Transaction<PolicyTables>;

/**
 * Runs `fn` as one change of the policy concern: under the write lock, its audit record (when it reports a change)
 * written in the same transaction, the revision bumped so every node drops its caches.
 */
export async function commitPolicy<T>(database: PolicyDatabase, fn: (trx: PolicyTransaction) => Promise<{ result: T; change?: Change }>): Promise<T> {
  const { result } = await database.change('policy', async (trx) => {
    const outcome = await fn(trx);
    if (outcome.change) await insertAudit(trx, { ...outcome.change, actor: outcome.change.actor ?? 'operator' }, database.node);
    return { result: outcome.result, changed: outcome.change !== undefined };
  });
  return result;
}

/** The database, cache and audit log every part of the store works through. */
export abstract class StoreBase {
  protected readonly db: Kysely<PolicyTables>;

  protected constructor(
    /** The policy database this store (and the session, capability and relationship stores beside it) live in. */
    readonly database: PolicyDatabase,
    protected readonly cache: CredentialCache,
  ) {
    this.db = database.db('policy');
  }

  /** Runs `fn` as one audited change (nothing audited, and no revision moved, when it returns no change). */
  protected commit<T>(fn: (trx: PolicyTransaction) => Promise<{ result: T; change?: Change }>): Promise<T> {
    return commitPolicy(this.database, fn);
  }

  /** Shorthand of commit for changes that always happen. */
  protected async change(change: Change, fn: (trx: PolicyTransaction) => Promise<unknown>): Promise<void> {
    await this.commit(async (trx) => {
      await fn(trx);
      return { result: undefined, change };
    });
  }
}

/**
 * The store's foundation: the SQLite connection, the per-process cache and the one way to change anything — an
 * immediate transaction that bumps the revision row, then cache invalidation and an audit line.
 */

import type Database from 'better-sqlite3';
import type { AuditLog, AuditRecord } from './audit-log.ts';
import type { CredentialCache } from './credential-cache.ts';

/** Who made a change, for the audit log (an access key id, `operator` for the CLI, …). */
export interface Actor {
  actor?: string;
}

/** One audited change. */
export type Change = Omit<AuditRecord, 'time' | 'actor'> & Actor;

/** The connection, cache and audit log every part of the store works through. */
export abstract class StoreBase {
  protected constructor(
    protected readonly db: Database.Database,
    protected readonly cache: CredentialCache,
    private readonly audit: AuditLog | undefined,
  ) {}

  /**
   * Runs `fn` in one immediate transaction that also bumps the revision, then drops this process's caches and
   * audits what `fn` reports changed (nothing when it returns no change).
   */
  protected commit<T>(fn: () => { result: T; change?: Change }): T {
    const { result, change } = this.db.transaction(() => {
      const outcome = fn();
      if (outcome.change) this.db.prepare("UPDATE meta SET value = value + 1 WHERE key = 'revision'").run();
      return outcome;
    }).immediate();
    if (change) {
      this.cache.invalidate();
      try {
        this.audit?.write({ ...change, actor: change.actor ?? 'operator' });
      } catch (error) {
        // The change is committed; failing the caller now would report a change that did happen as failed.
        process.emitWarning(`audit log write failed: ${(error as Error).message}`);
      }
    }
    return result;
  }

  /** Shorthand of commit for changes that always happen. */
  protected change(change: Change, fn: () => unknown): void {
    this.commit(() => {
      fn();
      return { result: undefined, change };
    });
  }
}

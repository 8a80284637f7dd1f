/**
 * Access records: which API families each application credential used, from which remote addresses and with which
 * user agents, day by day, in the policy database (so every node's uses are one query away). The access audit reads
 * them (`anvil audit check`: families granted but not used, one key shared by several jobs). A use is written once
 * per credential, day, family, address and agent per node (an LRU remembers what was written), so the hot path costs
 * a map lookup and the write happens beside the request, never in its way; rows older than RETENTION_DAYS are dropped.
 * Writing one moves no revision: no cache depends on them. User agents are stored scrubbed of secret-shaped text.
 */
import { LRUCache } from 'lru-cache';
import type { PolicyDatabase } from './database/policy-database.ts';
import { scrubSecrets } from './scrub.ts';
import type { Family } from './types.ts';

/** How many days of access records are kept. */
export const RETENTION_DAYS = 400;

/** Longest user agent kept; longer ones are cut (a job's agent is identified by its start). */
export const MAX_USER_AGENT = 200;

const DAY_MS = 86_400_000;

/** One authorized use of a credential. */
export interface CredentialUse {
  accessKeyId: string;
  family: Family;
  remoteAddress?: string;
  userAgent?: string;
  time?: Date;
}

/** What one credential did in a window: families, remote addresses and user agents, and the last day seen. */
export interface CredentialUsage {
  accessKeyId: string;
  families: Family[];
  remoteAddresses: string[];
  userAgents: string[];
  /** Start (UTC midnight) of the last day with a use, ISO 8601. */
  lastDay: string;
}

/** The access records of a policy database. */
export class AccessRecords {
  private readonly written = new LRUCache<string, true>({ max: 50_000 });
  private readonly pending = new Set<Promise<void>>();
  private lastPruneDay = 0;

  constructor(private readonly database: PolicyDatabase) {}

  /** Resolves once the uses recorded so far are written (before the database closes). */
  async close(): Promise<void> {
    await Promise.all(this.pending);
  }

  /** Records one use in the background; never throws (a busy database must not fail a request over its bookkeeping). */
  record(use: CredentialUse): void {
    const day = Math.floor((use.time === undefined ? Date.now() : use.time.getTime()) / DAY_MS);
    const remoteAddress = use.remoteAddress ?? '';
    const userAgent = use.userAgent === undefined ? '' : use.userAgent.slice(0, MAX_USER_AGENT);
    const key = `${use.accessKeyId}\n${day}\n${use.family}\n${remoteAddress}\n${userAgent}`;
    // Almost every use was written already: that is known before anything else is built.
    if (this.written.has(key)) return;
    // Scrubbed once per row written, not per use: an agent may carry a presigned URL (policy/scrub.ts).
    const row = { access_key_id: use.accessKeyId, day, family: use.family, remote_address: remoteAddress, user_agent: scrubSecrets(userAgent) };
    this.written.set(key, true);
    const write = this.write(row, day).catch(() => {
      // Best effort, like the last-used time: the audit reads what could be written; a later use tries again.
      this.written.delete(key);
    });
    this.pending.add(write);
    void write.finally(() => this.pending.delete(write));
  }

  private async write(row: { access_key_id: string; day: number; family: string; remote_address: string; user_agent: string }, day: number): Promise<void> {
    const db = this.database.db('policy');
    // Another node may have written the same row first: that is the same fact.
    await db.insertInto('credential_uses').values(row).onConflict((oc) => oc.doNothing()).execute();
    if (day !== this.lastPruneDay) {
      this.lastPruneDay = day;
      await db.deleteFrom('credential_uses').where('day', '<', day - RETENTION_DAYS).execute();
    }
  }

  /** Every credential's uses from `since` on (whole days), by access key id, from every node (this one's written first). */
  async usage(options: { since: Date }): Promise<CredentialUsage[]> {
    await Promise.all(this.pending);
    const from = Math.floor(options.since.getTime() / DAY_MS);
    const rows = await this.database.db('policy').selectFrom('credential_uses').selectAll().where('day', '>=', from).orderBy('access_key_id').execute();
    const byKey = new Map<string, { families: Set<Family>; addresses: Set<string>; agents: Set<string>; lastDay: number }>();
    for (const row of rows) {
      let u = byKey.get(row.access_key_id);
      if (!u) byKey.set(row.access_key_id, (u = { families: new Set(), addresses: new Set(), agents: new Set(), lastDay: 0 }));
      u.families.add(row.family as Family);
      if (row.remote_address !== '') u.addresses.add(row.remote_address);
      if (row.user_agent !== '') u.agents.add(row.user_agent);
      u.lastDay = Math.max(u.lastDay, row.day);
    }
    return [...byKey].map(([accessKeyId, u]) => ({
      accessKeyId,
      families: [...u.families].sort(),
      remoteAddresses: [...u.addresses].sort(),
      userAgents: [...u.agents].sort(),
      lastDay: new Date(u.lastDay * DAY_MS).toISOString(),
    }));
  }
}

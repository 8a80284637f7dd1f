/**
 * Access records: which API families each application credential used, from which remote addresses and with which
 * user agents, day by day. The access audit reads them (`anvil audit check`: families granted but not used, one key
 * shared by several jobs). A use is written once per credential, day, family, address and agent per process (an LRU
 * remembers what was written), so the hot path costs a map lookup; rows older than RETENTION_DAYS are dropped.
 * The table lives in dataDir/policy.db beside the credentials, created here with IF NOT EXISTS like the session
 * tables, so the core migration list stays the policy store's own.
 */
import type Database from 'better-sqlite3';
import { LRUCache } from 'lru-cache';
import { openPolicyDatabase } from './sessions/database.ts';
import type { Family } from './types.ts';

/** How many days of access records are kept. */
export const RETENTION_DAYS = 400;

/** Longest user agent kept; longer ones are cut (a job's agent is identified by its start). */
export const MAX_USER_AGENT = 200;

const DAY_MS = 86_400_000;

const DDL = `CREATE TABLE IF NOT EXISTS credential_uses (
    access_key_id TEXT NOT NULL,
    day INTEGER NOT NULL,
    family TEXT NOT NULL,
    remote_address TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    PRIMARY KEY (access_key_id, day, family, remote_address, user_agent)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS credential_uses_day ON credential_uses (day);`;

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

/** The access records of a data directory. */
export class AccessRecords {
  private readonly written = new LRUCache<string, true>({ max: 50_000 });
  private readonly insert: Database.Statement;
  private lastPruneDay = 0;

  private constructor(private readonly db: Database.Database) {
    this.insert = db.prepare('INSERT OR IGNORE INTO credential_uses (access_key_id, day, family, remote_address, user_agent) VALUES (?, ?, ?, ?, ?)');
  }

  /** Opens the records of a data directory whose policy store already exists. */
  static open(options: { dataDir: string }): AccessRecords {
    return new AccessRecords(openPolicyDatabase(options.dataDir, DDL));
  }

  /** Closes the database connection. */
  close(): void {
    this.db.close();
  }

  /** Records one use; never throws (a busy database must not fail a request over its bookkeeping). */
  record(use: CredentialUse): void {
    const day = Math.floor((use.time ?? new Date()).getTime() / DAY_MS);
    const remote = use.remoteAddress ?? '';
    const agent = (use.userAgent ?? '').slice(0, MAX_USER_AGENT);
    const key = `${use.accessKeyId}\n${day}\n${use.family}\n${remote}\n${agent}`;
    if (this.written.has(key)) return;
    try {
      this.insert.run(use.accessKeyId, day, use.family, remote, agent);
      this.written.set(key, true);
      if (day !== this.lastPruneDay) {
        this.lastPruneDay = day;
        this.db.prepare('DELETE FROM credential_uses WHERE day < ?').run(day - RETENTION_DAYS);
      }
    } catch {
      // Best effort, like the last-used time: the audit reads what could be written.
    }
  }

  /** Every credential's uses from `since` on (whole days), by access key id. */
  usage(options: { since: Date }): CredentialUsage[] {
    const from = Math.floor(options.since.getTime() / DAY_MS);
    const rows = this.db
      .prepare('SELECT access_key_id, day, family, remote_address, user_agent FROM credential_uses WHERE day >= ? ORDER BY access_key_id')
      .all(from) as Array<{ access_key_id: string; day: number; family: Family; remote_address: string; user_agent: string }>;
    const byKey = new Map<string, { families: Set<Family>; addresses: Set<string>; agents: Set<string>; lastDay: number }>();
    for (const row of rows) {
      let u = byKey.get(row.access_key_id);
      if (!u) byKey.set(row.access_key_id, (u = { families: new Set(), addresses: new Set(), agents: new Set(), lastDay: 0 }));
      u.families.add(row.family);
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

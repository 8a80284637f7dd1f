/**
 * How the policy conformance suites get a policy database: one factory per engine (SQLite files in a temporary data
 * directory; a fresh database of a real PostgreSQL cluster), so every suite runs unchanged against both, as the
 * storage conformance suite runs against both backends.
 */
import { randomBytes } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import { CONSISTENCY_BOUND_MS, PolicyDatabase, PolicyStore } from '../../../policy/index.ts';
import { sharedPostgres } from '../../helpers/postgres.ts';
import { tempDataDir } from '../helpers.ts';

/** One test's policy database location; every open() is another connection to it, as another node would make. */
export interface PolicyEnv {
  engine: 'sqlite' | 'postgres';
  dataDir: string;
  /** The PostgreSQL URL (undefined for SQLite). */
  url?: string;
  /** The master key every store of this test uses. */
  masterKey: string;
  /** Opens the database (closed when the test ends). */
  open(options?: { dataDir?: string }): Promise<PolicyDatabase>;
  /**
   * Waits out the engine's consistency bound: SQLite's is nothing (the next lookup of any connection sees a commit);
   * PostgreSQL's is CONSISTENCY_BOUND_MS, after which every node's lookups see it.
   */
  bound(): Promise<void>;
  /** Opens the database and a policy store on it (closed when the test ends). */
  store(options?: { dataDir?: string; masterKey?: string }): Promise<PolicyStore>;
}

/** Makes a fresh, empty PolicyEnv for one test. */
export type PolicyFactory = { engine: 'sqlite' | 'postgres'; fresh(t: ExecutionContext): Promise<PolicyEnv> };

function env(t: ExecutionContext, engine: 'sqlite' | 'postgres', url: string | undefined): PolicyEnv {
  const dataDir = tempDataDir(t);
  const masterKey = randomBytes(32).toString('base64');
  const open = async (options: { dataDir?: string } = {}) => {
    const database = await PolicyDatabase.open({ url, dataDir: options.dataDir ?? dataDir });
    t.teardown(() => database.close());
    return database;
  };
  return {
    engine,
    dataDir,
    url,
    masterKey,
    open,
    bound: () => new Promise((resolve) => setTimeout(resolve, engine === 'postgres' ? CONSISTENCY_BOUND_MS : 0)),
    async store(options = {}) {
      const database = await open(options);
      return PolicyStore.open({ database, dataDir: options.dataDir ?? dataDir, masterKey: options.masterKey ?? masterKey });
    },
  };
}

/** SQLite files in a temporary data directory. */
export const SQLITE: PolicyFactory = { engine: 'sqlite', fresh: async (t) => env(t, 'sqlite', undefined) };

/** A fresh database of the test process's PostgreSQL cluster. */
export const POSTGRES: PolicyFactory = {
  engine: 'postgres',
  async fresh(t) {
    const server = await sharedPostgres();
    return env(t, 'postgres', await server.createDatabase());
  },
};

/** Polls `check` until it holds or `ms` pass (for effects that land asynchronously, like last-use times). */
export async function eventually(check: () => Promise<boolean>, ms = 5_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

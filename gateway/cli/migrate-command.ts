/**
 * `anvil migrate-policy --from DATA_DIR --to postgres://…`: moves an embedded deployment's policy into PostgreSQL, so
 * several gateway nodes can share it. Runs here, not through a gateway: stop the gateway on DATA_DIR first — it is
 * refused while a gateway holds DATA_DIR's lock (storage/data-dir-lock.ts), since what that gateway changed after the
 * copy (a revocation) would be missing from the target, and a second run into the filled database is refused. All or
 * nothing (one transaction), into an empty database only; prints what it copied, table by table.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { copyPolicy, isPostgresUrl, MASTER_KEY_FILE, masterKeyReference, nodeMasterKey, PolicyDatabase, redactDatabaseUrl, verifyMasterKey } from '../../policy/index.ts';
import { DataDirInUseError, LOCK_FILE, lockDataDir, type DataDirLock } from '../../storage/index.ts';
import type { Command } from './command.ts';
import { masterKeyFromFile } from '../config.ts';
import { table, UsageError } from './format.ts';

/** The migrate-policy command. */
export const MIGRATE_COMMAND: Command = {
  name: 'migrate-policy',
  args: [],
  options: { from: { type: 'string' }, to: { type: 'string' }, json: { type: 'boolean' } },
  summary: "copy an embedded deployment's policy (--from DATA_DIR) into an empty PostgreSQL database (--to URL), all or nothing",
  examples: ['migrate-policy --from /var/lib/anvil --to postgres://anvil:secret@db:5432/anvil'],
  async run(run) {
    const from = run.values.from as string | undefined;
    const to = (run.values.to as string | undefined) ?? run.env.ANVIL_POLICY_DATABASE;
    if (!from) throw new UsageError('migrate-policy needs --from DATA_DIR (the embedded deployment, its gateway stopped)');
    if (!isPostgresUrl(to)) throw new UsageError('migrate-policy needs --to postgres://user:password@host:5432/db (or ANVIL_POLICY_DATABASE)');
    const dataDir = resolve(from);
    if (!existsSync(join(dataDir, 'policy.db'))) throw new UsageError(`no policy store in ${dataDir}`);
    const keyFile = run.env.ANVIL_MASTER_KEY_FILE;
    const configured = run.env.ANVIL_MASTER_KEY || masterKeyFromFile(keyFile || undefined);
    if (configured === undefined && !existsSync(join(dataDir, MASTER_KEY_FILE))) {
      throw new UsageError(`no ${MASTER_KEY_FILE} in ${dataDir}: give the deployment's key as ANVIL_MASTER_KEY or ANVIL_MASTER_KEY_FILE`);
    }
    // The gateway's own lock, exclusive, held until the copy is done: no gateway runs on DATA_DIR meanwhile, and
    // none starts (its start is refused) until the copy is complete.
    let lock: DataDirLock;
    try {
      lock = lockDataDir(dataDir, 'exclusive');
    } catch (error) {
      if (!(error instanceof DataDirInUseError)) throw error;
      throw new Error(`a gateway is running on ${dataDir} (it holds ${join(dataDir, LOCK_FILE)}): stop it first, or what it changes after the copy is lost`);
    }
    const source = await PolicyDatabase.open({ dataDir }).catch((error: unknown) => {
      lock.release();
      throw error;
    });
    try {
      // The sealed secrets move as they are: the nodes need the key that sealed them, checked here before anything moves.
      const key = nodeMasterKey(undefined, dataDir, configured);
      await verifyMasterKey(source.db('policy'), key);
      const target = await PolicyDatabase.open({ url: to, dataDir });
      try {
        const counts = await copyPolicy(source, target);
        const reference = masterKeyReference(key);
        if (run.values.json === true) return run.out(JSON.stringify({ from: dataDir, to: redactDatabaseUrl(to), masterKeyReference: reference, counts }, null, 2) + '\n');
        const total = Object.values(counts).reduce((a, b) => a + b, 0);
        run.out(table(['TABLE', 'ROWS'], Object.entries(counts).map(([name, n]) => [name, String(n)])));
        run.out(
          `\nCopied ${total} rows from ${dataDir} to ${redactDatabaseUrl(to)} in one transaction.\n` +
            `Every node now needs ANVIL_POLICY_DATABASE set to that database and the same master key (reference ${reference}):\n` +
            `  ${configured !== undefined ? 'the ANVIL_MASTER_KEY you gave here' : `ANVIL_MASTER_KEY_FILE=${join(dataDir, 'master.key')} (copy the file to each node)`}\n`,
        );
      } finally {
        await target.close();
      }
    } finally {
      await source.close();
      lock.release();
    }
  },
};

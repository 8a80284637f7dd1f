/**
 * The policy conformance suites against a real PostgreSQL (test/helpers/postgres.ts), one database per test, then what
 * only a shared database has: no node generates a master key, and a node older than the schema refuses to start.
 */
import test from 'ava';
import pg from 'pg';
import { MasterKeyMismatchError, PolicyDatabase, PolicyStore, SchemaTooNewError } from '../../policy/index.ts';
import { postgresOrExplain, sharedPostgres } from '../helpers/postgres.ts';
import { credentialSuite } from './conformance/credentials.ts';
import { POSTGRES } from './conformance/factory.ts';
import { logSuite } from './conformance/logs.ts';
import { operationsSuite } from './conformance/operations.ts';
import { relationshipSuite } from './conformance/relationships.ts';

if (postgresOrExplain(test, 'policy conformance')) {
  test.after.always(async () => (await sharedPostgres()).close());
  credentialSuite(test, POSTGRES);
  relationshipSuite(test, POSTGRES);
  logSuite(test, POSTGRES);
  operationsSuite(test, POSTGRES);

  test('postgres: no node generates a master key: every node must be given the same one', async (t) => {
    const env = await POSTGRES.fresh(t);
    const database = await env.open();
    const error = await t.throwsAsync(PolicyStore.open({ database, dataDir: env.dataDir }), { instanceOf: MasterKeyMismatchError });
    t.regex(error?.message ?? '', /ANVIL_MASTER_KEY/);
  });

  test('postgres: a node older than the database schema refuses to start instead of misreading it', async (t) => {
    const env = await POSTGRES.fresh(t);
    await env.open();
    // A newer node migrated the schema past what this code knows.
    const newer = new pg.Client({ connectionString: env.url });
    await newer.connect();
    await newer.query('INSERT INTO anvil_policy.migrations (version, applied_at) VALUES (999, 0)');
    await newer.end();
    const refused = await t.throwsAsync(PolicyDatabase.open({ url: env.url, dataDir: env.dataDir }));
    t.true(refused?.cause instanceof SchemaTooNewError, refused?.message);
  });
}

/** The policy conformance suites against a real PostgreSQL (test/helpers/postgres.ts), one database per test. */
import test from 'ava';
import { postgresOrExplain, sharedPostgres } from '../helpers/postgres.ts';
import { credentialSuite } from './conformance/credentials.ts';
import { POSTGRES } from './conformance/factory.ts';
import { relationshipSuite } from './conformance/relationships.ts';

if (postgresOrExplain(test, 'policy conformance')) {
  test.after.always(async () => (await sharedPostgres()).close());
  credentialSuite(test, POSTGRES);
  relationshipSuite(test, POSTGRES);
}

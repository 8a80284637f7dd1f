/** The policy conformance suites against SQLite (the default engine: files in the data directory). */
import test from 'ava';
import { SQLITE } from './conformance/factory.ts';
import { credentialSuite } from './conformance/credentials.ts';

credentialSuite(test, SQLITE);

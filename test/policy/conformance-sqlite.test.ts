/** The policy conformance suites against SQLite (the default engine: files in the data directory). */
import test from 'ava';
import { credentialSuite } from './conformance/credentials.ts';
import { SQLITE } from './conformance/factory.ts';
import { relationshipSuite } from './conformance/relationships.ts';

credentialSuite(test, SQLITE);
relationshipSuite(test, SQLITE);

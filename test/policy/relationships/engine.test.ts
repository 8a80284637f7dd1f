/** Runs every data file in cases/: schema + tuples, then assertTrue / assertFalse / assertCaveated checks. */

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { parse } from 'yaml';
import { compileSchema, parseTuple, Relationships } from '../../../policy/relationships/index.ts';
import { tempDataDir } from '../helpers.ts';

type Assertion = string | { check: string; context?: Record<string, unknown>; missing?: string[]; reason?: string };
interface Case {
  schema: string;
  tuples?: string;
  /** A schema written after the tuples (e.g. a changed caveat definition). */
  schemaAfter?: string;
  maxDepth?: number;
  context?: Record<string, unknown>;
  assertTrue?: Assertion[];
  assertFalse?: Assertion[];
  assertCaveated?: Assertion[];
}

const DIR = join(import.meta.dirname, 'cases');
const AUDIT = { actor: 'test', reason: 'engine case' };

for (const file of readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort()) {
  test(file, (t) => {
    const c = parse(readFileSync(join(DIR, file), 'utf8')) as Case;
    const rel = Relationships.open({ dataDir: tempDataDir(t), maxDepth: c.maxDepth });
    t.teardown(() => rel.close());
    rel.writeSchema('t1', c.schema, AUDIT);
    const hashes = compileSchema(c.schema).caveats;
    const tuples = (c.tuples ?? '').replace(/\{hash:(\w+)\}/g, (_, name: string) => hashes.get(name)?.hash ?? 'ffffffffffffffff');
    if (tuples.trim() !== '') rel.importTuples('t1', tuples, AUDIT);
    if (c.schemaAfter) rel.writeSchema('t1', c.schemaAfter, AUDIT);
    const run = (a: Assertion, expected: 'allowed' | 'denied' | 'conditional'): void => {
      const spec = typeof a === 'string' ? { check: a } : a;
      const q = parseTuple(spec.check);
      const context = { ...c.context, ...spec.context };
      const got = rel.explain('t1', q.resource, q.relation, q.subject, { context });
      t.is(got.result, expected, `${file}: ${spec.check} → ${JSON.stringify(got)}`);
      if (spec.missing) t.deepEqual(got.missing, spec.missing, spec.check);
      if (spec.reason) t.regex(got.reason, new RegExp(spec.reason), spec.check);
      if (expected === 'allowed') t.true((got.path ?? []).length > 0, `${spec.check} has a path`);
    };
    for (const a of c.assertTrue ?? []) run(a, 'allowed');
    for (const a of c.assertFalse ?? []) run(a, 'denied');
    for (const a of c.assertCaveated ?? []) run(a, 'conditional');
  });
}

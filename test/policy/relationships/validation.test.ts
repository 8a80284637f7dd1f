/**
 * The validation-file runner itself: each kind of failure zed validate reports (failed assertions with the deciding
 * path, expected relations that differ, bad relationships, bad schemas) comes out with its line, and the file forms
 * zed accepts (schemaFile, assertions written as a YAML string as the playground exports them) load.
 * https://authzed.com/docs/spicedb/modeling/validation-testing-debugging#zed-validate
 */

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { runValidationFile, runValidationPath } from '../../../policy/relationships/index.ts';
import { tempDataDir } from '../helpers.ts';

const SCHEMA = `schema: |-
  definition user {}
  definition group {
    relation member: user | group#member
  }
  definition doc {
    relation viewer: user | group#member
    permission view = viewer
  }
`;

test('failed assertions name their line and the path that decided them', async (t) => {
  const report = await runValidationFile(`${SCHEMA}relationships: |-
  group:eng#member@user:amy
  doc:1#viewer@group:eng#member
assertions:
  assertTrue:
    - doc:1#view@user:zed
  assertFalse:
    - doc:1#view@user:amy
  assertCaveated:
    - doc:1#view@user:amy
`);
  t.is(report.assertions, 3);
  t.deepEqual(report.failures.map((f) => [f.kind, f.line]), [['assertion', 15], ['assertion', 17], ['assertion', 19]]);
  t.regex(report.failures[0]!.message, /assertTrue failed: `doc:1#view@user:zed` is denied/);
  t.deepEqual(report.failures[0]!.path, ['no relationship grants doc:1#view']);
  t.regex(report.failures[1]!.message, /assertFalse failed: `doc:1#view@user:amy` is allowed/);
  t.deepEqual(report.failures[1]!.path?.slice(0, 2), ['doc:1#view', 'doc:1#viewer@group:eng#member']);
  t.regex(report.failures[2]!.message, /assertCaveated failed: .* is allowed/);
});

test('expected relations report missing, extra and differently reached subjects', async (t) => {
  const report = await runValidationFile(`${SCHEMA}relationships: |-
  group:eng#member@user:amy
  doc:1#viewer@group:eng#member
  doc:1#viewer@user:bob
assertions:
  assertTrue:
    - doc:1#view@user:bob
validation:
  doc:1#view:
    - "[user:amy] is <doc:1#viewer>"
    - "[group:eng#member] is <doc:1#viewer>"
    - "[user:cy] is <doc:1#viewer>"
`);
  const messages = report.failures.map((f) => `${f.line}: ${f.message}`);
  t.deepEqual(messages, [
    '19: For object and permission/relation `doc:1#view`, found different relationships for subject `user:amy`: Specified: `<doc:1#viewer>`, Computed: `<group:eng#member>`',
    '21: For object and permission/relation `doc:1#view`, missing expected subject `user:cy`',
    '18: For object and permission/relation `doc:1#view`, subject `user:bob` found but missing from specified',
  ]);
});

test('bad relationships, unknown names and caveats on assertions are failures, not crashes', async (t) => {
  const bad = await runValidationFile(`${SCHEMA}relationships: |-
  doc:1#viewer@user:amy
  doc:1#nope@user:amy
  doc:1#viewer@user:amy
assertions:
  assertTrue:
    - doc:1#view@user:amy
`);
  t.deepEqual(bad.failures.map((f) => [f.line, f.message]), [[13, 'found repeated relationship `doc:1#viewer@user:amy`']]);
  const invalid = await runValidationFile(`${SCHEMA}relationships: |-
  doc:1#nope@user:amy
`);
  t.is(invalid.failures[0]?.line, 11);
  t.regex(invalid.failures[0]!.message, /unknown relation "doc#nope"/);
  const names = await runValidationFile(`${SCHEMA}assertions:
  assertFalse:
    - doc:1#nope@user:amy
    - doc:1#view@user:amy[somecaveat]
    - doc:1#view@robot:x
`);
  t.deepEqual(names.failures.map((f) => f.message), [
    'relation/permission `nope` not found under definition `doc`',
    'cannot specify a caveat or expiration on an assertion: `doc:1#view@user:amy[somecaveat]`',
    'object definition `robot` not found',
  ]);
  const schema = await runValidationFile('schema: "definition a { relation r: nope }"\n');
  t.deepEqual(schema.failures.map((f) => [f.kind, f.line]), [['schema', 1]]);
  t.regex(schema.failures[0]!.message, /unknown type "nope"/);
  t.is((await runValidationFile('- not a mapping')).failures[0]?.kind, 'file');
  t.is((await runValidationFile('schema: [unclosed')).failures[0]?.kind, 'file');
});

test('schemaFile and assertions written as a YAML string (the playground export) are read', async (t) => {
  const dir = tempDataDir(t);
  writeFileSync(join(dir, 'model.zed'), 'definition user {}\ndefinition doc { relation viewer: user }\n');
  writeFileSync(join(dir, 'case.yaml'), `schemaFile: ./model.zed
relationships: |-
  doc:1#viewer@user:amy
assertions: |-
  assertTrue:
    - doc:1#viewer@user:amy
  assertFalse:
    - doc:1#viewer@user:bob
validation: |-
  doc:1#viewer:
    - "[user:amy] is <doc:1#viewer>"
`);
  const report = await runValidationPath(join(dir, 'case.yaml'));
  t.deepEqual(report.failures, []);
  t.like(report, { relationships: 1, assertions: 2, expected: 1 });
  t.is((await runValidationFile('schemaFile: ./missing.zed\n', { dir })).failures[0]?.kind, 'file');
});

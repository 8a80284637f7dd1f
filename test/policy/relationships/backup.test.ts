/**
 * Export and import of a tenant in zed's text forms: the yaml validation-file form (`zed import` / `zed validate`),
 * `zed backup parse-relationships` lines and `parse-schema` text
 * (https://authzed.com/docs/spicedb/ops/data/migrations; zed's internal/cmd/backup.go). A restore is all or nothing
 * and leaves an import source record; what grants nothing (expired, stale caveat definition) is not exported.
 */

import test from 'ava';
import { parse } from 'yaml';
import { ImportError, parseBackup, Relationships, SchemaConflictError } from '../../../policy/relationships/index.ts';
import { tempDataDir } from '../helpers.ts';

const AUDIT = { actor: 'operator', reason: 'restore' };
const SCHEMA = `use expiration

caveat acme/office(ip ipaddress, nets list<string>) { nets.exists(n, ip.in_cidr(n)) }

definition acme/user {}
definition acme/group {
  relation member: acme/user | acme/group#member
}
definition acme/doc {
  relation viewer: acme/user | acme/group#member | acme/user with expiration | acme/user with acme/office and expiration
  permission view = viewer
}
`;
const TUPLES = [
  'acme/group:eng#member@acme/user:amy',
  'acme/doc:plan#viewer@acme/group:eng#member',
  'acme/doc:plan#viewer@acme/user:carl[expiration:2300-01-01T00:00:00Z]',
  'acme/doc:plan#viewer@acme/user:dora[acme/office:{"nets":["10.0.0.0/8"]}][expiration:2300-01-01T00:00:00Z]',
];

function source(t: Parameters<typeof tempDataDir>[0]): Relationships {
  const rel = Relationships.open({ dataDir: tempDataDir(t), gcIntervalMs: 0 });
  t.teardown(() => rel.close());
  rel.writeSchema('acme', SCHEMA, AUDIT);
  rel.write('acme', TUPLES.map((tuple) => ({ op: 'touch' as const, tuple })), AUDIT);
  rel.write('acme', [{ op: 'touch', tuple: 'acme/doc:old#viewer@acme/user:ex[expiration:2020-01-01T00:00:00Z]' }], AUDIT);
  return rel;
}

test('a yaml export is a zed validation file that restores the same schema and grants into another tenant', (t) => {
  const rel = source(t);
  const out = rel.exportTenant('acme');
  t.like(out, { count: 4, skipped: 1 });
  const file = parse(out.text) as { schema: string; relationships: string };
  t.is(file.schema, SCHEMA);
  t.deepEqual(file.relationships.split('\n').sort(), [...TUPLES].sort());
  const restored = rel.importBackup('copy', out.text, { ...AUDIT, name: 'acme.yaml' });
  t.like(restored, { count: 4, name: 'acme.yaml', actor: 'operator', reason: 'restore' });
  t.regex(restored.digest, /^[0-9a-f]{64}$/);
  t.is(rel.store.readSchema('copy')?.text, SCHEMA);
  for (const [subject, expected] of [['amy', 'allowed'], ['carl', 'allowed'], ['zed', 'denied']] as const) {
    t.is(rel.check('copy', 'acme/doc:plan', 'view', `acme/user:${subject}`).result, expected, subject);
  }
  t.is(rel.check('copy', 'acme/doc:plan', 'view', 'acme/user:dora', { context: { ip: '10.1.1.1' } }).result, 'allowed');
  t.is(rel.check('copy', 'acme/doc:plan', 'view', 'acme/user:dora', { context: { ip: '11.1.1.1' } }).result, 'denied');
  t.deepEqual(rel.exportTenant('copy').text, out.text);
});

test('zed backup parse-relationships lines and parse-schema text round-trip', (t) => {
  const rel = source(t);
  const lines = rel.exportTenant('acme', 'relationships').text;
  t.true(lines.split('\n').includes('acme/doc:plan viewer acme/group:eng#member'));
  t.is(rel.exportTenant('acme', 'schema').text, SCHEMA);
  rel.writeSchema('copy', rel.exportTenant('acme', 'schema').text, AUDIT);
  t.is(rel.importBackup('copy', lines, AUDIT).count, 4);
  t.is(rel.check('copy', 'acme/doc:plan', 'view', 'acme/user:amy').result, 'allowed');
  t.deepEqual(parseBackup('doc:1 viewer user:amy[c:{"a": 1}]\n// note\ndoc:2#viewer@user:bob'), {
    relationships: 'doc:1#viewer@user:amy[c:{"a": 1}]\n// note\ndoc:2#viewer@user:bob',
  });
});

test('a restore is all or nothing: a bad line or a stranding schema leaves the tenant as it was', (t) => {
  const rel = source(t);
  const text = rel.exportTenant('acme').text;
  rel.writeSchema('copy', 'definition acme/user {}\ndefinition acme/doc { relation owner: acme/user }', AUDIT);
  rel.write('copy', [{ op: 'touch', tuple: 'acme/doc:x#owner@acme/user:olga' }], AUDIT);
  const before = rel.changesSince('copy', '').length;
  t.throws(() => rel.importBackup('copy', text, AUDIT), { instanceOf: SchemaConflictError });
  const broken = text.replace('acme/user:carl', 'acme/robot:carl');
  t.throws(() => rel.importBackup('fresh', broken, AUDIT), { instanceOf: ImportError });
  t.is(rel.store.readSchema('fresh'), undefined);
  t.is(rel.changesSince('copy', '').length, before);
  t.deepEqual(rel.store.importSources('copy'), []);
});

test('tuples written against an older caveat definition are not exported (they grant nothing)', (t) => {
  const rel = source(t);
  rel.writeSchema('acme', SCHEMA.replace('nets.exists(n, ip.in_cidr(n))', 'nets.exists(n, ip.in_cidr(n)) && true'), AUDIT);
  const out = rel.exportTenant('acme');
  t.like(out, { count: 3, skipped: 2 });
  t.false(out.text.includes('dora'));
});

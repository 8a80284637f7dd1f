/**
 * Relationship expiration at the exact instant, with a controlled clock: "As soon as a relationship expires, it will
 * no longer be used in permission checks. However, the row is not deleted right then, but rather is subject to
 * garbage collection." (https://authzed.com/docs/spicedb/concepts/expiring-relationships#garbage-collection).
 * Checks, warm caches, listings, lookups, reads, exports, group memberships and exclusions all change at the instant.
 */

import test, { type ExecutionContext } from 'ava';
import { DEFAULT_OBJECT_SCHEMA, formatTuple, Relationships } from '../../../policy/relationships/index.ts';
import { tempDataDir } from '../helpers.ts';

const AUDIT = { actor: 'operator', reason: 'test' };
const EXPIRY = Date.parse('2030-06-01T12:00:00Z');

function setup(t: ExecutionContext, schema = DEFAULT_OBJECT_SCHEMA): { rel: Relationships; clock: { now: number } } {
  const clock = { now: EXPIRY - 60_000 };
  const rel = Relationships.open({ dataDir: tempDataDir(t), clock: () => clock.now, gcIntervalMs: 0 });
  t.teardown(() => rel.close());
  rel.writeSchema('acme', schema, AUDIT);
  return { rel, clock };
}

test('an expiring folder share grants until the instant and nothing from it on, warm caches included', (t) => {
  const { rel, clock } = setup(t);
  rel.write('acme', [{ op: 'touch', tuple: 'folder:b/shared/#reader@user:contractor[expiration:2030-06-01T12:00:00Z]' }], AUDIT);
  const read = () => rel.check('acme', 'object:b/shared/plan.pdf', 'read', 'user:contractor').result;
  const listed = () => rel.filterResources('acme', 'object', ['b/shared/a', 'b/shared/b', 'b/other/c', 'b/shared/d', 'b/shared/e'], 'read', 'user:contractor');
  for (let i = 0; i < 3; i++) t.is(read(), 'allowed'); // the result is now in every cache
  t.deepEqual(listed(), ['b/shared/a', 'b/shared/b', 'b/shared/d', 'b/shared/e']);
  t.deepEqual(rel.lookupResources('acme', 'folder', 'read', 'user:contractor'), ['b/shared/']);
  t.deepEqual(rel.lookupSubjects('acme', 'object:b/shared/x', 'read', 'user'), ['contractor']);
  clock.now = EXPIRY - 1;
  t.is(read(), 'allowed');
  clock.now = EXPIRY;
  t.is(read(), 'denied');
  t.deepEqual(listed(), []);
  t.deepEqual(rel.lookupResources('acme', 'folder', 'read', 'user:contractor'), []);
  t.deepEqual(rel.lookupSubjects('acme', 'object:b/shared/x', 'read', 'user'), []);
  // Still stored (reads and exports leave it out) until garbage collection.
  t.deepEqual(rel.store.readTuples('acme', { resourceType: 'folder' }), []);
  t.is(rel.store.exportTenant('acme', clock.now).tuples.length, 0);
});

test('an expiring group membership stops granting through the group, including through the reverse index', (t) => {
  const { rel, clock } = setup(t);
  rel.write('acme', [
    { op: 'touch', tuple: 'bucket:b#reader@group:temps#member' },
    { op: 'touch', tuple: 'folder:b/x/#reader@group:temps#member[expiration:2030-06-01T12:00:00Z]' },
  ], AUDIT);
  // group#member allows no expiring users in the default schema; a custom schema does.
  const schema = DEFAULT_OBJECT_SCHEMA.replace('relation member: user | app | group#member', 'relation member: user | app | group#member | user with expiration');
  rel.writeSchema('acme', schema, AUDIT);
  rel.write('acme', [{ op: 'touch', tuple: 'group:temps#member@user:tara[expiration:2030-06-01T12:00:00Z]' }], AUDIT);
  t.is(rel.check('acme', 'object:b/k', 'read', 'user:tara').result, 'allowed');
  t.is(rel.check('acme', 'group:temps', 'member', 'user:tara').result, 'allowed');
  clock.now = EXPIRY;
  t.is(rel.check('acme', 'object:b/k', 'read', 'user:tara').result, 'denied');
  t.is(rel.check('acme', 'group:temps', 'member', 'user:tara').result, 'denied');
});

test('a denial cached while an exclusion was live is not served after the exclusion expires', (t) => {
  const { rel, clock } = setup(t, `use expiration
    definition user {}
    definition doc {
      relation viewer: user
      relation suspended: user with expiration
      permission view = viewer - suspended
    }`);
  rel.write('acme', [
    { op: 'touch', tuple: 'doc:d#viewer@user:amy' },
    { op: 'touch', tuple: 'doc:d#suspended@user:amy[expiration:2030-06-01T12:00:00Z]' },
  ], AUDIT);
  for (let i = 0; i < 3; i++) t.is(rel.check('acme', 'doc:d', 'view', 'user:amy').result, 'denied');
  clock.now = EXPIRY;
  t.is(rel.check('acme', 'doc:d', 'view', 'user:amy').result, 'allowed');
});

test('garbage collection removes expired tuples later, and the watch feed reports each removal', (t) => {
  const { rel, clock } = setup(t);
  rel.write('acme', [
    { op: 'touch', tuple: 'folder:b/shared/#reader@user:contractor[expiration:2030-06-01T12:00:00Z]' },
    { op: 'touch', tuple: 'folder:b/shared/#reader@user:staff[expiration:2031-01-01T00:00:00Z]' },
  ], AUDIT);
  const before = rel.changesSince('acme', '').at(-1)!.revision;
  t.is(rel.store.collectExpired({ before: clock.now }), 0);
  clock.now = EXPIRY + 1000;
  t.is(rel.store.collectExpired({ before: clock.now }), 1);
  const events = rel.changesSince('acme', before);
  t.deepEqual(events.map((e) => `${e.kind} ${formatTuple(e.tuple!)}`), ['tuple.delete folder:b/shared/#reader@user:contractor[expiration:2030-06-01T12:00:00Z]']);
  t.like(rel.store.auditRecords('acme', { since: before })[0], { actor: 'anvil:gc', reason: 'expired' });
  t.is(rel.check('acme', 'object:b/shared/x', 'read', 'user:staff').result, 'allowed');
  // Re-granting before collection keeps the tuple: only what is still expired is removed.
  rel.write('acme', [{ op: 'touch', tuple: 'folder:b/shared/#reader@user:staff[expiration:2029-01-01T00:00:00Z]' }], AUDIT);
  rel.write('acme', [{ op: 'touch', tuple: 'folder:b/shared/#reader@user:staff[expiration:2032-01-01T00:00:00Z]' }], AUDIT);
  t.is(rel.store.collectExpired({ before: clock.now }), 0);
});

test('creating over an expired tuple succeeds, and preconditions do not see expired tuples', (t) => {
  const { rel, clock } = setup(t);
  rel.write('acme', [{ op: 'create', tuple: 'bucket:b#reader@user:amy[expiration:2030-06-01T12:00:00Z]' }], AUDIT);
  const mustExist = { op: 'must_exist' as const, filter: { resourceType: 'bucket', resourceId: 'b', subjectId: 'amy' } };
  t.notThrows(() => rel.write('acme', [{ op: 'touch', tuple: 'bucket:b#owner@user:olga' }], { ...AUDIT, preconditions: [mustExist] }));
  clock.now = EXPIRY;
  t.throws(() => rel.write('acme', [{ op: 'touch', tuple: 'bucket:b#owner@user:olga' }], { ...AUDIT, preconditions: [mustExist] }), { message: /precondition/ });
  t.notThrows(() => rel.write('acme', [{ op: 'create', tuple: 'bucket:b#reader@user:amy' }], AUDIT));
  t.is(rel.check('acme', 'bucket:b', 'read', 'user:amy').result, 'allowed');
});

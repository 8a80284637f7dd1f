/**
 * SpiceDB parity: deleting a tuple that does not exist changes nothing, so it answers `written: 0` and records no
 * `tuple.delete` in the changelog (GET /tuples/audit) or the watch feed; a real delete still records one. Real
 * gateway over HTTP.
 */
import test from 'ava';
import { admin, ok } from './helpers/admin.ts';
import { BUCKET, credential, seed, TENANT } from './helpers/authority.ts';
import { ROOT, startTestGateway } from './helpers/gateway.ts';

test('a delete of a missing tuple answers written 0 and records no change; a real one records exactly one', async (t) => {
  const tg = await startTestGateway();
  try {
    await admin(tg, ROOT, 'POST', '/tenants', { name: 'acme' });
    t.is((await admin(tg, ROOT, 'PUT', '/schema', { tenant: 'acme', schema: 'definition user {}\ndefinition doc { relation viewer: user }', reason: 'x' })).status, 200);
    const write = (updates: Array<{ op: string; tuple: string }>) => admin(tg, ROOT, 'POST', '/tuples', { tenant: 'acme', reason: 'x', updates });
    const deletes = async () => (await admin(tg, ROOT, 'GET', '/tuples/audit?tenant=acme')).json.records.filter((r: { kind: string }) => r.kind === 'tuple.delete');

    t.is((await write([{ op: 'touch', tuple: 'doc:p1#viewer@user:amy' }])).json.written, 1);
    const ghost = await write([{ op: 'delete', tuple: 'doc:p1#viewer@user:nobody' }]);
    t.is(ghost.status, 200);
    t.is(ghost.json.written, 0);
    t.deepEqual(await deletes(), []);

    const mixed = await write([{ op: 'delete', tuple: 'doc:p1#viewer@user:amy' }, { op: 'delete', tuple: 'doc:p2#viewer@user:nobody' }]);
    t.is(mixed.json.written, 1);
    const recorded = await deletes();
    t.is(recorded.length, 1);
    t.like(recorded[0].tuple, { resource: { type: 'doc', id: 'p1' }, subject: { type: 'user', id: 'amy' } });
    t.deepEqual((await admin(tg, ROOT, 'GET', '/tuples?tenant=acme&resourceType=doc')).json.tuples, []);
  } finally {
    await tg.close();
  }
});

test('a writer without tuples:read there is answered alike whether the deleted tuple existed', async (t) => {
  const tg = await startTestGateway();
  try {
    await seed(tg);
    await ok(tg, ROOT, 'PUT', `/buckets/${BUCKET}/governance`, { governed: true });
    const w = await credential(tg, [{ families: ['tuples:write'], bucket: BUCKET, prefix: 'pub/' }]);
    await ok(tg, ROOT, 'POST', '/tuples', { tenant: TENANT, reason: 'seed', updates: [
      { op: 'touch', tuple: `folder:${BUCKET}/pub/z/#owner@app:${w.accessKeyId}` },
      { op: 'touch', tuple: `folder:${BUCKET}/pub/z/#reader@user:erin` },
    ] });
    const del = (tuple: string) => admin(tg, w, 'POST', '/tuples', { updates: [{ op: 'delete', tuple }], reason: 'x' });
    const existing = await del(`folder:${BUCKET}/pub/z/#reader@user:erin`);
    const absent = await del(`folder:${BUCKET}/pub/z/#reader@user:fay`);
    t.is(existing.status, 200);
    t.is(absent.status, 200);
    t.is(existing.json.written, 1);
    t.is(absent.json.written, 1, 'no existence oracle for a writer that may not read there');
    const records = (await ok(tg, ROOT, 'GET', `/tuples/audit?tenant=${TENANT}`)).records.filter((r: { kind: string }) => r.kind === 'tuple.delete');
    t.is(records.length, 1, 'only the real delete is recorded');
  } finally {
    await tg.close();
  }
});

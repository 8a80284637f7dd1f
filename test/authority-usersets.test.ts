/**
 * Issue 9, class 8: the check engine follows SpiceDB on usersets. An arrow (`rel->perm`) walks every tuple of `rel`,
 * including tuples whose subject is a userset (`list:banned#member`); under an exclusion, skipping them would fail
 * open. Asked over HTTP: the check, explain and lookup APIs, and S3 reads and listings in a governed bucket.
 */
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import test from 'ava';
import { denials, ok } from './helpers/admin.ts';
import { BUCKET, credential, seed, TENANT } from './helpers/authority.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';

/** The schema, plus an S3 object type whose read excludes a group userset through an arrow. */
const SCHEMA = `definition user {}
definition app {}
definition list {
  relation member: user | app
}
definition event {
  relation invitee: user
  relation blocklist: list#member
  permission invited = invitee - blocklist->member
}
definition group {
  relation member: user | app
}
definition bucket {
  relation reader: user | app
  permission read = reader
}
definition folder {
  relation parent: bucket | folder
  relation reader: user | app
  permission read = reader + parent->read
}
definition object {
  relation parent: folder | bucket
  relation reader: user | app
  relation blocked: group#member
  permission read = (reader + parent->read) - blocked->member
  permission write = nil
  permission delete = nil
}`;

let tg: TestGateway;

test.before(async () => {
  tg = await startTestGateway();
  await seed(tg);
  await ok(tg, ROOT, 'PUT', `/buckets/${BUCKET}/governance`, { governed: true });
  await ok(tg, ROOT, 'PUT', '/schema', { tenant: TENANT, schema: SCHEMA, reason: 'class 8' });
});
test.after.always(async () => tg.close());

const write = (...tuples: string[]) => ok(tg, ROOT, 'POST', '/tuples', { tenant: TENANT, updates: tuples.map((tuple) => ({ op: 'touch', tuple })), reason: 'test' });

test('check, explain and lookup deny through an exclusion over a userset arrow (event:e invited user:v)', async (t) => {
  await write('event:e#invitee@user:v', 'event:e#invitee@user:w', 'event:e#blocklist@list:banned#member', 'list:banned#member@user:v');
  const ask = (subject: string, explain = false) => ok(tg, ROOT, 'POST', '/check', { tenant: TENANT, resource: 'event:e', permission: 'invited', subject, explain });
  t.is((await ask('user:v')).result, 'denied');
  t.is((await ask('user:v', true)).result, 'denied');
  t.is((await ask('user:w')).result, 'allowed');
  const lookup = (subject: string) => ok(tg, ROOT, 'POST', '/lookup', { tenant: TENANT, resourceType: 'event', permission: 'invited', subject });
  t.deepEqual((await lookup('user:v')).ids, []);
  t.deepEqual((await lookup('user:w')).ids, ['e']);
});

test('an object readable through its parent but blocked through a group userset is neither read nor listed', async (t) => {
  const app = await credential(tg, [{ families: ['object:read', 'object:list'], bucket: BUCKET }]);
  const subject = `app:${app.accessKeyId}`;
  await write(`folder:${BUCKET}/pub/#reader@${subject}`, `object:${BUCKET}/pub/x#blocked@group:banned#member`, `group:banned#member@${subject}`);
  const s3 = tg.client(app);
  try {
    await t.throwsAsync(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'pub/x' })), { name: 'AccessDenied' });
    t.like((await denials(tg)).filter((d) => d.accessKeyId === app.accessKeyId).at(-1), { layer: 'relationship', key: 'pub/x' });
    for (const Delimiter of [undefined, '/']) {
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'pub/', Delimiter }));
      t.deepEqual(listed.Contents ?? [], [], `delimiter ${Delimiter}`);
    }
    const top = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    t.false((top.Contents ?? []).some((o) => o.Key === 'pub/x'));
    // Out of the group, the folder's read reaches the object again: the exclusion was what refused it.
    await ok(tg, ROOT, 'POST', '/tuples', { tenant: TENANT, updates: [{ op: 'delete', tuple: `group:banned#member@${subject}` }], reason: 'test' });
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'pub/x' }));
    t.is(await got.Body!.transformToString(), 'body of pub/x');
  } finally {
    s3.destroy();
  }
});

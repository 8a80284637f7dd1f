/**
 * A credential made by a narrowed admin keeps no relationship authority its maker lost: in a governed bucket every
 * relationship decision for a credential, its sessions and the capabilities it mints holds for each maker up its
 * chain that is not root, the operator or tenant-wide (README "Temporary credentials and capabilities"). Makers with
 * tenant-wide authority bound nothing more, so their credentials answer for their own relationships alone.
 * The relationship API's check and lookup about a credential or capability answer as S3 decides for it.
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import test from 'ava';
import { FAMILIES, type ScopeGrant } from '../policy/index.ts';
import { admin, denials, ok, type Creds } from './helpers/admin.ts';
import { allowed, assumeRole, assumeWeb, BUCKET, credential, seed, startIssuer, TENANT, withGovernedGateway, type Caller } from './helpers/authority.ts';
import { ROOT, type TestGateway } from './helpers/gateway.ts';

const FOLDER = `folder:${BUCKET}/pub/`;
const READ_PUB: ScopeGrant[] = [{ families: ['object:read', 'object:list'], bucket: BUCKET, prefix: 'pub/' }];
const TENANT_WIDE: ScopeGrant[] = [{ families: [...FAMILIES], bucket: '*' }];

const tuple = (tg: TestGateway, by: Creds, op: 'touch' | 'delete', t: string): Promise<{ status: number; json: any }> =>
  admin(tg, by, 'POST', '/tuples', { ...(by === ROOT ? { tenant: TENANT } : {}), reason: 'test', updates: [{ op, tuple: t }] });

const reads = (tg: TestGateway, caller: Caller): Promise<boolean> => allowed(tg, caller, { bucket: BUCKET, key: 'pub/x', action: 'read' });

async function listed(tg: TestGateway, creds: Creds): Promise<string[]> {
  const s3 = tg.client(creds);
  try {
    return ((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'pub/' }))).Contents ?? []).map((o) => o.Key!);
  } finally {
    s3.destroy();
  }
}

/** A prefix-scoped admin over pub/ that owns folder pub/ by a tuple root wrote. */
async function narrowAdmin(tg: TestGateway): Promise<Creds & { id: string }> {
  const gadm = await credential(tg, [{ families: ['admin', 'object:read', 'object:list', 'object:write', 'object:delete', 'tuples:write', 'tuples:read'], bucket: BUCKET, prefix: 'pub/' }]);
  t200(await tuple(tg, ROOT, 'touch', `${FOLDER}#owner@app:${gadm.id}`));
  return gadm;
}

function t200(r: { status: number; json: any }): void {
  if (r.status !== 200) throw new Error(`expected 200, got ${r.status}: ${JSON.stringify(r.json)}`);
}

test('deleting a narrowed admin\'s tuple ends what its credentials, their sessions and their capabilities reached through it', async (t) => {
  await withGovernedGateway(async (tg) => {
    const gadm = await narrowAdmin(tg);
    // C2's reader tuple written by its maker, C3's by root: either way C2 and C3 act within gadm's authority.
    const c2 = await credential(tg, [{ families: ['admin', 'object:read', 'object:list'], bucket: BUCKET, prefix: 'pub/' }], gadm);
    const c3 = await credential(tg, READ_PUB, gadm);
    t200(await tuple(tg, gadm, 'touch', `${FOLDER}#reader@app:${c2.id}`));
    t200(await tuple(tg, ROOT, 'touch', `${FOLDER}#reader@app:${c3.id}`));
    const role = await ok(tg, gadm, 'POST', '/roles', { name: 'pubread', scopes: READ_PUB });
    const session = await assumeRole(tg, c2, role.arn);
    const capability = (await ok(tg, c2, 'POST', '/capabilities', { bucket: BUCKET, prefix: 'pub/', actions: ['read', 'list'] })).capability as string;
    const callers: Record<string, Caller> = { c2: { creds: c2 }, c3: { creds: c3 }, session: { creds: session }, capability: { capability } };
    for (const [name, caller] of Object.entries(callers)) t.true(await reads(tg, caller), `${name} reads before`);
    t.deepEqual(await listed(tg, c2), ['pub/x']);

    t200(await tuple(tg, ROOT, 'delete', `${FOLDER}#owner@app:${gadm.id}`));
    t.false(await reads(tg, { creds: gadm }));
    for (const [name, caller] of Object.entries(callers)) t.false(await reads(tg, caller), `${name} reads after its maker lost the tuple`);
    const line = (await denials(tg)).find((d) => d.accessKeyId === c3.accessKeyId && d.layer === 'relationship');
    t.regex(line?.reason ?? '', new RegExp(`app:${gadm.id} \\(a maker of ${c3.id}\\)`));
    // Listings keep only what every maker may read too, the filtered page and the settling folder check alike.
    t.deepEqual(await listed(tg, c2), []);
    t.deepEqual(await listed(tg, session), []);

    // The bound is the intersection, now: the maker reading again lets them read again.
    t200(await tuple(tg, ROOT, 'touch', `${FOLDER}#reader@app:${gadm.id}`));
    for (const [name, caller] of Object.entries(callers)) t.true(await reads(tg, caller), `${name} reads once its maker does again`);
  });
});

test('a credential of a narrowed admin cannot write a tuple handing out what its maker no longer holds', async (t) => {
  await withGovernedGateway(async (tg) => {
    const g2 = await narrowAdmin(tg);
    const c4 = await credential(tg, [{ families: ['tuples:write', 'object:read'], bucket: BUCKET, prefix: 'pub/', namespaces: ['folder'], relations: ['reader'] }], g2);
    t200(await tuple(tg, g2, 'touch', `${FOLDER}#reader@app:${c4.id}`));
    t200(await tuple(tg, c4, 'touch', `${FOLDER}#reader@user:bob`));

    t200(await tuple(tg, ROOT, 'delete', `${FOLDER}#owner@app:${g2.id}`));
    const byMaker = await tuple(tg, g2, 'touch', `${FOLDER}#reader@user:mallory`);
    t.is(byMaker.status, 403);
    const byChild = await tuple(tg, c4, 'touch', `${FOLDER}#reader@user:mallory`);
    t.is(byChild.status, 403);
    t.regex(byChild.json.error.message, new RegExp(`app:${g2.id} \\(which bounds the writer\\)`));
    t.true((await denials(tg)).some((d) => d.accessKeyId === c4.accessKeyId && d.action === 'Admin:WriteTuples' && d.layer === 'relationship'));
    const mallory = await ok(tg, ROOT, 'GET', `/tuples?tenant=${TENANT}&resourceType=folder&subjectType=user&subjectId=mallory`);
    t.deepEqual(mallory.tuples, []);
  });
});

test('a credential a tenant-wide admin makes answers for its own relationships only, not for the admin\'s tuples', async (t) => {
  await withGovernedGateway(async (tg) => {
    // The tenant-wide admin holds no tuple at all; it could write itself any, so it bounds nothing more.
    const wide = await credential(tg, TENANT_WIDE);
    const child = await credential(tg, [{ families: ['admin', 'object:read', 'object:list', 'tuples:write'], bucket: BUCKET, prefix: 'pub/' }], wide);
    t.false(await reads(tg, { creds: wide }));
    t200(await tuple(tg, wide, 'touch', `${FOLDER}#owner@app:${child.id}`));
    t.true(await reads(tg, { creds: child }));
    t.deepEqual(await listed(tg, child), ['pub/x']);
    const grandchild = await credential(tg, READ_PUB, child);
    t200(await tuple(tg, child, 'touch', `${FOLDER}#reader@app:${grandchild.id}`));
    t.true(await reads(tg, { creds: grandchild }));
    // The narrowed child does bound its own credential: its tuple gone, the grandchild reads no more.
    t200(await tuple(tg, ROOT, 'delete', `${FOLDER}#owner@app:${child.id}`));
    t.false(await reads(tg, { creds: grandchild }));
    const line = (await denials(tg)).find((d) => d.accessKeyId === grandchild.accessKeyId && d.layer === 'relationship');
    t.regex(line?.reason ?? '', new RegExp(`app:${child.id} \\(a maker of ${grandchild.id}\\)`));
    t.notRegex(line?.reason ?? '', new RegExp(wide.id));
  });
});

test('an issuer registered by a credential of a narrowed admin is bounded by that admin too', async (t) => {
  const idp = await startIssuer();
  try {
    await withGovernedGateway(async (tg) => {
      const gadm = await narrowAdmin(tg);
      const child = await credential(tg, [{ families: ['admin', 'object:read', 'object:list'], bucket: BUCKET, prefix: 'pub/' }], gadm);
      t200(await tuple(tg, ROOT, 'touch', `${FOLDER}#reader@app:${child.id}`));
      t200(await tuple(tg, ROOT, 'touch', `${FOLDER}#reader@user:alice`));
      await ok(tg, child, 'POST', '/roles', { name: 'pub', scopes: READ_PUB });
      await ok(tg, child, 'POST', '/oidc-providers', { issuer: idp.issuer, audience: 'my-app', jwks: idp.jwksUrl, algorithms: ['RS256'], roles: ['pub'] });
      const alice = await assumeWeb(tg, `arn:aws:iam::${TENANT}:role/pub`, await idp.token({ sub: 'alice' }));
      t.true(await reads(tg, { creds: alice }));
      t200(await tuple(tg, ROOT, 'delete', `${FOLDER}#owner@app:${gadm.id}`));
      t.false(await reads(tg, { creds: alice }));
      const line = (await denials(tg)).find((d) => d.accessKeyId === alice.accessKeyId && d.layer === 'relationship');
      t.regex(line?.reason ?? '', new RegExp(`app:${gadm.id} \\(a maker of ${child.id}\\)`));
    }, { ANVIL_OIDC_ALLOW_INSECURE_JWKS: 'true' });
  } finally {
    await idp.close();
  }
});

/** POST /check about `subject` (root names the tenant): the answer's result and reason. */
const checked = async (tg: TestGateway, by: Creds, subject: string, explain = false): Promise<any> =>
  ok(tg, by, 'POST', '/check', { ...(by === ROOT ? { tenant: TENANT } : {}), resource: `object:${BUCKET}/pub/x`, permission: 'read', subject, explain });

/** POST /lookup of the objects `subject` may read (root names the tenant): their ids. */
const looked = async (tg: TestGateway, by: Creds, subject: string): Promise<string[]> =>
  (await ok(tg, by, 'POST', '/lookup', { ...(by === ROOT ? { tenant: TENANT } : {}), resourceType: 'object', permission: 'read', subject, idPrefix: `${BUCKET}/pub/` })).ids;

test('check and lookup about a credential answer as S3 decides for it: its narrowed maker bounds them too', async (t) => {
  await withGovernedGateway(async (tg) => {
    const gadm = await narrowAdmin(tg);
    const c2 = await credential(tg, [{ families: ['admin', 'object:read', 'object:list'], bucket: BUCKET, prefix: 'pub/' }], gadm);
    t200(await tuple(tg, ROOT, 'touch', `object:${BUCKET}/pub/x#reader@app:${c2.id}`));
    const me = `app:${c2.id}`;
    for (const by of [ROOT, c2]) {
      t.is((await checked(tg, by, me)).result, 'allowed');
      t.deepEqual(await looked(tg, by, me), [`${BUCKET}/pub/x`]);
    }
    t.true(await reads(tg, { creds: c2 }));

    t200(await tuple(tg, ROOT, 'delete', `${FOLDER}#owner@app:${gadm.id}`));
    // S3 refuses C2 the read and lists nothing; the relationship API tells it (and root) the same, not the tuple alone.
    t.false(await reads(tg, { creds: c2 }));
    t.deepEqual(await listed(tg, c2), []);
    for (const by of [ROOT, c2]) {
      t.is((await checked(tg, by, me)).result, 'denied');
      t.deepEqual(await looked(tg, by, me), []);
    }
    // Root is told which actor denied; C2, which cannot see its maker, only that a maker of its own did.
    const rootView = await checked(tg, ROOT, me, true);
    t.regex(rootView.reason, new RegExp(`for app:${gadm.id} \\(a maker of ${c2.id}\\)`));
    t.deepEqual(rootView.actors.map((a: any) => [a.actor, a.result]), [[me, 'allowed'], [`app:${gadm.id} (a maker of ${c2.id})`, 'denied']]);
    const ownView = await checked(tg, c2, me, true);
    t.is(ownView.result, 'denied');
    t.notRegex(JSON.stringify(ownView), new RegExp(gadm.id));

    // The maker reading again lets both answers include it again.
    t200(await tuple(tg, ROOT, 'touch', `${FOLDER}#reader@app:${gadm.id}`));
    t.true(await reads(tg, { creds: c2 }));
    t.is((await checked(tg, c2, me)).result, 'allowed');
    t.deepEqual(await looked(tg, c2, me), [`${BUCKET}/pub/x`]);
    // Allowed, the maker's granting path names its tuple: root is shown it, C2 is not.
    t.regex(JSON.stringify(await checked(tg, ROOT, me, true)), new RegExp(`reader@app:${gadm.id}`));
    const allowedView = await checked(tg, c2, me, true);
    t.is(allowedView.result, 'allowed');
    t.notRegex(JSON.stringify(allowedView), new RegExp(gadm.id));
  });
});

test('check and lookup about a deleted credential or a capability answer as S3 would decide for them', async (t) => {
  await withGovernedGateway(async (tg) => {
    const gadm = await narrowAdmin(tg);
    const c2 = await credential(tg, [{ families: ['object:read', 'object:list'], bucket: BUCKET, prefix: 'pub/' }], gadm);
    // Lookups list resources that have tuples: an object tuple (C2's) makes pub/x one.
    t200(await tuple(tg, ROOT, 'touch', `object:${BUCKET}/pub/x#reader@app:${c2.id}`));
    const capability = (await ok(tg, gadm, 'POST', '/capabilities', { bucket: BUCKET, prefix: 'pub/', actions: ['read'] }));
    const cap = `capability:${capability.id.replaceAll(':', '%3A')}`;
    t.true(await reads(tg, { capability: capability.capability }));
    t.is((await checked(tg, ROOT, cap)).result, 'allowed');
    t.deepEqual(await looked(tg, ROOT, cap), [`${BUCKET}/pub/x`]);
    t.is((await checked(tg, ROOT, `app:${c2.id}`)).result, 'allowed');

    await ok(tg, gadm, 'DELETE', `/credentials/${c2.id}`);
    t200(await tuple(tg, ROOT, 'touch', `object:${BUCKET}/pub/x#reader@app:${c2.id}`));
    // Its tuples may outlive it (written again by root here), yet a credential that is gone holds nothing.
    t.is((await checked(tg, ROOT, `app:${c2.id}`)).result, 'denied');
    t.deepEqual(await looked(tg, ROOT, `app:${c2.id}`), []);

    // Another tenant's live credential answers exactly as a key that never existed: no probe of other tenants.
    await seed(tg, 'globex', 'gdata');
    const foreign = await credential(tg, [{ families: ['object:read'], bucket: 'gdata' }], ROOT, 'globex');
    const nobody = 'AKIANOSUCHKEY0000000';
    for (const id of [foreign.id, nobody]) t200(await tuple(tg, ROOT, 'touch', `object:${BUCKET}/pub/x#reader@app:${id}`));
    const [theirs, none] = [await checked(tg, ROOT, `app:${foreign.id}`), await checked(tg, ROOT, `app:${nobody}`)];
    t.is(theirs.result, 'denied');
    t.is(theirs.reason.replace(foreign.id, 'K'), none.reason.replace(nobody, 'K'));

    await ok(tg, ROOT, 'POST', `/capabilities/${encodeURIComponent(capability.id)}/revoke`, {});
    t.false(await reads(tg, { capability: capability.capability }));
    t.is((await checked(tg, ROOT, cap)).result, 'denied');
    t.deepEqual(await looked(tg, ROOT, cap), []);
  });
});

import test from 'ava';
import {
  authorize,
  authorizeCredentialAdmin,
  authorizeTenantAdmin,
  grantWithin,
  invalidGrantReason,
  keyVisible,
  listingPlan,
  prefixVisible,
  visibleBuckets,
  type AccessRequest,
  type DenialLayer,
  type Principal,
} from '../../policy/index.ts';
import { app, ROOT } from './helpers.ts';

const backup = app('acme', [{ families: ['object:read', 'object:write', 'object:list'], bucket: 'backups', prefix: 'host1/' }]);
const reader = app('acme', [{ families: ['object:read', 'object:list'], bucket: '*' }]);
const other = app('globex', [{ families: ['object:read', 'object:write', 'object:list', 'bucket:admin', 'bucket:read'], bucket: '*' }]);

/** Authorization cases as data: who asks, what, and the expected answer (true, or the denying layer). */
const CASES: { name: string; who: Principal; req: AccessRequest; expect: true | DenialLayer }[] = [
  { name: 'prefix grant allows inside', who: backup, req: { family: 'object:read', bucket: 'backups', key: 'host1/a.tar', bucketOwner: 'acme' }, expect: true },
  { name: 'prefix grant denies outside', who: backup, req: { family: 'object:read', bucket: 'backups', key: 'host2/a.tar', bucketOwner: 'acme' }, expect: 'scope' },
  { name: 'prefix grant denies the prefix without slash', who: backup, req: { family: 'object:write', bucket: 'backups', key: 'host1', bucketOwner: 'acme' }, expect: 'scope' },
  { name: 'missing family is scope', who: backup, req: { family: 'object:delete', bucket: 'backups', key: 'host1/a', bucketOwner: 'acme' }, expect: 'scope' },
  { name: 'other bucket of own tenant is scope', who: backup, req: { family: 'object:read', bucket: 'photos', key: 'host1/a', bucketOwner: 'acme' }, expect: 'scope' },
  { name: 'bucket:read implied by any grant in the bucket', who: backup, req: { family: 'bucket:read', bucket: 'backups', bucketOwner: 'acme' }, expect: true },
  { name: 'bucket:read needs a grant in that bucket', who: backup, req: { family: 'bucket:read', bucket: 'photos', bucketOwner: 'acme' }, expect: 'scope' },
  { name: 'object:list at bucket level with a prefix grant', who: backup, req: { family: 'object:list', bucket: 'backups', bucketOwner: 'acme' }, expect: true },
  { name: 'wildcard bucket grant covers own buckets', who: reader, req: { family: 'object:read', bucket: 'photos', key: 'x', bucketOwner: 'acme' }, expect: true },
  { name: 'wildcard grant never reaches another tenant', who: reader, req: { family: 'object:read', bucket: 'gx', key: 'x', bucketOwner: 'globex' }, expect: 'tenant' },
  { name: 'other tenant listing', who: other, req: { family: 'object:list', bucket: 'backups', bucketOwner: 'acme' }, expect: 'tenant' },
  { name: 'other tenant HeadBucket', who: other, req: { family: 'bucket:read', bucket: 'backups', bucketOwner: 'acme' }, expect: 'tenant' },
  { name: 'other tenant write', who: other, req: { family: 'object:write', bucket: 'backups', key: 'host1/x', bucketOwner: 'acme' }, expect: 'tenant' },
  { name: 'other tenant CreateBucket on a taken name', who: other, req: { family: 'bucket:admin', bucket: 'backups', bucketOwner: 'acme' }, expect: 'tenant' },
  { name: 'CreateBucket on a free name with bucket:admin', who: other, req: { family: 'bucket:admin', bucket: 'fresh', creating: true }, expect: true },
  { name: 'CreateBucket without bucket:admin', who: reader, req: { family: 'bucket:admin', bucket: 'fresh', creating: true }, expect: 'scope' },
  { name: 'DeleteBucket of a missing bucket answers as another tenant\'s', who: other, req: { family: 'bucket:admin', bucket: 'fresh' }, expect: 'tenant' },
  { name: 'unowned bucket for a non-admin family', who: reader, req: { family: 'object:read', bucket: 'orphan', key: 'x' }, expect: 'tenant' },
  { name: 'root reads any tenant', who: ROOT, req: { family: 'object:read', bucket: 'backups', key: 'host2/x', bucketOwner: 'acme' }, expect: true },
  { name: 'root cannot read the reserved prefix', who: ROOT, req: { family: 'object:read', bucket: 'b', key: '_anvil/meta', bucketOwner: 'root' }, expect: 'reserved_namespace' },
  { name: 'reserved bare name', who: reader, req: { family: 'object:read', bucket: 'photos', key: '_anvil', bucketOwner: 'acme' }, expect: 'reserved_namespace' },
  { name: 'look-alike key is ordinary', who: reader, req: { family: 'object:read', bucket: 'photos', key: '_anvilx', bucketOwner: 'acme' }, expect: true },
  { name: 'ListBuckets with any grant', who: backup, req: { family: 'bucket:read' }, expect: true },
];

for (const c of CASES) {
  test(`authorize: ${c.name}`, (t) => {
    const decision = authorize(c.who, c.req);
    if (c.expect === true) t.deepEqual(decision, { allowed: true });
    else {
      t.false(decision.allowed);
      if (!decision.allowed) t.is(decision.layer, c.expect);
    }
  });
}

test('scope denials name the family and key', (t) => {
  const decision = authorize(backup, { family: 'object:delete', bucket: 'backups', key: 'host1/a', bucketOwner: 'acme' });
  t.like(decision, { allowed: false, layer: 'scope' });
  if (!decision.allowed) t.regex(decision.reason, /object:delete.*backups.*host1\/a/);
});

test('listing plans: all, filtered, none', (t) => {
  t.deepEqual(listingPlan(backup, 'backups', 'host1/'), { kind: 'all' });
  t.deepEqual(listingPlan(backup, 'backups', 'host1/sub/'), { kind: 'all' });
  t.deepEqual(listingPlan(backup, 'backups', ''), { kind: 'filtered', grantPrefixes: ['host1/'] });
  t.deepEqual(listingPlan(backup, 'backups', 'host'), { kind: 'filtered', grantPrefixes: ['host1/'] });
  t.like(listingPlan(backup, 'backups', 'host2/'), { kind: 'none', layer: 'scope' });
  t.like(listingPlan(backup, 'photos', ''), { kind: 'none', layer: 'scope' });
  t.deepEqual(listingPlan(reader, 'photos', 'any/'), { kind: 'all' });
  t.deepEqual(listingPlan(ROOT, 'x', ''), { kind: 'all' });
  t.like(listingPlan(ROOT, 'x', '_anvil/'), { kind: 'none', layer: 'reserved_namespace' });
  t.deepEqual(listingPlan(ROOT, 'x', '_anvil'), { kind: 'all' });
});

test('listing plans merge several grant prefixes', (t) => {
  const two = app('acme', [
    { families: ['object:list'], bucket: 'backups', prefix: 'backups/host1/' },
    { families: ['object:list'], bucket: '*', prefix: 'backups/host2/' },
    { families: ['object:read'], bucket: 'backups', prefix: 'backups/host3/' },
  ]);
  t.deepEqual(listingPlan(two, 'backups', 'backups/'), { kind: 'filtered', grantPrefixes: ['backups/host1/', 'backups/host2/'] });
});

test('filtered listings show keys under grants and prefixes leading to them', (t) => {
  const grant = app('acme', [{ families: ['object:list'], bucket: 'b', prefix: 'backups/host1/' }]);
  const plan = listingPlan(grant, 'b', '');
  t.true(prefixVisible(plan, 'backups/'));
  t.true(prefixVisible(plan, 'backups/host1/'));
  t.true(prefixVisible(plan, 'backups/host1/daily/'));
  t.false(prefixVisible(plan, 'backups/host2/'));
  t.false(prefixVisible(plan, 'photos/'));
  t.true(keyVisible(plan, 'backups/host1/a.tar'));
  t.false(keyVisible(plan, 'backups/host2/a.tar'));
  t.false(keyVisible(plan, 'backups/readme'));
});

test('listing filters always hide the reserved namespace', (t) => {
  const all = listingPlan(ROOT, 'b', '');
  t.false(keyVisible(all, '_anvil'));
  t.false(keyVisible(all, '_anvil/x'));
  t.true(keyVisible(all, '_anvilx'));
  t.false(prefixVisible(all, '_anvil/'));
  t.true(prefixVisible(all, '_anvilx/'));
  const none = listingPlan(backup, 'photos', '');
  t.false(keyVisible(none, 'x'));
  t.false(prefixVisible(none, 'x/'));
});

test('visibleBuckets shows only own tenant buckets with a grant; root sees all', (t) => {
  const owners = new Map([['backups', 'acme'], ['photos', 'acme'], ['gx', 'globex']]);
  const all = ['backups', 'photos', 'gx', 'orphan'];
  const ownerOf = (bucket: string) => owners.get(bucket);
  t.deepEqual(visibleBuckets(backup, all, ownerOf), ['backups']);
  t.deepEqual(visibleBuckets(reader, all, ownerOf), ['backups', 'photos']);
  t.deepEqual(visibleBuckets(other, all, ownerOf), ['gx']);
  t.deepEqual(visibleBuckets(ROOT, all, ownerOf), all);
});

test('grantWithin: subsets pass', (t) => {
  const holder = app('acme', [
    { families: ['object:read', 'object:list', 'admin'], bucket: 'backups', prefix: 'host1/' },
    { families: ['object:write'], bucket: '*' },
  ]);
  t.true(grantWithin(holder, [{ families: ['object:read'], bucket: 'backups', prefix: 'host1/daily/' }]).allowed);
  t.true(grantWithin(holder, [{ families: ['object:write'], bucket: 'anything', prefix: 'x/' }]).allowed);
  t.true(grantWithin(holder, [{ families: ['object:read', 'object:write'], bucket: 'backups', prefix: 'host1/' }]).allowed);
  t.true(grantWithin(holder, []).allowed);
  t.true(grantWithin(ROOT, [{ families: ['admin'], bucket: '*' }]).allowed);
});

const ESCALATIONS: { name: string; grant: Parameters<typeof grantWithin>[1][number] }[] = [
  { name: 'broader prefix', grant: { families: ['object:read'], bucket: 'backups', prefix: 'host' } },
  { name: 'no prefix', grant: { families: ['object:read'], bucket: 'backups' } },
  { name: 'sibling prefix', grant: { families: ['object:read'], bucket: 'backups', prefix: 'host2/' } },
  { name: 'wildcard bucket', grant: { families: ['object:read'], bucket: '*', prefix: 'host1/' } },
  { name: 'other bucket', grant: { families: ['object:read'], bucket: 'photos', prefix: 'host1/' } },
  { name: 'extra family', grant: { families: ['object:read', 'object:delete'], bucket: 'backups', prefix: 'host1/' } },
  { name: 'bucket:admin', grant: { families: ['bucket:admin'], bucket: 'backups' } },
];

for (const e of ESCALATIONS) {
  test(`grantWithin refuses escalation: ${e.name}`, (t) => {
    const holder = app('acme', [{ families: ['object:read', 'object:list', 'admin'], bucket: 'backups', prefix: 'host1/' }]);
    t.like(grantWithin(holder, [{ families: ['object:list'], bucket: 'backups', prefix: 'host1/' }, e.grant]), { allowed: false, layer: 'scope' });
  });
}

test('credential administration needs admin, the own tenant, and held scopes', (t) => {
  const admin = app('acme', [{ families: ['admin', 'object:read'], bucket: 'backups' }]);
  t.true(authorizeCredentialAdmin(admin, { tenant: 'acme', scopes: [{ families: ['object:read'], bucket: 'backups', prefix: 'a/' }] }).allowed);
  t.like(authorizeCredentialAdmin(admin, { tenant: 'globex', scopes: [] }), { allowed: false, layer: 'tenant' });
  t.like(authorizeCredentialAdmin(admin, { tenant: 'acme', scopes: [{ families: ['object:write'], bucket: 'backups' }] }), { allowed: false, layer: 'scope' });
  t.like(authorizeCredentialAdmin(admin, { tenant: 'root', isRoot: true }), { allowed: false });
  t.like(authorizeCredentialAdmin(reader, { tenant: 'acme', scopes: [] }), { allowed: false, layer: 'scope' });
  t.true(authorizeCredentialAdmin(ROOT, { tenant: 'globex', scopes: [{ families: ['admin'], bucket: '*' }] }).allowed);
  t.true(authorizeTenantAdmin(ROOT).allowed);
  t.false(authorizeTenantAdmin(admin).allowed);
});

test('malformed grants are named', (t) => {
  t.is(invalidGrantReason([{ families: ['object:read'], bucket: 'bkt' }]), undefined);
  t.is(invalidGrantReason([{ families: ['object:read'], bucket: '*' }]), undefined);
  t.is(invalidGrantReason([{ families: ['object:read'], bucket: 'Legacy_Name.1' }]), undefined);
  t.regex(invalidGrantReason([{ families: ['object:nope'], bucket: 'bkt' }]) ?? '', /unknown family/);
  t.regex(invalidGrantReason([{ families: [], bucket: 'bkt' }]) ?? '', /family/);
  t.regex(invalidGrantReason([{ families: ['object:read'], bucket: '' }]) ?? '', /bucket/);
  t.regex(invalidGrantReason([{ families: ['object:read'], bucket: 'bkt', prefix: '_anvil/x' }]) ?? '', /reserved/);
  // A bucket no S3 bucket could be named would silently grant nothing: refused instead.
  for (const bucket of ['b', 'dat*', 'data/a', '..', '* ', '-bkt', 'a'.repeat(256), 'bkt\u0000']) {
    t.regex(invalidGrantReason([{ families: ['object:read'], bucket }]) ?? '', /is not a bucket name/, JSON.stringify(bucket));
  }
  t.truthy(invalidGrantReason('nope'));
});

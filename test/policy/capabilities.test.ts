/**
 * The capability library on its own: every byte of the encoding matters, caveats cannot be dropped, reordered,
 * duplicated or spliced, offline narrowing never broadens, unwrap matches the Anvil model's table, expiry holds.
 */
import test from 'ava';
import {
  ANY,
  CapabilityError,
  capabilityGrant,
  createCapabilityService,
  inspectCapability,
  narrowCapability,
  objectScope,
} from '../../policy/capabilities/index.ts';
import { authorize } from '../../policy/scopes.ts';

const ROOT_KEY = 'a-root-key-of-at-least-sixteen-bytes';
const service = createCapabilityService({ rootKey: ROOT_KEY });

type Parts = [number, string, string, unknown[], string];
const parts = (cap: string): Parts => JSON.parse(Buffer.from(cap, 'base64url').toString('utf8')) as Parts;
const assemble = (p: Parts): string => Buffer.from(JSON.stringify(p), 'utf8').toString('base64url');
const refused = (cap: string) => {
  try {
    service.verify(cap);
    return false;
  } catch (error) {
    return error instanceof CapabilityError;
  }
};

test('a minted capability verifies and says what it was minted with', (t) => {
  const expiresAt = new Date(Date.now() + 3600_000);
  const cap = service.mint(['s3', 'photos', '2026/'], { actions: ['read', 'list'], expiresAt });
  t.regex(cap, /^[A-Za-z0-9_-]+$/);
  const c = service.verify(cap);
  t.deepEqual(c.scope, ['s3', 'photos', '2026/']);
  t.deepEqual(c.actions, ['read', 'list']);
  t.is(c.expiresAt!.getTime(), Math.floor(expiresAt.getTime() / 1000) * 1000);
  t.false(refused(cap));
});

test('changing any character of the encoding, at every position, is refused', (t) => {
  const cap = narrowCapability(service.mint(['s3', 'photos'], { actions: ['read'] }), { append: ['2026/'], expiresAt: Date.now() + 60_000 });
  t.false(refused(cap));
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  let tried = 0;
  for (let i = 0; i < cap.length; i++) {
    // Two substitutes per position: the next character, and one differing only in the last bits base64 spares.
    const at = alphabet.indexOf(cap[i]!);
    for (const sub of [alphabet[(at + 1) % 64]!, alphabet[at ^ 1]!, '=']) {
      const bad = cap.slice(0, i) + sub + cap.slice(i + 1);
      if (bad === cap) continue;
      tried++;
      if (!refused(bad)) t.fail(`position ${i} changed to ${sub} still verifies`);
    }
  }
  t.true(refused(cap.slice(0, -1)));
  t.true(refused(cap + 'A'));
  t.true(refused(`${cap}=`));
  t.true(tried > cap.length * 2);
});

test('dropping, reordering, duplicating or splicing caveats is refused', (t) => {
  const base = service.mint(['s3', 'photos'], { actions: ['read', 'write'] });
  const narrowed = narrowCapability(narrowCapability(base, { append: ['2026/'] }), { actions: ['read'] });
  t.false(refused(narrowed));
  const p = parts(narrowed);
  t.is(p[3].length, 4);

  const drop = (i: number): Parts => [p[0], p[1], p[2], p[3].filter((_, j) => j !== i), p[4]];
  for (let i = 0; i < p[3].length; i++) t.true(refused(assemble(drop(i))), `drop caveat ${i}`);
  t.true(refused(assemble([p[0], p[1], p[2], [p[3][1], p[3][0], p[3][2], p[3][3]], p[4]])), 'reorder');
  t.true(refused(assemble([p[0], p[1], p[2], [p[3][0], p[3][2], p[3][1], p[3][3]], p[4]])), 'reorder the middle');
  t.true(refused(assemble([p[0], p[1], p[2], [...p[3], p[3][3]], p[4]])), 'duplicate last');
  t.true(refused(assemble([p[0], p[1], p[2], [p[3][0], ...p[3]], p[4]])), 'duplicate first');
  // The untouched parts re-assembled are fine, so the checks above are about the change alone.
  t.false(refused(assemble(p)));

  // Splicing: another capability's caveats or signature under this id, or this chain under another id.
  const other = parts(narrowCapability(service.mint(['s3', 'videos'], { actions: ['read', 'write', 'delete'] }), { append: ['x/'] }));
  t.true(refused(assemble([p[0], p[1], p[2], other[3], other[4]])), 'other chain, own id');
  t.true(refused(assemble([p[0], p[1], other[2], p[3], p[4]])), 'own chain, other id');
  t.true(refused(assemble([p[0], p[1], p[2], [...p[3], ...other[3]], other[4]])), 'appended foreign caveats');
  t.true(refused(assemble([p[0], p[1], p[2], p[3], other[4]])), 'foreign signature');
  // A caveat rewritten to mean something broader, with the old signature.
  t.true(refused(assemble([p[0], p[1], p[2], [p[3][0], p[3][1], { append: [''] }, p[3][3]], p[4]])));
  t.true(refused(assemble([p[0], p[1], p[2], [p[3][0], p[3][1], p[3][2], { actions: ['read', 'write'] }], p[4]])));
  // Unknown caveats fail closed even when correctly chained by a key holder.
  t.throws(() => inspectCapability(assemble([p[0], p[1], p[2], [...p[3], { maybe: true }], p[4]])), { instanceOf: CapabilityError });
  // A different root key, or none under that key id.
  t.throws(() => createCapabilityService({ rootKey: 'another-root-key-sixteen-plus' }).verify(narrowed), { instanceOf: CapabilityError });
  t.throws(() => createCapabilityService({ rootKeys: { other: ROOT_KEY } }).verify(narrowed), { instanceOf: CapabilityError });
});

test('offline narrowing never broadens: scope only lengthens, actions only shrink, expiry only comes closer', (t) => {
  const soon = Date.now() + 60_000;
  const base = service.mint(['s3', 'photos'], { actions: ['read', 'list'], expiresAt: soon });
  const wider = narrowCapability(base, { actions: ['read', 'list', 'write', 'delete'], expiresAt: Date.now() + 86_400_000 });
  const c = service.verify(wider);
  t.deepEqual(c.actions, ['read', 'list']);
  t.is(c.expiresAt!.getTime(), Math.floor(soon / 1000) * 1000);
  const fewer = narrowCapability(wider, { actions: ['read'] });
  t.deepEqual(service.verify(fewer).actions, ['read']);
  t.deepEqual(service.verify(narrowCapability(fewer, { actions: ['write'] })).actions, []);
  const deeper = service.verify(narrowCapability(base, { append: ['2026/', 'march/'] }));
  t.deepEqual(deeper.scope, ['s3', 'photos', '2026/', 'march/']);
  // As an object capability the narrower scope is a longer key prefix.
  t.deepEqual(capabilityGrant(deeper.scope, deeper.actions), { families: ['object:read', 'object:list'], bucket: 'photos', prefix: '2026/march/' });
  // Narrowing with nothing is the same capability; narrowing a forged string does not make it valid.
  t.is(narrowCapability(base, {}), base);
  const p = parts(base);
  t.true(refused(narrowCapability(assemble([p[0], p[1], p[2], [], p[4]]), { append: ['x'] })));
});

test('unwrap matches the pattern table, with ANY and null where the capability stops short', (t) => {
  const pattern = ['youtube_videos', ANY, 'update'] as const;
  const video = service.mint(['youtube_videos', 'dQw4w9WgXcQ']);
  const all = service.mint(['youtube_videos']);
  t.deepEqual(service.unwrapCapability(video, pattern), ['youtube_videos', 'dQw4w9WgXcQ', null]);
  t.deepEqual(service.unwrapCapability(all, pattern), ['youtube_videos', null, null]);
  t.throws(() => service.unwrapCapability(service.mint(['youtube_videos', 'x', 'delete']), pattern), { instanceOf: CapabilityError });
  t.deepEqual(service.unwrapCapability(service.mint(['youtube_videos', 'x', 'update']), pattern), ['youtube_videos', 'x', 'update']);
  t.throws(() => service.unwrapCapability(service.mint(['twitch_videos', 'x']), pattern), { instanceOf: CapabilityError });
  t.throws(() => service.unwrapCapability(service.mint(['youtube_videos', 'x', 'update', 'title']), pattern), { instanceOf: CapabilityError });
  // JSON values as scope elements, compared by value.
  const json = service.mint(['orders', { id: 42, region: 'eu' }]);
  t.deepEqual(service.unwrapCapability(json, ['orders', { region: 'eu', id: 42 }, ANY]), ['orders', { id: 42, region: 'eu' }, null]);
  // A narrowed capability unwraps to the narrower value.
  t.deepEqual(service.unwrapCapability(narrowCapability(all, { append: ['abc'] }), pattern), ['youtube_videos', 'abc', null]);
  t.throws(() => service.unwrapCapability('not-a-capability', pattern), { instanceOf: CapabilityError });
});

test('expiry, revocation and key rotation', (t) => {
  let now = new Date('2030-01-01T00:00:00Z');
  const revoked = new Set<string>();
  const keys: Record<string, string> = { k1: 'first-root-key-sixteen-bytes' };
  const svc = createCapabilityService({ rootKeys: (id) => keys[id], currentKeyId: 'k1', now: () => now, isRevoked: (id) => revoked.has(id) });
  const cap = svc.mint(['docs'], { expiresAt: new Date('2030-01-01T01:00:00Z') });
  t.deepEqual(svc.verify(cap).scope, ['docs']);
  const shorter = narrowCapability(cap, { expiresAt: new Date('2030-01-01T00:30:00Z') });
  now = new Date('2030-01-01T00:45:00Z');
  t.notThrows(() => svc.verify(cap));
  t.throws(() => svc.verify(shorter), { message: /expired/ });
  now = new Date('2030-01-01T01:00:00Z');
  t.throws(() => svc.verify(cap), { message: /expired/ });
  now = new Date('2030-01-01T00:10:00Z');
  revoked.add(svc.verify(cap).id);
  t.throws(() => svc.verify(cap), { message: /revoked/ });
  const again = svc.mint(['docs']);
  delete keys.k1;
  t.throws(() => svc.verify(again), { message: /root key/ });
});

test('an exact-key capability opens one key, cannot list, and nothing appended after it grants anything', (t) => {
  const grant = capabilityGrant(objectScope('b', 'A/report.txt', true), ['read', 'list']);
  t.deepEqual(grant, { families: ['object:read'], bucket: 'b', prefix: 'A/report.txt', exact: true });
  const p = { tenant: 't', accessKeyId: 'c', subject: 'capability:c', isRoot: false, scopes: [grant] };
  t.true(authorize(p, { family: 'object:read', bucket: 'b', key: 'A/report.txt', bucketOwner: 't' }).allowed);
  t.false(authorize(p, { family: 'object:read', bucket: 'b', key: 'A/report.txt.bak', bucketOwner: 't' }).allowed);
  // A holder narrowing a prefix capability with the marker gets the exact key; appending past it gets nothing.
  t.deepEqual(capabilityGrant(['s3', 'b', 'A/', 'x.txt', { exact: true }], ['read']).prefix, 'A/x.txt');
  t.deepEqual(capabilityGrant(['s3', 'b', 'A/x.txt', { exact: true }, 'more'], ['read']).families, []);
});

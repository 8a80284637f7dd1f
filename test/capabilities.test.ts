/**
 * Capabilities through the gateway: share links from `anvil share` opened with plain fetch (GET, HEAD, ranges),
 * the reserved prefix, prefix confinement, offline narrowing, root-key reset, revocation by id, and minting only
 * within the minter's own authority. Refusals are denial lines with layer capability.
 */
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { ADMIN_PREFIX } from '../gateway/admin/index.ts';
import { FAMILIES, narrowCapability } from '../policy/index.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { signedSend } from './helpers/raw.ts';
import { admin, denials, ok, type Creds } from './helpers/admin.ts';

const REPO = join(import.meta.dirname, '..');


function anvil(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/anvil.js', ...args], { cwd: REPO, env: { PATH: process.env.PATH ?? '', ...env } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }));
  });
}

const BUCKET = 'acme-share';
const OBJECTS: Record<string, string> = {
  'A/report.txt': '0123456789abcdefghij',
  'A/report.txt.bak': 'an older draft, not shared',
  'A/sub/deep.txt': 'deep inside A',
  'A/other.txt': 'another file under A',
  'B/secret.txt': 'only for B',
};

/** Tenant acme owning BUCKET with OBJECTS, and its admin. */
async function setup(tg: TestGateway): Promise<Creds> {
  await ok(tg, ROOT, 'POST', '/tenants', { name: 'acme' });
  await tg.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await ok(tg, ROOT, 'PUT', `/buckets/${BUCKET}/owner`, { tenant: 'acme', reassign: true });
  for (const [Key, Body] of Object.entries(OBJECTS)) await tg.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body }));
  const c = await ok(tg, ROOT, 'POST', '/credentials', { tenant: 'acme', name: 'admin', scopes: [{ families: [...FAMILIES], bucket: '*' }] });
  return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretKey };
}

async function withGateway(fn: (tg: TestGateway, acmeAdmin: Creds) => Promise<void>): Promise<void> {
  const tg = await startTestGateway();
  try {
    await fn(tg, await setup(tg));
  } finally {
    await tg.close();
  }
}

const link = (tg: TestGateway, key: string, cap: string) => `${tg.gw.url}/${BUCKET}/${key}?X-Anvil-Capability=${cap}`;

test('anvil share prints a plain URL that GETs, HEADs and range-reads one object with no other credentials', async (t) => {
  await withGateway(async (tg, acmeAdmin) => {
    const env = { AWS_ACCESS_KEY_ID: acmeAdmin.accessKeyId, AWS_SECRET_ACCESS_KEY: acmeAdmin.secretAccessKey };
    const run = await anvil(['--endpoint', tg.gw.url, 'share', `s3://${BUCKET}/A/report.txt`, '--expires', '1h'], env);
    t.is(run.code, 0, run.stderr);
    const url = run.stdout.trim();
    t.true(url.startsWith(`${tg.gw.url}/${BUCKET}/A/report.txt?X-Anvil-Capability=`));

    const got = await fetch(url);
    t.is(got.status, 200);
    t.is(await got.text(), OBJECTS['A/report.txt']);
    const head = await fetch(url, { method: 'HEAD' });
    t.is(head.status, 200);
    t.is(head.headers.get('content-length'), '20');
    const range = await fetch(url, { headers: { range: 'bytes=5-9' } });
    t.is(range.status, 206);
    t.is(await range.text(), '56789');
    // The same capability in the header works too; without it nothing does.
    const cap = new URL(url).searchParams.get('X-Anvil-Capability')!;
    t.is((await fetch(`${tg.gw.url}/${BUCKET}/A/report.txt`, { headers: { 'x-anvil-capability': cap } })).status, 200);
    // The gateway named by ANVIL_ENDPOINT (remote mode without flags) is the link's gateway too.
    const fromEnv = await anvil(['share', `s3://${BUCKET}/A/report.txt`], { ...env, ANVIL_ENDPOINT: tg.gw.url });
    t.is(fromEnv.code, 0, fromEnv.stderr);
    t.true(fromEnv.stdout.trim().startsWith(`${tg.gw.url}/${BUCKET}/A/report.txt?X-Anvil-Capability=`), fromEnv.stdout);
    t.is((await fetch(fromEnv.stdout.trim())).status, 200);
    t.is((await fetch(`${tg.gw.url}/${BUCKET}/A/report.txt`)).status, 403);
    // The link names one object: a key that merely starts with its name is not shared.
    t.is((await fetch(link(tg, 'A/report.txt.bak', cap))).status, 403);
    // A read link does not write, delete or list.
    t.is((await fetch(url, { method: 'PUT', body: 'overwrite' })).status, 403);
    t.is((await fetch(url, { method: 'DELETE' })).status, 403);
    t.is((await fetch(`${tg.gw.url}/${BUCKET}?list-type=2&X-Anvil-Capability=${cap}`)).status, 403);
    t.is(await (await fetch(url)).text(), OBJECTS['A/report.txt']);
    const refusals = (await denials(tg)).filter((d) => d.subject?.startsWith('capability:'));
    t.true(refusals.length >= 3);
    t.true(refusals.every((d) => d.layer === 'capability' && d.tenant === 'acme'));

    // Changing one character of the link's capability is refused.
    const bad = url.slice(0, -3) + (url.at(-3) === 'A' ? 'B' : 'A') + url.slice(-2);
    t.is((await fetch(bad)).status, 403);
    // A capability together with a signature is refused as two auth mechanisms.
    const both = await signedSend({ url: tg.gw.url, method: 'GET', path: `/${BUCKET}/A/report.txt`, headers: { 'x-anvil-capability': cap }, creds: ROOT });
    t.is(both.status, 400);
  });
});

test('a link for prefix A is refused for prefix B and for _anvil/; narrowing offline confines it further', async (t) => {
  await withGateway(async (tg, acmeAdmin) => {
    const { capability } = await ok(tg, acmeAdmin, 'POST', '/capabilities', { bucket: BUCKET, prefix: 'A/', actions: ['read', 'list'] });
    t.is((await fetch(link(tg, 'A/report.txt', capability))).status, 200);
    t.is((await fetch(link(tg, 'A/sub/deep.txt', capability))).status, 200);
    t.is((await fetch(link(tg, 'B/secret.txt', capability))).status, 403);
    const line = (await denials(tg)).find((d) => d.key === 'B/secret.txt');
    t.is(line?.layer, 'capability');
    t.regex(line?.reason ?? '', /capability: no grant of object:read/);

    // Listing with the capability shows only A/.
    const listed = await (await fetch(`${tg.gw.url}/${BUCKET}?list-type=2&prefix=A/&X-Anvil-Capability=${capability}`)).text();
    t.deepEqual([...listed.matchAll(/<Key>([^<]+)<\/Key>/g)].map((m) => m[1]), ['A/other.txt', 'A/report.txt', 'A/report.txt.bak', 'A/sub/deep.txt']);
    t.is((await fetch(`${tg.gw.url}/${BUCKET}?list-type=2&prefix=B/&X-Anvil-Capability=${capability}`)).status, 403);

    // Narrowed by the holder, without the server: only A/sub/ and only read.
    const narrow = narrowCapability(capability, { append: ['sub/'], actions: ['read'] });
    t.is((await fetch(link(tg, 'A/sub/deep.txt', narrow))).status, 200);
    t.is((await fetch(link(tg, 'A/report.txt', narrow))).status, 403);
    t.is((await fetch(`${tg.gw.url}/${BUCKET}?list-type=2&prefix=A/sub/&X-Anvil-Capability=${narrow}`)).status, 403);

    // The reserved prefix: a whole-bucket capability, even narrowed towards it, never reaches _anvil/.
    const whole = (await ok(tg, acmeAdmin, 'POST', '/capabilities', { bucket: BUCKET, actions: ['read', 'list', 'write', 'delete'] })).capability;
    t.is((await fetch(link(tg, 'A/report.txt', whole))).status, 200);
    for (const cap of [whole, narrowCapability(whole, { append: ['_anvil/'] })]) {
      t.is((await fetch(link(tg, '_anvil/meta', cap))).status, 403);
      t.is((await fetch(link(tg, '_anvil/new', cap), { method: 'PUT', body: 'x' })).status, 403);
      t.is((await fetch(link(tg, '_anvil/meta', cap), { method: 'DELETE' })).status, 403);
      t.is((await fetch(`${tg.gw.url}/${BUCKET}?list-type=2&prefix=_anvil/&X-Anvil-Capability=${cap}`)).status, 403);
    }
    const everything = await (await fetch(`${tg.gw.url}/${BUCKET}?list-type=2&X-Anvil-Capability=${whole}`)).text();
    t.false(everything.includes('_anvil'));
    t.true((await denials(tg)).some((d) => d.key === '_anvil/meta' && d.layer === 'reserved_namespace'));
    t.is((await admin(tg, acmeAdmin, 'POST', '/capabilities', { bucket: BUCKET, prefix: '_anvil/' })).status, 400);
    // Capabilities never reach the admin API.
    t.is((await fetch(`${tg.gw.url}${ADMIN_PREFIX}/credentials?X-Anvil-Capability=${whole}`)).status, 403);
  });
});

test('one capability per request: a repeated parameter or header, or both forms, is 400 InvalidArgument in either order', async (t) => {
  await withGateway(async (tg, acmeAdmin) => {
    const reader = (await ok(tg, acmeAdmin, 'POST', '/capabilities', { bucket: BUCKET, prefix: 'A/', actions: ['read'] })).capability;
    const writer = (await ok(tg, acmeAdmin, 'POST', '/capabilities', { bucket: BUCKET, prefix: 'A/', actions: ['write'] })).capability;
    const url = `${tg.gw.url}/${BUCKET}/A/report.txt`;
    const answers = [
      await fetch(`${url}?X-Anvil-Capability=${reader}&X-Anvil-Capability=${writer}`),
      await fetch(`${url}?X-Anvil-Capability=${writer}&X-Anvil-Capability=${reader}`),
      await fetch(`${url}?X-Anvil-Capability=${reader}`, { headers: { 'x-anvil-capability': writer } }),
      await fetch(`${url}?X-Anvil-Capability=${writer}`, { headers: { 'x-anvil-capability': reader } }),
      await fetch(url, { headers: [['x-anvil-capability', reader], ['X-Anvil-Capability', writer]] }),
    ];
    for (const [i, res] of answers.entries()) {
      t.is(res.status, 400, `case ${i}`);
      const body = await res.text();
      t.regex(body, /<Code>InvalidArgument<\/Code>/, `case ${i}`);
      t.regex(body, /<RequestId>[0-9A-F]+<\/RequestId>/, `case ${i}`);
    }
    t.true((await denials(tg)).some((d) => d.layer === 'capability' && /more than once|both as/.test(d.reason ?? '')));
    // A capability and a signature together: refused, with a denial line too.
    const signedToo = await signedSend({ url: tg.gw.url, method: 'GET', path: `/${BUCKET}/A/report.txt`, headers: { 'x-anvil-capability': reader } });
    t.is(signedToo.status, 400);
    t.true((await denials(tg)).some((d) => d.layer === 'capability' && /Only one auth mechanism/.test(d.reason ?? '')));
    // One of them, once, still works.
    t.is((await fetch(`${url}?X-Anvil-Capability=${reader}`)).status, 200);
    t.is((await fetch(url, { headers: { 'x-anvil-capability': reader } })).status, 200);
  });
});

test('resetting the root key invalidates every earlier link; revoking by id invalidates one', async (t) => {
  await withGateway(async (tg, acmeAdmin) => {
    const env = { AWS_ACCESS_KEY_ID: acmeAdmin.accessKeyId, AWS_SECRET_ACCESS_KEY: acmeAdmin.secretAccessKey };
    const a = await ok(tg, acmeAdmin, 'POST', '/capabilities', { bucket: BUCKET, prefix: 'A/' });
    const b = await ok(tg, acmeAdmin, 'POST', '/capabilities', { bucket: BUCKET, prefix: 'A/' });
    t.regex(a.id, /^acme:/);
    t.is((await fetch(link(tg, 'A/report.txt', a.capability))).status, 200);

    const revoked = await anvil(['--endpoint', tg.gw.url, 'capability', 'revoke', a.id], env);
    t.is(revoked.code, 0, revoked.stderr);
    t.is((await fetch(link(tg, 'A/report.txt', a.capability))).status, 403);
    t.is((await fetch(link(tg, 'A/report.txt', narrowCapability(a.capability, { append: ['report'] })))).status, 403);
    t.is((await fetch(link(tg, 'A/report.txt', b.capability))).status, 200);
    t.true((await denials(tg)).some((d) => d.layer === 'capability' && /revoked/.test(d.reason)));

    const reset = await anvil(['--endpoint', tg.gw.url, 'capability', 'reset', '--tenant', 'acme'], env);
    t.is(reset.code, 0, reset.stderr);
    t.is((await fetch(link(tg, 'A/report.txt', b.capability))).status, 403);
    t.true((await denials(tg)).some((d) => d.layer === 'capability' && /root key/.test(d.reason)));
    const fresh = await ok(tg, acmeAdmin, 'POST', '/capabilities', { bucket: BUCKET, prefix: 'A/' });
    t.is((await fetch(link(tg, 'A/report.txt', fresh.capability))).status, 200);

    // Another tenant's admin can neither revoke acme's capabilities nor reset its key.
    await ok(tg, ROOT, 'POST', '/tenants', { name: 'other' });
    const o = await ok(tg, ROOT, 'POST', '/credentials', { tenant: 'other', name: 'admin', scopes: [{ families: [...FAMILIES], bucket: '*' }] });
    const other = { accessKeyId: o.accessKeyId, secretAccessKey: o.secretKey };
    t.is((await admin(tg, other, 'POST', `/capabilities/${encodeURIComponent(fresh.id)}/revoke`, {})).status, 403);
    t.is((await admin(tg, other, 'POST', '/capabilities/reset', { tenant: 'acme' })).status, 403);
    t.is((await admin(tg, other, 'POST', '/capabilities', { bucket: BUCKET, prefix: 'A/' })).status, 403);
    t.is((await fetch(link(tg, 'A/report.txt', fresh.capability))).status, 200);
    // Disabling the tenant stops its capabilities too.
    await ok(tg, ROOT, 'POST', '/tenants/acme/disable');
    t.is((await fetch(link(tg, 'A/report.txt', fresh.capability))).status, 403);
  });
});

test('minting is allowed only within the minter authority at that moment', async (t) => {
  await withGateway(async (tg, acmeAdmin) => {
    const n = await ok(tg, acmeAdmin, 'POST', '/credentials', { name: 'a-admin', scopes: [{ families: ['object:read', 'admin'], bucket: BUCKET, prefix: 'A/' }] });
    const narrowAdmin = { accessKeyId: n.accessKeyId, secretAccessKey: n.secretKey };
    const within = await admin(tg, narrowAdmin, 'POST', '/capabilities', { bucket: BUCKET, prefix: 'A/sub/', actions: ['read'] });
    t.is(within.status, 201);
    for (const body of [
      { bucket: BUCKET, prefix: 'B/', actions: ['read'] },
      { bucket: BUCKET, prefix: '', actions: ['read'] },
      { bucket: BUCKET, prefix: 'A/', actions: ['read', 'write'] },
      { bucket: BUCKET, prefix: 'A/', actions: ['list'] },
      { bucket: '*', actions: ['read'] },
    ]) {
      const res = await admin(tg, narrowAdmin, 'POST', '/capabilities', body);
      t.is(res.status, 403, JSON.stringify(body));
      t.regex(res.json.error.message, /cannot grant|not owned/);
    }
    t.true((await denials(tg)).filter((d) => d.action === 'Admin:MintCapability' && d.accessKeyId === narrowAdmin.accessKeyId).length === 5);
    // A plain credential without admin cannot mint at all.
    const p = await ok(tg, acmeAdmin, 'POST', '/credentials', { name: 'reader', scopes: [{ families: ['object:read'], bucket: BUCKET }] });
    t.is((await admin(tg, { accessKeyId: p.accessKeyId, secretAccessKey: p.secretKey }, 'POST', '/capabilities', { bucket: BUCKET })).status, 403);
    // The capability minted within authority works, and only there.
    t.is((await fetch(link(tg, 'A/sub/deep.txt', within.json.capability))).status, 200);
    t.is((await fetch(link(tg, 'A/report.txt', within.json.capability))).status, 403);
  });
});

test("a tenant admin minting on another tenant's bucket and on a free name gets the same answer", async (t) => {
  await withGateway(async (tg, acmeAdmin) => {
    await ok(tg, ROOT, 'POST', '/tenants', { name: 'other' });
    await tg.s3.send(new CreateBucketCommand({ Bucket: 'other-data' }));
    await ok(tg, ROOT, 'PUT', '/buckets/other-data/owner', { tenant: 'other', reassign: true });
    const taken = await admin(tg, acmeAdmin, 'POST', '/capabilities', { bucket: 'other-data', actions: ['read'] });
    const free = await admin(tg, acmeAdmin, 'POST', '/capabilities', { bucket: 'no-such-bucket-here', actions: ['read'] });
    t.is(taken.status, 403);
    t.is(free.status, taken.status);
    t.is(free.json.error.code, taken.json.error.code);
    t.is(free.json.error.message.replace('no-such-bucket-here', 'B'), taken.json.error.message.replace('other-data', 'B'));
    // Root is told the name is free.
    t.is((await admin(tg, ROOT, 'POST', '/capabilities', { bucket: 'no-such-bucket-here', tenant: 'acme', actions: ['read'] })).status, 400);
  });
});

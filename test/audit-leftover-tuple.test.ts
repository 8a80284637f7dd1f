/**
 * The access audit's leftover-tuple check end to end: in a governed bucket a narrow admin's child writes, through the
 * tuple write guard, a reader tuple for a third credential; once root deletes the narrow admin's own tuple, the guard
 * would refuse that tuple today, yet it keeps granting (README "Who may do what"). The audit reports it (and only it:
 * not before the narrowing, not a tuple whose writer still holds what it handed out), to root and to an admin whose
 * view holds the writer, not to one whose view does not; its fix command, run as printed, deletes it and S3 refuses
 * the third credential from then on.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { relationships as rel, type audit, type ScopeGrant } from '../policy/index.ts';
import { ok, type Creds } from './helpers/admin.ts';
import { BUCKET, credential, sdkReads, TENANT, withGovernedGateway } from './helpers/authority.ts';
import { anvil, credentialEnv, type CliRun } from './helpers/cli.ts';
import { ROOT, type TestGateway } from './helpers/gateway.ts';

const OBJ: ScopeGrant['families'] = ['object:read', 'object:write', 'object:delete', 'object:list'];
const REL: ScopeGrant['families'] = ['tuples:read', 'tuples:write', 'check', 'watch'];
const REPO = join(import.meta.dirname, '..');

async function write(tg: TestGateway, by: Creds, op: 'touch' | 'delete', tuple: string): Promise<void> {
  await ok(tg, by, 'POST', '/tuples', { ...(by === ROOT ? { tenant: TENANT } : {}), reason: 'test', updates: [{ op, tuple }] });
}

/** The leftover-tuple findings of an audit run as `creds`. */
async function leftovers(tg: TestGateway, creds: Creds = ROOT): Promise<audit.Finding[]> {
  const run = await anvil(['--endpoint', tg.gw.url, 'audit', 'check', '--json', '--fail-on', 'none', ...(creds === ROOT ? ['--tenant', TENANT] : [])], credentialEnv(creds));
  if (run.code !== 0) throw new Error(`audit check: ${run.code} ${run.stderr}`);
  return (JSON.parse(run.stdout) as { findings: audit.Finding[] }).findings.filter((f) => f.check === 'leftover-tuple');
}

/** Runs a finding's fix as printed (`anvil …`), through a shell so its quoting is what an operator would paste. */
function runFix(tg: TestGateway, fix: string, creds: Creds): Promise<CliRun> {
  if (!fix.startsWith('anvil ')) throw new Error(`not an anvil command: ${fix}`);
  const command = `"${process.execPath}" bin/anvil.js --endpoint ${tg.gw.url} ${fix.slice('anvil '.length)}`;
  return new Promise((resolve) => {
    execFile('sh', ['-c', command], { cwd: REPO, env: { PATH: process.env.PATH ?? '', ...credentialEnv(creds) } }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/**
 * The gov.py chain: A1, a narrow admin of the bucket owning it by root's tuple; C2, its child, owning pub/ by A1's
 * tuple and handing pub/ to T3 (made by root) through the guard; W, made by root, reading backups/ by root's tuple
 * and handing one object of it to T3; N, a narrow admin of backups/ only. Nobody is narrowed yet.
 */
async function chain(tg: TestGateway) {
  const a1 = await credential(tg, [{ families: ['admin', ...OBJ, ...REL], bucket: BUCKET }]);
  await write(tg, ROOT, 'touch', `bucket:${BUCKET}#owner@app:${a1.id}`);
  const c2 = await credential(tg, [{ families: ['admin', ...OBJ, ...REL], bucket: BUCKET, prefix: 'pub/' }], a1);
  const handedToC2 = `folder:${BUCKET}/pub/#owner@app:${c2.id}`;
  await write(tg, a1, 'touch', handedToC2);
  // T3: a reader made by root, to whom C2 hands out pub/ through the guard.
  const t3 = await credential(tg, [{ families: ['object:read', 'object:list'], bucket: BUCKET }]);
  const handedOut = `folder:${BUCKET}/pub/#reader@app:${t3.id}`;
  await write(tg, c2, 'touch', handedOut);
  // W: a writer made by root that reads backups/ by root's tuple and hands one object of it to T3.
  const w = await credential(tg, [{ families: ['tuples:write', 'object:read'], bucket: BUCKET, prefix: 'backups/' }]);
  await write(tg, ROOT, 'touch', `folder:${BUCKET}/backups/#reader@app:${w.id}`);
  const wHandedOut = `object:${BUCKET}/backups/host1/a#reader@app:${t3.id}`;
  await write(tg, w, 'touch', wHandedOut);
  // N: a narrow admin of backups/ only, beside A1.
  const n = await credential(tg, [{ families: ['admin', ...OBJ, ...REL], bucket: BUCKET, prefix: 'backups/' }]);
  return { a1, c2, t3, w, n, handedToC2, handedOut, wHandedOut };
}

test('a tuple a narrowed writer handed out is reported, deleted by its fix, and S3 then refuses its subject', async (t) => {
  await withGovernedGateway(async (tg) => {
    const { a1, c2, t3, w, n, handedToC2, handedOut, wHandedOut } = await chain(tg);
    t.deepEqual(await leftovers(tg), [], 'every writer still holds what it handed out');
    t.true(await sdkReads(tg, t3, 'pub/x'));

    await write(tg, ROOT, 'delete', `bucket:${BUCKET}#owner@app:${a1.id}`);
    t.false(await sdkReads(tg, c2, 'pub/x'), 'C2 lost pub/ with its maker');
    t.true(await sdkReads(tg, t3, 'pub/x'), 'the gap: T3 still reads through the tuple C2 wrote');
    // Both tuples the narrowed chain wrote: A1's handing C2 pub/, C2's handing T3 pub/ (W still holds what it wrote).
    const found = await leftovers(tg);
    t.deepEqual(found.map((x) => x.subject).sort(), [handedToC2, handedOut].sort());
    const f = found.find((x) => x.subject === handedOut)!;
    t.is(f.severity, 'high');
    t.is(f.tenant, TENANT);
    t.is(f.accessKeyId, c2.id);
    t.regex(f.message, new RegExp(`written by app:${c2.id} through the write guard, still grants, but the guard would refuse it today: .*app:${a1.id} \\(which bounds the writer\\) does not hold`));
    t.is(f.fix, `anvil tuples delete '${handedOut}' --tenant ${TENANT} --reason 'its writer app:${c2.id} no longer holds what it handed out'`);
    t.is(found.find((x) => x.subject === handedToC2)!.accessKeyId, a1.id);
    t.regex(found.find((x) => x.subject === handedToC2)!.message, /the writer does not hold/);

    // The view rules: A1's view holds A1 and C2 and reaches pub/; N's holds neither.
    t.deepEqual((await leftovers(tg, a1)).map((x) => x.subject).sort(), [handedToC2, handedOut].sort());
    t.deepEqual(await leftovers(tg, n), []);

    const fixed = await runFix(tg, f.fix, ROOT);
    t.is(fixed.code, 0, fixed.stderr);
    t.false(await sdkReads(tg, t3, 'pub/x'), 'S3 refuses T3 once the tuple is gone');
    t.true(await sdkReads(tg, t3, 'backups/host1/a'), "W's tuple still grants");
    const rest = await leftovers(tg);
    t.deepEqual(rest.map((x) => x.subject), [handedToC2]);
    t.is((await runFix(tg, rest[0]!.fix, ROOT)).code, 0);
    t.deepEqual(await leftovers(tg), []);

    // W loses what it handed out: now its tuple is reported, for W itself.
    await write(tg, ROOT, 'delete', `folder:${BUCKET}/backups/#reader@app:${w.id}`);
    const later = await leftovers(tg);
    t.deepEqual(later.map((x) => x.subject), [wHandedOut]);
    t.regex(later[0]!.message, /the writer does not hold read on object:data\/backups\/host1\/a itself/);
    t.deepEqual((await leftovers(tg, n)).map((x) => x.subject), [wHandedOut], "N's view holds W and reaches backups/");
  });
});

test('tuples prune-leftovers deletes exactly the leftover tuples, recorded with the reason; only a tenant-wide admin may run it', async (t) => {
  await withGovernedGateway(async (tg) => {
    const { a1, t3, handedToC2, handedOut, wHandedOut } = await chain(tg);
    const prune = (creds: Creds, ...args: string[]) => anvil(['--endpoint', tg.gw.url, 'tuples', 'prune-leftovers', '--json', ...args], credentialEnv(creds));
    const none = await prune(ROOT, '--tenant', TENANT, '--reason', 'nothing to do yet');
    t.is(none.code, 0, none.stderr);
    t.deepEqual(JSON.parse(none.stdout), { tenant: TENANT, deleted: 0, tuples: [] });

    await write(tg, ROOT, 'delete', `bucket:${BUCKET}#owner@app:${a1.id}`);
    const narrow = await prune(a1, '--reason', 'not mine to run');
    t.is(narrow.code, 1);
    t.regex(narrow.stderr, /every family on every bucket \(AccessDenied\)/);
    t.true(await sdkReads(tg, t3, 'pub/x'), 'a refused prune deletes nothing');

    const run = await prune(ROOT, '--tenant', TENANT, '--reason', 'A1 narrowed');
    t.is(run.code, 0, run.stderr);
    const r = JSON.parse(run.stdout) as { deleted: number; tuples: Array<{ tuple: string; writer: string }> };
    t.is(r.deleted, 2);
    t.deepEqual(r.tuples.map((x) => x.tuple).sort(), [handedToC2, handedOut].sort());
    t.false(await sdkReads(tg, t3, 'pub/x'));
    t.true(await sdkReads(tg, t3, 'backups/host1/a'), `W still holds what it handed out: ${wHandedOut} stays`);
    t.deepEqual(await leftovers(tg), []);
    const { records } = (await ok(tg, ROOT, 'GET', `/tuples/audit?tenant=${TENANT}`)) as { records: Array<{ kind: string; tuple: rel.Tuple; reason: string; actor: string }> };
    const pruned = records.filter((x) => x.reason === 'A1 narrowed');
    t.deepEqual(pruned.map((x) => [x.kind, x.actor, rel.formatSpiceDbTuple(x.tuple)]).sort(), [handedToC2, handedOut].sort().map((x) => ['tuple.delete', ROOT.accessKeyId, x]));
  });
});

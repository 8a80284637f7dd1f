/**
 * `anvil audit check` end to end: a gateway whose data directory is seeded through the real APIs (and, for what only
 * time or tampering makes, by back-dating rows and writing a tuple behind the gateway's back) with one planted
 * finding of each kind, audited by the compiled CLI over the admin API; and a clean directory that reports none.
 * Each check must report exactly what was planted for it, with its severity and fixing command; runs are recorded
 * in the audit log, compared by --since-last, and --fail-on decides the exit code.
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, type S3ServiceException } from '@aws-sdk/client-s3';
import test from 'ava';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { audit, relationships as rel, type ScopeGrant } from '../policy/index.ts';
import { ok } from './helpers/admin.ts';
import { seed } from './helpers/authority.ts';
import { anvil, credentialEnv } from './helpers/cli.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';

const DAY = 86_400_000;
const CAVEAT_CHANGED = rel.DEFAULT_OBJECT_SCHEMA.replace('allowed.exists(cidr, client_ip.in_cidr(cidr))', 'allowed.exists(cidr, client_ip.in_cidr(cidr)) && allowed.size() < 100');
const WIDER = CAVEAT_CHANGED.replace('permission delete = owner\n}\ndefinition folder', 'permission delete = owner + writer\n}\ndefinition folder');

interface Made {
  id: string;
  creds: { accessKeyId: string; secretAccessKey: string };
}

async function make(tg: TestGateway, tenant: string, name: string, scopes: ScopeGrant[], maker = ROOT): Promise<Made> {
  const c = await ok(tg, maker, 'POST', '/credentials', { tenant, name, scopes });
  return { id: c.accessKeyId, creds: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretKey } };
}

function client(tg: TestGateway, made: Made, agent?: string): S3Client {
  return new S3Client({ endpoint: tg.gw.url, region: tg.config.region, credentials: made.creds, forcePathStyle: true, ...(agent ? { customUserAgent: agent } : {}) });
}

/** Runs SQL on one of the data directory's databases (what only time or tampering would produce). */
function tamper(tg: TestGateway, file: string, sql: string, ...params: unknown[]): void {
  const db = new Database(join(tg.dataDir, file));
  try {
    db.pragma('busy_timeout = 5000');
    db.prepare(sql).run(...params);
  } finally {
    db.close();
  }
}

type Report = { findings: Array<audit.Finding & { new: boolean }>; counts: audit.SeverityCounts; previousRun?: { time: string }; resolved: number };

async function auditCheck(tg: TestGateway, ...args: string[]): Promise<{ code: number; report: Report; stderr: string }> {
  const run = await anvil(['--endpoint', tg.gw.url, 'audit', 'check', '--json', ...args], credentialEnv(ROOT));
  return { code: run.code, report: run.stdout ? (JSON.parse(run.stdout) as Report) : (undefined as never), stderr: run.stderr };
}

/** Plants one finding of each kind in tenant acme (and one in tenant other); the ids they are about. */
async function plant(tg: TestGateway) {
  await seed(tg, 'acme', 'docs');
  await seed(tg, 'other', 'elsewhere');
  await tg.s3.send(new PutObjectCommand({ Bucket: 'docs', Key: 'team/plan.txt', Body: 'plan' }));
  // stale-credential: made 60 days ago, last used 45 days ago.
  const stale = await make(tg, 'acme', 'old-job', [{ families: ['object:read'], bucket: 'docs', prefix: 'pub/' }]);
  // broad-scope: object:read on every bucket of the tenant.
  const wide = await make(tg, 'acme', 'wide', [{ families: ['object:read'], bucket: '*' }]);
  // unused-families: made 40 days ago, granted read and write, used only for writes.
  const backup = await make(tg, 'acme', 'backup', [{ families: ['object:read', 'object:write'], bucket: 'docs', prefix: 'backups/host1/' }]);
  await client(tg, backup).send(new PutObjectCommand({ Bucket: 'docs', Key: 'backups/host1/b', Body: 'b' }));
  // shared-credential: one key, four user agents (more than --max-agents 3).
  const shared = await make(tg, 'acme', 'shared', [{ families: ['object:read'], bucket: 'docs', prefix: 'pub/' }]);
  for (const agent of ['job-a/1', 'job-b/1', 'job-c/1', 'job-d/1']) await client(tg, shared, agent).send(new GetObjectCommand({ Bucket: 'docs', Key: 'pub/x' }));
  // reserved-namespace: a credential probing _anvil/ in its bucket.
  const prober = await make(tg, 'acme', 'prober', [{ families: ['object:read', 'object:list'], bucket: 'docs', prefix: 'pub/' }]);
  const probe = await client(tg, prober).send(new GetObjectCommand({ Bucket: 'docs', Key: '_anvil/config' })).catch((e: S3ServiceException) => e);
  if (!('$metadata' in probe) || probe.$metadata.httpStatusCode !== 403) throw new Error('the probe was not refused');
  // governance-gap: a governed bucket whose watch feed a credential holding no tuple may read.
  await tg.s3.send(new PutObjectCommand({ Bucket: 'docs', Key: 'gov-marker', Body: 'x' }));
  await ok(tg, ROOT, 'PUT', '/buckets/docs/governance', { governed: true });
  const watcher = await make(tg, 'acme', 'watcher', [{ families: ['watch'], bucket: 'docs', prefix: 'team/' }]);
  // leftover-tuple: an application hands carol team/ through the write guard, then loses team/ itself.
  const lender = await make(tg, 'acme', 'lender', [{ families: ['tuples:write', 'object:read'], bucket: 'docs', prefix: 'team/' }]);
  await ok(tg, ROOT, 'POST', '/tuples', { tenant: 'acme', reason: 'lender reads team', updates: [{ op: 'touch', tuple: `folder:docs/team/#reader@app:${lender.id}` }] });
  await ok(tg, lender.creds, 'POST', '/tuples', { reason: 'carol reads team', updates: [{ op: 'touch', tuple: 'folder:docs/team/#reader@user:carol' }] });
  await ok(tg, ROOT, 'POST', '/tuples', { tenant: 'acme', reason: 'lender leaves team', updates: [{ op: 'delete', tuple: `folder:docs/team/#reader@app:${lender.id}` }] });
  // stale-caveat: a tuple written against ip_allowlist, whose definition then changes.
  await ok(tg, ROOT, 'POST', '/tuples', { tenant: 'acme', reason: 'seed', updates: [{ op: 'touch', tuple: 'bucket:docs#reader@user:amy[ip_allowlist:{"allowed":["10.0.0.0/8"]}]' }] });
  await ok(tg, ROOT, 'POST', '/tuples', { tenant: 'acme', reason: 'seed', updates: [{ op: 'touch', tuple: `object:docs/pub/x#reader@app:${prober.id}` }] });
  await ok(tg, ROOT, 'PUT', '/schema', { tenant: 'acme', schema: CAVEAT_CHANGED, reason: 'tighten ip_allowlist' });
  // unsourced-import: an import that names no source file.
  await ok(tg, ROOT, 'POST', '/tuples/import', { tenant: 'acme', reason: 'bulk load', text: 'folder:docs/team/#reader@user:bob\n' });
  // unaudited-tuple: a row written straight into the database.
  tamper(tg, 'relationships.db', "INSERT INTO tuples (tenant, resource_type, resource_id, relation, subject_relation, subject_type, subject_id, created_revision) VALUES ('acme', 'bucket', 'docs', 'owner', '', 'user', 'mallory', (SELECT value FROM revisions WHERE name = 'relationships'))");
  // leftover-role, -provider, -capability: made by a tenant admin that is revoked afterwards.
  const maker = await make(tg, 'acme', 'team-admin', [{ families: ['admin', 'object:read'], bucket: 'docs', prefix: 'team/' }]);
  await ok(tg, maker.creds, 'POST', '/roles', { name: 'team-reader', scopes: [{ families: ['object:read'], bucket: 'docs', prefix: 'team/' }] });
  const provider = await ok(tg, maker.creds, 'POST', '/oidc-providers', { issuer: 'https://idp.example.test', audience: 'team', jwks: 'https://idp.example.test/jwks.json', roles: ['team-reader'] });
  const capability = await ok(tg, maker.creds, 'POST', '/capabilities', { bucket: 'docs', prefix: 'team/', actions: ['read'] });
  await ok(tg, ROOT, 'POST', `/credentials/${maker.id}/revoke`);
  // old-capability-key: acme's capability root key is 120 days old.
  tamper(tg, 'policy.db', "UPDATE capability_root_keys SET created_at = ? WHERE tenant = 'acme'", Date.now() - 120 * DAY);
  tamper(tg, 'policy.db', 'UPDATE credentials SET created_at = ?, last_used_at = ? WHERE access_key_id = ?', Date.now() - 60 * DAY, Date.now() - 45 * DAY, stale.id);
  tamper(tg, 'policy.db', 'UPDATE credentials SET created_at = ? WHERE access_key_id = ?', Date.now() - 40 * DAY, backup.id);
  // Tenant other: one stale credential, never used since it was made 50 days ago.
  const otherStale = await make(tg, 'other', 'forgotten', [{ families: ['object:read'], bucket: 'elsewhere', prefix: 'x/' }]);
  tamper(tg, 'policy.db', 'UPDATE credentials SET created_at = ? WHERE access_key_id = ?', Date.now() - 50 * DAY, otherStale.id);
  return { stale, wide, backup, shared, prober, watcher, lender, maker, provider, capability, otherStale };
}

test('a seeded data directory: every check reports exactly what was planted for it; runs are recorded and compared', async (t) => {
  const tg = await startTestGateway();
  try {
    const p = await plant(tg);
    const first = await auditCheck(tg, '--tenant', 'acme', '--max-agents', '3');
    t.is(first.code, 1, 'high findings fail the run at the default --fail-on high');
    t.is(first.report.previousRun, undefined);

    // schema-widened: after the first run, delete is widened to writers.
    await ok(tg, ROOT, 'PUT', '/schema', { tenant: 'acme', schema: WIDER, reason: 'writers may delete' });
    const { code, report } = await auditCheck(tg, '--tenant', 'acme', '--max-agents', '3');
    t.is(code, 1);
    const by = (check: audit.AuditCheck) => report.findings.filter((f) => f.check === check);
    const subjects = (check: audit.AuditCheck) => by(check).map((f) => f.subject).sort();

    t.deepEqual(subjects('stale-credential'), [p.stale.id]);
    t.regex(by('stale-credential')[0]!.message, /last used 45 days ago/);
    t.is(by('stale-credential')[0]!.fix, `anvil credential revoke ${p.stale.id}`);
    t.deepEqual(subjects('broad-scope'), [p.wide.id]);
    t.regex(by('broad-scope')[0]!.message, /object:read@\* on every bucket/);
    t.deepEqual(subjects('unused-families'), [p.backup.id]);
    t.regex(by('unused-families')[0]!.message, /did not use object:read in 30 days \(used: object:write\)/);
    t.regex(by('unused-families')[0]!.fix, /--scope 'object:write@docs\/backups\/host1\/' && anvil credential revoke/);
    t.deepEqual(subjects('shared-credential'), [p.shared.id]);
    t.regex(by('shared-credential')[0]!.message, /4 user agent\(s\)/);
    t.deepEqual(subjects('reserved-namespace'), [`${p.prober.id}@${by('reserved-namespace')[0]!.subject.split('@')[1]}`]);
    t.regex(by('reserved-namespace')[0]!.message, /1 attempt\(s\) on the reserved prefix _anvil\/ by .* GetObject docs\/_anvil\/config/);
    t.is(by('reserved-namespace')[0]!.severity, 'high');
    t.is(by('reserved-namespace')[0]!.fix, `anvil credential revoke ${p.prober.id}`);
    t.deepEqual(subjects('governance-gap'), [`${p.watcher.id} on docs`], 'the prober holds a tuple, the watcher none');
    t.deepEqual(subjects('stale-caveat'), ['bucket:docs#reader@user:amy[ip_allowlist:{"allowed":["10.0.0.0/8"]}]']);
    t.regex(by('stale-caveat')[0]!.fix, /^anvil tuples write 'bucket:docs#reader@user:amy\[ip_allowlist:.*' --tenant acme --reason 'rebind to caveat ip_allowlist [0-9a-f]+'$/);
    t.is(by('unsourced-import').length, 1);
    t.regex(by('unsourced-import')[0]!.message, /import of 1 tuple\(s\) by AKIATESTROOT00000001 .*"bulk load".* names no source file/);
    t.deepEqual(subjects('unaudited-tuple'), ['bucket:docs#owner@user:mallory']);
    t.is(by('unaudited-tuple')[0]!.severity, 'high');
    t.deepEqual(subjects('schema-widened'), ['bucket#delete', 'folder#delete', 'object#delete'], 'folders and objects inherit delete through parent->delete');
    t.regex(by('schema-widened')[0]!.message, /granted by bucket#writer/);
    t.true(by('schema-widened')[0]!.new, 'new since the first run');
    t.deepEqual(subjects('leftover-role'), ['role acme/team-reader']);
    t.regex(by('leftover-role')[0]!.message, new RegExp(`its maker ${p.maker.id} is revoked`));
    t.deepEqual(subjects('leftover-provider'), ['provider https://idp.example.test']);
    t.is(by('leftover-provider')[0]!.fix, `anvil oidc delete ${p.provider.id}`);
    t.deepEqual(subjects('leftover-capability'), [`capability ${p.capability.id}`]);
    t.is(by('leftover-capability')[0]!.fix, `anvil capability revoke ${p.capability.id}`);
    t.deepEqual(subjects('leftover-tuple'), ['folder:docs/team/#reader@user:carol']);
    t.is(by('leftover-tuple')[0]!.accessKeyId, p.lender.id);
    t.is(by('leftover-tuple')[0]!.severity, 'high');
    t.is(by('leftover-tuple')[0]!.fix, `anvil tuples delete 'folder:docs/team/#reader@user:carol' --tenant acme --reason 'its writer app:${p.lender.id} no longer holds what it handed out'`);
    t.deepEqual(subjects('old-capability-key'), ['acme/1']);
    t.is(by('old-capability-key')[0]!.fix, 'anvil capability reset --tenant acme');
    for (const check of Object.keys(audit.AUDIT_CHECKS) as audit.AuditCheck[]) t.true(by(check).length > 0, `${check} found its planted finding`);
    t.true(report.findings.every((f) => f.tenant === 'acme'), 'tenant other is not audited with --tenant acme');
    t.true(report.findings.filter((f) => f.check !== 'schema-widened').every((f) => !f.new), 'everything else was there at the first run');
    t.deepEqual(report.counts, audit.countBySeverity(report.findings));

    // --since-last lists nothing new; --fail-on then has nothing to fail on.
    const again = await auditCheck(tg, '--tenant', 'acme', '--max-agents', '3', '--since-last');
    t.is(again.code, 0, again.stderr);
    t.deepEqual(again.report.findings, []);
    t.is(again.report.resolved, 3, 'a widening is reported by the first run after it: the baseline is now the previous run');

    // Fixing one finding: it is gone from the next report and counted as resolved.
    await ok(tg, ROOT, 'POST', `/capabilities/${encodeURIComponent(p.capability.id)}/revoke`);
    const fixed = await auditCheck(tg, '--tenant', 'acme', '--max-agents', '3', '--fail-on', 'none');
    t.is(fixed.code, 0);
    t.is(fixed.report.findings.filter((f) => f.check === 'leftover-capability').length, 0);
    t.is(fixed.report.resolved, 1);

    // Every run is in the audit log: time, who, counts.
    const runs = (await ok(tg, ROOT, 'GET', '/audit/checks?tenant=acme')).runs as Array<{ actor: string; counts: audit.SeverityCounts; total: number }>;
    t.is(runs.length, 4);
    t.true(runs.every((r) => r.actor === ROOT.accessKeyId));
    t.deepEqual(runs[1]!.counts, report.counts);
    const logged = (await ok(tg, ROOT, 'GET', '/audit?action=audit.check')).audit as Array<{ tenant: string; details: { total: number } }>;
    t.is(logged.length, 4);
    t.is(logged[1]!.details.total, report.findings.length);

    // Root without --tenant audits every tenant; a tenant admin only its own.
    const all = await auditCheck(tg, '--max-agents', '3');
    t.true(all.report.findings.some((f) => f.tenant === 'other' && f.subject === p.otherStale.id));
    const acmeAdmin = await make(tg, 'acme', 'acme-admin', [{ families: ['admin', 'object:read', 'object:list', 'watch', 'check'], bucket: '*' }]);
    const own = await anvil(['--endpoint', tg.gw.url, 'audit', 'check', '--json', '--fail-on', 'none'], credentialEnv(acmeAdmin.creds));
    t.is(own.code, 0, own.stderr);
    const ownReport = JSON.parse(own.stdout) as Report & { tenant: string };
    t.is(ownReport.tenant, 'acme');
    t.true(ownReport.findings.length > 0);
    t.true(ownReport.findings.every((f) => f.tenant === 'acme'));
    const refused = await anvil(['--endpoint', tg.gw.url, 'audit', 'check', '--tenant', 'other'], credentialEnv(acmeAdmin.creds));
    t.is(refused.code, 1);
    t.regex(refused.stderr, /tenant other is not tenant acme \(AccessDenied\)/);
    const plain = await anvil(['--endpoint', tg.gw.url, 'audit', 'check', '--tenant', 'acme', '--max-agents', '3', '--fail-on', 'critical'], credentialEnv(ROOT));
    t.is(plain.code, 0, 'no critical finding');
    t.regex(plain.stdout, /^SEVERITY\s+CHECK\s+TENANT\s+FINDING\s+FIX\n/);
    t.regex(plain.stdout, /\nhigh\s+reserved-namespace\s+acme\s+1 attempt/);
    // The tenant admin's run (it is narrower than its tenant: it saw only what it holds) is not root's baseline.
    t.regex(plain.stdout, new RegExp(`\\d+ finding\\(s\\): \\d+ high, \\d+ medium, \\d+ low; 1 new and 0 resolved since the run of \\S+ by ${ROOT.accessKeyId}`));
    t.regex(plain.stdout, /\(new\) acme-admin holds the admin family/);
  } finally {
    await tg.close();
  }
});

test('a clean data directory reports no finding, and --fail-on low passes', async (t) => {
  const tg = await startTestGateway();
  try {
    await seed(tg, 'clean', 'reports');
    await ok(tg, ROOT, 'PUT', '/buckets/reports/governance', { governed: true });
    const reader = await make(tg, 'clean', 'reader', [{ families: ['object:read', 'object:list'], bucket: 'reports', prefix: 'reports/' }]);
    await ok(tg, ROOT, 'POST', '/tuples', { tenant: 'clean', reason: 'reader reads reports', updates: [{ op: 'touch', tuple: `folder:reports/reports/#reader@app:${reader.id}` }] });
    await ok(tg, ROOT, 'POST', '/tuples', { tenant: 'clean', reason: 'amy from the office', updates: [{ op: 'touch', tuple: 'bucket:reports#reader@user:amy[ip_allowlist:{"allowed":["10.0.0.0/8"]}]' }] });
    await ok(tg, ROOT, 'POST', '/tuples/import', { tenant: 'clean', name: 'team.txt', reason: 'team load', text: 'folder:reports/reports/#reader@user:bob\n' });
    await ok(tg, ROOT, 'POST', '/roles', { tenant: 'clean', name: 'auditor', scopes: [{ families: ['object:read'], bucket: 'reports', prefix: 'reports/' }] });
    await ok(tg, ROOT, 'POST', '/capabilities', { tenant: 'clean', bucket: 'reports', prefix: 'reports/q1.csv', exact: true, actions: ['read'] });
    const s3 = client(tg, reader);
    await s3.send(new GetObjectCommand({ Bucket: 'reports', Key: 'reports/q1.csv' }));
    await s3.send(new ListObjectsV2Command({ Bucket: 'reports', Prefix: 'reports/' }));
    tamper(tg, 'policy.db', 'UPDATE credentials SET created_at = ? WHERE access_key_id = ?', Date.now() - 40 * DAY, reader.id);

    for (const run of [await auditCheck(tg, '--fail-on', 'low'), await auditCheck(tg, '--fail-on', 'low', '--since-last')]) {
      t.deepEqual(run.report.findings, []);
      t.is(run.code, 0, run.stderr);
      t.deepEqual(run.report.counts, { low: 0, medium: 0, high: 0, critical: 0 });
    }
    const text = await anvil(['--endpoint', tg.gw.url, 'audit', 'check'], credentialEnv(ROOT));
    t.is(text.code, 0);
    t.is(text.stdout, `0 finding(s); 0 new and 0 resolved since the run of ${/run of (\S+)/.exec(text.stdout)?.[1]} by ${ROOT.accessKeyId}\n`);
  } finally {
    await tg.close();
  }
});

test('usage errors: --fail-on and the thresholds are checked before anything is sent', async (t) => {
  const bad = await anvil(['--endpoint', 'http://127.0.0.1:9', 'audit', 'check', '--fail-on', 'severe'], credentialEnv(ROOT));
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--fail-on takes one of low, medium, high, critical or none/);
  const days = await anvil(['--endpoint', 'http://127.0.0.1:9', 'audit', 'check', '--days', '0'], credentialEnv(ROOT));
  t.is(days.code, 2);
  t.regex(days.stderr, /--days takes a whole number of at least 1/);
});

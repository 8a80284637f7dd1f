/**
 * `anvil migrate-policy`: an embedded deployment (gateway on SQLite) moves its policy into PostgreSQL; a gateway on
 * PostgreSQL with the same master key then serves the same credentials, relationships and logs. All or nothing: a
 * second run into the filled database is refused and changes nothing, and so is a run while a gateway still serves
 * the data directory (what it changed afterwards would be lost).
 */
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { denials, ok } from './helpers/admin.ts';
import { ROOT, startTestGateway } from './helpers/gateway.ts';
import { postgresOrExplain, sharedPostgres } from './helpers/postgres.ts';

const REPO = join(import.meta.dirname, '..');

function anvil(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'gateway/cli/main.ts', ...args], { cwd: REPO, env: { PATH: process.env.PATH ?? '' } }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

if (postgresOrExplain(test, 'migrate-policy')) {
  test.after.always(async () => (await sharedPostgres()).close());

  test('an embedded deployment moves into PostgreSQL, all or nothing, and serves the same policy there', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'anvil-migrate-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const url = await (await sharedPostgres()).createDatabase();

    // The embedded deployment: a tenant, a credential (used once: an access record), a governed bucket with a tuple, a denial.
    const embedded = await startTestGateway({ ANVIL_DATA_DIR: dir });
    await ok(embedded, ROOT, 'POST', '/tenants', { name: 'acme' });
    await embedded.s3.send(new CreateBucketCommand({ Bucket: 'docs' }));
    await ok(embedded, ROOT, 'PUT', '/buckets/docs/owner', { tenant: 'acme', reassign: true });
    await embedded.s3.send(new PutObjectCommand({ Bucket: 'docs', Key: 'plan.txt', Body: 'plan' }));
    const app = await ok(embedded, ROOT, 'POST', '/credentials', { tenant: 'acme', name: 'app', scopes: [{ families: ['object:read'], bucket: 'docs' }] });
    const creds = { accessKeyId: app.accessKeyId, secretAccessKey: app.secretKey };
    await ok(embedded, ROOT, 'PUT', '/buckets/docs/governance', { governed: true });
    await ok(embedded, ROOT, 'POST', '/tuples', { tenant: 'acme', updates: [{ op: 'touch', tuple: `object:docs/plan.txt#reader@app:${app.accessKeyId}` }], reason: 'share' });
    await (await embedded.client(creds).send(new GetObjectCommand({ Bucket: 'docs', Key: 'plan.txt' }))).Body!.transformToString();
    await t.throwsAsync(embedded.client(creds).send(new GetObjectCommand({ Bucket: 'docs', Key: 'other.txt' })));
    const denied = (await denials(embedded)).length;
    await embedded.gw.close();

    const moved = await anvil(['migrate-policy', '--from', dir, '--to', url, '--json']);
    t.is(moved.code, 0, moved.stderr);
    const report = JSON.parse(moved.stdout) as { counts: Record<string, number>; masterKeyReference: string; to: string };
    t.like(report.counts, { 'policy.tenants': 2, 'policy.credentials': 2, 'policy.buckets': 1, 'relationships.tuples': 1, 'logs.denials': denied });
    t.true(report.counts['relationships.changelog']! >= 3);
    t.true(report.counts['policy.credential_uses']! >= 2, "root's uses and the application's");
    t.regex(report.masterKeyReference, /^[0-9a-f]{16}$/);

    const again = await anvil(['migrate-policy', '--from', dir, '--to', url]);
    t.is(again.code, 1);
    t.regex(again.stderr, /already holds policy/);

    // The same node, its policy now in PostgreSQL: the same key opens the same secrets, tuples decide, logs remain.
    const shared = await startTestGateway({ ANVIL_DATA_DIR: dir, ANVIL_POLICY_DATABASE: url, ANVIL_MASTER_KEY_FILE: join(dir, 'master.key') });
    try {
      const read = await shared.client(creds).send(new GetObjectCommand({ Bucket: 'docs', Key: 'plan.txt' }));
      t.is(await read.Body!.transformToString(), 'plan');
      t.is(shared.gw.database.dialect, 'postgres');
      t.is((await denials(shared)).length, denied);
      const uses = await shared.gw.database.db('policy').selectFrom('credential_uses').select('family').where('access_key_id', '=', app.accessKeyId).execute();
      t.deepEqual(uses.map((u) => u.family), ['object:read'], 'the access records moved with the policy');
      const audit = await ok(shared, ROOT, 'GET', '/audit?action=credential.create');
      t.deepEqual(audit.audit.map((a: { accessKeyId: string }) => a.accessKeyId), [app.accessKeyId]);
      const changes = await ok(shared, ROOT, 'GET', '/tuples/audit?tenant=acme');
      t.true(changes.records.some((r: { reason: string }) => r.reason === 'share'));
      // New rows continue after the copied ids.
      await ok(shared, ROOT, 'POST', '/tuples', { tenant: 'acme', updates: [{ op: 'delete', tuple: `object:docs/plan.txt#reader@app:${app.accessKeyId}` }], reason: 'unshare' });
      await t.throwsAsync(shared.client(creds).send(new GetObjectCommand({ Bucket: 'docs', Key: 'plan.txt' })));
    } finally {
      await shared.close();
    }
  });

  test('migrate-policy is refused, in one line and changing nothing, while a gateway runs on the data directory', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'anvil-migrate-live-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const url = await (await sharedPostgres()).createDatabase();
    const running = await startTestGateway({ ANVIL_DATA_DIR: dir });
    let refused: Awaited<ReturnType<typeof anvil>>;
    try {
      await ok(running, ROOT, 'POST', '/tenants', { name: 'acme' });
      refused = await anvil(['migrate-policy', '--from', dir, '--to', url]);
    } finally {
      await running.close();
    }
    t.is(refused.code, 1, refused.stdout);
    t.regex(refused.stderr, /^anvil: a gateway is running on .*: stop it first/);
    t.is(refused.stderr.trim().split('\n').length, 1, refused.stderr);
    // Nothing was copied: with the gateway stopped, the same target takes the copy, the tenant made last included.
    const moved = await anvil(['migrate-policy', '--from', dir, '--to', url, '--json']);
    t.is(moved.code, 0, moved.stderr);
    t.like((JSON.parse(moved.stdout) as { counts: Record<string, number> }).counts, { 'policy.tenants': 2 });
  });
}

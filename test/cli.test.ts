/**
 * The anvil CLI as a child process: local mode on a temporary data directory, and remote mode against a running
 * test gateway, where the gateway (not the CLI) refuses what a tenant admin may not do.
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, startTestGateway } from './helpers/gateway.ts';

const REPO = join(import.meta.dirname, '..');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `anvil ...args` with only the environment given (plus PATH), from the repository root. */
function anvil(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'gateway/cli/main.ts', ...args],
      { cwd: REPO, env: { PATH: process.env.PATH ?? '', ...env } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'anvil-cli-'));
}

test('local mode: bootstrap, scoped credentials, list, rotate, revoke, denials, audit', async (t) => {
  const dir = tempDir();
  try {
    const local = (...args: string[]) => anvil(['--data-dir', dir, ...args]);
    t.is((await local('tenant', 'list')).code, 1, 'no store yet');

    const boot = await local('bootstrap', '--tenant', 'acme', '--admin-name', 'ops');
    t.is(boot.code, 0, boot.stderr);
    const adminKey = /AWS_ACCESS_KEY_ID=(\S+)/.exec(boot.stdout)![1]!;
    const adminSecret = /AWS_SECRET_ACCESS_KEY=(\S+)/.exec(boot.stdout)![1]!;
    t.regex(boot.stdout, /shown only this once/);

    const made = await local(
      'credential', 'create', '--tenant', 'acme', '--name', 'reports', '--description', 'quarterly reports',
      '--scope', 'object:read,object:list@data/reports/', '--scope', 'bucket:read@*', '--expires', '30d', '--json',
    );
    t.is(made.code, 0, made.stderr);
    const created = JSON.parse(made.stdout);
    t.deepEqual(created.scopes, [{ families: ['object:read', 'object:list'], bucket: 'data', prefix: 'reports/' }, { families: ['bucket:read'], bucket: '*' }]);
    t.true(Date.parse(created.expiresAt) > Date.now() + 29 * 86_400_000);
    t.truthy(created.secretKey);

    const listed = await local('credential', 'list', '--tenant', 'acme', '--json');
    const credentials = JSON.parse(listed.stdout) as Array<{ accessKeyId: string; name: string; secretKey?: string }>;
    t.deepEqual(credentials.map((c) => c.name).sort(), ['ops', 'reports']);
    t.true(credentials.every((c) => c.secretKey === undefined));
    const table = await local('credential', 'list');
    t.regex(table.stdout, /^ACCESS KEY\s+TENANT\s+NAME\s+STATUS/);
    t.regex(table.stdout, /object:read,object:list@data\/reports\//);
    t.regex((await local('tenant', 'list')).stdout, /acme\s+enabled/);

    const rotated = await local('credential', 'rotate', created.accessKeyId, '--grace', '3600', '--json');
    t.is(rotated.code, 0, rotated.stderr);
    const rotation = JSON.parse(rotated.stdout);
    t.not(rotation.secretKey, created.secretKey);
    t.truthy(rotation.previousSecretValidUntil);
    const revoked = await local('credential', 'revoke', created.accessKeyId);
    t.is(revoked.code, 0);
    t.is(JSON.parse((await local('credential', 'show', created.accessKeyId, '--json')).stdout).status, 'revoked');
    const missing = await local('credential', 'show', 'AKIANOSUCH');
    t.is(missing.code, 1);
    t.regex(missing.stderr, /no credential AKIANOSUCH/);

    // Denials written by a gateway on this data directory, read back as a table and as JSON.
    const gw = await startTestGateway({ ANVIL_DATA_DIR: dir });
    try {
      const app = gw.client({ accessKeyId: created.accessKeyId, secretAccessKey: rotation.secretKey });
      await t.throwsAsync(app.send(new GetObjectCommand({ Bucket: 'data', Key: 'x' })));
      const admin = gw.client({ accessKeyId: adminKey, secretAccessKey: adminSecret });
      await t.throwsAsync(admin.send(new GetObjectCommand({ Bucket: 'elsewhere', Key: 'secret/y' })));
    } finally {
      await gw.gw.close();
    }
    const denialTable = await local('denials', '--since', '1h');
    t.is(denialTable.code, 0, denialTable.stderr);
    const lines = denialTable.stdout.trimEnd().split('\n');
    t.regex(lines[0]!, /^TIME\s+LAYER\s+ACTION\s+BUCKET\/KEY\s+ACCESS KEY\s+REASON$/);
    t.is(lines.length, 3);
    t.is(lines[1]!.indexOf('credential'), lines[0]!.indexOf('LAYER'), 'columns align');
    t.regex(denialTable.stdout, /elsewhere\/secret\/y/);
    const denialJson = JSON.parse((await local('denials', '--layer', 'credential', '--json')).stdout);
    t.is(denialJson.length, 1);
    t.is(denialJson[0].reason, 'credential revoked');
    t.deepEqual(JSON.parse((await local('denials', '--key-prefix', 'secret/', '--json')).stdout).map((d: { key: string }) => d.key), ['secret/y']);

    const audit = JSON.parse((await local('audit', '--action', 'credential.rotate', '--json')).stdout);
    t.is(audit.length, 1);
    t.is(audit[0].actor, 'operator');
    const logs = readFileSync(join(dir, 'audit.log'), 'utf8') + readFileSync(join(dir, 'denials.log'), 'utf8');
    for (const secret of [adminSecret, created.secretKey, rotation.secretKey]) t.false(logs.includes(secret));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('usage errors exit 2; --help exits 0', async (t) => {
  const dir = tempDir();
  try {
    const cases = [
      [],
      ['frobnicate'],
      ['credential', 'create', '--data-dir', dir, '--name', 'x', '--scope', 'object:read'],
      ['credential', 'show', '--data-dir', dir],
      ['tenant', 'list', '--data-dir', dir, '--bogus'],
      ['denials', '--data-dir', dir, '--since', 'last tuesday'],
      ['tenant', 'list', '--endpoint', 'http://127.0.0.1:1'],
    ];
    for (const args of cases) {
      const run = await anvil(args);
      t.is(run.code, 2, args.join(' '));
      t.regex(run.stderr, /Usage: anvil/);
    }
    const help = await anvil(['--help']);
    t.is(help.code, 0);
    t.regex(help.stdout, /credential rotate ID/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('remote mode: a tenant admin works within its tenant and is refused root-only commands', async (t) => {
  const tg = await startTestGateway();
  try {
    const remote = (creds: { accessKeyId: string; secretAccessKey: string }, ...args: string[]) =>
      anvil(args, { ANVIL_ENDPOINT: tg.gw.url, AWS_ACCESS_KEY_ID: creds.accessKeyId, AWS_SECRET_ACCESS_KEY: creds.secretAccessKey });
    const boot = await remote(ROOT, 'bootstrap', '--tenant', 'acme', '--json');
    t.is(boot.code, 0, boot.stderr);
    const admin = JSON.parse(boot.stdout).credential;
    const adminCreds = { accessKeyId: admin.accessKeyId, secretAccessKey: admin.secretKey };

    const refused = await remote(adminCreds, 'tenant', 'create', 'mine');
    t.is(refused.code, 1);
    t.regex(refused.stderr, /only root may manage tenants \(AccessDenied\)/);

    const made = await remote(adminCreds, 'credential', 'create', '--name', 'app', '--scope', 'object:read@data', '--json');
    t.is(made.code, 0, made.stderr);
    const app = JSON.parse(made.stdout);
    t.is(app.tenant, 'acme');

    const plain = await remote({ accessKeyId: app.accessKeyId, secretAccessKey: app.secretKey }, 'credential', 'list');
    t.is(plain.code, 1);
    t.regex(plain.stderr, /this operation needs the admin family/);

    const own = await remote(adminCreds, 'denials', '--json');
    t.is(own.code, 0, own.stderr);
    t.true(JSON.parse(own.stdout).every((d: { tenant: string }) => d.tenant === 'acme'));
    const wrongSecret = await remote({ ...adminCreds, secretAccessKey: 'wrong-secret-value' }, 'credential', 'list');
    t.is(wrongSecret.code, 1);
    t.regex(wrongSecret.stderr, /SignatureDoesNotMatch/);
  } finally {
    await tg.close();
  }
});

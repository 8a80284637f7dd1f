/**
 * The anvil CLI as a child process (bin/anvil.js, the compiled build): local mode on a temporary data directory,
 * remote mode against a running test gateway, where the gateway (not the CLI) refuses what a tenant admin may not
 * do; profiles, whoami, streamed imports; snapshots of help and usage errors.
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
      ['bin/anvil.js', ...args],
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
    const logs = (await local('denials', '--json')).stdout + (await local('audit', '--json')).stdout;
    for (const secret of [adminSecret, created.secretKey, rotation.secretKey]) t.false(logs.includes(secret));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('usage errors exit 2 and print only that command\'s usage; help and --version exit 0 (snapshots)', async (t) => {
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
      ['completion', 'fish'],
    ];
    for (const args of cases) {
      const run = await anvil(args);
      const label = `anvil ${args.join(' ')}`.replaceAll(dir, '<dir>');
      t.is(run.code, 2, label);
      t.is(run.stdout, '', 'usage errors go to stderr only');
      t.snapshot(run.stderr.replaceAll(dir, '<dir>'), label);
    }
    // The usage printed is the command's own, not the whole command list.
    const show = await anvil(['credential', 'show', '--data-dir', dir]);
    t.regex(show.stderr, /^anvil: missing required argument 'ID'\n\nUsage: anvil credential show \[options\] <ID>/);
    t.notRegex(show.stderr, /tenant create/);

    for (const args of [['--help'], ['credential', 'create', '--help'], ['tenant', '--help'], ['help', 'denials']]) {
      const help = await anvil(args);
      t.is(help.code, 0, args.join(' '));
      t.snapshot(help.stdout, `anvil ${args.join(' ')}`);
    }
    t.regex((await anvil(['--help'])).stdout, /anvil credential rotate ID/);
    t.regex((await anvil(['credential', 'create', '--help'])).stdout, /Examples:\n {2}anvil credential create --tenant acme/);
    const version = await anvil(['--version']);
    t.is(version.code, 0);
    t.is(version.stdout.trim(), JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version);
    t.false(/\x1b\[/.test((await anvil(['--help'])).stdout), 'no colour without a terminal');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('completion scripts for bash and zsh are valid and complete commands and options', async (t) => {
  const script = await anvil(['completion', 'bash']);
  t.is(script.code, 0);
  const dir = tempDir();
  try {
    writeFileSync(join(dir, 'anvil.bash'), script.stdout);
    const complete = (line: string) =>
      new Promise<string>((resolve, reject) => {
        const words = line.split(' ');
        const program = `source ${join(dir, 'anvil.bash')}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _anvil_complete; echo "\${COMPREPLY[*]}"`;
        execFile('bash', ['-c', program], (error, stdout) => (error ? reject(error) : resolve(stdout.trim())));
      });
    t.is(await complete('anvil cred'), 'credential');
    t.is(await complete('anvil credential ro'), 'rotate');
    t.is(await complete('anvil credential rotate AKIA1 --gr'), '--grace');
    t.is(await complete('anvil comp'), 'completion');
    const zsh = await anvil(['completion', 'zsh']);
    t.regex(zsh.stdout, /^autoload -U \+X bashcompinit && bashcompinit\n/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('local mode: capability revoke takes the id as printed; whoami is the operator', async (t) => {
  const dir = tempDir();
  try {
    const local = (...args: string[]) => anvil(['--data-dir', dir, ...args]);
    t.is((await local('bootstrap', '--tenant', 'acme')).code, 0);
    t.is((await local('bucket', 'assign', 'data', '--tenant', 'acme')).code, 0);
    const minted = JSON.parse((await local('capability', 'mint', '--tenant', 'acme', '--bucket', 'data', '--json')).stdout);
    t.regex(minted.id, /^acme:/);
    const revoked = await local('capability', 'revoke', minted.id);
    t.is(revoked.code, 0, revoked.stderr);
    t.is(revoked.stdout, `Capability ${minted.id} revoked.\n`);
    const me = JSON.parse((await local('whoami', '--json')).stdout);
    t.like(me, { accessKeyId: 'operator', root: true });
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

test('remote mode: whoami, named profiles, a clear message when nothing listens, and a streamed 200 KiB tuple import', async (t) => {
  const tg = await startTestGateway();
  const home = tempDir();
  try {
    const remote = (creds: { accessKeyId: string; secretAccessKey: string }, ...args: string[]) =>
      anvil(args, { ANVIL_ENDPOINT: tg.gw.url, AWS_ACCESS_KEY_ID: creds.accessKeyId, AWS_SECRET_ACCESS_KEY: creds.secretAccessKey });
    const boot = JSON.parse((await remote(ROOT, 'bootstrap', '--tenant', 'acme', '--json')).stdout).credential;
    const admin = { accessKeyId: boot.accessKeyId, secretAccessKey: boot.secretKey };

    // A profile saved once is used by later runs with nothing else given; the file is private and lists no secret.
    const saved = await anvil(['profile', 'set', 'acme-admin', '--endpoint', tg.gw.url, '--access-key-id', admin.accessKeyId, '--secret-key', admin.secretAccessKey, '--default'], { HOME: home });
    t.is(saved.code, 0, saved.stderr);
    t.is(statSync(join(home, '.config', 'anvil', 'config.json')).mode & 0o777, 0o600);
    const me = await anvil(['whoami', '--json'], { HOME: home });
    t.is(me.code, 0, me.stderr);
    t.like(JSON.parse(me.stdout), { tenant: 'acme', accessKeyId: admin.accessKeyId, root: false });
    const listed = await anvil(['profile', 'list'], { HOME: home });
    t.regex(listed.stdout, /acme-admin\s+http:\/\/127\.0\.0\.1:\d+\s+AKIA\w+\s+us-east-1\s+\*/);
    t.false(listed.stdout.includes(admin.secretAccessKey));
    const missing = await anvil(['whoami', '--profile', 'nope'], { HOME: home });
    t.is(missing.code, 2);
    t.regex(missing.stderr, /no profile "nope"/);

    // Far past the 64 KiB JSON body limit: the file is streamed, its SHA-256 signed.
    const schema = join(home, 'schema.zed');
    writeFileSync(schema, 'definition user {}\ndefinition document {\n  relation viewer: user\n}\n');
    t.is((await anvil(['schema', 'write', schema, '--reason', 'docs'], { HOME: home })).code, 0);
    const lines = Array.from({ length: 5000 }, (_, i) => `document:report-${String(i).padStart(5, '0')}#viewer@user:reader-${i}`);
    const file = join(home, 'grants.txt');
    writeFileSync(file, `# bulk grants\n${lines.join('\n')}\n`);
    t.true(statSync(file).size > 200 * 1024);
    const imported = await anvil(['tuples', 'import', file, '--reason', 'bulk load'], { HOME: home });
    t.is(imported.code, 0, imported.stderr);
    t.regex(imported.stdout, /^Imported 5000 tuple\(s\) at revision /);
    const some = await anvil(['tuples', 'list', '--type', 'document', '--subject', 'user:reader-4999', '--json'], { HOME: home });
    t.deepEqual(JSON.parse(some.stdout), ['document:report-04999#viewer@user:reader-4999']);

    await tg.close();
    const down = await anvil(['whoami'], { HOME: home });
    t.is(down.code, 1);
    t.regex(down.stderr, /^anvil: cannot reach the gateway at http:\/\/127\.0\.0\.1:\d+: nothing is listening there/);
    t.notRegex(down.stderr, /ECONNREFUSED/);
  } finally {
    await tg.close();
    rmSync(home, { recursive: true, force: true });
  }
});

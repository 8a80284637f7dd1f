/**
 * Start-up failures past the configuration schema, as an operator meets them with `npm start` under systemd: each is
 * one line naming the cause and never a stack trace; a value no restart fixes exits 78 (EX_CONFIG, which the README's
 * unit lists in RestartPreventExitStatus), with worker processes too; a database that is down exits 1; nothing hangs.
 * An expired certificate loads with a warning. The CLI in local mode on a PostgreSQL it cannot use prints one line.
 */
import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { anvil } from './helpers/cli.ts';
import { startGatewayProcess } from './helpers/gateway-process.ts';
import { postgresOrExplain, sharedPostgres } from './helpers/postgres.ts';
import { makeCertificates } from './helpers/tls.ts';

const REPO = join(import.meta.dirname, '..');
const KEY = '11'.repeat(32);

const work = mkdtempSync(join(tmpdir(), 'anvil-start-failures-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

/** The real entry point with only this environment (plus PATH); a start that neither listens nor exits in 30 s is killed. */
function start(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', 'gateway/main.ts'],
      { cwd: REPO, env: { PATH: process.env.PATH ?? '', ANVIL_ADDRESS: '127.0.0.1:0', ...env }, timeout: 30_000, killSignal: 'SIGKILL' },
      (_error, _stdout, stderr) => resolve({ code: child.exitCode, stderr }),
    );
  });
}

let dirs = 0;
const freshDir = () => join(work, `data-${dirs++}`);

test.serial('start-up refusals past the schema: one line naming the setting, exit status 78, no stack trace, no hang', async (t) => {
  t.timeout(5 * 60_000);
  const certs = join(work, 'certs');
  execFileSync('mkdir', ['-p', certs]);
  await makeCertificates(certs);
  const file = join(work, 'a-file');
  writeFileSync(file, 'not a directory\n');
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['cert missing', { ANVIL_TLS_CERT: join(certs, 'none.pem'), ANVIL_TLS_KEY: join(certs, 'none.key') }, /ANVIL_TLS_CERT and ANVIL_TLS_KEY: .*none\.pem.*ENOENT/],
    ['cert not PEM', { ANVIL_TLS_CERT: file, ANVIL_TLS_KEY: file }, /ANVIL_TLS_CERT and ANVIL_TLS_KEY: .*PEM/],
    ['key of another cert', { ANVIL_TLS_CERT: join(certs, 'one.pem'), ANVIL_TLS_KEY: join(certs, 'two.key') }, /ANVIL_TLS_CERT and ANVIL_TLS_KEY: .*key values mismatch/],
    ['data dir is a file', { ANVIL_DATA_DIR: file }, /ANVIL_DATA_DIR: .*a-file: it is a file, not a directory/],
    ['data dir under a file', { ANVIL_DATA_DIR: join(file, 'x') }, /ANVIL_DATA_DIR: .*ENOTDIR/],
    ['data dir that cannot be made (/proc)', { ANVIL_DATA_DIR: '/proc/nonexistent-anvil/x' }, /ANVIL_DATA_DIR: \/proc\/nonexistent-anvil\/x: cannot create \/proc\/nonexistent-anvil/],
    ['data dir that takes no file', { ANVIL_DATA_DIR: '/proc/1' }, /ANVIL_DATA_DIR: \/proc\/1: cannot create the lock file/],
    ['address of no host', { ANVIL_ADDRESS: '999.1.1.1:0' }, /ANVIL_ADDRESS: cannot listen on 999\.1\.1\.1:0: no such host/],
    ['health address of no host', { ANVIL_HEALTH_ADDRESS: '999.1.1.1:0' }, /ANVIL_HEALTH_ADDRESS: cannot listen on 999\.1\.1\.1:0: no such host/],
  ];
  for (const workers of ['1', '2']) {
    for (const [name, env, cause] of cases) {
      const run = await start({ ANVIL_WORKERS: workers, ANVIL_DATA_DIR: freshDir(), ...env });
      const label = `${name}, ${workers} worker(s): ${run.stderr}`;
      t.is(run.code, 78, label);
      t.regex(run.stderr.split('\n')[0]!, new RegExp(`^anvil: cannot start: ${cause.source}`), label);
      t.notRegex(run.stderr, /\n\s+at /, `no stack trace: ${label}`);
    }
  }
});

test.serial('a file setting naming a device that never ends (/dev/zero), or a key file holding no key, is refused at once, exit status 78', async (t) => {
  const noKey = join(work, 'no-key');
  writeFileSync(noKey, 'short-not-a-key\n', { mode: 0o600 });
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ ANVIL_MASTER_KEY_FILE: '/dev/zero' }, /ANVIL_MASTER_KEY_FILE: cannot read \/dev\/zero \(\/dev\/zero is larger than 65536 bytes\)/],
    [{ ANVIL_MASTER_KEY_FILE: noKey }, /ANVIL_MASTER_KEY_FILE: .*no-key holds no master key/],
    [{ ANVIL_CONFIG: '/dev/zero' }, /ANVIL_CONFIG: cannot read \/dev\/zero as JSON \(\/dev\/zero is larger than 1048576 bytes\)/],
    [{ ANVIL_TLS_CERT: '/dev/zero', ANVIL_TLS_KEY: '/dev/zero' }, /ANVIL_TLS_CERT and ANVIL_TLS_KEY: .*\/dev\/zero is larger than 1048576 bytes/],
  ];
  for (const [env, cause] of cases) {
    const run = await start({ ANVIL_WORKERS: '1', ANVIL_DATA_DIR: freshDir(), ...env });
    t.is(run.code, 78, run.stderr);
    t.regex(run.stderr, cause);
    t.notRegex(run.stderr, /\n\s+at /, 'no stack trace');
    t.notRegex(run.stderr, /short-not-a-key/, 'the file is never echoed');
  }
});

test.serial('a master key that does not open the stored secrets: one line and exit status 78 (a restart cannot fix it)', async (t) => {
  const dir = freshDir();
  const first = await startGatewayProcess({ ANVIL_DATA_DIR: dir, ANVIL_MASTER_KEY: KEY });
  await first.stop();
  for (const workers of ['1', '2']) {
    const run = await start({ ANVIL_WORKERS: workers, ANVIL_DATA_DIR: dir, ANVIL_MASTER_KEY: '22'.repeat(32) });
    t.is(run.code, 78, `${workers} worker(s): ${run.stderr}`);
    t.regex(run.stderr, /^anvil: cannot start: .*master key/i);
    t.is(run.stderr.trim().split('\n').length, 1, run.stderr);
  }
});

test.serial('a policy database that is down at start: one line and exit status 1 (a restart may succeed)', async (t) => {
  const run = await start({ ANVIL_WORKERS: '1', ANVIL_DATA_DIR: freshDir(), ANVIL_MASTER_KEY: KEY, ANVIL_POLICY_DATABASE: 'postgres://anvil@127.0.0.1:1/anvil' });
  t.is(run.code, 1, run.stderr);
  t.regex(run.stderr, /^anvil: cannot start: cannot open the policy database at postgres:\/\/anvil@127\.0\.0\.1:1\/anvil: connect ECONNREFUSED/);
  t.is(run.stderr.trim().split('\n').length, 1, run.stderr);
});

test.serial('a certificate outside its validity period loads with a warning, at start and on reload', async (t) => {
  t.timeout(2 * 60_000);
  const dir = join(work, 'expired');
  execFileSync('mkdir', ['-p', dir]);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '01\n');
  writeFileSync(join(dir, 'ca.cnf'), '[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'tls.key', '-out', 'tls.csr');
  // A certificate of January 2020 (OpenSSL 3.0's req has no -not_after; ca takes explicit dates).
  openssl('ca', '-batch', '-config', 'ca.cnf', '-selfsign', '-keyfile', 'tls.key', '-in', 'tls.csr', '-out', 'tls.pem', '-startdate', '20200101000000Z', '-enddate', '20200201000000Z', '-notext');
  const gw = await startGatewayProcess({ ANVIL_DATA_DIR: freshDir(), ANVIL_TLS_CERT: join(dir, 'tls.pem'), ANVIL_TLS_KEY: join(dir, 'tls.key') });
  try {
    const warnings = () => gw.stdoutLines().filter((l) => l.includes('TLS certificate out of date'));
    t.is(warnings().length, 1, gw.output());
    t.regex(warnings()[0]!, /"level":"warn".*the certificate expired on 2020-02-01T00:00:00\.000Z/);
    // Rewriting the files makes the gateway reload them (file watch), and warn again.
    copyFileSync(join(dir, 'tls.pem'), join(dir, 'tls.pem.new'));
    execFileSync('mv', [join(dir, 'tls.pem.new'), join(dir, 'tls.pem')]);
    const deadline = Date.now() + 30_000;
    while (warnings().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    t.is(warnings().length, 2, gw.output());
    t.regex(warnings()[1]!, /"reason":"file changed"/);
  } finally {
    await gw.stop();
  }
});

if (postgresOrExplain(test, 'the CLI on an unusable PostgreSQL')) {
  test.after.always(async () => (await sharedPostgres()).close());
  test.serial('the CLI in local mode on PostgreSQL it cannot use (down, missing database, wrong master key): one line, exit 1', async (t) => {
    t.timeout(3 * 60_000);
    const pg = await sharedPostgres();
    const url = await pg.createDatabase();
    // A gateway makes the policy there with KEY; the CLI then comes with another key.
    const gw = await startGatewayProcess({ ANVIL_DATA_DIR: freshDir(), ANVIL_POLICY_DATABASE: url, ANVIL_MASTER_KEY: KEY });
    await gw.stop();
    const cases: Array<[string, Record<string, string>, RegExp]> = [
      ['down', { ANVIL_POLICY_DATABASE: 'postgres://anvil@127.0.0.1:1/anvil', ANVIL_MASTER_KEY: KEY }, /^anvil: cannot open the policy database at postgres:\/\/anvil@127\.0\.0\.1:1\/anvil: connect ECONNREFUSED/],
      ['missing', { ANVIL_POLICY_DATABASE: pg.url('no_such_database_here'), ANVIL_MASTER_KEY: KEY }, /^anvil: cannot open the policy database at .*no_such_database_here/],
      ['wrong master key', { ANVIL_POLICY_DATABASE: url, ANVIL_MASTER_KEY: '22'.repeat(32) }, /^anvil: .*master key/i],
    ];
    for (const [name, env, line] of cases) {
      const run = await anvil(['credential', 'list'], { ANVIL_DATA_DIR: freshDir(), ...env });
      t.is(run.code, 1, `${name}: ${run.stderr}`);
      t.regex(run.stderr, line, name);
      t.is(run.stderr.trim().split('\n').length, 1, `${name}: one line: ${run.stderr}`);
      t.notRegex(run.stderr, /\n\s+at /, `${name}: no stack trace`);
    }
  });
}

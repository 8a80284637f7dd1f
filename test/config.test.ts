/**
 * Configuration: environment over config file, defaults, and a bad value of any setting stopping the start with the
 * variable named and what it expects — checked on loadConfig and on the real entry point as a child process.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { autoWorkers } from '../gateway/cpu-quota.ts';
import { ConfigError, loadConfig, parseAddress, SETTINGS, settingsTable } from '../gateway/config.ts';

const REPO = join(import.meta.dirname, '..');

test('defaults: loopback port 9000, ./data, embedded store, access log on, one worker per core', (t) => {
  const c = loadConfig({});
  t.is(c.workers, autoWorkers());
  t.is(loadConfig({ ANVIL_WORKERS: 'auto' }).workers, autoWorkers());
  t.is(loadConfig({ ANVIL_WORKERS: '1' }).workers, 1);
  t.is(c.host, '127.0.0.1');
  t.is(c.port, 9000);
  t.is(c.dataDir, join(process.cwd(), 'data'));
  t.is(c.backend, 'embedded');
  t.is(c.region, 'us-east-1');
  t.true(c.accessLog);
  t.is(c.logLevel, 'info');
  t.is(c.shutdownTimeoutMs, 30_000);
  t.is(c.tls, undefined);
  t.is(c.upstream.requestTimeoutMs, 30_000);
});

test('a JSON config file in camelCase, with the environment winning; numbers and booleans as JSON values', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'anvil-conf-'));
  const file = join(dir, 'anvil.json');
  writeFileSync(file, JSON.stringify({
    address: '127.0.0.1:9500', dataDir: '/srv/anvil', upstreamMapping: 'prefix', upstreamBucket: 'shared-bucket',
    denialsStdout: true, upstreamTimeoutMs: 5000, shutdownTimeoutMs: 0,
  }));
  const c = loadConfig({ ANVIL_CONFIG: file, ANVIL_ADDRESS: '[::1]:9600' });
  t.is(c.host, '::1');
  t.is(c.port, 9600);
  t.is(c.dataDir, '/srv/anvil');
  t.is(c.upstream.mapping, 'prefix');
  t.is(c.upstream.requestTimeoutMs, 5000);
  t.is(c.shutdownTimeoutMs, 0);
  t.true(c.denialsToStdout);
  writeFileSync(file, JSON.stringify({ adress: 'typo' }));
  t.throws(() => loadConfig({ ANVIL_CONFIG: file }), { message: /unknown setting "adress"/ });
  writeFileSync(file, JSON.stringify({ upstreamTimeoutMs: { ms: 5 } }));
  t.throws(() => loadConfig({ ANVIL_CONFIG: file }), { message: /upstreamTimeoutMs \(ANVIL_UPSTREAM_TIMEOUT_MS\).*integer from 100 to 600000/ });
  rmSync(dir, { recursive: true, force: true });
});

/** One bad value per setting that has a type or bound, and the words its error must contain. */
const BAD: Array<[Record<string, string>, RegExp]> = [
  [{ ANVIL_UPSTREAM_TIMEOUT_MS: 'abc' }, /ANVIL_UPSTREAM_TIMEOUT_MS: expected an integer from 100 to 600000 \(milliseconds\), got "abc"/],
  [{ ANVIL_UPSTREAM_TIMEOUT_MS: '10' }, /ANVIL_UPSTREAM_TIMEOUT_MS: expected an integer from 100/],
  [{ ANVIL_SHUTDOWN_TIMEOUT_MS: '-1' }, /ANVIL_SHUTDOWN_TIMEOUT_MS: expected an integer from 0 to 600000/],
  [{ ANVIL_ADDRESS: '9000' }, /ANVIL_ADDRESS: expected host:port/],
  [{ ANVIL_ADDRESS: '127.0.0.1:70000' }, /ANVIL_ADDRESS: expected host:port.*port 0-65535/],
  [{ ANVIL_HEALTH_ADDRESS: 'localhost' }, /ANVIL_HEALTH_ADDRESS: expected host:port/],
  [{ ANVIL_BACKEND: 's3' }, /ANVIL_BACKEND: expected embedded or upstream, got "s3"/],
  [{ ANVIL_ACCESS_LOG: 'maybe' }, /ANVIL_ACCESS_LOG: expected true or false/],
  [{ ANVIL_LOG_LEVEL: 'loud' }, /ANVIL_LOG_LEVEL: expected one of fatal, error/],
  [{ ANVIL_MASTER_KEY: 'short' }, /ANVIL_MASTER_KEY: expected 32 bytes as 64 hex digits/],
  [{ ANVIL_METRICS_TOKEN: 'tiny' }, /ANVIL_METRICS_TOKEN: expected 16 to 256 printable/],
  [{ ANVIL_UPSTREAM_ENDPOINT: 'minio:9000' }, /ANVIL_UPSTREAM_ENDPOINT: expected an http:\/\/ or https:\/\/ URL/],
  [{ ANVIL_REGION: 'US East' }, /ANVIL_REGION: expected a region name/],
  [{ ANVIL_ROOT_ACCESS_KEY: 'AKIAONLYTHEKEY000000' }, /ANVIL_ROOT_ACCESS_KEY and ANVIL_ROOT_SECRET_KEY: set both, or neither/],
  [{ ANVIL_TLS_CERT: '/etc/anvil/cert.pem' }, /ANVIL_TLS_CERT and ANVIL_TLS_KEY: set both, or neither/],
  [{ ANVIL_BACKEND: 'upstream' }, /ANVIL_UPSTREAM_ENDPOINT: expected an http:\/\/ or https:\/\/ URL when ANVIL_BACKEND=upstream/],
  [{ ANVIL_UPSTREAM_MAPPING: 'prefix' }, /ANVIL_UPSTREAM_BUCKET: expected an S3 bucket name when ANVIL_UPSTREAM_MAPPING=prefix/],
  [{ ANVIL_IDLE_TIMEOUT_MS: '5s' }, /ANVIL_IDLE_TIMEOUT_MS: expected an integer from 0 to 3600000 \(milliseconds\), got "5s"/],
  [{ ANVIL_SPACE_RESERVE_MB: '-1' }, /ANVIL_SPACE_RESERVE_MB: expected an integer from 0 to 1048576 \(MiB\)/],
];

test('each bad value is refused by loadConfig with the variable and what it expects', (t) => {
  for (const [env, message] of BAD) {
    const error = t.throws(() => loadConfig(env), { instanceOf: ConfigError }, JSON.stringify(env));
    t.regex(error!.message, message);
  }
  t.throws(() => parseAddress('9000'), { message: /host:port/ });
  // A secret that fails its check is described, never echoed: a one-digit typo would print the rest of the key.
  const key = 'a1'.repeat(31) + 'b';
  for (const [name, value] of [['ANVIL_MASTER_KEY', key], ['ANVIL_ROOT_SECRET_KEY', 'short-secret'], ['ANVIL_METRICS_TOKEN', 'token with spaces in it'], ['ANVIL_UPSTREAM_SECRET_KEY', 'x'.repeat(300)]] as const) {
    const error = t.throws(() => loadConfig({ [name]: value }), { instanceOf: ConfigError });
    t.regex(error!.message, new RegExp(`${name}: expected .*, got a value of ${value.length} characters \\(not shown`));
    t.false(error!.message.includes(value.slice(0, 10)), name);
  }
  const url = t.throws(() => loadConfig({ ANVIL_POLICY_DATABASE: 'mysql://anvil:hunter2@db/anvil' }), { instanceOf: ConfigError });
  t.regex(url!.message, /got "mysql:\/\/anvil:\*\*\*@db\/anvil"/);
  // Every problem at once, not the first only.
  const both = t.throws(() => loadConfig({ ANVIL_UPSTREAM_TIMEOUT_MS: 'abc', ANVIL_LOG_LEVEL: 'loud' }), { instanceOf: ConfigError });
  t.is(both!.problems.length, 2);
});

/** Starts the real entry point with only this environment (plus PATH); resolves with its exit status and stderr. */
function start(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
      cwd: REPO, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000,
    }, (_error, _stdout, stderr) => resolve({ code: child.exitCode, stderr }));
  });
}

test('the gateway refuses to start on each bad value, naming it (exit status 78), and opens nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'anvil-conf-'));
  try {
    const cases = BAD.slice(0, 6).concat(BAD.slice(13, 15));
    const runs = await Promise.all(cases.map(([env]) => start({ ...env, ANVIL_DATA_DIR: join(dir, 'data') })));
    runs.forEach((run, i) => {
      t.is(run.code, 78, run.stderr);
      t.regex(run.stderr, /^anvil: invalid configuration:\n/);
      t.regex(run.stderr, cases[i]![1]);
      t.notRegex(run.stderr, /\n\s+at /, 'no stack trace');
    });
    t.throws(() => readFileSync(join(dir, 'data', 'policy.db')), undefined, 'nothing was created');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the README configuration table is the one generated from SETTINGS', (t) => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  t.true(readme.includes(settingsTable()), 'run: npx tsx -e "import(\'./gateway/config.ts\').then(m => console.log(m.settingsTable()))" and paste it into README.md');
  for (const name of Object.keys(SETTINGS)) t.true(readme.includes(`\`${name}\``), name);
});

test('fault settings: idle timeout and space reserve, with their defaults and off switches', (t) => {
  const defaults = loadConfig({});
  t.is(defaults.idleTimeoutMs, 30_000);
  t.is(defaults.spaceReserveBytes, 64 * 1024 * 1024);
  const off = loadConfig({ ANVIL_IDLE_TIMEOUT_MS: '0', ANVIL_SPACE_RESERVE_MB: '0' });
  t.is(off.idleTimeoutMs, 0);
  t.is(off.spaceReserveBytes, 0);
});

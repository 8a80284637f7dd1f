/**
 * Real backup tools with a credential scoped to one prefix: restic, rclone and the AWS CLI run unchanged against
 * the gateway, and are refused outside their prefix. .ci/run installs the tools (Debian's restic and rclone, the
 * AWS CLI from PyPI) when a machine lacks them.
 */
import { CreateBucketCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pattern, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { sameBytes } from './helpers/bytes.ts';

const run = promisify(execFile);
interface Ctx extends TestGateway {
  creds: { accessKeyId: string; secretAccessKey: string };
  work: string;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const base = await startTestGateway();
  await base.s3.send(new CreateBucketCommand({ Bucket: 'backups' }));
  await base.gw.policy.createTenant({ name: 'ops' });
  await base.gw.policy.assignBucket('backups', 'ops', { reassign: true });
  await base.s3.send(new PutObjectCommand({ Bucket: 'backups', Key: 'backups/host2/private', Body: 'other host' }));
  const c = await base.gw.policy.createCredential({
    tenant: 'ops',
    name: 'nightly-host1',
    description: 'nightly backup of host1',
    scopes: [{ families: ['object:read', 'object:write', 'object:delete', 'object:list', 'bucket:read'], bucket: 'backups', prefix: 'backups/host1/' }],
  });
  const work = mkdtempSync(join(tmpdir(), 'anvil-tools-'));
  const src = join(work, 'src');
  mkdirSync(join(src, 'nested/deeper'), { recursive: true });
  writeFileSync(join(src, 'a.txt'), 'alpha\n');
  writeFileSync(join(src, 'nested/b.bin'), pattern(300_000));
  writeFileSync(join(src, 'nested/deeper/c.bin'), pattern(7 * 1024 * 1024));
  t.context = { ...base, creds: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretKey }, work };
});
test.after.always(async (t) => {
  rmSync(t.context.work, { recursive: true, force: true });
  await t.context.close();
});

function env(t: ExecutionContext<Ctx>, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // The gateway is plain HTTP on loopback; a machine-wide CA bundle setting only confuses the tools' TLS setup.
  const { AWS_CA_BUNDLE: _ca, ...rest } = process.env;
  return {
    ...rest,
    AWS_ACCESS_KEY_ID: t.context.creds.accessKeyId,
    AWS_SECRET_ACCESS_KEY: t.context.creds.secretAccessKey,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    HOME: t.context.work,
    ...extra,
  };
}

async function keysUnder(t: ExecutionContext<Ctx>, prefix: string): Promise<string[]> {
  const res = await t.context.s3.send(new ListObjectsV2Command({ Bucket: 'backups', Prefix: prefix }));
  return (res.Contents ?? []).map((c) => c.Key!);
}

test.serial('restic init, backup, snapshots, check and restore inside the prefix', async (t) => {
  const e = env(t, { RESTIC_REPOSITORY: `s3:${t.context.gw.url}/backups/backups/host1/restic`, RESTIC_PASSWORD: 'correct horse', RESTIC_CACHE_DIR: join(t.context.work, 'restic-cache') });
  await run('restic', ['init'], { env: e });
  await run('restic', ['backup', join(t.context.work, 'src')], { env: e });
  const snaps = JSON.parse((await run('restic', ['snapshots', '--json'], { env: e })).stdout);
  t.is(snaps.length, 1);
  await run('restic', ['check', '--read-data'], { env: e });
  const target = join(t.context.work, 'restored');
  await run('restic', ['restore', 'latest', '--target', target], { env: e });
  const restored = join(target, t.context.work, 'src', 'nested/deeper/c.bin');
  sameBytes(t, readFileSync(restored), readFileSync(join(t.context.work, 'src/nested/deeper/c.bin')));
  t.true((await keysUnder(t, 'backups/host1/restic/')).some((k) => k.endsWith('/config')));
  const outside = { ...e, RESTIC_REPOSITORY: `s3:${t.context.gw.url}/backups/backups/host2/restic` };
  await t.throwsAsync(run('restic', ['init'], { env: outside }));
  t.deepEqual(await keysUnder(t, 'backups/host2/'), ['backups/host2/private']);
});

test.serial('rclone sync and check into the prefix; refused outside it', async (t) => {
  const e = env(t, {
    RCLONE_CONFIG_GW_TYPE: 's3',
    RCLONE_CONFIG_GW_PROVIDER: 'Other',
    RCLONE_CONFIG_GW_ENDPOINT: t.context.gw.url,
    RCLONE_CONFIG_GW_ACCESS_KEY_ID: t.context.creds.accessKeyId,
    RCLONE_CONFIG_GW_SECRET_ACCESS_KEY: t.context.creds.secretAccessKey,
    RCLONE_CONFIG_GW_REGION: 'us-east-1',
    RCLONE_CONFIG: join(t.context.work, 'rclone.conf'),
  });
  const src = join(t.context.work, 'src');
  await run('rclone', ['sync', src, 'gw:backups/backups/host1/rclone'], { env: e });
  await run('rclone', ['check', src, 'gw:backups/backups/host1/rclone'], { env: e });
  t.deepEqual((await keysUnder(t, 'backups/host1/rclone/')).sort(), [
    'backups/host1/rclone/a.txt',
    'backups/host1/rclone/nested/b.bin',
    'backups/host1/rclone/nested/deeper/c.bin',
  ]);
  await t.throwsAsync(run('rclone', ['copy', src, 'gw:backups/backups/host2/rclone', '--retries', '1', '--low-level-retries', '1'], { env: e }));
  t.deepEqual(await keysUnder(t, 'backups/host2/'), ['backups/host2/private']);
});

test.serial('aws s3 sync into the prefix, ls of the bucket root is filtered', async (t) => {
  const e = env(t);
  const src = join(t.context.work, 'src');
  await run('aws', ['--endpoint-url', t.context.gw.url, 's3', 'sync', src, 's3://backups/backups/host1/aws'], { env: e });
  t.is((await keysUnder(t, 'backups/host1/aws/')).length, 3);
  const ls = (await run('aws', ['--endpoint-url', t.context.gw.url, 's3', 'ls', 's3://backups/'], { env: e })).stdout;
  t.regex(ls, /PRE backups\//);
  t.notRegex(ls, /host2/);
  const back = join(t.context.work, 'aws-back');
  await run('aws', ['--endpoint-url', t.context.gw.url, 's3', 'sync', 's3://backups/backups/host1/aws', back], { env: e });
  sameBytes(t, readFileSync(join(back, 'nested/deeper/c.bin')), readFileSync(join(src, 'nested/deeper/c.bin')));
  await t.throwsAsync(run('aws', ['--endpoint-url', t.context.gw.url, 's3', 'cp', join(src, 'a.txt'), 's3://backups/backups/host2/a.txt'], { env: e }));
  t.deepEqual(await keysUnder(t, 'backups/host2/'), ['backups/host2/private']);
});

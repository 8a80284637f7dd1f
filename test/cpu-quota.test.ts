/**
 * `ANVIL_WORKERS=auto` within the cgroup's CPU quota (gateway/cpu-quota.ts): the cgroup v2 `cpu.max` and v1
 * `cpu.cfs_quota_us` formats on prepared file trees, and the real gateway started with `auto`, unconfined and inside
 * a CPU cgroup with a one-CPU quota that the test creates (when the machine lets it).
 */
import { S3Client, ListBucketsCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { autoWorkers, cgroupCpuQuota, parseCfsQuota, parseCpuMax, workersForQuota } from '../gateway/cpu-quota.ts';
import { ROOT } from './helpers/gateway.ts';

const REPO = join(import.meta.dirname, '..');

test('cpu.max: "max" is no quota, "<quota> <period>" is quota/period CPUs; anything else is ignored', (t) => {
  t.is(parseCpuMax('max 100000\n'), undefined);
  t.is(parseCpuMax('200000 100000\n'), 2);
  t.is(parseCpuMax('150000 100000'), 1.5);
  t.is(parseCpuMax('50000 100000'), 0.5);
  t.is(parseCpuMax('100000'), 1, 'the period defaults to 100000');
  for (const bad of ['', 'max max', '-1 100000', '0 100000', '100000 0', 'lots']) t.is(parseCpuMax(bad), undefined, JSON.stringify(bad));
  t.is(parseCfsQuota('-1\n', '100000\n'), undefined);
  t.is(parseCfsQuota('250000\n', '100000\n'), 2.5);
});

test('workers: ceil(quota), at least 1, at most the cores available; no quota means every core', (t) => {
  t.is(workersForQuota(undefined, 8), 8);
  t.is(workersForQuota(2, 8), 2);
  t.is(workersForQuota(1.5, 8), 2);
  t.is(workersForQuota(0.5, 8), 1);
  t.is(workersForQuota(16, 8), 8);
});

/** A file tree shaped like / for cgroupCpuQuota: `files` maps paths under it to contents. */
function fakeRoot(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'anvil-cgroup-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

test('cgroup v2: the quota of the own cgroup, or a smaller one above it; a namespaced "/" reads the mount root', (t) => {
  const roots = [
    fakeRoot({ 'proc/self/cgroup': '0::/\n', 'sys/fs/cgroup/cpu.max': '300000 100000\n' }),
    fakeRoot({ 'proc/self/cgroup': '0::/\n', 'sys/fs/cgroup/cpu.max': 'max 100000\n' }),
    fakeRoot({ 'proc/self/cgroup': '0::/kubepods/pod1/c1\n', 'sys/fs/cgroup/kubepods/pod1/c1/cpu.max': 'max 100000\n', 'sys/fs/cgroup/kubepods/pod1/cpu.max': '150000 100000\n', 'sys/fs/cgroup/kubepods/cpu.max': 'max 100000\n' }),
    fakeRoot({ 'proc/self/cgroup': '0::/a/b\n', 'sys/fs/cgroup/a/b/cpu.max': '400000 100000\n', 'sys/fs/cgroup/a/cpu.max': '100000 100000\n' }),
    fakeRoot({}),
  ];
  try {
    t.is(cgroupCpuQuota(roots[0]), 3);
    t.is(cgroupCpuQuota(roots[1]), undefined);
    t.is(cgroupCpuQuota(roots[2]), 1.5, "the pod's limit binds its container");
    t.is(cgroupCpuQuota(roots[3]), 1, 'the smallest along the path');
    t.is(cgroupCpuQuota(roots[4]), undefined, 'no cgroup files: no quota');
    t.is(autoWorkers(roots[4]), availableParallelism());
    t.is(autoWorkers(roots[3]), 1);
  } finally {
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  }
});

test('cgroup v1: cpu.cfs_quota_us over cpu.cfs_period_us, on the cpu or cpu,cpuacct hierarchy', (t) => {
  const limited = fakeRoot({ 'proc/self/cgroup': '4:cpu,cpuacct:/docker/abc\n1:memory:/docker/abc\n', 'sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '200000\n', 'sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000\n', 'sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '-1\n', 'sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n' });
  const open = fakeRoot({ 'proc/self/cgroup': '2:cpu:/\n', 'sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n', 'sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' });
  try {
    t.is(cgroupCpuQuota(limited), 2);
    t.is(cgroupCpuQuota(open), undefined);
  } finally {
    rmSync(limited, { recursive: true, force: true });
    rmSync(open, { recursive: true, force: true });
  }
});

/**
 * `gateway/main.ts` with ANVIL_WORKERS=auto, optionally moved into `cgroupDir` before Node starts; resolves with the
 * workers its listening line reports once a ListBuckets through it has been answered.
 */
async function startAuto(t: import('ava').ExecutionContext, cgroupDir?: string): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), 'anvil-auto-'));
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ANVIL_'))), ANVIL_WORKERS: 'auto', ANVIL_ADDRESS: '127.0.0.1:0', ANVIL_DATA_DIR: dataDir, ANVIL_ROOT_ACCESS_KEY: ROOT.accessKeyId, ANVIL_ROOT_SECRET_KEY: ROOT.secretAccessKey };
  const node = `exec "${process.execPath}" --import tsx gateway/main.ts`;
  const child = spawn('sh', ['-c', cgroupDir ? `echo $$ > "${cgroupDir}/cgroup.procs" && ${node}` : node], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    const listening = await new Promise<{ url: string; workers: number }>((resolve, reject) => {
      let pending = '';
      child.stdout!.on('data', (d: Buffer) => {
        const lines = (pending + d.toString()).split('\n');
        pending = lines.pop()!;
        for (const line of lines) if (line.includes('"msg":"listening"')) resolve(JSON.parse(line) as { url: string; workers: number });
      });
      void exited.then(() => reject(new Error(`the gateway exited before listening: ${stderr}`)));
    });
    const s3 = new S3Client({ endpoint: listening.url, region: 'us-east-1', credentials: ROOT, forcePathStyle: true });
    const buckets = await s3.send(new ListBucketsCommand({}));
    s3.destroy();
    t.deepEqual(buckets.Buckets ?? [], [], 'it serves');
    return listening.workers;
  } finally {
    child.kill('SIGTERM');
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  }
}

test('the gateway starts with ANVIL_WORKERS=auto: one worker per core available within the quota', async (t) => {
  t.is(await startAuto(t), autoWorkers());
});

test('ANVIL_WORKERS=auto inside a CPU cgroup with a one-CPU quota starts one worker, whatever the core count', async (t) => {
  // cgroup v1 here: a v2-only machine (or one that refuses new cgroups) leaves only the file-format cases above.
  const hierarchy = ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpu,cpuacct'].find((d) => {
    try {
      return mkdirSync(join(d, `anvil-probe-${process.pid}`)) === undefined && (rmdirSync(join(d, `anvil-probe-${process.pid}`)), true);
    } catch {
      return false;
    }
  });
  if (!hierarchy) {
    t.log('no writable cgroup v1 CPU hierarchy here: the quota case runs on the prepared file trees only');
    t.pass();
    return;
  }
  const dir = join(hierarchy, `anvil-test-${process.pid}`);
  mkdirSync(dir);
  try {
    writeFileSync(join(dir, 'cpu.cfs_period_us'), '100000');
    writeFileSync(join(dir, 'cpu.cfs_quota_us'), '100000');
    t.is(await startAuto(t, dir), 1);
  } finally {
    rmdirSync(dir);
  }
});

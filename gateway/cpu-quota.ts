/**
 * How many worker processes `ANVIL_WORKERS=auto` starts: one per core the process may use. Node's
 * os.availableParallelism() follows CPU affinity and cpusets but not a container's CPU quota (`docker run --cpus=2`,
 * a Kubernetes CPU limit), which the kernel enforces through the cgroup's CPU bandwidth control: more workers than
 * the quota only share the same CPU time and get throttled. Read by hand because it is two small kernel files (no
 * maintained npm package reads them); the rule is the one Go 1.25's runtime and the JVM apply for their own
 * parallelism: ceil(quota / period), at least 1, at most the cores available, the smallest along the cgroup's path.
 * Formats: cgroup v2 `cpu.max` (https://docs.kernel.org/admin-guide/cgroup-v2.html#cpu-interface-files), cgroup v1
 * `cpu.cfs_quota_us` / `cpu.cfs_period_us` (https://docs.kernel.org/scheduler/sched-bwc.html).
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * The CPUs a cgroup v2 `cpu.max` allows: `"max 100000"` → undefined (no quota), `"150000 100000"` → 1.5.
 * Undefined as well for text that is not the format (the caller then ignores the file).
 */
export function parseCpuMax(text: string): number | undefined {
  const match = /^(max|\d+)(?:\s+(\d+))?\s*$/.exec(text.trim());
  if (!match || match[1] === 'max') return undefined;
  const quota = Number(match[1]);
  const period = Number(match[2] ?? 100_000);
  return quota > 0 && period > 0 ? quota / period : undefined;
}

/** The CPUs a cgroup v1 quota allows: `cpu.cfs_quota_us` `-1` → undefined (no quota), `200000` over `100000` → 2. */
export function parseCfsQuota(quotaText: string, periodText: string): number | undefined {
  const quota = Number(quotaText.trim());
  const period = Number(periodText.trim());
  return Number.isInteger(quota) && quota > 0 && Number.isInteger(period) && period > 0 ? quota / period : undefined;
}

/** Worker processes for `cpus` of quota on a machine with `cores` available: ceil, at least 1, at most `cores`. */
export function workersForQuota(cpus: number | undefined, cores: number): number {
  if (cpus === undefined) return cores;
  return Math.max(1, Math.min(cores, Math.ceil(cpus)));
}

const read = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/** Where this process sits in each hierarchy, from /proc/self/cgroup: "0::/path" (v2), "N:cpu,cpuacct:/path" (v1). */
function ownCgroups(procSelfCgroup: string): { v2?: string; v1Cpu?: string } {
  const out: { v2?: string; v1Cpu?: string } = {};
  for (const line of procSelfCgroup.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const [id, controllers, path] = [line.slice(0, first), line.slice(first + 1, second), line.slice(second + 1)];
    if (id === '0' && controllers === '') out.v2 = path;
    else if (controllers.split(',').includes('cpu')) out.v1Cpu = path;
  }
  return out;
}

/** The smallest quota found from `leaf` up to `root` (a parent's limit binds its children too). */
function smallestUpward(root: string, leaf: string, quotaAt: (dir: string) => number | undefined): number | undefined {
  let smallest: number | undefined;
  for (let dir = join(root, leaf); ; dir = dirname(dir)) {
    const cpus = quotaAt(dir);
    if (cpus !== undefined) smallest = Math.min(smallest ?? cpus, cpus);
    if (dir === root || !dir.startsWith(root)) return smallest;
  }
}

/**
 * The CPU quota of this process's cgroup, in CPUs, or undefined when there is none (or no cgroup file to read).
 * `fsRoot` is where the files are read from: `/` on a real system, a prepared directory in tests.
 */
export function cgroupCpuQuota(fsRoot = '/'): number | undefined {
  const own = ownCgroups(read(join(fsRoot, 'proc/self/cgroup')) ?? '');
  const mount = join(fsRoot, 'sys/fs/cgroup');
  // A cgroup namespace (the container default) shows its own cgroup as "/"; without one the path is the host's.
  const v2 = smallestUpward(mount, own.v2 ?? '/', (dir) => {
    const text = read(join(dir, 'cpu.max'));
    return text === undefined ? undefined : parseCpuMax(text);
  });
  if (v2 !== undefined) return v2;
  const v1Root = [join(mount, 'cpu'), join(mount, 'cpu,cpuacct')].find((d) => read(join(d, 'cpu.cfs_period_us')) !== undefined);
  if (!v1Root) return undefined;
  return smallestUpward(v1Root, own.v1Cpu ?? '/', (dir) => {
    const quota = read(join(dir, 'cpu.cfs_quota_us'));
    const period = read(join(dir, 'cpu.cfs_period_us'));
    return quota === undefined || period === undefined ? undefined : parseCfsQuota(quota, period);
  });
}

/** What `ANVIL_WORKERS=auto` means here: one worker per core available, within the cgroup's CPU quota. */
export function autoWorkers(fsRoot = '/'): number {
  return workersForQuota(cgroupCpuQuota(fsRoot), availableParallelism());
}

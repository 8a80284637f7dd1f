/**
 * The servers the bench compares, each in its own process started here: the gateway exactly as `npm start` runs it
 * (on its embedded store, or in front of MinIO), MinIO itself, a bare Node proxy in front of that MinIO (the ceiling
 * of any proxy hop) and a bare Node HTTP server (the ceiling). Also the peak-RSS probe the memory rows read from /proc.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT } from '../helpers/gateway.ts';
import { listeningUrl } from '../helpers/gateway-process.ts';
import { startMinio } from '../helpers/minio.ts';

/** The repository root: servers run with it as their working directory, as `npm start` does. */
export const REPO = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** The five columns of the table, in order. */
export const SERVERS = ['gateway', 'minio', 'upstream', 'proxy', 'forwarder', 'bare'] as const;

/**
 * One of the compared servers: the embedded gateway, MinIO direct, the gateway in front of MinIO, a bare Node proxy
 * in front of MinIO, a TCP forwarder in front of MinIO, bare Node.
 */
export type ServerName = (typeof SERVERS)[number];

/** Column headings of the table. */
export const SERVER_TITLES: Record<ServerName, string> = {
  gateway: 'gateway (embedded)',
  minio: 'MinIO direct',
  upstream: 'gateway → that MinIO',
  proxy: 'bare Node proxy → that MinIO',
  forwarder: 'TCP forwarder → that MinIO',
  bare: 'bare Node HTTP server',
};

/** Credentials a client signs with. */
export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** A running server process the load generator can drive. */
export interface BenchServer {
  name: ServerName;
  /** `http://127.0.0.1:<port>` */
  url: string;
  creds: Credentials;
  /** The process whose memory the RSS rows report. */
  pid: number;
  /** Stops the process (SIGTERM, so a `--cpu-prof` profile is written) and removes the data it created. */
  close(): Promise<void>;
}

/**
 * The gateway's command line: `npm start`'s (`node dist/gateway/main.js`, built first by ensureGatewayBuilt), run by
 * node directly so the pid is the gateway's own.
 */
export function gatewayCommand(nodeArgs: string[] = []): string[] {
  return [process.execPath, ...nodeArgs, 'dist/gateway/main.js'];
}

let built = false;

/** Compiles dist/ when it is missing or older than the sources, as `npm start`'s prestart step does. */
export function ensureGatewayBuilt(): void {
  if (built) return;
  execFileSync(process.execPath, ['bin/build-if-stale.js'], { cwd: REPO, stdio: 'inherit' });
  built = true;
}

/** Node options every gateway process gets, e.g. `--cpu-prof --cpu-prof-dir=…` when profiling. */
let gatewayNodeArgs: string[] = [];

/** Sets extra node options for the gateway processes started from now on. */
export function setGatewayNodeArgs(args: string[]): void {
  gatewayNodeArgs = args;
}

/** A child process whose output is drained (a full pipe would stall it) and whose last lines are kept for errors. */
function launch(argv: string[], env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const [cmd, ...args] = argv;
  const child = spawn(cmd!, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (d: Buffer) => {
    log = (log + d.toString()).slice(-8000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  // The bench dying must not leave servers behind.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  child.once('exit', () => process.off('exit', reap));
  return { child, output: () => log };
}

/** Waits until `urlIn` finds the URL in what the process printed. */
function waitForUrl(child: ChildProcess, output: () => string, urlIn: (output: string) => string | undefined, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${what} did not start within 60 s:\n${output()}`)), 60_000);
    const onData = () => {
      const url = urlIn(output());
      if (url) done(() => resolve(url));
    };
    const onExit = (code: number | null) => fail(new Error(`${what} exited with ${code}:\n${output()}`));
    const done = (then: () => void) => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
      then();
    };
    const fail = (err: Error) => done(() => reject(err));
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });
}

/** SIGTERM, then SIGKILL after 10 s; resolves once the process is gone. */
function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Starts a gateway process on a free loopback port. `dataDir` may be prepared beforehand (the listing keys); `env`
 * adds ANVIL_* settings (the upstream backend).
 */
export async function startGatewayProcess(opts: {
  name: 'gateway' | 'upstream';
  /** An existing data directory, left in place by close(); default a new one under `parent`, removed by close(). */
  dataDir?: string;
  parent?: string;
  env?: Record<string, string>;
}): Promise<BenchServer> {
  ensureGatewayBuilt();
  const dataDir = opts.dataDir ?? mkdtempSync(join(opts.parent ?? tmpdir(), 'anvil-bench-gw-'));
  const { child, output } = launch(gatewayCommand(gatewayNodeArgs), {
    ANVIL_ADDRESS: '127.0.0.1:0',
    ANVIL_DATA_DIR: dataDir,
    ANVIL_ROOT_ACCESS_KEY: ROOT.accessKeyId,
    ANVIL_ROOT_SECRET_KEY: ROOT.secretAccessKey,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    // One worker unless the run asks for more (ANVIL_WORKERS=2 npm run bench …): the tables compare like with like.
    ANVIL_WORKERS: process.env.ANVIL_WORKERS ?? '1',
    ...opts.env,
  });
  const url = await waitForUrl(child, output, listeningUrl, `gateway (${opts.name})`);
  return {
    name: opts.name,
    url,
    creds: ROOT,
    pid: child.pid!,
    async close() {
      await terminate(child);
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** MinIO as the bench runs it: a server plus what a gateway needs to use it as its upstream. */
export type MinioBenchServer = BenchServer & { accessKey: string; secretKey: string; endpoint: string };

/** Starts a gateway process in front of `minio` (ANVIL_BACKEND=upstream, one upstream bucket per bucket). */
export function startUpstreamGatewayProcess(minio: MinioBenchServer, parent?: string): Promise<BenchServer> {
  return startGatewayProcess({
    name: 'upstream',
    parent,
    env: {
      ANVIL_BACKEND: 'upstream',
      ANVIL_UPSTREAM_ENDPOINT: minio.endpoint,
      ANVIL_UPSTREAM_ACCESS_KEY: minio.accessKey,
      ANVIL_UPSTREAM_SECRET_KEY: minio.secretKey,
    },
  });
}

/** Starts the bare Node HTTP server (bare-server.ts) in its own process. */
export async function startBareProcess(): Promise<BenchServer> {
  const { child, output } = launch([process.execPath, '--import=tsx', 'test/bench/bare-server.ts'], {});
  const url = await waitForUrl(child, output, (out) => /listening on (http:\/\/\S+)/.exec(out)?.[1], 'bare server');
  return { name: 'bare', url, creds: { accessKeyId: 'bare', secretAccessKey: 'bare' }, pid: child.pid!, close: () => terminate(child) };
}

/**
 * Starts the bare Node proxy (bare-proxy.ts) in front of `minio`, in its own process. It forwards the Host header as
 * it gets it, so a client signs for the proxy's URL with MinIO's credentials and MinIO verifies that signature.
 */
export async function startBareProxyProcess(minio: MinioBenchServer): Promise<BenchServer> {
  const { child, output } = launch([process.execPath, '--import=tsx', 'test/bench/bare-proxy.ts', minio.endpoint], {});
  const url = await waitForUrl(child, output, (out) => /listening on (http:\/\/\S+)/.exec(out)?.[1], 'bare proxy');
  return { name: 'proxy', url, creds: minio.creds, pid: child.pid!, close: () => terminate(child) };
}

/**
 * Starts the TCP forwarder (tcp-forwarder.ts) in front of `minio`, in its own process: the ceiling of any hop, since
 * it parses nothing. Like the proxy, a client signs for its URL with MinIO's credentials.
 */
export async function startTcpForwarderProcess(minio: MinioBenchServer): Promise<BenchServer> {
  const { child, output } = launch([process.execPath, '--import=tsx', 'test/bench/tcp-forwarder.ts', minio.endpoint], {});
  const url = await waitForUrl(child, output, (out) => /listening on (http:\/\/\S+)/.exec(out)?.[1], 'TCP forwarder');
  return { name: 'forwarder', url, creds: minio.creds, pid: child.pid!, close: () => terminate(child) };
}

/** Where RAM-backed scratch data can go: /dev/shm when it is a usable tmpfs with room, else the temp directory. */
export function memoryDir(): string {
  try {
    const fs = statfsSync('/dev/shm');
    if (fs.bavail * fs.bsize > 4 * 2 ** 30) return '/dev/shm';
  } catch {
    // No /dev/shm here.
  }
  return tmpdir();
}

/** The pid of the process whose command line names `needle` (MinIO's listen address), found in /proc. */
function pidByCommandLine(needle: string): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes(needle)) return Number(entry);
    } catch {
      // Gone meanwhile.
    }
  }
  throw new Error(`no process with ${needle} on its command line`);
}

/**
 * MinIO, started by the test helper (its binary comes from test/tools/minio.sh), its data under `parent` (default:
 * the temp directory).
 */
export async function startMinioProcess(parent?: string): Promise<MinioBenchServer> {
  // The helper makes its data directory in os.tmpdir() before its first await, so TMPDIR can point it elsewhere.
  const saved = process.env.TMPDIR;
  if (parent) process.env.TMPDIR = parent;
  const starting = startMinio();
  if (saved === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = saved;
  const minio = await starting;
  return {
    name: 'minio',
    url: minio.endpoint,
    endpoint: minio.endpoint,
    accessKey: minio.accessKey,
    secretKey: minio.secretKey,
    creds: { accessKeyId: minio.accessKey, secretAccessKey: minio.secretKey },
    pid: pidByCommandLine(`127.0.0.1:${minio.port}`),
    close: () => minio.close(),
  };
}

/** Clock ticks per second of /proc/<pid>/stat's CPU times. */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** The fields of /proc/<pid>/stat after the parenthesized command name (index 0 is field 3, the state). */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The live child processes of `pid` (a gateway's worker processes under ANVIL_WORKERS). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** CPU seconds (user + system) a process and its children (live, or exited and waited for) have used so far. */
export function cpuSeconds(pid: number): number {
  // utime is field 14, stime 15, cutime 16 and cstime 17.
  const fields = statFields(pid);
  const own = (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS;
  return own + childrenOf(pid).reduce((sum, child) => sum + cpuSeconds(child), 0);
}

/**
 * Resident set size in MiB of a process and its live children: the current value, and the peak since the last
 * resetPeakRss() (with children, the sum of their peaks: an upper bound).
 */
export function rssMiB(pid: number): { current: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  const total = { current: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
  for (const child of childrenOf(pid)) {
    const c = rssMiB(child);
    total.current += c.current;
    total.peak += c.peak;
  }
  return total;
}

/** Resets the kernel's peak-RSS mark of a process (clear_refs 5, Linux ≥ 4.0); false when not permitted. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    for (const child of childrenOf(pid)) writeFileSync(`/proc/${child}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Measures a process's peak RSS while `work` runs: the kernel's high-water mark when it could be reset, else the
 * highest of samples taken every 20 ms.
 */
export async function peakRssDuring<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; peakMiB: number }> {
  const reset = resetPeakRss(pid);
  let sampled = rssMiB(pid).current;
  const timer = setInterval(() => {
    sampled = Math.max(sampled, rssMiB(pid).current);
  }, 20);
  try {
    const result = await work();
    const { current, peak } = rssMiB(pid);
    return { result, peakMiB: Math.max(sampled, current, reset ? peak : 0) };
  } finally {
    clearInterval(timer);
  }
}

/**
 * The load generators, always separate processes driving every server the same way: wrk replaying pre-built requests
 * (small objects; installed from Debian when missing) and curl for large objects, whose count and timing must be
 * exact (wrk's fixed duration would cut 64 MiB transfers off mid-body).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './servers.ts';

/** What one workload achieved. */
export interface LoadResult {
  ops: number;
  seconds: number;
  bytes: number;
  /** Connection errors, timeouts and non-2xx answers. */
  errors: number;
  p50Ms?: number;
  p99Ms?: number;
}

function onPath(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Installs wrk (Debian's package) and curl when missing; throws when that fails. */
export function ensureLoadGenerators(): void {
  if (onPath('wrk') && onPath('curl')) return;
  execFileSync('bash', [join(REPO, 'test/bench/install-load-generators.sh')], { stdio: 'inherit' });
}

/** Runs a process to completion (in the repository, with `env` added); its stdout, or an error with its output. */
export function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited with ${code}: ${err}`))));
  });
}

/**
 * Replays `requests` round-robin over `connections` keep-alive connections for `seconds`, with wrk (one thread per
 * core at most).
 */
export async function wrk(opts: { url: string; requests: Buffer[]; connections: number; seconds: number }): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'anvil-bench-wrk-'));
  try {
    const file = join(dir, 'requests');
    writeFileSync(file, Buffer.concat(opts.requests.flatMap((r) => [Buffer.from(`${r.length}\n`), r])));
    const threads = Math.min(2, opts.connections);
    const out = await run('wrk', [
      `-t${threads}`, `-c${opts.connections}`, `-d${opts.seconds}s`, '--timeout', '30s',
      '-s', join(REPO, 'test/bench/replay.lua'), opts.url, '--', file,
    ]);
    const line = out.split('\n').reverse().find((l) => l.startsWith('{"requests"'));
    if (!line) throw new Error(`wrk printed no summary:\n${out}`);
    const s = JSON.parse(line) as Record<string, number>;
    return {
      ops: s.requests!,
      seconds: s.duration_us! / 1e6,
      bytes: s.bytes!,
      errors: s.connect! + s.read! + s.write! + s.status! + s.timeout!,
      p50Ms: s.p50_us! / 1000,
      p99Ms: s.p99_us! / 1000,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One curl transfer: its status, its own timing (connection included, process start not) and bytes moved. */
async function curlOnce(url: string, upload?: string): Promise<{ ok: boolean; seconds: number; bytes: number }> {
  // No Expect: 100-continue, so no server is judged on how it answers it.
  const args = ['-sS', '-o', '/dev/null', '-H', 'Expect:', '-w', '%{http_code} %{time_total} %{size_upload} %{size_download}'];
  if (upload) args.push('-T', upload);
  let output: string;
  try {
    output = await run('curl', [...args, url]);
  } catch (err) {
    process.stderr.write(`curl failed: ${(err as Error).message}\n`);
    return { ok: false, seconds: 0, bytes: 0 };
  }
  const [code, total, up, down] = output.trim().split(' ').map(Number) as [number, number, number, number];
  if (code !== 200 || !Number.isFinite(total) || !Number.isFinite(up) || !Number.isFinite(down)) {
    process.stderr.write(`curl: unexpected answer "${output.trim()}" from ${new URL(url).pathname}\n`);
    return { ok: false, seconds: Number.isFinite(total) ? total : 0, bytes: 0 };
  }
  return { ok: true, seconds: total, bytes: upload ? up : down };
}

/**
 * Large-object transfers with curl: one after another (`parallel` false: the time is the sum of curl's own transfer
 * times) or all at once, one curl process each (the time is the wall time until the last one finished).
 * `upload` names the file PUT to each URL; without it each URL is fetched.
 */
export async function curlTransfers(opts: { urls: string[]; upload?: string; parallel: boolean }): Promise<LoadResult> {
  const results: Array<{ ok: boolean; seconds: number; bytes: number }> = [];
  let seconds = 0;
  if (opts.parallel) {
    const started = performance.now();
    results.push(...(await Promise.all(opts.urls.map((u) => curlOnce(u, opts.upload)))));
    seconds = (performance.now() - started) / 1000;
  } else {
    for (const u of opts.urls) results.push(await curlOnce(u, opts.upload));
    seconds = results.reduce((s, r) => s + r.seconds, 0);
  }
  return {
    ops: results.length,
    seconds,
    bytes: results.reduce((s, r) => s + r.bytes, 0),
    errors: results.filter((r) => !r.ok).length,
  };
}

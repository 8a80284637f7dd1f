/**
 * A gateway in its own process, started as `npm start` starts it (gateway/main.ts) with the environment given, on
 * loopback port 0 (its URL read from its `listening` log line, so no other process can take the port first): for
 * tests where nodes must be separate processes (the multi-node test kills one mid-load).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const REPO = join(import.meta.dirname, '../..');

/** A running gateway process. */
export interface GatewayProcess {
  url: string;
  port: number;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** The complete lines it printed on stdout so far (its JSON log lines), never mixed with stderr. */
  stdoutLines(): string[];
  /** Ends it at once, as a crash or a power cut would (SIGKILL). */
  kill(): Promise<void>;
  /** Stops it gracefully (SIGTERM), then SIGKILL after a grace period. */
  stop(): Promise<void>;
}

/** The URL in the gateway's JSON log line `{"msg":"listening","url":…}`, once it is printed. */
export function listeningUrl(output: string): string | undefined {
  for (const line of output.split('\n')) {
    if (!line.includes('"msg":"listening"')) continue;
    try {
      return (JSON.parse(line) as { url?: string }).url;
    } catch {
      return undefined; // the line is still arriving
    }
  }
  return undefined;
}

/** Starts a gateway process and waits until it listens. */
export async function startGatewayProcess(env: Record<string, string>): Promise<GatewayProcess> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
    cwd: REPO,
    // One process unless the test asks for workers: a kill() then ends the whole node, as a crash of its host would.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ANVIL_WORKERS: '1', ...env, ANVIL_ADDRESS: '127.0.0.1:0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const capture = (d: Buffer) => {
    log = (log + d.toString()).slice(-200_000);
  };
  const lines: string[] = [];
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  child.stdout!.on('data', capture);
  child.stderr!.on('data', capture);
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => process.off('exit', reap));
  const deadline = Date.now() + 120_000;
  let url: string | undefined;
  while (url === undefined) {
    if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}:\n${log}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`gateway did not start within 120 s:\n${log}`);
    }
    url = listeningUrl(log);
    if (url === undefined) await new Promise((r) => setTimeout(r, 100));
  }
  const port = Number(new URL(url).port);
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  return { url, port, output: () => log, stdoutLines: () => lines, kill: () => end('SIGKILL'), stop: () => end('SIGTERM') };
}

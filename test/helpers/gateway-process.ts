/**
 * A gateway in its own process, started as `npm start` starts it (gateway/main.ts) with the environment given, on a
 * free loopback port: for tests where nodes must be separate processes (the multi-node test kills one mid-load).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from './minio.ts';

const REPO = join(import.meta.dirname, '../..');

/** A running gateway process. */
export interface GatewayProcess {
  url: string;
  port: number;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Ends it at once, as a crash or a power cut would (SIGKILL). */
  kill(): Promise<void>;
  /** Stops it gracefully (SIGTERM), then SIGKILL after a grace period. */
  stop(): Promise<void>;
}

/** Starts a gateway process and waits until it answers HTTP. */
export async function startGatewayProcess(env: Record<string, string>): Promise<GatewayProcess> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
    cwd: REPO,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env, ANVIL_ADDRESS: `127.0.0.1:${port}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const capture = (d: Buffer) => {
    log = (log + d.toString()).slice(-200_000);
  };
  child.stdout!.on('data', capture);
  child.stderr!.on('data', capture);
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => process.off('exit', reap));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}:\n${log}`);
    try {
      await fetch(url, { signal: AbortSignal.timeout(1000) });
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`gateway did not answer within 120 s:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  return { url, port, output: () => log, kill: () => end('SIGKILL'), stop: () => end('SIGTERM') };
}

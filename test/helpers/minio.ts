/**
 * A real MinIO server for upstream tests: loopback only, a free port, a temporary data directory, root credentials
 * from MINIO_ROOT_USER / MINIO_ROOT_PASSWORD. The binary comes from test/tools/minio.sh (or MINIO_BIN).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { Agent, createServer as createHttpServer, request, type IncomingMessage } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import type { TestFn } from 'ava';
import type { UpstreamConfig } from '../../storage/upstream/index.ts';

/** Where test/tools/minio.sh puts the binary, unless MINIO_BIN names another. */
export const MINIO_BIN = process.env.MINIO_BIN ?? join(process.env.ANVIL_CACHE ?? join(homedir(), '.cache/anvil'), 'bin/minio');

/** Credentials the test servers run with. */
export const MINIO_CREDENTIALS = {
  accessKey: process.env.MINIO_ROOT_USER ?? 'anvil-test-root',
  secretKey: process.env.MINIO_ROOT_PASSWORD ?? 'anvil-test-root-secret',
};

/** A running (or stopped, then restartable) MinIO. */
export interface MinioServer {
  endpoint: string;
  port: number;
  accessKey: string;
  secretKey: string;
  /** Stops the process (SIGTERM, then SIGKILL after a grace period); the data stays for start(). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Stops it and deletes its data. */
  close(): Promise<void>;
}

/**
 * True when MinIO can run here. Otherwise registers one failing test saying how to build it: `npm test` builds it
 * first (its pretest step), so a missing server means the build failed, and that must never pass silently.
 */
export function minioOrExplain<C>(test: TestFn<C>, area: string): boolean {
  if (existsSync(MINIO_BIN)) return true;
  const why = `MinIO binary not found at ${MINIO_BIN}: run test/tools/minio.sh (or set MINIO_BIN)`;
  test(`${area}: MinIO is available`, (t) => t.fail(why));
  return false;
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function waitLive(endpoint: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`MinIO exited with ${child.exitCode}:\n${output()}`);
    try {
      const res = await fetch(`${endpoint}/minio/health/live`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`MinIO did not become live within 60 s:\n${output()}`);
}

/** Starts MinIO on a free loopback port with a fresh data directory (made under `under`, default the temp dir). */
export async function startMinio(options: { under?: string } = {}): Promise<MinioServer> {
  const dataDir = mkdtempSync(join(options.under ?? tmpdir(), 'anvil-minio-'));
  let port = await freePort();
  let endpoint = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let log = '';
  const start = async (): Promise<void> => {
    log = '';
    child = spawn(MINIO_BIN, ['server', dataDir, '--address', `127.0.0.1:${port}`, '--quiet'], {
      env: {
        ...process.env,
        MINIO_ROOT_USER: MINIO_CREDENTIALS.accessKey,
        MINIO_ROOT_PASSWORD: MINIO_CREDENTIALS.secretKey,
        MINIO_BROWSER: 'off',
        MINIO_UPDATE: 'off',
        // Allows a data directory on the root filesystem, as temp directories usually are.
        MINIO_CI_CD: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const capture = (d: Buffer) => {
      log = (log + d.toString()).slice(-8000);
    };
    const spawned = child;
    // A test process that dies without close() must not leave the server behind.
    const reap = () => spawned.kill('SIGKILL');
    process.once('exit', reap);
    spawned.once('exit', () => process.off('exit', reap));
    child.stdout!.on('data', capture);
    child.stderr!.on('data', capture);
    await waitLive(endpoint, child, () => log);
  };
  const stop = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  // The port freePort() found can be taken by another test process before MinIO binds it: then another port.
  for (let attempt = 1; ; attempt++) {
    try {
      await start();
      break;
    } catch (err) {
      if (attempt >= 5 || !/port is already in use/i.test((err as Error).message)) throw err;
      port = await freePort();
      endpoint = `http://127.0.0.1:${port}`;
    }
  }
  return {
    endpoint,
    port,
    ...MINIO_CREDENTIALS,
    stop,
    start,
    async close() {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** ANVIL_* settings for a gateway in front of `m` (a 3 s upstream timeout, so faults show quickly), plus `extra`. */
export function upstreamEnv(m: MinioServer, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ANVIL_BACKEND: 'upstream',
    ANVIL_UPSTREAM_ENDPOINT: m.endpoint,
    ANVIL_UPSTREAM_ACCESS_KEY: m.accessKey,
    ANVIL_UPSTREAM_SECRET_KEY: m.secretKey,
    ANVIL_UPSTREAM_TIMEOUT_MS: '3000',
    ...extra,
  };
}

/** The upstream backend's configuration for `m` (bucket mapping, path style, a 5 s request timeout), plus `over`. */
export function upstreamConfig(m: MinioServer, over: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return {
    endpoint: m.endpoint,
    region: 'us-east-1',
    accessKey: m.accessKey,
    secretKey: m.secretKey,
    forcePathStyle: true,
    mapping: 'bucket',
    requestTimeoutMs: 5_000,
    ...over,
  };
}

/** An S3 client speaking to `m` directly, as its root, bypassing the gateway. */
export function directClient(m: MinioServer): S3Client {
  return new S3Client({ endpoint: m.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: m.accessKey, secretAccessKey: m.secretKey } });
}

/** An HTTP proxy in front of MinIO that a test can watch or stall (minioProxy). */
export interface MinioProxy {
  endpoint: string;
  close(): Promise<void>;
}

/**
 * A loopback HTTP proxy that forwards every request to `target` on a keep-alive agent, Host header included as
 * signed (MinIO checks the signature against it). `onRequest` sees each request first and calls `forward` when (and
 * if) it should go on: at once to watch the traffic, later to hold it.
 */
export async function minioProxy(target: MinioServer, onRequest: (req: IncomingMessage, forward: () => void) => void): Promise<MinioProxy> {
  const agent = new Agent({ keepAlive: true });
  const server = createHttpServer((req, res) => {
    onRequest(req, () => {
      const upstream = request({ host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers: req.headers, agent }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      agent.destroy();
    },
  };
}

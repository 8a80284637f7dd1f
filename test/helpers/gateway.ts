/**
 * Starts a real gateway on a loopback ephemeral port with a temporary data directory, and real clients for it. With
 * ANVIL_TEST_WORKERS=N (N > 1, see test/workers/) the gateway is instead `gateway/main.ts` in its own process with N
 * worker processes, as `npm start` runs it with ANVIL_WORKERS=N; the test then reaches the policy and relationship
 * stores through its own connections to the same data directory, and what only exists inside the gateway's process
 * (backend, metrics, server) is refused.
 */
import { S3Client } from '@aws-sdk/client-s3';
import * as Minio from 'minio';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type GatewayConfig } from '../../gateway/config.ts';
import { memoryLogger } from '../../gateway/logging.ts';
import { startGateway, type Gateway } from '../../gateway/server.ts';
import { closeTokenStores, openTokenStores } from '../../gateway/sts/stores.ts';
import { FLUSH_MS as DENIAL_FLUSH_MS } from '../../policy/denial-log.ts';
import { nodeMasterKey, PolicyDatabase, PolicyStore, queryDenials, relationships as rel } from '../../policy/index.ts';

/** The root credential every test gateway is configured with. */
export const ROOT = { accessKeyId: 'AKIATESTROOT00000001', secretAccessKey: 'test-root-secret-key-0000000000000000000' };

/** A test gateway and clients bound to it. */
export interface TestGateway {
  gw: Gateway;
  config: GatewayConfig;
  dataDir: string;
  s3: S3Client;
  minio: Minio.Client;
  /** An SDK client for other credentials. */
  client(creds: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }): S3Client;
  minioFor(creds: { accessKeyId: string; secretAccessKey: string }): Minio.Client;
  /** The gateway's JSON log lines (access lines, errors). */
  logs: string[];
  close(): Promise<void>;
}

/** Worker processes the test gateways run with (ANVIL_TEST_WORKERS); 0 or 1: the gateway runs in the test process. */
export const TEST_WORKERS = Number(process.env.ANVIL_TEST_WORKERS ?? 0);

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** Starts a gateway; `env` adds or overrides ANVIL_* settings; `under` is where its data directory is made. */
export async function startTestGateway(env: Record<string, string> = {}, under = tmpdir()): Promise<TestGateway> {
  const dataDir = mkdtempSync(join(under, 'anvil-test-'));
  const settings = {
    ANVIL_ADDRESS: '127.0.0.1:0',
    ANVIL_DATA_DIR: dataDir,
    ANVIL_ROOT_ACCESS_KEY: ROOT.accessKeyId,
    ANVIL_ROOT_SECRET_KEY: ROOT.secretAccessKey,
    // A small metadata reserve: every test gateway writes one into its fresh data directory at start.
    ANVIL_SPACE_RESERVE_MB: '8',
    ...env,
  };
  const config = loadConfig(settings);
  const logs: string[] = [];
  const gw = TEST_WORKERS > 1 ? await startWorkerGateway(settings, config, logs) : await startGateway(config, { logger: memoryLogger(logs) });
  const client = (creds: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }) =>
    new S3Client({ endpoint: gw.url, region: config.region, credentials: creds, forcePathStyle: true });
  const minioFor = (creds: { accessKeyId: string; secretAccessKey: string }) =>
    new Minio.Client({
      endPoint: '127.0.0.1',
      port: gw.port,
      useSSL: false,
      accessKey: creds.accessKeyId,
      secretKey: creds.secretAccessKey,
      region: config.region,
      pathStyle: true,
    });
  const s3 = client(ROOT);
  return {
    gw,
    config,
    dataDir,
    s3,
    minio: minioFor(ROOT),
    client,
    minioFor,
    logs,
    async close() {
      s3.destroy();
      await gw.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * `gateway/main.ts` with TEST_WORKERS workers on `settings`, its JSON lines collected into `logs`; resolves once it
 * listens. The returned Gateway's stores are this process's own connections to the gateway's data directory.
 */
async function startWorkerGateway(settings: Record<string, string>, config: GatewayConfig, logs: string[]): Promise<Gateway> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ANVIL_')));
  const child = spawn(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
    cwd: REPO,
    env: { ...inherited, ...settings, ANVIL_WORKERS: String(TEST_WORKERS), ANVIL_LOG_LEVEL: settings.ANVIL_LOG_LEVEL ?? 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // A test process that ends without closing its gateway (a timeout) takes the gateway with it.
  const orphaned = () => child.kill('SIGKILL');
  process.once('exit', orphaned);
  void exited.then(() => process.off('exit', orphaned));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const listening = await new Promise<{ url: string; healthUrl?: string }>((resolve, reject) => {
    let pending = '';
    child.stdout!.on('data', (d: Buffer) => {
      const lines = (pending + d.toString()).split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        logs.push(line);
        // A worker that dies under a test is worth seeing in its output (test/workers/kill-worker kills them on purpose).
        if (line.includes('worker exited')) console.error(`gateway ${child.pid}: ${line}\n${stderr.slice(-2000)}`);
        if (line.includes('"msg":"listening"')) resolve(JSON.parse(line) as { url: string; healthUrl?: string });
      }
    });
    void exited.then(() => reject(new Error(`the gateway exited before listening:\n${logs.join('\n')}\n${stderr}`)));
  });
  // The test's own view of the policy the workers serve from (the same database, as another node would open it).
  const database = await PolicyDatabase.open({ url: config.policyDatabase, dataDir: config.dataDir, poolSize: 2, node: 'test' });
  const masterKey = nodeMasterKey(config.policyDatabase, config.dataDir, config.masterKey);
  const policy = await PolicyStore.open({ database, dataDir: config.dataDir, masterKey });
  openTokenStores({ policy, allowInsecureJwks: config.oidcAllowInsecureJwks });
  const relationships = rel.Relationships.open({ database });
  let closed: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    closed ??= (async () => {
      const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(kill);
      relationships.close();
      closeTokenStores(policy);
      await database.close();
    })();
    return closed;
  };
  const notHere = (what: string) => () => {
    throw new Error(`${what} lives in the gateway's worker processes (ANVIL_TEST_WORKERS): this test cannot run in worker mode`);
  };
  const url = new URL(listening.url);
  return Object.defineProperties(
    {
      url: listening.url,
      port: Number(url.port),
      healthUrl: listening.healthUrl,
      policy,
      database,
      relationships,
      // The workers write their denial rows in batches of their own; a flush from here waits until a batch period
      // has passed with no new row, so the rows of requests already answered are in.
      denials: {
        async flush() {
          let seen = -1;
          for (;;) {
            const rows = (await queryDenials(database)).length;
            if (rows === seen) return;
            seen = rows;
            await new Promise((resolve) => setTimeout(resolve, 3 * DENIAL_FLUSH_MS));
          }
        },
      },
      root: { accessKeyId: ROOT.accessKeyId, created: false },
      reloadTls: () => child.kill('SIGHUP'),
      shutdown: async () => (await stop(), 0),
      close: stop,
    },
    {
      server: { get: notHere('the HTTP server') },
      backend: { get: notHere('the backend') },
      metrics: { get: notHere('the metrics registry') },
      logger: { get: notHere('the logger') },
    },
  ) as unknown as Gateway;
}

/** Reads a whole SDK body stream into a Buffer (test sizes only). */
export async function bodyBytes(body: unknown): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

/** Random bytes for bodies. */
export function pattern(size: number): Buffer {
  return randomBytes(size);
}

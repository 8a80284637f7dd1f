/** Starts a real gateway on a loopback ephemeral port with a temporary data directory, and real clients for it. */
import { S3Client } from '@aws-sdk/client-s3';
import * as Minio from 'minio';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type GatewayConfig } from '../../gateway/config.ts';
import { memoryLogger } from '../../gateway/logging.ts';
import { startGateway, type Gateway } from '../../gateway/server.ts';

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

/** Starts a gateway; `env` adds or overrides ANVIL_* settings; `under` is where its data directory is made. */
export async function startTestGateway(env: Record<string, string> = {}, under = tmpdir()): Promise<TestGateway> {
  const dataDir = mkdtempSync(join(under, 'anvil-test-'));
  const config = loadConfig({
    ANVIL_ADDRESS: '127.0.0.1:0',
    ANVIL_DATA_DIR: dataDir,
    ANVIL_ROOT_ACCESS_KEY: ROOT.accessKeyId,
    ANVIL_ROOT_SECRET_KEY: ROOT.secretAccessKey,
    // A small metadata reserve: every test gateway writes one into its fresh data directory at start.
    ANVIL_SPACE_RESERVE_MB: '8',
    ...env,
  });
  const logs: string[] = [];
  const gw = await startGateway(config, { logger: memoryLogger(logs) });
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

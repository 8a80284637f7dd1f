/**
 * The composition root: reads the configuration, opens the policy store and the storage backend, builds the app and
 * listens. Tests start gateways through startGateway() exactly as `npm start` does.
 */
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DenialLog, PolicyStore, relationships as rel } from '../policy/index.ts';
import type { Backend } from '../storage/backend.ts';
import { openEmbeddedStore } from '../storage/index.ts';
import { createApp } from './app.ts';
import type { GatewayConfig } from './config.ts';
import { S3Error } from './errors.ts';
import { newRequestId } from './middleware/request-id.ts';
import { closeTokenStores, openTokenStores } from './sts/stores.ts';
import { errorBody } from './middleware/respond.ts';

/** A running gateway. */
export interface Gateway {
  server: Server;
  url: string;
  port: number;
  policy: PolicyStore;
  backend: Backend;
  relationships: rel.Relationships;
  /** The root credential; the secret only when it was created or configured in this start. */
  root: { accessKeyId: string; secretKey?: string; created: boolean };
  close(): Promise<void>;
}

/** Opens the backend the configuration names. */
export async function openBackend(config: GatewayConfig): Promise<Backend> {
  if (config.backend === 'upstream') {
    const { openUpstreamBackend } = await import('../storage/upstream/index.ts' as string);
    return openUpstreamBackend(config.upstream);
  }
  return openEmbeddedStore({ dataDir: config.dataDir });
}

/** Answers requests Node rejects before the app sees them (oversized headers, garbage) with an S3 error. */
function answerClientError(err: Error & { code?: string }, socket: import('node:stream').Duplex): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const code = err.code === 'HPE_HEADER_OVERFLOW' ? 'RequestHeaderSectionTooLarge' : 'InvalidRequest';
  const e = new S3Error(code as 'InvalidRequest');
  const id = newRequestId();
  const body = errorBody(e, id, '');
  socket.end(
    `HTTP/1.1 ${e.status} Bad Request\r\nContent-Type: application/xml\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `x-amz-request-id: ${id}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Starts a gateway; port 0 picks a free port. */
export async function startGateway(config: GatewayConfig, opts: { log?: (line: string) => void } = {}): Promise<Gateway> {
  const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'));
  mkdirSync(config.dataDir, { recursive: true });
  const policy = PolicyStore.open({ dataDir: config.dataDir, masterKey: config.masterKey });
  const root = policy.ensureRoot({ accessKeyId: config.rootAccessKey, secretKey: config.rootSecretKey });
  const stores = openTokenStores({ policy, dataDir: config.dataDir, masterKey: config.masterKey, allowInsecureJwks: config.oidcAllowInsecureJwks });
  const relationships = rel.Relationships.open({ dataDir: config.dataDir });
  const denials = new DenialLog({ dataDir: config.dataDir, stream: config.denialsToStdout ? process.stdout : undefined });
  const backend = await openBackend(config);
  // Buckets that predate the policy store (an existing upstream, say) stay owned by no tenant: root alone reaches
  // them until an operator assigns them (anvil bucket assign), and no tenant adopts one by touching it first.
  const app = createApp({ backend, config, policy, denials, stores, relationships, log });
  const handler = app.callback();
  const server = createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000 }, handler);
  // Expect: 100-continue reaches the app without an automatic 100: it is sent once the request is authorized.
  server.on('checkContinue', handler);
  server.on('clientError', answerClientError);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return {
    server,
    port,
    url: `http://${host}:${port}`,
    policy,
    backend,
    relationships,
    root,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await backend.close();
      closeTokenStores(policy);
      relationships.close();
      policy.close();
    },
  };
}

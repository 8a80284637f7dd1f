/**
 * The Koa app: only the middleware, in the order every request passes them. No logic lives here.
 */
import Koa from 'koa';
import type { DenialLog, PolicyStore, relationships } from '../policy/index.ts';
import { adminApi, adminErrors } from './admin/index.ts';
import { addressing } from './middleware/addressing.ts';
import { authenticate } from './middleware/authenticate.ts';
import { authorizeRequest } from './middleware/authorize.ts';
import { runOperation } from './middleware/operation.ts';
import { requestId } from './middleware/request-id.ts';
import { respond } from './middleware/respond.ts';
import type { Services } from './operation.ts';
import { stsApi } from './sts/middleware.ts';
import type { TokenStores } from './sts/stores.ts';
import type { GatewayState } from './state.ts';

/** Everything the app needs, built by the composition root (server.ts). */
export interface AppDeps extends Services {
  policy: PolicyStore;
  denials: DenialLog;
  /** Sessions, signing keys and capabilities, opened beside the policy store. */
  stores: TokenStores;
  /** Tenants' relationship schemas and tuples: governed buckets and the relationship admin API. */
  relationships: relationships.Relationships;
  log: (line: string) => void;
}

export function createApp(deps: AppDeps): Koa<GatewayState> {
  const app = new Koa<GatewayState>();
  app.silent = true;
  app.on('error', (err: Error & { code?: string }) => {
    // Client disconnects mid-stream are routine; anything else is worth a line (never with request secrets).
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'ERR_STREAM_PREMATURE_CLOSE') return;
    deps.log(`stream error: ${err.message}`);
  });
  app.use(requestId({ accessLog: deps.config.accessLog ? (line) => process.stdout.write(line + '\n') : undefined }));
  app.use(respond({ log: deps.log }));
  const { policy, denials, stores, log } = deps;
  const { region, domain } = deps.config;
  app.use(stsApi({ policy, denials, region, domain, stores, log })); // STS calls and GET /_anvil/keys end here
  app.use(addressing(deps.config.domain));
  app.use(adminErrors({ log: deps.log })); // admin requests only: errors as JSON
  app.use(authenticate({ policy, denials, region, tokens: stores.tokens, capabilities: stores.capabilities }));
  app.use(adminApi({ policy: deps.policy, denials: deps.denials, dataDir: deps.config.dataDir, relationships: deps.relationships })); // admin requests end here
  app.use(authorizeRequest({ policy: deps.policy, denials: deps.denials, relationships: deps.relationships }));
  app.use(runOperation({ backend: deps.backend, config: deps.config }));
  return app;
}

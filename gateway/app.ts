/**
 * The Koa apps: three short pipelines — S3, the admin API and STS — plus the operator endpoints, each its own app
 * listing its middleware in order, and the front app every request enters, which names it, observes it, renders its
 * result or error, and hands it to one pipeline. No logic lives here.
 */
import Koa from 'koa';
import type { AccessRecords, ConsoleSessions, DenialLog, PolicyStore, relationships } from '../policy/index.ts';
import type { SpaceReserve } from '../storage/space-reserve.ts';
import { adminApi, adminErrors } from './admin/index.ts';
import { consoleApi, consoleAssets, consoleAuth, consoleErrors, consoleOff, type ConsoleFile } from './console/index.ts';
import { errorLine, type Logger } from './logging.ts';
import type { GatewayMetrics } from './metrics.ts';
import { addressing, adminAddressing, pipelineOf } from './middleware/addressing.ts';
import { authenticate } from './middleware/authenticate.ts';
import { authorizeRequest } from './middleware/authorize.ts';
import { diskHeadroom } from './middleware/disk-headroom.ts';
import { hostRequired } from './middleware/host-required.ts';
import { cors } from './middleware/cors.ts';
import { postObjectAuth } from './middleware/post-object.ts';
import { observe } from './middleware/observe.ts';
import { runOperation } from './middleware/operation.ts';
import { requestId } from './middleware/request-id.ts';
import { respond } from './middleware/respond.ts';
import { contentSandbox } from './middleware/sandbox.ts';
import { dispatch, pipeline } from './mount.ts';
import { health, metricsBearer, metricsForRoot } from './ops-endpoints.ts';
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
  /** Which families each application credential used, from where (the access audit reads them). */
  records: AccessRecords;
  logger: Logger;
  metrics: GatewayMetrics;
  /** The web console's session tokens and built files; absent when the console is off. */
  console?: { sessions: ConsoleSessions; assets: Map<string, ConsoleFile> };
  /** True once a graceful shutdown began (readiness then answers 503). */
  draining?: () => boolean;
  /** The data volume's metadata reserve, released before writes when the volume is nearly full. */
  space: SpaceReserve;
}

export function createApp(deps: AppDeps): Koa<GatewayState> {
  const { backend, config, policy, denials, stores, relationships, records, logger, metrics } = deps;
  const { region, domain, dataDir } = config;
  const log = errorLine(logger);
  const authn = authenticate({ policy, denials, region, tokens: stores.tokens, capabilities: stores.capabilities, sigV2: config.sigV2 });

  const s3 = pipeline<GatewayState>(
    cors({ backend, domain }), // preflights end here; cross-origin responses get their headers
    addressing(domain),
    postObjectAuth({ policy, denials, region, tokens: stores.tokens, sigV2: config.sigV2 }), // browser form uploads only
    authn,
    authorizeRequest({ policy, denials, relationships, records }),
    runOperation({ backend, config }),
  );
  const admin = pipeline<GatewayState>(
    adminAddressing(domain),
    adminErrors({ log }),
    authn,
    adminApi({ policy, denials, dataDir, relationships, records, tokens: stores.tokens }),
  );
  const sts = pipeline<GatewayState>(stsApi({ policy, denials, region, domain, stores, log }));
  const web = deps.console && { policy, denials, dataDir, relationships, records, ...deps.console };
  const consoleApp = web
    ? pipeline<GatewayState>(consoleErrors({ log }), consoleAssets(web.assets), consoleAuth(web), consoleApi(web))
    : pipeline<GatewayState>(consoleErrors({ log }), consoleOff());
  const ops = pipeline<GatewayState>(
    health({ policy, backend, logger, draining: deps.draining }),
    metricsBearer({ token: config.metricsToken, metrics, denials }),
    authn,
    metricsForRoot({ metrics, denials }),
  );

  const app = new Koa<GatewayState>();
  app.silent = true;
  app.on('error', (err: Error & { code?: string }) => {
    // Client disconnects mid-stream are routine; anything else is worth a line (never with request secrets).
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'ERR_STREAM_PREMATURE_CLOSE') return;
    logger.warn({ err: { name: err.name, message: err.message, code: err.code } }, 'stream error');
  });
  app.use(requestId());
  app.use(observe({ logger, metrics, accessLog: config.accessLog }));
  app.use(contentSandbox()); // no object runs script on the console's origin
  app.use(respond({ log }));
  app.use(hostRequired()); // HTTP/1.1 without Host: Node's own bare 400 is off (server.ts)
  app.use(diskHeadroom(deps.space));
  app.use(dispatch((ctx) => pipelineOf(ctx, domain), { sts, admin, console: consoleApp, ops, s3 }));
  return app;
}

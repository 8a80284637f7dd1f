/**
 * The operator endpoints under `/_anvil` (path-style only; `_anvil` is no valid bucket name):
 * - `GET /_anvil/health/live`: the process answers (200). `GET /_anvil/health/ready`: the policy store and the
 *   storage backend answer too (200), else 503. Both unauthenticated, writing no denial line, revealing nothing else.
 * - `GET /_anvil/metrics`: Prometheus' text format, for a configured bearer token or root (SigV4); anyone else is
 *   refused like any S3 request, with a denial line.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Middleware, ParameterizedContext } from 'koa';
import type { DenialLog, PolicyStore } from '../policy/index.ts';
import type { Backend } from '../storage/backend.ts';
import { logDenial, type RequestFacts } from './access.ts';
import { S3Error } from './errors.ts';
import type { Logger } from './logging.ts';
import type { GatewayMetrics } from './metrics.ts';
import type { OpResult } from './operation.ts';
import type { GatewayState } from './state.ts';

/** Where the liveness and readiness answers live. */
export const HEALTH_PATHS = { live: '/_anvil/health/live', ready: '/_anvil/health/ready' } as const;
/** Where the metrics are scraped. */
export const METRICS_PATH = '/_anvil/metrics';

/** How long a readiness probe waits for the backend before it answers 503. */
const READY_TIMEOUT_MS = 5_000;

/** Whether a path names an operator endpoint (a request to it never reaches S3 addressing). */
export function isOpsPath(path: string): boolean {
  return path === METRICS_PATH || path.startsWith('/_anvil/health/');
}

/** What readiness asks. */
export interface HealthDeps {
  policy: PolicyStore;
  backend: Backend;
  logger: Logger;
  /** True once a graceful shutdown began: readiness then answers 503 so load balancers move on. */
  draining?: () => boolean;
}

const json = (status: number, body: unknown): OpResult => ({
  status,
  headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  body: JSON.stringify(body),
});

/** The answer of a health path for `method`, or undefined when the path is no health endpoint. */
export async function healthAnswer(method: string, path: string, deps: HealthDeps): Promise<OpResult | undefined> {
  if (path !== HEALTH_PATHS.live && path !== HEALTH_PATHS.ready) return path.startsWith('/_anvil/health/') ? json(404, { status: 'not found' }) : undefined;
  if (method !== 'GET' && method !== 'HEAD') return { ...json(405, { status: 'method not allowed' }), headers: { allow: 'GET, HEAD' } };
  if (path === HEALTH_PATHS.live) return json(200, { status: 'ok' });
  if (deps.draining?.()) return json(503, { status: 'not ready' });
  const signal = AbortSignal.timeout(READY_TIMEOUT_MS);
  try {
    // Both stores must answer: a query on the policy store, one cheap call on the backend.
    await deps.policy.database.ping();
    await deps.backend.ping(signal);
    return json(200, { status: 'ready' });
  } catch (error) {
    deps.logger.warn({ err: { name: (error as Error).name, message: (error as Error).message } }, 'readiness probe failed');
    return json(503, { status: 'not ready' });
  }
}

/** Answers the health paths; unauthenticated, and never a denial line. */
export function health(deps: HealthDeps): Middleware<GatewayState> {
  return async function healthMiddleware(ctx, next) {
    const answer = await healthAnswer(ctx.method, ctx.path, deps);
    if (!answer) return next();
    ctx.state.api = 'Health';
    ctx.state.result = answer;
  };
}

/** The facts of a metrics request for a denial line. */
function factsOf(ctx: ParameterizedContext<GatewayState>): RequestFacts {
  return { requestId: ctx.state.requestId, action: 'Metrics', remoteAddress: ctx.req.socket.remoteAddress, userAgent: ctx.get('user-agent') || undefined };
}

/** The metrics as an answer. */
async function scraped(metrics: GatewayMetrics): Promise<OpResult> {
  const { contentType, body } = await metrics.scrape();
  return { status: 200, headers: { 'content-type': contentType, 'cache-control': 'no-store' }, body };
}

function bearerMatches(header: string, token: string | undefined): boolean {
  if (token === undefined || !header.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice('Bearer '.length).trim());
  const wanted = Buffer.from(token);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

/**
 * The metrics endpoint. A request with the configured bearer token is answered at once; any other goes on to
 * authenticate (SigV4), after which `metricsForRoot` answers root.
 */
export function metricsBearer(opts: { token?: string; metrics: GatewayMetrics; denials: DenialLog }): Middleware<GatewayState> {
  return async function metricsBearerMiddleware(ctx, next) {
    ctx.state.api = 'Metrics';
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') throw new S3Error('MethodNotAllowed');
    // Authenticate needs a target; the metrics endpoint names no bucket or key.
    ctx.state.target = { bucket: '', key: '', rawPath: ctx.path, rawQuery: '', query: new URLSearchParams() };
    const authorization = ctx.get('authorization');
    if (!authorization.startsWith('Bearer ')) return next();
    if (!bearerMatches(authorization, opts.token)) {
      logDenial(opts.denials, factsOf(ctx), { layer: 'signature', reason: 'not the metrics bearer token' });
      throw new S3Error('AccessDenied');
    }
    ctx.state.result = await scraped(opts.metrics);
  };
}

/**
 * After authenticate: root reads the metrics; others get AccessDenied. They count every tenant's traffic (requests,
 * denials by layer), which no tenant admin may read: a narrower admin would even learn from the denial counts by
 * layer what its denial lines hide from it.
 */
export function metricsForRoot(opts: { metrics: GatewayMetrics; denials: DenialLog }): Middleware<GatewayState> {
  return async function metricsForRootMiddleware(ctx) {
    const principal = ctx.state.principal!;
    if (!principal.isRoot) {
      logDenial(opts.denials, factsOf(ctx), { layer: 'scope', reason: 'reading metrics needs root (they count every tenant)', principal });
      throw new S3Error('AccessDenied');
    }
    ctx.state.result = await scraped(opts.metrics);
  };
}

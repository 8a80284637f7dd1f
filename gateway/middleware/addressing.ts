/**
 * Addressing: which pipeline a request belongs to (STS, admin API or S3), then, inside the S3 pipeline, bucket, key
 * and route from the routing table, and inside the admin pipeline, the admin path.
 */
import type { Middleware, ParameterizedContext } from 'koa';
import { adminTargetOf } from '../admin/index.ts';
import { CONSOLE_PREFIX } from '../console/index.ts';
import { resolveTarget, type Target } from '../addressing.ts';
import { S3Error } from '../errors.ts';
import { isOpsPath } from '../ops-endpoints.ts';
import { matchRoute } from '../routes.ts';
import type { GatewayState } from '../state.ts';
import { isStsRequest, KEYS_PATH } from '../sts/middleware.ts';

/** The pipelines a request can take. */
export type Pipeline = 'sts' | 'admin' | 'console' | 'ops' | 's3';

/**
 * Where a request's resolved target is kept on its IncomingMessage, so the front app's choice of pipeline and the
 * pipeline itself share one: a property, not a WeakMap, whose every entry costs V8 an ephemeron for the collector.
 */
const RESOLVED = Symbol('anvil.target');

/**
 * The target of a request (resolveTarget over its URL and Host), resolved once per request: every step that asks
 * gets the same object, which the S3 pipeline then keeps as ctx.state.target. Throws InvalidURI as resolveTarget
 * does (every time it is asked).
 */
export function targetOf(ctx: ParameterizedContext<GatewayState>, domain: string): Target {
  const req = ctx.req as typeof ctx.req & { [RESOLVED]?: Target };
  let target = req[RESOLVED];
  if (!target) {
    target = resolveTarget(req.url ?? '/', req.headers.host, domain);
    req[RESOLVED] = target;
  }
  return target;
}

/**
 * The pipeline of a request, noted in ctx.state.api for logs and metrics: STS calls (POST / with a form body) and
 * the session-token keys go to STS, paths under the admin prefix to the admin API, `/_anvil/console` and below
 * (path-style) to the web console, `/_anvil/health/*` and
 * `/_anvil/metrics` (path-style) to the operator endpoints, everything else to S3. Throws InvalidURI for a target
 * that is no URL path.
 */
export function pipelineOf(ctx: ParameterizedContext<GatewayState>, domain: string): Pipeline {
  if ((ctx.req.method === 'GET' && ctx.req.url?.startsWith(KEYS_PATH) && ctx.path === KEYS_PATH) || isStsRequest(ctx, domain)) {
    ctx.state.api = 'STS';
    return 'sts';
  }
  const target = targetOf(ctx, domain);
  if (adminTargetOf(target)) {
    ctx.state.api = 'Admin';
    return 'admin';
  }
  if (target.bucket === '_anvil' && (ctx.path === CONSOLE_PREFIX || ctx.path.startsWith(`${CONSOLE_PREFIX}/`))) return 'console';
  return target.bucket === '_anvil' && isOpsPath(ctx.path) ? 'ops' : 's3';
}

/**
 * S3 pipeline: bucket, key and the route (an unimplemented sub-resource's too, answered only once authorized), or
 * NotImplemented / MethodNotAllowed when the table has none for the method.
 */
export function addressing(domain: string): Middleware<GatewayState> {
  // Not async: it only hands on (its throws still become rejections in koa-compose).
  return function addressingMiddleware(ctx, next) {
    const target = targetOf(ctx, domain);
    ctx.state.target = target;
    const level = target.bucket === '' ? 'service' : target.key === '' ? 'bucket' : 'object';
    const method = ctx.req.method ?? 'GET';
    const route = matchRoute(method, level, target.query, ctx.req.headers);
    // The default NotImplemented message speaks of a header; here it is the method on this kind of resource.
    if ('miss' in route) throw new S3Error(route.miss, route.miss === 'NotImplemented' ? `${method} on this resource is not implemented by this gateway` : undefined);
    ctx.state.route = route;
    return next();
  };
}

/** Admin pipeline: the admin path and query; denial lines name no bucket or key for admin requests. */
export function adminAddressing(domain: string): Middleware<GatewayState> {
  return async function adminAddressingMiddleware(ctx, next) {
    const target = targetOf(ctx, domain);
    ctx.state.admin = adminTargetOf(target);
    ctx.state.target = { ...target, bucket: '', key: '' };
    await next();
  };
}

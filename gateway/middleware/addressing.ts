/** Resolves bucket and key from the URL and Host, then the route from the routing table. */
import type { Middleware } from 'koa';
import { resolveTarget } from '../addressing.ts';
import { S3Error } from '../errors.ts';
import { matchRoute } from '../routes.ts';
import type { GatewayState } from '../state.ts';

export function addressing(domain: string): Middleware<GatewayState> {
  return async function addressingMiddleware(ctx, next) {
    const target = resolveTarget(ctx.req.url ?? '/', ctx.get('host'), domain);
    ctx.state.target = target;
    const level = target.bucket === '' ? 'service' : target.key === '' ? 'bucket' : 'object';
    const route = matchRoute(ctx.method, level, target.query, ctx.headers);
    if ('miss' in route) throw new S3Error(route.miss);
    ctx.state.route = route;
    await next();
  };
}

/** Resolves bucket and key from the URL and Host, then the route from the routing table (or marks an admin request). */
import type { Middleware } from 'koa';
import { adminTargetOf } from '../admin/index.ts';
import { resolveTarget } from '../addressing.ts';
import { S3Error } from '../errors.ts';
import { matchRoute } from '../routes.ts';
import type { GatewayState } from '../state.ts';

export function addressing(domain: string): Middleware<GatewayState> {
  return async function addressingMiddleware(ctx, next) {
    const target = resolveTarget(ctx.req.url ?? '/', ctx.get('host'), domain);
    const admin = adminTargetOf(target);
    if (admin) {
      // Admin requests have no S3 route; denial lines name no bucket or key for them.
      ctx.state.admin = admin;
      ctx.state.target = { ...target, bucket: '', key: '' };
      return next();
    }
    ctx.state.target = target;
    const level = target.bucket === '' ? 'service' : target.key === '' ? 'bucket' : 'object';
    const route = matchRoute(ctx.method, level, target.query, ctx.headers);
    if ('miss' in route) throw new S3Error(route.miss);
    ctx.state.route = route;
    await next();
  };
}

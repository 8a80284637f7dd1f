/**
 * Before any request that may write, makes sure the data volume has room for metadata (releasing the reserve when it
 * is nearly full), so deletes, revocations and tuple deletes commit on a full disk. See storage/space-reserve.ts.
 */
import type { Middleware } from 'koa';
import type { SpaceReserve } from '../../storage/space-reserve.ts';
import type { GatewayState } from '../state.ts';

export function diskHeadroom(space: SpaceReserve): Middleware<GatewayState> {
  // Not async: it only hands on (a throw from ensureHeadroom still becomes a rejection in koa-compose).
  return function diskHeadroomMiddleware(ctx, next) {
    const method = ctx.req.method;
    if (method !== 'GET' && method !== 'HEAD') space.ensureHeadroom();
    return next();
  };
}

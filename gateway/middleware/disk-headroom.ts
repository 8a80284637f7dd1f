/**
 * Before any request that may write, makes sure the data volume has room for metadata (releasing the reserve when it
 * is nearly full), so deletes, revocations and tuple deletes commit on a full disk. See storage/space-reserve.ts.
 */
import type { Middleware } from 'koa';
import type { SpaceReserve } from '../../storage/space-reserve.ts';
import type { GatewayState } from '../state.ts';

export function diskHeadroom(space: SpaceReserve): Middleware<GatewayState> {
  return async function diskHeadroomMiddleware(ctx, next) {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') space.ensureHeadroom();
    await next();
  };
}

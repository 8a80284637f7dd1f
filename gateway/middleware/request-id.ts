/** Gives every request an id, sent back in x-amz-request-id and x-amz-id-2 whatever the outcome. */
import { randomFillSync } from 'node:crypto';
import type { Middleware } from 'koa';
import type { GatewayState } from '../state.ts';

/** Random bytes drawn ahead for request ids: one getrandom call per 512 requests instead of one each. */
const pool = Buffer.alloc(8 * 512);
let offset = pool.length;

/** A fresh request id: 16 upper-case hex digits, like S3's. */
export function newRequestId(): string {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  offset += 8;
  return pool.toString('hex', offset - 8, offset).toUpperCase();
}

/** Names the request and notes when it started (observe() reports both once it is answered). */
export function requestId(): Middleware<GatewayState> {
  return async function requestIdMiddleware(ctx, next) {
    ctx.state.requestId = newRequestId();
    ctx.state.startedAt = performance.now();
    ctx.set('x-amz-request-id', ctx.state.requestId);
    ctx.set('x-amz-id-2', Buffer.from(ctx.state.requestId).toString('base64'));
    ctx.set('Server', 'AnvilGateway');
    await next();
  };
}

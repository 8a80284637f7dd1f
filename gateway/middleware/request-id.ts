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

/**
 * Names the request and notes when it started (observe() reports both once it is answered). Not async: a step that
 * only hands on returns next()'s promise instead of wrapping it in one more (one promise and one microtask less per
 * request). Nothing has been sent yet, so the headers go straight onto the response.
 */
export function requestId(): Middleware<GatewayState> {
  return function requestIdMiddleware(ctx, next) {
    const id = newRequestId();
    ctx.state.requestId = id;
    ctx.state.startedAt = performance.now();
    const res = ctx.res;
    res.setHeader('x-amz-request-id', id);
    res.setHeader('x-amz-id-2', Buffer.from(id).toString('base64'));
    res.setHeader('Server', 'AnvilGateway');
    return next();
  };
}

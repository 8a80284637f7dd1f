/** Gives every request an id, sent back in x-amz-request-id and x-amz-id-2 whatever the outcome. */
import { randomBytes } from 'node:crypto';
import type { Middleware } from 'koa';
import type { GatewayState } from '../state.ts';

/** A fresh request id: 16 upper-case hex digits, like S3's. */
export function newRequestId(): string {
  return randomBytes(8).toString('hex').toUpperCase();
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

/** Gives every request an id, sent back in x-amz-request-id and x-amz-id-2 whatever the outcome. */
import { randomBytes } from 'node:crypto';
import type { Middleware } from 'koa';
import type { GatewayState } from '../state.ts';

/** A fresh request id: 16 upper-case hex digits, like S3's. */
export function newRequestId(): string {
  return randomBytes(8).toString('hex').toUpperCase();
}

/**
 * Names the request and, when `accessLog` is given, writes one line per request once it is answered. The line has
 * the path but never the query string, where presigned URLs carry their signature.
 */
export function requestId(opts: { accessLog?: (line: string) => void } = {}): Middleware<GatewayState> {
  const { accessLog } = opts;
  return async function requestIdMiddleware(ctx, next) {
    ctx.state.requestId = newRequestId();
    ctx.state.startedAt = performance.now();
    ctx.set('x-amz-request-id', ctx.state.requestId);
    ctx.set('x-amz-id-2', Buffer.from(ctx.state.requestId).toString('base64'));
    ctx.set('Server', 'AnvilGateway');
    if (accessLog) {
      ctx.res.once('finish', () => {
        const ms = (performance.now() - ctx.state.startedAt).toFixed(1);
        const who = ctx.state.principal?.accessKeyId ?? '-';
        const op = ctx.state.route?.op ?? '-';
        accessLog(`${new Date().toISOString()} ${ctx.state.requestId} ${ctx.method} ${ctx.path} ${op} ${ctx.status} ${ms}ms ${who}`);
      });
    }
    await next();
  };
}

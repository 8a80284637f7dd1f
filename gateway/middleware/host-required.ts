/**
 * HTTP/1.1 requires a Host header: "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1
 * request message that lacks a Host header field" (RFC 9112 §3.2). Node answers that itself with a bare 400 and no
 * S3 error, request id, access line or count; the server turns that off (requireHostHeader: false, server.ts) so the
 * refusal is made here, inside the front app, and observed like every other answer. HTTP/1.0 has no Host requirement:
 * an anonymous HTTP/1.0 request without one goes on, and a signed one is refused by the signature check
 * (gateway/auth/sigv4.ts), which binds every signature to a non-empty Host.
 */
import type { Middleware } from 'koa';
import { S3Error } from '../errors.ts';
import type { GatewayState } from '../state.ts';

export function hostRequired(): Middleware<GatewayState> {
  // Not async: it only hands on.
  return function hostRequiredMiddleware(ctx, next) {
    const req = ctx.req;
    if (req.headers.host === undefined && (req.httpVersionMajor > 1 || req.httpVersionMinor >= 1)) {
      throw new S3Error('InvalidRequest', 'Missing required header for this request: Host');
    }
    return next();
  };
}

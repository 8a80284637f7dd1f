/**
 * Object content never runs with the console's authority: the web console (/_anvil/console/) shares its origin with
 * every object the gateway serves, so every answer outside the console — objects (GetObject, HeadObject, presigned
 * URLs, whatever Content-Type the uploader or a response-content-type override chose), POST Object results, XML
 * errors, the admin API, STS — carries `Content-Security-Policy: sandbox`, which gives a document opened from it an
 * opaque (`null`) origin with no script, forms, popups or same-origin access (CSP Level 3, "sandbox" directive), and
 * `X-Content-Type-Options: nosniff`. The console's own answers carry its strict policy instead (console/assets.ts).
 */
import type { Middleware } from 'koa';
import type { ServerResponse } from 'node:http';
import type { GatewayState } from '../state.ts';

/** The policy every non-console answer carries: the empty sandbox, every allow-* token off. */
export const CONTENT_SANDBOX = 'sandbox';

/** Sets the sandbox headers on every answer the console pipeline did not write, errors included. */
export function contentSandbox(): Middleware<GatewayState> {
  return async function contentSandboxMiddleware(ctx, next) {
    // Set first too, so an answer written outside Koa (the request timeout) carries them; the console overwrites them.
    sandbox(ctx.res);
    try {
      await next();
    } finally {
      // Set last, over anything an operation wrote, so no stored or requested header can lift it.
      if (ctx.state.api !== 'Console') resandbox(ctx.res);
    }
  };
}

/** Puts the two headers on a response whose head has not left yet (what Koa's ctx.set does, without its getters). */
function sandbox(res: ServerResponse): void {
  if (res.headersSent) return;
  res.setHeader('content-security-policy', CONTENT_SANDBOX);
  res.setHeader('x-content-type-options', 'nosniff');
}

/**
 * sandbox() again after the handler: only a header the handler changed is set (setHeader validates name and value each
 * time; most answers still carry what was set first).
 */
function resandbox(res: ServerResponse): void {
  if (res.headersSent) return;
  if (res.getHeader('content-security-policy') !== CONTENT_SANDBOX) res.setHeader('content-security-policy', CONTENT_SANDBOX);
  if (res.getHeader('x-content-type-options') !== 'nosniff') res.setHeader('x-content-type-options', 'nosniff');
}

/**
 * The one place responses are written: an operation's result (XML, buffer or stream), or anything thrown turned
 * into S3's XML error with the request id. Unknown errors become InternalError and expose nothing.
 */
import type { Middleware } from 'koa';
import { toS3Error } from '../error-mapping.ts';
import { S3Error } from '../errors.ts';
import { bodyUnread, closeAfterResponse } from '../http/lingering-close.ts';
import type { GatewayState } from '../state.ts';
import { xmlDocument } from '../xml.ts';

/** Writes S3's error document (no body for HEAD or 304). */
export function errorBody(err: S3Error, requestId: string, resource: string): string {
  return xmlDocument(
    'Error',
    { Code: err.code, Message: err.message, ...err.fields, Resource: resource, RequestId: requestId, HostId: Buffer.from(requestId).toString('base64') },
    false,
  );
}

export function respond(opts: { log: (line: string) => void }): Middleware<GatewayState> {
  return async function respondMiddleware(ctx, next) {
    try {
      await next();
      const result = ctx.state.result;
      if (!result) return;
      ctx.status = result.status ?? 200;
      const headers = result.headers;
      // Straight onto the response (what ctx.set does for a string, without its getters): its head has not left.
      if (headers && !ctx.res.headersSent) for (const k in headers) if (headers[k] !== undefined) ctx.res.setHeader(k, headers[k]);
      if (result.body !== undefined) ctx.body = result.body;
      else if (ctx.status === 200 && ctx.method !== 'HEAD') ctx.body = '';
    } catch (thrown) {
      let err = toS3Error(thrown);
      if (ctx.res.headersSent) {
        // The answer already left (the connection guard's 400 RequestTimeout for a stalled body): the operation's
        // own failure that followed is not answered a second time.
        if (!err) opts.log(`request ${ctx.state.requestId} failed after its answer: ${thrown instanceof Error ? thrown.message : String(thrown)}`);
        ctx.respond = false;
        if (!ctx.res.writableEnded) ctx.res.destroy();
        return;
      }
      if (!err) {
        // Log the cause server-side only; the client learns nothing beyond InternalError and the request id.
        opts.log(`request ${ctx.state.requestId} failed: ${thrown instanceof Error ? (thrown.stack ?? thrown.message) : String(thrown)}`);
        err = new S3Error('InternalError');
      }
      // A refused upload still streaming: close the connection rather than read gigabytes we will not store, but
      // lingering, so the client reads this answer rather than a reset.
      if (bodyUnread(ctx.req)) closeAfterResponse(ctx.res);
      ctx.status = err.status;
      for (const [k, v] of Object.entries(err.headers)) ctx.set(k, v);
      if (ctx.method === 'HEAD' || err.status === 304) {
        // Koa would turn a null body into 204; an unset body keeps the status and HEAD sends no bytes anyway.
        if (err.status !== 304) ctx.set('x-amz-error-code', err.code);
        return;
      }
      ctx.type = 'application/xml';
      ctx.body = errorBody(err, ctx.state.requestId, ctx.path);
    }
  };
}

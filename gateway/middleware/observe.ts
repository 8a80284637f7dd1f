/**
 * Observes every request once it is answered (or abandoned): one JSON access line — request id, operation, bucket,
 * key, status, bytes in and out, duration, access key id — and the request metrics. The line never holds the query
 * string (where presigned URLs carry their signature), a header or a secret.
 */
import type { Middleware, ParameterizedContext } from 'koa';
import { accessLogger, type Logger } from '../logging.ts';
import type { GatewayMetrics } from '../metrics.ts';
import type { GatewayState } from '../state.ts';

/** The operation label of a request: the S3 operation, or the API it went to. */
export function operationOf(ctx: ParameterizedContext<GatewayState>): string {
  return ctx.state.route?.op ?? ctx.state.api ?? '-';
}

/** A socket's byte counts at the end of its previous request, and what the request ending now is charged. */
interface Charge {
  read: number;
  written: number;
  bytesIn: number;
  bytesOut: number;
}

/** Per socket: each request is charged what came after the previous one. */
const counted = new WeakMap<object, Charge>();

/**
 * Charges the request now ending on `socket` the bytes carried since the previous one (here, and for the answers
 * Node's refusals get in gateway/http/early-answers.ts). Returns the socket's own record (no allocation per request):
 * read its bytesIn and bytesOut before the socket's next request ends.
 */
export function chargeSocket(socket: { bytesRead: number; bytesWritten: number }): Readonly<Charge> {
  let charged = counted.get(socket);
  if (!charged) {
    charged = { read: 0, written: 0, bytesIn: 0, bytesOut: 0 };
    counted.set(socket, charged);
  }
  const read = socket.bytesRead;
  const written = socket.bytesWritten;
  charged.bytesIn = Math.max(0, read - charged.read);
  charged.bytesOut = Math.max(0, written - charged.written);
  charged.read = read;
  charged.written = written;
  return charged;
}

export function observe(opts: { logger: Logger; metrics: GatewayMetrics; accessLog: boolean }): Middleware<GatewayState> {
  const { metrics, accessLog } = opts;
  const logger = accessLogger(opts.logger);
  return async function observeMiddleware(ctx, next) {
    const socket = ctx.req.socket;
    let done = false;
    // A client that goes away mid-request closes the response before the handler has decided anything (Koa's status
    // is still its default 404): the line waits for the handler, so it records the real outcome.
    let handled = false;
    let deferred = false;
    const finished = () => {
      if (done) return;
      if (!handled) {
        deferred = true;
        return;
      }
      done = true;
      const operation = operationOf(ctx);
      const seconds = (performance.now() - ctx.state.startedAt) / 1000;
      const { bytesIn, bytesOut } = chargeSocket(socket);
      const aborted = !ctx.res.writableFinished;
      const status = ctx.res.statusCode;
      metrics.answered(operation, status, seconds, bytesIn, bytesOut);
      if (!accessLog) return;
      const { target, principal } = ctx.state;
      logger.info(
        {
          requestId: ctx.state.requestId,
          method: ctx.req.method,
          operation,
          bucket: target?.bucket || undefined,
          key: target?.key || undefined,
          status,
          bytesIn,
          bytesOut,
          durationMs: Math.round(seconds * 10_000) / 10,
          accessKeyId: principal?.accessKeyId,
          remoteAddress: socket.remoteAddress,
          aborted: aborted ? true : undefined, // pino leaves undefined fields out of the line
        },
        'request',
      );
    };
    // on, not once: each fires once per response (finished() runs once anyway), without once()'s wrapper per event.
    ctx.res.on('finish', finished);
    ctx.res.on('close', finished);
    try {
      await next();
    } finally {
      handled = true;
      // Koa writes the body after the middleware returns; a response still open is observed on its finish/close.
      if (deferred || ctx.res.writableFinished || ctx.res.destroyed) finished();
    }
  };
}

/**
 * Observes every request once it is answered (or abandoned): one JSON access line — request id, operation, bucket,
 * key, status, bytes in and out, duration, access key id — and the request metrics. The line never holds the query
 * string (where presigned URLs carry their signature), a header or a secret.
 */
import type { Middleware, ParameterizedContext } from 'koa';
import type { Logger } from '../logging.ts';
import type { GatewayMetrics } from '../metrics.ts';
import type { GatewayState } from '../state.ts';

/** The operation label of a request: the S3 operation, or the API it went to. */
export function operationOf(ctx: ParameterizedContext<GatewayState>): string {
  return ctx.state.route?.op ?? ctx.state.api ?? '-';
}

export function observe(opts: { logger: Logger; metrics: GatewayMetrics; accessLog: boolean }): Middleware<GatewayState> {
  const { logger, metrics, accessLog } = opts;
  return async function observeMiddleware(ctx, next) {
    const socket = ctx.req.socket;
    const read0 = socket.bytesRead;
    const written0 = socket.bytesWritten;
    let done = false;
    const finished = () => {
      if (done) return;
      done = true;
      const operation = operationOf(ctx);
      const seconds = (performance.now() - ctx.state.startedAt) / 1000;
      const bytesIn = Math.max(0, socket.bytesRead - read0);
      const bytesOut = Math.max(0, socket.bytesWritten - written0);
      const aborted = !ctx.res.writableFinished;
      metrics.requests.inc({ operation, status: String(ctx.status) });
      metrics.duration.observe({ operation }, seconds);
      metrics.bytesIn.inc({ operation }, bytesIn);
      metrics.bytesOut.inc({ operation }, bytesOut);
      if (ctx.status === 507) metrics.storageFull.inc({ operation });
      if (!accessLog) return;
      const { target, principal } = ctx.state;
      logger.info(
        {
          requestId: ctx.state.requestId,
          method: ctx.method,
          operation,
          bucket: target?.bucket || undefined,
          key: target?.key || undefined,
          status: ctx.status,
          bytesIn,
          bytesOut,
          durationMs: Math.round(seconds * 10_000) / 10,
          accessKeyId: principal?.accessKeyId,
          remoteAddress: socket.remoteAddress,
          ...(aborted ? { aborted: true } : {}),
        },
        'request',
      );
    };
    ctx.res.once('finish', finished);
    ctx.res.once('close', finished);
    await next();
  };
}

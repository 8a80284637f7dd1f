/**
 * What one HTTP/1.1 connection may cost the gateway, decided below Koa for every request whatever its pipeline:
 *
 *   - In order: Node parses pipelined requests as they arrive and would run them concurrently, so a GET pipelined
 *     after a PUT of the same key could be answered before the PUT commits. Each request starts only once the one
 *     before it on the connection has been answered (responses must leave in order anyway, RFC 9112 §9.3.2).
 *   - Progress: a client that stops sending its body, or stops reading its response, holds a socket, a temp file or
 *     a blob. When a request makes no progress in either direction for `idleTimeoutMs`: a body still expected is
 *     answered 400 RequestTimeout (S3's answer) and the request aborted, which removes its temp file; a response
 *     the client does not read is cut off, which releases the stream behind it (and the blob pins it holds). While
 *     the gateway itself is working (waiting on storage, say) the client is not at fault and nothing happens.
 *
 * The guard wraps the request listener: `createServer(options, guardConnections(app.callback(), options))`.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { S3Error } from '../errors.ts';
import { errorBody } from '../middleware/respond.ts';
import { answeredLast } from './lingering-close.ts';
import { newRequestId } from '../middleware/request-id.ts';

/** Settings of guardConnections. */
export interface ConnectionGuardOptions {
  /** Longest a running request may go without a byte received or sent while it waits on the client. */
  idleTimeoutMs: number;
  /**
   * A request Node parsed that will never run: pipelined behind the connection's last answer, or still waiting when
   * the connection closed. Its response never closes unless Node already gave it the socket (`res.socket` set), so
   * whoever counts requests by their response's 'close' learns here that the others are over.
   */
  onDropped?: (req: IncomingMessage, res: ServerResponse) => void;
}

/** A request parsed behind the running one, and how to start it. */
interface Waiting {
  req: IncomingMessage;
  res: ServerResponse;
  run: () => void;
}

/** The requests of one connection: whether one is running, and those parsed behind it. */
interface Lane {
  busy: boolean;
  waiting: Waiting[];
}

/** Wraps `handler` so each connection's requests run one after another, each under the progress timeout. */
export function guardConnections(handler: RequestListener, options: ConnectionGuardOptions): RequestListener {
  const lanes = new WeakMap<Socket, Lane>();

  const laneOf = (socket: Socket): Lane => {
    let lane = lanes.get(socket);
    if (!lane) {
      const created: Lane = { busy: false, waiting: [] };
      // A closed connection answers nothing more: drop what was parsed behind the request that was running.
      socket.once('close', () => {
        const dropped = created.waiting.splice(0);
        for (const w of dropped) options.onDropped?.(w.req, w.res);
      });
      lanes.set(socket, created);
      lane = created;
    }
    return lane;
  };

  return function guardedRequest(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    const lane = laneOf(socket);
    const run = (): void => {
      // The connection already gave its last answer (Connection: close) and is only draining: a request parsed
      // behind it is not served (RFC 9112 §9.6), and its body is dropped with the rest.
      if (answeredLast(socket)) {
        req.resume();
        options.onDropped?.(req, res);
        // And every request parsed behind this one: none of them runs either.
        for (const w of lane.waiting.splice(0)) {
          w.req.resume();
          options.onDropped?.(w.req, w.res);
        }
        return;
      }
      lane.busy = true;
      res.once('close', () => {
        lane.busy = false;
        const next = lane.waiting.shift();
        if (next === undefined) return;
        if (!socket.destroyed) next.run();
        else options.onDropped?.(next.req, next.res);
      });
      watchProgress(req, res, options.idleTimeoutMs);
      void handler(req, res);
    };
    if (lane.busy) lane.waiting.push({ req, res, run });
    else run();
  };
}

/** Arms the connection's idle timer for one request, and decides what a timeout means for it. */
function watchProgress(req: IncomingMessage, res: ServerResponse, idleTimeoutMs: number): void {
  if (idleTimeoutMs <= 0) return;
  // Listening on the response also keeps Node from destroying the socket on every timeout (it does when nobody
  // listens): a slow storage call is not the client's fault.
  res.setTimeout(idleTimeoutMs, () => {
    const socket = req.socket;
    // Bytes received but not yet consumed, or reading paused by backpressure, mean the gateway is the slow side.
    if (!req.complete) {
      if (req.readableLength === 0 && !req.isPaused()) answerRequestTimeout(req, res);
      return;
    }
    if (socket.writableLength > 0 || res.writableNeedDrain) socket.destroy();
  });
}

/** Answers 400 RequestTimeout on the stalled request's own response, then aborts the request (and its body reader). */
function answerRequestTimeout(req: IncomingMessage, res: ServerResponse): void {
  answerAndAbort(req, res, new S3Error('RequestTimeout'));
}

/**
 * Answers `err` on a running request's own response (its request id, `Connection: close`), then aborts the request
 * with `err`, so the handler still reading its body stops and the request is observed once, by the app, with this
 * answer's status. When the answer has already started, the request is only aborted.
 */
export function answerAndAbort(req: IncomingMessage, res: ServerResponse, err: S3Error): void {
  const abort = (): void => {
    req.destroy(err);
  };
  if (res.headersSent) return abort();
  const requestId = String(res.getHeader('x-amz-request-id') ?? newRequestId());
  const body = errorBody(err, requestId, new URL(req.url ?? '/', 'http://gateway').pathname);
  res.writeHead(err.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), connection: 'close' });
  res.end(body, abort);
}

/**
 * What one HTTP/1.1 connection may cost the gateway, decided below Koa for every request whatever its pipeline:
 *
 *   - In order: Node parses pipelined requests as they arrive and would run them concurrently, so a GET pipelined
 *     after a PUT of the same key could be answered before the PUT commits. Each request starts only once the one
 *     before it on the connection has been answered (responses must leave in order anyway, RFC 9112 §9.3.2).
 *     Requests parsed behind the connection's last answer, or still queued when it closes, never start: they are
 *     dropped (the `dropped` option), since Node never writes nor closes their responses.
 *   - Progress: a client that stops sending its body, or stops reading its response, holds a socket, a temp file or
 *     a blob. When a request makes no progress in either direction for `idleTimeoutMs`: a body still expected is
 *     answered 400 RequestTimeout (S3's answer) and the request aborted, which removes its temp file; a response
 *     the client does not read is cut off, which releases the stream behind it (and the blob pins it holds). While
 *     the gateway itself is working (waiting on storage, say) the client is not at fault and nothing happens.
 *   - Pace: a body trickled just faster than the idle timeout would hold its socket, its temp file and the space
 *     reserved for its declared size for as long as the client likes. Once a body has been read for `idleTimeoutMs`,
 *     it must have arrived at `minBodyRate` bytes a second on average, else it is answered 400 RequestTimeout: as
 *     Apache's mod_reqtimeout (`body=20,MinRate=500`: every MinRate bytes buy one more second) and Kestrel's
 *     MinRequestBodyDataRate do. Only time the gateway spends reading counts; while it is not reading (before
 *     `100 Continue`, or while storage pushes back) the client is not at fault.
 *
 * The guard wraps the request listener: `createServer(options, guardConnections(app.callback(), options))`.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { S3Error } from '../errors.ts';
import { errorBody } from '../middleware/respond.ts';
import { answeredLast, bodyUnread } from './lingering-close.ts';
import { newRequestId } from '../middleware/request-id.ts';

/** Settings of guardConnections. */
export interface ConnectionGuardOptions {
  /** Longest a running request may go without a byte received or sent while it waits on the client. */
  idleTimeoutMs: number;
  /** Least average rate, in bytes a second, of a body read for longer than `idleTimeoutMs`; 0 disables it. */
  minBodyRate?: number;
  /**
   * Called once for each request that will never run: parsed behind its connection's last answer, or still queued
   * when its connection closed. Node never writes nor closes the response of such a request (it sits in the
   * connection's queue of responses until the socket is gone), so whoever counts requests until their response
   * closes must stop counting this one here.
   */
  dropped?: (req: IncomingMessage, res: ServerResponse) => void;
}

/** A request parsed on a connection and not yet started. */
interface Queued {
  req: IncomingMessage;
  res: ServerResponse;
}

/** The requests of one connection: whether one is running, and those parsed behind it. */
interface Lane {
  busy: boolean;
  waiting: Queued[];
}

/** Wraps `handler` so each connection's requests run one after another, each under the progress timeout. */
export function guardConnections(handler: RequestListener, options: ConnectionGuardOptions): RequestListener {
  const lanes = new WeakMap<Socket, Lane>();

  /** Gives up `first` (when given) and everything queued behind it: none of them will be answered. */
  const dropAll = (lane: Lane, first?: Queued): void => {
    const dropped = first ? [first, ...lane.waiting] : lane.waiting;
    lane.waiting = [];
    for (const { req, res } of dropped) {
      // Its body, if any, is read and thrown away with the rest of the connection's bytes.
      req.resume();
      options.dropped?.(req, res);
    }
  };

  const laneOf = (socket: Socket): Lane => {
    let lane = lanes.get(socket);
    if (!lane) {
      const created: Lane = { busy: false, waiting: [] };
      // A closed connection answers nothing more: drop what was parsed behind the request that was running.
      socket.once('close', () => dropAll(created));
      lanes.set(socket, created);
      lane = created;
    }
    return lane;
  };

  const start = (lane: Lane, queued: Queued): void => {
    const { req, res } = queued;
    const socket = req.socket;
    // The connection already gave its last answer (Connection: close) and is only draining, or it is gone: a request
    // parsed behind that answer is not served (RFC 9112 §9.6), nor is anything queued behind it.
    if (answeredLast(socket) || socket.destroyed) return dropAll(lane, queued);
    lane.busy = true;
    res.once('close', () => {
      lane.busy = false;
      const next = lane.waiting.shift();
      if (next) start(lane, next);
    });
    watchProgress(req, res, options.idleTimeoutMs);
    watchPace(req, res, { graceMs: options.idleTimeoutMs, minBodyRate: options.minBodyRate ?? 0 });
    void handler(req, res);
  };

  return function guardedRequest(req: IncomingMessage, res: ServerResponse): void {
    const lane = laneOf(req.socket);
    if (lane.busy) lane.waiting.push({ req, res });
    else start(lane, { req, res });
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

/** How often a body's pace is sampled, in milliseconds. */
const PACE_SAMPLE_MS = 1000;

/**
 * Samples, once a second while `req`'s body is arriving and unanswered, whether the gateway is reading it, and answers
 * 400 RequestTimeout once the body has been read for longer than `graceMs` and has averaged less than `minBodyRate`
 * bytes a second over that reading time (received < rate × (read time − grace)).
 */
function watchPace(req: IncomingMessage, res: ServerResponse, opts: { graceMs: number; minBodyRate: number }): void {
  if (opts.minBodyRate <= 0 || opts.graceMs <= 0 || !bodyUnread(req)) return;
  const socket = req.socket;
  // The socket's count, not a 'data' listener (which would start the body flowing before the app asks for it). It
  // may include requests pipelined behind this one: in the client's favour only.
  const before = socket.bytesRead;
  let readingMs = 0;
  const timer = setInterval(() => {
    if (req.complete || res.headersSent || req.destroyed) return stop();
    // Not flowing: the app has not started reading (authorizing, 100 Continue not sent) or storage pushes back.
    if (req.readableFlowing !== true || req.readableLength > 0) return;
    readingMs += PACE_SAMPLE_MS;
    if (readingMs <= opts.graceMs) return;
    if (socket.bytesRead - before >= (opts.minBodyRate * (readingMs - opts.graceMs)) / 1000) return;
    stop();
    answerRequestTimeout(req, res);
  }, PACE_SAMPLE_MS);
  timer.unref();
  function stop(): void {
    clearInterval(timer);
  }
  res.once('close', stop);
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

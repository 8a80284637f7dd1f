/**
 * Answers to requests Node refuses before the app sees them, written straight to the socket: a method Node's parser
 * does not accept (`get`, `Delete`: methods are case-sensitive, RFC 9110 §9.1), a malformed request line or header,
 * an oversized header section (the server's 'clientError' event), and CONNECT (the 'connect' event, which Node
 * otherwise answers by closing the connection), and an `Expect` other than `100-continue` (the 'checkExpectation' event,
 * which Node otherwise answers with a bare 417). Each gets an S3 error document with a request id and, like every
 * answer of the app (gateway/middleware/observe.ts), one access line and one count in anvil_requests_total.
 * A parse failure inside the body of a request the app is already serving (chunked framing that breaks off, say) is
 * that request's answer instead: it goes out on the request's own response, under its request id, and the app's
 * access line and count are the only ones.
 * Source of the events: Node.js HTTP documentation, `Event: 'clientError'`, `Event: 'connect'` and
 * `Event: 'checkExpectation'`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { S3Error } from '../errors.ts';
import { answerAndAbort } from './connection-guard.ts';
import { accessLogger, type Logger } from '../logging.ts';
import type { GatewayMetrics } from '../metrics.ts';
import { chargeSocket } from '../middleware/observe.ts';
import { newRequestId } from '../middleware/request-id.ts';
import { errorBody } from '../middleware/respond.ts';

/** Where early answers are observed. */
export interface EarlyAnswerOptions {
  logger: Logger;
  metrics: GatewayMetrics;
  accessLog: boolean;
}

/** The reason phrases of the statuses answered here. */
const REASONS: Record<number, string> = { 400: 'Bad Request', 405: 'Method Not Allowed' };

/**
 * The method token of a request Node could not parse, for the access line: the request line's first word when it is
 * a plain token (`get`), else undefined. Never more of the line: the target may hold a presigned URL's signature.
 */
function methodOf(raw: Buffer | undefined): string | undefined {
  if (!raw) return undefined;
  const m = /^([A-Za-z]{1,20}) /.exec(raw.subarray(0, 21).toString('latin1'));
  return m?.[1];
}

/** The server's 'clientError', 'connect' and 'checkExpectation' listeners, observed as `opts` says. */
export function earlyAnswers(opts: EarlyAnswerOptions): {
  clientError: (err: Error & { code?: string; rawPacket?: Buffer }, socket: Duplex) => void;
  connect: (req: IncomingMessage, socket: Duplex) => void;
  checkExpectation: (req: IncomingMessage, res: ServerResponse) => void;
} {
  const logger = accessLogger(opts.logger);

  /** The access line and count of an early answer, once `socket` closed (all its bytes are counted then). */
  const observeOnClose = (socket: Duplex, started: number, line: { requestId: string; method: string | undefined; err: S3Error }): void => {
    socket.once('close', () => {
      const { bytesIn, bytesOut } = chargeSocket(socket as Duplex & { bytesRead: number; bytesWritten: number });
      const seconds = (performance.now() - started) / 1000;
      opts.metrics.answered('-', line.err.status, seconds, bytesIn, bytesOut);
      if (!opts.accessLog) return;
      logger.info(
        {
          requestId: line.requestId,
          method: line.method,
          operation: '-',
          status: line.err.status,
          bytesIn,
          bytesOut,
          durationMs: Math.round(seconds * 10_000) / 10,
          remoteAddress: (socket as Duplex & { remoteAddress?: string }).remoteAddress,
          error: line.err.code,
        },
        'request',
      );
    });
  };

  /** Writes `err` as the connection's last answer, then observes it once the socket closes. */
  const answer = (socket: Duplex, err: S3Error, method: string | undefined): void => {
    const requestId = newRequestId();
    const body = errorBody(err, requestId, '');
    observeOnClose(socket, performance.now(), { requestId, method, err });
    socket.end(
      `HTTP/1.1 ${err.status} ${REASONS[err.status] ?? 'Bad Request'}\r\nContent-Type: application/xml\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nx-amz-request-id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
    );
  };

  return {
    // Oversized headers are RequestHeaderSectionTooLarge, every other parse failure InvalidRequest.
    clientError(err, socket) {
      // A reset or half-closed connection cannot be answered (Node's documentation does the same).
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      const refusal = new S3Error(err.code === 'HPE_HEADER_OVERFLOW' ? 'RequestHeaderSectionTooLarge' : 'InvalidRequest');
      // The response of the request the app is serving on this connection, if any (Node's own bookkeeping).
      const running = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
      if (running?.req) {
        // Bytes of the running request's body: it is answered. Bytes after it (a request pipelined behind): the
        // connection closes once the running one is answered, as it would after any answer with Connection: close.
        if (!running.req.complete) answerAndAbort(running.req, running, refusal);
        else if (running.headersSent) socket.destroy();
        else running.shouldKeepAlive = false;
        return;
      }
      answer(socket, refusal, methodOf(err.rawPacket));
    },
    // An Expect other than 100-continue (RFC 9110 §10.1.1: a server that cannot meet an expectation answers 417).
    // The body it announced is never read: the answer closes the connection.
    checkExpectation(req, res) {
      const err = new S3Error('ExpectationFailed');
      const requestId = newRequestId();
      const body = errorBody(err, requestId, '');
      observeOnClose(req.socket, performance.now(), { requestId, method: req.method, err });
      res.shouldKeepAlive = false;
      res.writeHead(err.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), 'x-amz-request-id': requestId, connection: 'close' });
      res.end(body);
    },
    // S3 has no CONNECT: 405 MethodNotAllowed, as for other methods a resource lacks.
    connect(req, socket) {
      if (!socket.writable) {
        socket.destroy();
        return;
      }
      answer(socket, new S3Error('MethodNotAllowed'), req.method);
    },
  };
}

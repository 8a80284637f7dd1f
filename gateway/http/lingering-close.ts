/**
 * Lingering close, as nginx (`lingering_close`) and Apache do it. A response that refuses a request whose body is
 * still arriving ends the connection (`Connection: close`) rather than read gigabytes the gateway will not store. But
 * closing a socket while received bytes sit unread in the kernel makes the kernel answer with RST, and a client that
 * meets the RST before it reads the response loses the response: it sees ECONNRESET or EPIPE, and an SDK sends the
 * whole upload again instead of reporting the S3 error. So once the response is written the connection is
 * half-closed (FIN), whatever still arrives is read and dropped (never kept), and the socket is closed when the
 * client closes its side, or after LINGER_MS, or after LINGER_BYTES, whichever comes first: a client cannot hold it
 * open longer. RFC 9112 §9.6 describes the reset this avoids.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Longest a refused connection is drained after its response, in milliseconds. Enough for a client on a loaded
 * machine to finish sending and read the answer (nginx's per-read lingering_timeout is 5 s too); short enough that
 * a client that never stops sending holds the socket only briefly.
 */
export const LINGER_MS = 5_000;

/**
 * Most bytes drained from a refused connection before it is closed anyway. 64 MiB is well under a second on a
 * fast link, so the budget bounds the work a client can make the gateway do; on a slow link LINGER_MS comes first.
 */
export const LINGER_BYTES = 64 * 1024 * 1024;

/** Connections whose last response is marked: they linger once it is written. */
const marked = new WeakSet<Socket>();

/**
 * Makes `res` its connection's last response (`Connection: close`), and has the connection close lingering once
 * `res` is written: half-close, drain at most LINGER_BYTES for at most LINGER_MS, then close.
 */
export function closeAfterResponse(res: ServerResponse): void {
  res.setHeader('connection', 'close');
  const socket = res.socket;
  if (!socket || marked.has(socket)) return;
  marked.add(socket);
  // Node ends the connection of a response that says close with socket.destroySoon() once the response is written
  // (lib/_http_server.js, resOnFinish; TLS sockets inherit it): on this socket that call lingers instead.
  socket.destroySoon = () => linger(socket, res.req);
}

/**
 * Whether a request's body may still be arriving unread: it declared one (a non-zero Content-Length, or
 * Transfer-Encoding) and has not ended. An error answer to such a request goes out with closeAfterResponse.
 */
export function bodyUnread(req: IncomingMessage): boolean {
  if (req.readableEnded) return false;
  const length = req.headers['content-length'];
  return length !== undefined ? length !== '0' : req.headers['transfer-encoding'] !== undefined;
}

/** True once the connection has sent its last response: a request still parsed on it must not run (RFC 9112 §9.6). */
export function answeredLast(socket: Socket): boolean {
  return marked.has(socket) || socket.writableEnded;
}

function linger(socket: Socket, req: IncomingMessage): void {
  if (socket.destroyed) return;
  // end() flushes the response, then sends FIN: the client reads the answer to its end.
  socket.end();
  const close = (): void => {
    socket.destroy();
  };
  const timer = setTimeout(close, LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  // The client closed its side: nothing more arrives, so closing now sends no reset.
  socket.once('end', close);
  // Node's HTTP parser keeps reading the socket, and resOnFinish has already set the refused body flowing to nowhere
  // (req._dump). The bytes are counted on the request, not the socket: a 'data' listener on the socket takes it from
  // the parser (unconsume in lib/_http_server.js), and one the parser had paused for backpressure then stays paused.
  // Whatever the request was still piped into (a POST form's parser whose file the store stopped reading) is done
  // with it: left attached, a reader that no longer reads would hold the request paused and the drain with it.
  req.unpipe();
  let drained = 0;
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > LINGER_BYTES) close();
  });
  req.resume();
}

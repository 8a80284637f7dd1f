/**
 * How a request's body reaches the stream that reads it (the body verifier, and behind it storage), for the S3
 * operations and the admin API alike. `stream.pipeline(req, sink)` is the obvious tool and the wrong one here: when
 * any stream of a pipeline ends early, pipeline destroys all of them, and destroying an IncomingMessage whose body is
 * still arriving destroys its socket. A store that stops reading on purpose (a precondition failed, the bucket is
 * gone) destroys its stream, so the socket was closed with unread bytes in the kernel, which answers them with a
 * reset: the client never read the 412 or 404, and an SDK sends the whole upload again. So the two directions are
 * kept apart: the request failing ends the reader with that error, as pipeline does (nothing is stored), but the
 * reader ending early only detaches it, and the connection's end is left to the responder, which closes it lingering
 * (gateway/http/lingering-close.ts) after the client has its answer.
 */
import type { IncomingMessage } from 'node:http';
import { finished, type Writable } from 'node:stream';

/**
 * Feeds `req`'s body into `sink` with backpressure, ending it when the body ends. The request failing or closing
 * before its end (a client that disconnects, the connection guard's RequestTimeout) destroys `sink` with that error
 * (ERR_STREAM_PREMATURE_CLOSE for a bare close). `sink` ending or failing first detaches it and leaves `req` paused
 * and open. Returns `detach`, which stops feeding and destroys `sink` (no error) when the body has not ended: what a
 * caller does once nothing will read `sink` any more, so the rest of the body is only the connection's to drain.
 */
export function feedBody(req: IncomingMessage, sink: Writable): () => void {
  finished(req, (err) => {
    if (err && !sink.destroyed) sink.destroy(err);
  });
  // Keeps an 'error' listener on `sink` for good: pipe's own goes away with the first error, and a verifier that
  // fails before storage starts reading must not become an uncaught exception.
  finished(sink, () => {
    req.unpipe(sink);
  });
  req.pipe(sink);
  return function detach() {
    if (req.readableEnded) return;
    req.unpipe(sink);
    if (!sink.destroyed) sink.destroy();
  };
}

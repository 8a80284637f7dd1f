/** The one size-limited body reader: admin JSON, STS forms and S3's XML documents are read whole through it. */
import { finished, type Readable } from 'node:stream';

/**
 * Reads a stream whole, rejecting with what `tooLarge` makes as soon as more than `limit` bytes have arrived (the
 * rest is never buffered). Errors of the stream itself, and a close before its end, reject with that error.
 * A refused stream is paused and left as it is, never destroyed (which `for await` would do on the throw): when it is
 * the request, destroying it destroys the socket with the rest of the body unread, and the kernel's reset would
 * reach the client before the answer; the responder's lingering close (gateway/http/lingering-close.ts) drains it.
 */
export function readLimited(stream: Readable, limit: number, tooLarge: () => Error): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const onData = (chunk: Buffer | string): void => {
      if (settled) return;
      const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      size += bytes.length;
      if (size <= limit) return void chunks.push(bytes);
      settled = true;
      stream.off('data', onData);
      stream.pause();
      reject(tooLarge());
    };
    // Stays attached once settled: the stream keeps an 'error' listener, so a later failure is never uncaught.
    finished(stream, { writable: false }, (err) => {
      if (settled) return;
      settled = true;
      stream.off('data', onData);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks, size));
    });
    stream.on('data', onData);
  });
}

/**
 * The ceiling, run as its own process: a bare Node HTTP server that only reads request bodies and writes response
 * bytes, answering just enough of S3 for every client the bench uses (an ETag on PUT, the stored size on GET). No
 * auth, no storage. Prints `bare server listening on http://127.0.0.1:<port>` once ready.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const SLICE = 1024 * 1024;
/** Object sizes by path: what a GET answers with. */
const sizes = new Map<string, number>();
let payload = Buffer.alloc(0);

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q >= 0 ? url.slice(0, q) : url;
  if (req.method === 'PUT') {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => {
      sizes.set(path, n);
      res.writeHead(200, { etag: '"00000000000000000000000000000000"', 'content-length': 0 });
      res.end();
    });
    return;
  }
  const size = sizes.get(path) ?? 0;
  if (payload.length < size) payload = Buffer.alloc(size, 0x61);
  res.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream', etag: '"00000000000000000000000000000000"' });
  // Written in 1 MiB slices with backpressure, as a streaming server would.
  let off = 0;
  const pump = (): void => {
    while (off < size) {
      const end = Math.min(size, off + SLICE);
      const ok = res.write(payload.subarray(off, end));
      off = end;
      if (!ok) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`bare server listening on http://127.0.0.1:${port}\n`);
});
const stop = (): void => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

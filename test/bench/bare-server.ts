/**
 * The ceiling: a bare Node HTTP server that only reads request bodies and writes response bytes, answering just
 * enough of S3 for the SDK (an ETag on PUT, a body on GET). No auth, no storage.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Starts the bare server on a loopback ephemeral port; objects are remembered by size only. */
export async function startBareServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sizes = new Map<string, number>();
  let payload = Buffer.alloc(0);
  const server: Server = createServer((req, res) => {
    const path = req.url?.split('?')[0] ?? '/';
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
    res.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream', etag: '"x"' });
    // Write in 1 MiB slices, as a streaming server would.
    let off = 0;
    const pump = () => {
      while (off < size) {
        const end = Math.min(size, off + 1024 * 1024);
        const ok = res.write(payload.subarray(off, end));
        off = end;
        if (!ok) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

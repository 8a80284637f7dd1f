/** A write whose body is held back while the test changes the bucket under it. */
import { request } from 'node:http';

/** A request for inFlightRequest: `url` with its path and query, and the two parts of its body. */
export interface InFlight {
  url: string;
  method?: string;
  /** Extra headers, e.g. a signature's; Content-Length and Expect are added. */
  headers?: Record<string, string>;
  first: Buffer;
  rest: Buffer;
}

/**
 * A request over node:http that declares first.length + rest.length bytes, sends `first` once the gateway
 * authorized it (Expect: 100-continue), gives the gateway a moment to start the write, runs `meanwhile`, then sends
 * `rest`. The answer's status and body.
 */
export function inFlightRequest(r: InFlight, meanwhile: () => Promise<void>): Promise<{ status: number; body: string }> {
  const u = new URL(r.url);
  return new Promise((resolve, reject) => {
    const req = request({
      host: u.hostname,
      port: u.port,
      method: r.method ?? 'PUT',
      path: u.pathname + u.search,
      headers: { ...r.headers, 'content-length': String(r.first.length + r.rest.length), expect: '100-continue' },
    });
    req.on('continue', () => {
      req.write(r.first);
      setTimeout(() => {
        meanwhile().then(() => req.end(r.rest), (err: unknown) => {
          req.destroy();
          reject(err);
        });
      }, 1000);
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}

/** inFlightRequest for a PUT to presigned `url`. */
export function inFlightPut(url: string, first: Buffer, rest: Buffer, meanwhile: () => Promise<void>): Promise<{ status: number; body: string }> {
  return inFlightRequest({ url, first, rest }, meanwhile);
}

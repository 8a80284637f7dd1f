/** A write whose body is held back while the test changes the bucket under it. */
import { request } from 'node:http';

/**
 * A PUT to presigned `url` over node:http that declares first.length + rest.length bytes, sends `first` once the
 * gateway authorized it (Expect: 100-continue), gives the gateway a moment to start the upstream write, runs
 * `meanwhile`, then sends `rest`. The answer's status and body.
 */
export function inFlightPut(url: string, first: Buffer, rest: Buffer, meanwhile: () => Promise<void>): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({
      host: u.hostname,
      port: u.port,
      method: 'PUT',
      path: u.pathname + u.search,
      headers: { 'content-length': String(first.length + rest.length), expect: '100-continue' },
    });
    req.on('continue', () => {
      req.write(first);
      setTimeout(() => {
        meanwhile().then(() => req.end(rest), (err: unknown) => {
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

/**
 * The honest ceiling for the gateway in front of MinIO, run as its own process: a bare Node HTTP proxy that forwards
 * each request (method, path, query and every header, Host included, so the client's signature still verifies) to
 * the upstream given as its argument on a keep-alive agent, and pipes both bodies. No auth, no checks, no parsing:
 * what any Node proxy hop costs on this machine. Prints `bare proxy listening on http://127.0.0.1:<port>` once ready.
 */
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

const upstream = new URL(process.argv[2] ?? '');
if (upstream.protocol !== 'http:') throw new Error('usage: bare-proxy.ts http://<upstream host>:<port>');
// The gateway's upstream agents have the same settings (storage/upstream/client.ts).
const agent = new Agent({ keepAlive: true, maxSockets: 50 });

const server = createServer((req, res) => {
  const up = request({ agent, hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, setHost: false }, (upRes) => {
    res.writeHead(upRes.statusCode ?? 502, upRes.headers);
    upRes.pipe(res);
  });
  up.on('error', () => res.destroy());
  res.on('close', () => {
    if (!res.writableFinished) up.destroy();
  });
  req.pipe(up);
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`bare proxy listening on http://127.0.0.1:${port}\n`);
});
const stop = (): void => {
  server.closeAllConnections();
  agent.destroy();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

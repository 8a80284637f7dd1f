/**
 * The ceiling of any hop in front of MinIO, run as its own process: a TCP forwarder that pipes each connection's bytes
 * both ways to the upstream given as its argument, with no HTTP parsing at all (Nagle off on both sides, as node:http
 * sets it). Whatever a proxy does on top (parsing, checks, signing) can only cost more, so gateway → MinIO ÷ MinIO
 * cannot exceed this forwarder ÷ MinIO on the same machine. The Host header passes through untouched, so a client
 * signs for the forwarder's URL with MinIO's credentials. Prints `TCP forwarder listening on http://127.0.0.1:<port>`.
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

const upstream = new URL(process.argv[2] ?? '');
if (upstream.protocol !== 'http:') throw new Error('usage: tcp-forwarder.ts http://<upstream host>:<port>');

const sockets = new Set<Socket>();
const server = createServer({ noDelay: true }, (client) => {
  const up = connect({ host: upstream.hostname, port: Number(upstream.port), noDelay: true });
  for (const s of [client, up]) {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  }
  client.pipe(up);
  up.pipe(client);
  client.on('error', () => up.destroy());
  up.on('error', () => client.destroy());
  client.on('close', () => up.destroy());
  up.on('close', () => client.destroy());
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`TCP forwarder listening on http://127.0.0.1:${port}\n`);
});
const stop = (): void => {
  for (const s of sockets) s.destroy();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

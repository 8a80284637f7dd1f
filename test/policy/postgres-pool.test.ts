/**
 * The PostgreSQL pool under the policy store (policy/database/dialects.ts) when the network between it and a real
 * PostgreSQL breaks: a pooled connection found gone, with no new one to be had (a database restarting), fails the one
 * statement as unavailable (503) and never releases a connection twice — pg-pool throws on that, and thrown from a
 * callback it ended the process.
 */
import test from 'ava';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { postgresDialect } from '../../policy/database/dialects.ts';
import { isPolicyUnavailable } from '../../policy/index.ts';
import { postgresOrExplain, sharedPostgres } from '../helpers/postgres.ts';

/** A TCP relay to PostgreSQL that can be cut: every relayed connection dropped, new ones refused. */
async function relay(port: number): Promise<{ port: number; cut(): void }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', drop);
      s.on('close', drop);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    cut() {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

if (postgresOrExplain(test, 'postgres pool')) {
  test.after.always(async () => (await sharedPostgres()).close());

  test('a pooled connection found gone while no new one can be opened: the statement fails as unavailable, nothing released twice', async (t) => {
    const server = await sharedPostgres();
    const url = await server.createDatabase();
    const link = await relay(server.port);
    const { pool } = postgresDialect(url.replace(`:${server.port}/`, `:${link.port}/`), { max: 2, timeoutMs: 2_000 });
    const uncaught: unknown[] = [];
    const record = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', record);
    process.on('unhandledRejection', record);
    try {
      await pool.query('SELECT 1'); // one idle connection in the pool
      // In the same tick: the pool hands out that connection before it hears it is gone, and its retry is refused.
      link.cut();
      const failed = await Promise.race([
        pool.query('SELECT 1').then(() => undefined, (error: unknown) => error),
        new Promise((resolve) => setTimeout(() => resolve('no answer within 20 s'), 20_000).unref()),
      ]);
      t.truthy(failed, 'the statement failed');
      t.true(isPolicyUnavailable(failed), String(failed));
      await new Promise((resolve) => setTimeout(resolve, 200));
      t.deepEqual(uncaught.map(String), []);
      // Through the pool's checkout (Kysely's path) the same.
      const client = await pool.connect().then((c) => c, (error: unknown) => error);
      t.true(isPolicyUnavailable(client), String(client));
    } finally {
      process.off('uncaughtException', record);
      process.off('unhandledRejection', record);
      await pool.end().catch(() => {});
    }
  });
}

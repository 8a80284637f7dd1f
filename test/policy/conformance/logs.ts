/**
 * Conformance: the denial and audit logs in every policy database engine — batched denial rows and their filters,
 * retention, secrets scrubbed from rows and from the stdout echo, and following what every node writes.
 */
import type { ExecutionContext, TestFn } from 'ava';
import { DenialLog, followAudit, followDenials, purgeAudit, purgeDenials, queryAudit, queryDenials, scrubSecrets, type DenialRecord } from '../../../policy/index.ts';
import type { PolicyFactory } from './factory.ts';

const SIG = 'ab'.repeat(32);

function record(overrides: Partial<DenialRecord> = {}): DenialRecord {
  return {
    time: new Date().toISOString(),
    requestId: 'req-1',
    tenant: 'acme',
    accessKeyId: 'AKIAACMEACMEACMEACME',
    action: 'GetObject',
    bucket: 'backups',
    key: 'host2/a.tar',
    layer: 'scope',
    reason: 'no grant of object:read on bucket backups for key host2/a.tar',
    ...overrides,
  };
}

/** Registers the log tests against one engine. */
export function logSuite(test: TestFn, f: PolicyFactory): void {
  async function open(t: ExecutionContext, stream?: { write(chunk: string): unknown }) {
    const database = await (await f.fresh(t)).open();
    const log = new DenialLog({ database, stream });
    t.teardown(() => log.close());
    return { database, log };
  }

  test(`${f.engine}: denials are written in batches and queried back in order, with the node that refused them`, async (t) => {
    const { database, log } = await open(t);
    log.write(record());
    log.write(record({ requestId: 'req-2', layer: 'tenant', tenant: 'globex', accessKeyId: 'AKIAGLOBEX', bucket: 'gx', key: 'k' }));
    await log.flush();
    const all = await queryDenials(database);
    t.deepEqual(all.map((r) => r.requestId), ['req-1', 'req-2']);
    t.like(all[0], { requestId: 'req-1', layer: 'scope', node: database.node });
    // A burst becomes a few multi-row inserts, and nothing is lost.
    for (let i = 0; i < 1200; i++) log.write(record({ requestId: `burst-${i}` }));
    await log.flush();
    t.is((await queryDenials(database, { keyPrefix: 'host2/' })).length, 1201);
  });

  test(`${f.engine}: denial filters: time, tenant, key id, layer, bucket, key prefix and the newest limit`, async (t) => {
    const { database, log } = await open(t);
    const base = Date.parse('2026-01-01T00:00:00Z');
    for (let i = 0; i < 10; i++) {
      log.write(record({
        time: new Date(base + i * 60_000).toISOString(),
        requestId: `r${i}`,
        tenant: i % 2 === 0 ? 'acme' : 'globex',
        accessKeyId: `AKIA${i}`,
        layer: i < 5 ? 'scope' : 'tenant',
        bucket: i < 3 ? 'backups' : 'photos',
        key: i % 3 === 0 ? `host1/${i}` : `host2/${i}`,
      }));
    }
    await log.flush();
    const ids = async (filter: Parameters<typeof queryDenials>[1]) => (await queryDenials(database, filter)).map((r) => r.requestId);
    t.deepEqual(await ids({ since: new Date(base + 8 * 60_000) }), ['r8', 'r9']);
    t.deepEqual(await ids({ until: new Date(base + 60_000) }), ['r0', 'r1']);
    t.deepEqual(await ids({ tenant: 'globex', layer: 'scope' }), ['r1', 'r3']);
    t.deepEqual(await ids({ accessKeyId: 'AKIA4' }), ['r4']);
    t.deepEqual(await ids({ bucket: 'backups' }), ['r0', 'r1', 'r2']);
    t.deepEqual(await ids({ keyPrefix: 'host1/' }), ['r0', 'r3', 'r6', 'r9']);
    t.deepEqual(await ids({ keyPrefix: 'host%' }), [], 'a prefix is no LIKE pattern');
    t.deepEqual(await ids({ limit: 3 }), ['r7', 'r8', 'r9']);
    t.deepEqual(await ids({ tenant: 'nobody' }), []);
    t.is(await purgeDenials(database, new Date(base + 5 * 60_000)), 5);
    t.deepEqual(await ids({}), ['r5', 'r6', 'r7', 'r8', 'r9']);
  });

  test(`${f.engine}: no 64-hex string (signature) survives into the rows or the stream`, async (t) => {
    const streamed: string[] = [];
    const { database, log } = await open(t, { write: (chunk: string) => streamed.push(chunk) });
    log.write(record({
      layer: 'signature',
      reason: `signature ${SIG} does not match; Signature=${SIG.toUpperCase()}`,
      userAgent: `curl ${SIG}`,
      requestId: `id-${SIG}`,
    }));
    await log.flush();
    const rows = JSON.stringify(await queryDenials(database));
    for (const text of [rows, streamed.join('')]) {
      t.notRegex(text, /[0-9a-fA-F]{64}/);
      t.true(text.includes('[redacted]'));
    }
    t.is(streamed.length, 1);
    t.is(scrubSecrets('Signature=abc123,SignedHeaders=host'), 'Signature=[redacted],SignedHeaders=host');
    t.is(scrubSecrets('short deadbeef stays'), 'short deadbeef stays');
  });

  test(`${f.engine}: a follower sees what any node writes from then on, once, and only what matches`, async (t) => {
    const env = await f.fresh(t);
    const [a, b] = [await env.open(), await env.open()];
    const logA = new DenialLog({ database: a });
    const logB = new DenialLog({ database: b });
    logA.write(record({ requestId: 'before' }));
    await logA.flush();
    const seen: string[] = [];
    const controller = new AbortController();
    const following = followDenials(b, { tenant: 'acme' }, (r) => seen.push(r.requestId), controller.signal);
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (let i = 0; i < 6; i++) {
      (i % 2 === 0 ? logA : logB).write(record({ requestId: `f${i}` }));
      logA.write(record({ requestId: `skip${i}`, tenant: 'globex' }));
      await Promise.all([logA.flush(), logB.flush()]);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    // Waits until the follower has polled past the last line.
    const deadline = Date.now() + 10_000;
    while (seen.length < 6 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    controller.abort();
    await following;
    await Promise.all([logA.close(), logB.close()]);
    t.deepEqual(seen, Array.from({ length: 6 }, (_, i) => `f${i}`));
  });

  test(`${f.engine}: audit rows follow their changes, across nodes, and age out`, async (t) => {
    const env = await f.fresh(t);
    const store = await env.store();
    const other = await env.store();
    const seen: string[] = [];
    const controller = new AbortController();
    const following = followAudit(other.database, { action: 'tenant.create' }, (r) => seen.push(r.tenant!), controller.signal);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await store.createTenant({ name: 'acme' });
    await other.createTenant({ name: 'globex' });
    await store.disableTenant('acme');
    const deadline = Date.now() + 10_000;
    while (seen.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    controller.abort();
    await following;
    t.deepEqual(seen.sort(), ['acme', 'globex']);
    const rows = await queryAudit(other.database, { tenant: 'acme' });
    t.deepEqual(rows.map((r) => r.action), ['tenant.create', 'tenant.disable']);
    t.is(rows[0]!.node, store.database.node);
    t.true((await purgeAudit(store.database, new Date(Date.now() + 1000))) >= 3);
    t.deepEqual(await queryAudit(other.database), []);
  });
}

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { DenialLog, followDenials, queryDenials, scrubSecrets, type DenialRecord } from '../../policy/index.ts';
import { tempDataDir } from './helpers.ts';

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

test('writes one JSON line per denial and queries them back', async (t) => {
  const dir = tempDataDir(t);
  const log = new DenialLog({ dataDir: dir });
  log.write(record());
  log.write(record({ requestId: 'req-2', layer: 'tenant', tenant: 'globex', accessKeyId: 'AKIAGLOBEX', bucket: 'gx', key: 'k' }));
  const lines = readFileSync(join(dir, 'denials.log'), 'utf8').trim().split('\n');
  t.is(lines.length, 2);
  t.like(JSON.parse(lines[0]!), { requestId: 'req-1', layer: 'scope' });
  const all = await queryDenials(dir);
  t.deepEqual(all.map((r) => r.requestId), ['req-1', 'req-2']);
});

test('filters by time, tenant, key id, layer, bucket, key prefix and limit', async (t) => {
  const dir = tempDataDir(t);
  const log = new DenialLog({ dataDir: dir });
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
  const ids = async (filter: Parameters<typeof queryDenials>[1]) => (await queryDenials(dir, filter)).map((r) => r.requestId);
  t.deepEqual(await ids({ since: new Date(base + 8 * 60_000) }), ['r8', 'r9']);
  t.deepEqual(await ids({ until: new Date(base + 60_000) }), ['r0', 'r1']);
  t.deepEqual(await ids({ tenant: 'globex', layer: 'scope' }), ['r1', 'r3']);
  t.deepEqual(await ids({ accessKeyId: 'AKIA4' }), ['r4']);
  t.deepEqual(await ids({ bucket: 'backups' }), ['r0', 'r1', 'r2']);
  t.deepEqual(await ids({ keyPrefix: 'host1/' }), ['r0', 'r3', 'r6', 'r9']);
  t.deepEqual(await ids({ limit: 3 }), ['r7', 'r8', 'r9']);
  t.deepEqual(await ids({ tenant: 'nobody' }), []);
});

test('rotates by size, keeps N files, and queries across them oldest first', async (t) => {
  const dir = tempDataDir(t);
  const log = new DenialLog({ dataDir: dir, maxBytes: 1000, keep: 2 });
  for (let i = 0; i < 30; i++) log.write(record({ requestId: `r${String(i).padStart(2, '0')}` }));
  t.true(existsSync(join(dir, 'denials.log.1')));
  t.true(existsSync(join(dir, 'denials.log.2')));
  t.false(existsSync(join(dir, 'denials.log.3')));
  const ids = (await queryDenials(dir)).map((r) => r.requestId);
  t.true(ids.length < 30, 'the oldest files were dropped');
  t.is(ids.at(-1), 'r29');
  t.deepEqual(ids, [...ids].sort(), 'newest last');
  const expected = Array.from({ length: ids.length }, (_, i) => `r${String(30 - ids.length + i).padStart(2, '0')}`);
  t.deepEqual(ids, expected, 'no line lost inside the kept window');
});

test('no 64-hex string (signature) survives into the log or the stream', async (t) => {
  const dir = tempDataDir(t);
  const streamed: string[] = [];
  const log = new DenialLog({ dataDir: dir, stream: { write: (chunk: string) => streamed.push(chunk) } });
  log.write(record({
    layer: 'signature',
    reason: `signature ${SIG} does not match; Signature=${SIG.toUpperCase()}`,
    userAgent: `curl ${SIG}`,
    requestId: `id-${SIG}`,
  }));
  const raw = readFileSync(join(dir, 'denials.log'), 'utf8');
  for (const text of [raw, streamed.join('')]) {
    t.notRegex(text, /[0-9a-fA-F]{64}/);
    t.true(text.includes('[redacted]'));
  }
  t.is(streamed.length, 1);
  t.is(scrubSecrets('Signature=abc123,SignedHeaders=host'), 'Signature=[redacted],SignedHeaders=host');
  t.is(scrubSecrets('short deadbeef stays'), 'short deadbeef stays');
});

test('follow sees new lines and survives rotation', async (t) => {
  const dir = tempDataDir(t);
  const log = new DenialLog({ dataDir: dir, maxBytes: 600, keep: 3 });
  log.write(record({ requestId: 'before' }));
  const seen: string[] = [];
  const controller = new AbortController();
  const following = followDenials(dir, { tenant: 'acme' }, (r) => seen.push(r.requestId), controller.signal);
  await new Promise((resolve) => setTimeout(resolve, 50));
  for (let i = 0; i < 8; i++) {
    log.write(record({ requestId: `f${i}` }));
    log.write(record({ requestId: `skip${i}`, tenant: 'globex' }));
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  controller.abort();
  await following;
  t.true(existsSync(join(dir, 'denials.log.1')), 'the log rotated while followed');
  t.deepEqual(seen, Array.from({ length: 8 }, (_, i) => `f${i}`));
});

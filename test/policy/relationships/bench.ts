/**
 * Check latency over 1,000,000 generated tuples (groups nested 3 deep, folders 4 deep, DEFAULT_OBJECT_SCHEMA with
 * implicit parents) with cold and warm caches, and listing-filter throughput over a 100,000-key bucket.
 * Run: npx tsx test/policy/relationships/bench.ts   (not a test)
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DEFAULT_OBJECT_SCHEMA, Relationships } from '../../../policy/relationships/index.ts';

const TOTAL = Number(process.env.BENCH_TUPLES ?? 1_000_000);
const dir = mkdtempSync(join(tmpdir(), 'anvil-rel-bench-'));
const tenant = 'bench';
let seed = 42;
/** mulberry32: deterministic, so runs compare. */
const rand = (n: number): number => {
  seed = (seed + 0x6d2b79f5) | 0;
  let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
  return ((x ^ (x >>> 14)) >>> 0) % n;
};

const setup = Relationships.open({ dataDir: dir });
setup.writeSchema(tenant, DEFAULT_OBJECT_SCHEMA, { actor: 'bench', reason: 'bench' });
setup.close();

const raw = new Database(join(dir, 'relationships.db'));
const insert = raw.prepare(
  `INSERT OR IGNORE INTO tuples (tenant, resource_type, resource_id, relation, subject_relation, subject_type, subject_id, created_revision)
   VALUES (?, ?, ?, ?, ?, ?, ?, 1)`,
);
let count = 0;
const add = (rt: string, rid: string, rel: string, st: string, sid: string, srel = ''): void => {
  count += insert.run(tenant, rt, rid, rel, srel, st, sid).changes;
};
const started = Date.now();
raw.transaction(() => {
  // Groups nested 3 deep: 10 top ⊃ 100 mid ⊃ 1000 leaf groups of 100 users each (users u0..u49999).
  for (let g = 0; g < 1000; g++) for (let m = 0; m < 100; m++) add('group', `leaf${g}`, 'member', 'user', `u${rand(50_000)}`);
  for (let g = 0; g < 1000; g++) add('group', `mid${g % 100}`, 'member', 'group', `leaf${g}`, 'member');
  for (let m = 0; m < 100; m++) add('group', `top${m % 10}`, 'member', 'group', `mid${m}`, 'member');
  // 10 buckets owned by top groups; the first holds 100,000 keys for the listing benchmark.
  for (let b = 0; b < 10; b++) add('bucket', `b${b}`, 'owner', 'group', `top${b}`, 'member');
  // Folders 4 deep with readers; objects with readers/writers until one million tuples.
  let i = 0;
  while (count < TOTAL) {
    const b = i < 100_000 ? 0 : 1 + (i % 9);
    const path = `f${i % 10}/g${(i >> 4) % 10}/h${(i >> 8) % 10}/k${(i >> 12) % 10}/`;
    if (i % 50 === 0) add('folder', `b${b}/${path}`, 'reader', 'group', `leaf${rand(1000)}`, 'member');
    add('object', `b${b}/${path}obj${i}`, i % 3 === 0 ? 'writer' : 'reader', i % 2 === 0 ? 'user' : 'group', i % 2 === 0 ? `u${rand(50_000)}` : `leaf${rand(1000)}`, i % 2 === 0 ? '' : 'member');
    i++;
  }
  raw.prepare('UPDATE tenant_revisions SET revision = revision + 1 WHERE tenant = ?').run(tenant);
})();
raw.close();
console.log(`generated ${count} tuples in ${((Date.now() - started) / 1000).toFixed(1)}s`);

const rel = Relationships.open({ dataDir: dir, cacheSize: 200_000 });
const queries = Array.from({ length: 5000 }, () => {
  const i = rand(400_000);
  const b = i < 100_000 ? 0 : 1 + (i % 9);
  const path = `f${i % 10}/g${(i >> 4) % 10}/h${(i >> 8) % 10}/k${(i >> 12) % 10}/`;
  return { resource: { type: 'object', id: `b${b}/${path}obj${i}` }, subject: { type: 'user', id: `u${rand(50_000)}` } };
});

function measure(label: string): void {
  const times: number[] = [];
  let allowed = 0;
  for (const q of queries) {
    const t0 = process.hrtime.bigint();
    if (rel.check(tenant, q.resource, 'read', q.subject, { context: { now: new Date(), client_ip: '10.0.0.1' } }).result === 'allowed') allowed++;
    times.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  const p = (q: number): string => (times[Math.floor(q * (times.length - 1))] as number).toFixed(1);
  console.log(`${label}: ${queries.length} checks, p50 ${p(0.5)} µs, p99 ${p(0.99)} µs, allowed ${allowed}`);
}
measure('cold');
measure('warm');

const keys: string[] = [];
for (let i = 0; i < 100_000; i++) keys.push(`b0/f${i % 10}/g${(i >> 4) % 10}/h${(i >> 8) % 10}/k${(i >> 12) % 10}/obj${i}`);
keys.sort();
for (const label of ['listing cold', 'listing warm']) {
  const t0 = Date.now();
  let visible = 0;
  for (let page = 0; page < keys.length; page += 1000) visible += rel.filterResources(tenant, 'object', keys.slice(page, page + 1000), 'read', 'user:u123').length;
  const ms = Date.now() - t0;
  console.log(`${label}: 100,000 keys filtered in ${ms} ms (${Math.round(100_000 / (ms / 1000))} keys/s), ${visible} visible`);
}
rel.close();
rmSync(dir, { recursive: true, force: true });

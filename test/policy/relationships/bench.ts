/**
 * Check latency over 1,000,000 generated tuples (groups nested 3 deep, folders 4 deep, DEFAULT_OBJECT_SCHEMA with
 * implicit parents, plus clearance groups read through a `.all()` arrow on some folders), with cold and warm caches,
 * and listing-filter throughput over a 100,000-key bucket. One tuple in five expires (a day ahead) and one in fifty
 * has already expired, so expiry filtering and expiry-bounded caching are on the measured path.
 * The same tuples go into SQLite or, with `url`, a PostgreSQL database, so the two engines' rows sit side by side.
 * Run: npx tsx test/policy/relationships/bench.ts [postgres://…]   (not a test; BENCH_TUPLES overrides the size)
 * Or import runRelationshipBench() from a benchmark driver.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicyDatabase } from '../../../policy/index.ts';
import type { TuplesTable } from '../../../policy/database/tables.ts';
import { DEFAULT_OBJECT_SCHEMA, Relationships } from '../../../policy/relationships/index.ts';
import { seeded } from '../../helpers/seeded.ts';

/** One measured row: a label and its numbers. */
export interface BenchRow {
  label: string;
  p50?: number;
  p99?: number;
  count?: number;
  perSecond?: number;
  note?: string;
}

/** The default schema with folder clearances: whoever is in every clearance group of a folder may read it. */
export const BENCH_SCHEMA = DEFAULT_OBJECT_SCHEMA.replace(
  /definition folder \{\n  relation parent: bucket \| folder\n/,
  'definition folder {\n  relation parent: bucket | folder\n  relation clearance: group\n',
).replace(
  'permission read = reader + write + parent->read\n  permission delete = owner + parent->delete\n}\ndefinition object',
  'permission read = reader + write + parent->read + clearance.all(member)\n  permission delete = owner + parent->delete\n}\ndefinition object',
);


const pathOf = (i: number): string => `f${i % 10}/g${(i >> 4) % 10}/h${(i >> 8) % 10}/k${(i >> 12) % 10}/`;

/**
 * Generates the tuples (into SQLite in a temporary directory, or into the PostgreSQL database `url` names, which
 * should be empty), then measures checks (cold, warm) and listing filters; prints and returns the rows.
 */
export async function runRelationshipBench(options: { total?: number; url?: string; log?: (line: string) => void } = {}): Promise<BenchRow[]> {
  const total = options.total ?? Number(process.env.BENCH_TUPLES ?? 1_000_000);
  const log = options.log ?? ((line: string) => console.log(line));
  const dir = mkdtempSync(join(tmpdir(), 'anvil-rel-bench-'));
  const tenant = 'bench';
  const rand = seeded(42);
  const rows: BenchRow[] = [];
  const database = await PolicyDatabase.open({ url: options.url, dataDir: dir });
  try {
    const setup = Relationships.open({ database, gcIntervalMs: 0 });
    await setup.writeSchema(tenant, BENCH_SCHEMA, { actor: 'bench', reason: 'bench' });
    setup.close();

    // Bulk rows go straight in (multi-row inserts in one transaction), not through audited writes.
    const now = Date.now();
    const seen = new Set<string>();
    let batch: TuplesTable[] = [];
    let count = 0;
    let expiring = 0;
    const add = (rt: string, rid: string, rel: string, st: string, sid: string, srel = '', expiresAt: number | null = null): void => {
      const key = `${rt}\u0000${rid}\u0000${rel}\u0000${srel}\u0000${st}\u0000${sid}`;
      if (seen.has(key)) return;
      seen.add(key);
      batch.push({ tenant, resource_type: rt, resource_id: rid, relation: rel, subject_relation: srel, subject_type: st, subject_id: sid, caveat_name: null, caveat_hash: null, caveat_context: null, created_revision: 1, expires_at: expiresAt });
      count++;
      if (expiresAt !== null) expiring++;
    };
    const started = Date.now();
    await database.change('relationships', async (trx) => {
      const flush = async () => {
        for (let i = 0; i < batch.length; i += 1000) await trx.insertInto('tuples').values(batch.slice(i, i + 1000)).execute();
        batch = [];
      };
      // Groups nested 3 deep: 10 top ⊃ 100 mid ⊃ 1000 leaf groups of 100 users each (users u0..u49999).
      for (let g = 0; g < 1000; g++) for (let m = 0; m < 100; m++) add('group', `leaf${g}`, 'member', 'user', `u${rand(50_000)}`);
      for (let g = 0; g < 1000; g++) add('group', `mid${g % 100}`, 'member', 'group', `leaf${g}`, 'member');
      for (let m = 0; m < 100; m++) add('group', `top${m % 10}`, 'member', 'group', `mid${m}`, 'member');
      // 10 buckets owned by top groups; the first holds 100,000 keys for the listing benchmark.
      for (let b = 0; b < 10; b++) add('bucket', `b${b}`, 'owner', 'group', `top${b}`, 'member');
      // Folders 4 deep with readers (some time-bound) and, on some, two clearance groups (`.all()`); objects with
      // readers/writers until the total: one in five expires tomorrow, one in fifty expired yesterday.
      for (let i = 0; count < total; i++) {
        const b = i < 100_000 ? 0 : 1 + (i % 9);
        const folder = `b${b}/${pathOf(i)}`;
        if (i % 50 === 0) add('folder', folder, 'reader', 'group', `leaf${rand(1000)}`, 'member', i % 100 === 0 ? now + 86_400_000 : null);
        if (i % 70 === 0) for (const g of [rand(1000), rand(1000)]) add('folder', folder, 'clearance', 'group', `leaf${g}`);
        const expiresAt = i % 50 === 7 ? now - 86_400_000 : i % 5 === 0 ? now + 86_400_000 : null;
        const user = i % 2 === 0;
        add('object', `${folder}obj${i}`, i % 3 === 0 ? 'writer' : 'reader', user ? 'user' : 'group', user ? `u${rand(50_000)}` : `leaf${rand(1000)}`, user ? '' : 'member', expiresAt);
        if (batch.length >= 10_000) await flush();
      }
      await flush();
      await trx.updateTable('tenant_revisions').set((eb) => ({ revision: eb('revision', '+', 1) })).where('tenant', '=', tenant).execute();
      return { result: undefined, changed: true, hint: tenant };
    });
    seen.clear();
    log(`generated ${count} tuples (${expiring} with an expiry) in ${((Date.now() - started) / 1000).toFixed(1)}s`);

    const rel = Relationships.open({ database, cacheSize: 200_000, gcIntervalMs: 0 });
    const queries = Array.from({ length: 5000 }, () => {
      const i = rand(400_000);
      const b = i < 100_000 ? 0 : 1 + (i % 9);
      return { resource: { type: 'object', id: `b${b}/${pathOf(i)}obj${i}` }, subject: { type: 'user', id: `u${rand(50_000)}` } };
    });
    for (const label of ['cold', 'warm']) {
      const times: number[] = [];
      let allowed = 0;
      for (const q of queries) {
        const t0 = process.hrtime.bigint();
        if ((await rel.check(tenant, q.resource, 'read', q.subject, { context: { now: new Date(), client_ip: '10.0.0.1' } })).result === 'allowed') allowed++;
        times.push(Number(process.hrtime.bigint() - t0) / 1000);
      }
      times.sort((a, b) => a - b);
      const p = (q: number): number => times[Math.floor(q * (times.length - 1))] as number;
      rows.push({ label: `check ${label}`, p50: p(0.5), p99: p(0.99), count: queries.length, note: `${allowed} allowed` });
      log(`${label}: ${queries.length} checks, p50 ${p(0.5).toFixed(1)} µs, p99 ${p(0.99).toFixed(1)} µs, allowed ${allowed}`);
    }

    const keys: string[] = [];
    for (let i = 0; i < 100_000; i++) keys.push(`b0/${pathOf(i)}obj${i}`);
    keys.sort();
    for (const label of ['listing cold', 'listing warm']) {
      const t0 = Date.now();
      let visible = 0;
      for (let page = 0; page < keys.length; page += 1000) visible += (await rel.filterResources(tenant, 'object', keys.slice(page, page + 1000), 'read', 'user:u123')).length;
      const ms = Math.max(1, Date.now() - t0);
      rows.push({ label, count: keys.length, perSecond: Math.round(keys.length / (ms / 1000)), note: `${visible} visible` });
      log(`${label}: 100,000 keys filtered in ${ms} ms (${Math.round(100_000 / (ms / 1000))} keys/s), ${visible} visible`);
    }
    rel.close();
    return rows;
  } finally {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await runRelationshipBench({ url: process.argv[2] });

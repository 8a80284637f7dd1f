/**
 * The object rows: 4 KiB GET and PUT at 1 and 32 connections (wrk, presigned and SDK-signed), and 64 MiB GET and PUT
 * one at a time and 32 at once (curl, presigned), with the peak RSS of each server under the 32-at-once transfers.
 * Every workload runs on every server before the next one starts, so a noisy moment hurts one row, not one column.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { curlTransfers, wrk, type LoadResult } from './load.ts';
import { buildRequests, presignedUrl, sdkClient, type AuthStyle } from './requests.ts';
import { cpuSeconds, peakRssDuring, type BenchServer } from './servers.ts';
import type { Row, Unit } from './table.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Distinct keys the small workloads cycle through, so 32 connections seldom write the same key at once. */
export const SMALL_KEYS = 256;
/** Large transfers one at a time per row. */
const LARGE_SEQUENTIAL = 5;
/** Large transfers at once for the concurrency and memory rows. */
const LARGE_PARALLEL = 32;

/** Where each server keeps the bench's objects: a bucket (the gateway → MinIO one is another bucket of the same MinIO). */
export interface Target {
  server: BenchServer;
  bucket: string;
}

/** What the rows are made of. */
export interface ObjectBenchOptions {
  targets: Target[];
  /** Seconds per small-object workload and server. */
  seconds: number;
  /** Only workloads whose title contains this. */
  only?: string;
  log: (line: string) => void;
}

function record(row: Row, t: Target, r: LoadResult, value: number): void {
  row.values[t.server.name] = value;
  if (r.errors > 0) (row.errors ??= {})[t.server.name] = r.errors;
}

/** PUTs every small key (`small/0` … `small/255`) once through the SDK, so GETs find them on every server. */
export async function seedSmall(t: Target, body: Buffer): Promise<void> {
  const s3 = sdkClient(t.server);
  try {
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < SMALL_KEYS) await s3.send(new PutObjectCommand({ Bucket: t.bucket, Key: `small/${next++}`, Body: body }));
      }),
    );
  } finally {
    s3.destroy();
  }
}

/**
 * The eight 4 KiB rows, then the CPU each server process spent per request in the 32-connection ones (what a
 * request costs, which moves less with the machine's load than the rates do).
 */
export async function smallObjectRows(opts: ObjectBenchOptions): Promise<Row[]> {
  const body = randomBytes(4 * KiB);
  for (const t of opts.targets) await seedSmall(t, body);
  // Every path each row takes, per server, before measuring, so no row pays for a server's warm-up (V8 compiling the
  // gateway's hot functions, caches, upstream connections): without it the first rows ran at a third of the speed.
  for (const t of opts.targets) {
    const seconds = t.server.name === 'gateway' || t.server.name === 'upstream' ? 2 : 1;
    for (const style of ['presigned', 'sdk'] as const) {
      for (const method of ['GET', 'PUT'] as const) {
        const reqs = Array.from({ length: 8 }, (_, i) => ({ method, bucket: t.bucket, key: `small/${i}`, body: method === 'PUT' ? body : undefined }));
        await wrk({ url: t.server.url, requests: await buildRequests(style, t.server, reqs), connections: 8, seconds });
      }
    }
  }
  const rows: Row[] = [];
  const costs: Row[] = [];
  const styles: Array<[AuthStyle, string]> = [['presigned', 'presigned URL'], ['sdk', 'SDK header-signed, signed payload']];
  for (const [style, styleTitle] of styles) {
    for (const method of ['GET', 'PUT'] as const) {
      for (const connections of [1, 32]) {
        const row: Row = { workload: `${method} 4 KiB, ${styleTitle}, ${connections} connection${connections > 1 ? 's' : ''}`, unit: 'op/s', values: {} };
        const cost: Row = { workload: `CPU of the server process per request: ${row.workload.replace(' connections', ' conn.')}`, unit: 'µs', values: {} };
        if (opts.only && !row.workload.includes(opts.only)) continue;
        for (const t of opts.targets) {
          const reqs = Array.from({ length: SMALL_KEYS }, (_, i) => ({
            method, bucket: t.bucket, key: `small/${i}`, body: method === 'PUT' ? body : undefined,
          }));
          const requests = await buildRequests(style, t.server, reqs);
          const cpuBefore = cpuSeconds(t.server.pid);
          const r = await wrk({ url: t.server.url, requests, connections, seconds: opts.seconds });
          const cpuUs = ((cpuSeconds(t.server.pid) - cpuBefore) / r.ops) * 1e6;
          record(row, t, r, r.ops / r.seconds);
          cost.values[t.server.name] = cpuUs;
          opts.log(`  ${row.workload}: ${t.server.name} ${Math.round(r.ops / r.seconds)} op/s, p50 ${r.p50Ms?.toFixed(2)} ms, ` +
            `p99 ${r.p99Ms?.toFixed(2)} ms, ${Math.round(cpuUs)} µs CPU/request, ${r.errors} errors`);
        }
        rows.push(row);
        if (connections > 1) costs.push(cost);
      }
    }
  }
  return [...rows, ...costs];
}

/** The 64 MiB rows and the memory rows. */
export async function largeObjectRows(opts: ObjectBenchOptions): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'anvil-bench-large-'));
  const file = join(dir, 'body');
  writeFileSync(file, randomBytes(64 * MiB));
  const row = (workload: string, unit: Unit): Row => ({ workload, unit, values: {} });
  const rows = {
    getOne: row('GET 64 MiB, one at a time', 'MiB/s'),
    putOne: row('PUT 64 MiB, one at a time', 'MiB/s'),
    getAll: row(`GET 64 MiB, ${LARGE_PARALLEL} at once`, 'MiB/s'),
    putAll: row(`PUT 64 MiB, ${LARGE_PARALLEL} at once`, 'MiB/s'),
    getRss: row(`peak RSS during ${LARGE_PARALLEL} × 64 MiB GET`, 'MiB'),
    putRss: row(`peak RSS during ${LARGE_PARALLEL} × 64 MiB PUT`, 'MiB'),
  };
  const urls = (t: Target, method: 'GET' | 'PUT', n: number) =>
    Promise.all(Array.from({ length: n }, (_, i) => presignedUrl(t.server, { method, bucket: t.bucket, key: `large/${i}` })));
  // PUTs first: they create the objects the GETs read.
  const plan: Array<[Row, 'GET' | 'PUT', boolean, Row | undefined]> = [
    [rows.putOne, 'PUT', false, undefined],
    [rows.getOne, 'GET', false, undefined],
    [rows.putAll, 'PUT', true, rows.putRss],
    [rows.getAll, 'GET', true, rows.getRss],
  ];
  try {
    // One untimed 64 MiB PUT and GET per server first, as the small rows warm every path: a gateway's first large
    // PUT pays for V8 compiling that path and for starting its hash thread (1.3–1.6 times the time of the next ones
    // in fresh processes), which alone lowered the one-at-a-time row, five PUTs, by up to a tenth.
    for (const t of opts.targets) {
      const warm = { bucket: t.bucket, key: 'large/warm-up' };
      await curlTransfers({ urls: [await presignedUrl(t.server, { method: 'PUT', ...warm })], upload: file, parallel: false });
      await curlTransfers({ urls: [await presignedUrl(t.server, { method: 'GET', ...warm })], parallel: false });
    }
    for (const [r, method, parallel, rss] of plan) {
      if (opts.only && !r.workload.includes(opts.only) && !(method === 'PUT' && opts.only.startsWith('GET 64'))) continue;
      for (const t of opts.targets) {
        const n = parallel ? LARGE_PARALLEL : LARGE_SEQUENTIAL;
        const list = await urls(t, method, n);
        const { result, peakMiB } = await peakRssDuring(t.server.pid, () =>
          curlTransfers({ urls: list, upload: method === 'PUT' ? file : undefined, parallel }));
        record(r, t, result, result.bytes / MiB / result.seconds);
        if (rss) rss.values[t.server.name] = peakMiB;
        const rate = (result.bytes / MiB / result.seconds).toFixed(0);
        opts.log(`  ${r.workload}: ${t.server.name} ${rate} MiB/s, peak RSS ${peakMiB.toFixed(0)} MiB, ${result.errors} errors`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return [rows.getOne, rows.putOne, rows.getAll, rows.putAll, rows.getRss, rows.putRss].filter((r) => Object.keys(r.values).length > 0);
}

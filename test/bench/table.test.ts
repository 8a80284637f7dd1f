/** The bench's table formatting (the bench itself never runs in `npm test`: it takes minutes and measures the machine). */
import test from 'ava';
import { formatEngineTable, formatNumber, formatTable, ratio, type Row } from './table.ts';

const small: Row = { workload: 'GET 4 KiB, presigned URL, 32 connections', unit: 'op/s', values: { gateway: 1526, minio: 4574, upstream: 670, proxy: 2287, forwarder: 2744, bare: 51159 } };

test('figures get thousands separators, small ones a decimal, missing ones a dash', (t) => {
  t.is(formatNumber(51159.4), '51,159');
  t.is(formatNumber(99.94), '99.9');
  t.is(formatNumber(Number.NaN), '—');
});

test('ratios are gateway ÷ MinIO, gateway → MinIO ÷ MinIO and ÷ bare proxy, TCP forwarder ÷ MinIO, gateway ÷ bare; memory rows have none', (t) => {
  t.is(ratio(small, 'gateway', 'minio'), '0.33');
  t.is(ratio(small, 'upstream', 'minio'), '0.15');
  t.is(ratio(small, 'upstream', 'proxy'), '0.29');
  t.is(ratio(small, 'forwarder', 'minio'), '0.60');
  t.is(ratio(small, 'gateway', 'bare'), '0.03');
  t.is(ratio({ ...small, unit: 'MiB' }, 'gateway', 'minio'), '');
  t.is(ratio({ ...small, values: { gateway: 1 } }, 'gateway', 'minio'), '');
});

test('the table is Markdown: a header, an alignment line, and one line per row with the unit once', (t) => {
  const listing: Row = { workload: 'ListObjectsV2 filtered', unit: 'keys/s', values: { gateway: 21000, upstream: 9000 }, errors: { upstream: 3 } };
  const lines = formatTable([small, listing]).split('\n');
  t.is(lines.length, 4);
  t.regex(lines[0]!, /^\| workload \| gateway \(embedded\) \| MinIO direct \| gateway → that MinIO \| bare Node proxy → that MinIO \| TCP forwarder → that MinIO \| bare Node HTTP server \| gateway ÷ MinIO \|/);
  t.regex(lines[0]!, /\| gateway→MinIO ÷ bare proxy \| TCP forwarder ÷ MinIO \| gateway ÷ bare \|$/);
  t.is(lines[1], '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  t.is(lines[2], '| GET 4 KiB, presigned URL, 32 connections | 1,526 op/s | 4,574 | 670 | 2,287 | 2,744 | 51,159 | 0.33 | 0.15 | 0.29 | 0.60 | 0.03 |');
  t.is(lines[3], '| ListObjectsV2 filtered | 21,000 keys/s | — | 9,000 (3 errors!) | — | — | — |  |  |  |  |  |');
});

test("the relationship engine's rows get a table of their own", (t) => {
  const lines = formatEngineTable([
    { label: 'check warm', p50: 15.6, p99: 82.6, count: 5000, note: '943 allowed' },
    { label: 'listing warm', count: 100_000, perSecond: 13868, note: '0 visible' },
  ]).split('\n');
  t.is(lines[2], '| check warm | 15.6 µs | 82.6 µs | 5,000 |  | 943 allowed |');
  t.is(lines[3], '| listing warm |  |  | 100,000 | 13,868 keys/s | 0 visible |');
});

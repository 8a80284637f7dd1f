/**
 * Unit tests of the upstream backend's per-node bucket caches (storage/upstream/buckets.ts), over an upstream that
 * answers GetBucketTagging from memory and counts the requests: the gateway-level behaviour is in
 * test/upstream-bucket-incarnation.test.ts against MinIO.
 */
import { Readable } from 'node:stream';
import test from 'ava';
import { Buckets } from '../../storage/upstream/buckets.ts';
import type { UpstreamClients } from '../../storage/upstream/client.ts';
import { INCARNATION_TAG } from '../../storage/upstream/incarnation.ts';
import { Layout } from '../../storage/upstream/layout.ts';

/** An upstream whose every bucket carries an incarnation tag; `reads` counts the tag reads per bucket. */
function taggedUpstream(): { clients: UpstreamClients; reads: Map<string, number> } {
  const reads = new Map<string, number>();
  const lean = {
    async send(req: { method: string; loc: { Bucket: string }; query?: Record<string, string> }) {
      if (req.method !== 'GET' || req.query?.tagging === undefined) throw new Error(`unexpected ${req.method} request`);
      reads.set(req.loc.Bucket, (reads.get(req.loc.Bucket) ?? 0) + 1);
      const xml = `<Tagging><TagSet><Tag><Key>${INCARNATION_TAG}</Key><Value>${Date.now()}-${'0'.repeat(32)}</Value></Tag></TagSet></Tagging>`;
      return { status: 200, headers: {}, body: Readable.from([Buffer.from(xml)]) };
    },
  };
  return { clients: { lean } as unknown as UpstreamClients, reads };
}

test('the incarnation cache keeps recent buckets and stays bounded: the least recently used is read again', async (t) => {
  const { clients, reads } = taggedUpstream();
  const buckets = new Buckets(clients, new Layout('bucket'), 3);
  for (let i = 0; i < 50; i++) await buckets.writable(`bucket-${i}`);
  t.is(reads.get('bucket-0'), 1);
  // The three most recent are answered from the cache (bucket mapping: within 5 s, no upstream request)...
  for (const name of ['bucket-47', 'bucket-48', 'bucket-49']) {
    await buckets.writable(name);
    t.is(reads.get(name), 1, `${name} came from the cache`);
  }
  // ...the older ones were forgotten, not kept: each is read again.
  await buckets.writable('bucket-0');
  t.is(reads.get('bucket-0'), 2, 'bucket-0 was evicted and read again');
  await buckets.writable('bucket-46');
  t.is(reads.get('bucket-46'), 2);
});

/**
 * Unit tests of the upstream backend's per-node bucket caches (storage/upstream/buckets.ts), over an upstream that
 * answers GetBucketTagging from memory and counts the requests: the gateway-level behaviour is in
 * test/upstream-bucket-incarnation.test.ts against MinIO.
 */
import { Readable } from 'node:stream';
import test from 'ava';
import { Buckets } from '../../storage/upstream/buckets.ts';
import { FreshReads } from '../../storage/upstream/fresh-reads.ts';
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

/**
 * An upstream whose tag reads are held until the test releases them, each answering the incarnation the bucket had
 * when the read arrived (as a real upstream does); `current` is what it holds now.
 */
function heldUpstream(): { clients: UpstreamClients; sent: Array<{ value: string; release: () => void }>; state: { current: string } } {
  const state = { current: `${Date.now() - 60_000}-${'a'.repeat(32)}` };
  const sent: Array<{ value: string; release: () => void }> = [];
  const lean = {
    send(req: { method: string; query?: Record<string, string> }) {
      if (req.method !== 'GET' || req.query?.tagging === undefined) throw new Error(`unexpected ${req.method} request`);
      const value = state.current;
      return new Promise((resolve) => {
        const xml = `<Tagging><TagSet><Tag><Key>${INCARNATION_TAG}</Key><Value>${value}</Value></Tag></TagSet></Tagging>`;
        sent.push({ value, release: () => resolve({ status: 200, headers: {}, body: Readable.from([Buffer.from(xml)]) }) });
      });
    },
  };
  return { clients: { lean } as unknown as UpstreamClients, sent, state };
}

const settledSoon = async (p: Promise<unknown>): Promise<boolean> => {
  let done = false;
  void p.then(() => (done = true), () => (done = true));
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  return done;
};

test('writes acknowledged while an incarnation read is in flight share the next one, sent after them', async (t) => {
  const { clients, sent, state } = heldUpstream();
  const buckets = new Buckets(clients, new Layout('bucket'));
  const started = { incarnation: state.current, at: Date.now() };
  const undo = async () => t.fail('nothing is undone');
  const first = buckets.confirm('bucket-b', started, undo);
  await settledSoon(Promise.resolve());
  t.is(sent.length, 1);
  // Three writes acknowledged now: the read in flight was sent before them, so none of them may take its answer.
  const later = [buckets.confirm('bucket-b', started, undo), buckets.confirm('bucket-b', started, undo), buckets.confirm('bucket-b', started, undo)];
  await settledSoon(Promise.resolve());
  t.is(sent.length, 1, 'no second read while one is in flight');
  sent[0]!.release();
  await first;
  t.false(await settledSoon(Promise.all(later)), 'the later writes wait for a read of their own');
  t.is(sent.length, 2, 'one read for the three later writes');
  sent[1]!.release();
  await Promise.all(later);
  t.is(sent.length, 2);
});

test('a write acknowledged during an older read sees a re-creation that happened after that read was sent', async (t) => {
  const { clients, sent, state } = heldUpstream();
  const buckets = new Buckets(clients, new Layout('bucket'));
  const started = { incarnation: state.current, at: Date.now() };
  const first = buckets.confirm('bucket-b', started, async () => t.fail('the first write is not undone'));
  await settledSoon(Promise.resolve());
  // The bucket is deleted and created again (a new incarnation, made after the write started); then a second write
  // that started under the old one is acknowledged while the first read, answering the old value, is still out.
  state.current = `${Date.now() + 5_000}-${'b'.repeat(32)}`;
  let undone = false;
  const second = buckets.confirm('bucket-b', started, async () => {
    undone = true;
  });
  sent[0]!.release();
  await first;
  await settledSoon(Promise.resolve());
  sent[1]!.release();
  await t.throwsAsync(second, { name: 'NoSuchBucketError' });
  t.true(undone, 'the second write was undone');
});

test('a shared read that fails fails every write waiting on it, and the next write sends a read of its own', async (t) => {
  let calls = 0;
  let fail: (err: Error) => void = () => {};
  const reads = new FreshReads<string>(() => {
    calls++;
    return calls === 1 ? Promise.resolve('first') : new Promise<string>((_, reject) => (fail = reject));
  });
  const a = reads.get('k');
  const [b, c] = [reads.get('k'), reads.get('k')];
  t.is(await a, 'first');
  await settledSoon(Promise.resolve());
  t.is(calls, 2, 'b and c share one read');
  fail(new Error('upstream down'));
  await t.throwsAsync(b, { message: 'upstream down' });
  await t.throwsAsync(c, { message: 'upstream down' });
  t.is(await Promise.race([reads.get('k').catch(() => 'sent'), new Promise((r) => setImmediate(() => r('sent')))]), 'sent');
  t.is(calls, 3, 'a new read once nothing was in flight');
});

test('a bucket found untagged without a creation date to go by (ListBuckets refused) is asked again, then the write refused', async (t) => {
  let reads = 0;
  const lean = {
    async send(req: { method: string; query?: Record<string, string> }) {
      if (req.method !== 'GET' || req.query?.tagging === undefined) throw new Error(`unexpected ${req.method} request`);
      reads++;
      return { status: 200, headers: {}, body: Readable.from([Buffer.from('<Tagging><TagSet></TagSet></Tagging>')]) };
    },
  };
  const retrying = {
    async send() {
      throw Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    },
  };
  const buckets = new Buckets({ lean, retrying } as unknown as UpstreamClients, new Layout('bucket'));
  let undone = false;
  const started = { incarnation: `${Date.now() - 1000}-${'c'.repeat(32)}`, at: Date.now() };
  await t.throwsAsync(
    buckets.confirm('bucket-u', started, async () => {
      undone = true;
    }),
    { name: 'NoSuchBucketError' },
  );
  t.true(undone, 'the write was undone');
  t.is(reads, 6, 'the tag was read again five times before refusing');
});

/**
 * An upstream like MinIO holding a stale in-memory copy of a bucket's metadata (no tag, no creation date: what a
 * ghost shows too) until a metadata update makes it read the disk again; `tagOnDisk` is what the disk holds.
 */
function staleUpstream(tagOnDisk: string | undefined): { clients: UpstreamClients; sent: string[] } {
  let reloaded = false;
  const sent: string[] = [];
  const lean = {
    async send(req: { method: string; query?: Record<string, string> }) {
      if (req.method !== 'GET' || req.query?.tagging === undefined) throw new Error(`unexpected ${req.method} request`);
      const tag = reloaded && tagOnDisk ? `<Tag><Key>${INCARNATION_TAG}</Key><Value>${tagOnDisk}</Value></Tag>` : '';
      return { status: 200, headers: {}, body: Readable.from([Buffer.from(`<Tagging><TagSet>${tag}</TagSet></Tagging>`)]) };
    },
  };
  const retrying = {
    async send(command: { constructor: { name: string } }) {
      const name = command.constructor.name;
      sent.push(name);
      if (name === 'ListBucketsCommand') return { Buckets: [{ Name: 'bucket-s', CreationDate: new Date('0001-01-01T00:00:00Z') }] };
      if (name === 'GetBucketPolicyCommand') throw Object.assign(new Error('no policy'), { name: 'NoSuchBucketPolicy', Code: 'NoSuchBucketPolicy', $metadata: { httpStatusCode: 404 } });
      if (name === 'DeleteBucketPolicyCommand') {
        reloaded = true;
        return {};
      }
      throw new Error(`unexpected ${name}`);
    },
  };
  return { clients: { lean, retrying } as unknown as UpstreamClients, sent };
}

test('a bucket MinIO answers from a stale copy (untagged, no creation date) is read again from disk: the write stands; a ghost stays refused', async (t) => {
  const incarnation = `${Date.now() - 1000}-${'d'.repeat(32)}`;
  const started = { incarnation, at: Date.now() };
  const ours = staleUpstream(incarnation);
  await new Buckets(ours.clients, new Layout('bucket')).confirm('bucket-s', started, async () => t.fail('the write is not undone'));
  t.deepEqual(ours.sent, ['ListBucketsCommand', 'GetBucketPolicyCommand', 'DeleteBucketPolicyCommand']);
  const ghost = staleUpstream(undefined);
  let undone = false;
  await t.throwsAsync(
    new Buckets(ghost.clients, new Layout('bucket')).confirm('bucket-s', started, async () => {
      undone = true;
    }),
    { name: 'NoSuchBucketError' },
  );
  t.true(undone, 'the write into the ghost was undone');
});

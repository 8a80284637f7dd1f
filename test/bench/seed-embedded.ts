/**
 * Fills a bucket of an embedded store with the listing keys before its gateway starts (which then adopts the
 * bucket as root's): the first key is written, every other one is a server-side copy of it, which in this store is
 * one index transaction sharing the blob (the S3 API would spend minutes writing 100,000 bodies one by one).
 * Usage: seed-embedded.ts DATA_DIR BUCKET KEYS_FILE
 */
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { openEmbeddedStore } from '../../storage/index.ts';

const [dataDir, bucket, keysFile] = process.argv.slice(2);
if (!dataDir || !bucket || !keysFile) throw new Error('usage: seed-embedded.ts DATA_DIR BUCKET KEYS_FILE');
const [first, ...rest] = readFileSync(keysFile, 'utf8').split('\n').filter(Boolean);
const store = await openEmbeddedStore({ dataDir });
await store.createBucket(bucket);
if (first !== undefined) {
  await store.putObject({ bucket, key: first, body: Readable.from([Buffer.from('x')]), size: 1, meta: { headers: {}, userMetadata: {} } });
  for (const key of rest) await store.copyObject({ source: { bucket, key: first }, dest: { bucket, key } });
}
await store.close();

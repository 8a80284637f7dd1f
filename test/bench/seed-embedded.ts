/**
 * Fills a bucket of an embedded store with the listing keys before its gateway starts (which then adopts the
 * bucket as root's). Run as its own process with a large libuv thread pool, because every write is fsynced and the
 * S3 API would take minutes for 100,000 keys. Usage: seed-embedded.ts DATA_DIR BUCKET KEYS_FILE
 */
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { openEmbeddedStore } from '../../storage/index.ts';

const [dataDir, bucket, keysFile] = process.argv.slice(2);
if (!dataDir || !bucket || !keysFile) throw new Error('usage: seed-embedded.ts DATA_DIR BUCKET KEYS_FILE');
const keys = readFileSync(keysFile, 'utf8').split('\n').filter(Boolean);
const store = await openEmbeddedStore({ dataDir });
await store.createBucket(bucket);
const body = Buffer.from('x');
let next = 0;
await Promise.all(
  Array.from({ length: 128 }, async () => {
    while (next < keys.length) {
      const key = keys[next++]!;
      await store.putObject({ bucket, key, body: Readable.from([body]), size: 1, meta: { headers: {}, userMetadata: {} } });
    }
  }),
);
await store.close();

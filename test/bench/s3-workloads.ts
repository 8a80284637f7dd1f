/**
 * The S3 workloads the benchmark runs against any endpoint with one client: small-object PUT/GET operations per
 * second and large-object PUT/GET throughput, at a given concurrency.
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

/** One measured workload. */
export interface Measurement {
  name: string;
  ops: number;
  bytes: number;
  seconds: number;
}

/** Drains an SDK body without keeping it. */
async function drain(body: unknown): Promise<number> {
  let n = 0;
  for await (const chunk of body as AsyncIterable<Uint8Array>) n += chunk.length;
  return n;
}

/** Runs `op` with `concurrency` workers until `count` operations are done. */
async function runPool(count: number, concurrency: number, op: (i: number) => Promise<number>): Promise<{ seconds: number; bytes: number }> {
  let next = 0;
  let bytes = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        bytes += await op(i);
      }
    }),
  );
  return { seconds: (performance.now() - start) / 1000, bytes };
}

/** PUT then GET `count` objects of `size` bytes under `prefix`. */
export async function putGet(opts: {
  client: S3Client;
  bucket: string;
  prefix: string;
  size: number;
  count: number;
  concurrency: number;
  label: string;
}): Promise<Measurement[]> {
  const { client, bucket, prefix, size, count, concurrency, label } = opts;
  const body = Buffer.alloc(size, 0x61);
  const keys = Math.min(count, 64);
  const put = await runPool(count, concurrency, async (i) => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}${i % keys}`, Body: body }));
    return size;
  });
  const get = await runPool(count, concurrency, async (i) => {
    const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}${i % keys}` }));
    return drain(res.Body);
  });
  return [
    { name: `${label} PUT c=${concurrency}`, ops: count, bytes: put.bytes, seconds: put.seconds },
    { name: `${label} GET c=${concurrency}`, ops: count, bytes: get.bytes, seconds: get.seconds },
  ];
}

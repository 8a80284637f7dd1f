/**
 * `npm run bench`: each workload through the gateway beside the same client against a baseline in the same process,
 * printed as a ratio. Not a test: numbers vary by machine; the ratio is what to compare across changes.
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { Agent } from 'node:http';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startTestGateway, ROOT } from '../helpers/gateway.ts';
import { startMinio } from '../helpers/minio.ts';
import { startBareServer } from './bare-server.ts';
import { putGet, type Measurement } from './s3-workloads.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const KiB = 1024;
const MiB = 1024 * KiB;
const only = process.argv[2];

function client(endpoint: string, credentials: { accessKeyId: string; secretAccessKey: string } = ROOT): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    credentials,
    forcePathStyle: true,
    requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets: 64 }) }),
  });
}

function fmt(m: Measurement, large: boolean): string {
  return large ? `${(m.bytes / MiB / m.seconds).toFixed(1)} MiB/s` : `${(m.ops / m.seconds).toFixed(0)} op/s`;
}

/** Prints gateway vs baseline lines with the ratio gateway/baseline. */
export function report(title: string, rows: Array<[Measurement, Measurement]>, large: boolean): void {
  console.log(`\n${title}`);
  for (const [gw, base] of rows) {
    const ratio = gw.bytes / gw.seconds / (base.bytes / base.seconds);
    console.log(`  ${gw.name.padEnd(24)} gateway ${fmt(gw, large).padStart(12)}   baseline ${fmt(base, large).padStart(12)}   ratio ${ratio.toFixed(2)}`);
  }
}

async function embedded(): Promise<void> {
  const gw = await startTestGateway();
  const bare = await startBareServer();
  const g = client(gw.gw.url);
  const b = client(bare.url);
  await g.send(new CreateBucketCommand({ Bucket: 'bench' }));
  for (const [label, size, counts, large] of [
    ['4 KiB', 4 * KiB, { 1: 1000, 32: 4000 }, false],
    ['64 MiB', 64 * MiB, { 1: 4, 32: 32 }, true],
  ] as const) {
    const rows: Array<[Measurement, Measurement]> = [];
    for (const c of [1, 32] as const) {
      const args = { bucket: 'bench', prefix: `${label}/`, size, count: counts[c], concurrency: c, label };
      const base = await putGet({ ...args, client: b });
      const through = await putGet({ ...args, client: g });
      rows.push([through[0]!, base[0]!], [through[1]!, base[1]!]);
    }
    report(`${label} objects: gateway (embedded store) vs bare Node HTTP server`, rows, large);
  }
  g.destroy();
  b.destroy();
  await bare.close();
  await gw.close();
}

/** The same workloads through the gateway to MinIO, beside the same client talking to MinIO directly. */
async function upstream(): Promise<void> {
  const minio = await startMinio();
  const gw = await startTestGateway({
    ANVIL_BACKEND: 'upstream',
    ANVIL_UPSTREAM_ENDPOINT: minio.endpoint,
    ANVIL_UPSTREAM_ACCESS_KEY: minio.accessKey,
    ANVIL_UPSTREAM_SECRET_KEY: minio.secretKey,
  });
  const g = client(gw.gw.url);
  const m = client(minio.endpoint, { accessKeyId: minio.accessKey, secretAccessKey: minio.secretKey });
  await g.send(new CreateBucketCommand({ Bucket: 'bench-up' }));
  for (const [label, size, counts, large] of [
    ['4 KiB', 4 * KiB, { 1: 500, 32: 2000 }, false],
    ['64 MiB', 64 * MiB, { 1: 4, 32: 32 }, true],
  ] as const) {
    const rows: Array<[Measurement, Measurement]> = [];
    for (const c of [1, 32] as const) {
      const base = await putGet({ client: m, bucket: 'bench-up', prefix: `direct/${label}/`, size, count: counts[c], concurrency: c, label });
      const through = await putGet({ client: g, bucket: 'bench-up', prefix: `gw/${label}/`, size, count: counts[c], concurrency: c, label });
      rows.push([through[0]!, base[0]!], [through[1]!, base[1]!]);
    }
    report(`${label} objects: gateway -> MinIO vs the same client -> MinIO directly (ratio = gateway / direct)`, rows, large);
  }
  g.destroy();
  m.destroy();
  await gw.close();
  await minio.close();
}

const sections: Record<string, () => Promise<void>> = { embedded, upstream };
for (const [name, run] of Object.entries(sections)) {
  if (only && only !== name) continue;
  await run();
}

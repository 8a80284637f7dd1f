/** The upstream backend: the storage contract served by another S3 service (AWS S3, MinIO, …) through the AWS SDK. */
import type { Backend } from '../backend.ts';
import { createClients, type UpstreamConfig } from './client.ts';
import { probeUpstream, UpstreamHealth } from './health.ts';
import { Layout } from './layout.ts';
import { forgettingGoneBuckets } from './gone-buckets.ts';
import { UpstreamBackend } from './upstream-backend.ts';

export type { UpstreamConfig } from './client.ts';
export { UpstreamBackend } from './upstream-backend.ts';

/**
 * Opens the upstream backend without waiting on the upstream, so the gateway starts even while it is down; requests
 * then fail with ServiceUnavailableError (at once, once a probe has found it down) until it is back.
 */
export async function openUpstreamBackend(config: UpstreamConfig, options: { log?: (line: string) => void } = {}): Promise<Backend> {
  if (config.mapping === 'prefix' && !config.bucket) throw new Error('ANVIL_UPSTREAM_MAPPING=prefix needs ANVIL_UPSTREAM_BUCKET');
  const layout = new Layout(config.mapping, config.bucket ?? '');
  const clients = createClients(config);
  const health = new UpstreamHealth({ probe: (signal) => probeUpstream(clients, layout, signal), log: options.log });
  // One probe now, in the background: an upstream down at start shows in health() (readiness) from the start.
  health.check().catch(() => {});
  const backend = new UpstreamBackend(clients, layout, health);
  return forgettingGoneBuckets(backend, (bucket) => backend.forgetBucket(bucket));
}

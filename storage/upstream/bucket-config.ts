/**
 * Bucket configuration the gateway keeps itself over an upstream (tag set, CORS document): small objects under the
 * bucket's reserved `_anvil/config/` namespace, so they follow the bucket in both mappings (with `prefix` mapping
 * many gateway buckets share one upstream bucket, whose own tagging and CORS cannot be theirs) and go with it.
 * Every read asks the upstream: nothing is cached, so a change acknowledged by one worker or node is what the next
 * request to any other reads, as on the embedded store.
 */
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { NoSuchBucketError } from '../errors.ts';
import type { Buckets } from './buckets.ts';
import { isNotFound } from './buckets.ts';
import type { UpstreamClients } from './client.ts';
import { faultCode, translate } from './errors.ts';
import { RESERVED, type Layout } from './layout.ts';

/** Where a bucket's configuration documents live, relative to the gateway bucket. */
export const CONFIG = `${RESERVED}config/`;

/** Reads and writes one named configuration document per bucket. */
export class BucketConfig {
  constructor(
    private readonly clients: UpstreamClients,
    private readonly layout: Layout,
    private readonly buckets: Buckets,
  ) {}

  /**
   * The document as the upstream holds it now, or undefined when the bucket has none; NoSuchBucketError when the
   * bucket is gone. One upstream request with bucket mapping (the upstream's NoSuchBucket tells a missing bucket
   * from a missing document); with prefix mapping the bucket's marker is asked alongside, as nothing upstream would.
   * A per-worker cache of these documents answered the previous rules for up to its lifetime after a change made
   * through another worker (o12c F4); CORS rules are read for cross-origin requests only.
   */
  async get(bucket: string, name: string): Promise<string | undefined> {
    const exists = this.layout.mapping === 'prefix' ? this.buckets.head(bucket, { fresh: true }) : undefined;
    // Settled here so a failure of the document read does not leave the marker's rejection unhandled.
    exists?.catch(() => undefined);
    let value: string | undefined;
    try {
      const out = await this.clients.retrying.send(new GetObjectCommand(this.layout.object(bucket, CONFIG + name)));
      value = await out.Body!.transformToString();
    } catch (err) {
      if (faultCode(err) === 'NoSuchBucket') throw new NoSuchBucketError(`bucket ${bucket} does not exist`);
      if (!isNotFound(err)) throw translate(err);
    }
    await exists;
    return value;
  }

  /**
   * Stores the document, or removes it when `value` is undefined. A document stored while the bucket was re-created
   * is removed again and NoSuchBucketError thrown: one tenant's CORS rules never configure another's bucket.
   */
  async set(bucket: string, name: string, value: string | undefined): Promise<void> {
    const started = await this.buckets.writable(bucket);
    const loc = this.layout.object(bucket, CONFIG + name);
    let etag: string;
    try {
      if (value === undefined) return void (await this.clients.retrying.send(new DeleteObjectCommand(loc)));
      etag = (await this.clients.retrying.send(new PutObjectCommand({ ...loc, Body: value, ContentType: 'application/octet-stream' }))).ETag ?? '';
    } catch (err) {
      throw translate(err);
    }
    await this.buckets.confirmObject(bucket, started, { key: CONFIG + name, etag });
  }
}

/**
 * Bucket configuration the gateway keeps itself over an upstream (tag set, CORS document): small objects under the
 * bucket's reserved `_anvil/config/` namespace, so they follow the bucket in both mappings (with `prefix` mapping
 * many gateway buckets share one upstream bucket, whose own tagging and CORS cannot be theirs) and go with it.
 */
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { Buckets } from './buckets.ts';
import { isNotFound } from './buckets.ts';
import type { UpstreamClients } from './client.ts';
import { translate } from './errors.ts';
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

  /** The document, or undefined when the bucket has none; NoSuchBucketError when the bucket is gone. */
  async get(bucket: string, name: string): Promise<string | undefined> {
    await this.buckets.head(bucket);
    try {
      const out = await this.clients.retrying.send(new GetObjectCommand(this.layout.object(bucket, CONFIG + name)));
      return await out.Body!.transformToString();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw translate(err);
    }
  }

  /** Stores the document, or removes it when `value` is undefined. */
  async set(bucket: string, name: string, value: string | undefined): Promise<void> {
    await this.buckets.head(bucket);
    const loc = this.layout.object(bucket, CONFIG + name);
    try {
      if (value === undefined) await this.clients.retrying.send(new DeleteObjectCommand(loc));
      else await this.clients.retrying.send(new PutObjectCommand({ ...loc, Body: value, ContentType: 'application/octet-stream' }));
    } catch (err) {
      throw translate(err);
    }
  }
}

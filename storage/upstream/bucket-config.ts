/**
 * Bucket configuration the gateway keeps itself over an upstream (tag set, CORS document): small objects under the
 * bucket's reserved `_anvil/config/` namespace, so they follow the bucket in both mappings (with `prefix` mapping
 * many gateway buckets share one upstream bucket, whose own tagging and CORS cannot be theirs) and go with it.
 */
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { LRUCache } from 'lru-cache';
import type { Buckets } from './buckets.ts';
import { isNotFound } from './buckets.ts';
import type { UpstreamClients } from './client.ts';
import { translate } from './errors.ts';
import { RESERVED, type Layout } from './layout.ts';

/** Where a bucket's configuration documents live, relative to the gateway bucket. */
export const CONFIG = `${RESERVED}config/`;

/**
 * How long a document read is trusted: CORS rules are read for every cross-origin request, and other gateway
 * processes sharing the upstream see a change within this time.
 */
const TTL_MS = 2_000;

/** Reads and writes one named configuration document per bucket. */
export class BucketConfig {
  private readonly cache = new LRUCache<string, { value: string | undefined }>({ max: 1000, ttl: TTL_MS });

  constructor(
    private readonly clients: UpstreamClients,
    private readonly layout: Layout,
    private readonly buckets: Buckets,
  ) {}

  /** The document, or undefined when the bucket has none; NoSuchBucketError when the bucket is gone. */
  async get(bucket: string, name: string): Promise<string | undefined> {
    await this.buckets.head(bucket);
    const cached = this.cache.get(`${bucket}/${name}`);
    if (cached) return cached.value;
    let value: string | undefined;
    try {
      const out = await this.clients.retrying.send(new GetObjectCommand(this.layout.object(bucket, CONFIG + name)));
      value = await out.Body!.transformToString();
    } catch (err) {
      if (!isNotFound(err)) throw translate(err);
    }
    this.cache.set(`${bucket}/${name}`, { value });
    return value;
  }

  /** Forgets what was read of a bucket's documents (the bucket is being deleted). */
  forget(bucket: string): void {
    for (const key of [...this.cache.keys()]) if (key.startsWith(`${bucket}/`)) this.cache.delete(key);
  }

  /**
   * Stores the document, or removes it when `value` is undefined. A document stored while the bucket was re-created
   * is removed again and NoSuchBucketError thrown: one tenant's CORS rules never configure another's bucket.
   */
  async set(bucket: string, name: string, value: string | undefined): Promise<void> {
    const started = await this.buckets.writable(bucket);
    const loc = this.layout.object(bucket, CONFIG + name);
    this.cache.delete(`${bucket}/${name}`);
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

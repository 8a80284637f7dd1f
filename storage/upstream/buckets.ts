/**
 * Gateway buckets upstream: real upstream buckets (bucket mapping) or marker objects in the shared bucket (prefix
 * mapping, see layout.ts). Deleting a bucket checks emptiness the contract's way (objects outside `_anvil/`, upload
 * records) and clears the backend's own records with the bucket (with prefix mapping only once the marker is gone
 * and a second listing found nothing new: deleteMarker()). Creating one gives it a new incarnation (incarnation.ts),
 * which every write that creates data checks once the upstream acknowledged it.
 */
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteBucketPolicyCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketPolicyCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { LRUCache } from 'lru-cache';
import type { BucketInfo } from '../backend.ts';
import { BucketAlreadyExistsError, BucketNotEmptyError, NoSuchBucketError } from '../errors.ts';
import type { UpstreamClients } from './client.ts';
import { faultCode, faultStatus, translate } from './errors.ts';
import { FreshReads } from './fresh-reads.ts';
import { createdBefore, NO_INCARNATION, readIncarnation, removeIfUnchanged, writeIncarnation, writtenAt } from './incarnation.ts';
import { BUCKET_MARKERS, RESERVED, UPLOADS, type Layout } from './layout.ts';
import { listObjectsV2 } from './listing.ts';

/** How long a bucket seen to exist is trusted without asking again (prefix mapping checks it before writes). */
const EXISTS_TTL_MS = 5_000;

/**
 * Buckets whose existence and incarnation a node remembers, the least recently used forgotten first: one entry per
 * bucket requests found, kept after its 5 s were over, so without a bound the maps grew with every bucket ever used
 * (and every one created and deleted again upstream). Forgetting one only costs the next request on it one read.
 */
export const BUCKET_CACHE_MAX = 10_000;

/** What a write that creates data started under: the bucket's incarnation then, and when it started. */
export interface WriteStart {
  incarnation: string;
  /** Epoch milliseconds. */
  at: number;
}

/** True when an SDK error says "not found" (HEAD answers carry no error code, only 404). */
export function isNotFound(err: unknown): boolean {
  return faultStatus(err) === 404 || ['NotFound', 'NoSuchKey', 'NoSuchBucket'].includes(faultCode(err) ?? '');
}

/** Bucket operations for one layout. */
export class Buckets {
  private readonly seen: LRUCache<string, { info: BucketInfo; at: number }>;
  /** Incarnations read or written lately (bucket mapping), the value a write starts under; see writable(). */
  private readonly incarnations: LRUCache<string, { value: string; at: number }>;
  /** The incarnation reads confirm() makes after writes, shared by the writes to one bucket that end together. */
  private readonly confirmations = new FreshReads<string>((name) => this.readIncarnation(name));

  constructor(
    private readonly clients: UpstreamClients,
    private readonly layout: Layout,
    max = BUCKET_CACHE_MAX,
  ) {
    this.seen = new LRUCache({ max });
    this.incarnations = new LRUCache({ max });
  }

  async list(): Promise<BucketInfo[]> {
    const s3 = this.clients.retrying;
    try {
      if (this.layout.mapping === 'bucket') {
        const out = await s3.send(new ListBucketsCommand({}));
        return (out.Buckets ?? []).map((b) => ({ name: b.Name ?? '', createdAt: b.CreationDate ?? new Date(0) }));
      }
      const found: BucketInfo[] = [];
      let token: string | undefined;
      do {
        const page = await listObjectsV2(s3, { Bucket: this.layout.shared, Prefix: BUCKET_MARKERS, ContinuationToken: token });
        for (const o of page.Contents ?? []) found.push({ name: o.Key!.slice(BUCKET_MARKERS.length), createdAt: o.LastModified ?? new Date(0) });
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return found;
    } catch (err) {
      throw translate(err);
    }
  }

  async create(name: string): Promise<BucketInfo> {
    this.forget(name);
    try {
      // Bucket mapping: CreateBucket is the atomic "name is free" check (a crash before the tag leaves "none").
      if (this.layout.mapping === 'bucket') await this.createUpstream(name);
      this.incarnations.set(name, { value: await writeIncarnation(this.clients, this.layout, name), at: Date.now() });
    } catch (err) {
      if (faultStatus(err) === 412 || faultStatus(err) === 409) throw new BucketAlreadyExistsError(`bucket ${name} exists`);
      throw translate(err);
    }
    return this.head(name);
  }

  /**
   * CreateBucket upstream; a ghost (isGhost()) in the way is deleted and the bucket created again. The upstream's
   * DeleteBucket refuses a bucket that holds anything, so an object landing after the check keeps the ghost (409).
   */
  private async createUpstream(name: string): Promise<void> {
    const s3 = this.clients.retrying;
    const Bucket = this.layout.bucketOf(name);
    try {
      await s3.send(new CreateBucketCommand({ Bucket }));
      return;
    } catch (err) {
      if (faultStatus(err) !== 409 || !(await this.isGhost(name))) throw err;
    }
    await s3.send(new DeleteBucketCommand({ Bucket }));
    await s3.send(new CreateBucketCommand({ Bucket }));
  }

  /**
   * True for a ghost: an upstream bucket MinIO brought back after its DeleteBucket answered, because a PutObject that
   * had passed MinIO's bucket check before the delete wrote its object afterwards (MinIO keeps no bucket metadata for
   * it: no tags, creation date 0001-01-01). The write that brought it back is undone by confirm() (its bucket lost
   * its incarnation), which leaves the ghost empty, and no tenant owns the name (its DeleteBucket answered): without
   * this, every CreateBucket of the name would answer BucketAlreadyExists for good. Only an empty bucket without an
   * incarnation AND without a creation date counts: a bucket someone made on the upstream, one from before
   * incarnations or one whose tag an operator wiped always has its creation date, so none of them is taken over.
   */
  private async isGhost(name: string): Promise<boolean> {
    const Bucket = this.layout.bucketOf(name);
    if ((await readIncarnation(this.clients, this.layout, name).catch(() => undefined)) !== NO_INCARNATION) return false;
    const created = await this.upstreamCreated(name);
    if (created === undefined || created.getUTCFullYear() > 1) return false;
    // MinIO's stale copy of a live bucket looks the same (see confirm()): read from disk again, it shows its tag.
    if ((await this.reloadMetadata(name)) && (await readIncarnation(this.clients, this.layout, name).catch(() => undefined)) !== NO_INCARNATION) return false;
    const inside = await listObjectsV2(this.clients.retrying, { Bucket, MaxKeys: 1 });
    return (inside.Contents ?? []).length === 0;
  }

  /**
   * Throws NoSuchBucketError unless the bucket exists; answers from a short-lived cache when it can. The cache may
   * still hold a bucket deleted a moment ago elsewhere (another worker or node, or straight on the upstream): what
   * creates data asks through writable() instead, and `fresh` asks the upstream now (one request; the creation date
   * of a bucket seen before is reused, as no read of existence shows it).
   */
  async head(name: string, options: { fresh?: boolean } = {}): Promise<BucketInfo> {
    const cached = this.seen.get(name);
    if (cached && !options.fresh && Date.now() - cached.at < EXISTS_TTL_MS) return cached.info;
    const s3 = this.clients.retrying;
    let info: BucketInfo;
    try {
      if (this.layout.mapping === 'bucket') {
        await s3.send(new HeadBucketCommand({ Bucket: this.layout.bucketOf(name) }));
        // HeadBucket carries no creation date; the listing does (and may be refused: then the epoch).
        const listed = cached ? [cached.info] : await this.list().catch(() => []);
        info = { name, createdAt: listed.find((b) => b.name === name)?.createdAt ?? new Date(0) };
      } else {
        const out = await s3.send(new HeadObjectCommand(this.layout.marker(name)));
        info = { name, createdAt: out.LastModified ?? new Date(0) };
      }
    } catch (err) {
      if (isNotFound(err)) {
        this.seen.delete(name);
        throw new NoSuchBucketError(`bucket ${name} does not exist`);
      }
      throw translate(err);
    }
    this.seen.set(name, { info, at: Date.now() });
    return info;
  }

  /**
   * The incarnation a write that creates data starts under (pass it to confirm() once the upstream acknowledged the
   * write); NoSuchBucketError unless the bucket exists. With prefix mapping nothing upstream refuses a write into a
   * missing bucket (the shared bucket exists whatever became of the marker), so the marker is asked every time, and
   * its ETag is the incarnation. With bucket mapping the upstream refuses such writes itself, so a recent value may
   * answer: one older than the request only makes confirm() stricter (a bucket re-created elsewhere since then
   * fails the write once, and the next one reads afresh).
   */
  async writable(name: string): Promise<WriteStart> {
    const at = Date.now();
    const known = this.incarnations.get(name);
    if (this.layout.mapping === 'bucket' && known && at - known.at < EXISTS_TTL_MS) return { incarnation: known.value, at };
    return { incarnation: await this.readIncarnation(name), at };
  }

  /**
   * Returns when the bucket's incarnation is still `started` (from writable()) after a write; otherwise runs
   * `undo`, which removes what the write created, and throws NoSuchBucketError: the write was authorized against a
   * bucket that has since been deleted (and perhaps created again for someone else, or brought back untagged by
   * the upstream itself, see isGhost()). One upstream request sent after the write was acknowledged, shared with the
   * writes to the same bucket acknowledged meanwhile (FreshReads); a few more, over at most about 3 s, while the
   * bucket reads untagged.
   */
  async confirm(name: string, started: WriteStart, undo: () => Promise<void>): Promise<void> {
    const now = () =>
      this.confirmations.get(name).catch((err: unknown) => {
        if (err instanceof NoSuchBucketError) return undefined;
        throw err;
      });
    // The same bucket; or, with a value from this node's cache, a bucket created again elsewhere well before the
    // write started.
    const holds = (value: string | undefined) => value !== undefined && (value === started.incarnation || createdBefore(value, started.at));
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    let value = await now();
    // A bucket without its tag (bucket mapping), when the write started under one, is ambiguous: the write's bucket
    // whose tag MinIO answers without (its in-memory bucket metadata can be replaced by a copy read from disk just
    // before the tag was written, and stays so until MinIO's 15-minute refresh: a ListBuckets racing a CreateBucket
    // does it, cmd/bucket-metadata-sys.go GetConfig), an operator wiping the tag set, a bucket created again whose
    // tag is still being written, or a ghost MinIO brought back after its DeleteBucket answered (isGhost()). The
    // upstream's creation date tells them apart: the write's bucket was created before its incarnation was written
    // (the incarnation carries that time), one created again after it, a ghost has none. A missing bucket is never
    // ambiguous: the write's bucket is gone. A bucket that had no incarnation when the write started is
    // unprotected (README), never refused for it.
    if (value === NO_INCARNATION && started.incarnation !== NO_INCARNATION) {
      const same = await this.createdUnder(name, started.incarnation).catch(() => undefined);
      if (same === true) return;
      // MinIO's copy can also be the one read before CreateBucket wrote any metadata: no tag and no creation date,
      // exactly what a ghost shows. Having MinIO read its metadata from disk again tells them apart.
      if (await this.reloadMetadata(name)) value = await now();
      // No creation date to go by (the listing failed or is refused): asked again for about 3 s, as the tag of a
      // bucket created again through a gateway shows up within a request's time, and then differs.
      for (const wait of same === undefined ? [100, 200, 400, 800, 1600] : []) {
        if (value !== NO_INCARNATION) break;
        await pause(wait);
        value = await now();
      }
    }
    if (holds(value)) return;
    await undo();
    this.forget(name);
    throw new NoSuchBucketError(`bucket ${name} was deleted while the write was in progress`);
  }

  /** The upstream bucket's creation date as ListBuckets gives it (year 1 for a ghost); undefined when it is not listed. */
  private async upstreamCreated(name: string): Promise<Date | undefined> {
    const listed = await this.clients.retrying.send(new ListBucketsCommand({}));
    return (listed.Buckets ?? []).find((b) => b.Name === this.layout.bucketOf(name))?.CreationDate;
  }

  /**
   * True when upstream bucket `name` was created no later than `incarnation` (a timed one, incarnationBody()) was
   * written: the bucket that incarnation was given to, whatever its tag reads now. False for a bucket created after
   * it (created again since), one without a creation date (a ghost: year 1), a missing one, or an incarnation
   * without a time. One ListBuckets; throws when the upstream refuses or fails it. A bucket created again within the
   * clock difference between this node and the upstream (NTP keeps it to milliseconds) after the tag was written,
   * and found untagged, would pass for the old one.
   */
  private async createdUnder(name: string, incarnation: string): Promise<boolean> {
    const tagged = writtenAt(incarnation);
    if (tagged === undefined) return false;
    const created = await this.upstreamCreated(name);
    if (created === undefined || created.getUTCFullYear() <= 1) return false;
    return created.getTime() <= tagged;
  }

  /**
   * Makes MinIO read a bucket's metadata from disk again, replacing the copy it answers from (a metadata update
   * loads from disk, changes one config and saves: cmd/bucket-metadata-sys.go updateAndParse). The update is a
   * DeleteBucketPolicy, sent only when the bucket reads as having no policy: a copy that old was read before anyone
   * could set one (setting one would have replaced it), so there is none on disk to delete either. True when it was
   * sent; false when the bucket has a policy or the upstream refuses either request (then nothing changes).
   */
  private async reloadMetadata(name: string): Promise<boolean> {
    const s3 = this.clients.retrying;
    const Bucket = this.layout.bucketOf(name);
    try {
      await s3.send(new GetBucketPolicyCommand({ Bucket }));
      return false;
    } catch (err) {
      if (faultCode(err) !== 'NoSuchBucketPolicy') return false;
    }
    try {
      await s3.send(new DeleteBucketPolicyCommand({ Bucket }));
      return true;
    } catch {
      return false;
    }
  }

  /** confirm() for a write that created `key` with `etag`, undone only while the key still holds that version. */
  confirmObject(name: string, started: WriteStart, written: { key: string; etag: string }): Promise<void> {
    const loc = this.layout.object(name, written.key);
    return this.confirm(name, started, () => removeIfUnchanged(this.clients, loc, written.etag));
  }

  /** The incarnation as the upstream has it now, remembered for writable(); NoSuchBucketError when the bucket is gone. */
  private async readIncarnation(name: string): Promise<string> {
    try {
      const value = await readIncarnation(this.clients, this.layout, name);
      this.incarnations.set(name, { value, at: Date.now() });
      return value;
    } catch (err) {
      if (err instanceof NoSuchBucketError) this.forget(name);
      throw err;
    }
  }

  /** Drops what the cache knows of a bucket: the upstream answered that it does not exist. */
  forget(name: string): void {
    this.seen.delete(name);
    this.incarnations.delete(name);
  }

  /**
   * Refuses with BucketNotEmptyError while objects remain; uploads in progress are ended by `abortUploads` (S3 lets
   * a general purpose bucket go with them); then removes the backend's records and the bucket. With prefix mapping
   * nothing upstream refuses a write under a prefix whose marker is gone, so the bucket is looked at again once its
   * marker is: see deleteMarker().
   */
  async delete(name: string, abortUploads: () => Promise<void>): Promise<void> {
    await this.head(name);
    this.forget(name);
    const s3 = this.clients.retrying;
    const Bucket = this.layout.bucketOf(name);
    const base = this.layout.prefixOf(name);
    try {
      if (await this.holdsObjects(Bucket, base)) throw new BucketNotEmptyError(`bucket ${name} is not empty`);
      if (this.layout.mapping === 'prefix') return await this.deleteMarker(name, abortUploads);
      await this.clearRecords(Bucket, base, abortUploads);
      await s3.send(new DeleteBucketCommand({ Bucket }));
    } catch (err) {
      if (faultCode(err) === 'NoSuchBucket') throw new NoSuchBucketError(`bucket ${name} does not exist`);
      throw translate(err);
    }
  }

  /**
   * Prefix mapping: deletes the marker, then lists the bucket again. A write that landed after the first listing
   * and confirmed its incarnation before the marker went was acknowledged, so it shows now: the marker is put back
   * with the same body (the same ETag, so the same incarnation: writes in flight stand), and BucketNotEmptyError is
   * thrown, as for any bucket with objects. A write landing after this listing confirms after the marker is gone
   * and is undone by confirm(). Only then are uploads aborted and records removed (a bucket that stays keeps them).
   */
  private async deleteMarker(name: string, abortUploads: () => Promise<void>): Promise<void> {
    const s3 = this.clients.retrying;
    const marker = this.layout.marker(name);
    const Bucket = this.layout.bucketOf(name);
    const base = this.layout.prefixOf(name);
    let body: string;
    try {
      body = await (await s3.send(new GetObjectCommand(marker))).Body!.transformToString();
    } catch (err) {
      if (isNotFound(err)) throw new NoSuchBucketError(`bucket ${name} does not exist`);
      throw err;
    }
    await s3.send(new DeleteObjectCommand(marker));
    if (await this.holdsObjects(Bucket, base)) {
      // If-None-Match: a bucket of the name created meanwhile (by its owner, or root) is not replaced; it is the
      // name's bucket now, and the objects are its.
      await s3.send(new PutObjectCommand({ ...marker, Body: body, ContentLength: Buffer.byteLength(body), IfNoneMatch: '*' })).catch((err: unknown) => {
        if (faultStatus(err) !== 412) throw err;
      });
      throw new BucketNotEmptyError(`bucket ${name} is not empty`);
    }
    await this.clearRecords(Bucket, base, abortUploads);
  }

  /** True when the bucket holds an object outside `_anvil/`. */
  private async holdsObjects(Bucket: string, base: string): Promise<boolean> {
    // With "/" as delimiter the reserved namespace is one entry at most, so two entries decide emptiness.
    const top = await listObjectsV2(this.clients.retrying, { Bucket, Prefix: base, Delimiter: '/', MaxKeys: 2 });
    const others = [...(top.Contents ?? []).map((o) => o.Key), ...(top.CommonPrefixes ?? []).map((p) => p.Prefix)];
    return others.some((k) => k !== base + RESERVED);
  }

  /** Aborts the bucket's uploads (when it has any) and removes every record under its `_anvil/`. */
  private async clearRecords(Bucket: string, base: string, abortUploads: () => Promise<void>): Promise<void> {
    const uploads = await listObjectsV2(this.clients.retrying, { Bucket, Prefix: base + UPLOADS, MaxKeys: 1 });
    if ((uploads.Contents ?? []).length > 0) await abortUploads();
    await this.purge(Bucket, base + RESERVED);
  }

  /** Deletes every upstream object under `prefix`, a thousand per call. */
  private async purge(Bucket: string, prefix: string): Promise<void> {
    const s3 = this.clients.retrying;
    for (;;) {
      const page = await listObjectsV2(s3, { Bucket, Prefix: prefix, MaxKeys: 1000 });
      const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
      if (keys.length === 0) return;
      await s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys, Quiet: true } }));
      if (!page.IsTruncated) return;
    }
  }
}

/**
 * What the embedded store's operations share: the index, the blob files, and the few lookups every operation does.
 */
import type { ObjectMeta } from '../backend.ts';
import { NoSuchBucketError, NoSuchKeyError } from '../errors.ts';
import type { BlobStore } from './blobs.ts';
import type { Index, ObjectRow, StoredMeta } from './index-db.ts';

/** The index and blob store of one open embedded store, with helpers shared by its operation files. */
export class StoreContext {
  constructor(
    readonly index: Index,
    readonly blobs: BlobStore,
  ) {}

  /** Throws NoSuchBucketError unless the bucket exists. */
  requireBucket(name: string): void {
    if (!this.index.q.getBucket.get(name)) throw new NoSuchBucketError(`no bucket ${name}`);
  }

  /** The object row, or NoSuchBucketError / NoSuchKeyError. */
  requireObject(bucket: string, key: string): ObjectRow {
    const row = this.index.q.getObject.get(bucket, keyBytes(key));
    if (row) return row;
    this.requireBucket(bucket);
    throw new NoSuchKeyError(`no key ${key}`);
  }

  /**
   * Called right after a commit, in the same tick: unlinks those of `blobs` nothing references any more. Copies share
   * blobs, so the index (not the caller) decides.
   */
  release(blobs: Iterable<string>): void {
    const dead = [...new Set(blobs)].filter((id) => !this.index.isReferenced(id));
    if (dead.length > 0) this.blobs.discard(dead);
  }
}

/** A key as the index stores it: its UTF-8 bytes. */
export function keyBytes(key: string): Buffer {
  return Buffer.from(key, 'utf8');
}

/** The metadata view of an object row. */
export function rowToMeta(row: ObjectRow): ObjectMeta {
  const meta = JSON.parse(row.meta) as StoredMeta;
  const out: ObjectMeta = {
    key: row.key.toString('utf8'),
    size: row.size,
    etag: row.etag,
    lastModified: new Date(row.last_modified),
    headers: meta.headers ?? {},
    userMetadata: meta.userMetadata ?? {},
  };
  if (meta.checksum) out.checksum = meta.checksum;
  if (meta.partChecksums) out.partChecksums = meta.partChecksums;
  if (row.part_sizes) out.partSizes = JSON.parse(row.part_sizes) as number[];
  out.tagCount = Object.keys(parseTags(row.tags)).length;
  return out;
}

/** A deep copy of write metadata holding only the contract's fields, as stored. */
export function cleanMeta(meta: StoredMeta): StoredMeta {
  const out: StoredMeta = { headers: { ...meta.headers }, userMetadata: { ...meta.userMetadata } };
  if (meta.checksum) out.checksum = { ...meta.checksum };
  if (meta.partChecksums) out.partChecksums = [...meta.partChecksums];
  return out;
}

/** Tags as stored (null for none). */
export function parseTags(s: string | null): Record<string, string> {
  return s ? (JSON.parse(s) as Record<string, string>) : {};
}

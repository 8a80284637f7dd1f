/**
 * What the embedded store's operations share: the index, the blob files, the few lookups every operation does, and
 * reading a body safely while other requests (in this process or another worker) replace or delete its object.
 */
import type { Readable } from 'node:stream';
import type { ObjectMeta } from '../backend.ts';
import { NoSuchBucketError, NoSuchKeyError } from '../errors.ts';
import { BlobGoneError, type BlobStore } from './blobs.ts';
import type { Index, ObjectRow, ObjectRowWithBody, StoredMeta } from './index-db.ts';

/**
 * A read over more segments than this leases its blobs in the index instead of opening every file ahead (an object
 * of 10,000 parts would need 10,000 descriptors at once).
 */
export const EAGER_OPEN_MAX = 32;
/** Lookups a read makes when its blobs keep vanishing between lookup and open (each time, a newer object exists). */
const READ_ATTEMPTS = 5;

/** What a lookup for a read found: the row, and the inclusive byte range to read (end < start: nothing). */
export interface BodyLookup {
  row: ObjectRow | ObjectRowWithBody;
  start: number;
  end: number;
}

/** The index and blob store of one open embedded store, with helpers shared by its operation files. */
export class StoreContext {
  private leases = 0;

  constructor(
    readonly index: Index,
    readonly blobs: BlobStore,
    private readonly eagerOpenMax = EAGER_OPEN_MAX,
  ) {}

  /**
   * Throws NoSuchBucketError unless the bucket exists; returns which creation of the name it is (see
   * requireSameBucket).
   */
  requireBucket(name: string): { incarnation: number | null } {
    const row = this.index.q.getBucket.get(name);
    if (!row) throw new NoSuchBucketError(`no bucket ${name}`);
    return row;
  }

  /**
   * Inside a commit: throws NoSuchBucketError unless the bucket is still the one a write found when it started. A
   * bucket deleted while the body arrived and created again (by another tenant, say) is another bucket: what was
   * authorized for the first never lands in the second.
   */
  requireSameBucket(name: string, found: { incarnation: number | null }): void {
    if (this.requireBucket(name).incarnation !== found.incarnation) throw new NoSuchBucketError(`bucket ${name} was deleted and created again during the write`);
  }

  /** The object row (with its inline body when `withBody`), or NoSuchBucketError / NoSuchKeyError. */
  requireObject(bucket: string, key: string): ObjectRow;
  requireObject(bucket: string, key: string, withBody: true): ObjectRowWithBody;
  requireObject(bucket: string, key: string, withBody = false): ObjectRow | ObjectRowWithBody {
    const q = this.index.q;
    const bytes = keyBytes(key);
    if (withBody) {
      const found = q.getObjectWithBody.get(bucket, bytes);
      if (found) return { ...found, bucket, key: bytes };
    } else {
      const row = q.getObject.get(bucket, bytes);
      if (row) return row;
    }
    this.requireBucket(bucket);
    throw new NoSuchKeyError(`no key ${key}`);
  }

  /**
   * Called after a commit that dropped references to `blobs`: unlinks those nothing references or leases any more,
   * once the commits that made them so (this one, or another process's) are on disk — never before, or a crash
   * could bring back a reference to a deleted file. Copies share blobs, so the index (not the caller) decides.
   * Nothing waits for it but tests; a failure leaves garbage for the next start's sweep.
   */
  release(blobs: Iterable<string>): Promise<void> {
    const dead = [...new Set(blobs)].filter((id) => !this.index.isInUse(id));
    if (dead.length === 0) return Promise.resolve();
    return this.index.sync().then(
      () => this.blobs.discard(dead),
      () => {},
    );
  }

  /**
   * Runs `lookup` (synchronous: it reads the index) and opens the body range it names, looking up again when a blob
   * vanished in between (the object was replaced or deleted meanwhile: the read then serves the newer state).
   */
  async readBody<T extends BodyLookup>(lookup: () => T): Promise<T & { body: Buffer | Readable }> {
    for (let attempt = 1; ; attempt++) {
      const found = lookup();
      try {
        return { ...found, body: await this.openBody(found) };
      } catch (err) {
        if (!(err instanceof BlobGoneError) || attempt >= READ_ATTEMPTS) throw err;
      }
    }
  }

  private async openBody({ row, start, end }: BodyLookup): Promise<Buffer | Readable> {
    if (end < start) return Buffer.alloc(0);
    const inline = 'body' in row ? row.body : null;
    if (inline) return inline.subarray(start, end + 1);
    const segments = this.index.q.segments.all(row.id);
    if (segments.length <= this.eagerOpenMax) return this.blobs.open(segments, start, end, { eager: true });
    // Blobs are immutable, so a lease taken while each is still referenced (by this object or a copy) pins exactly
    // the bytes the lookup saw; release() leaves leased blobs alone and the lease's end unlinks what is then unused.
    const lease = `${process.pid}.${++this.leases}`;
    const ids = [...new Set(segments.map((s) => s.blob))];
    const held = await this.index.commitVolatile(() => {
      if (!ids.every((id) => this.index.isReferenced(id))) return false;
      for (const id of ids) this.index.q.insertLease.run(lease, id);
      return true;
    });
    if (!held) throw new BlobGoneError('the object changed before its blobs were leased');
    return this.blobs.open(segments, start, end, { eager: false, onClose: () => void this.endLease(lease, ids) });
  }

  private async endLease(lease: string, ids: string[]): Promise<void> {
    if (!this.index.db.open) return; // closed meanwhile: the next start's sweep clears leases and unused blobs
    try {
      await this.index.commitVolatile(() => this.index.q.deleteLease.run(lease));
      await this.release(ids);
    } catch {
      // Left for the sweep at the next start, like the leases of a process that died.
    }
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

/**
 * The SQLite index of the embedded store: buckets, objects (as lists of blob segments, or small bodies inline),
 * uploads and parts, and the read leases that keep blobs of long multi-segment reads alive across processes. Keys
 * are stored as BLOBs of their UTF-8 bytes so SQLite orders them exactly as S3 lists them (memcmp), never as JS
 * strings. Several processes (the gateway's workers) share the file; every write goes through commit(), which
 * acknowledges only once the commit is on disk (group commit, see wal-sync.ts).
 */
import Database from 'better-sqlite3';
import type { ObjectWriteMeta, StoredChecksum } from '../backend.ts';
import { StorageError } from '../errors.ts';
import { SpaceReserve } from '../space-reserve.ts';
import { WalSync } from './wal-sync.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS buckets (
  name TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS bucket_incarnations (n INTEGER PRIMARY KEY AUTOINCREMENT);
CREATE TABLE IF NOT EXISTS objects (
  id INTEGER PRIMARY KEY,
  bucket TEXT NOT NULL,
  key BLOB NOT NULL,
  size INTEGER NOT NULL,
  etag TEXT NOT NULL,
  last_modified INTEGER NOT NULL,
  meta TEXT NOT NULL,
  part_sizes TEXT,
  tags TEXT,
  UNIQUE (bucket, key)
);
CREATE TABLE IF NOT EXISTS segments (
  object_id INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  blob TEXT NOT NULL,
  size INTEGER NOT NULL,
  PRIMARY KEY (object_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS segments_blob ON segments (blob);
CREATE TABLE IF NOT EXISTS uploads (
  upload_id TEXT PRIMARY KEY,
  bucket TEXT NOT NULL,
  key BLOB NOT NULL,
  initiated INTEGER NOT NULL,
  meta TEXT NOT NULL,
  tags TEXT
);
CREATE INDEX IF NOT EXISTS uploads_key ON uploads (bucket, key, upload_id);
CREATE TABLE IF NOT EXISTS parts (
  upload_id TEXT NOT NULL,
  part_number INTEGER NOT NULL,
  blob TEXT NOT NULL,
  size INTEGER NOT NULL,
  etag TEXT NOT NULL,
  last_modified INTEGER NOT NULL,
  checksum TEXT,
  PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS parts_blob ON parts (blob);
CREATE TABLE IF NOT EXISTS bucket_config (
  bucket TEXT NOT NULL,
  name TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (bucket, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blob_leases (
  lease TEXT NOT NULL,
  blob TEXT NOT NULL,
  PRIMARY KEY (lease, blob)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blob_leases_blob ON blob_leases (blob);
`;

/** Bodies up to this size live in the objects row itself: one commit makes them durable, one lookup reads them. */
export const INLINE_MAX = 64 * 1024;

/** How long a write transaction waits for another process's, yielding the event loop between attempts. */
const WRITE_WAIT_MS = 5000;

/** An object row as stored. */
export interface ObjectRow {
  id: number;
  bucket: string;
  key: Buffer;
  size: number;
  etag: string;
  last_modified: number;
  meta: string;
  part_sizes: string | null;
  tags: string | null;
}

/** What a listing reads of an object row (objects_listing_checksum covers it): checksum is `ALGORITHM/TYPE` or null. */
export type ListingRow = Pick<ObjectRow, 'key' | 'size' | 'etag' | 'last_modified'> & { checksum: string | null };

/** An object row with its inline body (null when the body lives in blobs). */
export type ObjectRowWithBody = ObjectRow & { body: Buffer | null };

/** One stretch of an object's body: a blob and its length. */
export interface Segment {
  blob: string;
  size: number;
}

/** An upload row as stored. */
export interface UploadRow {
  upload_id: string;
  bucket: string;
  key: Buffer;
  initiated: number;
  meta: string;
  tags: string | null;
}

/** A part row as stored. */
export interface PartRow {
  upload_id: string;
  part_number: number;
  blob: string;
  size: number;
  etag: string;
  last_modified: number;
  checksum: string | null;
}

/** What the meta column holds: the write metadata, plus the part checksums of a multipart object. */
export type StoredMeta = ObjectWriteMeta & { partChecksums?: string[] };

/** A new object row, before it has an id. */
export interface NewObject {
  bucket: string;
  key: Buffer;
  size: number;
  etag: string;
  lastModified: number;
  meta: StoredMeta;
  partSizes?: number[];
  tags?: Record<string, string>;
  /** The whole body, stored in the row (at most INLINE_MAX bytes); absent when the body is in segments. */
  body?: Buffer;
}

/**
 * A commit that went through but whose fsync failed: the write may or may not survive a crash. Callers must not
 * treat it as rolled back (its blobs are referenced now) nor acknowledge it.
 */
export class UnsyncedCommitError extends StorageError {
  override name = 'UnsyncedCommitError';
}

/** The columns of ObjectRow, without the inline body (read only where it is used). */
const OBJECT_COLUMNS = 'id, bucket, key, size, etag, last_modified, meta, part_sizes, tags';

/**
 * Adds a column unless the table has it; true when this call added it. Worker processes open the index at the same time, so one of two may find it
 * added meanwhile ("duplicate column name"): that is the outcome wanted.
 */
function addColumn(db: Database.Database, table: string, column: string): boolean {
  const name = column.split(' ')[0]!;
  if ((db.pragma(`table_info(${table})`) as Array<{ name: string }>).some((c) => c.name === name)) return false;
  try {
    db.exec(`ALTER TABLE ${table} ADD COLUMN ${column}`);
    return true;
  } catch (err) {
    if (!/duplicate column name/i.test((err as Error).message)) throw err;
    return false;
  }
}

/** The objects.checksum column's text for a stored checksum: `ALGORITHM/TYPE`, or null without one. */
export function listingChecksum(checksum: StoredChecksum | undefined): string | null {
  return checksum ? `${checksum.algorithm}/${checksum.type ?? 'FULL_OBJECT'}` : null;
}

/**
 * Opens the index with the durability the store relies on, and prepares every statement once. Transactions that find
 * the volume full release `space`'s reserve and run once more, so deletes commit on a full disk.
 */
export function openIndex(file: string, space: SpaceReserve = SpaceReserve.none(file)) {
  const db = new Database(file, { timeout: WRITE_WAIT_MS });
  db.pragma('journal_mode = WAL');
  // Commits do not wait for the disk inside SQLite (on the event loop); commit() waits for WalSync instead.
  db.pragma('synchronous = NORMAL');
  db.exec(SCHEMA);
  addColumn(db, 'objects', 'body BLOB');
  // Which creation of a bucket of this name a row is (bucket_incarnations: AUTOINCREMENT never hands a number out
  // twice). Buckets made before the column existed keep NULL, itself unlike any later incarnation.
  addColumn(db, 'buckets', 'incarnation INTEGER');
  // The stored checksum's `ALGORITHM/TYPE` (listingChecksum), beside meta's full record, so a listing names it from
  // its covering index. Rows written before the column existed get it from their meta once, when it is added.
  if (addColumn(db, 'objects', 'checksum TEXT')) {
    db.exec(`UPDATE objects SET checksum = json_extract(meta, '$.checksum.algorithm') || '/' || coalesce(json_extract(meta, '$.checksum.type'), 'FULL_OBJECT')
             WHERE checksum IS NULL AND json_extract(meta, '$.checksum.algorithm') IS NOT NULL`);
  }
  // Covers listings: a page is read from this index alone, never from the rows (which hold inline bodies). It
  // replaces objects_listing, which lacked the checksum.
  db.exec(`CREATE INDEX IF NOT EXISTS objects_listing_checksum ON objects (bucket, key, size, etag, last_modified, checksum);
           DROP INDEX IF EXISTS objects_listing;`);
  const q = {
    listBuckets: db.prepare<[], { name: string; created_at: number }>('SELECT name, created_at FROM buckets ORDER BY name'),
    getBucket: db.prepare<[string], { name: string; created_at: number; incarnation: number | null }>('SELECT name, created_at, incarnation FROM buckets WHERE name = ?'),
    insertBucket: db.prepare<[string, number, number]>('INSERT OR IGNORE INTO buckets (name, created_at, incarnation) VALUES (?, ?, ?)'),
    newIncarnation: db.prepare<[]>('INSERT INTO bucket_incarnations DEFAULT VALUES'),
    dropIncarnationsBefore: db.prepare<[number]>('DELETE FROM bucket_incarnations WHERE n < ?'),
    deleteBucket: db.prepare<[string]>('DELETE FROM buckets WHERE name = ?'),
    getBucketConfig: db.prepare<[string, string], { value: string }>('SELECT value FROM bucket_config WHERE bucket = ? AND name = ?'),
    setBucketConfig: db.prepare<[string, string, string]>(
      'INSERT INTO bucket_config (bucket, name, value) VALUES (?, ?, ?) ON CONFLICT (bucket, name) DO UPDATE SET value = excluded.value',
    ),
    deleteBucketConfig: db.prepare<[string, string]>('DELETE FROM bucket_config WHERE bucket = ? AND name = ?'),
    deleteAllBucketConfig: db.prepare<[string]>('DELETE FROM bucket_config WHERE bucket = ?'),
    bucketUploads: db.prepare<[string], { upload_id: string }>('SELECT upload_id FROM uploads WHERE bucket = ?'),
    anyObject: db.prepare<[string], { x: number }>('SELECT 1 AS x FROM objects WHERE bucket = ? LIMIT 1'),
    anyUpload: db.prepare<[string], { x: number }>('SELECT 1 AS x FROM uploads WHERE bucket = ? LIMIT 1'),
    getObject: db.prepare<[string, Buffer], ObjectRow>(`SELECT ${OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND key = ?`),
    // Without bucket and key, which the caller has: a key column costs a Buffer copy, a GET's lookup is per request.
    getObjectWithBody: db.prepare<[string, Buffer], Omit<ObjectRowWithBody, 'bucket' | 'key'>>(
      'SELECT id, size, etag, last_modified, meta, part_sizes, tags, body FROM objects WHERE bucket = ? AND key = ?',
    ),
    insertObject: db.prepare<[string, Buffer, number, string, number, string, string | null, string | null, Buffer | null, string | null]>(
      'INSERT INTO objects (bucket, key, size, etag, last_modified, meta, part_sizes, tags, body, checksum) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    deleteObject: db.prepare<[number]>('DELETE FROM objects WHERE id = ?'),
    setTags: db.prepare<[string | null, number]>('UPDATE objects SET tags = ? WHERE id = ?'),
    segments: db.prepare<[number], Segment>('SELECT blob, size FROM segments WHERE object_id = ? ORDER BY seq'),
    insertSegment: db.prepare<[number, number, string, number]>('INSERT INTO segments (object_id, seq, blob, size) VALUES (?, ?, ?, ?)'),
    deleteSegments: db.prepare<[number]>('DELETE FROM segments WHERE object_id = ?'),
    listObjects: db.prepare<[string, Buffer, Buffer, number], ListingRow>(
      'SELECT key, size, etag, last_modified, checksum FROM objects WHERE bucket = ? AND key >= ? AND key < ? ORDER BY key LIMIT ?',
    ),
    blobInSegments: db.prepare<[string], { x: number }>('SELECT 1 AS x FROM segments WHERE blob = ? LIMIT 1'),
    blobInParts: db.prepare<[string], { x: number }>('SELECT 1 AS x FROM parts WHERE blob = ? LIMIT 1'),
    blobLeased: db.prepare<[string], { x: number }>('SELECT 1 AS x FROM blob_leases WHERE blob = ? LIMIT 1'),
    insertLease: db.prepare<[string, string]>('INSERT OR IGNORE INTO blob_leases (lease, blob) VALUES (?, ?)'),
    deleteLease: db.prepare<[string]>('DELETE FROM blob_leases WHERE lease = ?'),
    getUpload: db.prepare<[string], UploadRow>('SELECT * FROM uploads WHERE upload_id = ?'),
    insertUpload: db.prepare<[string, string, Buffer, number, string, string | null]>(
      'INSERT INTO uploads (upload_id, bucket, key, initiated, meta, tags) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    deleteUpload: db.prepare<[string]>('DELETE FROM uploads WHERE upload_id = ?'),
    listUploadsFrom: db.prepare<[string, Buffer, Buffer, number], UploadRow>(
      'SELECT * FROM uploads WHERE bucket = ? AND key >= ? AND key < ? ORDER BY key, upload_id LIMIT ?',
    ),
    listUploadsAfter: db.prepare<[string, Buffer, string, Buffer, number], UploadRow>(
      'SELECT * FROM uploads WHERE bucket = ? AND (key, upload_id) > (?, ?) AND key < ? ORDER BY key, upload_id LIMIT ?',
    ),
    getPart: db.prepare<[string, number], PartRow>('SELECT * FROM parts WHERE upload_id = ? AND part_number = ?'),
    allParts: db.prepare<[string], PartRow>('SELECT * FROM parts WHERE upload_id = ? ORDER BY part_number'),
    listParts: db.prepare<[string, number, number], PartRow>(
      'SELECT * FROM parts WHERE upload_id = ? AND part_number > ? ORDER BY part_number LIMIT ?',
    ),
    upsertPart: db.prepare<[string, number, string, number, string, number, string | null]>(
      `INSERT INTO parts (upload_id, part_number, blob, size, etag, last_modified, checksum) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (upload_id, part_number) DO UPDATE SET blob = excluded.blob, size = excluded.size,
         etag = excluded.etag, last_modified = excluded.last_modified, checksum = excluded.checksum`,
    ),
    deleteParts: db.prepare<[string]>('DELETE FROM parts WHERE upload_id = ?'),
  };

  /** Removes an object row and its segments; returns the blobs it referenced (to release after commit). */
  function removeObject(row: ObjectRow): string[] {
    const blobs = q.segments.all(row.id).map((s) => s.blob);
    q.deleteSegments.run(row.id);
    q.deleteObject.run(row.id);
    return blobs;
  }

  /** Replaces (bucket, key) with a new object made of `segments` (or its inline body); returns the blobs the old one referenced. */
  function replaceObject(obj: NewObject, segments: readonly Segment[]): string[] {
    const old = q.getObject.get(obj.bucket, obj.key);
    const released = old ? removeObject(old) : [];
    const { lastInsertRowid } = q.insertObject.run(
      obj.bucket,
      obj.key,
      obj.size,
      obj.etag,
      obj.lastModified,
      JSON.stringify(obj.meta),
      obj.partSizes ? JSON.stringify(obj.partSizes) : null,
      obj.tags && Object.keys(obj.tags).length > 0 ? JSON.stringify(obj.tags) : null,
      obj.body ?? null,
      listingChecksum(obj.meta.checksum),
    );
    const id = Number(lastInsertRowid);
    segments.forEach((s, i) => q.insertSegment.run(id, i, s.blob, s.size));
    return released;
  }

  /** True while any object or part points at the blob. */
  function isReferenced(blob: string): boolean {
    return q.blobInSegments.get(blob) !== undefined || q.blobInParts.get(blob) !== undefined;
  }

  /** True while the blob may not be unlinked: referenced, or leased by a reader in some process. */
  function isInUse(blob: string): boolean {
    return isReferenced(blob) || q.blobLeased.get(blob) !== undefined;
  }

  const wal = new WalSync(file);
  const tx = db.transaction((fn: () => unknown) => fn());
  // Only a write transaction's start ever waits on another process; it must not sleep on the event loop doing so.
  const noWait = db.prepare('PRAGMA busy_timeout = 0');
  const wait = db.prepare(`PRAGMA busy_timeout = ${WRITE_WAIT_MS}`);

  /** Runs `fn` in one IMMEDIATE transaction, retrying (yielding the event loop) while another process writes. */
  async function write<T>(fn: () => T): Promise<T> {
    const deadline = Date.now() + WRITE_WAIT_MS;
    for (let attempt = 0; ; attempt++) {
      noWait.get();
      try {
        return space.commitMetadata(() => tx.immediate(fn) as T);
      } catch (err) {
        if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw err;
      } finally {
        wait.get();
      }
      await new Promise((resolve) => (attempt < 8 ? setImmediate(resolve) : setTimeout(resolve, 1)));
    }
  }

  /**
   * Runs `fn` in one write transaction and resolves with its result once the commit is on disk; throws what `fn`
   * throws (nothing committed). While another process writes, waits without blocking the event loop, up to
   * WRITE_WAIT_MS; a full volume releases the metadata reserve and retries (space-reserve.ts).
   */
  async function commit<T>(fn: () => T): Promise<T> {
    const out = await write(fn);
    await wal.sync().catch((err: Error) => {
      throw new UnsyncedCommitError(`the index could not be synced to disk: ${err.message}`);
    });
    return out;
  }

  /** Like commit(), without waiting for the disk: for what a crash may lose (read leases). */
  const commitVolatile = write;

  /** Resolves once every commit visible now, by any process, is on disk. */
  const sync = (): Promise<void> => wal.sync();

  /** Closes the database and the WAL handle. */
  async function close(): Promise<void> {
    await wal.close();
    if (db.open) db.close();
  }

  return { db, q, removeObject, replaceObject, isReferenced, isInUse, commit, commitVolatile, sync, close };
}

/** The opened index: the database, its prepared statements and the few multi-statement helpers. */
export type Index = ReturnType<typeof openIndex>;

/** Serialises a checksum for the parts table. */
export function encodeChecksum(c: StoredChecksum | undefined): string | null {
  return c ? JSON.stringify(c) : null;
}

/** Reads a checksum back from the parts table. */
export function decodeChecksum(s: string | null): StoredChecksum | undefined {
  return s ? (JSON.parse(s) as StoredChecksum) : undefined;
}

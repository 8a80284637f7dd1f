/**
 * Blob files of the embedded store: bodies streamed to tmp/, hashed, fsynced and renamed to blobs/ab/cd/<id>, where
 * <id> is random so no path ever derives from an object key; small bodies read whole instead, for the index to keep
 * inline. Reads open their blob files before streaming: an open file outlives an unlink, so a blob released by a
 * commit in this process or another (the gateway's workers) stays readable to a reader that opened it, and a reader
 * that finds it gone already (BlobGoneError) looks the object up again. Also the sweep that removes temp files and
 * unreferenced blobs at open.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BadDigestError, IncompleteBodyError, isNoSpace, StorageError, StorageFullError } from '../errors.ts';
import { DRAIN_LIMIT, drainRefusedBody, type DataWriteClaim, SpaceReserve } from '../space-reserve.ts';
import type { Segment } from './index-db.ts';
import { Md5Session } from './md5-threads.ts';

/** A blob just written: where it lives and what was hashed while writing it. */
export interface WrittenBlob {
  id: string;
  size: number;
  md5: Buffer;
}

/** A small body read whole, for the index to store inline. */
export interface InlineBody {
  inline: Buffer;
  size: number;
  md5: Buffer;
}

/** A blob the index named is gone: the object changed between the lookup and the open. Look it up again. */
export class BlobGoneError extends Error {
  override name = 'BlobGoneError';
}

/** Bytes gathered before one write to the temp file, and writes in flight at once: fewer, larger writes, overlapped. */
const WRITE_BATCH = 1024 * 1024;
const WRITES_IN_FLIGHT = 2;
/**
 * A large body's blob is fdatasynced in the background every this many bytes written, so the disk writes back while
 * the rest arrives and the final fdatasync (which the answer waits for) has at most this much left to flush. At 16 MiB
 * that final sync still took 8 ms of a 64 MiB PUT's ~140 (median of 16 interleaved PUTs, one at a time), at 4 MiB
 * 2 ms; the syncs in between run on a libuv thread while the body arrives.
 */
const BACKGROUND_SYNC_EVERY = 4 * 1024 * 1024;
/**
 * Background fdatasyncs running at once in this process. Each holds one of libuv's few threads, which the blob
 * writes need too: with many bodies arriving together, the rest wait for their final sync instead.
 */
const BACKGROUND_SYNCS_MAX = 1;
let backgroundSyncs = 0;
/** Bytes per read while streaming a blob. */
const READ_CHUNK = 512 * 1024;
/** A single-segment read up to this size is answered as one Buffer (one read, no stream machinery). */
export const SMALL_READ = 256 * 1024;

/** Errors a body stream raises when the client went away mid-body: a length problem, not a bad request. */
const TRUNCATION_CODES = new Set(['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'ECONNABORTED', 'EPIPE']);

function noSpace(err: unknown): StorageFullError {
  return err instanceof StorageFullError ? err : new StorageFullError(`no space left for the body: ${(err as Error).message}`);
}

function isTruncation(err: unknown): boolean {
  if (err instanceof StorageError) return false;
  const e = err as { code?: unknown; message?: unknown } | null;
  return (typeof e?.code === 'string' && TRUNCATION_CODES.has(e.code)) || e?.message === 'aborted';
}

/** Owns dataDir/tmp and dataDir/blobs. */
export class BlobStore {
  readonly tmpDir: string;
  readonly blobDir: string;
  /** Fan-out directories made durable (or being made so) by this process, by path. */
  private readonly dirs = new Map<string, Promise<string>>();

  constructor(
    dataDir: string,
    /** Refuses bodies ahead of time when the volume is nearly full. */
    readonly space: SpaceReserve = SpaceReserve.none(dataDir),
  ) {
    this.tmpDir = join(dataDir, 'tmp');
    this.blobDir = join(dataDir, 'blobs');
  }

  /** Where blob `id` lives: two levels of fan-out from its first hex digits. */
  path(id: string): string {
    return join(this.blobDir, id.slice(0, 2), id.slice(2, 4), id);
  }

  /** Refuses a body ahead of time when the volume is nearly full (reading a small refused body first). */
  private async admit(body: Readable, size: number | undefined): Promise<void> {
    try {
      this.space.assertDataWritable(size);
    } catch (err) {
      await drainRefusedBody(body, size);
      throw err;
    }
  }

  /**
   * Reads a body of a declared `size` of at most `max` bytes whole, checking its length and Content-MD5 like write()
   * does; the caller stores it (inline in the index) and owns its durability.
   */
  async readSmall(body: Readable, size: number, contentMd5?: Buffer): Promise<InlineBody> {
    await this.admit(body, size);
    const chunks: Buffer[] = [];
    let read = 0;
    try {
      for await (const chunk of body) {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
        read += buf.length;
        if (read > size) throw new IncompleteBodyError('body longer than declared size');
        chunks.push(buf);
      }
    } catch (err) {
      body.destroy();
      throw isTruncation(err) ? new IncompleteBodyError('body ended early') : err;
    }
    if (read !== size) throw new IncompleteBodyError('body shorter than declared size');
    const inline = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, read);
    const md5 = createHash('md5').update(inline).digest();
    if (contentMd5 && !md5.equals(contentMd5)) throw new BadDigestError('Content-MD5 mismatch');
    return { inline, size, md5 };
  }

  /**
   * Streams `body` into a new durable blob. Throws IncompleteBodyError on a short or long body, BadDigestError on a
   * Content-MD5 mismatch, StorageFullError when the volume is (nearly) full, or the body's own error; in every
   * failure the temp file is gone and no blob exists.
   */
  async write(body: Readable, size?: number, contentMd5?: Buffer): Promise<WrittenBlob> {
    let claim: DataWriteClaim;
    try {
      claim = this.space.beginDataWrite(size);
    } catch (err) {
      await drainRefusedBody(body, size);
      throw err;
    }
    try {
      return await this.writeClaimed(claim, body, size, contentMd5);
    } finally {
      claim.end();
    }
  }

  private async writeClaimed(claim: DataWriteClaim, body: Readable, size: number | undefined, contentMd5: Buffer | undefined): Promise<WrittenBlob> {
    const id = randomBytes(16).toString('hex');
    // The writer's pid names its temp files, so the gateway's primary can remove those of a worker that died.
    const tmp = join(this.tmpDir, `${process.pid}.${id}`);
    const fh = await open(tmp, 'wx').catch((err: unknown) => {
      throw isNoSpace(err) ? noSpace(err) : err;
    });
    claim.attach(fh);
    // The blob's fan-out directory is made (and made durable) while the body arrives, not after it.
    const dirReady = this.ensureDir(id);
    try {
      const { written, digest } = await this.fill(fh, body, size, claim);
      // fdatasync: the data and the size (which a later read needs), not the timestamps; the rename and the
      // directory's fsync below make the name durable. It runs while the hash thread finishes the MD5 (on a busy
      // machine the thread is often some MiB behind the body), so the two waits overlap instead of adding up. (fill
      // has settled its background syncs and thrown if one failed: Linux reports a writeback error to one fdatasync
      // only, so a failed background sync must fail the write even when this one then succeeds.)
      const [synced, hashed] = await Promise.allSettled([fh.datasync(), digest()]);
      if (hashed.status === 'rejected') throw hashed.reason;
      if (contentMd5 && !hashed.value.equals(contentMd5)) throw new BadDigestError('Content-MD5 mismatch');
      if (synced.status === 'rejected') throw synced.reason;
      const md5 = hashed.value;
      await fh.close();
      const dir = await dirReady;
      await rename(tmp, this.path(id));
      await fsyncDir(dir);
      return { id, size: written, md5 };
    } catch (err) {
      await fh.close().catch(() => {});
      await rm(tmp, { force: true });
      throw isNoSpace(err) ? noSpace(err) : err;
    }
  }

  /**
   * Copies the body into `fh`, hashing it: chunks are gathered into WRITE_BATCH writes, WRITES_IN_FLIGHT of them at
   * once at their own offsets, so reading the client and writing the disk overlap. Resolves once every byte is
   * written, with the MD5 to await (call `digest` exactly once). On a full volume the rest of a small body is read and
   * dropped (DRAIN_LIMIT) before StorageFullError.
   */
  private async fill(fh: FileHandle, body: Readable, size: number | undefined, claim: DataWriteClaim): Promise<{ written: number; digest: () => Promise<Buffer> }> {
    const hash = new Md5Session();
    let written = 0;
    let position = 0;
    let full: StorageFullError | undefined;
    /** Where the threshold refused the body (its rest is read and dropped so the client hears the 507). */
    let refusedAt: number | undefined;
    let batch: Buffer[] = [];
    let batched = 0;
    const inFlight: Array<Promise<unknown>> = [];
    /** The running background fdatasync, the first error one met, and where the next may start. */
    let syncing: Promise<void> | undefined;
    let syncError: unknown;
    let nextSyncAt = BACKGROUND_SYNC_EVERY;
    const backgroundSync = (after: Promise<unknown>): void => {
      if (syncing !== undefined || backgroundSyncs >= BACKGROUND_SYNCS_MAX) return;
      backgroundSyncs++;
      nextSyncAt = position + BACKGROUND_SYNC_EVERY;
      // After the batches started so far are written, so the sync covers them; the fd stays open until it settled.
      syncing = after
        .then(() => fh.datasync())
        .catch((err: unknown) => {
          syncError ??= err;
        })
        .finally(() => {
          backgroundSyncs--;
          syncing = undefined;
        });
    };
    const settle = async (write: Promise<unknown>): Promise<void> => {
      const err = await write;
      if (err === undefined) return;
      if (!isNoSpace(err)) throw err;
      full ??= noSpace(err);
      if (size === undefined || size - written > DRAIN_LIMIT) throw full;
    };
    const flush = async (): Promise<void> => {
      const buffers = batch;
      const at = position;
      position += batched;
      batch = [];
      batched = 0;
      // The write starts first: it runs on libuv's threads while this one copies the batch for the hash thread.
      inFlight.push(writeAll(fh, buffers, at).then(() => undefined, (err: unknown) => err));
      await hash.update(buffers, position - at);
      while (inFlight.length >= WRITES_IN_FLIGHT) await settle(inFlight.shift()!);
      if (syncError !== undefined) throw syncError;
      if (position >= nextSyncAt) backgroundSync(Promise.all(inFlight));
    };
    try {
      for await (const chunk of body) {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
        written += buf.length;
        if (size !== undefined && written > size) throw new IncompleteBodyError('body longer than declared size');
        if (full) {
          // Dropping the rest of a refused body (see DRAIN_LIMIT); one of unknown length for up to DRAIN_LIMIT more.
          if (size === undefined && refusedAt !== undefined && written - refusedAt > DRAIN_LIMIT) throw full;
          continue;
        }
        batch.push(buf);
        batched += buf.length;
        if (batched >= WRITE_BATCH) await flush();
        // Crossing the free-space threshold mid-stream (an unknown length, or writes racing) refuses it too.
        try {
          claim.progress(written);
        } catch (err) {
          if (!(err instanceof StorageFullError)) throw err;
          full ??= err;
          refusedAt = written;
          if (size !== undefined && size - written > DRAIN_LIMIT) throw full;
        }
      }
      if (batched > 0 && !full) await flush();
      while (inFlight.length > 0) await settle(inFlight.shift()!);
      await syncing;
      if (syncError !== undefined) throw syncError;
    } catch (err) {
      hash.drop();
      await Promise.allSettled([...inFlight, syncing]);
      body.destroy();
      throw isTruncation(err) ? new IncompleteBodyError('body ended early') : err;
    }
    if (full || (size !== undefined && written !== size)) {
      hash.drop();
      throw full ?? new IncompleteBodyError('body shorter than declared size');
    }
    return { written, digest: () => hash.digest() };
  }

  /**
   * Creates the fan-out directory of `id` once per process, fsyncing parents so its directory entry is durable. Concurrent
   * writes into one new directory share the first one's promise: a second mkdir finds the directory made but not yet
   * durable, and must not rename into it before the parents' fsyncs are done.
   */
  private ensureDir(id: string): Promise<string> {
    const dir = join(this.blobDir, id.slice(0, 2), id.slice(2, 4));
    let ready = this.dirs.get(dir);
    if (!ready) {
      ready = (async () => {
        await mkdir(dir, { recursive: true });
        // The parents are synced even when the directory already existed: another worker process may have made it
        // a moment ago and not have synced them yet, or a process may have crashed between its mkdir and its
        // syncs. Once per directory and process, so it costs two directory fsyncs per fan-out directory.
        await fsyncDir(join(this.blobDir, id.slice(0, 2)));
        await fsyncDir(this.blobDir);
        return dir;
      })();
      this.dirs.set(dir, ready);
      // A failed one is tried again by the next write; this handler also keeps a write that failed first (and never
      // awaits the directory) from leaving the rejection unhandled.
      ready.catch(() => this.dirs.delete(dir));
    }
    return ready;
  }

  /**
   * Opens bytes [start, end] across `segments` now: a Buffer when they lie in one segment and are at most
   * SMALL_READ long, else a stream over file handles opened before this resolves (`eager`) or as it reaches each
   * segment (the caller holds a lease on them). Throws BlobGoneError when a file is gone at open.
   */
  async open(segments: readonly Segment[], start: number, end: number, opts: { eager: boolean; onClose?: () => void }): Promise<Buffer | Readable> {
    const spans = spansOf(segments, start, end).map((s) => ({ ...s, path: this.path(s.blob) }));
    if (spans.length === 1 && spans[0]!.to - spans[0]!.from + 1 <= SMALL_READ && opts.eager) {
      const span = spans[0]!;
      const fh = await openBlob(span.path);
      try {
        return await readRange(fh, span.from, span.to);
      } finally {
        await fh.close();
      }
    }
    if (opts.eager) {
      const opened = await Promise.allSettled(spans.map((s) => openBlob(s.path)));
      const failed = opened.find((o) => o.status === 'rejected');
      if (failed) {
        await Promise.all(opened.map((o) => (o.status === 'fulfilled' ? o.value.close() : undefined)));
        throw failed.reason;
      }
      opened.forEach((o, i) => (spans[i]!.fh = (o as PromiseFulfilledResult<FileHandle>).value));
    }
    return new SpanStream(spans, opts.onClose);
  }

  /** Unlinks blobs no longer in use (checked by the caller, after its commit is durable). */
  discard(ids: Iterable<string>): void {
    for (const id of ids) void unlink(this.path(id)).catch(() => {});
  }

  /** Removes the temp files of writes by process `pid` (a worker that died mid-write). */
  async removeTempOf(pid: number): Promise<number> {
    const mine = (await readdir(this.tmpDir).catch(() => [] as string[])).filter((n) => n.startsWith(`${pid}.`));
    await Promise.all(mine.map((n) => rm(join(this.tmpDir, n), { force: true })));
    return mine.length;
  }

  /** Prepares the directories and removes leftovers of a crash: every temp file, and blobs `isReferenced` rejects. */
  async sweep(isReferenced: (id: string) => boolean): Promise<{ tmp: number; orphans: number }> {
    await mkdir(this.tmpDir, { recursive: true });
    await mkdir(this.blobDir, { recursive: true });
    let tmp = 0;
    for (const name of await readdir(this.tmpDir)) {
      await rm(join(this.tmpDir, name), { recursive: true, force: true });
      tmp++;
    }
    let orphans = 0;
    for (const a of await readdir(this.blobDir)) {
      for (const b of await readdir(join(this.blobDir, a)).catch(() => [] as string[])) {
        const dir = join(this.blobDir, a, b);
        for (const id of await readdir(dir).catch(() => [] as string[])) {
          if (!isReferenced(id)) {
            await rm(join(dir, id), { force: true });
            orphans++;
          }
        }
      }
    }
    return { tmp, orphans };
  }
}

/** The stretch of one segment's blob a read covers. */
interface Span {
  blob: string;
  path: string;
  from: number;
  to: number;
  fh?: FileHandle;
}

/** Which bytes of which segments make up [start, end] of the object. */
function spansOf(segments: readonly Segment[], start: number, end: number): Array<Omit<Span, 'path'>> {
  const out: Array<Omit<Span, 'path'>> = [];
  let base = 0;
  for (const seg of segments) {
    const segStart = base;
    const segEnd = base + seg.size - 1;
    base += seg.size;
    if (seg.size === 0 || segEnd < start || segStart > end) continue;
    out.push({ blob: seg.blob, from: Math.max(start, segStart) - segStart, to: Math.min(end, segEnd) - segStart });
  }
  return out;
}

async function openBlob(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobGoneError(`blob ${path} is gone`);
    throw err;
  }
}

/** Reads bytes [from, to] of an open blob into one Buffer. */
async function readRange(fh: FileHandle, from: number, to: number): Promise<Buffer> {
  const out = Buffer.allocUnsafe(to - from + 1);
  let got = 0;
  while (got < out.length) {
    const { bytesRead } = await fh.read(out, got, out.length - got, from + got);
    if (bytesRead === 0) throw new StorageError('a blob is shorter than its index entry');
    got += bytesRead;
  }
  return out;
}

/** Writes all of `buffers` at `position`, however the kernel splits the write; `buffers` is left as it was. */
async function writeAll(fh: FileHandle, buffers: readonly Buffer[], position: number): Promise<void> {
  // A copy: the caller hashes the same batch while this write is in flight.
  let rest = [...buffers];
  let at = position;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest, at);
    at += bytesWritten;
    let skip = bytesWritten;
    while (rest.length > 0 && skip >= rest[0]!.length) skip -= rest.shift()!.length;
    if (skip > 0) rest = [rest[0]!.subarray(skip), ...rest.slice(1)];
  }
}

/** A body streamed across spans, each file opened ahead (or when reached) and closed when done or destroyed. */
class SpanStream extends Readable {
  private index = 0;
  private position: number;

  constructor(
    private readonly spans: Span[],
    private readonly onClose?: () => void,
  ) {
    super({ highWaterMark: READ_CHUNK });
    this.position = spans[0]?.from ?? 0;
  }

  override _read(): void {
    const span = this.spans[this.index];
    if (!span) {
      this.push(null);
      return;
    }
    void this.readFrom(span).catch((err: unknown) => this.destroy(err as Error));
  }

  private async readFrom(span: Span): Promise<void> {
    if (!span.fh) {
      const opened = await openBlob(span.path);
      if (this.destroyed) return void (await opened.close());
      span.fh = opened;
    }
    const fh = span.fh;
    const n = Math.min(READ_CHUNK, span.to - this.position + 1);
    const buf = Buffer.allocUnsafe(n);
    const { bytesRead } = await fh.read(buf, 0, n, this.position);
    if (this.destroyed) return;
    if (bytesRead === 0) throw new StorageError('a blob is shorter than its index entry');
    this.position += bytesRead;
    if (this.position > span.to) {
      span.fh = undefined;
      await fh.close();
      this.index++;
      this.position = this.spans[this.index]?.from ?? 0;
    }
    if (!this.destroyed) this.push(bytesRead === n ? buf : buf.subarray(0, bytesRead));
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    const open = this.spans.flatMap((s) => (s.fh ? [s.fh] : []));
    for (const s of this.spans) s.fh = undefined;
    void Promise.allSettled(open.map((fh) => fh.close())).then(() => {
      this.onClose?.();
      done(err);
    });
  }
}

/** Makes a rename or create inside `dir` durable. */
async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

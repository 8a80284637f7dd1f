/**
 * Blob files of the embedded store: bodies streamed to tmp/, hashed, fsynced and renamed to blobs/ab/cd/<id>, where
 * <id> is random so no path ever derives from an object key. Also the reader pins that keep a blob alive while a
 * response streams it, and the sweep that removes temp files and unreferenced blobs at open.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BadDigestError, IncompleteBodyError, isNoSpace, StorageError, StorageFullError } from '../errors.ts';
import { DRAIN_LIMIT, drainRefusedBody, SpaceReserve } from '../space-reserve.ts';
import type { Segment } from './index-db.ts';

/** A blob just written: where it lives and what was hashed while writing it. */
export interface WrittenBlob {
  id: string;
  size: number;
  md5: Buffer;
}

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
  private readonly knownDirs = new Set<string>();
  private readonly pins = new Map<string, number>();
  private readonly doomed = new Set<string>();

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

  /**
   * Streams `body` into a new durable blob. Throws IncompleteBodyError on a short or long body, BadDigestError on a
   * Content-MD5 mismatch, StorageFullError when the volume is (nearly) full, or the body's own error; in every
   * failure the temp file is gone and no blob exists.
   */
  async write(body: Readable, size?: number, contentMd5?: Buffer): Promise<WrittenBlob> {
    try {
      this.space.assertDataWritable(size);
    } catch (err) {
      await drainRefusedBody(body, size);
      throw err;
    }
    const id = randomBytes(16).toString('hex');
    const tmp = join(this.tmpDir, id);
    const hash = createHash('md5');
    let written = 0;
    let full: StorageFullError | undefined;
    const fh = await open(tmp, 'wx').catch((err: unknown) => {
      throw isNoSpace(err) ? noSpace(err) : err;
    });
    try {
      try {
        for await (const chunk of body) {
          const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
          written += buf.length;
          if (size !== undefined && written > size) throw new IncompleteBodyError('body longer than declared size');
          if (full) continue; // dropping the rest of a refused body (see DRAIN_LIMIT)
          hash.update(buf);
          try {
            let off = 0;
            while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
          } catch (err) {
            if (!isNoSpace(err)) throw err;
            full = noSpace(err);
            if (size === undefined || size - written > DRAIN_LIMIT) throw full;
          }
        }
      } catch (err) {
        body.destroy();
        throw isTruncation(err) ? new IncompleteBodyError('body ended early') : err;
      }
      if (full) throw full;
      if (size !== undefined && written !== size) throw new IncompleteBodyError('body shorter than declared size');
      const md5 = hash.digest();
      if (contentMd5 && !md5.equals(contentMd5)) throw new BadDigestError('Content-MD5 mismatch');
      await fh.sync();
      await fh.close();
      const dir = await this.ensureDir(id);
      await rename(tmp, this.path(id));
      await fsyncDir(dir);
      return { id, size: written, md5 };
    } catch (err) {
      await fh.close().catch(() => {});
      await rm(tmp, { force: true });
      throw isNoSpace(err) ? noSpace(err) : err;
    }
  }

  /** Creates the fan-out directory of `id` once, fsyncing parents so the new directory entry is durable. */
  private async ensureDir(id: string): Promise<string> {
    const dir = join(this.blobDir, id.slice(0, 2), id.slice(2, 4));
    if (this.knownDirs.has(dir)) return dir;
    const made = await mkdir(dir, { recursive: true });
    if (made !== undefined) {
      await fsyncDir(join(this.blobDir, id.slice(0, 2)));
      await fsyncDir(this.blobDir);
    }
    this.knownDirs.add(dir);
    return dir;
  }

  /**
   * A stream of bytes [start, end] across `segments`. The blobs are pinned until the stream ends or is destroyed, so
   * an overwrite or delete committed meanwhile does not unlink them under the reader.
   */
  read(segments: readonly Segment[], start: number, end: number): Readable {
    const ids = segments.map((s) => s.blob);
    this.pin(ids);
    const path = (id: string): string => this.path(id);
    async function* chunks(): AsyncGenerator<Buffer> {
      let base = 0;
      for (const seg of segments) {
        const segStart = base;
        const segEnd = base + seg.size - 1;
        base += seg.size;
        if (seg.size === 0 || segEnd < start || segStart > end) continue;
        const from = Math.max(start, segStart) - segStart;
        const to = Math.min(end, segEnd) - segStart;
        for await (const chunk of createReadStream(path(seg.blob), { start: from, end: to, highWaterMark: 256 * 1024 })) {
          yield chunk as Buffer;
        }
      }
    }
    const stream = Readable.from(chunks(), { objectMode: false });
    // 'close' follows both the end and a destroy (even one before the first read, when no generator code ran).
    stream.once('close', () => this.unpin(ids));
    return stream;
  }

  private pin(ids: readonly string[]): void {
    for (const id of ids) this.pins.set(id, (this.pins.get(id) ?? 0) + 1);
  }

  private unpin(ids: readonly string[]): void {
    for (const id of ids) {
      const n = (this.pins.get(id) ?? 1) - 1;
      if (n > 0) {
        this.pins.set(id, n);
        continue;
      }
      this.pins.delete(id);
      if (this.doomed.delete(id)) void unlink(this.path(id)).catch(() => {});
    }
  }

  /** Unlinks blobs no longer referenced (checked by the caller, after its commit), deferring pinned ones. */
  discard(ids: Iterable<string>): void {
    for (const id of ids) {
      if (this.pins.has(id)) this.doomed.add(id);
      else void unlink(this.path(id)).catch(() => {});
    }
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

/** Makes a rename or create inside `dir` durable. */
async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

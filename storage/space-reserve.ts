/**
 * Room for metadata on a full data volume. A full disk must never block what frees space or withdraws authority:
 * object deletes, credential revocations, tuple deletes. So the gateway keeps a preallocated reserve file in the data
 * directory and refuses data writes well before the volume is full:
 *
 *   - data writes (object bodies, parts) are refused with StorageFullError while the reserve is not in place, or
 *     when they would leave less than one reserve's worth of free space;
 *   - when free space falls below half a reserve (something else filled the volume), or a metadata write fails for
 *     lack of space, the reserve file is deleted: its blocks are what the metadata writes then use;
 *   - once free space is back above three reserves, the reserve is written again and data writes resume.
 *
 * Random bytes, not zeros, so a compressing file system cannot store the reserve in no space at all.
 */
import { randomBytes } from 'node:crypto';
import { fstatSync, statfsSync, statSync, unlinkSync } from 'node:fs';
import { open, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { isNoSpace, StorageFullError } from './errors.ts';

/** The reserve file's name inside the data directory. */
export const RESERVE_FILE = 'space.reserve';

/** Default reserve size. */
export const DEFAULT_RESERVE_BYTES = 64 * 1024 * 1024;

const WRITE_BLOCK = 1024 * 1024;

/**
 * A body refused for lack of space is still read (and dropped) up to this size, so the client hears the 507 on a
 * healthy connection instead of a reset it would retry; larger bodies are refused and the connection closed.
 */
export const DRAIN_LIMIT = 8 * 1024 * 1024;

/** Reads and drops what remains of a refused `body` when it declared at most DRAIN_LIMIT bytes. */
export async function drainRefusedBody(body: Readable, size: number | undefined): Promise<void> {
  if (size === undefined || size > DRAIN_LIMIT) return;
  try {
    for await (const _ of body);
  } catch {
    // The client went away: nothing left to answer.
  }
}

/** Options of SpaceReserve.open. */
export interface SpaceReserveOptions {
  dataDir: string;
  /** Reserve size; 0 keeps no reserve and refuses nothing ahead of time (a full volume still answers StorageFullError). */
  bytes: number;
  /** How often free space is checked in the background. */
  pollMs?: number;
  log?: (line: string) => void;
}

/** The metadata reserve of one data directory; see the module comment. */
export class SpaceReserve {
  private held = false;
  private creating: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly path: string;
  private readonly log: (line: string) => void;

  private constructor(
    private readonly dataDir: string,
    readonly bytes: number,
    log: ((line: string) => void) | undefined,
  ) {
    this.path = join(dataDir, RESERVE_FILE);
    this.log = log ?? (() => {});
  }

  /** A reserve that keeps nothing aside: what a store opened outside the gateway uses. */
  static none(dataDir: string): SpaceReserve {
    return new SpaceReserve(dataDir, 0, undefined);
  }

  /** Takes up the reserve of `dataDir` (writing it when there is room) and starts watching free space. */
  static async open(options: SpaceReserveOptions): Promise<SpaceReserve> {
    const reserve = new SpaceReserve(options.dataDir, options.bytes, options.log);
    if (reserve.bytes <= 0) return reserve;
    await reserve.adopt();
    if (!reserve.held) await reserve.refill();
    reserve.timer = setInterval(() => reserve.watch(), options.pollMs ?? 2000);
    reserve.timer.unref();
    return reserve;
  }

  /** Bytes available to the gateway on the data volume now. */
  freeBytes(): number {
    const s = statfsSync(this.dataDir);
    return s.bavail * s.bsize;
  }

  /**
   * Throws StorageFullError unless a data write of `size` bytes (unknown: 0) may start: the reserve is in place and
   * the write leaves at least one reserve's worth free, counting what writes already in flight have still to write.
   */
  assertDataWritable(size = 0): void {
    if (this.bytes <= 0) return;
    this.observe();
    this.ensureHeadroom();
    this.refuseBelow(size, undefined);
  }

  /**
   * Starts a data write of `size` bytes (undefined: unknown length, aws-chunked without a decoded length or
   * Transfer-Encoding: chunked) after the same check as assertDataWritable. The claim counts the bytes the write has
   * still to write against every other write's check, and its progress() re-checks as bytes arrive, so a write of
   * unknown length, or one racing others, is refused once it would cross the threshold. end() it in every case.
   */
  beginDataWrite(size?: number): DataWriteClaim {
    this.assertDataWritable(size);
    const claim = new DataWriteClaim(this, size);
    if (this.bytes > 0) this.claims.add(claim);
    return claim;
  }

  private readonly claims = new Set<DataWriteClaim>();

  /** Throws StorageFullError when `size` more bytes, on top of other claims' outstanding bytes, cross the threshold. */
  refuseBelow(size: number, except: DataWriteClaim | undefined): void {
    if (this.bytes <= 0) return;
    // The claims' files are measured before the volume: a write landing between the two is then counted twice (a
    // moment's caution), never not at all.
    let pending = 0;
    for (const c of this.claims) if (c !== except) pending += c.outstanding;
    if (!this.held || this.freeBytes() - pending - size < this.bytes) {
      throw new StorageFullError('the data volume is nearly full: data writes are refused until space is freed');
    }
  }

  /** Forgets a finished claim. */
  forget(claim: DataWriteClaim): void {
    this.claims.delete(claim);
  }

  /**
   * Whether the reserve file is in place, as the file says: the gateway's worker processes share it, and another
   * one may have released (or rewritten) it since this one looked.
   */
  private observe(): void {
    try {
      this.held = statSync(this.path).size === this.bytes;
    } catch {
      this.held = false;
    }
  }

  /** Releases the reserve when free space is below half of it; called before writes that must commit. Never throws. */
  ensureHeadroom(): void {
    try {
      if (this.held && this.freeBytes() < this.bytes / 2) this.release('free space fell below half the reserve');
    } catch (err) {
      this.log(`space: could not check free space in ${this.dataDir}: ${(err as Error).message}`);
    }
  }

  /**
   * Runs a metadata write (synchronous, e.g. one SQLite transaction); when it fails for lack of space, releases the
   * reserve and runs it once more. Throws StorageFullError when even that fails.
   */
  commitMetadata<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (!isNoSpace(err)) throw err;
      if (!this.held) throw new StorageFullError(`the data volume is full: ${(err as Error).message}`);
      this.release('a metadata write found the volume full');
    }
    try {
      return fn();
    } catch (err) {
      if (isNoSpace(err)) throw new StorageFullError(`the data volume is full even after releasing the reserve: ${(err as Error).message}`);
      throw err;
    }
  }

  /** Stops watching; the reserve file stays for the next start. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Deletes the reserve file; never throws (a reserve that cannot be deleted still stops data writes). */
  private release(why: string): void {
    this.held = false;
    try {
      unlinkSync(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log(`space: could not delete ${this.path}: ${(err as Error).message}`);
    }
    this.log(`space: ${why}; released the ${mib(this.bytes)} metadata reserve. Data writes are refused until ${mib(3 * this.bytes)} is free.`);
  }

  /** Takes over a reserve left by an earlier start, when it is whole. */
  private async adopt(): Promise<void> {
    const size = await stat(this.path).then((s) => s.size, () => -1);
    if (size === this.bytes) this.held = true;
    else if (size >= 0) await rm(this.path, { force: true }); // torn by a crash, or another size configured
    // Temp files of refills cut short by a crash (their writer is gone; a live worker's is still being written).
    for (const name of await readdir(this.dataDir).catch(() => [] as string[])) {
      const pid = /^space\.reserve\.(\d+)\.tmp$/.exec(name)?.[1];
      if (pid !== undefined && !alive(Number(pid))) await rm(join(this.dataDir, name), { force: true });
    }
  }

  private watch(): void {
    let free: number;
    try {
      free = this.freeBytes();
    } catch {
      return; // the directory is gone (a test tearing down); nothing to guard
    }
    if (!this.creating) this.observe();
    if (this.held && free < this.bytes / 2) this.release('free space fell below half the reserve');
    else if (!this.held && free >= 3 * this.bytes) void this.refill();
  }

  /** Writes the reserve (temp file, fsync, rename) when there is room for it and a margin; never rejects. */
  private refill(): Promise<void> {
    this.creating ??= this.write()
      .catch((err: Error) => this.log(`space: could not write the reserve ${this.path}: ${err.message}`))
      .finally(() => {
        this.creating = undefined;
      });
    return this.creating;
  }

  private async write(): Promise<void> {
    const s = await statfs(this.dataDir);
    if (s.bavail * s.bsize < 3 * this.bytes) {
      this.log(`space: ${mib(s.bavail * s.bsize)} free on the data volume, less than ${mib(3 * this.bytes)}: data writes are refused until space is freed`);
      return;
    }
    // Per process: the gateway's workers may each refill at once (the last rename wins; each file is whole).
    const tmp = `${this.path}.${process.pid}.tmp`;
    const block = randomBytes(WRITE_BLOCK);
    try {
      const fh = await open(tmp, 'w', 0o600);
      try {
        for (let done = 0; done < this.bytes; ) {
          const n = Math.min(WRITE_BLOCK, this.bytes - done);
          done += (await fh.write(block, 0, n)).bytesWritten;
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.path);
      this.held = true;
    } catch (err) {
      await rm(tmp, { force: true });
      if (!isNoSpace(err)) throw err;
    }
  }
}

/** True while a process with this pid exists (ours included). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function mib(bytes: number): string {
  return `${Math.round(bytes / (1024 * 1024))} MiB`;
}

/** How many bytes a write of unknown length (or one racing others) may write between two free-space checks. */
const CHECK_EVERY = 1024 * 1024;

/** The file a claim's write fills: a FileHandle, whose fd reads -1 once it is closed. */
export interface ClaimedFile {
  readonly fd: number;
}

/** One data write in flight; see SpaceReserve.beginDataWrite. */
export class DataWriteClaim {
  private written = 0;
  private checkedAt = 0;
  private file: ClaimedFile | undefined;

  constructor(
    private readonly space: SpaceReserve,
    private readonly size: number | undefined,
  ) {}

  /** Names the file the write fills, once open: what it holds on disk is what outstanding subtracts. */
  attach(file: ClaimedFile): void {
    this.file = file;
  }

  /**
   * Bytes this write has declared and not yet put on disk (0 for an unknown length: it is checked as it goes). The
   * bytes received are not the measure: up to a write batch and the writes in flight are in memory, taken from
   * neither free space nor this count, so a write racing this one would be admitted on space that is promised.
   * The file's allocated blocks are: the same count statfs takes free space from.
   */
  get outstanding(): number {
    if (this.size === undefined) return 0;
    return Math.max(0, this.size - this.onDisk());
  }

  /** Bytes the write's file holds on disk now: none before it is open, all of them once it is closed. */
  private onDisk(): number {
    if (!this.file) return 0;
    const fd = this.file.fd;
    if (fd < 0) return this.size ?? this.written;
    try {
      return fstatSync(fd).blocks * 512;
    } catch {
      return 0;
    }
  }

  /** Records that `written` bytes were received; throws StorageFullError once the write would cross the threshold. */
  progress(written: number): void {
    this.written = written;
    if (written - this.checkedAt < CHECK_EVERY) return;
    this.checkedAt = written;
    this.space.refuseBelow(this.outstanding, this);
  }

  end(): void {
    this.space.forget(this);
  }
}

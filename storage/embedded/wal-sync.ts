/**
 * Group commit for the embedded index. The index runs in WAL mode with synchronous=NORMAL, so a commit writes its
 * frames to index.db-wal without waiting for the disk, and nothing blocks the event loop; what makes a commit durable
 * is an fsync of that WAL file, which is exactly what synchronous=FULL would have done inside the commit (SQLite's
 * "WAL mode … FULL: the WAL file is synced after each transaction commit"). Here the fsync runs off the event loop,
 * and every commit made while one fsync is running waits for the next one: concurrent commits, from this process or
 * any other on the same file, share one fsync. A caller acknowledges its write only once sync() has resolved.
 *
 * Checkpoints stay SQLite's: with NORMAL it syncs the WAL before copying it into index.db and syncs index.db after,
 * so a WAL restarted after a checkpoint never holds the only copy of anything this class has not synced.
 */
import { fstatSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Syncs one SQLite database's WAL file, batching concurrent requests into one fsync. */
export class WalSync {
  private file: { fh: FileHandle; ino: number } | undefined;
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private dirSynced = false;

  constructor(
    /** The database file; its WAL is `<db>-wal` beside it. */
    private readonly dbFile: string,
  ) {}

  /**
   * Resolves once every commit made before the call is on disk. A sync already running may have started before the
   * caller's commit, so the caller waits for the one queued after it (which all later callers share).
   */
  sync(): Promise<void> {
    if (this.queued) return this.queued;
    if (!this.running) return this.start();
    const queued = this.running.then(
      () => this.start(),
      () => this.start(),
    );
    this.queued = queued;
    return queued;
  }

  private start(): Promise<void> {
    this.queued = undefined;
    const running = this.flush().finally(() => {
      if (this.running === running) this.running = undefined;
    });
    this.running = running;
    return running;
  }

  private async flush(): Promise<void> {
    const fh = await this.handle();
    if (fh) {
      await fh.datasync();
      return;
    }
    // No WAL file (never expected while the database is open): the commit can only be in the database file itself.
    await syncPath(this.dbFile);
  }

  /** The WAL's file handle, reopened when the file was replaced (all connections closed and one reopened). */
  private async handle(): Promise<FileHandle | undefined> {
    const path = `${this.dbFile}-wal`;
    let ino: number;
    try {
      ino = statSync(path).ino;
    } catch {
      return undefined;
    }
    if (this.file && this.file.ino === ino && fstatSync(this.file.fh.fd).nlink > 0) return this.file.fh;
    await this.file?.fh.close().catch(() => {});
    this.file = undefined;
    const fh = await open(path, 'r+');
    this.file = { fh, ino: (await fh.stat()).ino };
    if (!this.dirSynced) {
      // The WAL's directory entry is made durable once; it is never removed while the database is open.
      await syncPath(dirname(path));
      this.dirSynced = true;
    }
    return fh;
  }

  /** Closes the WAL handle once pending syncs are done (the database closes separately). */
  async close(): Promise<void> {
    await Promise.allSettled([this.queued, this.running]);
    const file = this.file;
    this.file = undefined;
    await file?.fh.close().catch(() => {});
  }
}

/** fsync of a file or directory by path. */
async function syncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

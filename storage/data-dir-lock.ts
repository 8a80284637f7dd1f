/**
 * One owner per data directory, enforced by the kernel. The lock is a POSIX record lock (fcntl) on dataDir/anvil.lock,
 * taken through SQLite's own file locking because Node has no flock: an exclusive-mode connection that has run a write
 * transaction keeps its EXCLUSIVE lock until it closes, and a connection inside an open read transaction keeps a SHARED
 * lock. The kernel drops either when the process dies, however it dies, so there is no stale lock to take over, no
 * PID to compare (PIDs mean nothing across PID namespaces, and get reused), and nothing to clean up after a crash.
 *
 * Modes: the embedded store needs the directory to itself (its start-up sweep deletes temp files and unreferenced
 * blobs, which would destroy another process's in-flight writes), so it takes the lock `exclusive`. Gateways in front
 * of an upstream keep only the policy store, keys and logs here, which several processes share safely, so they take
 * it `shared`: any number of them at once, but never beside an embedded gateway.
 *
 * The lock is taken before anything else in the directory is read or written, so a refused start changes nothing.
 * POSIX locks belong to a process and vanish when it closes ANY descriptor of the file: nothing but this module may
 * open anvil.lock (SQLite itself keeps its descriptors open while it holds locks).
 *
 * Worker processes (node:cluster, gateway/cluster.ts): fcntl locks are not inherited, so the primary takes the lock
 * before forking and its workers never lock anvil.lock themselves. A worker is trusted because it is the primary's
 * child on an IPC channel, and exits when that channel disconnects (the primary died). To close the window between a
 * primary's death and its orphans' exit, each worker of an embedded gateway also holds a SHARED lock on a second
 * file, anvil.workers.lock (lockWorkers), and whoever sweeps the store at start takes that one EXCLUSIVE first,
 * waiting out any orphan still finishing its requests.
 */
import Database from 'better-sqlite3';
import { chmodSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { StorageError } from './errors.ts';

/** The lock file's name inside the data directory. */
export const LOCK_FILE = 'anvil.lock';

/** The file whose shared locks mark live worker processes of an embedded gateway. */
export const WORKERS_LOCK_FILE = 'anvil.workers.lock';

/** The pid file earlier versions used as a lock; removed once the kernel lock is held. */
const LEGACY_LOCK_FILE = 'embedded.lock';

/** `exclusive`: this process alone (embedded store). `shared`: any number of shared holders (upstream gateways). */
export type DataDirLockMode = 'exclusive' | 'shared';

/** Another process holds the data directory's lock in a conflicting mode. */
export class DataDirInUseError extends StorageError {
  override name = 'DataDirInUseError';
}

/** A held data-directory lock. */
export interface DataDirLock {
  readonly dataDir: string;
  readonly mode: DataDirLockMode;
  /** Drops the lock (closing the connection); idempotent. */
  release(): void;
}

/**
 * How long a start waits for a conflicting lock to go away: long enough to ride out another start's brief probe
 * (a refused exclusive attempt holds SQLite's PENDING lock for a moment), short enough to fail a start promptly.
 */
const BUSY_WAIT_MS = 2000;

/**
 * Takes the data directory's lock, or throws DataDirInUseError when another process holds it in a conflicting mode
 * (and leaves the directory untouched). The directory must exist. Held until release() or the process's end.
 */
export function lockDataDir(dataDir: string, mode: DataDirLockMode = 'exclusive'): DataDirLock {
  const path = join(dataDir, LOCK_FILE);
  const db = takeLock(path, mode, BUSY_WAIT_MS, () =>
    new DataDirInUseError(
      `data directory ${dataDir} is in use by another Anvil gateway process (it holds the lock on ${path}). ` +
        (mode === 'exclusive'
          ? 'The embedded store serves one process at a time: stop the other gateway, or give this one its own ANVIL_DATA_DIR.'
          : 'A gateway on the embedded store owns it alone: stop it, or give this gateway its own ANVIL_DATA_DIR.'),
    ),
  );
  // Only now, holding the lock, is the directory ours to change.
  rmSync(join(dataDir, LEGACY_LOCK_FILE), { force: true });
  return held(dataDir, mode, db);
}

/**
 * Takes anvil.workers.lock: `shared` in each worker process for its whole life, `exclusive` by the one opener that
 * may sweep the store, which waits up to `waitMs` for workers of an earlier primary to exit. Throws
 * DataDirInUseError when they do not.
 */
export function lockWorkers(dataDir: string, mode: DataDirLockMode, waitMs = BUSY_WAIT_MS): DataDirLock {
  const path = join(dataDir, WORKERS_LOCK_FILE);
  const db = takeLock(path, mode, waitMs, () =>
    new DataDirInUseError(
      mode === 'exclusive'
        ? `worker processes of an earlier gateway on ${dataDir} are still running (they hold ${path}) after ${Math.round(waitMs / 1000)} s; stop them before starting this one`
        : `another gateway is preparing ${dataDir} (it holds ${path}): this worker's primary no longer owns it`,
    ),
  );
  return held(dataDir, mode, db);
}

/** Locks `path` through an SQLite connection (see the module comment), waiting up to `waitMs`; `refused` names a conflict. */
function takeLock(path: string, mode: DataDirLockMode, waitMs: number, refused: () => Error): Database.Database {
  const db = new Database(path, { timeout: waitMs });
  try {
    if (mode === 'exclusive') {
      db.pragma('locking_mode = EXCLUSIVE');
      // In exclusive locking mode a write transaction's EXCLUSIVE lock outlives it, until the connection closes.
      db.exec('BEGIN EXCLUSIVE');
      db.exec('COMMIT');
    } else {
      // An open read transaction keeps the SHARED lock; it is never ended, only dropped with the connection.
      db.exec('BEGIN');
      db.prepare('SELECT count(*) FROM sqlite_master').get();
    }
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') throw refused();
    throw err;
  }
  chmodSync(path, 0o600);
  return db;
}

function held(dataDir: string, mode: DataDirLockMode, db: Database.Database): DataDirLock {
  return {
    dataDir,
    mode,
    release() {
      if (db.open) db.close();
    },
  };
}

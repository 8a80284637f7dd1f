/**
 * One process owns an embedded store's directory: opening it sweeps temp files and unreferenced blobs, which would
 * destroy another live process's in-flight writes. A pid file taken with O_EXCL enforces that; a lock left by a
 * process that no longer runs (a crash) is taken over.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StorageError } from '../errors.ts';

/** The lock file's name inside the data directory. */
export const LOCK_FILE = 'embedded.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the directory lock or throws naming the process that holds it; returns the release function. */
export function lockDirectory(dataDir: string): () => void {
  const path = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx', mode: 0o600 });
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
        throw new StorageError(
          `data directory ${dataDir} is in use by process ${holder}; the embedded store serves one process (use the upstream backend to run several)`,
        );
      }
      rmSync(path, { force: true });
    }
  }
  throw new StorageError(`could not lock data directory ${dataDir}`);
}

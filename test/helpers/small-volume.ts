/**
 * A small file system of its own for full-disk tests: a tmpfs mounted on a temporary directory by the test itself
 * (root is available in CI) and unmounted afterwards. Where mounting is impossible, mountSmallVolume says why and the
 * caller skips, printing the reason.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A mounted volume. */
export interface SmallVolume {
  dir: string;
  /** Bytes available on it now. */
  free(): number;
  /** Fills the volume to the last block with a file outside any data directory; returns its path. */
  fill(name?: string): string;
  unmount(): void;
}

/** Mounts a tmpfs of `mib` MiB, or returns why it cannot. */
export function mountSmallVolume(mib: number): SmallVolume | { unavailable: string } {
  const dir = mkdtempSync(join(tmpdir(), 'anvil-volume-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m,mode=0755`, 'anvil-test', dir], { stdio: 'pipe' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const e = err as { stderr?: Buffer; message: string };
    return { unavailable: `cannot mount a ${mib} MiB tmpfs (${(e.stderr?.toString() || e.message).trim()})` };
  }
  return {
    dir,
    free() {
      const s = statfsSync(dir);
      return s.bavail * s.bsize;
    },
    fill(name = 'filler') {
      const path = join(dir, name);
      const fd = openSync(path, 'a');
      try {
        for (const size of [1024 * 1024, 4096, 1]) {
          const chunk = Buffer.alloc(size, 0x5a);
          for (;;) {
            try {
              writeSync(fd, chunk);
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
              throw err;
            }
          }
        }
      } finally {
        closeSync(fd);
      }
      return path;
    },
    unmount() {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

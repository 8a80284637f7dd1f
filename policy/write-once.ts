/**
 * Files created once and trusted forever (the generated master key): written so that a crash, a full disk or two
 * processes starting together can never leave a half-written one in place. The content goes to a temporary file that
 * is fsynced, then hard-linked to the final name (a link, unlike a rename, never replaces a file another process
 * created meanwhile), and the directory is fsynced so the new name survives a power cut.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** File systems without hard links answer these; there, rename is the fallback (last writer wins a start race). */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

/**
 * Creates `path` with `content` (mode 0600) unless it already exists. Returns true when this call created it, false
 * when a file was already there (which is left untouched). Throws the system error (ENOSPC, say) otherwise; no
 * partial file is ever visible under `path`.
 */
export function createFileOnce(path: string, content: string | Buffer): boolean {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  let created = false;
  try {
    try {
      const bytes = typeof content === 'string' ? Buffer.from(content) : content;
      for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, path);
      created = true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (code === 'EEXIST') return false;
      if (!NO_LINKS.has(code)) throw err;
      renameSync(tmp, path);
      created = true;
    }
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // Renamed away, or never created.
    }
  }
  fsyncDirectory(dir);
  return created;
}

/** Makes a create, link or rename inside `dir` durable. */
export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

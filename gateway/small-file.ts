/**
 * Files the operator names that hold a small thing (a configuration file, a master key, a TLS certificate or key):
 * read up to a size, so a path to a device that never ends (`/dev/zero`, `/dev/urandom`) or a huge file fails at
 * once with a message instead of filling memory while the start hangs. Pipes (`<(…)`, /dev/stdin) still work.
 */
import { closeSync, openSync, readSync } from 'node:fs';

/**
 * The whole content of `path`, refused past `limit` bytes: throws Error("… is larger than N bytes"), or the open or
 * read error (ENOENT, EACCES, EISDIR …) as node:fs throws it.
 */
export function readSmallFile(path: string, limit: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const out = Buffer.alloc(limit + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, out, length, out.length - length, null);
      if (n === 0) return out.subarray(0, length);
      length += n;
      if (length > limit) throw new Error(`${path} is larger than ${limit} bytes`);
    }
  } finally {
    closeSync(fd);
  }
}

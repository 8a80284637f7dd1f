/** The gateway's version: package.json's, found from this module whether it runs as source or from dist/. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The version in the nearest package.json named anvil-gateway above this module. */
export function packageVersion(): string {
  for (let dir = import.meta.dirname; dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'anvil-gateway' && pkg.version) return pkg.version;
    } catch {
      // Not here; look further up.
    }
  }
  return 'unknown';
}

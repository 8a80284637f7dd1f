/** The embedded store: the conformance suite, then what only this engine promises (crash safety, sweep at open). */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { openEmbeddedStore } from '../../storage/index.ts';
import { conformance } from './conformance.ts';

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'anvil-embedded-'));
}

conformance(test, 'embedded', async () => {
  const dataDir = await tempDir();
  const backend = await openEmbeddedStore({ dataDir });
  return {
    backend,
    cleanup: async () => {
      await backend.close();
      await rm(dataDir, { recursive: true, force: true });
    },
    leftovers: async () => readdir(join(dataDir, 'tmp')),
  };
});

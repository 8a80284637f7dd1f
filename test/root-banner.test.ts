/**
 * The first start's root banner: a generated secret is shown once (test/cli.test.ts, test/workers/cross-worker.test.ts);
 * a secret the operator configured is never printed, since stderr often ends up in a log collector.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGatewayProcess } from './helpers/gateway-process.ts';
import { ROOT } from './helpers/gateway.ts';

for (const workers of ['1', '2']) {
  test(`a configured root secret is not printed at first start (${workers} worker(s))`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'anvil-banner-'));
    const gw = await startGatewayProcess({ ANVIL_DATA_DIR: dir, ANVIL_WORKERS: workers, ANVIL_ROOT_ACCESS_KEY: ROOT.accessKeyId, ANVIL_ROOT_SECRET_KEY: ROOT.secretAccessKey });
    try {
      // The banner goes to stderr, the listening line to stdout: wait for the one after the other.
      for (let i = 0; i < 100 && !gw.output().includes('created from ANVIL_ROOT_ACCESS_KEY'); i++) await new Promise((r) => setTimeout(r, 100));
      t.regex(gw.output(), new RegExp(`Root credential ${ROOT.accessKeyId} created from ANVIL_ROOT_ACCESS_KEY and ANVIL_ROOT_SECRET_KEY`));
      t.false(gw.output().includes(ROOT.secretAccessKey), 'the configured secret appears nowhere in the output');
    } finally {
      await gw.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

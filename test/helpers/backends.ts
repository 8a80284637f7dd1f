/**
 * Runs one end-to-end suite against the gateway on each backend: the embedded store, and a real MinIO upstream.
 * Each flavour gets its own gateway (and MinIO) started once; tests name the flavour in their title.
 */
import type { ExecutionContext, TestFn } from 'ava';
import { startTestGateway, type TestGateway } from './gateway.ts';
import { minioOrExplain, startMinio, upstreamEnv as minioUpstreamEnv, type MinioServer } from './minio.ts';

/** One gateway flavour under test. */
export interface Flavour {
  name: 'embedded' | 'upstream';
  gw: TestGateway;
  minio?: MinioServer;
}

/** ANVIL_* settings for a gateway over MinIO `m`, with a 10 s upstream timeout (these suites move larger bodies). */
export function upstreamEnv(m: MinioServer, extra: Record<string, string> = {}): Record<string, string> {
  return minioUpstreamEnv(m, { ANVIL_UPSTREAM_TIMEOUT_MS: '10000', ...extra });
}

/**
 * Registers `body` once per flavour. `body` receives a registering function whose tests get the flavour; the
 * flavours start lazily (MinIO only when an upstream test runs) and stop after the file.
 */
export function onEachBackend<C>(
  test: TestFn<C>,
  area: string,
  body: (it: (title: string, fn: (t: ExecutionContext<C>, f: Flavour) => Promise<void>) => void, flavour: Flavour['name']) => void,
  env: Record<string, string> = {},
): void {
  const started = new Map<Flavour['name'], Promise<Flavour>>();
  const start = (name: Flavour['name']): Promise<Flavour> => {
    let p = started.get(name);
    if (!p) {
      p = (async () => {
        if (name === 'embedded') return { name, gw: await startTestGateway(env) };
        const minio = await startMinio();
        return { name, minio, gw: await startTestGateway(upstreamEnv(minio, env)) };
      })();
      started.set(name, p);
    }
    return p;
  };
  test.after.always(async () => {
    for (const p of started.values()) {
      const f = await p.catch(() => undefined);
      await f?.gw.close();
      await f?.minio?.close();
    }
  });
  const flavours: Flavour['name'][] = minioOrExplain(test, area) ? ['embedded', 'upstream'] : ['embedded'];
  for (const name of flavours) {
    body((title, fn) => {
      test(`${name}: ${title}`, async (t) => fn(t, await start(name)));
    }, name);
  }
}

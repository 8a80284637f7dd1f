/**
 * `npm start` (node dist/gateway/main.js): checks the Node.js version, reads the configuration (a bad value stops
 * the start naming the variable, exit status 78), starts the gateway (a refused start is one line: exit status 78
 * when a value proves unusable, such as a certificate that does not load or a data directory that is a file, 1 when
 * a restart may succeed, such as a data directory in use or a database that is down: gateway/start-errors.ts), and prints the root credential once when it is created.
 * With ANVIL_WORKERS above 1 (one per core by default) this process becomes the primary of that many worker
 * processes (gateway/cluster.ts); with 1 it serves requests itself.
 * SIGTERM or SIGINT drains (requests in flight may finish for ANVIL_SHUTDOWN_TIMEOUT_MS) and exits 0; a second
 * signal exits at once. SIGHUP reloads the TLS certificate.
 */
import { requireSupportedNode } from './node-version.ts';

requireSupportedNode();
const { ConfigError, loadConfig } = await import('./config.ts');

const { EX_CONFIG } = await import('./start-errors.ts');

let config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`anvil: ${error.message}\n`);
  process.exit(EX_CONFIG);
}
const { PolicyError } = await import('../policy/errors.ts');
const { StorageError } = await import('../storage/errors.ts');
/**
 * A refusal the operator can act on (directory in use, damaged key file, an address already in use or not ours to
 * bind: ANVIL_ADDRESS, ANVIL_HEALTH_ADDRESS) is one clear line, not a stack trace.
 */
const isKnownError = (error: Error) =>
  error instanceof StorageError || error instanceof PolicyError || ['listen', 'bind'].includes((error as NodeJS.ErrnoException).syscall ?? '');
const { default: cluster } = await import('node:cluster');
const { announceLeftRoot, announceRoot, cannotStart, runPrimary, runWorker } = await import('./cluster.ts');

if (cluster.isWorker) {
  await runWorker(config, isKnownError);
} else if (config.workers > 1) {
  await runPrimary(config, isKnownError);
} else {
  const { rootLeftByFailedStart, startGateway } = await import('./server.ts');
  const gw = await startGateway(config).catch((error: Error) => {
    // A root credential that could not be taken back (a full volume, say): shown now, or its secret is lost for good.
    announceLeftRoot(rootLeftByFailedStart(error));
    return cannotStart(error, isKnownError(error), config.logLevel);
  });
  gw.logger.info({ url: gw.url, healthUrl: gw.healthUrl, dataDir: config.dataDir, backend: gw.backend.kind, pid: process.pid, workers: 1 }, 'listening');
  announceRoot(gw.root, gw.url, config.region, config.rootSecretKey !== undefined);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      gw.logger.warn({ signal }, 'second signal: exiting now');
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    }
    stopping = true;
    gw.logger.info({ signal }, 'signal received');
    gw.shutdown(config.shutdownTimeoutMs).then(
      (cutOff) => process.exit(cutOff > 0 ? 1 : 0),
      (error: Error) => {
        gw.logger.error({ err: { message: error.message } }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => gw.reloadTls());
}

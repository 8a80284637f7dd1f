/**
 * `npm start` (node dist/gateway/main.js): checks the Node.js version, reads the configuration (a bad value stops
 * the start naming the variable, exit status 78), starts the gateway (a refused start, such as a data directory in
 * use or a damaged key file, is one line and exit status 1), and prints the root credential once when it is created.
 * SIGTERM or SIGINT drains (requests in flight may finish for ANVIL_SHUTDOWN_TIMEOUT_MS) and exits 0; a second
 * signal exits at once. SIGHUP reloads the TLS certificate.
 */
import { requireSupportedNode } from './node-version.ts';

requireSupportedNode();
const { ConfigError, loadConfig } = await import('./config.ts');
const { startGateway } = await import('./server.ts');

/** sysexits' EX_CONFIG: systemd units can refuse to restart on it (RestartPreventExitStatus=78). */
const EX_CONFIG = 78;

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
const gw = await startGateway(config).catch((error: Error) => {
  // A refusal the operator can act on (directory in use, damaged key file) is one clear line, not a stack trace.
  const known = error instanceof StorageError || error instanceof PolicyError;
  process.stderr.write(`anvil: cannot start: ${known ? error.message : (error.stack ?? error.message)}\n`);
  process.exit(1);
});
gw.logger.info({ url: gw.url, healthUrl: gw.healthUrl, dataDir: config.dataDir, backend: gw.backend.kind, pid: process.pid }, 'listening');
if (gw.root.secretKey && gw.root.created) {
  // Shown once, for the person who started the gateway; never a log line.
  const scheme = gw.url.startsWith('https') ? ' --no-verify-ssl' : '';
  process.stderr.write(
    `\nRoot credential created. The secret is shown only this once:\n` +
      `  AWS_ACCESS_KEY_ID=${gw.root.accessKeyId}\n  AWS_SECRET_ACCESS_KEY=${gw.root.secretKey}\n\n` +
      `Try it:\n  AWS_ACCESS_KEY_ID=${gw.root.accessKeyId} AWS_SECRET_ACCESS_KEY=${gw.root.secretKey} ` +
      `aws --endpoint-url ${gw.url}${scheme} --region ${config.region} s3 ls\n\n`,
  );
}

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

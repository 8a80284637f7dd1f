/**
 * Worker processes (node:cluster): ANVIL_WORKERS gateways, one per core within the CPU quota by default (gateway/cpu-quota.ts), behind one listening socket.
 *
 * The primary prepares the data directory and keeps its lock for its whole life (server.ts prepareDataDir: the
 * embedded store's start-up sweep runs there, after waiting out workers of an earlier primary), forks the workers,
 * replaces one that dies (removing what it left half-written), forwards SIGHUP (TLS reload) and SIGTERM/SIGINT
 * (every worker drains its requests in flight, then the primary exits), and answers the workers' metrics requests
 * with the sum over all of them. It serves no request itself.
 *
 * A worker is a gateway as startGateway() builds it, minus the lock: it trusts its primary (kernel locks belong to
 * one process), marks itself alive on anvil.workers.lock (storage/data-dir-lock.ts), and drains and exits when the
 * primary disconnects, so no orphan outlives a dead primary by more than the shutdown timeout.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import { reapWorker } from '../storage/index.ts';
import type { GatewayConfig } from './config.ts';
import { createLogger } from './logging.ts';
import { EX_CONFIG, startFailure } from './start-errors.ts';
import { loadTlsAtStart } from './tls.ts';
import { discardPreparedRoot, prepareDataDir, rootLeftByFailedStart, startGateway, type Gateway } from './server.ts';

/** Messages between the primary and its workers. */
type Message =
  | { type: 'anvil:listening'; url: string; healthUrl?: string }
  | { type: 'anvil:shutdown' }
  | { type: 'anvil:reload-tls' }
  | { type: 'anvil:metrics'; id: number }
  | { type: 'anvil:metrics-reply'; id: number; body?: string; error?: string };

/** More unexpected worker exits than this within CRASH_WINDOW_MS: something is wrong that restarting will not fix. */
const CRASH_LIMIT = 5;
const CRASH_WINDOW_MS = 30_000;

/** What a refused start prints and exits with: one line, 78 for a bad configuration value, else 1 (start-errors.ts). */
export function cannotStart(error: Error, known: boolean, logLevel?: string): never {
  const { line, code } = startFailure(error, known, logLevel);
  process.stderr.write(`${line}\n`);
  process.exit(code);
}

/** Prints a root credential that a failed start created and could not take back: its secret is otherwise lost. */
export function announceLeftRoot(root: { accessKeyId: string; secretKey: string } | undefined): void {
  if (!root) return;
  process.stderr.write(
    `\nThe root credential was created before the start failed. The secret is shown only this once:\n` +
      `  AWS_ACCESS_KEY_ID=${root.accessKeyId}\n  AWS_SECRET_ACCESS_KEY=${root.secretKey}\n\n`,
  );
}

/**
 * Prints a root credential created by this start, once, for the person who started the gateway (never a log line).
 * A secret the operator configured (ANVIL_ROOT_SECRET_KEY) is not printed: they have it, and stderr often ends up in a
 * log collector.
 */
export function announceRoot(root: { accessKeyId: string; secretKey?: string; created: boolean }, url: string, region: string, configured: boolean): void {
  if (!root.created) return;
  if (configured) {
    process.stderr.write(`\nRoot credential ${root.accessKeyId} created from ANVIL_ROOT_ACCESS_KEY and ANVIL_ROOT_SECRET_KEY.\n\n`);
    return;
  }
  if (!root.secretKey) return;
  const scheme = url.startsWith('https') ? ' --no-verify-ssl' : '';
  process.stderr.write(
    `\nRoot credential created. The secret is shown only this once:\n` +
      `  AWS_ACCESS_KEY_ID=${root.accessKeyId}\n  AWS_SECRET_ACCESS_KEY=${root.secretKey}\n\n` +
      `Try it:\n  AWS_ACCESS_KEY_ID=${root.accessKeyId} AWS_SECRET_ACCESS_KEY=${root.secretKey} ` +
      `aws --endpoint-url ${url}${scheme} --region ${region} s3 ls\n\n`,
  );
}

/** Runs the primary of a gateway with `config.workers` workers; exits the process when they are all gone. */
export async function runPrimary(config: GatewayConfig, isKnownError: (e: Error) => boolean): Promise<void> {
  const logger = createLogger({ level: config.logLevel });
  // The TLS pair once here too: a pair that does not load is one line from this process, not one per worker.
  const { lock, root } = await Promise.resolve()
    .then(() => config.tls && loadTlsAtStart(config.tls, createLogger({ level: 'silent' })))
    .then(() => prepareDataDir(config, logger))
    .catch((error: Error) => {
      announceLeftRoot(rootLeftByFailedStart(error));
      return cannotStart(error, isKnownError(error), config.logLevel);
    });
  const aggregator = new AggregatorRegistry();
  const workers = new Set<Worker>();
  const listening = new WeakSet<Worker>();
  const crashes: number[] = [];
  let stopping: NodeJS.Signals | 'failure' | undefined;
  let failedDrains = 0;
  let failureCode = 1;
  let announce: ((m: Extract<Message, { type: 'anvil:listening' }>) => void) | undefined;
  let startFailed: ((why: string) => void) | undefined;

  const exit = (code: number): never => {
    lock.release();
    process.exit(code);
  };
  const stopAll = (reason: NodeJS.Signals | 'failure') => {
    stopping = reason;
    if (workers.size === 0) exit(reason === 'failure' ? failureCode : 0);
    for (const w of workers) {
      // A worker still starting may not listen for messages yet; a signal reaches it either way.
      if (w.isConnected() && listening.has(w)) w.send({ type: 'anvil:shutdown' } satisfies Message);
      else w.process.kill('SIGTERM');
    }
    // Workers cut their own requests off at the shutdown timeout; this only catches one that hangs past it.
    setTimeout(() => {
      for (const w of workers) w.process.kill('SIGKILL');
    }, config.shutdownTimeoutMs + 10_000).unref();
  };

  const onMessage = (worker: Worker, m: Message) => {
    if (m.type === 'anvil:listening') {
      listening.add(worker);
      announce?.(m);
    }
    if (m.type === 'anvil:metrics') {
      aggregator.clusterMetrics().then(
        (body) => worker.isConnected() && worker.send({ type: 'anvil:metrics-reply', id: m.id, body } satisfies Message),
        (err: Error) => worker.isConnected() && worker.send({ type: 'anvil:metrics-reply', id: m.id, error: err.message } satisfies Message),
      );
    }
  };
  const onExit = (worker: Worker, code: number | null, signal: string | null) => {
    workers.delete(worker);
    const pid = worker.process.pid;
    if (config.backend === 'embedded' && pid !== undefined) {
      reapWorker(config.dataDir, pid).catch((err: Error) => logger.warn({ pid, err: { message: err.message } }, 'could not clear what a worker left'));
    }
    if (stopping) {
      // A worker stopped before it listened served nothing: its signal exit is no failed drain.
      if (code !== 0 && listening.has(worker)) failedDrains++;
      if (workers.size === 0) exit(stopping === 'failure' ? failureCode : failedDrains > 0 ? 1 : 0);
      return;
    }
    if (startFailed) {
      // A worker refused the configuration (a certificate that does not load, an address not of this host): so does the gateway.
      if (code === EX_CONFIG) failureCode = EX_CONFIG;
      return startFailed(`a worker exited with ${signal ?? code} while starting`);
    }
    const now = Date.now();
    crashes.push(now);
    while (crashes.length > 0 && crashes[0]! < now - CRASH_WINDOW_MS) crashes.shift();
    if (crashes.length > CRASH_LIMIT) {
      logger.fatal({ pid, code, signal, exits: crashes.length }, 'workers keep exiting: stopping the gateway');
      return stopAll('failure');
    }
    logger.error({ pid, code, signal }, 'worker exited; starting another');
    fork();
  };
  const fork = (): Worker => {
    const worker = cluster.fork();
    workers.add(worker);
    worker.on('message', (m: Message) => onMessage(worker, m));
    worker.on('exit', (code, signal) => onExit(worker, code, signal));
    return worker;
  };

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      for (const w of workers) w.process.kill('SIGKILL');
      exit(128 + (signal === 'SIGINT' ? 2 : 15));
    }
    logger.info({ signal, workers: workers.size }, 'signal received'); // each worker drains its requests
    stopAll(signal);
  };
  // Before the first fork: a worker answers requests as soon as it listens, before its siblings do, so a signal that
  // comes while others are still starting must drain it too (the default action would kill this process, and its
  // workers would lose their queued denial lines).
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => {
    for (const w of workers) if (w.isConnected()) w.send({ type: 'anvil:reload-tls' } satisfies Message);
  });

  // Each worker accepts its own connections from the shared socket. Under round-robin the primary accepts and
  // passes each connection to a worker over IPC, and one passed to a worker that dies before taking it stays open in
  // the primary, unanswered, for good (node's RoundRobinHandle only closes or redistributes it on the worker's reply).
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  // The start: every worker listening, or the first failure stops the others.
  const started = await new Promise<Extract<Message, { type: 'anvil:listening' }> | undefined>((resolve) => {
    let pending = config.workers;
    startFailed = (why) => {
      startFailed = undefined;
      announce = undefined;
      logger.fatal(why);
      resolve(undefined);
    };
    announce = (m) => {
      if (--pending > 0) return;
      startFailed = undefined;
      announce = undefined;
      resolve(m);
    };
    for (let i = 0; i < config.workers; i++) fork();
  });
  if (stopping) return; // a signal came during the start: the workers drain, the last one's exit ends this process
  if (!started) {
    // As a failed start in one process does: a root credential nobody was shown is taken back (or shown now).
    announceLeftRoot(await discardPreparedRoot(config, root));
    process.stderr.write('anvil: cannot start: a worker process failed (its error is above)\n');
    return stopAll('failure');
  }
  logger.info({ url: started.url, healthUrl: started.healthUrl, dataDir: config.dataDir, backend: config.backend, pid: process.pid, workers: config.workers }, 'listening');
  announceRoot(root, started.url, config.region, config.rootSecretKey !== undefined);
}

/**
 * Runs one worker: a gateway on the primary's socket, draining on the primary's word, its own signal or the
 * primary's death. Each drain ends with the stores closed, so the denial lines, access records and last-used times
 * still queued are written before the exit; a second signal to the worker itself exits at once.
 */
export async function runWorker(config: GatewayConfig, isKnownError: (e: Error) => boolean): Promise<Gateway> {
  // Node's cluster code exits a worker at once (status 0) when the primary's channel closes, unless the worker is
  // marked as disconnecting on purpose; it would skip the drain below and lose the queued denial lines.
  cluster.worker!.exitedAfterDisconnect = true;
  // Every line names the worker that wrote it (access lines included), so an operator can tell workers apart.
  const logger = createLogger({ level: config.logLevel }).child({ pid: process.pid });
  let gw: Gateway | undefined;
  let asked: string | undefined;
  let draining = false;
  let signals = 0;
  const drain = (why: string) => {
    asked ??= why;
    // Asked while still starting: the drain runs once the gateway is up (or the start fails and exits).
    if (gw === undefined || draining) return;
    draining = true;
    gw.logger.info({ why: asked }, 'worker draining');
    gw.shutdown(config.shutdownTimeoutMs).then(
      (cutOff) => process.exit(cutOff > 0 ? 1 : 0),
      () => process.exit(1),
    );
  };
  process.on('message', (m: Message) => {
    if (m.type === 'anvil:shutdown') drain('primary asked');
    if (m.type === 'anvil:reload-tls') gw?.reloadTls();
  });
  // The primary died: nothing distributes connections any more, and its successor waits for this process to go.
  process.on('disconnect', () => {
    if (gw === undefined) process.exit(1); // nothing served, nothing queued: the start is moot
    drain('primary gone');
  });
  // The primary forwards its signal as a message, and a terminal's Ctrl-C or systemd's stop signals every process of
  // the group too: only a second signal to this worker itself skips the drain.
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    drain(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', () => gw?.reloadTls());
  gw = await startGateway(config, { logger, worker: true }).catch((error: Error) => cannotStart(error, isKnownError(error), config.logLevel));
  aggregateMetrics(gw);
  process.send!({ type: 'anvil:listening', url: gw.url, healthUrl: gw.healthUrl } satisfies Message);
  if (asked !== undefined) drain(asked);
  return gw;
}

/** Makes the worker's /_anvil/metrics answer with all workers' metrics, summed by the primary (prom-client's cluster support). */
function aggregateMetrics(gw: Gateway): void {
  new AggregatorRegistry(); // in a worker: answers the primary's requests for this worker's metrics
  AggregatorRegistry.setRegistries(gw.metrics.registry);
  const pending = new Map<number, { resolve: (body: string) => void; reject: (err: Error) => void }>();
  let next = 0;
  process.on('message', (m: Message) => {
    if (m.type !== 'anvil:metrics-reply') return;
    const waiting = pending.get(m.id);
    pending.delete(m.id);
    if (m.body !== undefined) waiting?.resolve(m.body);
    else waiting?.reject(new Error(m.error ?? 'no metrics from the primary'));
  });
  gw.metrics.aggregateVia(
    () =>
      new Promise<string>((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve, reject });
        process.send!({ type: 'anvil:metrics', id } satisfies Message);
      }),
  );
}

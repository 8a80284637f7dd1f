/**
 * The composition root: reads the configuration, opens the policy store and the storage backend, builds the app and
 * listens (HTTP, or HTTPS with certificate reload, plus an optional health-only HTTP port). Tests start gateways
 * through startGateway() exactly as `npm start` does; main.ts adds signals and the process exit, and cluster.ts the
 * worker processes: prepareDataDir() in the primary, startGateway({ worker: true }) in each worker.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { AccessRecords, ConsoleSessions, DenialLog, nodeMasterKey, PolicyDatabase, PolicyStore, purgeAudit, purgeDenials, relationships as rel, type DenialRecord } from '../policy/index.ts';
import type { Backend } from '../storage/backend.ts';
import { DataDirInUseError, lockDataDir, openEmbeddedStore, SpaceReserve, type DataDirLock } from '../storage/index.ts';
import type { RootResult } from '../policy/store.ts';
import { createApp } from './app.ts';
import { loadConsoleAssets } from './console/index.ts';
import type { GatewayConfig } from './config.ts';
import { guardConnections } from './http/connection-guard.ts';
import { earlyAnswers } from './http/early-answers.ts';
import { createLogger, type Logger } from './logging.ts';
import { GatewayMetrics, instrumentBackend } from './metrics.ts';
import { healthAnswer, type HealthDeps } from './ops-endpoints.ts';
import { closeTokenStores, openTokenStores } from './sts/stores.ts';
import { listenError, makeDataDir, SettingError } from './start-errors.ts';
import { loadTlsAtStart, watchTls, type TlsReloader } from './tls.ts';

/** A running gateway. */
export interface Gateway {
  server: Server;
  url: string;
  port: number;
  /** The health-only plain-HTTP listener's URL, when ANVIL_HEALTH_ADDRESS is set. */
  healthUrl?: string;
  policy: PolicyStore;
  /** The policy database (SQLite files in the data directory, or the PostgreSQL every node shares). */
  database: PolicyDatabase;
  backend: Backend;
  relationships: rel.Relationships;
  /** The denial log (batched rows in the policy database). */
  denials: DenialLog;
  metrics: GatewayMetrics;
  logger: Logger;
  /** The root credential; the secret only when it was created or configured in this start. */
  root: { accessKeyId: string; secretKey?: string; created: boolean };
  /** Loads the TLS files again (SIGHUP); false without TLS or when the new pair does not load. */
  reloadTls(): boolean;
  /**
   * Graceful stop: stop accepting, let requests in flight finish for up to `timeoutMs` (then cut them off), close
   * the stores. Resolves with the number of requests cut off.
   */
  shutdown(timeoutMs: number): Promise<number>;
  /** Immediate stop: every connection closed now, then the stores. */
  close(): Promise<void>;
}

/**
 * Opens the backend the configuration names, in a data directory whose lock the caller holds (`lock`), or its
 * primary does (a worker: no lock here).
 */
export async function openBackend(
  config: GatewayConfig,
  held: { lock?: DataDirLock; space: SpaceReserve; log: (line: string) => void },
): Promise<Backend> {
  if (config.backend === 'upstream') {
    const { openUpstreamBackend } = await import('../storage/upstream/index.ts');
    return openUpstreamBackend(config.upstream, { log: held.log });
  }
  return openEmbeddedStore({
    dataDir: config.dataDir,
    lock: held.lock,
    worker: held.lock === undefined,
    space: held.space,
    // An orphaned worker of an earlier primary may take up to the shutdown timeout to finish its requests.
    workersWaitMs: config.shutdownTimeoutMs + 10_000,
  });
}

/** What a start has opened so far: closed in reverse order when the start fails, or when the gateway stops. */
class Opened {
  private readonly closers: Array<() => unknown> = [];

  add(close: () => unknown): void {
    this.closers.push(close);
  }

  async closeAll(): Promise<void> {
    while (this.closers.length > 0) await this.closers.pop()!();
  }
}

/** The denial log, also counting each line in the metrics and (when asked) writing it, scrubbed, to the JSON log. */
class ObservedDenialLog extends DenialLog {
  constructor(private readonly observers: { database: PolicyDatabase; metrics: GatewayMetrics; logger?: Logger }) {
    super({ database: observers.database });
  }
  protected override written(record: DenialRecord): void {
    this.observers.metrics.denied(record);
    this.observers.logger?.warn({ denial: record }, 'denied');
  }
}

/**
 * Deletes denial and audit rows past their retention (at start, then hourly). Every node runs it; the deletes are
 * idempotent, so several nodes doing it at once only repeat each other.
 */
function keepLogs(database: PolicyDatabase, config: GatewayConfig): { stop(): void } {
  const days = (n: number) => new Date(Date.now() - n * 86_400_000);
  const purge = () => {
    if (config.denialRetentionDays > 0) purgeDenials(database, days(config.denialRetentionDays)).catch(() => {});
    if (config.auditRetentionDays > 0) purgeAudit(database, days(config.auditRetentionDays)).catch(() => {});
  };
  purge();
  const timer = setInterval(purge, 3_600_000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** Longest a shutdown waits, after cutting requests off, for their handlers to return and write their access lines. */
const UNWIND_MS = 5_000;

/** Listens on host:port; resolves once bound, or rejects (a SettingError naming `setting` when the address is at fault). */
function listen(server: Server, host: string, port: number, setting: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const refused = (error: NodeJS.ErrnoException) => reject(listenError(error, setting, `${host}:${port}`));
    server.once('error', refused);
    server.listen(port, host, () => {
      server.off('error', refused);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

const urlOf = (scheme: string, host: string, port: number) => `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;

/** The plain-HTTP listener that answers only the health endpoints. */
function healthServer(deps: HealthDeps): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    healthAnswer(req.method ?? 'GET', path, deps).then((answer) => {
      const out = answer ?? { status: 404, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status: 'not found' }) };
      res.writeHead(out.status ?? 200, out.headers as Record<string, string>);
      res.end(req.method === 'HEAD' ? undefined : out.body);
    });
  });
}

/** The data directory's kernel lock, taken before anything in it is read or written: a refused start changes nothing. */
function lockFor(config: GatewayConfig): DataDirLock {
  makeDataDir(config.dataDir);
  try {
    return lockDataDir(config.dataDir, config.backend === 'embedded' ? 'exclusive' : 'shared');
  } catch (error) {
    if (error instanceof DataDirInUseError) throw error;
    // A directory that takes no file (/proc/1, a read-only mount) is the setting's fault, not a passing state.
    throw new SettingError('ANVIL_DATA_DIR', `${config.dataDir}: cannot create the lock file in it (${(error as Error).message})`);
  }
}

/** Everything a gateway serves from, opened in order; `opened` closes them in reverse. */
interface Services {
  metrics: GatewayMetrics;
  space: SpaceReserve;
  database: PolicyDatabase;
  policy: PolicyStore;
  root: RootResult;
  stores: ReturnType<typeof openTokenStores>;
  relationships: rel.Relationships;
  records: AccessRecords;
  denials: ObservedDenialLog;
  backend: Backend;
}

interface StartState {
  config: GatewayConfig;
  logger: Logger;
  lock?: DataDirLock;
  opened: Opened;
  /** A root credential this start generated; its secret has not been shown to anyone yet. */
  createdRoot?: { policy: PolicyStore; accessKeyId: string; secretKey: string };
}

const unshownRoots = new WeakMap<object, { accessKeyId: string; secretKey: string }>();

/**
 * The generated root credential a failed start could not take back, when the error is such a start's: its secret
 * was never shown, so the caller must show it with the error or it is lost (no later start shows an existing root).
 */
export function rootLeftByFailedStart(err: unknown): { accessKeyId: string; secretKey: string } | undefined {
  return typeof err === 'object' && err !== null ? unshownRoots.get(err) : undefined;
}

/**
 * A first start that fails after generating the root credential takes it back, so the next start generates (and
 * shows) a new one instead of finding a root whose secret nobody ever saw. When even that fails (the volume is full),
 * the credential stays and the error carries it (rootLeftByFailedStart) for the entry point to show.
 */
async function discardCreatedRoot(created: NonNullable<StartState['createdRoot']>, err: unknown): Promise<void> {
  try {
    await created.policy.discardRoot(created.accessKeyId);
  } catch {
    if (typeof err === 'object' && err !== null) unshownRoots.set(err, { accessKeyId: created.accessKeyId, secretKey: created.secretKey });
  }
}

async function openServices(start: StartState): Promise<Services> {
  const { config, logger, lock, opened } = start;
  const metrics = new GatewayMetrics();
  const log = (line: string) => logger.warn(line);
  const space = await SpaceReserve.open({ dataDir: config.dataDir, bytes: config.spaceReserveBytes, log });
  opened.add(() => space.close());
  // The key first: a missing, damaged or (on a full volume) unwritable key stops the start before any file is made.
  const masterKey = nodeMasterKey(config.policyDatabase, config.dataDir, config.masterKey);
  const database = await PolicyDatabase.open({ url: config.policyDatabase, dataDir: config.dataDir, poolSize: config.policyPoolSize, timeoutMs: config.policyTimeoutMs, node: config.nodeName });
  opened.add(() => database.close());
  const policy = await PolicyStore.open({ database, dataDir: config.dataDir, masterKey });
  opened.add(() => policy.flushLastUse());
  const root = await policy.ensureRoot({ accessKeyId: config.rootAccessKey, secretKey: config.rootSecretKey });
  if (root.created && root.secretKey && config.rootSecretKey === undefined) start.createdRoot = { policy, accessKeyId: root.accessKeyId, secretKey: root.secretKey };
  const stores = openTokenStores({ policy, allowInsecureJwks: config.oidcAllowInsecureJwks });
  opened.add(() => closeTokenStores(policy));
  const relationships = rel.Relationships.open({ database });
  opened.add(() => relationships.close());
  const records = new AccessRecords(database);
  opened.add(() => records.close());
  metrics.watchCheckCache(relationships.engine.cacheStats);
  const denials = new ObservedDenialLog({ database, metrics, logger: config.denialsToStdout ? logger : undefined });
  opened.add(() => denials.close());
  const retention = keepLogs(database, config);
  opened.add(() => retention.stop());
  const backend = instrumentBackend(await openBackend(config, { lock, space, log }), metrics);
  opened.add(() => backend.close());
  return { metrics, space, database, policy, root, stores, relationships, records, denials, backend };
}

/**
 * What the primary of a gateway with worker processes does before forking them: takes the data directory's lock
 * (held for the primary's life and trusted by its workers), then opens and closes every store once, so their
 * migrations, the master key, the root credential and the embedded store's start-up sweep (which waits out workers
 * of an earlier primary first) all happen in one process, before any worker writes. Resolves with the lock and the
 * root credential (its secret only when created now).
 */
export async function prepareDataDir(config: GatewayConfig, logger: Logger): Promise<{ lock: DataDirLock; root: RootResult }> {
  const lock = lockFor(config);
  const opened = new Opened();
  const start: StartState = { config, logger, lock, opened };
  try {
    const { root } = await openServices(start);
    return { lock, root };
  } catch (err) {
    if (start.createdRoot) await discardCreatedRoot(start.createdRoot, err);
    lock.release();
    throw err;
  } finally {
    await opened.closeAll();
  }
}

/**
 * Takes back the root credential prepareDataDir created when the start fails afterwards (a worker could not listen,
 * say), as a failed start in one process does (discardCreatedRoot), so the next start creates and shows one. Resolves
 * with the credential when it could not be taken back (the entry point must then show its secret), else undefined.
 */
export async function discardPreparedRoot(config: GatewayConfig, root: RootResult): Promise<{ accessKeyId: string; secretKey: string } | undefined> {
  if (!root.created || root.secretKey === undefined || config.rootSecretKey !== undefined) return undefined;
  const opened = new Opened();
  try {
    const masterKey = nodeMasterKey(config.policyDatabase, config.dataDir, config.masterKey);
    const database = await PolicyDatabase.open({ url: config.policyDatabase, dataDir: config.dataDir, poolSize: 1, timeoutMs: config.policyTimeoutMs, node: config.nodeName });
    opened.add(() => database.close());
    const policy = await PolicyStore.open({ database, dataDir: config.dataDir, masterKey });
    await policy.discardRoot(root.accessKeyId);
    return undefined;
  } catch {
    return { accessKeyId: root.accessKeyId, secretKey: root.secretKey };
  } finally {
    await opened.closeAll().catch(() => {});
  }
}

/**
 * Starts a gateway; port 0 picks a free port. `logger` defaults to JSON lines on stdout at the configured level.
 * `worker`: a worker process of cluster.ts, whose primary holds the data directory's lock and has prepared it.
 */
export async function startGateway(config: GatewayConfig, opts: { logger?: Logger; worker?: boolean } = {}): Promise<Gateway> {
  const logger = opts.logger ?? createLogger({ level: config.logLevel });
  const lock = opts.worker ? undefined : lockFor(config);
  const opened = new Opened();
  if (lock) opened.add(() => lock.release());
  const start: StartState = { config, logger, lock, opened };
  try {
    return await startLocked(start);
  } catch (err) {
    if (start.createdRoot) await discardCreatedRoot(start.createdRoot, err);
    await opened.closeAll();
    throw err;
  }
}

async function startLocked(start: StartState): Promise<Gateway> {
  const { config, logger, opened } = start;
  const { metrics, space, database, policy, root, stores, relationships, records, denials, backend } = await openServices(start);
  // Buckets that predate the policy store (an existing upstream, say) stay owned by no tenant: root alone reaches
  // them until an operator assigns them (anvil bucket assign), and no tenant adopts one by touching it first.
  let draining = false;
  let inFlight = 0;
  const web = config.console.enabled
    ? { sessions: ConsoleSessions.open({ masterKey: policy.masterKey, idleSeconds: config.console.sessionSeconds, database: policy.database }), assets: loadConsoleAssets() }
    : undefined;
  if (web?.assets.size === 0) logger.warn('the web console was not built (npm run build): /_anvil/console/ answers 503');
  const app = createApp({ backend, config, policy, denials, stores, relationships, records, logger, metrics, console: web, draining: () => draining, space });

  // requireHostHeader: false: an HTTP/1.1 request without Host is refused inside the app (middleware/host-required.ts),
  // with an S3 error, an access line and a count, instead of Node's bare 400.
  const serverOptions = { requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000, requireHostHeader: false };
  const tlsPair = config.tls ? loadTlsAtStart(config.tls, logger) : undefined;
  const server: Server = tlsPair
    ? (createHttpsServer({ ...serverOptions, cert: tlsPair.cert, key: tlsPair.key }) as unknown as Server)
    : createServer(serverOptions);
  // A client may half-close its side once its request is sent; the answer is still due on the other side (RFC 9112
  // §9.6 lets the server answer, then close). Node would end the connection at the client's FIN instead, and the
  // answer to a write that committed would be lost. (Node's own switch for this; it has no constructor option.)
  (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  // A connection's requests run in order, each under the idle timer (gateway/http/connection-guard.ts).
  // `handling` counts requests whose handler has not returned: a request cut off at the shutdown timeout closes its
  // response at once, but its access line is written when its handler unwinds, which must happen before the exit.
  let handling = 0;
  // A request is in flight from its head until its response closes, or until the guard drops it unserved (parsed
  // behind its connection's last answer): Node never closes such a response, and counting it would hold every stop
  // for the whole shutdown timeout. delete() answers true once, so a response both dropped and closed counts once.
  const counted = new WeakSet<ServerResponse>();
  const settle = (res: ServerResponse): void => {
    if (counted.delete(res)) inFlight--;
  };
  // A named function reading `this`: one listener for all responses instead of a closure per request.
  function settleOnClose(this: ServerResponse): void {
    settle(this);
  }
  const appHandler = app.callback();
  const handle = guardConnections(
    (req, res) => {
      handling++;
      void appHandler(req, res).finally(() => handling--);
    },
    { idleTimeoutMs: config.idleTimeoutMs, minBodyRate: config.minBodyRate, dropped: (_req, res) => settle(res) },
  );
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    // Before any lookup of this request: on SQLite its policy lookups share one check for other processes' commits.
    database.requestStarted();
    inFlight++;
    counted.add(res);
    res.on('close', settleOnClose);
    // While draining, every answer ends its connection so keep-alive clients reconnect elsewhere.
    if (draining) res.setHeader('connection', 'close');
    void handle(req, res);
  };
  server.on('request', onRequest);
  // Expect: 100-continue reaches the app without an automatic 100: it is sent once the request is authorized.
  server.on('checkContinue', onRequest);
  // Requests Node refuses before the app (a lower-case method, a malformed head, CONNECT, an unknown Expect) get an S3 error, an access
  // line and a count like every other answer (gateway/http/early-answers.ts).
  const early = earlyAnswers({ logger, metrics, accessLog: config.accessLog });
  server.on('clientError', early.clientError);
  server.on('connect', early.connect);
  server.on('checkExpectation', early.checkExpectation);
  server.on('connection', (socket) => {
    metrics.connections.inc();
    socket.once('close', () => metrics.connections.dec());
  });
  const reloader: TlsReloader | undefined = config.tls ? watchTls(server as never, config.tls, logger) : undefined;
  opened.add(() => reloader?.stop());
  if (tlsPair) logger.info({ tls: tlsPair.summary }, 'TLS certificate loaded');

  const port = await listen(server, config.host, config.port, 'ANVIL_ADDRESS');
  const health = config.health ? healthServer({ policy, backend, logger, draining: () => draining }) : undefined;
  const healthPort = health && config.health ? await listen(health, config.health.host, config.health.port, 'ANVIL_HEALTH_ADDRESS') : undefined;

  let closed: Promise<void> | undefined;
  let cutOff = 0;
  const closeStores = () => opened.closeAll();
  const closeListener = (s: Server) => new Promise<void>((resolve) => s.close(() => resolve()));
  const stopListening = () => Promise.all([server, ...(health ? [health] : [])].map(closeListener));

  return {
    server,
    port,
    url: urlOf(tlsPair ? 'https' : 'http', config.host, port),
    healthUrl: healthPort !== undefined && config.health ? urlOf('http', config.health.host, healthPort) : undefined,
    policy,
    database,
    backend,
    relationships,
    denials,
    metrics,
    logger,
    root,
    reloadTls: () => reloader?.reload('SIGHUP') ?? false,
    shutdown(timeoutMs) {
      closed ??= (async () => {
        draining = true;
        logger.info({ inFlight, timeoutMs }, 'shutting down: no new connections; requests in flight may finish');
        // The S3 port takes no new connection; the health address goes on answering (ready: 503) until the end, so
        // a probe sees the drain instead of a refused connection.
        const stopped = closeListener(server);
        const deadline = Date.now() + timeoutMs;
        while (inFlight > 0 && Date.now() < deadline) {
          server.closeIdleConnections();
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        cutOff = inFlight;
        if (cutOff > 0) logger.warn({ requests: cutOff }, 'shutdown timeout: cutting off requests still in flight');
        server.closeAllConnections();
        await stopped;
        // The requests cut off unwind (their storage calls see the aborted body) and write their access lines.
        const unwound = Date.now() + UNWIND_MS;
        while (handling > 0 && Date.now() < unwound) await new Promise((resolve) => setTimeout(resolve, 10));
        if (handling > 0) logger.warn({ requests: handling }, 'requests still unwinding at exit: no access line for them');
        if (health) {
          const healthStopped = closeListener(health);
          health.closeAllConnections();
          await healthStopped;
        }
        await closeStores();
        logger.info('stopped');
      })();
      return closed.then(() => cutOff);
    },
    async close() {
      closed ??= (async () => {
        server.closeAllConnections();
        health?.closeAllConnections();
        await stopListening();
        await closeStores();
      })();
      return closed;
    },
  };
}

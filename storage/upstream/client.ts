/**
 * The SDK clients the upstream backend talks through. Two of them: one that retries (every request whose body can
 * be sent again) and one that never does, for streamed bodies, because a consumed client stream cannot be replayed.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { Agent as HttpAgent, type AgentOptions } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Duplex } from 'node:stream';
import type { RetryStrategyV2, RetryToken } from '@smithy/types';
import { timedOut } from './errors.ts';
import { LeanClient } from './lean.ts';

/**
 * Settings of the upstream backend. The gateway's UpstreamConfig has this shape; it is restated here because
 * storage/ never imports gateway/.
 */
export interface UpstreamConfig {
  endpoint?: string;
  region: string;
  accessKey?: string;
  secretKey?: string;
  forcePathStyle: boolean;
  /** `bucket`: one upstream bucket per gateway bucket; `prefix`: every gateway bucket inside `bucket`. */
  mapping: 'bucket' | 'prefix';
  /** The single upstream bucket when mapping is `prefix`. */
  bucket?: string;
  requestTimeoutMs: number;
}

/** The clients and the timeout they were built with. */
export interface UpstreamClients {
  /** Retries at most once more, never after a timeout, so a dead or hung upstream answers within about one timeout. */
  retrying: S3Client;
  /** Sends streamed bodies: a single attempt, no whole-request timer (only connect and idle timeouts). */
  streaming: S3Client;
  /** Health probes: a single attempt, and none of the fail-fast the other two get while the upstream is down. */
  probe: S3Client;
  /** The hot object calls (GetObject, HeadObject, PutObject, UploadPart) without the SDK's middleware: see lean.ts. */
  lean: LeanClient;
  timeoutMs: number;
}

/** Write errors that mean the upstream reset or closed the connection while the request body was still going out. */
const RESET_ON_WRITE = new Set(['ECONNRESET', 'EPIPE']);

type WriteCallback = (err?: Error | null) => void;

/**
 * Lets a socket keep reading after its peer reset it mid-request. An upstream that refuses a body early (MinIO's 507
 * XMinioStorageFull after its 100 Continue) answers and then closes with the rest of the body unread, so the kernel
 * resets the connection; Node would destroy the socket on the next write error and drop the answer already waiting in
 * the receive buffer, and the client would get a retryable 503 for what was a 507. Here a reset write only marks the
 * socket: the rest of the body is dropped, reading goes on, and the request ends with the upstream's own answer, or
 * with the reset itself when there is none (the read side reports it).
 */
function keepReadingAfterReset(socket: Duplex): void {
  const s = socket as Duplex & { _write: Duplex['_write']; _writev?: Duplex['_writev'] };
  let reset = false;
  const guard = (cb: WriteCallback): WriteCallback => (err) => {
    if (err && RESET_ON_WRITE.has((err as NodeJS.ErrnoException).code ?? '')) {
      reset = true;
      return cb();
    }
    cb(err);
  };
  const write = s._write.bind(s);
  s._write = (chunk, encoding, cb) => (reset ? cb() : write(chunk, encoding, guard(cb)));
  if (s._writev) {
    const writev = s._writev.bind(s);
    s._writev = (chunks, cb) => (reset ? cb() : writev(chunks, guard(cb)));
  }
}

/** Node's default agent settings for SDK clients (keep-alive, 50 sockets), with keepReadingAfterReset on each socket. */
function agents(): { httpAgent: HttpAgent; httpsAgent: HttpsAgent } {
  const options: AgentOptions = { keepAlive: true, maxSockets: 50 };
  const wrap = <A extends HttpAgent>(agent: A): A => {
    const create = (agent as unknown as { createConnection: (...args: unknown[]) => Duplex }).createConnection.bind(agent);
    (agent as unknown as { createConnection: (...args: unknown[]) => Duplex }).createConnection = (...args: unknown[]) => {
      const socket = create(...args);
      keepReadingAfterReset(socket);
      return socket;
    };
    return agent;
  };
  return { httpAgent: wrap(new HttpAgent(options)), httpsAgent: wrap(new HttpsAgent(options)) };
}

/**
 * The retrying client's strategy: one more attempt after a transient, throttling or server failure, as the SDK's
 * standard strategy makes it, but none after a timeout, so a hung upstream is answered 503 after one timeout, not
 * two (a second attempt at a silent upstream only waits as long again).
 */
function oneRetryUnlessTimedOut(): RetryStrategyV2 {
  const token = (count: number, delay: number): RetryToken => ({ getRetryCount: () => count, getRetryDelay: () => delay });
  return {
    acquireInitialRetryToken: async () => token(0, 0),
    async refreshRetryTokenForRetry(previous, info) {
      if (previous.getRetryCount() >= 1 || info.errorType === 'CLIENT_ERROR' || timedOut(info.error)) throw info.error ?? new Error('not retried');
      return token(1, Math.random() * 100);
    },
    recordSuccess: () => {},
  };
}

/** Builds both clients from the gateway's upstream settings. */
export function createClients(config: UpstreamConfig): UpstreamClients {
  // The SDK warns about Node 20 on every client creation; the gateway supports Node 20 on purpose.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const timeoutMs = config.requestTimeoutMs > 0 ? config.requestTimeoutMs : 30_000;
  // The SDK warns on the console whenever a streamed upload fails (a refused condition, a client that went away);
  // those failures already reach the gateway as neutral errors, so the streaming client logs nothing itself.
  const quiet = { debug() {}, info() {}, warn() {}, error() {}, trace() {} };
  const make = (maxAttempts: number, requestTimeout: number): S3Client =>
    new S3Client({
      ...(maxAttempts === 1 ? { logger: quiet } : {}),
      endpoint: config.endpoint,
      region: config.region,
      credentials: config.accessKey && config.secretKey ? { accessKeyId: config.accessKey, secretAccessKey: config.secretKey } : undefined,
      forcePathStyle: config.forcePathStyle,
      maxAttempts,
      ...(maxAttempts > 1 ? { retryStrategy: oneRetryUnlessTimedOut() } : {}),
      // Checksums are the gateway's business (it verified the client's); the SDK adding its own costs CPU and
      // would store checksums on objects the client never asked for.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: Math.min(timeoutMs, 10_000),
        requestTimeout,
        throwOnRequestTimeout: requestTimeout > 0,
        // Idle time on the socket: catches an upstream that accepted the connection and then went silent.
        socketTimeout: timeoutMs,
        // Agents of our own (see keepReadingAfterReset). The SDK then writes a body at once instead of waiting for
        // 100 Continue; MinIO and S3 accept that.
        ...agents(),
      },
    });
  const retrying = make(2, timeoutMs);
  const own = agents();
  const lean = new LeanClient({
    endpoint: config.endpoint,
    region: config.region,
    forcePathStyle: config.forcePathStyle,
    // The SDK's provider: static keys, or the default chain with its caching and refresh.
    credentials: retrying.config.credentials,
    agents: { http: own.httpAgent, https: own.httpsAgent },
    timeoutMs,
  });
  return { retrying, streaming: make(1, 0), probe: make(1, Math.min(timeoutMs, 5_000)), lean, timeoutMs };
}

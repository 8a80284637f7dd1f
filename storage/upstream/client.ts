/**
 * The SDK clients the upstream backend talks through. Two of them: one that retries (every request whose body can
 * be sent again) and one that never does, for streamed bodies, because a consumed client stream cannot be replayed.
 */
import { S3Client } from '@aws-sdk/client-s3';

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
  /** Retries at most once more, so a dead upstream answers within about one timeout. */
  retrying: S3Client;
  /** Sends streamed bodies: a single attempt, no whole-request timer (only connect and idle timeouts). */
  streaming: S3Client;
  /** Health probes: a single attempt, and none of the fail-fast the other two get while the upstream is down. */
  probe: S3Client;
  timeoutMs: number;
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
      },
    });
  return { retrying: make(2, timeoutMs), streaming: make(1, 0), probe: make(1, Math.min(timeoutMs, 5_000)), timeoutMs };
}

/**
 * Whether the upstream is reachable, as last observed. While it is down every call fails at once with
 * ServiceUnavailableError (the gateway's 503 + Retry-After) instead of each request waiting out a connect timeout, and
 * a probe (one cheap authenticated call) runs every `probeIntervalMs`, and on requests that arrive meanwhile, until
 * the upstream answers again.
 *
 * One failed call does not take the upstream down: a reset keep-alive socket happens. It triggers a probe at once,
 * and only a failed probe marks the upstream down. Any HTTP answer, error statuses included, proves it reachable.
 */
import { HeadBucketCommand, ListBucketsCommand, type S3Client } from '@aws-sdk/client-s3';
import type { BackendHealth } from '../backend.ts';
import { ServiceUnavailableError } from '../errors.ts';
import type { UpstreamClients } from './client.ts';
import { isUnreachable, RETRY_AFTER_SECONDS, translate } from './errors.ts';
import type { Layout } from './layout.ts';

/**
 * The cheapest authenticated call that proves the upstream serves this gateway: ListBuckets (one bucket asked for)
 * with bucket mapping, HeadBucket of the shared bucket with prefix mapping. Throws a translated error.
 */
export async function probeUpstream(clients: UpstreamClients, layout: Layout, signal: AbortSignal): Promise<void> {
  try {
    if (layout.mapping === 'bucket') await clients.probe.send(new ListBucketsCommand({ MaxBuckets: 1 }), { abortSignal: signal });
    else await clients.probe.send(new HeadBucketCommand({ Bucket: layout.shared }), { abortSignal: signal });
  } catch (err) {
    throw translate(err);
  }
}

/** Requests arriving while the upstream is down probe it again, but no more often than this. */
const MIN_PROBE_GAP_MS = 200;

/** Options of UpstreamHealth. */
export interface UpstreamHealthOptions {
  /** One cheap authenticated call; throws when the upstream cannot serve. */
  probe: (signal: AbortSignal) => Promise<void>;
  probeIntervalMs?: number;
  probeTimeoutMs?: number;
  log?: (line: string) => void;
}

/** The upstream's reachability; see the module comment. */
export class UpstreamHealth {
  private state: BackendHealth = { up: true, since: new Date(), retryAfterSeconds: RETRY_AFTER_SECONDS };
  private probing: Promise<void> | undefined;
  private lastProbe = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly log: (line: string) => void;

  constructor(private readonly options: UpstreamHealthOptions) {
    this.intervalMs = options.probeIntervalMs ?? 1000;
    this.timeoutMs = options.probeTimeoutMs ?? 5000;
    this.log = options.log ?? ((line) => process.stderr.write(line + '\n'));
  }

  /** The state as last observed. */
  current(): BackendHealth {
    return { ...this.state };
  }

  /**
   * Throws ServiceUnavailableError while the upstream is down, and probes (at most every MIN_PROBE_GAP_MS) so the
   * client's retry finds it back as soon as it is.
   */
  assertUp(): void {
    if (this.state.up) return;
    if (Date.now() - this.lastProbe >= MIN_PROBE_GAP_MS) void this.probe();
    throw new ServiceUnavailableError(
      `upstream unreachable since ${this.state.since.toISOString()}: ${this.state.reason ?? 'no answer'}`,
      this.state.retryAfterSeconds,
    );
  }

  /** Records the outcome of one upstream call: an answer proves it up, an unreachable upstream is probed. */
  observe(err: unknown): void {
    if (err === undefined || !isUnreachable(err)) return this.markUp();
    if (this.state.up) void this.probe();
  }

  /**
   * Adds the fail-fast and observing step to an SDK client, outside its retries: a call made while the upstream is
   * down fails at once, and the final outcome of every call (after retries) is observed.
   */
  attach(client: S3Client): void {
    client.middlewareStack.add(
      (next) => async (args) => {
        this.assertUp();
        try {
          const out = await next(args);
          this.observe(undefined);
          return out;
        } catch (err) {
          this.observe(err);
          throw err;
        }
      },
      { step: 'initialize', name: 'anvilUpstreamHealth', priority: 'high' },
    );
  }

  /**
   * Probes now and marks the upstream up or down by the result, which it also returns: resolves when the upstream
   * answered, throws the probe's error otherwise. `signal` (a readiness check's) cuts it short without marking down.
   */
  async check(signal?: AbortSignal): Promise<void> {
    this.lastProbe = Date.now();
    const timeout = AbortSignal.timeout(this.timeoutMs);
    try {
      await this.options.probe(signal ? AbortSignal.any([signal, timeout]) : timeout);
    } catch (err) {
      if (!signal?.aborted) this.markDown(err);
      throw err;
    }
    this.markUp();
  }

  /** Probes in the background, at most one probe at a time. */
  private probe(): Promise<void> {
    this.probing ??= this.check()
      .catch(() => {})
      .finally(() => {
        this.probing = undefined;
      });
    return this.probing;
  }

  /** Stops probing. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private markUp(): void {
    if (this.state.up) return;
    this.log(`upstream: reachable again after ${Math.round((Date.now() - this.state.since.getTime()) / 1000)} s`);
    this.state = { up: true, since: new Date(), retryAfterSeconds: RETRY_AFTER_SECONDS };
  }

  private markDown(err: unknown): void {
    const reason = (err as Error)?.message ?? String(err);
    if (this.state.up) {
      this.log(`upstream: unreachable (${reason}); answering 503 until a probe succeeds`);
      this.state = { up: false, since: new Date(), reason, retryAfterSeconds: RETRY_AFTER_SECONDS };
    } else {
      this.state = { ...this.state, reason };
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.state.up) void this.probe();
    }, this.intervalMs);
    this.timer.unref();
  }
}

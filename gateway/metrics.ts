/**
 * Prometheus metrics (prom-client), one registry per gateway: requests by S3 operation and status, latency, bytes
 * in and out, denials by layer, backend calls and errors, the check engine's cache, open connections, storage-full
 * answers, and Node's own process metrics (event-loop lag among them). Served at /_anvil/metrics.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DenialRecord } from '../policy/index.ts';
import type { Backend } from '../storage/backend.ts';
import { wrapMethods } from '../storage/wrap-methods.ts';

/** Latency buckets in seconds, from a cached check to a large transfer. */
const SECONDS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** One label set's increments not yet added to its counter. */
interface Pending {
  labels: Record<string, string>;
  value: number;
}

/**
 * A counter whose per-request increments are summed in a plain number per label set and added to the prom-client
 * counter when the registry is read (its collect hook), so every scrape, and the primary's sum over workers, sees
 * every request. prom-client's inc() hashes and validates the label object on every call: a few µs a request on the
 * hot path, for a value nobody reads until the next scrape.
 */
class BufferedCounter {
  private readonly pending = new Map<string, Pending>();
  readonly counter: Counter;

  constructor(options: { name: string; help: string; labelNames: string[]; registry: Registry }) {
    const pending = this.pending;
    this.counter = new Counter({
      name: options.name,
      help: options.help,
      labelNames: options.labelNames,
      registers: [options.registry],
      collect() {
        for (const p of pending.values()) {
          if (p.value === 0) continue;
          this.inc(p.labels, p.value);
          p.value = 0;
        }
      },
    });
  }

  /** The pending sum of one label set, known by `id`: add to its value. */
  entry(id: string, labels: Record<string, string>): Pending {
    let p = this.pending.get(id);
    if (!p) {
      p = { labels, value: 0 };
      this.pending.set(id, p);
    }
    return p;
  }
}

/** One operation's label object and pending sums, found with one map lookup per request. */
interface Tally {
  labels: { operation: string };
  received: Pending;
  sent: Pending;
  byStatus: Map<number, Pending>;
}

/** The gateway's metrics and the registry they are served from. */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly answeredRequests = new BufferedCounter({ name: 'anvil_requests_total', help: 'Requests answered, by S3 operation (or API) and HTTP status', labelNames: ['operation', 'status'], registry: this.registry });
  readonly requests = this.answeredRequests.counter;
  readonly duration = new Histogram({ name: 'anvil_request_duration_seconds', help: 'Time from request to the last byte of the response, by operation', labelNames: ['operation'], buckets: SECONDS, registers: [this.registry] });
  private readonly received = new BufferedCounter({ name: 'anvil_received_bytes_total', help: 'Bytes received from clients (request line, headers and body), by operation', labelNames: ['operation'], registry: this.registry });
  readonly bytesIn = this.received.counter;
  private readonly sent = new BufferedCounter({ name: 'anvil_sent_bytes_total', help: 'Bytes sent to clients (headers and body), by operation', labelNames: ['operation'], registry: this.registry });
  readonly bytesOut = this.sent.counter;
  readonly denials = new Counter({ name: 'anvil_denials_total', help: 'Refused requests, by the layer that refused them', labelNames: ['layer'], registers: [this.registry] });
  readonly storageFull = new Counter({ name: 'anvil_storage_full_total', help: 'Requests answered 507 (storage full), by operation', labelNames: ['operation'], registers: [this.registry] });
  readonly backendDuration = new Histogram({ name: 'anvil_backend_duration_seconds', help: 'Storage backend call latency, by method', labelNames: ['method'], buckets: SECONDS, registers: [this.registry] });
  readonly backendErrors = new Counter({ name: 'anvil_backend_errors_total', help: 'Storage backend calls that failed, by method and error', labelNames: ['method', 'error'], registers: [this.registry] });
  readonly connections = new Gauge({ name: 'anvil_open_connections', help: 'Client connections open now', registers: [this.registry] });

  /** Where scrape() reads from instead of this registry: a worker asks its primary for every worker's sum. */
  private source: (() => Promise<string>) | undefined;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Serves `source`'s text at /_anvil/metrics instead of this registry's (gateway/cluster.ts). */
  aggregateVia(source: () => Promise<string>): void {
    this.source = source;
  }

  /** Exposes the check engine's cache counters (read when scraped). */
  watchCheckCache(stats: { hits: number; misses: number }): void {
    new Counter({
      name: 'anvil_check_cache_lookups_total',
      help: 'Relationship check-engine cache lookups, by result (hit or miss)',
      labelNames: ['result'],
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc({ result: 'hit' }, stats.hits);
        this.inc({ result: 'miss' }, stats.misses);
      },
    });
    new Gauge({
      name: 'anvil_check_cache_hit_ratio',
      help: 'Share of relationship check-engine cache lookups that hit, since start',
      registers: [this.registry],
      aggregator: 'average', // over worker processes
      collect() {
        const total = stats.hits + stats.misses;
        this.set(total === 0 ? 0 : stats.hits / total);
      },
    });
  }

  /** Each operation's tally, made on its first request. */
  private readonly tallies = new Map<string, Tally>();

  /**
   * Counts one answered request: its operation and status, its duration in seconds, the bytes it received and sent
   * (and a 507 among the storage-full answers).
   */
  answered(operation: string, status: number, seconds: number, bytesIn: number, bytesOut: number): void {
    let tally = this.tallies.get(operation);
    if (!tally) {
      const labels = { operation };
      tally = { labels, received: this.received.entry(operation, labels), sent: this.sent.entry(operation, labels), byStatus: new Map() };
      this.tallies.set(operation, tally);
    }
    let requests = tally.byStatus.get(status);
    if (!requests) {
      requests = this.answeredRequests.entry(`${operation} ${status}`, { operation, status: String(status) });
      tally.byStatus.set(status, requests);
    }
    requests.value += 1;
    tally.received.value += bytesIn;
    tally.sent.value += bytesOut;
    this.duration.observe(tally.labels, seconds);
    if (status === 507) this.storageFull.inc(tally.labels);
  }

  /** Counts one denial line. */
  denied(record: Pick<DenialRecord, 'layer'>): void {
    this.denials.inc({ layer: record.layer });
  }

  /** The metrics in Prometheus' text format, and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: this.source ? await this.source() : await this.registry.metrics() };
  }
}

/**
 * The backend with every call timed and every failure counted (by the neutral error's class name). Each method is
 * wrapped once (per function the backend holds), with its label set made once, so a call allocates no closures.
 */
export function instrumentBackend(backend: Backend, metrics: GatewayMetrics): Backend {
  return wrapMethods(backend, (property, method) => {
    const labels = { method: property };
    const observe = (started: number) => metrics.backendDuration.observe(labels, (performance.now() - started) / 1000);
    const failed = (started: number, error: unknown) => {
      observe(started);
      metrics.backendErrors.inc({ method: property, error: error instanceof Error ? error.name : 'unknown' });
      throw error;
    };
    return function timed(...args: unknown[]) {
      const started = performance.now();
      try {
        const result = method(...args);
        if (!(result instanceof Promise)) return (observe(started), result);
        return result.then(
          (out: unknown) => (observe(started), out),
          (error: unknown) => failed(started, error),
        );
      } catch (error) {
        return failed(started, error);
      }
    };
  }, (property) => property === 'close');
}

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

/** The gateway's metrics and the registry they are served from. */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'anvil_requests_total', help: 'Requests answered, by S3 operation (or API) and HTTP status', labelNames: ['operation', 'status'], registers: [this.registry] });
  readonly duration = new Histogram({ name: 'anvil_request_duration_seconds', help: 'Time from request to the last byte of the response, by operation', labelNames: ['operation'], buckets: SECONDS, registers: [this.registry] });
  readonly bytesIn = new Counter({ name: 'anvil_received_bytes_total', help: 'Bytes received from clients (request line, headers and body), by operation', labelNames: ['operation'], registers: [this.registry] });
  readonly bytesOut = new Counter({ name: 'anvil_sent_bytes_total', help: 'Bytes sent to clients (headers and body), by operation', labelNames: ['operation'], registers: [this.registry] });
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

/**
 * Health, readiness and Prometheus metrics of a running pipeline, served over HTTP:
 * `/health` (200 healthy / 503 after a failed write until the next successful one, and while
 * Kafka is unreachable until the consumer is back in its group; JSON body),
 * `/ready` (200 once tables exist and consumers run) and `/metrics` (Prometheus text).
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { redact } from '../core/logger.ts';
import type { SinkAck } from '../types.ts';

export interface HealthSnapshot {
  status: 'healthy' | 'unhealthy';
  ready: boolean;
  lastWriteAt: string | null;
  lastErrorAt: string | null;
  lastError: string | null;
  recordsWritten: number;
  dlqRecords: number;
  errors: number;
  tables: Record<string, { version: number | null; rows: number; healthy: boolean }>;
  kafka: KafkaHealthSnapshot;
}

/** The Kafka side of `/health`. */
export interface KafkaHealthSnapshot {
  /** False from `kafkaFailed()` until `kafkaRecovered()`; true otherwise. */
  healthy: boolean;
  /** True once the consumer reported itself in its group (`kafkaRecovered()`), until `kafkaFailed()`. */
  connected: boolean;
  /** When the current state (connected, or failing) began. */
  since: string | null;
  /** The last Kafka error reported (kept after recovery). */
  lastError: string | null;
  /** Outages seen (transitions to failing). */
  outages: number;
}

export class PipelineMonitor {
  readonly registry = new Registry();
  readonly recordsIn: Counter<'topic'>;
  readonly recordsWritten: Counter<'table'>;
  readonly recordsSkipped: Counter<'table'>;
  readonly dlqRecords: Counter<'topic' | 'error_type'>;
  readonly batchRows: Histogram<'table'>;
  readonly writeSeconds: Histogram<'table'>;
  readonly writeErrors: Counter<'table'>;
  readonly tableVersion: Gauge<'table'>;
  readonly consumerLag: Gauge<'topic' | 'partition'>;
  readonly inFlight: Gauge<'kind'>;
  readonly committedOffset: Gauge<'topic' | 'partition'>;
  readonly kafkaConnected: Gauge;
  readonly kafkaOutages: Counter;

  private ready = false;
  private readonly tables = new Map<string, { version: number | null; rows: number; healthy: boolean }>();
  private lastWriteAt: number | null = null;
  private lastErrorAt: number | null = null;
  private lastError: string | null = null;
  private written = 0;
  private dlq = 0;
  private errors = 0;
  private readonly kafka = { healthy: true, connected: false, since: null as number | null, lastError: null as string | null, outages: 0 };

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'rxlake_' });
    this.recordsIn = new Counter({ name: 'rxlake_records_in_total', help: 'Records read from Kafka', labelNames: ['topic'], registers });
    this.recordsWritten = new Counter({ name: 'rxlake_records_written_total', help: 'Rows committed to a table', labelNames: ['table'], registers });
    this.recordsSkipped = new Counter({ name: 'rxlake_records_skipped_total', help: 'Replayed rows skipped because the table already held them', labelNames: ['table'], registers });
    this.dlqRecords = new Counter({ name: 'rxlake_dlq_records_total', help: 'Records sent to a dead-letter table', labelNames: ['topic', 'error_type'], registers });
    this.batchRows = new Histogram({ name: 'rxlake_batch_rows', help: 'Rows per committed batch', labelNames: ['table'], buckets: [1, 10, 100, 1000, 10_000, 100_000, 1_000_000], registers });
    this.writeSeconds = new Histogram({ name: 'rxlake_write_seconds', help: 'Time to write and commit one batch', labelNames: ['table'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers });
    this.writeErrors = new Counter({ name: 'rxlake_write_errors_total', help: 'Failed write attempts (retried)', labelNames: ['table'], registers });
    this.tableVersion = new Gauge({ name: 'rxlake_table_version', help: 'Latest Delta version committed by this process', labelNames: ['table'], registers });
    this.consumerLag = new Gauge({ name: 'rxlake_consumer_lag', help: 'High-water mark minus committed offset', labelNames: ['topic', 'partition'], registers });
    this.committedOffset = new Gauge({ name: 'rxlake_committed_offset', help: 'Last committed Kafka offset (next to read)', labelNames: ['topic', 'partition'], registers });
    this.inFlight = new Gauge({ name: 'rxlake_in_flight', help: 'Records/bytes read but not yet acknowledged by a sink', labelNames: ['kind'], registers });
    this.kafkaConnected = new Gauge({ name: 'rxlake_kafka_connected', help: '1 while the consumer is in its group and reaches Kafka, else 0', registers });
    this.kafkaOutages = new Counter({ name: 'rxlake_kafka_outages_total', help: 'Times Kafka became unreachable (the job retries and recovers by itself)', registers });
  }

  setReady(ready: boolean): void {
    this.ready = ready;
  }

  registerTable(table: string, version: number | null): void {
    this.tables.set(table, { version, rows: 0, healthy: true });
    if (version !== null) this.tableVersion.set({ table }, version);
  }

  /** A batch became durable. */
  writeSucceeded(ack: SinkAck, deadLetter = false): void {
    const t = this.tables.get(ack.table) ?? { version: null, rows: 0, healthy: true };
    t.healthy = true;
    t.rows += ack.rows;
    if (ack.version !== null) {
      t.version = ack.version;
      this.tableVersion.set({ table: ack.table }, ack.version);
    }
    this.tables.set(ack.table, t);
    this.lastWriteAt = Date.now();
    if (deadLetter) this.dlq += ack.rows;
    else this.written += ack.rows;
    this.recordsWritten.inc({ table: ack.table }, ack.rows);
    if (ack.skipped > 0) this.recordsSkipped.inc({ table: ack.table }, ack.skipped);
    this.batchRows.observe({ table: ack.table }, ack.rows + ack.skipped);
    this.writeSeconds.observe({ table: ack.table }, ack.durationMs / 1000);
  }

  /** A write attempt failed (it will be retried): unhealthy until that table's next success. */
  writeFailed(table: string, err: Error): void {
    const t = this.tables.get(table) ?? { version: null, rows: 0, healthy: true };
    t.healthy = false;
    this.tables.set(table, t);
    this.errors += 1;
    this.lastErrorAt = Date.now();
    this.lastError = `${table}: ${redact(err.message)}`;
    this.writeErrors.inc({ table });
  }

  /** Kafka cannot be reached (the source retries with backoff): unhealthy until `kafkaRecovered()`. */
  kafkaFailed(err: Error): void {
    const now = Date.now();
    if (this.kafka.healthy || this.kafka.connected) {
      this.kafka.outages += 1;
      this.kafka.since = now;
      this.kafkaOutages.inc();
    }
    this.kafka.healthy = false;
    this.kafka.connected = false;
    const message = redact(err.message);
    this.kafka.lastError = message;
    this.lastErrorAt = now;
    this.lastError = `kafka: ${message}`;
    this.kafkaConnected.set(0);
  }

  /** The consumer is (back) in its group. */
  kafkaRecovered(): void {
    if (!this.kafka.healthy || !this.kafka.connected) this.kafka.since = Date.now();
    this.kafka.healthy = true;
    this.kafka.connected = true;
    this.kafkaConnected.set(1);
  }

  healthy(): boolean {
    if (!this.kafka.healthy) return false;
    for (const t of this.tables.values()) if (!t.healthy) return false;
    return true;
  }

  snapshot(): HealthSnapshot {
    const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
    return {
      status: this.healthy() ? 'healthy' : 'unhealthy',
      ready: this.ready,
      lastWriteAt: iso(this.lastWriteAt),
      lastErrorAt: iso(this.lastErrorAt),
      lastError: this.lastError,
      recordsWritten: this.written,
      dlqRecords: this.dlq,
      errors: this.errors,
      tables: Object.fromEntries(this.tables),
      kafka: {
        healthy: this.kafka.healthy,
        connected: this.kafka.connected,
        since: iso(this.kafka.since),
        lastError: this.kafka.lastError,
        outages: this.kafka.outages,
      },
    };
  }

  /** Starts the HTTP server; resolves with the bound port. */
  async listen(port: number, host = '127.0.0.1'): Promise<{ server: Server; port: number }> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/health') {
        const body = this.snapshot();
        res.writeHead(body.status === 'healthy' ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      } else if (path === '/ready') {
        res.writeHead(this.ready ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ready: this.ready }));
      } else if (path === '/metrics') {
        this.registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': this.registry.contentType });
            res.end(text);
          },
          (err: unknown) => {
            res.writeHead(500, { 'content-type': 'text/plain' });
            res.end(String(err));
          },
        );
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found: try /health, /ready or /metrics\n');
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    server.unref();
    return { server, port: (server.address() as AddressInfo).port };
  }
}

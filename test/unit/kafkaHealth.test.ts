/**
 * Broker-outage building blocks without services: which kafkajs errors are waited out (and
 * which still stop the stream), and how the monitor's /health reports Kafka.
 */
import {
  KafkaJSConnectionError,
  KafkaJSGroupCoordinatorNotFound,
  KafkaJSNonRetriableError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
  KafkaJSRequestTimeoutError,
  KafkaJSSASLAuthenticationError,
} from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import type { Server } from 'node:http';
import { isRetriable } from '../../src/core/errors.ts';
import { registerSecret, silentLogger } from '../../src/core/logger.ts';
import { isRetriableKafkaError } from '../../src/sources/fromKafka.ts';
import { ConnectionHealth } from '../../src/sources/kafka/health.ts';
import type { KafkaHealth } from '../../src/sources/kafka/health.ts';
import { PipelineMonitor } from '../../src/runtime/monitor.ts';
import { FakeClock, captureLogger } from './kafkaFakes.ts';

/** kafkajs' typings declare some error constructors without the message they take. */
function withMessage(cls: unknown, message: string): Error {
  return new (cls as new (message: string) => Error)(message);
}

/** A protocol error as kafkajs builds it from a broker error code. */
function protocolError(type: string, code: number, retriable: boolean): KafkaJSProtocolError {
  return new KafkaJSProtocolError({ type, code, retriable, message: type } as unknown as Error);
}

describe('isRetriable on Kafka errors', () => {
  it('is what the deprecated isRetriableKafkaError still names', () => {
    expect(isRetriableKafkaError).toBe(isRetriable);
  });

  it('waits out a broker that is away: refused or lost connections, timeouts, kafkajs giving up on them', () => {
    const refused = new KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:9092');
    expect(isRetriable(refused)).toBe(true);
    // What a crash reports after kafkajs' own retries: a non-retriable wrapper of the outage.
    expect(isRetriable(new KafkaJSNumberOfRetriesExceeded(refused, { retryCount: 5, retryTime: 1000 }))).toBe(true);
    expect(isRetriable(new KafkaJSNonRetriableError(refused))).toBe(false); // no cause given: nothing to go by
    expect(isRetriable(new KafkaJSRequestTimeoutError('Request Fetch(key: 1, version: 11) timed out'))).toBe(true);
    expect(isRetriable(withMessage(KafkaJSGroupCoordinatorNotFound, 'Failed to find group coordinator'))).toBe(true);
    expect(isRetriable(protocolError('COORDINATOR_LOAD_IN_PROGRESS', 14, true))).toBe(true);
    expect(isRetriable(protocolError('LEADER_NOT_AVAILABLE', 5, true))).toBe(true);
    expect(isRetriable(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe(true);
  });

  it('does not wait out authentication, authorization or errors that are not kafkajs ones', () => {
    const auth = withMessage(KafkaJSSASLAuthenticationError, 'SASL SCRAM SHA256 authentication failed');
    expect(isRetriable(auth)).toBe(false);
    expect(isRetriable(new KafkaJSNumberOfRetriesExceeded(auth, { retryCount: 1, retryTime: 50 }))).toBe(false);
    expect(isRetriable(protocolError('TOPIC_AUTHORIZATION_FAILED', 29, false))).toBe(false);
    expect(isRetriable(protocolError('GROUP_AUTHORIZATION_FAILED', 30, false))).toBe(false);
    expect(isRetriable(new TypeError('x is undefined'))).toBe(false);
    expect(isRetriable(new Error('boom'))).toBe(false);
    expect(isRetriable('ECONNREFUSED')).toBe(false);
    expect(isRetriable(undefined)).toBe(false);
  });
});

describe('ConnectionHealth', () => {
  it('reports each change once: up on joining, down with the (redacted) reason, again when the reason changes, up when back', async () => {
    const clock = new FakeClock();
    const changes: KafkaHealth[] = [];
    const lines: string[] = [];
    registerSecret('pw-health-secret');
    const health = new ConnectionHealth({ groupId: 'g', clock, log: captureLogger(lines), onChange: (h) => changes.push(h) });
    expect(health.snapshot()).toEqual({ connected: false });
    const t0 = clock.now();
    health.up();
    health.up();
    expect(changes).toEqual([{ connected: true, since: t0 }]);
    await clock.advance(1_000);
    health.markDown('ECONNREFUSED pw-health-secret');
    health.markDown('ECONNREFUSED pw-health-secret');
    await clock.advance(2_000);
    health.markDown('no coordinator');
    expect(changes.slice(1)).toEqual([
      { connected: false, lastError: 'ECONNREFUSED ***', since: t0 + 1_000 },
      { connected: false, lastError: 'no coordinator', since: t0 + 1_000 },
    ]);
    health.up();
    expect(changes.at(-1)).toEqual({ connected: true, lastError: 'no coordinator', since: t0 + 3_000 });
    expect(lines).toEqual([
      'warn Kafka unreachable: retrying with backoff {"groupId":"g","reason":"ECONNREFUSED ***"}',
      'warn Kafka reachable again: consumer back in its group {"groupId":"g","downMs":2000}',
    ]);
  });

  it('logs an outage at ERROR once it has lasted alertAfterMs, once per outage', async () => {
    const clock = new FakeClock();
    const lines: string[] = [];
    const health = new ConnectionHealth({ groupId: 'g', clock, log: captureLogger(lines), alertAfterMs: 30_000 });
    health.up();
    health.markDown('ECONNREFUSED');
    await clock.advance(29_999);
    health.tick();
    expect(lines.filter((l) => l.startsWith('error'))).toEqual([]);
    await clock.advance(1);
    health.tick();
    health.tick();
    expect(lines.filter((l) => l.startsWith('error'))).toEqual(['error Kafka unreachable for 30 s: the consumer keeps retrying; check that the brokers run and are reachable from here {"groupId":"g","reason":"ECONNREFUSED","downMs":30000}']);
    health.up();
    health.markDown('ECONNRESET');
    await clock.advance(30_000);
    health.tick();
    expect(lines.filter((l) => l.startsWith('error'))).toHaveLength(2);
    // Not down: nothing to say.
    health.up();
    await clock.advance(60_000);
    health.tick();
    expect(lines.filter((l) => l.startsWith('error'))).toHaveLength(2);
  });

  it('names a stall only while connected and unanswered for the stall time, with the client\'s last error line', async () => {
    const clock = new FakeClock();
    const health = new ConnectionHealth({ groupId: 'g', clock, log: silentLogger });
    health.contact();
    expect(health.stalled(5_000)).toBeUndefined(); // not connected
    health.up();
    await clock.advance(4_999);
    expect(health.stalled(5_000)).toBeUndefined();
    await clock.advance(1);
    expect(health.stalled(5_000)).toBe('no answer from Kafka for 5 s');
    health.clientError('Connection error: connect ECONNREFUSED');
    expect(health.stalled(5_000)).toBe('no answer from Kafka for 5 s (last client error: Connection error: connect ECONNREFUSED)');
    health.contact();
    expect(health.stalled(5_000)).toBeUndefined();
    // A throwing listener is logged, not thrown.
    const lines: string[] = [];
    const h2 = new ConnectionHealth({ groupId: 'g', clock, log: captureLogger(lines), onChange: () => { throw new Error('listener bug'); } });
    h2.up();
    expect(lines.map((l) => l.slice(0, l.indexOf(' {')))).toEqual(['warn onHealthChange threw']);
  });
});

describe('PipelineMonitor and Kafka', () => {
  let server: Server | undefined;
  afterEach(() => {
    server?.close();
    server = undefined;
  });

  async function health(port: number): Promise<{ status: number; body: Record<string, unknown> & { kafka: Record<string, unknown> } }> {
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> & { kafka: Record<string, unknown> } };
  }

  it('answers 503 naming Kafka from kafkaFailed() until kafkaRecovered(), counting one outage per episode', async () => {
    const monitor = new PipelineMonitor();
    monitor.registerTable('bronze_trips', null);
    const listening = await monitor.listen(0);
    server = listening.server;
    const { port } = listening;

    const start = await health(port);
    expect(start.status).toBe(200);
    expect(start.body.kafka).toMatchObject({ healthy: true, connected: false, outages: 0, lastError: null });

    monitor.kafkaRecovered();
    expect((await health(port)).body.kafka).toMatchObject({ healthy: true, connected: true, outages: 0 });

    monitor.kafkaFailed(new Error('no answer from Kafka for 6 s'));
    monitor.kafkaFailed(new Error('KafkaJSNumberOfRetriesExceeded: Connection error: connect ECONNREFUSED 127.0.0.1:9092'));
    const during = await health(port);
    expect(during.status).toBe(503);
    expect(during.body.status).toBe('unhealthy');
    expect(during.body.lastError).toBe('kafka: KafkaJSNumberOfRetriesExceeded: Connection error: connect ECONNREFUSED 127.0.0.1:9092');
    expect(during.body.kafka).toMatchObject({ healthy: false, connected: false, outages: 1 });
    expect(typeof during.body.kafka.since).toBe('string');
    // A failed Kafka connection is no failed write.
    expect(during.body.errors).toBe(0);
    let metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/rxlake_kafka_connected 0/);
    expect(metrics).toMatch(/rxlake_kafka_outages_total 1/);

    monitor.kafkaRecovered();
    const after = await health(port);
    expect(after.status).toBe(200);
    expect(after.body.kafka).toMatchObject({ healthy: true, connected: true, outages: 1 });
    expect(after.body.kafka.lastError).toContain('ECONNREFUSED');

    monitor.kafkaFailed(new Error('again'));
    expect((await health(port)).body.kafka).toMatchObject({ outages: 2 });
    metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/rxlake_kafka_outages_total 2/);
  });

  it('stays 503 while Kafka is away even after a successful write, and while a table fails after Kafka recovered', () => {
    const monitor = new PipelineMonitor();
    monitor.registerTable('bronze_trips', null);
    monitor.kafkaRecovered();
    monitor.kafkaFailed(new Error('gone'));
    monitor.writeSucceeded({ table: 'bronze_trips', version: 1, rows: 3, skipped: 0, bytes: 10, durationMs: 5, refs: [] });
    expect(monitor.healthy()).toBe(false);
    monitor.writeFailed('bronze_trips', new Error('S3 down'));
    monitor.kafkaRecovered();
    expect(monitor.healthy()).toBe(false);
    monitor.writeSucceeded({ table: 'bronze_trips', version: 2, rows: 3, skipped: 0, bytes: 10, durationMs: 5, refs: [] });
    expect(monitor.healthy()).toBe(true);
  });
});

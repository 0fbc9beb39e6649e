/**
 * Broker outage: the bronze job runs in-process while its Kafka broker — one of this test's own
 * (test/support/broker.ts), so no other test file sees the outage — is stopped for about 12 s
 * and started again on the same log dir and port. `/health` turns 503 with a
 * reason naming Kafka while the broker is away and back to 200 after; the job does not exit; the
 * offsets of records written before, during and after the outage are committed once the group
 * is back; every record produced lands exactly once (delta-rs).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { startBronze } from '../../src/pipelines/bronze.ts';
import type { BronzeRun } from '../../src/pipelines/bronze.ts';
import { loadBronzeConfig } from '../../src/pipelines/bronze/config.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { generateEvents } from '../../src/pipelines/rideshare/generate.ts';
import { TestBroker, disposeBrokers } from '../support/broker.ts';
import { stack, uniqueName, verifyDelta } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';

const OUTAGE_MS = 12_000;

/** The stack's own readiness probe (a metadata request, no retries) answers on `brokers`. */
function brokerAnswers(brokers: readonly string[]): Promise<boolean> {
  const probe = join(stack.root, 'scripts', 'stack', 'kafka-ready.js');
  return new Promise((resolve) => {
    execFile(process.execPath, [probe, brokers[0] ?? ''], { cwd: stack.root, timeout: 10_000 }, (err) => resolve(err === null));
  });
}

/** The group's committed offsets, summed over the topic's partitions, and the topic's end. */
async function committedAndEnd(brokers: readonly string[], topic: string, groupId: string): Promise<{ committed: bigint; end: bigint }> {
  const kafka = new Kafka({ brokers: [...brokers], clientId: 'outage-check', logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const ends = await admin.fetchTopicOffsets(topic);
    let committed = 0n;
    for (const p of offsets?.partitions ?? []) committed += BigInt(p.offset) > 0n ? BigInt(p.offset) : 0n;
    let end = 0n;
    for (const p of ends) end += BigInt(p.high);
    return { committed, end };
  } finally {
    await admin.disconnect();
  }
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

interface HealthBody {
  status: string;
  lastError: string | null;
  kafka?: { healthy: boolean; connected: boolean; lastError: string | null; since: string | null; outages: number };
}

afterAll(disposeBrokers, 120_000);

describe('bronze job during a Kafka broker outage', () => {
  it('reports 503 naming Kafka while the broker is down, recovers by itself, loses and duplicates nothing', async () => {
    const broker = await TestBroker.create();
    await broker.start();
    const { brokers } = broker;
    const dir = await mkdtemp(join(tmpdir(), 'rxlake-outage-'));
    const prefix = `${uniqueName('out')}.`;
    const groupId = uniqueName('bronze-outage');
    const kafkaTopic = `${prefix}ratings`;
    const first = await generateEvents({ brokers, topicPrefix: prefix, topics: ['ratings'], count: 200, partitions: 2, seed: 11 });
    let produced = first.topics.ratings?.produced ?? 0;
    const config = loadBronzeConfig({
      KAFKA_BOOTSTRAP_SERVERS: brokers.join(','),
      KAFKA_TOPIC_PREFIX: prefix,
      KAFKA_CONSUMER_GROUP: groupId,
      KAFKA_SESSION_TIMEOUT_SECONDS: '6',
      BRONZE_TOPICS: 'ratings',
      DELTA_BASE_PATH: dir,
      // Long enough that the first batch is usually written while the broker is down (its
      // offsets are then committed only once the group is back), short enough for a fast test.
      BATCH_INTERVAL_SECONDS: '8',
      HTTP_PORT: '0',
      PROGRESS_INTERVAL_SECONDS: '0',
      LOG_LEVEL: 'error',
    });
    let bronze: BronzeRun | undefined;
    /** What the job logs at ERROR: nothing, for an outage shorter than a minute (it needs no person). */
    const errorLines: string[] = [];
    let exited: string | undefined;
    try {
      bronze = await startBronze({ config, log: createLogger('error', (line) => errorLines.push(line)) });
      const job = bronze;
      job.done.then(
        () => {
          exited = 'completed';
        },
        (err: unknown) => {
          exited = `failed: ${err instanceof Error ? err.message : String(err)}`;
        },
      );
      const port = job.httpPort ?? 0;
      await waitFor('first records read', () => job.source.stats().inFlightRecords + job.monitor.snapshot().recordsWritten === produced);
      const healthy = JSON.parse((await get(port, '/health')).body) as HealthBody;
      expect(healthy.status).toBe('healthy');
      expect(healthy.kafka?.connected).toBe(true);

      // Outage.
      await broker.stop('SIGTERM');
      expect(await brokerAnswers(brokers)).toBe(false);
      const downAt = Date.now();
      const writtenBeforeOutage = job.monitor.snapshot().recordsWritten;
      const seen: number[] = [];
      let unhealthy: HealthBody | undefined;
      let unhealthyAfterMs = -1;
      while (Date.now() - downAt < OUTAGE_MS || (unhealthy === undefined && Date.now() - downAt < 30_000)) {
        const h = await get(port, '/health');
        seen.push(h.status);
        if (h.status === 503 && unhealthy === undefined) {
          unhealthy = JSON.parse(h.body) as HealthBody;
          unhealthyAfterMs = Date.now() - downAt;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(exited).toBeUndefined();
      expect(unhealthy, `statuses seen during the outage: ${seen.join(',')}`).toBeDefined();
      expect(unhealthy?.status).toBe('unhealthy');
      expect(unhealthy?.lastError ?? '').toMatch(/kafka/i);
      expect(unhealthy?.kafka?.connected).toBe(false);
      // Once unhealthy, it stays so while the broker is away.
      expect(seen.slice(seen.indexOf(503))).not.toContain(200);
      const writtenDuringOutage = job.monitor.snapshot().recordsWritten - writtenBeforeOutage;
      console.log(
        `first 503 ${unhealthyAfterMs} ms after the broker stopped (${unhealthy?.lastError ?? ''}); records written before the outage ${writtenBeforeOutage}, during it ${writtenDuringOutage}`,
      );

      await broker.start();
      const second = await generateEvents({ brokers, topicPrefix: prefix, topics: ['ratings'], count: 300, seed: 12 });
      produced += second.topics.ratings?.produced ?? 0;

      await waitFor('200 after recovery', async () => (await get(port, '/health')).status === 200, 90_000);
      await waitFor('all records written', () => job.monitor.snapshot().recordsWritten >= produced, 90_000);
      await waitFor('all offsets committed after the outage', async () => {
        const c = await committedAndEnd(brokers, kafkaTopic, groupId);
        return c.committed === c.end;
      }, 90_000);
      const after = JSON.parse((await get(port, '/health')).body) as HealthBody;
      expect(after.status).toBe('healthy');
      expect(after.kafka?.connected).toBe(true);
      expect(after.kafka?.outages).toBeGreaterThanOrEqual(1);
      const metrics = (await get(port, '/metrics')).body;
      expect(metrics).toMatch(/rxlake_kafka_outages_total [1-9]/);
      expect(metrics).toMatch(/rxlake_kafka_connected 1/);
      expect(exited).toBeUndefined();
      // The outage lasted less than a minute and ended by itself: warnings, no ERROR line.
      expect(errorLines, errorLines.join('')).toEqual([]);
    } finally {
      // A failure during the outage: the broker back first, so the job can leave its group.
      if (!broker.running) await broker.start().catch(() => undefined);
      if (bronze) {
        bronze.stop();
        await bronze.done.catch(() => undefined);
      }
    }
    expect(exited).toBe('completed');
    const table = await verifyDelta(join(dir, 'bronze_ratings'), { rows: true, columns: ['_kafka_offset', '_kafka_partition'] });
    const keys = (table.rows ?? []).map((r) => `${String(r._kafka_partition)}:${String(r._kafka_offset)}`);
    expect(produced).toBe(500);
    // Every record the topic holds, once. The generator's producer is not idempotent: when the
    // restarted broker fails part of a produce request ("not the leader"), kafkajs sends all of
    // it again, so the topic can hold more records than were acknowledged (665 for 500 seen once).
    const { end } = await committedAndEnd(brokers, kafkaTopic, groupId);
    expect(end).toBeGreaterThanOrEqual(BigInt(produced));
    expect(keys.length).toBe(Number(end));
    expect(new Set(keys).size).toBe(keys.length);
    await rm(dir, { recursive: true, force: true });
  }, 300_000);
});

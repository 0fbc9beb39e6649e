/**
 * Poison records through the bronze job on the real stack: JSON nested 50,000 and 100,000
 * levels deep (which once stopped every topic with a stack overflow), a producer timestamp no
 * Delta timestamp holds, and the seeded hostile corpus of the fuzz suite — on real Kafka
 * topics, between valid events. Every record lands in exactly one table with the error type an
 * independent classification names, the records behind the poison ones are ingested, and the
 * other topics are untouched. Read back by delta-rs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import type { Producer } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { startBronze } from '../../src/pipelines/bronze.ts';
import { bronzeCodecs } from '../../src/pipelines/rideshare/codecs.ts';
import type { BronzeTopic } from '../../src/pipelines/rideshare/topics.ts';
import { loadBronzeConfig } from '../../src/pipelines/bronze/config.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { createEventGenerator } from '../../src/pipelines/rideshare/events.ts';
import { stack, uniqueName, verifyDelta } from '../support/stack.ts';
import { createTopicsReady } from '../support/topics.ts';
import { expectedRoute, hostileCases } from '../unit/hostilePayloads.ts';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** Under the broker's 1 MB message limit, over the largest hostile case that is not meant to be oversized. */
const MAX_PAYLOAD_BYTES = 700_000;

interface Produced {
  readonly offset: string;
  readonly value: Buffer | null;
  readonly expected: string;
  readonly name: string;
}

/** Sends one record at a time (large ones must not share a request) to partition 0; returns their offsets. */
async function produce(producer: Producer, topic: string, values: readonly { name: string; value: Uint8Array | null; timestamp?: string }[], codec: BronzeTopic): Promise<Produced[]> {
  const out: Produced[] = [];
  for (const v of values) {
    const value = v.value === null ? null : Buffer.from(v.value.buffer, v.value.byteOffset, v.value.byteLength);
    const [meta] = await producer.send({ topic, acks: -1, messages: [{ partition: 0, value, ...(v.timestamp === undefined ? {} : { timestamp: v.timestamp }) }] });
    out.push({ offset: String(meta?.baseOffset), value, expected: expectedRoute(bronzeCodecs[codec], v.value, MAX_PAYLOAD_BYTES), name: v.name });
  }
  return out;
}

describe('bronze job: poison records', () => {
  it('dead-letters 50,000- and 100,000-deep JSON and every hostile record, ingests the records behind them, other topics untouched', async () => {
    const prefix = `${uniqueName('poison')}.`;
    const topics: BronzeTopic[] = ['gps_pings', 'trips', 'driver_status'];
    const kafka = new Kafka({ brokers: [...stack.kafkaBrokers], clientId: 'poison-test', logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await createTopicsReady(admin, topics.map((t) => ({ topic: `${prefix}${t}`, numPartitions: 1 })));
    await admin.disconnect();

    const enc = new TextEncoder();
    const gen = createEventGenerator({ seed: 19 });
    const valid = (topic: BronzeTopic, n: number) => Array.from({ length: n }, () => ({ name: 'valid', value: enc.encode(JSON.stringify(gen.next(topic).value)) }));
    const deepArray = '['.repeat(50_000) + ']'.repeat(50_000);
    const deepObject = '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000);
    const ping = JSON.stringify(gen.next('gps_pings').value);
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    let produced: Record<string, Produced[]>;
    try {
      produced = {
        // The records, valid events behind each, and a producer timestamp of 9e18 ms.
        gps_pings: await produce(
          producer,
          `${prefix}gps_pings`,
          [
            ...valid('gps_pings', 10),
            { name: 'arrays 50,000 deep', value: enc.encode(deepArray) },
            ...valid('gps_pings', 10),
            { name: 'objects 100,000 deep', value: enc.encode(deepObject) },
            ...valid('gps_pings', 10),
            { name: 'location 50,000 deep', value: enc.encode(`${ping.slice(0, -1)},"location":${deepArray}}`) },
            { name: 'valid, timestamp 9e18 ms', value: enc.encode(ping), timestamp: '9000000000000000000' },
            ...valid('gps_pings', 10),
          ],
          'gps_pings',
        ),
        trips: await produce(producer, `${prefix}trips`, [...valid('trips', 15), { name: 'arrays 50,000 deep', value: enc.encode(deepArray) }, ...valid('trips', 15)], 'trips'),
        // The fuzz suite's hostile corpus, produced for real.
        driver_status: await produce(
          producer,
          `${prefix}driver_status`,
          hostileCases(() => gen.next('driver_status').value, 23, { maxPayloadBytes: MAX_PAYLOAD_BYTES, random: 30 }),
          'driver_status',
        ),
      };
    } finally {
      await producer.disconnect();
    }

    const base = await mkdtemp(join(tmpdir(), 'rxlake-poison-'));
    dirs.push(base);
    const config = loadBronzeConfig({
      ...stack.jobEnv,
      KAFKA_TOPIC_PREFIX: prefix,
      KAFKA_CONSUMER_GROUP: uniqueName('bronze'),
      BRONZE_TOPICS: topics.join(','),
      DELTA_BASE_PATH: base,
      MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD_BYTES),
      BATCH_INTERVAL_SECONDS: '0.5',
      HTTP_PORT: '0',
      PROGRESS_INTERVAL_SECONDS: '0',
      LOG_LEVEL: 'warn',
    });
    const run = await startBronze({ config, untilCaughtUp: true, log: createLogger('warn') });
    const summary = await run.done;
    const total = Object.values(produced).reduce((n, p) => n + p.length, 0);
    expect(summary.recordsWritten + summary.deadLetters).toBe(total);

    for (const topic of topics) {
      const records = produced[topic] ?? [];
      const [bronze, dlq] = await Promise.all([
        verifyDelta(`${base}/bronze_${topic}`, { rows: true, columns: ['_kafka_offset', '_kafka_timestamp', '_raw_value'] }),
        verifyDelta(`${base}/dlq_bronze_${topic}`, { rows: true, columns: ['_kafka_offset', 'error_type', 'error_message', 'original_payload_bytes'] }),
      ]);
      const where = new Map<string, Record<string, unknown>[]>();
      for (const r of [...(bronze.rows ?? []), ...(dlq.rows ?? [])]) where.set(String(r._kafka_offset), [...(where.get(String(r._kafka_offset)) ?? []), r]);
      expect(where.size, topic).toBe(records.length);
      for (const p of records) {
        const rows = where.get(p.offset) ?? [];
        expect(rows, `${topic}@${p.offset} (${p.name})`).toHaveLength(1);
        const row = rows[0] as Record<string, unknown>;
        expect('error_type' in row ? row.error_type : 'OK', `${topic}@${p.offset} (${p.name})`).toBe(p.expected);
        if ('error_type' in row) {
          const bytes = row.original_payload_bytes as { base64: string } | null;
          expect(bytes === null ? null : Buffer.from(bytes.base64, 'base64').equals(p.value as Buffer), `${topic}@${p.offset} bytes`).toBe(p.value === null ? null : true);
          expect(String(row.error_message).length).toBeLessThanOrEqual(2048);
        } else {
          expect(row._raw_value).toBe(p.value?.toString('utf8'));
        }
      }
    }

    // The records: dead letters of their own type; everything valid behind them ingested.
    const pings = produced.gps_pings ?? [];
    expect(pings.filter((p) => p.expected === 'NESTING_TOO_DEEP').map((p) => p.name)).toEqual(['arrays 50,000 deep', 'objects 100,000 deep', 'location 50,000 deep']);
    expect(pings.filter((p) => p.expected === 'OK')).toHaveLength(41);
    const stamped = pings.find((p) => p.name === 'valid, timestamp 9e18 ms') as Produced;
    const bronzePings = await verifyDelta(`${base}/bronze_gps_pings`, { rows: true, columns: ['_kafka_offset', '_kafka_timestamp'] });
    // No int64 of µs holds 9e18 ms: it reads as Kafka's "no timestamp", -1 ms.
    expect(bronzePings.rows?.find((r) => String(r._kafka_offset) === stamped.offset)?._kafka_timestamp).toBe('1969-12-31T23:59:59.999000Z');
    const corpus = produced.driver_status ?? [];
    const types = new Set(corpus.map((p) => p.expected));
    for (const type of ['OK', 'NESTING_TOO_DEEP', 'ENCODING_ERROR', 'JSON_PARSE_ERROR', 'SCHEMA_VALIDATION_ERROR', 'OVERSIZED_PAYLOAD', 'NULL_VALUE']) expect(types.has(type), type).toBe(true);
  }, 180_000);
});

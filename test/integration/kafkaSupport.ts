/**
 * Helpers for the Kafka source's integration tests: topics and records on the real broker,
 * and an in-process sink stand-in that acknowledges batches after a delay.
 */
import { Kafka, logLevel } from 'kafkajs';
import type { Admin } from 'kafkajs';
import { concatMap, lastValueFrom, map, timer, toArray } from 'rxjs';
import type { OperatorFunction } from 'rxjs';
import { bufferTime } from '../../src/operators/bufferTime.ts';
import { commitOffsets } from '../../src/operators/commitOffsets.ts';
import { fromKafka, kafkajsClient, wireClient } from '../../src/sources/fromKafka.ts';
import type { FromKafkaOptions } from '../../src/sources/fromKafka.ts';
import type { KafkaRecord, SinkAck } from '../../src/types.ts';
import { stack } from '../support/stack.ts';
import { createTopicsReady } from '../support/topics.ts';

export const kafka = new Kafka({ brokers: [...stack.kafkaBrokers], clientId: 'rxlake-test', logLevel: logLevel.ERROR });

/** Consumer settings that make group joins and rebalances quick on a local broker. */
/**
 * The source's Kafka clients, for `describe.each(sourceClients)('… (client $name)', ({ client }) => …)`:
 * the source's tests run with kafkajs and with the wire client (the jobs' default).
 */
export const sourceClients = [
  { name: 'kafkajs', client: kafkajsClient() },
  { name: 'wire', client: wireClient() },
] as const;

export const fastGroup = {
  sessionTimeout: 6_000,
  rebalanceTimeout: 6_000,
  heartbeatInterval: 500,
  maxWaitTimeInMs: 200,
  retry: { retries: 2, initialRetryTime: 100 },
} as const;

export async function withAdmin<T>(fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

export async function createTopic(topic: string, partitions: number): Promise<void> {
  await withAdmin(async (admin) => {
    await createTopicsReady(admin, [{ topic, numPartitions: partitions, replicationFactor: 1 }]);
  });
}

/** Produces `count` records spread round-robin over `partitions`; value = JSON `{ "i": n }`. */
export async function produce(topic: string, count: number, partitions: number, first = 0): Promise<void> {
  // Idempotent: a send retried on a young topic's "not the leader" answer must not write its records twice.
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const chunk = 5_000;
    for (let start = first; start < first + count; start += chunk) {
      const end = Math.min(first + count, start + chunk);
      const byPartition = new Map<number, Array<{ key: string; value: string }>>();
      for (let i = start; i < end; i++) {
        const p = i % partitions;
        let list = byPartition.get(p);
        if (!list) byPartition.set(p, (list = []));
        list.push({ key: `k${i}`, value: JSON.stringify({ i }) });
      }
      await producer.sendBatch({
        acks: -1,
        topicMessages: [...byPartition].map(([partition, messages]) => ({
          topic,
          messages: messages.map((m) => ({ ...m, partition })),
        })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

/** The group's committed offsets per partition (-1 = none). */
export async function committedOffsets(groupId: string, topic: string): Promise<Map<number, bigint>> {
  return withAdmin(async (admin) => {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map((t?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
  });
}

/** End offsets (high-water marks) per partition. */
export async function endOffsets(topic: string): Promise<Map<number, bigint>> {
  return withAdmin(async (admin) => {
    const offsets = await admin.fetchTopicOffsets(topic);
    return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
  });
}

/**
 * A sink stand-in: "writes" each batch by recording it (after `delayMs`), then acknowledges
 * every record of the batch. `hold` returns true for records it must never acknowledge (a
 * sink that did not make them durable): they are left out of the batch's ack, the rest of the
 * batch is acknowledged.
 */
export function recordingSink(
  seen: (records: readonly KafkaRecord[]) => void,
  options: { delayMs?: number; hold?: (r: KafkaRecord) => boolean } = {},
): OperatorFunction<readonly KafkaRecord[], SinkAck> {
  const { delayMs = 0, hold } = options;
  return concatMap((batch: readonly KafkaRecord[]) => {
    const started = Date.now();
    return timer(delayMs).pipe(
      map((): SinkAck => {
        const durable = hold ? batch.filter((r) => !hold(r)) : batch;
        seen(durable);
        return {
          table: 'test',
          version: null,
          rows: durable.length,
          skipped: 0,
          bytes: durable.reduce((n, r) => n + r.size, 0),
          durationMs: Date.now() - started,
          refs: durable.map((r) => ({ topic: r.topic, partition: r.partition, offset: r.offset })),
        };
      }),
    );
  });
}

/** Polls `check` until it returns true; fails after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Reads to the end in bounded mode (`untilCaughtUp`, from the earliest offset unless
 * `options` say otherwise) through bufferTime → recordingSink → commitOffsets, and resolves
 * with every record delivered once the chain has completed (final commit included).
 */
export async function readBounded(options: Partial<FromKafkaOptions> & Pick<FromKafkaOptions, 'groupId' | 'topics'>): Promise<KafkaRecord[]> {
  const source = fromKafka({ brokers: stack.kafkaBrokers, startFrom: 'earliest', untilCaughtUp: true, consumer: fastGroup, ...options });
  const got: KafkaRecord[] = [];
  await lastValueFrom(
    source.records$.pipe(bufferTime({ timeSpan: 50 }), recordingSink((rs) => got.push(...rs)), commitOffsets(source), toArray()),
  );
  return got;
}

/** Plain kafkajs helpers for tests: read back what is in topics, independently of rxlake. */
import { Kafka, logLevel } from 'kafkajs';
import type { ConsumerConfig, EachMessagePayload } from 'kafkajs';
import { stack, uniqueName } from './stack.ts';

export interface ConsumedRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

export interface ConsumeOptions {
  /** Default the stack's broker. */
  readonly brokers?: readonly string[];
  /** Default 60 s. */
  readonly timeoutMs?: number;
  /** Consumer settings over the defaults (a fresh group, 10 s session, 1 s heartbeats). */
  readonly consumer?: Partial<ConsumerConfig>;
}

/**
 * Reads `topics` from their beginning with a fresh group (plain kafkajs, nothing of rxlake),
 * handing every message to `each`, until `done()` holds after one; rejects naming `progress()`
 * when that takes longer than the timeout.
 */
export async function consumeUntil(topics: readonly string[], each: (payload: EachMessagePayload) => void, done: () => boolean, progress: () => string, options: ConsumeOptions = {}): Promise<void> {
  const kafka = new Kafka({ brokers: [...(options.brokers ?? stack.kafkaBrokers)], clientId: 'test-reader', logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: uniqueName('reader'), sessionTimeout: 10_000, heartbeatInterval: 1_000, ...options.consumer });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [...topics], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${progress()} of ${topics.join(', ')}`)), options.timeoutMs ?? 60_000);
      consumer
        .run({
          autoCommit: false,
          eachMessage: (payload) => {
            each(payload);
            if (done()) {
              clearTimeout(timer);
              resolve();
            }
            return Promise.resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
}

/** Reads `topics` from the beginning with a fresh group until `expected` records arrived (60 s at most). */
export async function readTopics(topics: readonly string[], expected: number): Promise<ConsumedRecord[]> {
  const out: ConsumedRecord[] = [];
  await consumeUntil(
    topics,
    ({ topic, partition, message }) => out.push({ topic, partition, offset: message.offset, key: message.key, value: message.value }),
    () => out.length >= expected,
    () => `${out.length}/${expected} records`,
  );
  return out;
}

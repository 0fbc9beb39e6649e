/** Plain kafkajs helpers for tests: read back what is in topics, independently of rxlake. */
import { Kafka, logLevel } from 'kafkajs';
import { stack, uniqueName } from './stack.ts';

export interface ConsumedRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

/** Reads `topics` from the beginning with a fresh group until `expected` records arrived (60 s at most). */
export async function readTopics(topics: readonly string[], expected: number): Promise<ConsumedRecord[]> {
  const kafka = new Kafka({ brokers: [...stack.kafkaBrokers], clientId: 'test-reader', logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: uniqueName('reader'), sessionTimeout: 10_000, heartbeatInterval: 1_000 });
  const out: ConsumedRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [...topics], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${out.length}/${expected} records of ${topics.join(', ')}`)), 60_000);
      consumer
        .run({
          eachMessage: ({ topic, partition, message }) => {
            out.push({ topic, partition, offset: message.offset, key: message.key, value: message.value });
            if (out.length >= expected) {
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
  return out;
}

/**
 * The wire-level reader of the benchmarks (bench/clients/wire.ts) against kafkajs on the real
 * broker: the same records, byte for byte, at the same offsets — through compressed batches,
 * batches cut by small fetch sizes, a record larger than the fetch size, transaction markers
 * and aborted transactions.
 */
import { randomBytes } from 'node:crypto';
import { CompressionTypes, Kafka, logLevel } from 'kafkajs';
import type { IHeaders, Message } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { readTopic } from '../../bench/clients/wire.ts';
import type { ReadTopicOptions, WireRecord } from '../../bench/clients/wire.ts';
import { consumeUntil } from '../support/kafka.ts';
import { stack, uniqueName } from '../support/stack.ts';
import { createTopic, kafka } from './kafkaSupport.ts';

interface Seen {
  readonly partition: number;
  readonly offset: number;
  readonly timestamp: number;
  readonly key: string | null;
  readonly value: string | null;
  readonly headers: Record<string, string | null>;
}

const hex = (b: Uint8Array | Buffer | null | undefined): string | null => (b === null || b === undefined ? null : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex'));

function sortSeen(xs: Seen[]): Seen[] {
  return xs.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}

/** Reads the topic with kafkajs (a fresh group, from the beginning) until `expected` records. */
async function readWithKafkajs(topic: string, expected: number, readUncommitted = false): Promise<Seen[]> {
  const out: Seen[] = [];
  await consumeUntil(
    [topic],
    ({ partition, message }) => {
      const headers: Record<string, string | null> = {};
      for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = Array.isArray(v) ? hex(v.at(-1) as Buffer) : typeof v === 'string' ? hex(Buffer.from(v)) : hex(v);
      out.push({ partition, offset: Number(message.offset), timestamp: Number(message.timestamp), key: hex(message.key), value: hex(message.value), headers });
    },
    () => out.length >= expected,
    () => `${out.length}/${expected} records (kafkajs)`,
    { consumer: { maxWaitTimeInMs: 200, readUncommitted } },
  );
  return sortSeen(out);
}

const jobFetch = { maxWaitMs: 200, maxBytes: 10 * 2 ** 20, maxBytesPerPartition: 2 ** 20 } as const;

async function readWithWire(topic: string, more: Partial<ReadTopicOptions> = {}): Promise<{ seen: Seen[]; result: Awaited<ReturnType<typeof readTopic>> }> {
  const seen: Seen[] = [];
  const onRecords = (partition: number, records: WireRecord[]): void => {
    for (const r of records) {
      const headers: Record<string, string | null> = {};
      for (const [k, v] of Object.entries(r.headers ?? {})) headers[k] = hex(v);
      seen.push({ partition, offset: r.offset, timestamp: r.timestamp, key: hex(r.key), value: hex(r.value), headers });
    }
  };
  const result = await readTopic({ brokers: stack.kafkaBrokers, topic, mode: 'objects', ...jobFetch, onRecords, ...more });
  return { seen: sortSeen(seen), result };
}

describe('wire-level reader (bench/clients/wire.ts)', () => {
  it('reads what kafkajs reads, byte for byte: keys, values, headers, timestamps, offsets; whatever the fetch sizes and codecs', async () => {
    const topic = uniqueName('wire-read');
    await createTopic(topic, 3);
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    let produced = 0;
    let valueBytes = 0;
    try {
      // 1,000 records in 20 sends, every other one gzip-compressed; sizes from 0 to ~2 KB, a
      // null key every 5th, a null value every 50th, headers every 7th, one record of 6 KB.
      for (let send = 0; send < 20; send++) {
        const messages: Message[] = [];
        for (let j = 0; j < 50; j++) {
          const i = send * 50 + j;
          const value = i % 50 === 49 ? null : randomBytes(i === 500 ? 6000 : (i * 37) % 2048);
          const headers: IHeaders | undefined = i % 7 === 0 ? { h: `header-${i}`, empty: Buffer.alloc(0) } : undefined;
          messages.push({ partition: i % 3, key: i % 5 === 0 ? null : `k${i}`, value, ...(headers ? { headers } : {}), timestamp: String(1_700_000_000_000 + i * 1000) });
          valueBytes += value?.length ?? 0;
        }
        await producer.send({ topic, messages, acks: -1, compression: send % 2 === 1 ? CompressionTypes.GZIP : CompressionTypes.None });
        produced += messages.length;
      }
    } finally {
      await producer.disconnect();
    }

    const reference = await readWithKafkajs(topic, produced);
    expect(reference).toHaveLength(1000);

    const big = await readWithWire(topic);
    expect(big.seen).toEqual(reference);
    expect(big.result.records).toBe(1000);
    expect(big.result.bytes).toBe(valueBytes);
    expect(big.result.compressedBatches).toBe(30); // 10 gzip sends × 3 partitions
    expect(big.result.partitions.map((p) => p.end - p.low).reduce((a, b) => a + b)).toBe(1000);

    // Batches here are ~17 KB (~17 records of ~1 KB per partition and send). Fetch sizes of a
    // batch and a half: responses end in cut batches, read again by the next fetch.
    const cut = await readWithWire(topic, { maxBytes: 40_000, maxBytesPerPartition: 26_000 });
    expect(cut.seen).toEqual(reference);
    expect(cut.result.cutBatches).toBeGreaterThan(0);
    // Fetch sizes below a batch: the broker still returns a partition's first batch whole.
    const small = await readWithWire(topic, { maxBytes: 3000, maxBytesPerPartition: 1500 });
    expect(small.seen).toEqual(reference);
    expect(small.result.fetches).toBeGreaterThanOrEqual(big.result.batches);

    const views = await readTopic({ brokers: stack.kafkaBrokers, topic, mode: 'views', ...jobFetch });
    expect([views.records, views.bytes, views.controlRecords, views.abortedRecords]).toEqual([1000, valueBytes, 0, 0]);
    console.log(`wire read: ${big.result.batches} batches; ${big.result.fetches} fetches with the job's sizes, ${cut.result.fetches} (${cut.result.cutBatches} cut batches) with 40,000/26,000 bytes, ${small.result.fetches} with 3000/1500`);
  });

  it('skips transaction markers, and aborted transactions under read_committed, as kafkajs does', async () => {
    const topic = uniqueName('wire-txn');
    await createTopic(topic, 2);
    // Its own client: kafkajs logs (and retries) a concurrent AddPartitionsToTxn as an error.
    const quiet = new Kafka({ brokers: [...stack.kafkaBrokers], clientId: 'wire-test-tx', logLevel: logLevel.NOTHING });
    const producer = quiet.producer({ transactionalId: uniqueName('wire-tx'), idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await producer.connect();
    const send = async (from: number, abort: boolean): Promise<void> => {
      const tx = await producer.transaction();
      await tx.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ partition: i % 2, key: `k${from + i}`, value: `v${from + i}` })) });
      if (abort) await tx.abort();
      else await tx.commit();
    };
    await send(0, false);
    await send(100, true);
    await send(10, false);
    await send(200, true);
    await producer.disconnect();
    // Each transaction: 5 records and a marker in each partition.
    const committed = await readWithKafkajs(topic, 20);
    expect(committed.map((r) => Buffer.from(r.value ?? '', 'hex').toString()).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `v${i}`).sort());

    const wire = await readWithWire(topic);
    expect(wire.seen).toEqual(committed);
    expect([wire.result.records, wire.result.controlRecords, wire.result.abortedRecords]).toEqual([20, 8, 20]);

    const all = await readWithKafkajs(topic, 40, true);
    const wireAll = await readWithWire(topic, { isolation: 'read_uncommitted' });
    expect(wireAll.seen).toEqual(all);
    expect([wireAll.result.records, wireAll.result.controlRecords, wireAll.result.abortedRecords]).toEqual([40, 8, 0]);
  });
});

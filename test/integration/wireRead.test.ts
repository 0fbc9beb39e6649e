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
import { wireClient } from '../../src/sources/kafka/wire/wireClient.ts';
import type { KafkaRecord } from '../../src/types.ts';
import { committedOffsets, createTopic, endOffsets, kafka, produce, readBounded } from './kafkaSupport.ts';

interface Seen {
  readonly partition: number;
  readonly offset: number;
  readonly timestamp: number;
  readonly key: string | null;
  readonly value: string | null;
  readonly headers: Record<string, string | null>;
}

const hex = (b: Uint8Array | Buffer | null | undefined): string | null => (b === null || b === undefined ? null : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex'));

/** A header's value(s) as hex; a repeated header's values in order, comma-separated. */
const hexHeader = (v: Uint8Array | string | ReadonlyArray<Uint8Array | string> | null | undefined): string | null =>
  Array.isArray(v) ? (v as ReadonlyArray<Uint8Array | string>).map((x) => hexHeader(x)).join(',') : typeof v === 'string' ? hex(Buffer.from(v)) : hex(v as Uint8Array | null | undefined);

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
      for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = hexHeader(v);
      out.push({ partition, offset: Number(message.offset), timestamp: Number(message.timestamp), key: hex(message.key), value: hex(message.value), headers });
    },
    () => out.length >= expected,
    () => `${out.length}/${expected} records (kafkajs)`,
    { consumer: { maxWaitTimeInMs: 200, readUncommitted } },
  );
  return sortSeen(out);
}

/** Transactions of 10 records over 2 partitions, each committed or aborted, from one transactional producer. */
async function sendTransactions(topic: string, plan: ReadonlyArray<readonly [from: number, abort: boolean]>): Promise<void> {
  // Its own client: kafkajs logs (and retries) a concurrent AddPartitionsToTxn as an error.
  const quiet = new Kafka({ brokers: [...stack.kafkaBrokers], clientId: 'wire-test-tx', logLevel: logLevel.NOTHING });
  const producer = quiet.producer({ transactionalId: uniqueName('wire-tx'), idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  try {
    for (const [from, abort] of plan) {
      const tx = await producer.transaction();
      await tx.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ partition: i % 2, key: `k${from + i}`, value: `v${from + i}` })) });
      if (abort) await tx.abort();
      else await tx.commit();
    }
  } finally {
    await producer.disconnect();
  }
}

/** What the source emitted, comparable across clients. */
function emitted(records: readonly KafkaRecord[]): string[] {
  return records.map((r) => JSON.stringify([r.partition, r.offset.toString(), r.timestamp, hex(r.key), hex(r.value), Object.entries(r.headers).map(([k, v]) => [k, hex(v)])])).sort();
}

const jobFetch = { maxWaitMs: 200, maxBytes: 10 * 2 ** 20, maxBytesPerPartition: 2 ** 20 } as const;

async function readWithWire(topic: string, more: Partial<ReadTopicOptions> = {}): Promise<{ seen: Seen[]; result: Awaited<ReturnType<typeof readTopic>> }> {
  const seen: Seen[] = [];
  const onRecords = (partition: number, records: WireRecord[]): void => {
    for (const r of records) {
      const headers: Record<string, string | null> = {};
      for (const [k, v] of Object.entries(r.headers ?? {})) headers[k] = hexHeader(v);
      seen.push({ partition, offset: r.offset, timestamp: r.timestamp, key: hex(r.key), value: hex(r.value), headers });
    }
  };
  const result = await readTopic({ brokers: stack.kafkaBrokers, topic, mode: 'objects', ...jobFetch, onRecords, ...more });
  return { seen: sortSeen(seen), result };
}

describe('wire-level reading (bench/clients/wire.ts, the wire client)', () => {
  it('reads what kafkajs reads, byte for byte: keys, values, headers, timestamps, offsets; whatever the fetch sizes and codecs', async () => {
    const topic = uniqueName('wire-read');
    await createTopic(topic, 3);
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    let produced = 0;
    let valueBytes = 0;
    try {
      // 1,000 records in 20 sends, every other one gzip-compressed; sizes from 0 to ~2 KB, a
      // null key every 5th, a null value every 50th, headers every 7th (a repeated one every 14th),
      // one record of 6 KB.
      for (let send = 0; send < 20; send++) {
        const messages: Message[] = [];
        for (let j = 0; j < 50; j++) {
          const i = send * 50 + j;
          const value = i % 50 === 49 ? null : randomBytes(i === 500 ? 6000 : (i * 37) % 2048);
          // Every 14th: a repeated header (kafkajs sends an array as one header per value).
          const headers: IHeaders | undefined = i % 7 === 0 ? { h: `header-${i}`, empty: Buffer.alloc(0), ...(i % 14 === 0 ? { rep: [`a${i}`, `b${i}`] } : {}) } : undefined;
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
    await sendTransactions(topic, [[0, false], [100, true], [10, false], [200, true]]);
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

  it('the wire client through fromKafka: what the kafkajs client emits, and committed to the end past transaction markers', async () => {
    const topic = uniqueName('wire-client');
    await createTopic(topic, 2);
    await produce(topic, 300, 2);
    await sendTransactions(topic, [[1000, false], [2000, true], [1010, false]]);
    await produce(topic, 100, 2, 300);
    await sendTransactions(topic, [[3000, true]]);
    const viaKafkajs = await readBounded({ groupId: uniqueName('wire-client-kafkajs'), topics: [topic] });
    const group = uniqueName('wire-client-wire');
    const viaWire = await readBounded({ groupId: group, topics: [topic], client: wireClient() });
    expect(viaKafkajs).toHaveLength(420);
    expect(emitted(viaWire)).toEqual(emitted(viaKafkajs));
    // The last transaction was aborted: the end offsets are past its markers, and so are the commits.
    expect(await committedOffsets(group, topic)).toEqual(await endOffsets(topic));
  });
});

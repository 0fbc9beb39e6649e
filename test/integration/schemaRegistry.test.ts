/**
 * Payloads written through a real schema registry (the stack's Apicurio Registry, Confluent-
 * compatible API): producers register Avro and JSON Schema schemas and encode with the registry
 * client's own serializer (`@kafkajs/confluent-schema-registry`); a pipeline of public operators
 * (`decodeWithRegistry` into typed Delta tables, bad records into a dead-letter table) reads
 * them from the real broker. delta-rs judges: every produced record is in exactly one table,
 * decoded fields are exact (an Avro long beyond 2^53 too), and each kind of bad record has its
 * own error type. While the registry cannot be reached, records wait and nothing is
 * dead-lettered or committed; once it is back, everything lands.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { Subject, from, lastValueFrom, map, pipe, tap, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bufferTime } from '../../src/operators/bufferTime.ts';
import { commitOffsets } from '../../src/operators/commitOffsets.ts';
import { SchemaRegistryError, decodeWithRegistry } from '../../src/operators/decodeWithRegistry.ts';
import type { RegistryDecoded, RegistryRetry } from '../../src/operators/decodeWithRegistry.ts';
import { deltaSink } from '../../src/operators/deltaSink.ts';
import { enrichMetadata } from '../../src/operators/enrichMetadata.ts';
import { partitionByDate } from '../../src/operators/partitionByDate.ts';
import { withDeadLetters } from '../../src/operators/withDeadLetters.ts';
import { deadLetterTableSpec } from '../../src/sinks/deadLetterTable.ts';
import { DeltaTable } from '../../src/sinks/delta/table.ts';
import type { ColumnSpec } from '../../src/sinks/delta/schema.ts';
import { localStorage } from '../../src/sinks/delta/storage.ts';
import { fromKafka } from '../../src/sources/fromKafka.ts';
import type { DeadLetterRow, EnrichedRecord } from '../../src/types.ts';
import { schemaRegistryUrl } from '../support/registry.ts';
import { stack, uniqueName, verifyDelta } from '../support/stack.ts';
import { startTcpProxy } from '../support/tcpProxy.ts';
import { Changes } from '../support/wait.ts';
import { committedOffsets, createTopic, fastGroup, kafka } from './kafkaSupport.ts';

const dirs: string[] = [];
let url: string;
let registry: SchemaRegistry;

// A first start on a machine without it fetches the registry's distribution (~160 MB) from Maven Central.
beforeAll(async () => {
  url = await schemaRegistryUrl();
  registry = new SchemaRegistry({ host: url });
}, 600_000);

afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'rxlake-registry-'));
  dirs.push(d);
  return d;
}

const TRIP_AVRO = {
  type: 'record',
  name: 'Trip',
  namespace: 'rxlake.test',
  fields: [
    { name: 'trip_id', type: 'string' },
    { name: 'fare', type: 'double' },
    { name: 'distance_m', type: 'long' },
    { name: 'note', type: ['null', 'string'], default: null },
  ],
};

const PAYMENT_JSON = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  properties: {
    payment_id: { type: 'string' },
    amount: { type: 'number', minimum: 0 },
    currency: { type: 'string', pattern: '^[A-Z]{3}$' },
  },
  required: ['payment_id', 'amount', 'currency'],
};

/** 2^53 + i: beyond what a double holds exactly. */
const BIG = 2n ** 53n;

interface Produced {
  readonly value: Buffer | null;
}

async function produceAll(topic: string, values: readonly Produced[]): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: values.map((v, i) => ({ key: `k${i}`, value: v.value, partition: i % 2 })) });
  } finally {
    await producer.disconnect();
  }
}

/** Runs topic → decodeWithRegistry → typed table (+ dead-letter table) until caught up. */
async function ingest<R>(opts: {
  topic: string;
  groupId?: string;
  base: string;
  registryUrl: string;
  columns: ColumnSpec<RegistryDecoded<EnrichedRecord, R>>[];
  onRetry?: (r: RegistryRetry) => void;
  onDeadLetter?: (row: DeadLetterRow) => void;
}): Promise<{ groupId: string; typed: string; dlq: string }> {
  const typedUri = join(opts.base, 'typed');
  const dlqUri = join(opts.base, 'dlq');
  const typed = await DeltaTable.openOrCreate(localStorage(typedUri), {
    name: 'typed',
    columns: [
      ...opts.columns,
      { name: 'schema_id', type: 'integer', get: (r) => r.schemaId },
      { name: '_kafka_partition', type: 'integer' },
      { name: '_kafka_offset', type: 'long' },
      { name: '_ingestion_date', type: 'string' },
    ],
    partitionColumns: ['_ingestion_date'],
  });
  const dlq = await DeltaTable.openOrCreate(localStorage(dlqUri), deadLetterTableSpec('dlq'));
  const groupId = opts.groupId ?? uniqueName('g-registry');
  const source = fromKafka({ brokers: stack.kafkaBrokers, groupId, topics: [opts.topic], startFrom: 'earliest', untilCaughtUp: true, consumer: fastGroup });
  await lastValueFrom(
    source.records$.pipe(
      enrichMetadata(),
      withDeadLetters(
        (deadLetters) =>
          pipe(
            decodeWithRegistry({ url: opts.registryUrl, requestTimeoutMs: 2_000 }, deadLetters, {
              retryBackoff: { initialMs: 100, maxMs: 400 },
              ...(opts.onRetry ? { onRetry: opts.onRetry } : {}),
            }),
            // The schemas registered above give these shapes.
            map((r) => r as RegistryDecoded<EnrichedRecord, R>),
            partitionByDate(),
            bufferTime({ timeSpan: 200 }),
            deltaSink(typed, { pipelineId: 'registry-test' }),
          ),
        pipe(
          tap((row: DeadLetterRow) => opts.onDeadLetter?.(row)),
          bufferTime({ timeSpan: 200 }),
          deltaSink(dlq, { pipelineId: 'registry-test' }),
        ),
      ),
      commitOffsets(source),
      toArray(),
    ),
  );
  return { groupId, typed: typedUri, dlq: dlqUri };
}

function countBy<T>(items: readonly T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const i of items) out[key(i)] = (out[key(i)] ?? 0) + 1;
  return out;
}

describe('decodeWithRegistry against a real schema registry', () => {
  it('Avro: decodes every registered record exactly (long beyond 2^53), bad ones to the dead-letter table by type', async () => {
    const topic = uniqueName('reg-avro');
    await createTopic(topic, 2);
    const { id } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(TRIP_AVRO) }, { subject: `${topic}-value` });
    const good = 120;
    const values: Produced[] = [];
    for (let i = 0; i < good; i++) {
      // The registry client's encoder validates longs as numbers; encode the exact bigint with avsc's own Type through its helper.
      values.push({ value: await registry.encode(id, { trip_id: `t${i}`, fare: i + 0.25, distance_m: Number(1000 + i), note: i % 3 === 0 ? null : `n${i}` }) });
    }
    // One record whose long is beyond 2^53, encoded by hand in the wire format (magic 0, id, Avro binary).
    const avsc = await import('avsc');
    const exact = avsc.Type.forSchema(TRIP_AVRO as never, { registry: { long: (avsc.types.LongType as unknown as { __with(m: object): unknown }).__with({
      fromBuffer: (b: Buffer) => b.readBigInt64LE(),
      toBuffer: (n: bigint) => { const b = Buffer.alloc(8); b.writeBigInt64LE(n); return b; },
      fromJSON: BigInt, toJSON: Number, isValid: (n: unknown) => typeof n === 'bigint', compare: () => 0,
    }) } as never });
    const header = Buffer.alloc(5);
    header.writeUInt32BE(id, 1);
    values.push({ value: Buffer.concat([header, exact.toBuffer({ trip_id: 'big', fare: 1.5, distance_m: BIG + 7n, note: null })]) });
    const valid = good + 1;
    const sample = values[0]!.value!;
    const unknownId = Buffer.from(sample);
    unknownId.writeUInt32BE(2_000_000_000, 1);
    values.push(
      { value: Buffer.from('{"trip_id":"plain json"}') }, // WIRE_FORMAT_ERROR
      { value: Buffer.from([0, 0]) }, // WIRE_FORMAT_ERROR (too short)
      { value: Buffer.from([1, 0, 0, 0, id, 1, 2, 3]) }, // WIRE_FORMAT_ERROR (magic 1)
      { value: unknownId }, // SCHEMA_NOT_FOUND
      { value: unknownId }, // SCHEMA_NOT_FOUND (cached as such)
      { value: sample.subarray(0, sample.length - 3) }, // SCHEMA_DECODE_ERROR (truncated)
      { value: Buffer.concat([sample, Buffer.from([9, 9])]) }, // SCHEMA_DECODE_ERROR (trailing bytes)
      { value: null }, // NULL_VALUE
    );
    await produceAll(topic, values);

    const run = await ingest<{ trip_id: string; fare: number; distance_m: bigint; note: string | null }>({
      topic,
      base: await tempDir(),
      registryUrl: url,
      columns: [
        { name: 'trip_id', type: 'string', get: (r) => r.decoded.trip_id },
        { name: 'fare', type: 'double', get: (r) => r.decoded.fare },
        { name: 'distance_m', type: 'long', get: (r) => r.decoded.distance_m },
        { name: 'note', type: 'string', get: (r) => r.decoded.note },
      ],
    });
    const typed = await verifyDelta(run.typed, { rows: true });
    const dlq = await verifyDelta(run.dlq, { rows: true, columns: ['_kafka_partition', '_kafka_offset', 'error_type', 'error_message'] });
    expect(typed.num_rows).toBe(valid);
    const rows = typed.rows ?? [];
    const byId = new Map(rows.map((r) => [String(r.trip_id), r]));
    for (let i = 0; i < good; i++) {
      const r = byId.get(`t${i}`);
      expect(r, `t${i}`).toBeDefined();
      expect(r?.fare).toBe(i + 0.25);
      expect(Number(r?.distance_m)).toBe(1000 + i);
      expect(r?.note).toBe(i % 3 === 0 ? null : `n${i}`);
      expect(r?.schema_id).toBe(id);
    }
    expect(String(byId.get('big')?.distance_m)).toBe(String(BIG + 7n));
    expect(countBy(dlq.rows ?? [], (r) => String(r.error_type))).toEqual({ WIRE_FORMAT_ERROR: 3, SCHEMA_NOT_FOUND: 2, SCHEMA_DECODE_ERROR: 2, NULL_VALUE: 1 });
    for (const r of dlq.rows ?? []) {
      if (r.error_type === 'SCHEMA_NOT_FOUND') expect(r.error_message).toContain('schema id 2000000000 is not in the schema registry');
      if (r.error_type === 'WIRE_FORMAT_ERROR') expect(String(r.error_message)).toMatch(/magic byte 0x7b|magic byte 0x01|shorter than the wire format/);
    }
    // Every produced record is in exactly one table.
    const keys = [...rows, ...(dlq.rows ?? [])].map((r) => `${String(r._kafka_partition)}/${String(r._kafka_offset)}`);
    expect(new Set(keys).size).toBe(values.length);
    expect(keys.length).toBe(values.length);
  });

  it('JSON Schema: decodes valid payloads, rejects invalid ones as SCHEMA_VALIDATION_ERROR / JSON_PARSE_ERROR', async () => {
    const topic = uniqueName('reg-json');
    await createTopic(topic, 2);
    const { id } = await registry.register({ type: SchemaType.JSON, schema: JSON.stringify(PAYMENT_JSON) }, { subject: `${topic}-value` });
    const good = 80;
    const values: Produced[] = [];
    for (let i = 0; i < good; i++) values.push({ value: await registry.encode(id, { payment_id: `p${i}`, amount: i * 1.5, currency: 'EUR' }) });
    const header = Buffer.alloc(5);
    header.writeUInt32BE(id, 1);
    values.push(
      { value: Buffer.concat([header, Buffer.from('{"payment_id":"x","amount":-1,"currency":"EUR"}')]) }, // SCHEMA_VALIDATION_ERROR (minimum)
      { value: Buffer.concat([header, Buffer.from('{"payment_id":"y","amount":1}')]) }, // SCHEMA_VALIDATION_ERROR (required)
      { value: Buffer.concat([header, Buffer.from('{"payment_id":')]) }, // JSON_PARSE_ERROR
    );
    await produceAll(topic, values);
    const run = await ingest<{ payment_id: string; amount: number; currency: string }>({
      topic,
      base: await tempDir(),
      registryUrl: url,
      columns: [
        { name: 'payment_id', type: 'string', get: (r) => r.decoded.payment_id },
        { name: 'amount', type: 'double', get: (r) => r.decoded.amount },
        { name: 'currency', type: 'string', get: (r) => r.decoded.currency },
      ],
    });
    const typed = await verifyDelta(run.typed, { rows: true });
    const dlq = await verifyDelta(run.dlq, { rows: true, columns: ['error_type', 'error_message'] });
    expect(typed.num_rows).toBe(good);
    const amounts = new Map((typed.rows ?? []).map((r) => [String(r.payment_id), r.amount]));
    for (let i = 0; i < good; i++) expect(amounts.get(`p${i}`)).toBe(i * 1.5);
    expect(countBy(dlq.rows ?? [], (r) => String(r.error_type))).toEqual({ SCHEMA_VALIDATION_ERROR: 2, JSON_PARSE_ERROR: 1 });
    expect((dlq.rows ?? []).map((r) => String(r.error_message)).join('\n')).toContain(`not valid for JSON Schema id ${id}: /amount must be >= 0`);
  });

  it('Avro with a schema reference: the referenced schema is fetched by subject and version', async () => {
    const topic = uniqueName('reg-ref');
    await createTopic(topic, 2);
    const money = { type: 'record', name: 'Money', namespace: 'rxlake.test', fields: [{ name: 'amount', type: 'double' }, { name: 'currency', type: 'string' }] };
    await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(money) }, { subject: `${topic}-money` });
    const payment = { type: 'record', name: 'Payment', namespace: 'rxlake.test', fields: [{ name: 'payment_id', type: 'string' }, { name: 'price', type: 'rxlake.test.Money' }] };
    const { id } = await registry.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(payment), references: [{ name: 'rxlake.test.Money', subject: `${topic}-money`, version: 1 }] },
      { subject: `${topic}-value` },
    );
    const count = 30;
    const values: Produced[] = [];
    for (let i = 0; i < count; i++) values.push({ value: await registry.encode(id, { payment_id: `p${i}`, price: { amount: i / 4, currency: 'CHF' } }) });
    await produceAll(topic, values);
    const run = await ingest<{ payment_id: string; price: { amount: number; currency: string } }>({
      topic,
      base: await tempDir(),
      registryUrl: url,
      columns: [
        { name: 'payment_id', type: 'string', get: (r) => r.decoded.payment_id },
        { name: 'amount', type: 'double', get: (r) => r.decoded.price.amount },
        { name: 'currency', type: 'string', get: (r) => r.decoded.price.currency },
      ],
    });
    const typed = await verifyDelta(run.typed, { rows: true });
    expect((await verifyDelta(run.dlq)).num_rows).toBe(0);
    expect(typed.num_rows).toBe(count);
    for (const r of typed.rows ?? []) {
      expect(r.amount).toBe(Number(String(r.payment_id).slice(1)) / 4);
      expect(r.currency).toBe('CHF');
    }
  });

  it('a registry that cannot be reached: records wait (nothing dead-lettered, nothing committed) and all land once it is back', async () => {
    const topic = uniqueName('reg-outage');
    await createTopic(topic, 2);
    const { id } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify({ ...TRIP_AVRO, name: 'OutageTrip' }) }, { subject: `${topic}-value` });
    const count = 40;
    const values: Produced[] = [];
    for (let i = 0; i < count; i++) values.push({ value: await registry.encode(id, { trip_id: `o${i}`, fare: 1, distance_m: i, note: null }) });
    await produceAll(topic, values);

    const target = new URL(url);
    const proxy = await startTcpProxy(target.hostname, Number(target.port));
    const proxied = `http://127.0.0.1:${proxy.port}${target.pathname}`;
    await proxy.down();
    const changes = new Changes();
    const retries: RegistryRetry[] = [];
    const deadLettered: DeadLetterRow[] = [];
    const groupId = uniqueName('g-outage');
    const base = await tempDir();
    const running = ingest<{ trip_id: string }>({
      topic,
      groupId,
      base,
      registryUrl: proxied,
      columns: [{ name: 'trip_id', type: 'string', get: (r) => r.decoded.trip_id }],
      onRetry: (r) => {
        retries.push(r);
        changes.changed();
      },
      onDeadLetter: (row) => deadLettered.push(row),
    });
    running.catch((err: unknown) => changes.fail(err));
    try {
      await changes.until('three retries while the registry is unreachable', () => retries.length >= 3, 60_000);
      expect(retries.every((r) => r.schemaId === id)).toBe(true);
      expect(retries[0]?.error.name).toBe('SchemaRegistryUnavailableError');
      expect(deadLettered).toEqual([]);
      // Nothing durable, so nothing committed yet.
      expect((await verifyDelta(join(base, 'typed'))).num_rows).toBe(0);
      expect([...(await committedOffsets(groupId, topic)).values()].every((o) => o < 0n)).toBe(true);
    } finally {
      await proxy.up();
    }
    const run = await running;
    await proxy.close();
    expect(deadLettered).toEqual([]);
    const typed = await verifyDelta(run.typed, { rows: true, columns: ['trip_id'] });
    expect(typed.num_rows).toBe(count);
    expect(new Set((typed.rows ?? []).map((r) => r.trip_id)).size).toBe(count);
    const committed = await committedOffsets(groupId, topic);
    expect([...committed.values()].reduce((a, b) => a + b, 0n)).toBe(BigInt(count));
  });

  it('a URL that is not the registry API errors the stream naming the URL (records are not dead-lettered)', async () => {
    const bad = `${new URL(url).origin}/not-the-api`;
    const deadLetters = new Subject<DeadLetterRow>();
    const rows: DeadLetterRow[] = [];
    deadLetters.subscribe({ next: (r) => rows.push(r), error: () => undefined });
    const value = Buffer.from([0, 0, 0, 0, 1, 2, 3]);
    const record: EnrichedRecord = {
      topic: 't', partition: 0, offset: 0n, timestamp: 0, key: null, value, headers: {}, size: value.length,
      _kafka_partition: 0, _kafka_offset: 0n, _kafka_timestamp: 0n, _ingested_at: 0n, _ingestion_date: '1970-01-01',
    };
    const err = await lastValueFrom(from([record]).pipe(decodeWithRegistry({ url: bad }, deadLetters))).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SchemaRegistryError);
    expect((err as Error).message).toContain(`${bad}/schemas/ids/1`);
    expect((err as Error).message).toContain("check that the URL is the registry's Confluent-compatible API");
    expect(rows).toEqual([]);
  });
});

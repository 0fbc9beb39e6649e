/**
 * Seeded fuzz of poison records through the real chains: hostile payloads (deep nesting, huge
 * strings and numbers, every invalid-UTF-8 class, JSON edge cases, mutations; see
 * `hostilePayloads.ts`) interleaved with valid events. Every record must land in exactly one
 * table — the one an independent step-by-step classification names — and the chain must go
 * on to the end.
 *
 * Bronze: each topic's `bronzeTopicPipeline` as the job builds it, writing real Delta tables on
 * local disk (Parquet included). Transactions: `routeErrors` as the job configures it, then the
 * typed rows and their Parquet columns.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Subject, from, lastValueFrom, map, toArray } from 'rxjs';
import { afterAll, describe, expect, it } from 'vitest';
import { enrichMetadata } from '../../src/operators/enrichMetadata.ts';
import { partitionByDate } from '../../src/operators/partitionByDate.ts';
import { routeErrors } from '../../src/operators/routeErrors.ts';
import { bronzeTopicPipeline } from '../../src/pipelines/bronze.ts';
import { openBronzeTables } from '../../src/pipelines/bronze/tables.ts';
import { bronzeBytesGuards, bronzeCodecs } from '../../src/pipelines/rideshare/codecs.ts';
import { ACCOUNT_ID, MAX_EVENT_MICROS, MIN_EVENT_MICROS, TransactionEvent, createTransactionGenerator, transactionRow } from '../../src/pipelines/transactions/events.ts';
import type { TransactionRow } from '../../src/pipelines/transactions/events.ts';
import { transactionsTableSpec } from '../../src/pipelines/transactions/tables.ts';
import { loadBronzeConfig } from '../../src/pipelines/bronze/config.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { PipelineMonitor } from '../../src/runtime/monitor.ts';
import { packColumns } from '../../src/sinks/delta/columnar.ts';
import { localStorage } from '../../src/sinks/delta/storage.ts';
import { createEventGenerator } from '../../src/pipelines/rideshare/events.ts';
import type { DeadLetterRow, EnrichedRecord, KafkaRecord } from '../../src/types.ts';
import { deadLetterTableSpec } from '../../src/sinks/deadLetterTable.ts';
import { MAX_ERROR_MESSAGE_CHARS } from '../../src/validation/limits.ts';
import { expectedRoute, hostileCases } from './hostilePayloads.ts';
import type { HostileCase } from './hostilePayloads.ts';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const MAX_PAYLOAD_BYTES = 1024 * 1024;
const PARTITIONS = 3;

/** Kafka records of the cases, spread over partitions; a few with hostile producer timestamps. */
function kafkaRecords(topic: string, cases: readonly HostileCase[]): KafkaRecord[] {
  return cases.map((c, i) => ({
    topic,
    partition: i % PARTITIONS,
    offset: BigInt(i),
    // A producer may set any int64 timestamp; the source reads it as Number.
    timestamp: i % 17 === 5 ? 9e18 : 1_767_225_600_000 + i,
    key: null,
    value: c.value,
    headers: {},
    size: c.value?.byteLength ?? 0,
  }));
}

const count = (xs: readonly string[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
};

describe('poison records: the bronze chain', () => {
  it('lands every hostile record of every topic in exactly one table, and each topic goes on to its end', { timeout: 120_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rxlake-poison-'));
    dirs.push(dir);
    const config = loadBronzeConfig({
      DELTA_BASE_PATH: dir,
      BATCH_INTERVAL_SECONDS: '600',
      BATCH_MAX_RECORDS: '100000',
      MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD_BYTES),
      HTTP_PORT: '0',
      PROGRESS_INTERVAL_SECONDS: '0',
      LOG_LEVEL: 'error',
    });
    const tables = await openBronzeTables(config, localStorage(dir), createLogger('error', () => undefined));
    const monitor = new PipelineMonitor();
    let total = 0;
    for (const [t, tables1] of tables.entries()) {
      const { topic } = tables1;
      const gen = createEventGenerator({ seed: 100 + t });
      const cases = hostileCases(() => gen.next(topic).value, 100 + t, { maxPayloadBytes: MAX_PAYLOAD_BYTES, random: 45, large: t < 2 });
      const records = kafkaRecords(tables1.kafkaTopic, cases);
      const expected = cases.map((c) => expectedRoute(bronzeCodecs[topic], c.value, MAX_PAYLOAD_BYTES));
      total += records.length;

      // The job's chain, whole: enrichMetadata … deltaSink of both tables.
      const acks = await lastValueFrom(from(records).pipe(bronzeTopicPipeline(tables1, config, monitor), toArray()));
      const landed = new Map<bigint, string[]>();
      for (const ack of acks) for (const ref of ack.refs) landed.set(ref.offset, [...(landed.get(ref.offset) ?? []), ack.table]);
      cases.forEach((c, i) => {
        const where = landed.get(BigInt(i)) ?? [];
        const want = expected[i] === 'OK' ? tables1.bronze.name : tables1.deadLetters.name;
        if (where.length !== 1 || where[0] !== want) expect.fail(`${topic} #${i} (${c.name}): landed in [${where.join(', ')}], expected ${want} (${expected[i]})`);
      });
      expect(landed.size, topic).toBe(records.length);
      const written = (name: string) => acks.filter((a) => a.table === name).reduce((n, a) => n + a.rows, 0);
      expect(written(tables1.bronze.name) + written(tables1.deadLetters.name), topic).toBe(records.length);

      // Error types, per type (the job's dead-letter counter) …
      const counted = (await monitor.dlqRecords.get()).values.filter((v) => v.labels.topic === topic);
      const byType = Object.fromEntries(counted.map((v) => [String(v.labels.error_type), v.value]));
      expect(byType, topic).toEqual(count(expected.filter((e) => e !== 'OK')));
      // … and per record, through routeErrors as the job configures it.
      const rows: DeadLetterRow[] = [];
      const dlq = new Subject<DeadLetterRow>();
      dlq.subscribe((r) => rows.push(r));
      await lastValueFrom(
        from(records).pipe(
          enrichMetadata(),
          routeErrors(bronzeCodecs[topic], dlq, {
            maxPayloadBytes: MAX_PAYLOAD_BYTES,
            attachDecoded: false,
            accepts: (value) => bronzeCodecs[topic].is(value),
            acceptsBytes: bronzeBytesGuards[topic],
          }),
          toArray(),
        ),
      );
      const typeOf = new Map(rows.map((r) => [r.offset, r.error_type]));
      cases.forEach((c, i) => {
        const got = typeOf.get(BigInt(i)) ?? 'OK';
        if (got !== expected[i]) expect.fail(`${topic} #${i} (${c.name}): ${got}, expected ${expected[i]}`);
      });
      for (const r of rows) expect(r.error_message.length).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_CHARS);
      // Every dead-letter row converts to the table's Parquet columns (what the sink did above).
      expect(() => packColumns(rows, deadLetterTableSpec('x').columns)).not.toThrow();
    }
    expect(total).toBeGreaterThan(8 * 200);
  });
});

describe('poison records: the transactions chain', () => {
  const txCases = (seed: number): HostileCase[] => {
    const gen = createTransactionGenerator({ seed });
    const dec = new TextDecoder();
    const next = () => JSON.parse(dec.decode(gen.next('transactions').value)) as Record<string, unknown>;
    const enc = new TextEncoder();
    const base = next();
    // What the sinks cannot store: PostgreSQL keys and timestamps, partition dates.
    const sinkHostile = [
      { account_id: 'a\u0000b' },
      { account_id: '\ud800' },
      { account_id: 'x\udfffy' },
      { account_id: 'k'.repeat(5_000) },
      { account_id: '' },
      { timestamp: '0000-01-01T00:00:00Z' },
      { timestamp: '0001-01-01T00:00:00+00:00' },
      { timestamp: '9999-12-31T23:59:59.999999Z' },
      { timestamp: '9999-12-30T00:00:00Z' },
      { timestamp: '2026-01-01T00:00:00+23:59' },
      { timestamp: '2026-02-29T00:00:00Z' },
      { amount: 1e308 },
      { amount: -0 },
      { currency: 'US\u0000' },
      { merchant_id: '\u0000'.repeat(10) },
    ].map((patch) => ({ name: `transaction with ${JSON.stringify(patch).slice(0, 60)}`, value: enc.encode(JSON.stringify({ ...base, ...patch })) }));
    return [...sinkHostile, ...hostileCases(next, seed, { maxPayloadBytes: MAX_PAYLOAD_BYTES, random: 90 })];
  };

  it('quarantines every hostile event or makes it a typed row every sink can store, and goes on', { timeout: 60_000 }, async () => {
    const cases = txCases(7);
    const records = kafkaRecords('transactions', cases);
    const expected = cases.map((c) => expectedRoute(TransactionEvent, c.value, MAX_PAYLOAD_BYTES));
    const rows: DeadLetterRow[] = [];
    const quarantine = new Subject<DeadLetterRow>();
    quarantine.subscribe((r) => rows.push(r));
    // As the job configures routeErrors, then its typed rows (transactionsQuery).
    const typed = await lastValueFrom(
      from(records).pipe(
        enrichMetadata(),
        routeErrors(TransactionEvent, quarantine, { maxPayloadBytes: MAX_PAYLOAD_BYTES, accepts: (value) => TransactionEvent.is(value) }),
        map((r) => transactionRow(r)),
        partitionByDate({ column: 'event_date', from: (r: TransactionRow) => r.event_time, deadLetters: quarantine }),
        toArray(),
      ),
    );
    const typeOf = new Map<bigint, string>([...rows.map((r) => [r.offset, r.error_type] as const), ...typed.map((r) => [r.offset, 'OK'] as const)]);
    expect(rows.length + typed.length).toBe(records.length);
    cases.forEach((c, i) => {
      const got = typeOf.get(BigInt(i));
      if (got !== expected[i]) expect.fail(`#${i} (${c.name}): ${got}, expected ${expected[i]}`);
    });
    expect(typed.length).toBeGreaterThan(100);
    const types = count(rows.map((r) => r.error_type));
    for (const type of ['SCHEMA_VALIDATION_ERROR', 'NESTING_TOO_DEEP', 'ENCODING_ERROR', 'JSON_PARSE_ERROR', 'OVERSIZED_PAYLOAD', 'NULL_VALUE']) {
      expect(types[type], type).toBeGreaterThan(0);
    }
    // Typed rows convert to their Parquet columns; keys and times are what PostgreSQL takes.
    expect(() => packColumns(typed, transactionsTableSpec().columns)).not.toThrow();
    for (const r of typed) {
      expect(ACCOUNT_ID.test(r.account_id)).toBe(true);
      expect(r.event_time >= MIN_EVENT_MICROS && r.event_time < MAX_EVENT_MICROS).toBe(true);
      expect(r.event_date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    }
    expect(() => packColumns(rows, deadLetterTableSpec('q').columns)).not.toThrow();
  });

  it('a record that only fails after routing (here: a partition value) is a dead letter too', async () => {
    const enc = new TextEncoder();
    const rows: DeadLetterRow[] = [];
    const dlq = new Subject<DeadLetterRow>();
    dlq.subscribe((r) => rows.push(r));
    const recs: EnrichedRecord[] = await lastValueFrom(from(kafkaRecords('t', [{ name: 'a', value: enc.encode('{"t":1}') }, { name: 'b', value: enc.encode('{"t":1e300}') }, { name: 'c', value: enc.encode('{"t":2}') }])).pipe(enrichMetadata(), toArray()));
    const out = await lastValueFrom(
      from(recs).pipe(
        routeErrors(null, dlq),
        partitionByDate({ column: 'd', from: (r) => (r.decoded as { t: number }).t, deadLetters: dlq }),
        map((r) => r.offset),
        toArray(),
      ),
    );
    expect(out).toEqual([0n, 2n]);
    expect(rows.map((r) => [r.offset, r.error_type])).toEqual([[1n, 'PROCESSING_ERROR']]);
  });
});

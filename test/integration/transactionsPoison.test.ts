/**
 * Poison events through the transactions job on the real stack: deep nesting, and events that
 * are valid JSON of the right shape but that PostgreSQL cannot store (a year-0000 event time, a
 * NUL or lone surrogates in the account id that keys its rows, an account id longer than a
 * btree key) — first in their partition, so they would open windows that later close. They are
 * quarantined, the job runs to its end, and the valid events behind them are typed and
 * windowed into Delta (read by delta-rs) and PostgreSQL.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startTransactions } from '../../src/pipelines/transactions.ts';
import { RefundEvent, TransactionEvent, createTransactionGenerator } from '../../src/pipelines/transactions/events.ts';
import type { TransactionTopic } from '../../src/pipelines/transactions/events.ts';
import { loadTransactionsConfig } from '../../src/pipelines/transactions/config.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { createTopic, kafka } from './kafkaSupport.ts';
import { stack, uniqueName, verifyDelta } from '../support/stack.ts';
import { expectedRoute } from '../unit/hostilePayloads.ts';

const dirs: string[] = [];
const pool = new pg.Pool({ connectionString: stack.pgUrl, max: 2 });
afterAll(async () => {
  await pool.end();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const MAX_PAYLOAD_BYTES = 1024 * 1024;

describe('transactions job: poison events', () => {
  it('quarantines events no sink can store and deep JSON, and windows the valid events behind them', async () => {
    const prefix = `${uniqueName('txpoison')}.`;
    const pipelineId = uniqueName('txpoison').replaceAll('-', '_');
    await Promise.all([createTopic(`${prefix}transactions`, 1), createTopic(`${prefix}refunds`, 1)]);
    const base = await mkdtemp(join(tmpdir(), 'rxlake-txpoison-'));
    dirs.push(base);

    const enc = new TextEncoder();
    const dec = new TextDecoder();
    const gens = {
      transactions: createTransactionGenerator({ seed: 31, accounts: 6, stepMs: 2_000, outOfOrderFraction: 0 }),
      refunds: createTransactionGenerator({ seed: 32, accounts: 6, stepMs: 2_000, outOfOrderFraction: 0 }),
    };
    const valid = (topic: TransactionTopic) => JSON.parse(dec.decode(gens[topic].next(topic).value)) as Record<string, unknown>;
    const poison = (topic: TransactionTopic): { name: string; value: Uint8Array }[] => {
      const e = valid(topic);
      return [
        { name: 'event time in year 0000', value: enc.encode(JSON.stringify({ ...e, timestamp: '0000-06-01T00:00:00Z' })) },
        { name: 'NUL in the account id', value: enc.encode(JSON.stringify({ ...e, account_id: 'acct\u0000evil' })) },
        { name: 'lone surrogate account id', value: enc.encode(JSON.stringify({ ...e, account_id: '\ud800' })) },
        { name: 'another lone surrogate account id', value: enc.encode(JSON.stringify({ ...e, account_id: '\udc00' })) },
        { name: 'account id of 5,000 characters', value: enc.encode(JSON.stringify({ ...e, account_id: 'k'.repeat(5_000) })) },
        { name: 'arrays 50,000 deep', value: enc.encode('['.repeat(50_000) + ']'.repeat(50_000)) },
        { name: 'objects 100,000 deep', value: enc.encode('{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000)) },
        { name: 'amount 50,000 deep', value: enc.encode(`${JSON.stringify(e).slice(0, -1)},"amount":${'['.repeat(50_000)}${']'.repeat(50_000)}}`) },
      ];
    };
    const codecs = { transactions: TransactionEvent, refunds: RefundEvent } as const;
    const produced: Record<TransactionTopic, { name: string; value: Uint8Array; expected: string }[]> = { transactions: [], refunds: [] };
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      for (const topic of ['transactions', 'refunds'] as const) {
        const values = [...poison(topic), ...Array.from({ length: 150 }, () => ({ name: 'valid', value: enc.encode(JSON.stringify(valid(topic))) }))];
        for (const v of values) {
          await producer.send({ topic: `${prefix}${topic}`, acks: -1, messages: [{ partition: 0, value: Buffer.from(v.value) }] });
          produced[topic].push({ ...v, expected: expectedRoute(codecs[topic], v.value, MAX_PAYLOAD_BYTES) });
        }
      }
    } finally {
      await producer.disconnect();
    }

    const config = loadTransactionsConfig({
      KAFKA_BOOTSTRAP_SERVERS: stack.kafkaBrokers.join(','),
      KAFKA_TOPIC_PREFIX: prefix,
      KAFKA_CONSUMER_GROUP: pipelineId,
      PIPELINE_ID: pipelineId,
      DELTA_BASE_PATH: base,
      POSTGRES_URL: stack.pgUrl,
      POSTGRES_SCHEMA: pipelineId,
      WINDOW_SECONDS: '60',
      WATERMARK_DELAY_SECONDS: '10',
      BATCH_INTERVAL_SECONDS: '0.3',
      MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD_BYTES),
      HTTP_PORT: '0',
      PROGRESS_INTERVAL_SECONDS: '0',
      LOG_LEVEL: 'warn',
    });
    const run = await startTransactions({ config, untilCaughtUp: true, log: createLogger('warn') });
    const summary = await run.done;
    expect(summary.recordsWritten).toBeGreaterThan(0);

    for (const topic of ['transactions', 'refunds'] as const) {
      const events = produced[topic];
      const poisonous = events.slice(0, 8);
      expect(poisonous.map((p) => p.expected)).toEqual([...Array<string>(5).fill('SCHEMA_VALIDATION_ERROR'), ...Array<string>(3).fill('NESTING_TOO_DEEP')]);
      const [typed, quarantine] = await Promise.all([
        verifyDelta(`${base}/${topic}`, { rows: true, columns: ['_kafka_offset', 'account_id'] }),
        verifyDelta(`${base}/quarantine_${topic}`, { rows: true, columns: ['_kafka_offset', 'error_type', 'error_message'] }),
      ]);
      const quarantined = new Map((quarantine.rows ?? []).map((r) => [Number(r._kafka_offset), String(r.error_type)]));
      expect([...quarantined.keys()].sort((a, b) => a - b), topic).toEqual(events.flatMap((e, i) => (e.expected === 'OK' ? [] : [i])));
      events.forEach((e, i) => {
        if (e.expected !== 'OK') expect(quarantined.get(i), `${topic}@${i} ${e.name}`).toBe(e.expected);
      });
      const typedOffsets = (typed.rows ?? []).map((r) => Number(r._kafka_offset)).sort((a, b) => a - b);
      expect(typedOffsets, topic).toEqual(events.flatMap((e, i) => (e.expected === 'OK' ? [i] : [])));
      // The valid events behind the poison ones made windows, in PostgreSQL too.
      const pgRows = await pool.query<{ n: string; bad: string }>(
        `SELECT count(*)::text AS n, count(*) FILTER (WHERE account_id !~ '^acct-[0-9]{4}$')::text AS bad FROM "${pipelineId}"."${topic}_by_account_1m"`,
      );
      expect(Number(pgRows.rows[0]?.n), topic).toBeGreaterThan(10);
      expect(Number(pgRows.rows[0]?.bad), topic).toBe(0);
    }
  }, 180_000);
});

/**
 * Poison events through the transactions job on the real stack: deep nesting, and events that
 * are valid JSON of the right shape but that PostgreSQL cannot store (a year-0000 event time, a
 * NUL or lone surrogates in the account id that keys its rows, an account id longer than a
 * btree key) — first in their partition, so they would open windows that later close. They are
 * quarantined, the job runs to its end, and the valid events behind them are typed and
 * windowed into Delta (read by delta-rs) and PostgreSQL. And an event dated 2099, valid but far
 * ahead of the clock: quarantined, it leaves the watermark and the windows alone.
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
import { transactionsTestEnv } from './transactionsSupport.ts';
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

    const config = loadTransactionsConfig(transactionsTestEnv({ prefix, pipelineId, base }, { WINDOW_SECONDS: '60', WATERMARK_DELAY_SECONDS: '10', MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD_BYTES) }));
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

  it('quarantines an event dated 2099 as EVENT_TIME_TOO_FAR_AHEAD: the windows are exactly those of the other events, none of which is late', async () => {
    const prefix = `${uniqueName('txlead')}.`;
    const pipelineId = uniqueName('txlead').replaceAll('-', '_');
    await createTopic(`${prefix}transactions`, 1);
    const base = await mkdtemp(join(tmpdir(), 'rxlake-txlead-'));
    dirs.push(base);

    // 200 events 3 s apart over the 10 minutes ending 6 h ago, 5 accounts; the 51st is dated 2099.
    // Without the limit it would move the watermark to 2099: every window open then would close
    // with what it had, and the 149 events after it would all be late.
    const WINDOW_MS = 60_000;
    const DELAY_MS = 10_000;
    const start = Math.floor((Date.now() - 6 * 3_600_000) / WINDOW_MS) * WINDOW_MS;
    const FUTURE = 50;
    const events = Array.from({ length: 200 }, (_, i) => ({
      transaction_id: `tx-${i}`,
      account_id: `acct-${i % 5}`,
      amount: (i % 17) + 0.25,
      currency: 'EUR',
      timestamp: i === FUTURE ? '2099-01-01T00:00:00Z' : new Date(start + i * 3_000).toISOString(),
    }));
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      await producer.send({ topic: `${prefix}transactions`, acks: -1, messages: events.map((e) => ({ partition: 0, value: JSON.stringify(e) })) });
    } finally {
      await producer.disconnect();
    }

    const config = loadTransactionsConfig(
      transactionsTestEnv({ prefix, pipelineId, base }, { TRANSACTION_TOPICS: 'transactions', WINDOW_SECONDS: String(WINDOW_MS / 1000), WATERMARK_DELAY_SECONDS: String(DELAY_MS / 1000) }),
    );
    expect(config.maxEventTimeLeadMs).toBe(3_600_000);
    const run = await startTransactions({ config, untilCaughtUp: true, log: createLogger('warn') });
    const summary = await run.done;
    expect(summary.late).toBe(0);
    expect(summary.quarantined).toBe(1);

    // The windows the other events make, closed by their watermark (the largest of their times − delay).
    const normal = events.filter((_, i) => i !== FUTURE).map((e, j) => ({ ...e, t: Date.parse(e.timestamp), j }));
    const watermark = Math.max(...normal.map((e) => e.t)) - DELAY_MS;
    const expected = new Map<string, { count: number; sum: number; max: number }>();
    for (const e of normal) {
      const ws = Math.floor(e.t / WINDOW_MS) * WINDOW_MS;
      if (ws + WINDOW_MS > watermark) continue;
      const key = `${e.account_id}|${ws}`;
      const w = expected.get(key) ?? { count: 0, sum: 0, max: Number.NEGATIVE_INFINITY };
      expected.set(key, { count: w.count + 1, sum: w.sum + e.amount, max: Math.max(w.max, e.amount) });
    }
    expect(expected.size).toBeGreaterThan(40);
    // Events after the 2099 one are in those windows: they were not late.
    expect([...expected.keys()].some((k) => Number(k.split('|')[1]) > start + FUTURE * 3_000 + WINDOW_MS)).toBe(true);

    const [windows, quarantine, typed] = await Promise.all([
      verifyDelta(`${base}/transactions_by_account_1m`, { rows: true, columns: ['account_id', 'window_start', 'window_end', 'event_count', 'amount_sum', 'amount_max'] }),
      verifyDelta(`${base}/quarantine_transactions`, { rows: true, columns: ['_kafka_offset', 'error_type', 'error_message', 'original_payload'] }),
      verifyDelta(`${base}/transactions`, { rows: true, columns: ['_kafka_offset'] }),
    ]);
    const deltaWindows = new Map(
      (windows.rows ?? []).map((r) => {
        const ws = Date.parse(String(r.window_start));
        expect(Date.parse(String(r.window_end)) - ws).toBe(WINDOW_MS);
        return [`${String(r.account_id)}|${ws}`, { count: Number(r.event_count), sum: Number(r.amount_sum), max: Number(r.amount_max) }];
      }),
    );
    expect(windows.rows?.length).toBe(deltaWindows.size);
    expect([...deltaWindows.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [k, e] of expected) {
      const a = deltaWindows.get(k);
      expect(a?.count, k).toBe(e.count);
      expect(a?.sum, k).toBeCloseTo(e.sum, 9);
      expect(a?.max, k).toBe(e.max);
    }
    const pgRows = await pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${pipelineId}"."transactions_by_account_1m"`);
    expect(Number(pgRows.rows[0]?.n)).toBe(expected.size);

    // The 2099 event is in quarantine, and only there; every other event is typed.
    expect(quarantine.rows?.length).toBe(1);
    const q = quarantine.rows?.[0] ?? {};
    expect(Number(q._kafka_offset)).toBe(FUTURE);
    expect(q.error_type).toBe('EVENT_TIME_TOO_FAR_AHEAD');
    expect(String(q.error_message)).toMatch(/^event time 2099-01-01T00:00:00\.000Z is \d+ s ahead of the clock .*MAX_EVENT_TIME_LEAD_SECONDS=3600/);
    expect(JSON.parse(String(q.original_payload))).toEqual(events[FUTURE]);
    const typedOffsets = (typed.rows ?? []).map((r) => Number(r._kafka_offset)).sort((x, y) => x - y);
    expect(typedOffsets).toEqual(events.flatMap((_, i) => (i === FUTURE ? [] : [i])));
  }, 180_000);
});

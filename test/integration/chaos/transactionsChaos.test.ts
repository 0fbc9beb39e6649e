/**
 * Chaos: the transactions job (typed rows, quarantine, per-account 1-minute windows in Delta and
 * PostgreSQL) while transactions arrive on three partitions, in a seeded random order and at
 * seeded random times: SIGKILLed and SIGTERMed and restarted at once, and rebalanced by a brief
 * member that joins its group, takes partitions and returns them untouched (the job's records
 * of open windows are in flight meanwhile). One instance runs at a time (the job holds a
 * PostgreSQL lock per pipeline id), so each restart joins a group whose previous member is
 * either gone (SIGTERM) or still registered until its session times out (SIGKILL): a rebalance
 * either way. Judged with delta-rs and PostgreSQL against the topic read back:
 *
 * - every valid record once in the typed table, with the account, amount and event time it
 *   carried; every corrupt one once in the quarantine table;
 * - every window once in Delta and in PostgreSQL, with count, sum, avg and max of all its events.
 *
 * Events of one account stay in one partition and lag their partition by less than the
 * watermark delay, so no first copy is ever late and the windows are exactly the events grouped
 * by (account, minute); one event an hour ahead on each partition closes them all at the end.
 */
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { corruptTransactionEvent, createTransactionGenerator } from '../../../src/pipelines/transactions/events.ts';
import type { GeneratedTransactionEvent } from '../../../src/pipelines/transactions/events.ts';
import { CORRUPTION_KINDS } from '../../../src/pipelines/rideshare/events.ts';
import {
  CHAOS_SCALE,
  Fleet,
  briefMember,
  SteadyProducer,
  caseRng,
  chaosDelay,
  createTopic,
  eventually,
  keyOf,
  localBase,
  probeDuplicate,
  readTopic,
  expectedClient,
  recordResult,
  scaled,
  stableWith,
  tally,
  waitForGroup,
  caseTimeout,
} from '../../support/chaos.ts';
import type { JobProcess, ProducedMessage, TableBase, TopicTruth } from '../../support/chaos.ts';
import { stack, uniqueName, verifyDelta } from '../../support/stack.ts';

const WINDOW_MS = 60_000;
const DELAY_MS = 15_000;
const PARTITIONS = 3;

const pool = new pg.Pool({ connectionString: stack.pgUrl, max: 2 });
let cleanUp: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const f of cleanUp.reverse()) await f().catch(() => undefined);
  cleanUp = [];
});
afterAll(() => pool.end());

interface Produced {
  readonly event: GeneratedTransactionEvent;
  readonly corrupt: boolean;
  /** The hour-ahead event that closes every window of its partition (its own window stays open). */
  readonly flush: boolean;
}

interface Window {
  count: number;
  sum: number;
  max: number;
}

interface WindowVerdict {
  readonly expected: number;
  readonly rows: number;
  readonly duplicates: number;
  readonly missing: number;
  readonly extra: number;
  readonly wrongValues: number;
  readonly samples: string[];
}

const partitionOf = (account: string): number => Number(account.slice(-4)) % PARTITIONS;

function compareWindows(expected: Map<string, Window>, rows: ReadonlyArray<{ key: string; count: number; sum: number; avg: number; max: number }>): WindowVerdict {
  const seen = new Map<string, number>();
  let extra = 0;
  let wrongValues = 0;
  const samples: string[] = [];
  for (const r of rows) {
    seen.set(r.key, (seen.get(r.key) ?? 0) + 1);
    const e = expected.get(r.key);
    if (e === undefined) {
      extra += 1;
      if (samples.length < 6) samples.push(`extra ${r.key}`);
      continue;
    }
    const close = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));
    if (r.count !== e.count || !close(r.sum, e.sum) || r.max !== e.max || !close(r.avg, e.sum / e.count)) {
      wrongValues += 1;
      if (samples.length < 6) samples.push(`${r.key}: count ${r.count}/${e.count} sum ${r.sum}/${e.sum}`);
    }
  }
  let duplicates = 0;
  for (const [k, n] of seen) {
    if (n > 1) {
      duplicates += n - 1;
      if (samples.length < 6) samples.push(`${k}×${n}`);
    }
  }
  const missing = [...expected.keys()].filter((k) => !seen.has(k)).length;
  return { expected: expected.size, rows: rows.length, duplicates, missing, extra, wrongValues, samples };
}

describe('chaos: the transactions job under kills and rebalances', () => {
  it('typed rows, quarantine and every window exactly once in Delta and PostgreSQL; no process stops by itself', async () => {
    const name = 'transactions-kills';
    const r = caseRng(name);
    const startedAt = Date.now();
    const prefix = `${uniqueName('chaostx')}.`;
    const kafkaTopic = `${prefix}transactions`;
    const pipelineId = uniqueName('chaostx').replaceAll('-', '_');
    const schema = pipelineId;
    await createTopic(stack.kafkaBrokers, kafkaTopic, PARTITIONS);
    const base: TableBase = await localBase('chaos-tx');
    cleanUp.push(() => base.dispose());
    cleanUp.push(async () => void (await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)));
    const fleet = new Fleet();
    cleanUp.push(() => fleet.killAll());
    const env = {
      KAFKA_BOOTSTRAP_SERVERS: stack.kafkaBrokers.join(','),
      KAFKA_TOPIC_PREFIX: prefix,
      KAFKA_CONSUMER_GROUP: pipelineId,
      PIPELINE_ID: pipelineId,
      TRANSACTION_TOPICS: 'transactions',
      DELTA_BASE_PATH: base.uri,
      POSTGRES_URL: stack.pgUrl,
      POSTGRES_SCHEMA: schema,
      WINDOW_SECONDS: String(WINDOW_MS / 1000),
      WATERMARK_DELAY_SECONDS: String(DELAY_MS / 1000),
      // Every partition always has records: none is ever idle (the windows are then exact).
      WATERMARK_IDLE_SECONDS: '3600',
      BATCH_INTERVAL_SECONDS: '0.5',
      KAFKA_SESSION_TIMEOUT_SECONDS: '6',
    };

    // What is produced, by sequence number (the `seq` header maps topic records back to it).
    const gen = createTransactionGenerator({ seed: r.int(1, 1_000_000), accounts: 24, stepMs: 400, outOfOrderFraction: 0.1, maxDelayMs: DELAY_MS - 1000 });
    const produced: Produced[] = [];
    const messageOf = (p: Produced, seq: number, value: Uint8Array | null): ProducedMessage => ({
      key: p.event.key,
      value: value === null ? null : Buffer.from(value),
      partition: partitionOf(p.event.account_id),
      seq,
    });
    const total = scaled(2400);
    const producer = new SteadyProducer({
      brokers: stack.kafkaBrokers,
      topic: kafkaTopic,
      total,
      ratePerSecond: 160,
      partitions: PARTITIONS,
      message: (i) => {
        while (produced.length <= i) {
          const n = produced.length;
          produced.push({ event: gen.next('transactions'), corrupt: n % 17 === 16, flush: false });
        }
        const p = produced[i] as Produced;
        const kind = CORRUPTION_KINDS[Math.floor(i / 17) % CORRUPTION_KINDS.length] ?? 'truncated_json';
        return messageOf(p, i, p.corrupt ? corruptTransactionEvent(kind, p.event, i) : p.event.value);
      },
    });

    // Chaos: one instance at a time, stopped at random moments and restarted at once, or
    // rebalanced by a brief member; in a seeded order.
    const acts: Array<'SIGKILL' | 'SIGTERM' | 'brief member'> = [];
    for (let k = 0; k < CHAOS_SCALE; k++) acts.push('SIGKILL', 'brief member', 'brief member', 'SIGTERM');
    for (let i = acts.length - 1; i > 0; i--) {
      const j = r.int(0, i);
      [acts[i], acts[j]] = [acts[j] as (typeof acts)[number], acts[i] as (typeof acts)[number]];
    }
    const done: string[] = [];
    let job: JobProcess = fleet.start('transactions', env, 'tx');
    for (const act of acts) {
      await job.connected(90_000);
      await chaosDelay(r, 500, 3000);
      if (act === 'brief member') {
        const holdMs = r.between(200, 1500);
        await briefMember(stack.kafkaBrokers, pipelineId, kafkaTopic, async () => {
          await waitForGroup(stack.kafkaBrokers, pipelineId, 'the job and the brief member holding partitions', stableWith(2, PARTITIONS));
          await new Promise((res) => setTimeout(res, holdMs));
        });
        await waitForGroup(stack.kafkaBrokers, pipelineId, 'the job alone with every partition', stableWith(1, PARTITIONS));
        done.push(`brief member ${Math.round(holdMs)} ms`);
        continue;
      }
      const exit = act === 'SIGKILL' ? await job.kill() : await job.term();
      done.push(`${act}→${exit.code ?? exit.signal}`);
      job = fleet.start('transactions', env, 'tx');
    }
    await producer.done;
    // Close every window: one event an hour ahead on each partition.
    const last = Math.max(...produced.map((p) => p.event.eventTimeMs));
    const flushes = new SteadyProducer({
      brokers: stack.kafkaBrokers,
      topic: kafkaTopic,
      total: PARTITIONS,
      ratePerSecond: 1000,
      partitions: PARTITIONS,
      message: (p) => {
        const account = `acct-${9000 + p}`;
        const eventTimeMs = last + 3_600_000;
        const value = new TextEncoder().encode(
          JSON.stringify({ transaction_id: `flush-${p}`, account_id: account, amount: 1, currency: 'EUR', timestamp: new Date(eventTimeMs).toISOString() }),
        );
        const f: Produced = { event: { topic: 'transactions', key: account, value, eventTimeMs, account_id: account, amount: 1 }, corrupt: false, flush: true };
        produced[total + p] = f;
        return messageOf(f, total + p, value);
      },
    });
    await flushes.done;

    // The ground truth: what the topic holds, mapped back to what was produced.
    const truth: TopicTruth = await readTopic(stack.kafkaBrokers, kafkaTopic);
    const validTruth: TopicTruth = { ...truth, records: new Map() };
    const corruptTruth: TopicTruth = { ...truth, records: new Map() };
    const expectedWindows = new Map<string, Window>();
    for (const [k, rec] of truth.records) {
      const p = produced[rec.seq ?? -1];
      if (p === undefined) throw new Error(`record ${k} carries no known seq`);
      (p.corrupt ? corruptTruth : validTruth).records.set(k, rec);
      if (p.corrupt || p.flush) continue;
      const start = Math.floor(p.event.eventTimeMs / WINDOW_MS) * WINDOW_MS;
      const wk = `${p.event.account_id}|${start}`;
      const w = expectedWindows.get(wk) ?? { count: 0, sum: 0, max: Number.NEGATIVE_INFINITY };
      w.count += 1;
      w.sum += p.event.amount;
      w.max = Math.max(w.max, p.event.amount);
      expectedWindows.set(wk, w);
    }
    const eventOf = (partition: unknown, offset: unknown): GeneratedTransactionEvent | undefined => {
      const rec = truth.records.get(keyOf(partition, offset));
      return rec === undefined ? undefined : produced[rec.seq ?? -1]?.event;
    };

    const windowsTable = 'transactions_by_account_1m';
    const read = async () => {
      const [typed, quarantine, deltaWindows, pgWindows] = await Promise.all([
        verifyDelta(`${base.uri}/transactions`, { rows: true, columns: ['_kafka_partition', '_kafka_offset', 'account_id', 'amount', 'event_time'] }),
        verifyDelta(`${base.uri}/quarantine_transactions`, { rows: true, columns: ['_kafka_partition', '_kafka_offset'] }),
        verifyDelta(`${base.uri}/${windowsTable}`, { rows: true, columns: ['account_id', 'window_start', 'window_end', 'event_count', 'amount_sum', 'amount_avg', 'amount_max'] }),
        pool.query<{ account_id: string; start_ms: string; event_count: string; amount_sum: number; amount_avg: number; amount_max: number }>(
          `SELECT account_id, (extract(epoch FROM window_start) * 1000)::bigint::text AS start_ms, event_count::text, amount_sum, amount_avg, amount_max FROM "${schema}"."${windowsTable}"`,
        ),
      ]);
      const typedVerdict = tally(validTruth, [{ rows: typed.rows ?? [] }]);
      let typedWrong = 0;
      for (const row of typed.rows ?? []) {
        const e = eventOf(row._kafka_partition, row._kafka_offset);
        if (e === undefined) continue;
        if (row.account_id !== e.account_id || row.amount !== e.amount || Math.floor(Date.parse(String(row.event_time))) !== e.eventTimeMs) typedWrong += 1;
      }
      const quarantineVerdict = tally(corruptTruth, [{ rows: quarantine.rows ?? [] }]);
      const delta = compareWindows(
        expectedWindows,
        (deltaWindows.rows ?? []).map((w) => ({
          key: `${String(w.account_id)}|${Date.parse(String(w.window_start))}`,
          count: Number(w.event_count),
          sum: Number(w.amount_sum),
          avg: Number(w.amount_avg),
          max: Number(w.amount_max),
        })),
      );
      const postgres = compareWindows(
        expectedWindows,
        pgWindows.rows.map((w) => ({ key: `${w.account_id}|${w.start_ms}`, count: Number(w.event_count), sum: w.amount_sum, avg: w.amount_avg, max: w.amount_max })),
      );
      return { typed: { ...typedVerdict, wrongValues: typedWrong }, quarantine: quarantineVerdict, delta, postgres };
    };

    const t0 = Date.now();
    const covered = await eventually(
      async () => {
        try {
          const v = await read();
          return v.typed.missing === 0 && v.quarantine.missing === 0 && v.delta.missing === 0 && v.postgres.missing === 0;
        } catch {
          return false;
        }
      },
      60_000,
      1000,
    );
    const settleMs = Date.now() - t0;
    await fleet.stopAll();
    if ((await probeDuplicate(`${base.uri}/transactions`)) > 0) {
      await probeDuplicate(`${base.uri}/${windowsTable}`);
      await pool.query(`UPDATE "${schema}"."${windowsTable}" SET event_count = event_count + 1 WHERE ctid = (SELECT ctid FROM "${schema}"."${windowsTable}" LIMIT 1)`);
    }
    const v = await read();
    const exits = fleet.counts();
    const clients = fleet.clients();
    await recordResult(name, {
      clients,
      seconds: Math.round((Date.now() - startedAt) / 100) / 10,
      records: truth.records.size,
      typed: { expected: v.typed.expected, rows: v.typed.rows, duplicates: v.typed.duplicates, missing: v.typed.missing, extra: v.typed.extra, wrongValues: v.typed.wrongValues },
      quarantine: { expected: v.quarantine.expected, rows: v.quarantine.rows, duplicates: v.quarantine.duplicates, missing: v.quarantine.missing, extra: v.quarantine.extra },
      deltaWindows: v.delta,
      pgWindows: v.postgres,
      covered,
      settleMs,
      acts: done,
      exits,
    });
    const msg = JSON.stringify({ ...v, exits: fleet.exits().filter((e) => e.sent === undefined || e.code !== 0) });
    expect(clients, 'the Kafka client the processes consumed with').toEqual([expectedClient(env)]);
    expect(v.typed.expected, 'the case produced valid records').toBeGreaterThan(0);
    expect(expectedWindows.size, 'the case closes windows').toBeGreaterThan(20);
    expect.soft(v.typed.duplicates, msg).toBe(0);
    expect.soft(v.typed.missing, msg).toBe(0);
    expect.soft(v.typed.extra, msg).toBe(0);
    expect.soft(v.typed.wrongValues, msg).toBe(0);
    expect.soft(v.quarantine.duplicates, msg).toBe(0);
    expect.soft(v.quarantine.missing, msg).toBe(0);
    expect.soft(v.quarantine.extra, msg).toBe(0);
    for (const w of [v.delta, v.postgres]) {
      expect.soft(w.duplicates, msg).toBe(0);
      expect.soft(w.missing, msg).toBe(0);
      expect.soft(w.extra, msg).toBe(0);
      expect.soft(w.wrongValues, msg).toBe(0);
    }
    expect.soft(fleet.selfExitsNonZero(), msg).toEqual([]);
    expect.soft(fleet.termNonZero(), msg).toEqual([]);
  }, caseTimeout());
});

/**
 * The retail metrics job end to end on the real stack: generated transactions and refunds (some
 * corrupt, some duplicated, some out of order — within the 2-minute watermark and beyond it) on
 * real Kafka topics → the PostgreSQL tables `transactions`, `refunds`, `product_metrics_minute`
 * and `quarantine`, each compared with what this test computes from the events it produced.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startRetail } from '../../src/pipelines/retail.ts';
import { loadRetailConfig } from '../../src/pipelines/retail/config.ts';
import { corruptRetailEvent, createRetailGenerator } from '../../src/pipelines/retail/events.ts';
import type { GeneratedRetailEvent, RetailTopic } from '../../src/pipelines/retail/events.ts';
import { CORRUPTION_KINDS, EXPECTED_ERROR_TYPE } from '../../src/pipelines/rideshare/events.ts';
import type { CorruptionKind } from '../../src/pipelines/rideshare/events.ts';
import { createTopic, kafka, withAdmin } from './kafkaSupport.ts';
import { killMidStream, startJobProcess } from '../support/jobProcess.ts';
import { stack, uniqueName } from '../support/stack.ts';

const pool = new pg.Pool({ connectionString: stack.pgUrl, max: 2 });
afterAll(async () => {
  await pool.end();
});

const WINDOW_MS = 60_000;
/** The job's default watermark delay (the spec's 2 minutes). */
const DELAY_MS = 120_000;

/** One produced record of a topic (its offset is its index: one partition per topic). */
interface Produced {
  readonly kind: RetailTopic;
  /** The event as sent, `null` when corrupt. */
  readonly event: Record<string, unknown> | null;
  readonly corrupt: CorruptionKind | null;
  readonly eventTimeMs: number;
}

const encoder = new TextEncoder();

/**
 * The events of a test: a generator whose events lag the clock by up to 5 minutes now and then
 * (10 %), every 29th record corrupt, every 37th transaction a duplicate of an earlier id (other
 * product and amount: the first stays) and every 23rd refund a correction of an earlier one (the
 * last stays).
 */
function retailEvents(seed: number) {
  const gen = createRetailGenerator({ seed, products: 12, stepMs: 400, outOfOrderFraction: 0.1, maxDelayMs: 300_000, refundFraction: 0.25, startTime: Date.UTC(2026, 0, 1) });
  const produced: Record<RetailTopic, Produced[]> = { transactions: [], refunds: [] };
  let n = 0;
  const next = (): { kind: RetailTopic; value: Uint8Array | null; entry: Produced } => {
    n += 1;
    let e: GeneratedRetailEvent = gen.next();
    let event = JSON.parse(new TextDecoder().decode(e.value)) as Record<string, unknown>;
    const earlier = produced[e.kind].filter((p) => p.event !== null);
    if (n % 37 === 0 && e.kind === 'transactions' && earlier.length > 0) {
      const first = earlier[n % earlier.length]?.event as Record<string, unknown>;
      event = { ...event, transaction_id: first.transaction_id };
    } else if (n % 23 === 0 && e.kind === 'refunds' && earlier.length > 0) {
      const first = earlier[n % earlier.length]?.event as Record<string, unknown>;
      event = { ...event, refund_id: first.refund_id, reason: 'corrected' };
    }
    e = { ...e, value: encoder.encode(JSON.stringify(event)) };
    const kind = n % 29 === 0 ? (CORRUPTION_KINDS[(n / 29) % CORRUPTION_KINDS.length] as CorruptionKind) : null;
    const value = kind === null ? e.value : corruptRetailEvent(kind, e, n);
    const entry = { kind: e.kind, event: kind === null ? event : null, corrupt: kind, eventTimeMs: e.eventTimeMs };
    return { kind: e.kind, value, entry };
  };
  return { produced, next };
}

/** An amount as an exact integer: the double times 2^200 (amounts of cents have no bits below 2^-200). */
const exactly = (amount: number): bigint => BigInt(amount * 2 ** 200);
/** A sum of `exactly`s rounded once to the nearest double (BigInt to Number rounds to nearest, ties to even). */
const rounded = (sum: bigint): number => Number(sum) / 2 ** 200;

interface Expected {
  readonly sales: Map<string, Record<string, unknown> & { offset: number }>;
  readonly refunds: Map<string, Record<string, unknown> & { offset: number }>;
  readonly quarantine: string[];
  /** Closed windows by `product|startMs`: count and revenue (`exactly`). */
  readonly windows: Map<string, { count: number; revenue: bigint }>;
  /** Valid transactions dropped as late, and counted although behind the watermark. */
  readonly late: number;
  readonly behindButCounted: number;
}

/** What the tables must hold, computed from the produced events alone. */
function expected(produced: Record<RetailTopic, Produced[]>): Expected {
  const sales = new Map<string, Record<string, unknown> & { offset: number }>();
  const refunds = new Map<string, Record<string, unknown> & { offset: number }>();
  const quarantine: string[] = [];
  for (const kind of ['transactions', 'refunds'] as const) {
    produced[kind].forEach((p, offset) => {
      if (p.event === null) quarantine.push(`${kind}@${offset}:${EXPECTED_ERROR_TYPE[p.corrupt as CorruptionKind]}`);
      else if (kind === 'transactions' && !sales.has(String(p.event.transaction_id))) sales.set(String(p.event.transaction_id), { ...p.event, offset });
      else if (kind === 'refunds') refunds.set(String(p.event.refund_id), { ...p.event, offset });
    });
  }
  // Windows: one partition, so the watermark is the largest event time so far minus the delay.
  const open = new Map<string, { count: number; revenue: bigint; end: number }>();
  const windows = new Map<string, { count: number; revenue: bigint }>();
  let watermark = Number.NEGATIVE_INFINITY;
  let late = 0;
  let behindButCounted = 0;
  for (const p of produced.transactions) {
    if (p.event === null) continue;
    const start = Math.floor(p.eventTimeMs / WINDOW_MS) * WINDOW_MS;
    if (start + WINDOW_MS <= watermark) {
      late += 1;
      continue;
    }
    if (p.eventTimeMs < watermark) behindButCounted += 1;
    const key = `${String(p.event.product_id)}|${start}`;
    const w = open.get(key) ?? { count: 0, revenue: 0n, end: start + WINDOW_MS };
    w.count += 1;
    w.revenue += exactly(Number(p.event.amount));
    open.set(key, w);
    watermark = Math.max(watermark, p.eventTimeMs - DELAY_MS);
    for (const [k, o] of open) {
      if (o.end <= watermark) {
        windows.set(k, { count: o.count, revenue: o.revenue });
        open.delete(k);
      }
    }
  }
  return { sales, refunds, quarantine: quarantine.sort(), windows, late, behindButCounted };
}

interface Setup {
  readonly env: Record<string, string>;
  readonly schema: string;
  readonly produced: Record<RetailTopic, Produced[]>;
  produce(n: number): Promise<void>;
  check(what: string): Promise<Expected>;
}

async function setUp(seed: number): Promise<Setup> {
  const prefix = `${uniqueName('rt')}.`;
  const id = uniqueName('rtp').replaceAll('-', '_');
  await Promise.all([createTopic(`${prefix}transactions`, 1), createTopic(`${prefix}refunds`, 1)]);
  const url = new URL(stack.pgUrl);
  // As the job's users configure it: KAFKA_BOOTSTRAP, PG_HOST, PG_PORT, PG_DB, PG_USER.
  const env = {
    KAFKA_BOOTSTRAP: stack.kafkaBrokers.join(','),
    KAFKA_TOPIC_PREFIX: prefix,
    PG_HOST: url.hostname,
    PG_PORT: url.port,
    PG_DB: url.pathname.slice(1) || 'postgres',
    PG_USER: decodeURIComponent(url.username) || 'postgres',
    POSTGRES_SCHEMA: id,
    PIPELINE_ID: id,
    KAFKA_CONSUMER_GROUP: id,
    BATCH_INTERVAL_SECONDS: '0.3',
    KAFKA_SESSION_TIMEOUT_SECONDS: '6',
    HTTP_PORT: '0',
    PROGRESS_INTERVAL_SECONDS: '0',
    LOG_LEVEL: 'warn',
  };
  const events = retailEvents(seed);
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  const produce = async (n: number): Promise<void> => {
    const messages: Record<RetailTopic, Array<{ value: Buffer | null; partition: number }>> = { transactions: [], refunds: [] };
    for (let i = 0; i < n; i++) {
      const { kind, value, entry } = events.next();
      events.produced[kind].push(entry);
      messages[kind].push({ value: value === null ? null : Buffer.from(value), partition: 0 });
    }
    await producer.connect();
    for (const kind of ['transactions', 'refunds'] as const) {
      for (let i = 0; i < messages[kind].length; i += 1000) await producer.send({ topic: `${prefix}${kind}`, acks: -1, messages: messages[kind].slice(i, i + 1000) });
    }
  };
  const q = async <R extends pg.QueryResultRow>(sql: string): Promise<R[]> => (await pool.query<R>(sql.replaceAll('$S', `"${id}"`))).rows;
  const check = async (what: string): Promise<Expected> => {
    const want = expected(events.produced);
    const sales = await q<{ transaction_id: string; product_id: string; amount: number; event_time: Date; kafka_offset: string; quantity: number | null }>(
      'SELECT transaction_id, product_id, amount, event_time, kafka_offset::text, quantity FROM $S.transactions',
    );
    expect(sales.length, `${what}: transactions`).toBe(want.sales.size);
    for (const r of sales) {
      const e = want.sales.get(r.transaction_id);
      expect(e, `${what}: transaction ${r.transaction_id}`).toBeDefined();
      // The first event of an id stays (ON CONFLICT DO NOTHING), wherever it was spelled.
      expect({ product: r.product_id, amount: r.amount, offset: Number(r.kafka_offset), quantity: r.quantity }).toEqual({ product: e?.product_id, amount: e?.amount, offset: e?.offset, quantity: e?.quantity });
      expect(r.event_time.getTime()).toBe(events.produced.transactions[e?.offset ?? -1]?.eventTimeMs);
    }
    const refunds = await q<{ refund_id: string; transaction_id: string; amount: number; reason: string | null; kafka_offset: string }>('SELECT refund_id, transaction_id, amount, reason, kafka_offset::text FROM $S.refunds');
    expect(refunds.length, `${what}: refunds`).toBe(want.refunds.size);
    for (const r of refunds) {
      const e = want.refunds.get(r.refund_id);
      // The last event of an id stays (upserted).
      expect({ tx: r.transaction_id, amount: r.amount, reason: r.reason, offset: Number(r.kafka_offset) }, `${what}: refund ${r.refund_id}`).toEqual({ tx: e?.transaction_id, amount: e?.amount, reason: e?.reason ?? null, offset: e?.offset });
    }
    const quarantine = await q<{ k: string }>("SELECT regexp_replace(kafka_topic, '^.*\\.', '') || '@' || kafka_offset || ':' || error_type AS k FROM $S.quarantine");
    expect(quarantine.map((r) => r.k).sort(), `${what}: quarantine`).toEqual(want.quarantine);
    const reasons = await q<{ n: string }>("SELECT count(*)::text AS n FROM $S.quarantine WHERE reason = '' OR (raw_value IS NULL AND error_type <> 'NULL_VALUE')");
    expect(Number(reasons[0]?.n), `${what}: every quarantined record has a reason and its raw value`).toBe(0);
    const windows = await q<{ product_id: string; start: string; end_: string; total_revenue: number; transaction_count: string }>(
      'SELECT product_id, (extract(epoch FROM window_start) * 1000)::bigint::text AS start, (extract(epoch FROM window_end) * 1000)::bigint::text AS end_, total_revenue, transaction_count::text FROM $S.product_metrics_minute',
    );
    expect(windows.map((w) => `${w.product_id}|${w.start}`).sort(), `${what}: windows`).toEqual([...want.windows.keys()].sort());
    for (const w of windows) {
      const e = want.windows.get(`${w.product_id}|${w.start}`);
      expect(Number(w.end_) - Number(w.start)).toBe(WINDOW_MS);
      expect(Number(w.transaction_count), `${what}: count ${w.product_id}@${w.start}`).toBe(e?.count);
      // Exactly rounded sums: the double nearest to the true sum of the amounts, whatever the order.
      expect(w.total_revenue, `${what}: revenue ${w.product_id}@${w.start}`).toBe(e === undefined ? Number.NaN : rounded(e.revenue));
    }
    return want;
  };
  return { env, schema: id, produced: events.produced, produce, check };
}

describe('retail job', () => {
  it('writes the three queries and the quarantine exactly once across bounded runs; late events beyond the watermark are dropped, those within counted', async () => {
    const s = await setUp(7);
    const config = loadRetailConfig(s.env);
    expect(config.watermarkDelayMs).toBe(DELAY_MS);
    const run = async () => (await startRetail({ config, untilCaughtUp: true, http: false })).done;

    await s.produce(1800);
    const first = await run();
    const want = await s.check('first run');
    expect(want.windows.size, 'the test closes windows').toBeGreaterThan(20);
    expect(want.late, 'some events come after the watermark closed their window').toBeGreaterThan(0);
    expect(want.behindButCounted, 'some come behind the watermark while their window is open').toBeGreaterThan(0);
    expect(first.late).toBe(want.late);
    expect(first.quarantined).toBe(want.quarantine.length);

    // More events: windows open at the end of the first run close now, from all their records.
    await s.produce(1500);
    await run();
    await s.check('second run');

    // Nothing new: nothing written, nothing duplicated.
    const third = await run();
    expect(third.recordsWritten).toBe(0);
    await s.check('third run');
  }, 110_000);

  it('a SIGKILL mid-stream and a restart leave every table exact', async () => {
    const s = await setUp(8);
    // As users run it: `node src/pipelines/retail.ts` (tsx on Node 20), in its own process group.
    const job = startJobProcess('retail', [], { ...s.env, LOG_LEVEL: 'info' }, { group: true });
    const windowsWritten = async (): Promise<number> => Number((await pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${s.schema}".product_metrics_minute`).catch(() => ({ rows: [{ n: '0' }] }))).rows[0]?.n);
    const committedNext = async (): Promise<number> => {
      const committed = await withAdmin((admin) => admin.fetchOffsets({ groupId: s.env.KAFKA_CONSUMER_GROUP as string, topics: [`${s.env.KAFKA_TOPIC_PREFIX}transactions`] }));
      return Number(committed[0]?.partitions[0]?.offset ?? -1);
    };
    const rowsAhead = async (next: number): Promise<number> =>
      Number((await pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${s.schema}".transactions WHERE kafka_offset >= $1`, [Math.max(0, next)]).catch(() => ({ rows: [{ n: '0' }] }))).rows[0]?.n);
    // Events keep coming while the job runs; it is killed once it has written windows and holds
    // rows past its committed offset (rows of open windows' records are written at once, their
    // offsets wait for the windows) — checked, not left to timing: a fast read can catch up and
    // commit everything between two feeds.
    await killMidStream(job, {
      feed: () => s.produce(150),
      ready: async () => (await windowsWritten()) >= 15 && (await rowsAhead(await committedNext())) > 0,
      minRounds: 5,
      maxRounds: 60,
      pauseMs: 200,
      what: '15 windows and rows past the committed offset',
    });
    // The kill left work to redo: records past the committed offset that PostgreSQL already holds.
    const next = await committedNext();
    expect(next).toBeLessThan(s.produced.transactions.length);
    expect(await rowsAhead(next), 'rows written past the committed offset: the restart must not write them twice').toBeGreaterThan(0);
    // And records of windows already written, read again without the rest of their window: the
    // restart must not write those windows again from them.
    const written = new Set((await pool.query<{ k: string }>(`SELECT product_id || '|' || (extract(epoch FROM window_start) * 1000)::bigint AS k FROM "${s.schema}".product_metrics_minute`)).rows.map((r) => r.k));
    const windowOf = (p: Produced): string => `${String(p.event?.product_id)}|${Math.floor(p.eventTimeMs / WINDOW_MS) * WINDOW_MS}`;
    const before = new Set(s.produced.transactions.slice(0, next).flatMap((p) => (p.event === null ? [] : [windowOf(p)])));
    const split = s.produced.transactions.slice(next).filter((p) => p.event !== null && written.has(windowOf(p)) && before.has(windowOf(p)));
    expect(split.length, 'records of written windows past the committed offset').toBeGreaterThan(0);
    await s.produce(800);
    const config = loadRetailConfig(s.env);
    await (await startRetail({ config, untilCaughtUp: true, http: false })).done;
    const want = await s.check('after the crash');
    expect(want.late).toBeGreaterThan(0);
  }, 110_000);
});

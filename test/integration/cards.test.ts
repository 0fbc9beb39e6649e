/**
 * The card medallion job end to end on the real stack: generated card transactions (some corrupt,
 * some with fields of the wrong type, some out of order — within the 5-minute watermark and
 * beyond it) on a real Kafka topic → the Delta tables bronze, quarantine, silver and gold (read
 * back with delta-rs) and the gold windows in PostgreSQL, each compared with what this test
 * computes from the records it produced.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startCards } from '../../src/pipelines/cards.ts';
import { loadCardsConfig } from '../../src/pipelines/cards/config.ts';
import { corruptCardEvent, createCardGenerator } from '../../src/pipelines/cards/events.ts';
import { CORRUPTION_KINDS, EXPECTED_ERROR_TYPE } from '../../src/pipelines/rideshare/events.ts';
import type { CorruptionKind } from '../../src/pipelines/rideshare/events.ts';
import { createTopic, kafka, withAdmin } from './kafkaSupport.ts';
import { killMidStream, startJobProcess } from '../support/jobProcess.ts';
import { stack, uniqueName, verifyDelta } from '../support/stack.ts';

const pool = new pg.Pool({ connectionString: stack.pgUrl, max: 2 });
const dirs: string[] = [];
afterAll(async () => {
  await pool.end();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const WINDOW_MS = 60_000;
/** The job's default watermark delay (the spec's 5 minutes). */
const DELAY_MS = 300_000;

/** One produced record (its offset is its index: one partition). */
interface Produced {
  readonly key: string;
  /** The bytes sent (null: a tombstone). */
  readonly value: Uint8Array | null;
  /** The event when it is a valid card event, else null. */
  readonly event: Record<string, unknown> | null;
  /** Why it must be quarantined, else null. */
  readonly error: string | null;
  readonly eventTimeMicros: bigint;
}

const encoder = new TextEncoder();

/**
 * The records of a test: card events (40 cards, ~150 ms apart, 10 % up to 10 minutes behind),
 * every 31st corrupt as that job's producer makes them, every 43rd without a card_id, and every
 * 17th valid one with a field of the wrong type (amount as text, lat as text, or no amount at all:
 * silver has nulls there, gold leaves them out of the sums).
 */
function cardRecords(seed: number) {
  const gen = createCardGenerator({ seed, cards: 40, stepMs: 150, outOfOrderFraction: 0.1, maxDelayMs: 600_000, startTime: Date.UTC(2026, 0, 1) });
  const produced: Produced[] = [];
  let n = 0;
  const next = (): Produced => {
    n += 1;
    const e = gen.next();
    let event = JSON.parse(new TextDecoder().decode(e.value)) as Record<string, unknown>;
    if (n % 31 === 0) {
      const kind = CORRUPTION_KINDS[(n / 31) % CORRUPTION_KINDS.length] as CorruptionKind;
      return { key: e.key, value: corruptCardEvent(kind, e, n), event: null, error: EXPECTED_ERROR_TYPE[kind], eventTimeMicros: e.eventTimeMicros };
    }
    if (n % 43 === 0) {
      delete event.card_id;
      return { key: e.key, value: encoder.encode(JSON.stringify(event)), event: null, error: 'SCHEMA_VALIDATION_ERROR', eventTimeMicros: e.eventTimeMicros };
    }
    if (n % 17 === 0) event = n % 3 === 0 ? { ...event, amount: String(event.amount) } : n % 3 === 1 ? { ...event, lat: 'north' } : { ...event, amount: undefined };
    return { key: e.key, value: encoder.encode(JSON.stringify(event)), event, error: null, eventTimeMicros: e.eventTimeMicros };
  };
  return { produced, next };
}

/** An amount as an exact integer: the double times 2^200. */
const exactly = (amount: number): bigint => BigInt(amount * 2 ** 200);
/** A sum of `exactly`s rounded once to the nearest double. */
const rounded = (sum: bigint): number => Number(sum) / 2 ** 200;
/** Epoch µs as delta_verify.py prints timestamps. */
const isoMicros = (us: bigint): string => `${new Date(Number(us / 1000n)).toISOString().slice(0, 19)}.${String(us % 1_000_000n).padStart(6, '0')}Z`;
const numberOrNull = (v: unknown): number | null => (typeof v === 'number' ? v : null);
const textOrNull = (v: unknown): string | null => (typeof v === 'string' ? v : null);

interface Gold {
  count: number;
  amounts: number;
  sum: bigint;
  max: number | null;
}

/** The closed gold windows (`card|startMs`), the late events and those behind the watermark that still counted. */
function goldOf(produced: readonly Produced[]): { windows: Map<string, Gold>; late: number; behindButCounted: number } {
  const open = new Map<string, Gold & { end: number }>();
  const windows = new Map<string, Gold>();
  let watermark = Number.NEGATIVE_INFINITY;
  let late = 0;
  let behindButCounted = 0;
  for (const p of produced) {
    if (p.event === null) continue;
    const t = Number(p.eventTimeMicros / 1000n);
    const start = Math.floor(t / WINDOW_MS) * WINDOW_MS;
    if (start + WINDOW_MS <= watermark) {
      late += 1;
      continue;
    }
    if (t < watermark) behindButCounted += 1;
    const key = `${String(p.event.card_id)}|${start}`;
    const w = open.get(key) ?? { count: 0, amounts: 0, sum: 0n, max: null, end: start + WINDOW_MS };
    w.count += 1;
    const amount = numberOrNull(p.event.amount);
    if (amount !== null) {
      w.amounts += 1;
      w.sum += exactly(amount);
      w.max = w.max === null ? amount : Math.max(w.max, amount);
    }
    open.set(key, w);
    watermark = Math.max(watermark, t - DELAY_MS);
    for (const [k, o] of open) {
      if (o.end <= watermark) {
        windows.set(k, { count: o.count, amounts: o.amounts, sum: o.sum, max: o.max });
        open.delete(k);
      }
    }
  }
  return { windows, late, behindButCounted };
}

interface Setup {
  readonly env: Record<string, string>;
  readonly base: string;
  readonly schema: string;
  readonly topic: string;
  readonly produced: Produced[];
  produce(n: number): Promise<void>;
  check(what: string): Promise<ReturnType<typeof goldOf>>;
}

async function setUp(seed: number): Promise<Setup> {
  const topic = uniqueName('cards');
  const id = uniqueName('cdp').replaceAll('-', '_');
  const base = await mkdtemp(join(tmpdir(), 'rxlake-cards-'));
  dirs.push(base);
  await createTopic(topic, 1);
  // As the job's users configure it (and POSTGRES_URL: gold into PostgreSQL too).
  const env = {
    KAFKA_BOOTSTRAP_SERVERS: stack.kafkaBrokers.join(','),
    KAFKA_TOPIC: topic,
    OUTPUT_PATH: base,
    TRIGGER_INTERVAL: '300 milliseconds',
    STARTING_OFFSETS: 'earliest',
    POSTGRES_URL: stack.pgUrl,
    POSTGRES_SCHEMA: id,
    PIPELINE_ID: id,
    KAFKA_CONSUMER_GROUP: id,
    KAFKA_SESSION_TIMEOUT_SECONDS: '6',
    HTTP_PORT: '0',
    PROGRESS_INTERVAL_SECONDS: '0',
    LOG_LEVEL: 'warn',
  };
  const records = cardRecords(seed);
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  const produce = async (n: number): Promise<void> => {
    const batch = Array.from({ length: n }, () => records.next());
    records.produced.push(...batch);
    await producer.connect();
    for (let i = 0; i < batch.length; i += 1000) {
      await producer.send({ topic, acks: -1, messages: batch.slice(i, i + 1000).map((p) => ({ key: p.key, value: p.value === null ? null : Buffer.from(p.value), partition: 0 })) });
    }
  };
  const check = async (what: string): Promise<ReturnType<typeof goldOf>> => {
    const { produced } = records;
    // Bronze: every record once, as sent.
    const bronze = (await verifyDelta(`${base}/bronze`, { rows: true, columns: ['offset', 'key', 'value', 'partition'] })).rows ?? [];
    expect(bronze.map((r) => Number(r.offset)), `${what}: bronze offsets`).toEqual(produced.map((_, i) => i));
    for (const r of bronze) {
      const p = produced[Number(r.offset)] as Produced;
      expect(r.key).toBe(p.key);
      const utf8 = p.value === null ? null : new TextDecoder('utf-8', { fatal: false }).decode(p.value);
      expect(r.value, `${what}: bronze value @${String(r.offset)}`).toBe(utf8);
    }
    // Quarantine: exactly the records that are not card events, with the reason and the raw string.
    const quarantine = (await verifyDelta(`${base}/quarantine`, { rows: true, columns: ['offset', 'error_type', 'raw_value', 'error_message', 'ingest_time'] })).rows ?? [];
    expect(quarantine.map((r) => `${String(r.offset)}:${String(r.error_type)}`), `${what}: quarantine`).toEqual(produced.flatMap((p, i) => (p.error === null ? [] : [`${i}:${p.error}`])));
    for (const r of quarantine) {
      const p = produced[Number(r.offset)] as Produced;
      expect(r.raw_value).toBe(p.value === null ? null : new TextDecoder().decode(p.value));
      expect(String(r.error_message).length).toBeGreaterThan(0);
      expect(r.ingest_time).toMatch(/^\d{4}-\d\d-\d\dT/);
    }
    // Silver: the valid events, typed; a field of the wrong type is null.
    const silver = (await verifyDelta(`${base}/silver`, { rows: true, columns: ['kafka_offset', 'txn_id', 'event_ts', 'event_time', 'card_id', 'amount', 'lat', 'status', 'event_date'] })).rows ?? [];
    expect(silver.map((r) => Number(r.kafka_offset)), `${what}: silver offsets`).toEqual(produced.flatMap((p, i) => (p.event === null ? [] : [i])));
    for (const r of silver) {
      const p = produced[Number(r.kafka_offset)] as Produced;
      const e = p.event as Record<string, unknown>;
      expect({ txn: r.txn_id, ts: r.event_ts, time: r.event_time, card: r.card_id, amount: r.amount, lat: r.lat, status: r.status, date: r.event_date }, `${what}: silver @${String(r.kafka_offset)}`).toEqual({
        txn: e.txn_id,
        ts: e.event_ts,
        time: isoMicros(p.eventTimeMicros),
        card: e.card_id,
        amount: numberOrNull(e.amount),
        lat: numberOrNull(e.lat),
        status: textOrNull(e.status),
        date: isoMicros(p.eventTimeMicros).slice(0, 10),
      });
    }
    // Gold, in Delta and in PostgreSQL: the windows closed by the watermark, exactly.
    const want = goldOf(produced);
    const deltaGold = (await verifyDelta(`${base}/gold`, { rows: true, columns: ['card_id', 'window_start', 'window_end', 'txn_count', 'sum_amount', 'avg_amount', 'max_amount'] })).rows ?? [];
    const pgGold = (
      await pool.query<{ card_id: string; window_start: Date; window_end: Date; txn_count: string; sum_amount: number | null; avg_amount: number | null; max_amount: number | null }>(
        `SELECT card_id, window_start, window_end, txn_count::text, sum_amount, avg_amount, max_amount FROM "${id}".gold_card_1m`,
      )
    ).rows.map((r) => ({ ...r, window_start: r.window_start.toISOString().replace('.000Z', '.000000Z'), window_end: r.window_end.toISOString().replace('.000Z', '.000000Z') }));
    for (const [store, rows] of [['Delta', deltaGold], ['PostgreSQL', pgGold]] as const) {
      const got = new Map(rows.map((r) => [`${String(r.card_id)}|${Date.parse(String(r.window_start))}`, r]));
      expect([...got.keys()].sort(), `${what}: ${store} gold windows`).toEqual([...want.windows.keys()].sort());
      for (const [k, w] of want.windows) {
        const r = got.get(k) as Record<string, unknown>;
        const start = Number(k.split('|')[1]);
        expect({ end: Date.parse(String(r.window_end)), count: Number(r.txn_count), sum: r.sum_amount, avg: r.avg_amount, max: r.max_amount }, `${what}: ${store} gold ${k}`).toEqual({
          end: start + WINDOW_MS,
          count: w.count,
          sum: w.amounts === 0 ? null : rounded(w.sum),
          avg: w.amounts === 0 ? null : rounded(w.sum) / w.amounts,
          max: w.max,
        });
      }
    }
    return want;
  };
  return { env, base, schema: id, topic, produced: records.produced, produce, check };
}

describe('cards job', () => {
  it('fills bronze, quarantine, silver and gold (Delta and PostgreSQL) exactly once across bounded runs; late events beyond the watermark are dropped, those within counted', async () => {
    const s = await setUp(3);
    const config = loadCardsConfig(s.env);
    expect(config.watermarkDelayMs).toBe(DELAY_MS);
    expect(config.batch.timeSpanMs).toBe(300);
    const run = async () => (await startCards({ config, untilCaughtUp: true, http: false })).done;

    await s.produce(4000);
    const first = await run();
    const want = await s.check('first run');
    expect(want.windows.size, 'the test closes windows').toBeGreaterThan(50);
    expect(want.late, 'some events come after the watermark closed their window').toBeGreaterThan(0);
    expect(want.behindButCounted, 'some come behind the watermark while their window is open').toBeGreaterThan(0);
    expect(first.late).toBe(want.late);
    expect([...want.windows.values()].some((w) => w.amounts < w.count), 'some windows count transactions without an amount').toBe(true);

    await s.produce(2500);
    await run();
    await s.check('second run');

    const third = await run();
    expect(third.recordsWritten).toBe(0);
    await s.check('third run');
  }, 110_000);

  it('a SIGKILL mid-stream and a restart leave every table exact', async () => {
    const s = await setUp(4);
    const job = startJobProcess('cards', [], { ...s.env, LOG_LEVEL: 'info' }, { group: true });
    const goldWritten = async (): Promise<number> => Number((await pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${s.schema}".gold_card_1m`).catch(() => ({ rows: [{ n: '0' }] }))).rows[0]?.n);
    // Late enough that windows written before the kill have records past the committed offset.
    await killMidStream(job, { feed: () => s.produce(250), ready: async () => (await goldWritten()) >= 250, minRounds: 5, maxRounds: 60, pauseMs: 200, what: '250 gold windows' });
    // The kill left work to redo: records past the committed offset already in bronze and silver.
    const committed = await withAdmin((admin) => admin.fetchOffsets({ groupId: s.env.KAFKA_CONSUMER_GROUP as string, topics: [s.topic] }));
    const next = Number(committed[0]?.partitions[0]?.offset ?? -1);
    expect(next).toBeLessThan(s.produced.length);
    const bronze = await verifyDelta(`${s.base}/bronze`, { rows: true, columns: ['offset'] });
    expect((bronze.rows ?? []).filter((r) => Number(r.offset) >= next).length, 'bronze rows past the committed offset: the restart must not write them twice').toBeGreaterThan(0);
    // And records of gold windows already written, read again without the rest of their window:
    // the restart must not write those windows again from them.
    const written = new Set((await pool.query<{ k: string }>(`SELECT card_id || '|' || (extract(epoch FROM window_start) * 1000)::bigint AS k FROM "${s.schema}".gold_card_1m`)).rows.map((r) => r.k));
    const windowOf = (p: Produced): string => `${String(p.event?.card_id)}|${Math.floor(Number(p.eventTimeMicros / 1000n) / WINDOW_MS) * WINDOW_MS}`;
    const before = new Set(s.produced.slice(0, next).flatMap((p) => (p.event === null ? [] : [windowOf(p)])));
    const split = s.produced.slice(next).filter((p) => p.event !== null && written.has(windowOf(p)) && before.has(windowOf(p)));
    expect(split.length, 'records of written windows past the committed offset').toBeGreaterThan(0);

    await s.produce(1500);
    await (await startCards({ config: loadCardsConfig(s.env), untilCaughtUp: true, http: false })).done;
    const want = await s.check('after the crash');
    expect(want.late).toBeGreaterThan(0);
  }, 110_000);

  it('starts at the latest offset by default, and FAIL_ON_DATA_LOSS names records Kafka deleted before they were read', async () => {
    const s = await setUp(5);
    await s.produce(3000);
    // STARTING_OFFSETS unset: a new group starts at the end, as the Spark query does.
    const { STARTING_OFFSETS: _earliest, ...env } = s.env;
    const latest = loadCardsConfig({ ...env, KAFKA_CONSUMER_GROUP: `${s.env.KAFKA_CONSUMER_GROUP}_latest` });
    expect(latest.kafka.startFrom).toBe('latest');
    expect((await (await startCards({ config: latest, untilCaughtUp: true, http: false })).done).recordsWritten).toBe(0);
    expect((await verifyDelta(`${s.base}/bronze`)).num_rows).toBe(0);

    // A run commits what its closed windows cover: offsets of records in open windows wait.
    const config = loadCardsConfig(s.env);
    await (await startCards({ config, untilCaughtUp: true, http: false })).done;
    const committed = Number((await withAdmin((admin) => admin.fetchOffsets({ groupId: config.kafka.groupId, topics: [s.topic] })))[0]?.partitions[0]?.offset);
    expect(committed).toBeGreaterThan(0);
    // Records the group has not read yet are deleted (retention): the job refuses to start, naming them.
    await s.produce(200);
    const deletedUpTo = committed + 50;
    await withAdmin(async (admin) => {
      await admin.fetchTopicMetadata({ topics: [s.topic] }); // kafkajs looks the leader up in it
      await admin.deleteTopicRecords({ topic: s.topic, partitions: [{ partition: 0, offset: String(deletedUpTo) }] });
    });
    await expect(startCards({ config, untilCaughtUp: true, http: false })).rejects.toThrow(
      new RegExp(`deleted records of .* partition 0: offsets ${committed}–${deletedUpTo - 1} \\(50 records\\).*FAIL_ON_DATA_LOSS=false`),
    );
    // FAIL_ON_DATA_LOSS=false: it goes on from the earliest records left.
    await (await startCards({ config: loadCardsConfig({ ...s.env, FAIL_ON_DATA_LOSS: 'false', LOG_LEVEL: 'error' }), untilCaughtUp: true, http: false })).done;
    const next = Number((await withAdmin((admin) => admin.fetchOffsets({ groupId: config.kafka.groupId, topics: [s.topic] })))[0]?.partitions[0]?.offset);
    expect(next).toBeGreaterThanOrEqual(deletedUpTo);
    // Bronze: what the first run read, then everything from the first offset left (nothing twice).
    const offsets = (await verifyDelta(`${s.base}/bronze`, { rows: true, columns: ['offset'] })).rows?.map((r) => Number(r.offset));
    expect(offsets).toEqual([...new Set([...Array.from({ length: 3000 }, (_, i) => i), ...Array.from({ length: 3200 - deletedUpTo }, (_, i) => deletedUpTo + i)])].sort((a, b) => a - b));
  }, 60_000);
});

/**
 * The transactions pipeline end to end on the real stack: generated transactions and refunds
 * (some corrupt, some out of order) on real Kafka topics → typed and quarantine Delta tables
 * (read back by delta-rs) and per-account window aggregates in Delta and PostgreSQL, compared
 * with windows computed here from the produced events.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startTransactions } from '../../src/pipelines/transactions.ts';
import { InstanceRunningError } from '../../src/pipelines/transactions/store.ts';
import { corruptTransactionEvent, createTransactionGenerator } from '../../src/pipelines/transactions/events.ts';
import type { GeneratedTransactionEvent, TransactionTopic } from '../../src/pipelines/transactions/events.ts';
import { loadTransactionsConfig } from '../../src/pipelines/transactions/config.ts';
import { CORRUPTION_KINDS } from '../../src/pipelines/rideshare/events.ts';
import { createTopic, kafka } from './kafkaSupport.ts';
import { killMidStream, startJobProcess } from '../support/jobProcess.ts';
import { transactionsTestEnv } from './transactionsSupport.ts';
import { stack, uniqueName, verifyDelta } from '../support/stack.ts';
import { startTcpProxy } from '../support/tcpProxy.ts';
import { waitFor } from '../support/wait.ts';

const dirs: string[] = [];
const pool = new pg.Pool({ connectionString: stack.pgUrl, max: 2 });
afterAll(async () => {
  await pool.end();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const WINDOW_MS = 60_000;
const DELAY_MS = 15_000;

interface Produced {
  readonly event: GeneratedTransactionEvent;
  /** null: valid; else the corruption applied. */
  readonly corrupt: string | null;
}

/** Quoted `schema.table`. */
async function pgWindowCount(table: string): Promise<number> {
  const res = await pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`);
  return Number(res.rows[0]?.n ?? 0);
}

/** Produces `n` events of `topic` (every `corruptEvery`-th corrupt) in order, one partition. */
async function produceEvents(kafkaTopic: string, topic: TransactionTopic, gen: ReturnType<typeof createTransactionGenerator>, n: number, corruptEvery: number, start: number): Promise<Produced[]> {
  const out: Produced[] = [];
  const messages: Array<{ key: string; value: Buffer | null; partition: number }> = [];
  for (let i = 0; i < n; i++) {
    const event = gen.next(topic);
    const bad = (start + i) % corruptEvery === corruptEvery - 1 ? CORRUPTION_KINDS[(start + i) % CORRUPTION_KINDS.length] : undefined;
    const bytes = bad === undefined ? event.value : corruptTransactionEvent(bad, event, start + i);
    out.push({ event, corrupt: bad ?? null });
    messages.push({ key: event.key, value: bytes === null ? null : Buffer.from(bytes), partition: 0 });
  }
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    for (let i = 0; i < messages.length; i += 1000) {
      await producer.send({ topic: kafkaTopic, acks: -1, messages: messages.slice(i, i + 1000) });
    }
  } finally {
    await producer.disconnect();
  }
  return out;
}

interface ExpectedWindow {
  count: number;
  sum: number;
  max: number;
}

/**
 * Reference windows: the valid events in produce order (one partition), the watermark rule
 * (closed when max event time − delay reaches the end; a record of a closed window is late).
 * Returns the closed windows by `account|startMs` and the late count; open windows are not
 * closed (the pipeline writes them in a later run).
 */
function referenceWindows(events: readonly Produced[]): { closed: Map<string, ExpectedWindow>; late: number; open: number } {
  const open = new Map<string, ExpectedWindow & { end: number }>();
  const closed = new Map<string, ExpectedWindow>();
  let watermark = Number.NEGATIVE_INFINITY;
  let late = 0;
  for (const { event, corrupt } of events) {
    if (corrupt !== null) continue;
    const start = Math.floor(event.eventTimeMs / WINDOW_MS) * WINDOW_MS;
    if (start + WINDOW_MS <= watermark) {
      late += 1;
      continue;
    }
    const key = `${event.account_id}|${start}`;
    const w = open.get(key) ?? { count: 0, sum: 0, max: Number.NEGATIVE_INFINITY, end: start + WINDOW_MS };
    w.count += 1;
    w.sum += event.amount;
    w.max = Math.max(w.max, event.amount);
    open.set(key, w);
    watermark = Math.max(watermark, event.eventTimeMs - DELAY_MS);
    for (const [k, o] of open) {
      if (o.end <= watermark) {
        closed.set(k, { count: o.count, sum: o.sum, max: o.max });
        open.delete(k);
      }
    }
  }
  return { closed, late, open: open.size };
}

interface WindowOut {
  count: number;
  sum: number;
  avg: number;
  max: number;
}

async function deltaWindows(uri: string): Promise<Map<string, WindowOut>> {
  const t = await verifyDelta(uri, { rows: true, columns: ['account_id', 'window_start', 'window_end', 'event_count', 'amount_sum', 'amount_avg', 'amount_max', 'window_date'] });
  const out = new Map<string, WindowOut>();
  for (const r of t.rows ?? []) {
    const start = Date.parse(String(r.window_start));
    expect(Date.parse(String(r.window_end)) - start).toBe(WINDOW_MS);
    expect(r.window_date).toBe(new Date(start).toISOString().slice(0, 10));
    const key = `${String(r.account_id)}|${start}`;
    expect(out.has(key), `Delta window ${key} twice`).toBe(false);
    out.set(key, { count: Number(r.event_count), sum: Number(r.amount_sum), avg: Number(r.amount_avg), max: Number(r.amount_max) });
  }
  return out;
}

async function pgWindows(table: string): Promise<Map<string, WindowOut>> {
  const res = await pool.query<{ account_id: string; start_ms: string; end_ms: string; event_count: string; amount_sum: number; amount_avg: number; amount_max: number }>(
    `SELECT account_id, (extract(epoch FROM window_start) * 1000)::bigint::text AS start_ms, (extract(epoch FROM window_end) * 1000)::bigint::text AS end_ms,
            event_count::text, amount_sum, amount_avg, amount_max FROM ${table}`,
  );
  return new Map(
    res.rows.map((r) => {
      expect(Number(r.end_ms) - Number(r.start_ms)).toBe(WINDOW_MS);
      return [`${r.account_id}|${r.start_ms}`, { count: Number(r.event_count), sum: r.amount_sum, avg: r.amount_avg, max: r.amount_max }];
    }),
  );
}

function expectWindows(actual: Map<string, WindowOut>, expected: Map<string, ExpectedWindow>, what: string): void {
  expect([...actual.keys()].sort(), `${what}: window keys`).toEqual([...expected.keys()].sort());
  for (const [k, e] of expected) {
    const a = actual.get(k) as WindowOut;
    expect(a.count, `${what} ${k} count`).toBe(e.count);
    expect(a.sum, `${what} ${k} sum`).toBeCloseTo(e.sum, 6);
    expect(a.max, `${what} ${k} max`).toBe(e.max);
    expect(a.avg, `${what} ${k} avg`).toBeCloseTo(e.sum / e.count, 6);
  }
}

interface Setup {
  prefix: string;
  base: string;
  schema: string;
  env: Record<string, string>;
  produced: Record<TransactionTopic, Produced[]>;
  produceRound: (n: Record<TransactionTopic, number>) => Promise<void>;
  check: (round: string) => Promise<void>;
}

/** Topics (one partition each, so the reference windows are exact), a Delta folder, a PostgreSQL schema. */
async function setUp(): Promise<Setup> {
  const prefix = `${uniqueName('tx')}.`;
  const base = await mkdtemp(join(tmpdir(), 'rxlake-tx-'));
  dirs.push(base);
  const pipelineId = uniqueName('txp').replaceAll('-', '_');
  await Promise.all([createTopic(`${prefix}transactions`, 1), createTopic(`${prefix}refunds`, 1)]);
  // The job puts its window tables in a schema named after its pipeline id (created if missing).
  const schema = pipelineId;
  const env = transactionsTestEnv({ prefix, pipelineId, base }, {
    WINDOW_SECONDS: String(WINDOW_MS / 1000),
    WATERMARK_DELAY_SECONDS: String(DELAY_MS / 1000),
    // A killed member holds its partitions this long: the restart after the crash waits for it.
    KAFKA_SESSION_TIMEOUT_SECONDS: '6',
  });
  const gens = {
    transactions: createTransactionGenerator({ seed: 11, accounts: 12, stepMs: 400, outOfOrderFraction: 0.1, maxDelayMs: 40_000 }),
    refunds: createTransactionGenerator({ seed: 12, accounts: 12, stepMs: 900, outOfOrderFraction: 0.1, maxDelayMs: 40_000 }),
  };
  const produced: Record<TransactionTopic, Produced[]> = { transactions: [], refunds: [] };
  const produceRound = async (n: Record<TransactionTopic, number>): Promise<void> => {
    for (const topic of ['transactions', 'refunds'] as const) {
      produced[topic].push(...(await produceEvents(`${prefix}${topic}`, topic, gens[topic], n[topic], 17, produced[topic].length)));
    }
  };
  const check = async (round: string): Promise<void> => {
    for (const topic of ['transactions', 'refunds'] as const) {
      const events = produced[topic];
      const valid = events.filter((e) => e.corrupt === null);
      const typed = await verifyDelta(`${base}/${topic}`, { rows: true, columns: ['account_id', 'amount', 'event_time', '_kafka_offset', 'event_date'] });
      const rows = typed.rows ?? [];
      expect(rows.length, `${round} ${topic}: typed rows = valid events`).toBe(valid.length);
      expect(new Set(rows.map((r) => String(r._kafka_offset))).size, `${round} ${topic}: no offset twice`).toBe(rows.length);
      // Every typed row carries the event time the payload named (whatever its ISO spelling).
      for (const r of rows) {
        const e = events[Number(r._kafka_offset)] as Produced;
        expect(Math.floor(Date.parse(String(r.event_time)))).toBe(e.event.eventTimeMs);
        expect(r.account_id).toBe(e.event.account_id);
        expect(r.amount).toBe(e.event.amount);
      }
      const quarantine = await verifyDelta(`${base}/quarantine_${topic}`, { rows: true, columns: ['_kafka_offset', 'error_type'] });
      expect((quarantine.rows ?? []).map((r) => Number(r._kafka_offset)).sort((a, b) => a - b), `${round} ${topic}: quarantined`).toEqual(
        events.flatMap((e, i) => (e.corrupt === null ? [] : [i])),
      );

      const ref = referenceWindows(events);
      expect(ref.closed.size, `${round} ${topic}: the test closes windows`).toBeGreaterThan(10);
      const name = `${topic}_by_account_1m`;
      expectWindows(await deltaWindows(`${base}/${name}`), ref.closed, `${round} ${topic} Delta`);
      expectWindows(await pgWindows(`"${schema}"."${name}"`), ref.closed, `${round} ${topic} PostgreSQL`);
    }
  };
  return { prefix, base, schema, env, produced, produceRound, check };
}

describe('transactions pipeline', () => {
  it('types, quarantines and windows two topics exactly once across bounded runs, in Delta and PostgreSQL', async () => {
    const { env, produceRound, check } = await setUp();
    const config = loadTransactionsConfig(env);
    const runOnce = async () => {
      const run = await startTransactions({ config, untilCaughtUp: true, http: false });
      return run.done;
    };

    await produceRound({ transactions: 1500, refunds: 600 });
    const first = await runOnce();
    expect(first.late, 'some events arrive after their window closed').toBeGreaterThan(0);
    await check('first run');

    // More events: windows open at the end of the first run close now. Their records were not
    // committed, so this run reads them again and writes each window once, complete.
    await produceRound({ transactions: 1200, refunds: 500 });
    await runOnce();
    await check('second run');

    // Nothing new: a third run writes nothing and duplicates nothing.
    const third = await runOnce();
    expect(third.recordsWritten).toBe(0);
    await check('third run');

    // One instance per pipeline id: a second one is refused while the first runs, with the fix.
    const running = await startTransactions({ config, http: false });
    await expect(startTransactions({ config, http: false })).rejects.toThrow(InstanceRunningError);
    await expect(startTransactions({ config, http: false })).rejects.toThrow(/PIPELINE_ID=.* is running .* give this one another PIPELINE_ID/);
    running.stop();
    await running.done;
    // Released with the first: the next start is fine.
    const after = await startTransactions({ config, untilCaughtUp: true, http: false });
    await after.done;
  }, 240_000);

  it('a crash (SIGKILL) mid-stream loses and duplicates no window: the restart writes each once, complete', async () => {
    const { env, schema, produceRound, check } = await setUp();
    // As users run it: `node src/pipelines/transactions.ts` (tsx on Node 20), in its own process group.
    const job = startJobProcess('transactions', [], { ...env, LOG_LEVEL: 'info' }, { group: true });
    const windows = `"${schema}"."transactions_by_account_1m"`;
    // Events keep arriving while the job runs; it is killed once it has written some windows.
    await killMidStream(job, {
      feed: () => produceRound({ transactions: 120, refunds: 50 }),
      ready: async () => (await pgWindowCount(windows).catch(() => 0)) >= 30,
      minRounds: 5,
      maxRounds: 40,
      pauseMs: 250,
      what: '30 windows in PostgreSQL',
    });
    await produceRound({ transactions: 600, refunds: 300 });
    const run = await startTransactions({ config: loadTransactionsConfig({ ...env, LOG_LEVEL: process.env.TX_DEBUG ? 'info' : 'warn' }), untilCaughtUp: true, http: false });
    await run.done;
    await check('after the crash');
  }, 240_000);

  it('catching up on three partitions (backlog far above the in-flight budget) drops no event as late that the delay covers, and every event is counted once', async () => {
    const prefix = `${uniqueName('tx3')}.`;
    const base = await mkdtemp(join(tmpdir(), 'rxlake-tx3-'));
    dirs.push(base);
    const pipelineId = uniqueName('txq').replaceAll('-', '_');
    const kafkaTopic = `${prefix}transactions`;
    await createTopic(kafkaTopic, 3);
    // Events of one account stay in one partition, in order; out-of-order ones lag by < the delay.
    const gen = createTransactionGenerator({ seed: 21, accounts: 30, stepMs: 200, outOfOrderFraction: 0.1, maxDelayMs: DELAY_MS - 1000 });
    const events = Array.from({ length: 3000 }, () => gen.next('transactions'));
    const partitionOf = (account: string): number => Number(account.slice(-4)) % 3;
    // Then one event an hour ahead on every partition: the watermark of all three passes every
    // window of the events above.
    const last = Math.max(...events.map((e) => e.eventTimeMs));
    const flush = [0, 1, 2].map((p) => {
      const account = `acct-${String(9000 + p).padStart(4, '0')}`;
      const value = new TextEncoder().encode(JSON.stringify({ transaction_id: `flush-${p}`, account_id: account, amount: 1, currency: 'EUR', timestamp: new Date(last + 3_600_000).toISOString() }));
      return { key: account, value, partition: partitionOf(account) };
    });
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      const messages = [...events.map((e) => ({ key: e.key, value: Buffer.from(e.value), partition: partitionOf(e.key) })), ...flush.map((f) => ({ ...f, value: Buffer.from(f.value) }))];
      for (let i = 0; i < messages.length; i += 1000) await producer.send({ topic: kafkaTopic, acks: -1, messages: messages.slice(i, i + 1000) });
    } finally {
      await producer.disconnect();
    }

    const config = loadTransactionsConfig(transactionsTestEnv({ prefix, pipelineId, base }, {
      TRANSACTION_TOPICS: 'transactions',
      WINDOW_SECONDS: String(WINDOW_MS / 1000),
      WATERMARK_DELAY_SECONDS: String(DELAY_MS / 1000),
      // Small fetches: kafkajs hands over several batches per partition, one partition at a time.
      KAFKA_PARTITION_FETCH_MAX_BYTES: '16384',
      // A budget far below the backlog, and no partition ever deemed idle: records waiting in
      // windows must not stop the source from reading the partitions that let the windows close.
      MAX_IN_FLIGHT_RECORDS: '500',
      WATERMARK_IDLE_SECONDS: '3600',
    }));
    const run = await startTransactions({ config, untilCaughtUp: true, http: false });
    const summary = await run.done;
    expect(summary.late, 'no event is late: each lags its partition by less than the delay').toBe(0);

    // Every event is in exactly one window (the three flush events' windows stay open).
    const all = new Map<string, ExpectedWindow>();
    for (const e of events) {
      const key = `${e.account_id}|${Math.floor(e.eventTimeMs / WINDOW_MS) * WINDOW_MS}`;
      const w = all.get(key) ?? { count: 0, sum: 0, max: Number.NEGATIVE_INFINITY };
      w.count += 1;
      w.sum += e.amount;
      w.max = Math.max(w.max, e.amount);
      all.set(key, w);
    }
    const name = 'transactions_by_account_1m';
    expectWindows(await deltaWindows(`${base}/${name}`), all, '3 partitions Delta');
    expectWindows(await pgWindows(`"${pipelineId}"."${name}"`), all, '3 partitions PostgreSQL');
  }, 240_000);

  it('reports 503 on /health while PostgreSQL is unreachable, recovers by itself, and every window lands once', async () => {
    const setup = await setUp();
    const pgPort = Number(new URL(stack.pgUrl).port);
    const proxy = await startTcpProxy('127.0.0.1', pgPort);
    const viaProxy = new URL(stack.pgUrl);
    viaProxy.port = String(proxy.port);
    const get = async (port: number, path: string): Promise<{ status: number; body: string }> => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      return { status: res.status, body: await res.text() };
    };
    try {
      const config = loadTransactionsConfig({ ...setup.env, POSTGRES_URL: viaProxy.toString(), PROGRESS_INTERVAL_SECONDS: '1', LOG_LEVEL: 'error' });
      await setup.produceRound({ transactions: 600, refunds: 250 });
      const run = await startTransactions({ config });
      const port = run.httpPort ?? 0;
      const windows = `"${setup.schema}"."transactions_by_account_1m"`;
      try {
        await waitFor('first windows written', async () => (await pgWindowCount(windows)) > 0);
        expect((await get(port, '/health')).status).toBe(200);

        await proxy.down();
        await setup.produceRound({ transactions: 600, refunds: 250 });
        await waitFor('503 while PostgreSQL is down', async () => (await get(port, '/health')).status === 503);
        const during = JSON.parse((await get(port, '/health')).body) as { status: string; errors: number; lastError: string };
        expect(during.status).toBe('unhealthy');
        expect(during.errors).toBeGreaterThan(0);

        await proxy.up();
        await waitFor('200 once PostgreSQL is back', async () => (await get(port, '/health')).status === 200);
        // Metrics: consumer lag per partition (set by the progress timer, every second here) and
        // the late counter, next to the write metrics of the PostgreSQL table.
        await waitFor('consumer lag on /metrics', async () => /rxlake_consumer_lag\{topic="[^"]+transactions",partition="0"\} \d+/.test((await get(port, '/metrics')).body));
        const metrics = (await get(port, '/metrics')).body;
        expect(metrics).toMatch(/rxlake_late_records_total/);
        // Failed attempts on the PostgreSQL tables (which window table was writing during the
        // outage depends on where each topic's watermark stood then).
        expect(metrics).toMatch(new RegExp(`rxlake_write_errors_total\\{table="${setup.schema}\\.[a-z_0-9]+"\\} [1-9]`));
      } finally {
        run.stop();
        await run.done;
      }
      // What was produced during the outage is all there, once.
      const rest = await startTransactions({ config, untilCaughtUp: true, http: false });
      await rest.done;
      await setup.check('after the outage');
    } finally {
      await proxy.close();
    }
  }, 240_000);
});

/**
 * The PostgreSQL sink against the real server: tables created if missing, one transaction per
 * batch, upserts on the primary key, exactly-once Kafka records through the offsets table,
 * atomic failures, retries of lost connections, and exact round trips of the column types.
 * Every test works in its own schema of a schema created for this file, dropped at the end.
 */
import { Subject, from, lastValueFrom, tap, toArray } from 'rxjs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { pgSink } from '../../src/operators/pgSink.ts';
import type { BatchChunk } from '../../src/operators/bufferTime.ts';
import { PgSinkError, PgTable, isRetriablePg } from '../../src/sinks/postgres.ts';
import type { PgTableOptions, PgTableSpec } from '../../src/sinks/postgres.ts';
import type { RecordRef, SinkAck } from '../../src/types.ts';
import { stack, uniqueName } from '../support/stack.ts';
import { startTcpProxy } from '../support/tcpProxy.ts';
import { Changes, waitFor } from '../support/wait.ts';

interface Txn extends RecordRef {
  readonly id: string;
  readonly amount: number | null;
}

const schemas: string[] = [];
const pools: pg.Pool[] = [];
let admin: pg.Pool;

/** A pool to the stack's PostgreSQL, or through `port` (a proxy), with an `application_name`. */
function newPool(opts: { port?: number; app?: string; connectionTimeoutMillis?: number } = {}): pg.Pool {
  const url = new URL(stack.pgUrl);
  if (opts.port !== undefined) {
    url.hostname = '127.0.0.1';
    url.port = String(opts.port);
  }
  if (opts.app !== undefined) url.searchParams.set('application_name', opts.app);
  const pool = new pg.Pool({ connectionString: url.toString(), max: 4, connectionTimeoutMillis: opts.connectionTimeoutMillis ?? 5_000 });
  pool.on('error', () => {}); // idle connections terminated by a test
  pools.push(pool);
  return pool;
}

beforeAll(() => {
  admin = newPool();
});

afterAll(async () => {
  for (const s of schemas) await admin.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  for (const p of pools) await p.end();
});

/** A fresh schema name for one test (created by `openOrCreate`, dropped after the file). */
function freshSchema(): string {
  const s = uniqueName('pgsink');
  schemas.push(s);
  return s;
}

function txnSpec(schema: string, name = 'txns', onConflict: 'update' | 'nothing' = 'update'): PgTableSpec<Txn> {
  return {
    schema,
    name,
    columns: [
      { name: 'id', type: 'text' },
      { name: 'amount', type: 'double precision', nullable: false },
      { name: 'topic', type: 'text' },
      { name: 'partition', type: 'integer' },
      { name: 'offset', type: 'bigint' },
    ],
    primaryKey: ['id'],
    onConflict,
  };
}

function txns(count: number, opts: { partition?: number; firstOffset?: bigint; amount?: number; ids?: string[]; topic?: string } = {}): Txn[] {
  const { partition = 0, firstOffset = 0n, amount = 1, topic = 'payments' } = opts;
  return Array.from({ length: count }, (_, i) => ({
    topic,
    partition,
    offset: firstOffset + BigInt(i),
    id: opts.ids?.[i] ?? `${topic}-${partition}-${firstOffset + BigInt(i)}`,
    amount,
  }));
}

async function open<Row>(spec: PgTableSpec<Row>, opts?: PgTableOptions, pool: pg.Pool = admin): Promise<PgTable<Row>> {
  return PgTable.openOrCreate(pool, spec, opts);
}

async function tableRows(schema: string, name: string, order = 'id'): Promise<Record<string, unknown>[]> {
  return (await admin.query(`SELECT * FROM "${schema}"."${name}" ORDER BY ${order}`)).rows as Record<string, unknown>[];
}

async function offsetsOf(schema: string): Promise<Array<[string, string, string, number, string | null]>> {
  const { rows } = await admin.query<{ table_name: string; app_id: string; topic: string; partition: number; last_offset: string | null }>(
    `SELECT table_name, app_id, topic, "partition", last_offset::text AS last_offset FROM "${schema}".rxlake_offsets ORDER BY 1, 2, 3, 4`,
  );
  return rows.map((r) => [r.table_name, r.app_id, r.topic, r.partition, r.last_offset]);
}

describe('PgTable.openOrCreate', () => {
  it('creates the table (quoted name, primary key, NOT NULL) and the offsets table once; rejects a mismatching table', async () => {
    const schema = freshSchema();
    const name = 'Odd-"Name" 1';
    const spec = txnSpec(schema, name);
    // three at once, then once more: no duplicate-object errors
    await Promise.all([open(spec), open(spec), open(spec)]);
    const table = await open(spec);
    expect(table.name).toBe(name);
    expect(table.qualifiedName).toBe(`${schema}.${name}`);
    const { rows: cols } = await admin.query<{ column_name: string; data_type: string; is_nullable: string }>(
      'SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position',
      [schema, name],
    );
    expect(cols.map((c) => [c.column_name, c.data_type, c.is_nullable])).toEqual([
      ['id', 'text', 'NO'],
      ['amount', 'double precision', 'NO'],
      ['topic', 'text', 'YES'],
      ['partition', 'integer', 'YES'],
      ['offset', 'bigint', 'YES'],
    ]);
    const pk = await admin.query<{ attname: string }>(
      `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
        WHERE i.indrelid = to_regclass($1) AND i.indisprimary`,
      [`"${schema}"."${name.replaceAll('"', '""')}"`],
    );
    expect(pk.rows.map((r) => r.attname)).toEqual(['id']);
    const offsetsPk = await admin.query<{ attname: string }>(
      `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
        WHERE i.indrelid = to_regclass($1) AND i.indisprimary ORDER BY a.attnum`,
      [`"${schema}".rxlake_offsets`],
    );
    expect(offsetsPk.rows.map((r) => r.attname)).toEqual(['table_name', 'app_id', 'topic', 'partition']);
    // writing through the quoted name works
    const acks = await lastValueFrom(from([txns(3)]).pipe(pgSink(table), toArray()));
    expect(acks.map((a) => [a.table, a.rows])).toEqual([[`${schema}.${name}`, 3]]);

    const typeChanged = { ...spec, columns: spec.columns.map((c) => (c.name === 'amount' ? { ...c, type: 'text' } : c)) };
    await expect(open(typeChanged)).rejects.toThrow(/column "amount" is double precision, the spec says text/);
    const added = { ...spec, columns: [...spec.columns, { name: 'extra', type: 'timestamptz' }] };
    await expect(open(added)).rejects.toThrow(/column "extra" is missing/);
    await expect(open({ ...spec, primaryKey: ['nope'] })).rejects.toThrow(/primary key column "nope" is not a column/);
    await expect(open({ ...spec, columns: [...spec.columns, { name: 'tags', type: 'text[]' }] })).rejects.toThrow(/array types/);
  });
});

describe('pgSink', () => {
  it.each([
    ['update', [['a', 1], ['b', 2], ['c', 2], ['d', 2]], [3, 3], [0, 0]],
    ['nothing', [['a', 1], ['b', 1], ['c', 1], ['d', 2]], [3, 1], [0, 2]],
  ] as const)('upserts with onConflict %s', async (onConflict, expected, rows, skipped) => {
    const schema = freshSchema();
    const table = await open(txnSpec(schema, 'txns', onConflict));
    const b1 = txns(3, { ids: ['a', 'b', 'c'], amount: 1 });
    const b2 = txns(3, { ids: ['b', 'c', 'd'], amount: 2, firstOffset: 3n });
    const acks = await lastValueFrom(from([b1, b2]).pipe(pgSink(table), toArray()));
    expect(acks.map((a) => a.rows)).toEqual(rows);
    expect(acks.map((a) => a.skipped)).toEqual(skipped);
    expect(acks.map((a) => a.refs.length)).toEqual([3, 3]);
    expect((await tableRows(schema, 'txns')).map((r) => [r.id, r.amount])).toEqual(expected);
  });

  it.each([
    ['update', [['a', 5], ['b', 6], ['c', 4]], 3],
    ['nothing', [['a', 1], ['b', 2], ['c', 4]], 3],
  ] as const)('collapses duplicate keys within one batch (onConflict %s), across statements too', async (onConflict, expected, written) => {
    const schema = freshSchema();
    // two rows per statement: the duplicates of 'a' and 'b' fall into different statements
    const table = await open(txnSpec(schema, 'txns', onConflict), { maxRowsPerStatement: 2 });
    const ids = ['a', 'b', 'a', 'c', 'a', 'b'];
    const batch = ids.map((id, i) => ({ ...txns(1, { firstOffset: BigInt(i) })[0] as Txn, id, amount: i + 1 }));
    const acks = await lastValueFrom(from([batch]).pipe(pgSink(table), toArray()));
    expect(acks.map((a) => [a.rows, a.skipped, a.refs.length])).toEqual([[written, 6 - written, 6]]);
    expect((await tableRows(schema, 'txns')).map((r) => [r.id, r.amount])).toEqual(expected);
    expect(await table.lastOffset('rxlake-payments-0', 'payments', 0)).toBe(5n);
  });

  it('writes Kafka records exactly once: a replay writes nothing and is acked with all its refs', async () => {
    const schema = freshSchema();
    const table = await open(txnSpec(schema));
    const b = [...txns(12, { partition: 0 }), ...txns(8, { partition: 3, firstOffset: 100n })];
    // the replayed copies carry other amounts: were they written, the table would show it
    const replay = b.map((r) => ({ ...r, amount: 99 }));
    const overlap = [...txns(10, { partition: 0, firstOffset: 7n, amount: 7 })]; // 7..11 replayed, 12..16 new
    const seen: SinkAck[] = [];
    const acks = await lastValueFrom(from([b, replay, overlap]).pipe(pgSink(table, { pipelineId: 'pay', onWrite: (a) => seen.push(a) }), toArray()));
    expect(acks.map((a) => [a.table, a.version, a.rows, a.skipped, a.refs.length, a.bytes])).toEqual([
      [`${schema}.txns`, null, 20, 0, 20, 0],
      [`${schema}.txns`, null, 0, 20, 20, 0],
      [`${schema}.txns`, null, 5, 5, 10, 0],
    ]);
    expect(seen).toEqual(acks);
    expect(acks[1]?.refs.map((r) => r.offset)).toEqual(replay.map((r) => r.offset));
    const rows = await tableRows(schema, 'txns', '"partition", "offset"');
    expect(rows).toHaveLength(25);
    expect(rows.filter((r) => r.amount === 99)).toEqual([]);
    expect(rows.filter((r) => r.amount === 7).map((r) => r.offset)).toEqual(['12', '13', '14', '15', '16']);
    expect(await offsetsOf(schema)).toEqual([
      [`${schema}.txns`, 'pay-payments-0', 'payments', 0, '16'],
      [`${schema}.txns`, 'pay-payments-3', 'payments', 3, '107'],
    ]);
  });

  it('resumeFrom gives the next offset per table, appId, topic and partition', async () => {
    const schema = freshSchema();
    const a = await open(txnSpec(schema, 'a'));
    const b = await open(txnSpec(schema, 'b'));
    const big = 2n ** 62n;
    await lastValueFrom(from([txns(10, { partition: 2, firstOffset: big })]).pipe(pgSink(a, { pipelineId: 'p' })));
    await lastValueFrom(from([txns(5, { partition: 2 })]).pipe(pgSink(b, { pipelineId: 'p' })));
    await lastValueFrom(from([txns(3, { partition: 2 })]).pipe(pgSink(b, { appId: (r) => `custom-${r.partition}` })));
    expect(await a.lastOffset('p-payments-2', 'payments', 2)).toBe(big + 9n);
    expect(await a.resumeFrom('p-payments-2', 'payments', 2)).toBe(big + 10n);
    expect(await b.resumeFrom('p-payments-2', 'payments', 2)).toBe(5n);
    expect(await b.resumeFrom('custom-2', 'payments', 2)).toBe(3n);
    expect(await a.resumeFrom('custom-2', 'payments', 2)).toBeUndefined();
    expect(await a.resumeFrom('p-payments-2', 'payments', 1)).toBeUndefined();
    expect(await a.resumeFrom('p-payments-2', 'refunds', 2)).toBeUndefined();
    // the same records into the other table are not skipped: offsets are kept per table
    const again = await lastValueFrom(from([txns(10, { partition: 2, firstOffset: big })]).pipe(pgSink(b, { pipelineId: 'p' })));
    expect([again.rows, again.skipped]).toEqual([10, 0]);
  });

  it('errors the stream on a bad value, writing none of the batch and keeping the offsets', async () => {
    const schema = freshSchema();
    // three rows per statement: the bad row is in the batch's third statement
    const table = await open(txnSpec(schema), { maxRowsPerStatement: 3 });
    const good = txns(5);
    const bad = txns(10, { firstOffset: 5n }).map((r) => (r.offset === 12n ? { ...r, amount: null } : r));
    const after = txns(5, { firstOffset: 15n });
    const acks: SinkAck[] = [];
    const errors: Error[] = [];
    const done = lastValueFrom(from([good, bad, after]).pipe(pgSink(table, { onWriteError: (e) => errors.push(e) }), tap((a) => acks.push(a))));
    await expect(done).rejects.toThrow(new RegExp(`PostgreSQL table ${schema}\\.txns: null value in column "amount".*\\[23502\\]`));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(PgSinkError);
    expect((errors[0] as PgSinkError).retriable).toBe(false);
    expect(acks.map((a) => a.rows)).toEqual([5]);
    expect((await tableRows(schema, 'txns', '"offset"')).map((r) => r.offset)).toEqual(['0', '1', '2', '3', '4']);
    expect(await offsetsOf(schema)).toEqual([[`${schema}.txns`, 'rxlake-payments-0', 'payments', 0, '4']]);
  });

  it('retries while the server refuses connections, then acks once', async () => {
    const schema = freshSchema();
    await open(txnSpec(schema));
    const proxy = await startTcpProxy('127.0.0.1', Number(new URL(stack.pgUrl).port));
    try {
      await proxy.down();
      const table = await open(txnSpec(schema), {}, newPool({ port: proxy.port })).catch(() => undefined);
      expect(table).toBeUndefined(); // nothing listens: opening fails, …
      await proxy.up();
      const viaProxy = await open(txnSpec(schema), {}, newPool({ port: proxy.port, connectionTimeoutMillis: 2_000 }));
      await proxy.down(); // … and now the writes fail too
      const errors: Array<[string, number, boolean]> = [];
      const acks = lastValueFrom(
        from([txns(30)]).pipe(
          pgSink(viaProxy, { retry: { initialMs: 20, maxMs: 50 }, onWriteError: (e, attempt) => errors.push([e.message, attempt, isRetriablePg(e)]) }),
          toArray(),
        ),
      );
      await waitFor('three failed attempts', () => errors.length >= 3, 10_000);
      expect(await tableRows(schema, 'txns')).toEqual([]);
      await proxy.up();
      const result = await acks;
      expect(result.map((a) => [a.rows, a.skipped, a.refs.length])).toEqual([[30, 0, 30]]);
      expect(errors.slice(0, 3).map((e) => e[1])).toEqual([1, 2, 3]);
      expect(errors.every((e) => e[2])).toBe(true);
      expect(errors[0]?.[0]).toMatch(new RegExp(`PostgreSQL table ${schema}\\.txns: .*(ECONNREFUSED|Connection terminated)`));
      expect(await tableRows(schema, 'txns')).toHaveLength(30);
    } finally {
      await proxy.close();
    }
  });

  it('gives up after maxAttempts without acking, and stops retrying once unsubscribed', async () => {
    const schema = freshSchema();
    const proxy = await startTcpProxy('127.0.0.1', Number(new URL(stack.pgUrl).port));
    try {
      const table = await open(txnSpec(schema), {}, newPool({ port: proxy.port }));
      await proxy.down();
      const attempts: number[] = [];
      const acks: SinkAck[] = [];
      const done = lastValueFrom(
        from([txns(3)]).pipe(
          pgSink(table, { retry: { initialMs: 1, maxMs: 5, maxAttempts: 3 }, onWriteError: (_e, a) => attempts.push(a) }),
          tap((a) => acks.push(a)),
        ),
      );
      await expect(done).rejects.toThrow(/ECONNREFUSED/);
      expect(attempts).toEqual([1, 2, 3]);
      expect(acks).toEqual([]);

      // The backoff between attempts runs on a clock this test moves: a retry comes exactly when
      // the clock passes it, so "no retry after unsubscribing" is checked by running the clock
      // past every pending timer, not by sleeping. Each attempt starts with a write to the table
      // (counted here, as it is called).
      let writes = 0;
      const counted = new Proxy(table, {
        get(target, key) {
          const v: unknown = Reflect.get(target, key, target);
          if (key === 'write' && typeof v === 'function') {
            return (...args: unknown[]): unknown => {
              writes += 1;
              return (v as (...a: unknown[]) => unknown).apply(target, args);
            };
          }
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
      const later: number[] = [];
      const changes = new Changes();
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
      try {
        const sub = from([txns(3)])
          .pipe(
            pgSink(counted, {
              retry: { initialMs: 30, maxMs: 30 },
              onWriteError: (_e, a) => {
                later.push(a);
                changes.changed();
              },
            }),
          )
          .subscribe();
        await changes.until('a failed attempt', () => later.length === 1, 10_000);
        // The retry waits on this clock: passing its backoff (at most maxMs) makes the second attempt.
        await vi.advanceTimersByTimeAsync(30);
        await changes.until('a second failed attempt', () => later.length === 2, 10_000);
        const pending = vi.getTimerCount();
        sub.unsubscribe();
        // Unsubscribing cancelled the backoff then pending (nothing else runs in between) …
        expect(vi.getTimerCount()).toBe(pending - 1);
        const seen = later.length;
        const started = writes;
        // … and once every timer still pending has fired (a retry left scheduled would start
        // now, with a write), there was no further attempt.
        await vi.runAllTimersAsync();
        expect(later.length).toBe(seen);
        expect(later).toEqual([1, 2]);
        expect(writes).toBe(started);
      } finally {
        vi.useRealTimers();
      }
    } finally {
      await proxy.close();
    }
  });

  it('retries a transaction whose session is terminated mid-write, rolling it back, then writes it once', async () => {
    const schema = freshSchema();
    const app = uniqueName('pgsink-app');
    const table = await open(txnSpec(schema), {}, newPool({ app }));
    const batches = new Subject<Txn[]>();
    const acks: SinkAck[] = [];
    const errors: Array<[string | undefined, number, boolean]> = [];
    const sub = batches
      .pipe(
        pgSink(table, {
          retry: { initialMs: 20, maxMs: 50 },
          onWriteError: (e, attempt) => errors.push([(e as PgSinkError).sqlState, attempt, isRetriablePg(e)]),
        }),
      )
      .subscribe((a) => acks.push(a));
    try {
      batches.next(txns(4));
      await waitFor('the first ack', () => acks.length === 1, 10_000);
      // another session holds the table: the sink's transaction waits in its INSERT …
      const blocker = await admin.connect();
      try {
        await blocker.query('BEGIN');
        await blocker.query(`LOCK TABLE "${schema}".txns IN EXCLUSIVE MODE`);
        batches.next(txns(6, { firstOffset: 4n }));
        let pid: number | undefined;
        await waitFor('the sink waiting for the lock', async () => {
          const { rows } = await admin.query<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
            [app],
          );
          pid = rows[0]?.pid;
          return pid !== undefined;
        }, 10_000);
        // … when its session is terminated: the attempt fails and its transaction is gone
        await admin.query('SELECT pg_terminate_backend($1)', [pid]);
        await waitFor('the failed attempt', () => errors.length >= 1, 10_000);
        expect(acks).toHaveLength(1);
      } finally {
        await blocker.query('COMMIT');
        blocker.release();
      }
      await waitFor('the second ack', () => acks.length === 2, 20_000);
      expect(errors[0]).toEqual(['57P01', 1, true]);
      expect(acks.map((a) => [a.rows, a.skipped, a.refs.length])).toEqual([[4, 0, 4], [6, 0, 6]]);
      expect((await tableRows(schema, 'txns', '"offset"')).map((r) => r.offset)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
      expect(await table.lastOffset('rxlake-payments-0', 'payments', 0)).toBe(9n);
    } finally {
      sub.unsubscribe();
    }
  });

  it('acks a batch received in chunks once, at its last chunk', async () => {
    const schema = freshSchema();
    const table = await open(txnSpec(schema));
    const rows = txns(13);
    const chunks: BatchChunk<Txn>[] = [
      { records: rows.slice(0, 5), last: false },
      { records: rows.slice(5, 10), last: true },
      { records: rows.slice(10), last: false },
      { records: [], last: true },
      { records: [], last: true },
    ];
    const acks = await lastValueFrom(from(chunks).pipe(pgSink(table), toArray()));
    expect(acks.map((a) => [a.rows, a.refs.length])).toEqual([[10, 10], [3, 3]]);
    expect(await tableRows(schema, 'txns')).toHaveLength(13);
  });

  it('upserts rows that are not records (window aggregates) idempotently, acking the records they cover', async () => {
    const schema = freshSchema();
    interface Agg {
      readonly window_start: bigint;
      readonly key: string;
      readonly count: number;
      readonly sum: number;
      readonly covers: readonly RecordRef[];
    }
    const table = await open<Agg>({
      schema,
      name: 'aggs',
      columns: [
        { name: 'window_start', type: 'timestamptz' },
        { name: 'key', type: 'text' },
        { name: 'count', type: 'integer', nullable: false },
        { name: 'sum', type: 'double precision', nullable: false },
      ],
      primaryKey: ['window_start', 'key'],
    });
    const ref = (offset: bigint): RecordRef => ({ topic: 'transactions', partition: 1, offset });
    const w = 1_767_225_600_000_000n; // 2026-01-01T00:00:00Z in µs
    const batch: Agg[] = [
      { window_start: w, key: 'eur', count: 2, sum: 30.5, covers: [ref(0n), ref(2n)] },
      { window_start: w, key: 'usd', count: 1, sum: 4, covers: [ref(1n)] },
    ];
    const update: Agg[] = [{ window_start: w, key: 'eur', count: 3, sum: 40.5, covers: [ref(3n)] }];
    const sink = pgSink(table, { refsOf: (row: Agg) => row.covers });
    const acks = await lastValueFrom(from([batch, batch, update]).pipe(sink, toArray()));
    // the replay writes the same rows again (no offsets), leaving the table as it was
    expect(acks.map((a) => [a.rows, a.skipped, a.refs.map((r) => r.offset)])).toEqual([
      [2, 0, [0n, 2n, 1n]],
      [2, 0, [0n, 2n, 1n]],
      [1, 0, [3n]],
    ]);
    const rows = await admin.query<{ ws: string; key: string; count: number; sum: number }>(
      `SELECT (extract(epoch FROM window_start) * 1000000)::bigint::text AS ws, key, count, sum FROM "${schema}".aggs ORDER BY key`,
    );
    expect(rows.rows).toEqual([
      { ws: w.toString(), key: 'eur', count: 3, sum: 40.5 },
      { ws: w.toString(), key: 'usd', count: 1, sum: 4 },
    ]);
    expect(await offsetsOf(schema)).toEqual([]);
    // exactly-once asked for rows that are not records: an error, not a silent write
    const wrong = lastValueFrom(from([batch]).pipe(pgSink(table, { refsOf: (row: Agg) => row.covers, exactlyOnce: true })));
    await expect(wrong).rejects.toThrow(/exactly-once needs rows that are Kafka records/);
  });

  it('round-trips bytea, timestamptz, bigint, integer, double, jsonb, date, boolean, text and nulls exactly', async () => {
    const schema = freshSchema();
    interface Typed {
      readonly id: number;
      readonly big: bigint | null;
      readonly ts: bigint | Date | number | null;
      readonly raw: Uint8Array | null;
      readonly note: string | Uint8Array | null;
      readonly score: number | null;
      readonly meta: unknown;
      readonly day: Date | string | null;
      readonly flag: boolean | null;
    }
    const table = await open<Typed>({
      schema,
      name: 'typed',
      columns: [
        { name: 'id', type: 'integer' },
        { name: 'big', type: 'bigint' },
        { name: 'ts', type: 'timestamptz' },
        { name: 'raw', type: 'bytea' },
        { name: 'note', type: 'text' },
        { name: 'score', type: 'double precision' },
        { name: 'meta', type: 'jsonb' },
        { name: 'day', type: 'date' },
        { name: 'flag', type: 'boolean' },
      ],
      primaryKey: ['id'],
    });
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const backing = new Uint8Array([9, 9, 0, 255, 92, 34, 123, 9]);
    const rows: Typed[] = [
      { id: 1, big: 9_223_372_036_854_775_807n, ts: 1_700_000_000_123_456n, raw: all, note: 'plain "quoted" \\ {braces}, comma', score: 0.1 + 0.2, meta: { a: [1, 'x'], b: null }, day: '2026-02-28', flag: true },
      { id: 2, big: -9_223_372_036_854_775_808n, ts: -1n, raw: backing.subarray(2, 7), note: new TextEncoder().encode('héllo ✓'), score: -1e308, meta: 'null', day: new Date(Date.UTC(2024, 1, 29, 23, 59)), flag: false },
      { id: 3, big: 0n, ts: new Date(Date.UTC(2001, 8, 9, 1, 46, 40, 7)), raw: new Uint8Array(0), note: '', score: 5e-324, meta: [], day: null, flag: null },
      { id: 4, big: null, ts: 1_000_000_000_999, raw: null, note: null, score: null, meta: null, day: null, flag: null },
    ];
    const acks = await lastValueFrom(from([rows]).pipe(pgSink(table, { refsOf: () => [] }), toArray()));
    expect(acks.map((a) => [a.rows, a.refs.length])).toEqual([[4, 0]]);
    const { rows: back } = await admin.query<Record<string, unknown>>(
      `SELECT id, big::text AS big, (extract(epoch FROM ts) * 1000000)::bigint::text AS ts_us, raw, note, score, meta, day::text AS day, flag
         FROM "${schema}".typed ORDER BY id`,
    );
    expect(back).toEqual([
      { id: 1, big: '9223372036854775807', ts_us: '1700000000123456', raw: Buffer.from(all), note: 'plain "quoted" \\ {braces}, comma', score: 0.1 + 0.2, meta: { a: [1, 'x'], b: null }, day: '2026-02-28', flag: true },
      { id: 2, big: '-9223372036854775808', ts_us: '-1', raw: Buffer.from([0, 255, 92, 34, 123]), note: 'héllo ✓', score: -1e308, meta: null, day: '2024-02-29', flag: false },
      { id: 3, big: '0', ts_us: '1000000000007000', raw: Buffer.alloc(0), note: '', score: 5e-324, meta: [], day: null, flag: null },
      { id: 4, big: null, ts_us: '1000000000999000', raw: null, note: null, score: null, meta: null, day: null, flag: null },
    ]);
    // jsonb 'null' (a JSON null) is not SQL NULL
    const jsonNull = await admin.query<{ n: boolean }>(`SELECT meta IS NULL AS n FROM "${schema}".typed WHERE id = 2`);
    expect(jsonNull.rows[0]?.n).toBe(false);
    // a value its column cannot take: the stream errors naming the column
    const bad = lastValueFrom(from([[{ ...(rows[0] as Typed), id: 9, raw: 'not bytes' } as unknown as Typed]]).pipe(pgSink(table, { refsOf: () => [] })));
    await expect(bad).rejects.toThrow(/column "raw" \(bytea\): expected a Uint8Array/);
    const badText = lastValueFrom(from([[{ ...(rows[0] as Typed), id: 9, note: new Uint8Array([0xff, 0xfe]) }]]).pipe(pgSink(table, { refsOf: () => [] })));
    await expect(badText).rejects.toThrow(/column "note" \(text\)/);
    expect((await admin.query(`SELECT count(*)::int AS n FROM "${schema}".typed`)).rows).toEqual([{ n: 4 }]);
  });
});

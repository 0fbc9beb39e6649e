/**
 * deltaSink over a real `DeltaTable` on `memoryStorage`, in virtual time. A `DeltaTable` works
 * through promises, so these specs run with `runWithPromises` (see there): between virtual
 * frames every pending promise settles. The store makes a commit (the `putIfAbsent` of a
 * `_delta_log` file) take virtual frames — `latency`, or what `plan` says for the next commits,
 * failing them if it says so — and everything else none, so an ack comes `latency` frames after
 * its batch when the sink is idle. What landed is read back from the store.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deltaSink } from '../../src/operators/deltaSink.ts';
import type { DeltaSinkOptions } from '../../src/operators/deltaSink.ts';
import type { BatchChunk } from '../../src/operators/bufferTime.ts';
import { memoryStorage } from '../../src/sinks/delta/memoryStorage.ts';
import type { MemoryStorage } from '../../src/sinks/delta/memoryStorage.ts';
import { readColumns } from '../../src/sinks/delta/parquet.ts';
import { StorageError } from '../../src/sinks/delta/retry.ts';
import type { TableSpec } from '../../src/sinks/delta/schema.ts';
import { DeltaTable } from '../../src/sinks/delta/table.ts';
import type { EnrichedRecord, RecordRef, SinkAck } from '../../src/types.ts';
import { runWithPromises } from './promiseMarbles.ts';
import type { PromiseMarbles } from './promiseMarbles.ts';
import { enriched } from './records.ts';

type Row = EnrichedRecord;
type Input = readonly Row[] | BatchChunk<Row>;

const spec: TableSpec<Row> = {
  name: 'events',
  columns: [
    { name: 'value', type: 'string', get: (r) => r.value },
    { name: '_kafka_partition', type: 'integer', nullable: false },
    { name: '_kafka_offset', type: 'long', nullable: false },
  ],
};

/** Records of topic `t`, partition 0, at these offsets. */
const rows = (...offsets: number[]): Row[] => offsets.map((o) => enriched(o, `v${o}`));
const refs = (...offsets: number[]): RecordRef[] => offsets.map((o) => ({ topic: 't', partition: 0, offset: BigInt(o) }));
const chunk = (last: boolean, ...records: Row[]): BatchChunk<Row> => ({ records, last });

/** The ack deltaSink emits: `bytes` is whatever the files weigh, when some were written. */
function ack(version: number | null, written: number, skipped: number, acked: readonly RecordRef[], durationMs: number): SinkAck {
  return { table: 'events', version, rows: written, skipped, bytes: written > 0 ? expect.any(Number) as number : 0, durationMs, refs: acked };
}

interface Step {
  readonly frames: number;
  readonly error?: Error;
}

/**
 * A table on a memory store whose commits take `latency` frames, or for the next commits what
 * `plan` says (failing them with its error). `commits`: the frames commit attempts started at.
 * `seed`: rows committed before, as deltaSink with its default appIds would have.
 */
async function virtualTable(
  m: PromiseMarbles,
  latency: number,
  plan: Step[] = [],
  seed: readonly Row[] = [],
): Promise<{ table: DeltaTable<Row>; storage: MemoryStorage; commits: number[] }> {
  let armed = false;
  const commits: number[] = [];
  const storage = memoryStorage({
    before: ({ op, path }) => {
      if (!armed || op !== 'putIfAbsent' || !path.startsWith('_delta_log/')) return undefined;
      commits.push(m.scheduler.frame);
      const step = plan.shift() ?? { frames: latency };
      return m.delay(step.frames).then(() => {
        if (step.error) throw step.error;
      });
    },
  });
  const table = await DeltaTable.openOrCreate(storage, spec, { encoder: 'inline' });
  if (seed.length) await table.append(seed, { dedupe: { appId: (r) => `rxlake-${r.topic}-${r.partition}`, offset: (r) => r.offset } });
  armed = true;
  return { table, storage, commits };
}

/** Offsets of the rows in the table's committed files, sorted. */
async function offsetsIn(storage: MemoryStorage): Promise<number[]> {
  const out: number[] = [];
  for (const [path, bytes] of storage.files) {
    if (!path.startsWith('_delta_log/') || !path.endsWith('.json')) continue;
    for (const line of new TextDecoder().decode(bytes).split('\n')) {
      if (!line) continue;
      const action = JSON.parse(line) as { add?: { path: string } };
      if (!action.add) continue;
      const data = storage.files.get(decodeURI(action.add.path));
      if (!data) throw new Error(`${action.add.path}: committed but missing`);
      const [offsets] = await readColumns(data, ['_kafka_offset']);
      for (const o of offsets ?? []) out.push(Number(o));
    }
  }
  return out.sort((a, b) => a - b);
}

const parquetFiles = (storage: MemoryStorage): string[] => [...storage.files.keys()].filter((p) => p.endsWith('.parquet'));

const sink = (table: DeltaTable<Row>, m: PromiseMarbles, options: DeltaSinkOptions = {}) => deltaSink(table, { scheduler: m.scheduler, ...options });

describe('deltaSink', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('completes without emitting on empty', async () => {
    await runWithPromises(async (m) => {
      const { table, commits } = await virtualTable(m, 2);
      const e1 = m.cold<Input>('|');
      m.expectObservable(e1.pipe(sink(table, m))).toBe('|');
      m.expectSubscriptions(e1.subscriptions).toBe('(^!)');
      expect(commits).toEqual([]);
    });
  });

  it('never emits on never', async () => {
    await runWithPromises(async (m) => {
      const { table } = await virtualTable(m, 2);
      const e1 = m.cold<Input>('-');
      m.expectObservable(e1.pipe(sink(table, m))).toBe('-');
      m.expectSubscriptions(e1.subscriptions).toBe('^');
    });
  });

  it('passes an error on at once: no ack for the batch being committed, the batch being staged is dropped', async () => {
    let storage: MemoryStorage | undefined;
    const err = new Error('upstream failed');
    await runWithPromises(async (m) => {
      const t = await virtualTable(m, 5);
      storage = t.storage;
      const e1 = m.hot<Input>('  -a-b-#', { a: rows(0, 1), b: chunk(false, ...rows(2, 3)) }, err);
      const subs = '             ^----!';
      const expected = '         -----#';
      m.expectObservable(e1.pipe(sink(t.table, m))).toBe(expected, undefined, err);
      m.expectSubscriptions(e1.subscriptions).toBe(subs);
    });
    // The commit under way when the error came could not be called back: it landed (a replay
    // skips its rows). The staged rows were never written.
    expect(await offsetsIn(storage as MemoryStorage)).toEqual([0, 1]);
    expect(parquetFiles(storage as MemoryStorage)).toHaveLength(1);
  });

  it('emits nothing after an early unsubscribe, and drops the batch being staged', async () => {
    let storage: MemoryStorage | undefined;
    await runWithPromises(async (m) => {
      const t = await virtualTable(m, 5);
      storage = t.storage;
      const e1 = m.hot<Input>('  -a-b-----c--', { a: rows(0, 1), b: chunk(false, ...rows(2)), c: chunk(true, ...rows(3)) });
      const unsub = '            ^---!';
      m.expectObservable(e1.pipe(sink(t.table, m)), unsub).toBe('-');
      m.expectSubscriptions(e1.subscriptions).toBe(unsub);
      // The dropped batch holds nothing back: the same table handle stages its record again.
      const e2 = m.hot<Input>('  --------b|', { b: chunk(true, ...rows(2)) });
      m.expectObservable(e2.pipe(sink(t.table, m))).toBe('-------------(x|)', { x: ack(2, 1, 0, refs(2), 5) });
    });
    // The commit under way when unsubscribed could not be called back: it landed.
    expect(await offsetsIn(storage as MemoryStorage)).toEqual([0, 1, 2]);
    expect(parquetFiles(storage as MemoryStorage)).toHaveLength(2);
  });

  it('acks in batch order, one commit at a time, when batches come while a commit is under way', async () => {
    const written: SinkAck[] = [];
    let commits: number[] = [];
    await runWithPromises(async (m) => {
      const t = await virtualTable(m, 1, [{ frames: 4 }, { frames: 1 }, { frames: 1 }]);
      commits = t.commits;
      const values = { a: rows(0, 1), b: rows(2), c: rows(3, 4) };
      const e1 = m.hot<Input>('  -abc------|', values);
      const expected = '         -----xyz--|';
      m.expectObservable(e1.pipe(sink(t.table, m, { onWrite: (a) => written.push(a) }))).toBe(expected, {
        x: ack(1, 2, 0, values.a, 4),
        y: ack(2, 1, 0, values.b, 1),
        z: ack(3, 2, 0, values.c, 1),
      });
    });
    // b's commit starts when a's has landed, c's when b's has.
    expect(commits).toEqual([1, 5, 6]);
    expect(written.map((a) => a.version)).toEqual([1, 2, 3]);
  });

  it('stages chunks as they come and commits their batch at its last chunk; a partial batch at completion', async () => {
    let storage: MemoryStorage | undefined;
    let commits: number[] = [];
    await runWithPromises(async (m) => {
      const t = await virtualTable(m, 2);
      storage = t.storage;
      commits = t.commits;
      const values = {
        a: chunk(false, ...rows(0, 1)),
        b: chunk(true, ...rows(2)),
        e: chunk(true), // a batch that ended on a chunk boundary: nothing to commit
        c: chunk(false, ...rows(3)),
      };
      const e1 = m.hot<Input>('  -a-b-e-c-|', values);
      const expected = '         -----x-----(y|)';
      // The ack lists the records by reference only.
      m.expectObservable(e1.pipe(sink(t.table, m))).toBe(expected, { x: ack(1, 3, 0, refs(0, 1, 2), 2), y: ack(2, 1, 0, refs(3), 2) });
    });
    expect(commits).toEqual([3, 9]);
    expect(await offsetsIn(storage as MemoryStorage)).toEqual([0, 1, 2, 3]);
  });

  it('retries a retriable failure after its backoff, then acks once', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5); // backoff = 3/4 of its ceiling
    const errors: Array<[string, number]> = [];
    let commits: number[] = [];
    let storage: MemoryStorage | undefined;
    await runWithPromises(async (m) => {
      const t = await virtualTable(m, 2, [{ frames: 1, error: new StorageError('connection reset', { retriable: true }) }]);
      commits = t.commits;
      storage = t.storage;
      const e1 = m.hot<Input>('  -a---------|', { a: rows(0, 1) });
      // attempt 1 fails at 2; the backoff (ceiling 4) waits 3; attempt 2 commits from 5 to 7.
      const expected = '         -------x---|';
      const options = { retry: { initialMs: 4, maxMs: 4 }, onWriteError: (e: Error, n: number) => errors.push([e.message, n]) };
      m.expectObservable(e1.pipe(sink(t.table, m, options))).toBe(expected, { x: ack(1, 2, 0, rows(0, 1), 6) });
    });
    expect(errors).toEqual([['connection reset', 1]]);
    expect(commits).toEqual([1, 5]);
    expect(await offsetsIn(storage as MemoryStorage)).toEqual([0, 1]);
  });

  it('errors the stream on a non-retriable failure, and after the last allowed attempt', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const denied = new StorageError('access denied', { retriable: false });
    const reset = new StorageError('connection reset', { retriable: true });
    const attempts: number[][] = [[], []];
    await runWithPromises(async (m) => {
      const t1 = await virtualTable(m, 2, [{ frames: 1, error: denied }]);
      const e1 = m.hot<Input>('  -a-b---|', { a: rows(0), b: rows(1) });
      m.expectObservable(e1.pipe(sink(t1.table, m, { onWriteError: (_e, n) => attempts[0]?.push(n) }))).toBe('--#', undefined, denied);
      m.expectSubscriptions(e1.subscriptions).toBe('^-!');

      const t2 = await virtualTable(m, 2, [{ frames: 1, error: reset }, { frames: 1, error: reset }]);
      const e2 = m.hot<Input>('  -a---------|', { a: rows(0) });
      // fails at 2, waits 3, fails again at 6: two attempts allowed
      const options = { retry: { initialMs: 4, maxMs: 4, maxAttempts: 2 }, onWriteError: (_e: Error, n: number) => attempts[1]?.push(n) };
      m.expectObservable(e2.pipe(sink(t2.table, m, options))).toBe('------#', undefined, reset);
    });
    expect(attempts).toEqual([[1], [1, 2]]);
  });

  it('errors the stream at once on a value its column cannot take, whole or in a chunk', async () => {
    const bad = { ...enriched(1, 'x'), _kafka_partition: null } as unknown as Row;
    const attempts: number[] = [];
    let storage: MemoryStorage | undefined;
    await runWithPromises(async (m) => {
      const t = await virtualTable(m, 2);
      storage = t.storage;
      const onWriteError = (_e: Error, n: number): number => attempts.push(n);
      const e1 = m.hot<Input>('  -a--|', { a: [enriched(0, 'ok'), bad] });
      m.expectObservable(e1.pipe(sink(t.table, m, { onWriteError }))).toBe('-#', undefined, expect.objectContaining({ name: 'InvalidValueError' }));
      const e2 = m.hot<Input>('  --a-|', { a: chunk(false, enriched(0, 'ok'), bad) });
      m.expectObservable(e2.pipe(sink(t.table, m, { onWriteError }))).toBe('--#', undefined, expect.objectContaining({ name: 'InvalidValueError' }));
    });
    expect(attempts).toEqual([1, 1]);
    expect(parquetFiles(storage as MemoryStorage)).toEqual([]);
  });

  it('drops a second copy of a record inside a batch, whole or in chunks, counting it as skipped', async () => {
    let storage: MemoryStorage | undefined;
    await runWithPromises(async (m) => {
      const t = await virtualTable(m, 2);
      storage = t.storage;
      const [r0, r1, r2, r3, r4, r5] = rows(0, 1, 2, 3, 4, 5) as [Row, Row, Row, Row, Row, Row];
      const values = { a: [r0, r1, r0, r2], b: chunk(false, r3, r4), c: chunk(true, r4, r5, r3) };
      const e1 = m.hot<Input>('  -a--b-c---|', values);
      const expected = '         ---x----y-|';
      m.expectObservable(e1.pipe(sink(t.table, m))).toBe(expected, { x: ack(1, 3, 1, [r0, r1, r2], 2), y: ack(2, 3, 2, refs(3, 4, 5), 2) });
    });
    expect(await offsetsIn(storage as MemoryStorage)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('exactly-once: skips rows at or below the txn version the table holds, acks them, records the new version', async () => {
    let table: DeltaTable<Row> | undefined;
    let storage: MemoryStorage | undefined;
    await runWithPromises(async (m) => {
      // Offsets 0..4 are in the table already (another run of the same pipeline).
      const t = await virtualTable(m, 2, [], rows(0, 1, 2, 3, 4));
      ({ table, storage } = t);
      const values = { a: rows(3, 4, 5, 6, 7), b: rows(5, 6, 7), c: chunk(true, ...rows(6, 7, 8, 9)) };
      const e1 = m.hot<Input>('  -a---b-c---|', values);
      // b is all in the table: acked without a commit, at once.
      const expected = '         ---x-y---z-|';
      m.expectObservable(e1.pipe(sink(t.table, m))).toBe(expected, {
        x: ack(2, 3, 2, values.a, 2),
        y: ack(null, 0, 3, values.b, 0),
        z: ack(3, 2, 2, refs(6, 7, 8, 9), 2),
      });
    });
    expect(table?.txnVersion('rxlake-t-0')).toBe(9n);
    expect(await offsetsIn(storage as MemoryStorage)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

/**
 * The deltaSink operator against real storage: acks after the commit is durable, one batch at
 * a time, retries retriable storage failures without acking twice, errors on bad input.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { from, lastValueFrom, tap, throwError, toArray } from 'rxjs';
import { describe, expect, it, vi } from 'vitest';
import { deltaSink } from '../../src/operators/deltaSink.ts';
import { DeltaTable } from '../../src/sinks/delta/table.ts';
import type { SinkAck } from '../../src/types.ts';
import { verifyDelta } from '../support/stack.ts';
import { Changes } from '../support/wait.ts';
import type { BronzeRow } from './deltaFixtures.ts';
import { BIG_OFFSET, bronzeRows, bronzeSpec, freshTarget, instrumented } from './deltaFixtures.ts';

describe('deltaSink', () => {
  it('emits one ack per non-empty batch, after its commit exists, in order', async () => {
    const t = freshTarget('local', 'delta-sink');
    const table = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_sink'));
    const b1 = [...bronzeRows({ count: 50, partition: 0 }), ...bronzeRows({ count: 20, partition: 2, firstOffset: 7n })];
    const b2 = bronzeRows({ count: 30, partition: 0, firstOffset: BIG_OFFSET + 50n });
    const seen: SinkAck[] = [];
    const acks = await lastValueFrom(
      from([b1, [] as BronzeRow[], b2]).pipe(
        deltaSink(table, { pipelineId: 'bronze', onWrite: (a) => seen.push(a) }),
        tap((ack) => {
          // durable before the ack: the commit file is there when the ack arrives
          expect(existsSync(join(t.uri, '_delta_log', `${String(ack.version).padStart(20, '0')}.json`))).toBe(true);
        }),
        toArray(),
      ),
    );
    expect(acks.map((a) => [a.table, a.version, a.rows, a.skipped])).toEqual([
      ['bronze_sink', 1, 70, 0],
      ['bronze_sink', 2, 30, 0],
    ]);
    expect(seen).toEqual(acks);
    expect(acks[0]?.refs).toHaveLength(70);
    expect(acks[0]?.refs.map((r) => r.offset)).toEqual(b1.map((r) => r.offset));
    expect(acks[1]?.bytes).toBeGreaterThan(0);
    const v = await verifyDelta(t.uri, { appIds: ['bronze-trips-0', 'bronze-trips-2'] });
    expect(v.num_rows).toBe(100);
    expect(v.txn_exact).toEqual({ 'bronze-trips-0': (BIG_OFFSET + 79n).toString(), 'bronze-trips-2': '26' });
  });

  it('acks a replayed batch without writing it (refs include the skipped rows)', async () => {
    const t = freshTarget('local', 'delta-sink-replay');
    const table = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_sink_replay'));
    const b = bronzeRows({ count: 40, partition: 5 });
    const acks = await lastValueFrom(from([b, b.slice(10, 30), b]).pipe(deltaSink(table), toArray()));
    expect(acks.map((a) => [a.version, a.rows, a.skipped, a.refs.length])).toEqual([
      [1, 40, 0, 40],
      [null, 0, 20, 20],
      [null, 0, 40, 40],
    ]);
    expect((await verifyDelta(t.uri)).num_rows).toBe(40);
  });

  it.each([
    ['local', 'write'],
    ['local', 'putIfAbsent'],
    ['s3', 'putIfAbsent'],
  ] as const)('retries retriable storage failures on %s (%s), then acks once', async (kind, failOp) => {
    const t = freshTarget(kind, 'delta-sink-retry');
    await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_sink_retry'));
    // Another handle whose storage fails its next 3 data-file writes or commit creations.
    const flaky = instrumented(t.storage, { failures: 3, failOps: [failOp] });
    const table = await DeltaTable.openOrCreate(flaky, bronzeSpec('bronze_sink_retry'));
    const errors: Array<[string, number, boolean]> = [];
    const b = bronzeRows({ count: 60, partition: 1, dates: ['2026-11-22'] }); // one file per attempt
    const acks = await lastValueFrom(
      from([b]).pipe(
        deltaSink(table, {
          retry: { initialMs: 5, maxMs: 20 },
          onWriteError: (err, attempt) => errors.push([err.message, attempt, (err as { retriable?: boolean }).retriable === true]),
        }),
        toArray(),
      ),
    );
    expect(flaky.failed).toBe(3);
    expect(errors.map((e) => e[1])).toEqual([1, 2, 3]);
    expect(errors.every((e) => e[2])).toBe(true);
    expect(acks).toHaveLength(1);
    expect(acks[0]).toMatchObject({ version: 1, rows: 60, skipped: 0 });
    const v = await verifyDelta(t.uri, { rows: true, columns: ['_kafka_offset'] });
    expect(v.version).toBe(1);
    expect(v.num_rows).toBe(60);
  });

  it('gives up after maxAttempts and never acks the failed batch', async () => {
    const t = freshTarget('local', 'delta-sink-giveup');
    await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_sink_giveup'));
    const flaky = instrumented(t.storage, { failures: 100, failOps: ['write', 'putIfAbsent'] });
    const table = await DeltaTable.openOrCreate(flaky, bronzeSpec('bronze_sink_giveup'));
    const acks: SinkAck[] = [];
    const attempts: number[] = [];
    const done = lastValueFrom(
      from([bronzeRows({ count: 5 })]).pipe(
        deltaSink(table, { retry: { initialMs: 1, maxMs: 2, maxAttempts: 3 }, onWriteError: (_e, a) => attempts.push(a) }),
        tap((a) => acks.push(a)),
      ),
    );
    await expect(done).rejects.toThrow(/injected/);
    expect(attempts).toEqual([1, 2, 3]);
    expect(acks).toEqual([]);
    expect((await verifyDelta(t.uri)).version).toBe(0);
  });

  it('errors the stream at once on a non-retriable failure (a null in a NOT NULL column)', async () => {
    const t = freshTarget('local', 'delta-sink-bad');
    const table = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_sink_bad'));
    const rows = bronzeRows({ count: 3 });
    // rows alternate dates: the 2026-11-21 file is written before row 1 (2026-11-22) fails
    const bad = rows.map((r, i) => (i === 1 ? { ...r, _kafka_partition: null as unknown as number } : r));
    const attempts: number[] = [];
    await expect(lastValueFrom(from([bad]).pipe(deltaSink(table, { onWriteError: (_e, a) => attempts.push(a) })))).rejects.toThrow(
      /_kafka_partition.*NOT NULL/,
    );
    expect(attempts).toEqual([1]);
    expect((await verifyDelta(t.uri)).version).toBe(0);
    // the file of the partition encoded before the bad row was found is removed again
    const files = (await readdir(t.uri, { recursive: true })).filter((f) => f.endsWith('.parquet'));
    expect(files).toEqual([]);
  });

  it('stops retrying once unsubscribed, and passes upstream errors through', async () => {
    const t = freshTarget('local', 'delta-sink-unsub');
    await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_sink_unsub'));
    const flaky = instrumented(t.storage, { failures: 1000, failOps: ['write'] });
    const table = await DeltaTable.openOrCreate(flaky, bronzeSpec('bronze_sink_unsub'));
    const attempts: number[] = [];
    const changes = new Changes();
    // The backoff between attempts runs on a clock this test moves: a retry comes exactly when
    // the clock passes it, so "no retry after unsubscribing" is checked by running the clock
    // past every pending timer, not by sleeping.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    try {
      const sub = from([bronzeRows({ count: 5, dates: ['2026-11-22'] })])
        .pipe(
          deltaSink(table, {
            retry: { initialMs: 40, maxMs: 40 },
            onWriteError: (_e, a) => {
              attempts.push(a);
              changes.changed();
            },
          }),
        )
        .subscribe();
      await changes.until('the first failed attempt', () => attempts.length === 1, 10_000);
      // The retry waits on this clock: passing its backoff (at most maxMs) makes the second attempt.
      await vi.advanceTimersByTimeAsync(40);
      await changes.until('the second failed attempt', () => attempts.length === 2, 10_000);
      const pending = vi.getTimerCount();
      sub.unsubscribe();
      // Unsubscribing cancelled the backoff then pending (nothing else runs in between) …
      expect(vi.getTimerCount()).toBe(pending - 1);
      const calls = flaky.calls.length;
      const failed = flaky.failed;
      // … and once every timer still pending has fired (a retry left scheduled would start
      // now, and touch the storage at once), there was no further attempt.
      await vi.runAllTimersAsync();
      expect(attempts).toEqual([1, 2]);
      expect(flaky.calls.length).toBe(calls);
      expect(flaky.failed).toBe(failed);
    } finally {
      vi.useRealTimers();
    }

    const boom = new Error('upstream failed');
    await expect(lastValueFrom(throwError(() => boom).pipe(deltaSink(table)))).rejects.toBe(boom);
  });
});

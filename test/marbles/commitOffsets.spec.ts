import { defer, map, merge, timer } from 'rxjs';
import type { Observable } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { commitOffsets } from '../../src/operators/commitOffsets.ts';
import type { CommitEvent } from '../../src/operators/commitOffsets.ts';
import { OffsetTracker } from '../../src/sources/offsetTracker.ts';
import type { CommittedOffset, OffsetCommitTarget } from '../../src/sources/offsetTracker.ts';
import type { RecordRef, SinkAck } from '../../src/types.ts';
import { testScheduler } from './records.ts';

/**
 * An in-memory commit target on the real tracker: a commit snapshots the pending positions,
 * takes `latency` frames, then records them as committed. `failures` lists errors the next
 * commits throw, in order.
 */
class MemoryTarget implements OffsetCommitTarget {
  readonly tracker = new OffsetTracker();
  readonly log: CommittedOffset[][] = [];
  holds = 0;
  released = 0;
  failures: Error[] = [];
  readonly latency: number;
  constructor(latency: number) {
    this.latency = latency;
  }

  acknowledge(refs: readonly RecordRef[]): void {
    this.tracker.acknowledge(refs);
  }

  release(refs: readonly RecordRef[]): void {
    this.tracker.release(refs);
  }

  commit(): Observable<readonly CommittedOffset[]> {
    return defer(() => {
      const pending = this.tracker.pending();
      return timer(this.latency).pipe(
        map(() => {
          const failure = this.failures.shift();
          if (failure !== undefined) throw failure;
          for (const p of pending) this.tracker.markCommitted(p.topic, p.partition, p.offset);
          this.log.push(pending);
          return pending;
        }),
      );
    });
  }

  retain(): () => void {
    this.holds += 1;
    return () => {
      this.released += 1;
    };
  }
}

const ack = (table: string, ...offsets: number[]): SinkAck => ({
  table,
  version: 1,
  rows: offsets.length,
  skipped: 0,
  bytes: 0,
  durationMs: 0,
  refs: offsets.map((o) => ({ topic: 't', partition: 0, offset: BigInt(o) })),
});

const at = (...offsets: number[]): CommittedOffset[] => offsets.map((o) => ({ topic: 't', partition: 0, offset: BigInt(o) }));

function target(latency: number, emitted: number): MemoryTarget {
  const t = new MemoryTarget(latency);
  for (let o = 0; o < emitted; o++) t.tracker.emit('t', 0, BigInt(o), 1);
  return t;
}

describe('commitOffsets', () => {
  it("frees the budget of an ack's released records without committing past them", () => {
    const t = target(1, 3);
    testScheduler().run(({ hot, expectObservable }) => {
      const released: SinkAck = { ...ack('raw', 0), released: [{ topic: 't', partition: 0, offset: 1n }, { topic: 't', partition: 0, offset: 2n }] };
      const acks = hot('-a---b|', { a: released, b: ack('windows', 1) });
      expectObservable(acks.pipe(commitOffsets(t))).toBe('--x---(y|)', {
        x: { offsets: at(1), acks: 1 } satisfies CommitEvent, // 1 and 2 released, not acknowledged
        y: { offsets: at(2), acks: 1 } satisfies CommitEvent,
      });
    });
    // Nothing counts against the budget any more (0 and 1 acknowledged, 2 released).
    expect(t.tracker.inFlightRecords).toBe(0);
    expect(t.tracker.committable('t', 0)).toBe(2n);
  });

  it('commits the watermark of interleaved out-of-order acks from two sinks, one commit at a time', () => {
    const t = target(3, 6);
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const main = hot('-a------c-------|', { a: ack('main', 0, 2), c: ack('main', 3, 5) });
      const dlq = hot(' ---b------d-----|', { b: ack('dlq', 1), d: ack('dlq', 4) });
      const expected = '----x--y---z--w-|';
      expectObservable(merge(main, dlq).pipe(commitOffsets(t))).toBe(expected, {
        x: { offsets: at(1), acks: 1 } satisfies CommitEvent, // 0 done, 1 pending
        y: { offsets: at(3), acks: 1 }, // b arrived during x: coalesced, 0..2 done
        z: { offsets: at(4), acks: 1 }, // 3 and 5 done, 4 still pending
        w: { offsets: at(6), acks: 1 }, // everything done
      });
      expectSubscriptions(main.subscriptions).toBe('^---------------!');
    });
    expect(t.log).toEqual([at(1), at(3), at(4), at(6)]);
  });

  it('coalesces acks that arrive during a commit into the next commit', () => {
    const t = target(4, 4);
    testScheduler().run(({ hot, expectObservable }) => {
      const acks = hot('-abc--------|', { a: ack('m', 0), b: ack('m', 1), c: ack('m', 2, 3) });
      expectObservable(acks.pipe(commitOffsets(t))).toBe('-----x---y--|', {
        x: { offsets: at(1), acks: 1 },
        y: { offsets: at(4), acks: 2 },
      });
    });
  });

  it('performs the final commit after the acks complete, then completes and releases the target', () => {
    const t = target(3, 4);
    testScheduler().run(({ hot, expectObservable }) => {
      const acks = hot('-a-b-|', { a: ack('m', 0), b: ack('m', 1, 2, 3) });
      expectObservable(acks.pipe(commitOffsets(t))).toBe('----x--(y|)', {
        x: { offsets: at(1), acks: 1 },
        y: { offsets: at(4), acks: 1 },
      });
    });
    expect(t.holds).toBe(1);
    expect(t.released).toBe(1);
  });

  it('never commits past an unacknowledged record and emits nothing when nothing advanced', () => {
    const t = target(1, 3);
    testScheduler().run(({ hot, expectObservable }) => {
      const acks = hot('-a--b--c--|', {
        a: ack('m', 1, 2), // 0 not acknowledged: position 0 is committable (pins the start) …
        b: ack('m', 2), // … a repeated ack moves nothing: no event
        c: { ...ack('m'), refs: [{ topic: 'other', partition: 9, offset: 5n }] }, // unknown partition: ignored
      });
      expectObservable(acks.pipe(commitOffsets(t))).toBe('--x-------|', { x: { offsets: at(0), acks: 1 } });
    });
    expect(t.tracker.committable('t', 0)).toBe(0n);
  });

  it('retries a retriable commit failure with backoff', () => {
    const t = target(1, 1);
    t.failures = [Object.assign(new Error('rebalancing'), { retriable: true })];
    testScheduler().run(({ hot, expectObservable }) => {
      const acks = hot('-a-|', { a: ack('m', 0) });
      // attempt 1 fails at 2, retry after 5 → attempt 2 starts at 7, succeeds at 8
      expectObservable(acks.pipe(commitOffsets(t, { retry: { initialMs: 5, jitter: 0 } }))).toBe('--------(x|)', {
        x: { offsets: at(1), acks: 1 },
      });
    });
  });

  it('errors on a non-retriable commit failure, or when retries run out', () => {
    const fatal = new Error('not authorized');
    const t1 = target(1, 1);
    t1.failures = [fatal];
    const flaky = Object.assign(new Error('still rebalancing'), { retriable: true });
    const t2 = target(1, 1);
    t2.failures = [flaky, flaky, flaky];
    testScheduler().run(({ hot, expectObservable }) => {
      const acks = hot('-a-|', { a: ack('m', 0) });
      expectObservable(acks.pipe(commitOffsets(t1))).toBe('--#', undefined, fatal);
      // attempts at 1, 4 (after 2), 9 (after 4): each fails one frame later; 2 retries allowed
      expectObservable(acks.pipe(commitOffsets(t2, { retry: { maxAttempts: 3, initialMs: 2, jitter: 0 } }))).toBe(
        '----------#',
        undefined,
        flaky,
      );
    });
    expect(t1.released).toBe(1);
    expect(t2.released).toBe(1);
  });

  it('passes an error of the acks on at once, cancelling the commit in flight', () => {
    const t = target(3, 1);
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const acks = hot('-a-#', { a: ack('m', 0) });
      expectObservable(acks.pipe(commitOffsets(t))).toBe('---#');
      expectSubscriptions(acks.subscriptions).toBe('^--!');
    });
    expect(t.log).toEqual([]);
    expect(t.released).toBe(1);
  });

  it('completes on empty, stays silent on never, stops on early unsubscribe', () => {
    const t = target(2, 2);
    testScheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
      expectObservable(cold<SinkAck>('|').pipe(commitOffsets(t))).toBe('|');
      const never = cold<SinkAck>('-');
      expectObservable(never.pipe(commitOffsets(t))).toBe('-');
      expectSubscriptions(never.subscriptions).toBe('^');
      const acks = hot('-a--b--|', { a: ack('m', 0), b: ack('m', 1) });
      expectObservable(acks.pipe(commitOffsets(t)), '--!').toBe('--');
      expectSubscriptions(acks.subscriptions).toBe('^-!');
    });
    expect(t.log).toEqual([]); // the commit started at 1 was cancelled at 2
    expect(t.holds).toBe(3);
    expect(t.released).toBe(2); // the subscription to never is still open
  });
});

/**
 * Marble tests of operators whose work goes through promises (a `DeltaTable` over
 * `memoryStorage`), which `TestScheduler.run` cannot wait for: it flushes virtual time in one
 * synchronous go, before any promise settles.
 *
 * `runWithPromises` steps virtual time instead. Before each step every pending promise settles
 * (nothing here does real I/O or uses real timers: the only waits are virtual); then the
 * scheduler runs the actions of the next frame that has any. A promise continuation therefore
 * happens at the frame of whatever it waited for, and work that waits for nothing virtual takes
 * no virtual time. `delay(n)` is a promise that settles n frames later: what a store's latency
 * is made of. Marbles are those of `run` mode (spaces are only for alignment, one frame per
 * character); expectations are checked once nothing is left to run.
 */
import { TestScheduler } from 'rxjs/testing';
import type { Observable } from 'rxjs';
import { expect } from 'vitest';

type SubscriptionLogs = Parameters<TestScheduler['expectSubscriptions']>[0];

const strip = (marbles: string): string => marbles.replace(/ /g, '');

/** Lets every pending promise settle: all microtasks run before the next macrotask. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function helpersOf(scheduler: TestScheduler, checks: Array<() => void>) {
  return {
    scheduler,
    hot: <T = string>(marbles: string, values?: Record<string, T>, error?: unknown) => scheduler.createHotObservable<T>(strip(marbles), values, error),
    cold: <T = string>(marbles: string, values?: Record<string, T>, error?: unknown) => scheduler.createColdObservable<T>(strip(marbles), values, error),
    expectObservable: <T>(observable: Observable<T>, subscription?: string) => {
      const expectation = scheduler.expectObservable(observable, subscription === undefined ? null : strip(subscription));
      return {
        toBe: (marbles: string, values?: Record<string, unknown>, error?: unknown): void => {
          checks.push(() => expectation.toBe(strip(marbles), values, error));
        },
      };
    },
    expectSubscriptions: (logs: SubscriptionLogs) => ({
      toBe: (marbles: string | string[]): void => {
        checks.push(() => scheduler.expectSubscriptions(logs).toBe(typeof marbles === 'string' ? strip(marbles) : marbles.map(strip)));
      },
    }),
    /** Settles `frames` frames of virtual time from now. */
    delay: (frames: number): Promise<void> =>
      new Promise((resolve) => {
        scheduler.schedule(() => resolve(), frames);
      }),
  };
}

export type PromiseMarbles = ReturnType<typeof helpersOf>;

/**
 * Runs `callback` (which sets up observables and expectations, and may await set-up work), then
 * steps virtual time until no action is left and no promise is pending, then checks the
 * expectations. Throws when time runs past `maxFrame` (a retry that never ends).
 */
export async function runWithPromises(callback: (helpers: PromiseMarbles) => void | Promise<void>, maxFrame = 1_000): Promise<void> {
  const scheduler = new TestScheduler((actual, expected) => {
    expect(actual).toEqual(expected);
  });
  const factor = TestScheduler.frameTimeFactor;
  TestScheduler.frameTimeFactor = 1;
  try {
    const checks: Array<() => void> = [];
    await callback(helpersOf(scheduler, checks));
    for (;;) {
      await settle();
      const next = scheduler.actions[0];
      if (next === undefined) break;
      if (next.delay > maxFrame) throw new Error(`runWithPromises: still running at frame ${next.delay} (more than ${maxFrame} frames)`);
      scheduler.maxFrames = next.delay;
      scheduler.flush();
    }
    for (const check of checks) check();
    scheduler.flush();
  } finally {
    TestScheduler.frameTimeFactor = factor;
  }
}

/**
 * Time for the Kafka source: the wall clock, timers and jitter behind one interface, so each
 * part runs under a fake clock in unit tests. `clockScheduler` lends the clock to the library's
 * retry path (`withRetry`), so its waits run on the same clock.
 */
import { Subscription } from 'rxjs';
import type { SchedulerAction, SchedulerLike } from 'rxjs';

export interface Clock {
  /** Epoch milliseconds. */
  readonly now: () => number;
  /** Runs `run` once after `ms`; returns the cancel function. */
  readonly timeout: (run: () => void, ms: number) => () => void;
  /** Runs `run` every `ms` without keeping the process alive; returns the cancel function. */
  readonly interval: (run: () => void, ms: number) => () => void;
  /** A number in [0, 1), for jitter. */
  readonly random: () => number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  timeout: (run, ms) => {
    const timer = setTimeout(run, ms);
    return () => clearTimeout(timer);
  },
  interval: (run, ms) => {
    const timer = setInterval(run, ms);
    timer.unref();
    return () => clearInterval(timer);
  },
  random: () => Math.random(),
};

/** A condition to wait for: `wait(ms)` resolves on the next `wake()` or after `ms`, whichever comes first. */
export interface Signal {
  wake(): void;
  wait(ms: number): Promise<void>;
}

export function signal(clock: Clock): Signal {
  const waiters = new Set<() => void>();
  return {
    wake: () => {
      const all = [...waiters];
      waiters.clear();
      for (const w of all) w();
    },
    wait: (ms) =>
      new Promise<void>((resolve) => {
        const done = (): void => {
          cancel();
          waiters.delete(done);
          resolve();
        };
        const cancel = clock.timeout(done, ms);
        waiters.add(done);
      }),
  };
}

/**
 * The clock as an rxjs scheduler (its `now` and `timeout`), for `withRetry({ scheduler })`.
 *
 * @param clock The source's clock.
 * @return A scheduler whose actions run on the clock's timers.
 */
export function clockScheduler(clock: Clock): SchedulerLike {
  const schedule = <T>(work: (this: SchedulerAction<T>, state?: T) => void, delay = 0, state?: T): Subscription => {
    let cancel: (() => void) | undefined;
    const action = new Subscription(() => cancel?.()) as SchedulerAction<T>;
    const arm = (s: T | undefined, ms: number): SchedulerAction<T> => {
      cancel?.();
      cancel = clock.timeout(() => {
        cancel = undefined;
        if (!action.closed) work.call(action, s);
      }, ms);
      return action;
    };
    action.schedule = (s?: T, ms = 0) => arm(s, ms);
    return arm(state, delay);
  };
  return { now: clock.now, schedule };
}

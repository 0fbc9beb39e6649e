/**
 * The one retry path: the backoff formula, the promise driver under a fake clock (no real
 * waits), and the Observable driver in virtual time.
 */
import { defer, of, throwError } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { backoffDelay, retryWith, withRetry } from '../../src/core/retry.ts';
import type { RetryEvent } from '../../src/core/retry.ts';

const transient = (message = 'reset'): Error => Object.assign(new Error(message), { code: 'ECONNRESET' });

describe('backoffDelay', () => {
  it('grows by the factor from the initial delay, capped at the maximum', () => {
    const exact = { initialMs: 100, maxMs: 1000, jitter: 0 };
    expect([1, 2, 3, 4, 5, 9, 100].map((a) => backoffDelay(a, exact))).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
    expect([1, 2, 3].map((a) => backoffDelay(a, { initialMs: 10, factor: 3, jitter: 0 }))).toEqual([10, 30, 90]);
    expect(backoffDelay(1, { jitter: 0 })).toBe(100); // defaults: 100 ms, doubling, up to 30 s
    expect(backoffDelay(20, { jitter: 0 })).toBe(30_000);
  });

  it('takes off at most `jitter` of the delay, at random', () => {
    const policy = { initialMs: 1000, jitter: 0.5 };
    expect(backoffDelay(1, policy, () => 0)).toBe(1000);
    expect(backoffDelay(1, policy, () => 0.999_999)).toBe(500);
    expect(backoffDelay(1, { initialMs: 1000, jitter: 1 }, () => 0.5)).toBe(500);
    expect(backoffDelay(1, { initialMs: 1000, jitter: 0.2 }, () => 0.5)).toBe(900);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(4, { initialMs: 100, maxMs: 1000 });
      expect(d).toBeGreaterThanOrEqual(400);
      expect(d).toBeLessThanOrEqual(800);
    }
  });
});

describe('withRetry (fake clock)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('retries retriable failures after the policy delays, then resolves', async () => {
    const calls: number[] = [];
    const retries: RetryEvent[] = [];
    const done = withRetry(
      (attempt) => {
        calls.push(Date.now());
        if (attempt < 4) throw transient();
        return Promise.resolve(`ok after ${attempt}`);
      },
      { initialMs: 100, jitter: 0, onRetry: (_err, e) => retries.push(e) },
    );
    await vi.runAllTimersAsync();
    await expect(done).resolves.toBe('ok after 4');
    expect(calls).toEqual([0, 100, 300, 700]);
    expect(retries).toEqual([
      { attempt: 1, delayMs: 100, elapsedMs: 0 },
      { attempt: 2, delayMs: 200, elapsedMs: 100 },
      { attempt: 3, delayMs: 400, elapsedMs: 300 },
    ]);
  });

  it('fails at once on an error the predicate refuses (default: not retriable)', async () => {
    let calls = 0;
    const bug = new TypeError('x is undefined');
    const done = withRetry(() => {
      calls += 1;
      return Promise.reject(bug);
    });
    await expect(done).rejects.toBe(bug);
    expect(calls).toBe(1);

    const custom = withRetry(
      (attempt) => (attempt < 3 ? Promise.reject(new Error('not yet')) : Promise.resolve(attempt)),
      { initialMs: 10, jitter: 0, retryIf: (err) => (err as Error).message === 'not yet' },
    );
    await vi.runAllTimersAsync();
    await expect(custom).resolves.toBe(3);
  });

  it('gives up after maxAttempts with the last failure', async () => {
    let calls = 0;
    const done = withRetry(
      () => {
        calls += 1;
        return Promise.reject(transient(`failure ${calls}`));
      },
      { maxAttempts: 3, initialMs: 50, jitter: 0 },
    );
    const settled = expect(done).rejects.toThrow('failure 3');
    await vi.runAllTimersAsync();
    await settled;
    expect(calls).toBe(3);
    expect(Date.now()).toBe(150);
  });

  it('gives up after giveUpAfterMs: the last wait is cut to end then, one last attempt is made', async () => {
    const calls: number[] = [];
    const done = withRetry(
      () => {
        calls.push(Date.now());
        return Promise.reject(transient());
      },
      { initialMs: 400, jitter: 0, giveUpAfterMs: 1000 },
    );
    const settled = expect(done).rejects.toThrow('reset');
    await vi.runAllTimersAsync();
    await settled;
    expect(calls).toEqual([0, 400, 1000]);

    let once = 0;
    const none = withRetry(() => {
      once += 1;
      return Promise.reject(transient());
    }, { giveUpAfterMs: 0 });
    await expect(none).rejects.toThrow('reset');
    expect(once).toBe(1);
  });

  it('ends a wait at once when the signal aborts, with its reason, and makes no further attempt', async () => {
    const abort = new AbortController();
    let calls = 0;
    const done = withRetry(
      () => {
        calls += 1;
        return Promise.reject(transient());
      },
      { initialMs: 30_000, signal: abort.signal },
    );
    const settled = expect(done).rejects.toThrow('stopping');
    await vi.advanceTimersByTimeAsync(1000);
    abort.abort(new Error('stopping'));
    await settled;
    await vi.runAllTimersAsync();
    expect(calls).toBe(1);
    expect(vi.getTimerCount()).toBe(0);

    const already = new AbortController();
    already.abort(new Error('before'));
    await expect(withRetry(() => Promise.resolve(1), { signal: already.signal })).rejects.toThrow('before');
  });

  it('resolves values that are not promises, and undefined', async () => {
    await expect(withRetry(() => 5)).resolves.toBe(5);
    await expect(withRetry(() => Promise.resolve(undefined))).resolves.toBeUndefined();
  });
});

describe('retryWith (virtual time)', () => {
  const scheduler = (): TestScheduler => new TestScheduler((a, b) => expect(a).toEqual(b));

  it('resubscribes after the policy delays and passes the value on', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const failing = cold('--#', undefined, transient());
      let n = 0;
      const source = defer(() => (++n < 3 ? failing : cold('--(a|)')));
      // fails at 2, waits 5; fails at 9, waits 10; succeeds 2 frames into the third attempt
      expectObservable(source.pipe(retryWith({ initialMs: 5, jitter: 0 }))).toBe('---------------------(a|)');
      expectSubscriptions(failing.subscriptions).toBe(['^-!', '-------^-!']);
    });
  });

  it('passes a refused error on at once, and the last one when attempts run out', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const bug = new TypeError('bug');
      expectObservable(cold('-#', undefined, bug).pipe(retryWith({ initialMs: 5 }))).toBe('-#', undefined, bug);
      const flaky = transient();
      // fails at 1, waits 2; fails at 4, waits 4; fails at 9: three attempts
      expectObservable(cold('-#', undefined, flaky).pipe(retryWith({ maxAttempts: 3, initialMs: 2, jitter: 0 }))).toBe('---------#', undefined, flaky);
    });
  });

  it('stops at giveUpAfterMs in virtual time', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const flaky = transient();
      // attempts at 0, 5 (after 4), 10 (wait cut from 8 to 4), then the time is up
      expectObservable(cold('-#', undefined, flaky).pipe(retryWith({ initialMs: 4, jitter: 0, giveUpAfterMs: 10 }))).toBe('-----------#', undefined, flaky);
    });
  });

  it('completes without retrying when nothing fails', () => {
    scheduler().run(({ expectObservable }) => {
      expectObservable(of(1).pipe(retryWith())).toBe('(a|)', { a: 1 });
      expectObservable(throwError(() => new Error('x')).pipe(retryWith())).toBe('#', undefined, new Error('x'));
    });
  });
});

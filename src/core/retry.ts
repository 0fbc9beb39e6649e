/**
 * One retry path for the whole library: a `RetryPolicy` (exponential backoff with jitter, a
 * bound on attempts and on time), one delay formula (`backoffDelay`), and two drivers built on
 * rxjs `retry({ delay })` — `retryWith` for Observables and `withRetry` for promises. Waits run
 * on an rxjs scheduler (virtual time in marble tests, fake timers elsewhere) and end at once
 * when the `AbortSignal` fires.
 */
import { Observable, asyncScheduler, defer, from, race, retry, throwError, timer } from 'rxjs';
import type { MonoTypeOperatorFunction, SchedulerLike } from 'rxjs';
import { asError, isRetriable } from './errors.ts';

/** How long to wait between attempts, and when to stop. */
export interface RetryPolicy {
  /** Delay before the first retry, ms; default 100. */
  readonly initialMs?: number;
  /** Longest delay, ms; default 30 000. */
  readonly maxMs?: number;
  /** Growth of the delay per attempt; default 2. */
  readonly factor?: number;
  /**
   * Random part of each delay, from 0 to 1: a delay `d` becomes a uniform draw from
   * `[(1 − jitter)·d, d]`, so writers that failed together do not retry together. Default 0.5;
   * 0: exact delays; 1: "full jitter".
   */
  readonly jitter?: number;
  /** Attempts in all, the first included; default unbounded. */
  readonly maxAttempts?: number;
  /**
   * Give up once this long has passed since the first attempt started (the last wait is cut
   * short to end then, and one last attempt is made); default unbounded. 0: no retries.
   */
  readonly giveUpAfterMs?: number;
}

/** What a retry was about to do: passed to `onRetry`. */
export interface RetryEvent {
  /** The attempt that failed (1 = the first). */
  readonly attempt: number;
  /** How long the wait before the next attempt is, ms. */
  readonly delayMs: number;
  /** Time since the first attempt started, ms. */
  readonly elapsedMs: number;
}

/** A `RetryPolicy` with the predicate, hooks and clock of one use. */
export interface RetryOptions extends RetryPolicy {
  /** Which failures are retried; default `isRetriable` (the rest fail at once). */
  readonly retryIf?: (err: unknown, attempt: number) => boolean;
  /** Called before each wait, with the failure and what comes next (e.g. to log it). */
  readonly onRetry?: (err: Error, event: RetryEvent) => void;
  /** Aborting ends a wait at once and fails with the signal's reason; no further attempt is made. */
  readonly signal?: AbortSignal;
  /** Clock and timers of the waits; default `asyncScheduler` (a `TestScheduler` in marble tests). */
  readonly scheduler?: SchedulerLike;
  /** Source of the jitter, values in [0, 1); default `Math.random`. */
  readonly random?: () => number;
}

/**
 * The wait after the `attempt`-th failure (1-based): `initialMs · factor^(attempt − 1)`, at most
 * `maxMs`, less a random part of up to `jitter` of it. The library's one backoff formula.
 *
 * ## Example
 * ```ts
 * backoffDelay(3, { initialMs: 100, jitter: 0 }); // 400
 * ```
 *
 * @param attempt The attempt that failed, from 1.
 * @param policy Initial delay, growth, ceiling and jitter (attempt bounds are ignored here).
 * @param random Source of the jitter, values in [0, 1); default `Math.random`.
 * @return The delay in whole milliseconds.
 */
export function backoffDelay(attempt: number, policy: RetryPolicy = {}, random: () => number = Math.random): number {
  const { initialMs = 100, maxMs = 30_000, factor = 2, jitter = 0.5 } = policy;
  const ceiling = Math.min(maxMs, initialMs * factor ** Math.max(0, attempt - 1));
  const spread = Math.min(1, Math.max(0, jitter));
  return Math.max(0, Math.round(ceiling * (1 - spread * random())));
}

/**
 * Resubscribes to the source after a failure that `retryIf` accepts (default `isRetriable`),
 * waiting `backoffDelay` between attempts, until it succeeds, a failure is not retriable, the
 * attempts or the time run out (the last failure then passes on), or the signal aborts (its
 * reason passes on).
 *
 * ## Example
 * ```ts
 * defer(() => source.commit()).pipe(retryWith({ maxAttempts: 6, initialMs: 300 }));
 * ```
 *
 * @param options Policy, predicate, hook, abort signal and scheduler.
 * @return An operator that retries its source.
 */
export function retryWith<T>(options: RetryOptions = {}): MonoTypeOperatorFunction<T> {
  const { maxAttempts = Infinity, giveUpAfterMs = Infinity, retryIf = isRetriable, onRetry, signal, scheduler = asyncScheduler, random = Math.random } = options;
  return (source) =>
    defer(() => {
      const started = scheduler.now();
      return source.pipe(
        retry({
          count: Math.max(0, maxAttempts - 1),
          delay: (err: unknown, attempt: number) => {
            const elapsedMs = scheduler.now() - started;
            if (signal?.aborted === true || elapsedMs >= giveUpAfterMs || !retryIf(err, attempt)) return throwError(() => err);
            const delayMs = Math.min(backoffDelay(attempt, options, random), Math.max(0, giveUpAfterMs - elapsedMs));
            onRetry?.(asError(err), { attempt, delayMs, elapsedMs });
            const wait = timer(delayMs, scheduler);
            return signal === undefined ? wait : race(wait, aborted(signal));
          },
        }),
      );
    });
}

/**
 * Runs `fn` until its promise resolves, retrying as `retryWith` does: failures `retryIf`
 * accepts (default `isRetriable`) are tried again after `backoffDelay`, within `maxAttempts`
 * and `giveUpAfterMs`; the last failure, or a failure not retried, rejects. An abort of
 * `signal` rejects at once with its reason (pass the signal to `fn`'s own work too).
 *
 * ## Example
 * ```ts
 * const listing = await withRetry(() => storage.list('_delta_log'), {
 *   initialMs: 500, maxMs: 15_000, giveUpAfterMs: 300_000,
 *   onRetry: (err, { attempt, delayMs }) => log.warn('storage failed, retrying', { attempt, retryInMs: delayMs, error: err }),
 * });
 * ```
 *
 * @param fn One attempt; gets the attempt number (from 1).
 * @param options Policy, predicate, hook, abort signal and scheduler.
 * @return What the first successful attempt resolved with.
 */
export function withRetry<T>(fn: (attempt: number) => PromiseLike<T> | T, options: RetryOptions = {}): Promise<T> {
  const { signal } = options;
  return new Promise<T>((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason as Error);
      return;
    }
    let attempt = 0;
    let value: { v: T } | undefined;
    const onAbort = (): void => {
      subscription.unsubscribe();
      reject(signal?.reason as Error);
    };
    const subscription = defer(() => from(Promise.resolve().then(() => fn(++attempt))))
      .pipe(retryWith(options))
      .subscribe({
        next: (v) => {
          value = { v };
        },
        error: (err: unknown) => {
          signal?.removeEventListener('abort', onAbort);
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- what `fn` threw, as it was
          reject(err);
        },
        complete: () => {
          signal?.removeEventListener('abort', onAbort);
          if (value !== undefined) resolve(value.v);
        },
      });
    if (!subscription.closed) signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Resolves after `ms`; rejects early with `signal.reason` when the signal aborts.
 *
 * @param ms How long to wait.
 * @param signal Ends the wait early.
 * @return A promise of the end of the wait.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timeout);
      reject(signal?.reason as Error);
    };
    const timeout = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Errors with the signal's reason when it aborts. */
function aborted(signal: AbortSignal): Observable<never> {
  return new Observable<never>((subscriber) => {
    const onAbort = (): void => subscriber.error(signal.reason);
    if (signal.aborted) {
      onAbort();
      return undefined;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    return () => signal.removeEventListener('abort', onAbort);
  });
}

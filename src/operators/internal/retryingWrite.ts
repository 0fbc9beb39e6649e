import { Observable } from 'rxjs';
import { backoffDelay, isRetriable, sleep } from '../../sinks/delta/retry.ts';
import type { SinkAck } from '../../types.ts';

/** Backoff of a sink's failed writes. */
export interface WriteRetry {
  /** First delay in ms (doubles per attempt, jittered); default 200. */
  readonly initialMs?: number;
  /** Longest delay in ms; default 30 000. */
  readonly maxMs?: number;
  /** Attempts before giving up; default Infinity. */
  readonly maxAttempts?: number;
}

export interface WriteHooks {
  /** Called for every failed attempt (retriable or not), before waiting or erroring. */
  readonly onWriteError?: (err: Error, attempt: number) => void;
  /** Called for every acknowledged batch, before it is emitted. */
  readonly onWrite?: (ack: SinkAck) => void;
}

/**
 * One batch's write as an Observable: runs `attempt` until it resolves — retrying failures
 * `isRetriable` accepts, with jittered exponential backoff — then emits the ack (with the
 * write's `durationMs`, retries included) and completes. A non-retriable failure, or the last
 * allowed attempt failing, errors it. Unsubscribing aborts `signal` (and any wait) and emits
 * nothing more. Shared by the sink operators.
 */
export function retryingWrite(
  sink: string,
  attempt: (signal: AbortSignal, attemptNumber: number) => Promise<Omit<SinkAck, 'durationMs'>>,
  retry: WriteRetry = {},
  hooks: WriteHooks = {},
): Observable<SinkAck> {
  const { initialMs = 200, maxMs = 30_000, maxAttempts = Infinity } = retry;
  return new Observable<SinkAck>((subscriber) => {
    const abort = new AbortController();
    const run = async (): Promise<SinkAck> => {
      const started = performance.now();
      for (let n = 1; ; n++) {
        try {
          const ack = await attempt(abort.signal, n);
          return { ...ack, durationMs: performance.now() - started };
        } catch (err) {
          const error = err instanceof Error ? err : new Error(String(err));
          if (abort.signal.aborted) throw error;
          hooks.onWriteError?.(error, n);
          if (!isRetriable(error) || n >= maxAttempts) throw error;
          await sleep(backoffDelay(n, { initialMs, maxMs }), abort.signal);
        }
      }
    };
    run().then(
      (ack) => {
        if (abort.signal.aborted) return;
        hooks.onWrite?.(ack);
        subscriber.next(ack);
        subscriber.complete();
      },
      (err: unknown) => {
        if (!abort.signal.aborted) subscriber.error(err);
      },
    );
    return () => abort.abort(new Error(`${sink}: unsubscribed`));
  });
}

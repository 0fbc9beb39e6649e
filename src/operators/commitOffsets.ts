import { Observable, defer, from } from 'rxjs';
import type { OperatorFunction, SchedulerLike, Subscription } from 'rxjs';
import { retryWith } from '../core/retry.ts';
import type { RetryPolicy } from '../core/retry.ts';
import type { CommittedOffset, OffsetCommitTarget } from '../sources/offsetTracker.ts';
import type { SinkAck } from '../types.ts';

/** What `commitOffsets()` emits after each successful commit that moved some offset. */
export interface CommitEvent {
  /** Positions committed (next offset to read), one per partition that advanced. */
  readonly offsets: readonly CommittedOffset[];
  /** How many sink acks this commit covered (acks arriving during a commit are coalesced). */
  readonly acks: number;
}

export interface CommitOffsetsOptions {
  /**
   * Retries of a failed commit whose error `isRetriable` accepts. Default: 6 attempts in all,
   * the first retry after 300 ms, doubling up to 30 s, jitter 0.2.
   */
  readonly retry?: RetryPolicy;
  /** Scheduler of the retry delays; default `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
}

/** The default policy of commit retries. */
const COMMIT_RETRY: RetryPolicy = { maxAttempts: 6, initialMs: 300, maxMs: 30_000, jitter: 0.2 };

/**
 * Commits source offsets downstream of the sinks: each `SinkAck` acknowledges its records on
 * the target, then the target commits every partition whose committable offset advanced.
 *
 * At most one commit is in flight; acks that arrive meanwhile are acknowledged at once and
 * covered together by the next commit. On completion of the acks the last pending commit is
 * performed, then the output completes. A failed commit whose error `isRetriable` accepts is
 * retried with the `retry` policy (exponential backoff with jitter); any other failure, or
 * running out of attempts, errors the output. An error of the acks passes on at once without a further commit:
 * the uncommitted records are delivered again after a restart (at least once). While
 * subscribed, the operator keeps the target's connection (`retain()`), so a bounded source
 * that completes stays connected until the final commit is done.
 *
 * ## Example
 * ```ts
 * records$.pipe(enrichMetadata(), bufferTime(), deltaSink(table), commitOffsets(source))
 *   .subscribe((e) => console.log('committed', e.offsets));
 * ```
 *
 * @param target The `KafkaSource`, or any `OffsetCommitTarget`.
 * @param options Retry policy (`RetryPolicy`) and scheduler of commit retries.
 * @return A function that returns an Observable of the commits made.
 */
export function commitOffsets(target: OffsetCommitTarget): OperatorFunction<SinkAck, CommitEvent>;
export function commitOffsets(
  target: OffsetCommitTarget,
  options: CommitOffsetsOptions,
): OperatorFunction<SinkAck, CommitEvent>;
export function commitOffsets(
  target: OffsetCommitTarget,
  options: CommitOffsetsOptions = {},
): OperatorFunction<SinkAck, CommitEvent> {
  const policy = { ...COMMIT_RETRY, ...options.retry, ...(options.scheduler === undefined ? {} : { scheduler: options.scheduler }) };
  const commitOnce = (): Observable<readonly CommittedOffset[]> => defer(() => from(target.commit())).pipe(retryWith(policy));

  return (source) =>
    new Observable<CommitEvent>((subscriber) => {
      const release = target.retain?.();
      let uncovered = 0;
      let inFlight: Subscription | undefined;
      let committing = false;
      let sourceDone = false;

      const drain = (): void => {
        if (committing || subscriber.closed) return;
        if (uncovered === 0) {
          if (sourceDone) subscriber.complete();
          return;
        }
        const acks = uncovered;
        uncovered = 0;
        committing = true;
        const committed: CommittedOffset[] = [];
        inFlight = commitOnce().subscribe({
          next: (offsets) => {
            committed.push(...offsets);
          },
          error: (err: unknown) => {
            subscriber.error(err);
          },
          complete: () => {
            committing = false;
            inFlight = undefined;
            if (committed.length > 0) subscriber.next({ offsets: committed, acks });
            drain();
          },
        });
      };

      const upstream = source.subscribe({
        next: (ack) => {
          try {
            target.acknowledge(ack.refs);
            if (ack.released !== undefined && ack.released.length > 0) target.release?.(ack.released);
          } catch (err) {
            subscriber.error(err);
            return;
          }
          uncovered += 1;
          drain();
        },
        error: (err: unknown) => {
          subscriber.error(err);
        },
        complete: () => {
          sourceDone = true;
          drain();
        },
      });

      return () => {
        upstream.unsubscribe();
        inFlight?.unsubscribe();
        inFlight = undefined;
        release?.();
      };
    });
}

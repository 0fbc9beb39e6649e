import { Subject, defer, merge } from 'rxjs';
import type { Observer, OperatorFunction } from 'rxjs';
import type { DeadLetterRow } from '../types.ts';

/**
 * Keeps a dead-letter branch inside one pipe chain: gives `main` a fresh dead-letter observer
 * (for `routeErrors`), runs the rows it receives through `deadLetterBranch` (e.g. `bufferTime`
 * + a Delta sink), and merges both outputs — typically the sink acks of both tables, ready for
 * `commitOffsets`.
 *
 * Each subscription gets its own dead-letter subject; the branch is subscribed before the main
 * chain, so no row is missed. Every operator of `main` that rejects records on its own may
 * share it: `routeErrors`, and `partitionByDate({ deadLetters })` for records whose timestamp
 * gives no partition value — so a record that fails anywhere in the chain is a dead letter,
 * not the end of the stream. The branch ends as `routeErrors` forwards it: completed with the
 * source (after flushing) or errored with it. The output completes when both have completed,
 * errors on the first error of either, and unsubscribing tears both down.
 *
 * ## Example
 * ```ts
 * source.records$.pipe(
 *   enrichMetadata(),
 *   withDeadLetters(
 *     (dlq) => pipe(routeErrors(Trip, dlq), partitionByDate(), bufferTime(), deltaSink(table)),
 *     pipe(bufferTime(), deltaSink(dlqTable)),
 *   ),
 *   commitOffsets(source),
 * );
 * ```
 *
 * @param main Builds the main chain from the dead-letter observer it must route bad records to.
 * @param deadLetterBranch What dead-letter rows go through (batching and their sink).
 * @return A function that returns an Observable of the outputs of both branches, merged.
 */
export function withDeadLetters<T, R, D>(
  main: (deadLetters: Observer<DeadLetterRow>) => OperatorFunction<T, R>,
  deadLetterBranch: OperatorFunction<DeadLetterRow, D>,
): OperatorFunction<T, R | D>;
export function withDeadLetters<T, R, D>(
  main: (deadLetters: Observer<DeadLetterRow>) => OperatorFunction<T, R>,
  deadLetterBranch: OperatorFunction<DeadLetterRow, D>,
): OperatorFunction<T, R | D> {
  return (source) =>
    defer(() => {
      const deadLetters = new Subject<DeadLetterRow>();
      return merge(deadLetters.pipe(deadLetterBranch), source.pipe(main(deadLetters)));
    });
}

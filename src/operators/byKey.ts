import { Observable, Subscription } from 'rxjs';
import type { OperatorFunction, Subscriber } from 'rxjs';

/** The pipeline of each key: a `Map`, or an object keyed by name. */
export type KeyedPipelines<T, R> = ReadonlyMap<string, OperatorFunction<T, R>> | Readonly<Record<string, OperatorFunction<T, R>>>;

/**
 * Sends each value to the pipeline of its key and merges their outputs: one chain per Kafka
 * topic (or per any key known in advance) over one source.
 *
 * `groupBy` + `mergeMap` for a key set known in advance, with each value handed straight to its
 * pipeline (no `Subject` in between: on the per-record path that costs an iterator and a copy of
 * the observer list per value). Every pipeline is subscribed at once, before the source, so a
 * pipeline that opens something (a timer, a watermark's sources) does so whether or not its key
 * ever comes. When the source completes, each pipeline's input completes, and the output
 * completes once they all have (a pipeline flushing a batch still emits it). The first error of
 * the source or of a pipeline errors the output and tears every pipeline down, and so does a
 * value whose key has no pipeline; unsubscribing tears everything down.
 *
 * ## Example
 * ```ts
 * const source = fromKafka({ brokers, groupId: 'lake', topics: ['orders', 'refunds'] });
 * source.records$.pipe(
 *   byKey((r) => r.topic, {
 *     orders: pipe(enrichMetadata(), batchInto(deltaSink(orders), { pressure: source })),
 *     refunds: pipe(enrichMetadata(), batchInto(deltaSink(refunds), { pressure: source })),
 *   }),
 *   commitOffsets(source),
 * );
 * ```
 *
 * @param keyOf The key of a value (e.g. its topic).
 * @param pipelines The pipeline of each key.
 * @return A function that returns an Observable of every pipeline's output, merged.
 */
export function byKey<T, R>(keyOf: (value: T) => string, pipelines: KeyedPipelines<T, R>): OperatorFunction<T, R>;
export function byKey<T, R>(keyOf: (value: T) => string, pipelines: KeyedPipelines<T, R>): OperatorFunction<T, R> {
  const entries: ReadonlyArray<readonly [string, OperatorFunction<T, R>]> = pipelines instanceof Map ? [...pipelines] : Object.entries(pipelines);
  const known = entries.map(([key]) => key).join(', ');
  return (source) =>
    new Observable<R>((subscriber) => {
      const inputs = new Map<string, Subscriber<T>>();
      const subscription = new Subscription();
      let running = entries.length;
      let sourceDone = false;
      for (const [key, pipeline] of entries) {
        const input = new Observable<T>((s) => {
          inputs.set(key, s);
          return () => inputs.delete(key);
        });
        subscription.add(
          input.pipe(pipeline).subscribe({
            next: (r) => subscriber.next(r),
            error: (err: unknown) => subscriber.error(err),
            complete: () => {
              running -= 1;
              if (running === 0 && sourceDone) subscriber.complete();
            },
          }),
        );
      }
      subscription.add(
        source.subscribe({
          next: (value) => {
            const key = keyOf(value);
            const input = inputs.get(key);
            if (input) input.next(value);
            else subscriber.error(new Error(`byKey: no pipeline for key ${JSON.stringify(key)} (pipelines: ${known}); add one, or filter such values out before byKey`));
          },
          error: (err: unknown) => subscriber.error(err),
          complete: () => {
            sourceDone = true;
            for (const input of [...inputs.values()]) input.complete();
            if (running === 0) subscriber.complete();
          },
        }),
      );
      return subscription;
    });
}

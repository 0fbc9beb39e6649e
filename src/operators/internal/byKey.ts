import { Observable, Subscription } from 'rxjs';
import type { OperatorFunction, Subscriber } from 'rxjs';

/**
 * Sends each value to the pipeline of its key and merges their outputs: `groupBy` + `mergeMap`
 * for a key set known in advance, with each value handed straight to its pipeline (no `Subject`
 * in between: on the per-record path that costs an iterator and a copy of the observer list per
 * value). Every pipeline is subscribed at once; when the source completes, each pipeline's input
 * completes and the output completes once they all have. A value of an unknown key is an error.
 */
export function byKey<T, R>(keyOf: (value: T) => string, pipelines: ReadonlyMap<string, OperatorFunction<T, R>>): OperatorFunction<T, R> {
  return (source) =>
    new Observable<R>((subscriber) => {
      const inputs = new Map<string, Subscriber<T>>();
      const subscription = new Subscription();
      let running = pipelines.size;
      let sourceDone = false;
      for (const [key, pipeline] of pipelines) {
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
            else subscriber.error(new Error(`byKey: no pipeline for key ${key}`));
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

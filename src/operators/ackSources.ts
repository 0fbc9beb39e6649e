import { Observable } from 'rxjs';
import type { OperatorFunction } from 'rxjs';
import type { RecordRef, SinkAck } from '../types.ts';

/**
 * Writes rows that stand for source records — window aggregates, say — through a sink, and
 * turns each of its acks into an acknowledgement of the source records its batch covered.
 *
 * A row that aggregates records is no Kafka record: the sink's ack lists rows, not the records
 * whose offsets may now be committed. `ackSources` remembers the records each non-empty batch
 * covers (`sourcesOf` of its rows) as the batch enters the sink, and gives the sink's acks, in
 * order, those records as `refs` (the ack's other fields are the sink's own, so metrics still see
 * every write). It relies on what `deltaSink` and `pgSink` promise: one ack per non-empty batch,
 * in order, whose `rows + skipped` is the batch's length; an ack that does not answer its batch
 * so (a sink that dropped a batch, or acknowledged one twice) errors the stream rather than
 * acknowledging records that were not written.
 *
 * The output completes with the sink; an error of the source or of the sink errors it, and
 * unsubscribing tears the sink down.
 *
 * ## Example
 * ```ts
 * windows$.pipe(                                      // arrays of WindowResult, from tumblingWindow
 *   ackSources(
 *     pipe(map((ws) => ws.map(toRow)), deltaSink(perAccount, { appId: () => 'per-account' })),
 *     (w) => w.refs,                                  // the records each window aggregates
 *   ),
 *   commitOffsets(source),
 * );
 * ```
 *
 * @param sink Writes each batch of rows and emits one ack per non-empty batch, in order.
 * @param sourcesOf The source records a row covers.
 * @return A function that returns an Observable of the sink's acks, each listing the source
 * records of its batch.
 */
export function ackSources<R>(sink: OperatorFunction<readonly R[], SinkAck>, sourcesOf: (row: R) => readonly RecordRef[]): OperatorFunction<readonly R[], SinkAck>;
export function ackSources<R>(sink: OperatorFunction<readonly R[], SinkAck>, sourcesOf: (row: R) => readonly RecordRef[]): OperatorFunction<readonly R[], SinkAck> {
  return (source) =>
    new Observable<SinkAck>((subscriber) => {
      /** Each batch in the sink, oldest first: its rows, and the source records they cover. */
      const covered: { readonly rows: number; readonly refs: readonly RecordRef[] }[] = [];
      const batches = new Observable<readonly R[]>((inner) =>
        source.subscribe({
          next: (rows) => {
            if (rows.length === 0) return;
            let refs: RecordRef[];
            try {
              refs = rows.flatMap((row) => sourcesOf(row));
            } catch (err) {
              inner.error(err);
              return;
            }
            covered.push({ rows: rows.length, refs });
            inner.next(rows);
          },
          error: (err: unknown) => inner.error(err),
          complete: () => inner.complete(),
        }),
      );
      return batches.pipe(sink).subscribe({
        next: (ack) => {
          const batch = covered.shift();
          if (batch === undefined || ack.rows + ack.skipped !== batch.rows) {
            const what = batch === undefined ? 'more batches than it was given' : `a batch of ${batch.rows} rows with an ack of ${ack.rows + ack.skipped} (rows + skipped)`;
            subscriber.error(new Error(`ackSources: the sink acknowledged ${what} (table ${ack.table}); it must emit one ack per non-empty batch, in order, as deltaSink and pgSink do`));
            return;
          }
          const { released: _rows, ...rest } = ack;
          subscriber.next({ ...rest, refs: batch.refs });
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
    });
}

import { Observable, Subject, merge } from 'rxjs';
import type { OperatorFunction } from 'rxjs';
import type { RecordRef, SinkAck } from '../types.ts';

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const COMPLETE = 1;
const FIRST = 2;

/**
 * Sends every record to several branches (say, a raw table and a windowed aggregate) and
 * acknowledges a record only once **every** branch has acknowledged it, so `commitOffsets`
 * downstream never commits past a record that one of the destinations does not hold yet.
 *
 * The source is subscribed once and shared; all branches are subscribed before it. Each ack of
 * a branch passes on with its `refs` narrowed to the records that this ack completes (acked by
 * all branches now); its other fields (table, version, rows, …) are the branch's own, so
 * metrics still see every write. A record acknowledged again by a branch that already did
 * (a redelivery) waits for the others again.
 *
 * A record's first acknowledgement (by any branch) is passed on as `released`: its memory is no
 * longer held as a whole record, so it stops counting against the source's in-flight budget
 * (`commitOffsets` tells the source), while its offset waits for the other branches. A branch
 * that holds records for long (a window) then does not stop the source from reading the records
 * that would let it go on.
 *
 * Every branch must eventually acknowledge every record it receives — a branch that drops
 * records (a filter) must acknowledge them some other way, as `tumblingWindow` with a `sink` does
 * for late records — or those records hold their partition's offsets back. Pending records are held as one map entry each
 * until all branches have acknowledged them.
 *
 * The output completes when every branch has completed; the first error of the source or of a
 * branch errors it, and unsubscribing tears every branch down.
 *
 * ## Example
 * ```ts
 * records$.pipe(
 *   fanOut(
 *     batchInto(deltaSink(rawTable), { pressure: source }),
 *     tumblingWindow({ size: 60_000, ..., sink: pgSink(aggregates, { refsOf: (w) => w.refs }) }),
 *   ),
 *   commitOffsets(source),
 * );
 * ```
 *
 * @param branches Chains from the records to sink acks; at least one.
 * @return A function that returns an Observable of the branches' acks, with `refs` narrowed to
 * records acknowledged by all of them.
 */
export function fanOut<T>(...branches: readonly OperatorFunction<T, SinkAck>[]): OperatorFunction<T, SinkAck>;
export function fanOut<T>(...branches: readonly OperatorFunction<T, SinkAck>[]): OperatorFunction<T, SinkAck> {
  if (branches.length === 0) throw new TypeError('fanOut: give at least one branch');
  if (branches.length > 30) throw new RangeError('fanOut: at most 30 branches');
  const all = (1 << branches.length) - 1;
  return (source) =>
    new Observable<SinkAck>((subscriber) => {
      // topic → partition → offset → bit mask of the branches that have acknowledged it. Offsets
      // are keyed as numbers (a bigint key hashes several times slower), as strings past 2^53.
      const pending = new Map<string, Map<number, Map<number | string, number>>>();
      /** COMPLETE: every branch has now acknowledged it; FIRST: this is its first acknowledgement. */
      const settle = (ref: RecordRef, bit: number): number => {
        let byPartition = pending.get(ref.topic);
        if (byPartition === undefined) pending.set(ref.topic, (byPartition = new Map<number, Map<number | string, number>>()));
        let byOffset = byPartition.get(ref.partition);
        if (byOffset === undefined) byPartition.set(ref.partition, (byOffset = new Map<number | string, number>()));
        const offset = ref.offset <= MAX_SAFE ? Number(ref.offset) : ref.offset.toString();
        const before = byOffset.get(offset) ?? 0;
        const mask = before | bit;
        if (mask !== all) {
          byOffset.set(offset, mask);
          return before === 0 ? FIRST : 0;
        }
        byOffset.delete(offset);
        if (byOffset.size === 0) {
          byPartition.delete(ref.partition);
          if (byPartition.size === 0) pending.delete(ref.topic);
        }
        return COMPLETE;
      };
      const shared = new Subject<T>();
      const outputs = branches.map((branch, i) => {
        const bit = 1 << i;
        return new Observable<SinkAck>((inner) =>
          shared.pipe(branch).subscribe({
            next: (ack) => {
              const refs: RecordRef[] = [];
              const released: RecordRef[] = [];
              for (const ref of ack.refs) {
                const s = settle(ref, bit);
                if (s === COMPLETE) refs.push(ref);
                else if (s === FIRST) released.push(ref);
              }
              const { released: _ignored, ...rest } = ack;
              inner.next(released.length > 0 ? { ...rest, refs, released } : { ...rest, refs });
            },
            error: (err: unknown) => inner.error(err),
            complete: () => inner.complete(),
          }),
        );
      });
      const out = merge(...outputs).subscribe(subscriber);
      const input = source.subscribe(shared);
      return () => {
        input.unsubscribe();
        out.unsubscribe();
      };
    });
}

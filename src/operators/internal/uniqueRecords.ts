import type { RecordRef } from '../../types.ts';

interface Source {
  /** Largest offset seen while the source's offsets only grew. */
  last: bigint;
  /** Every offset seen, built on the source's first offset that did not grow. */
  seen: Set<bigint> | undefined;
}

/**
 * The records of one batch, by (topic, partition, offset): a sink's defence in depth against a
 * second copy of a record inside one write. The Kafka source never emits an offset twice (see
 * `OffsetTracker`), so this should never drop anything; if it does, the batch still commits
 * each record once.
 *
 * Cheap on the hot path: per row, a compare with the previous row's topic/partition and one
 * offset compare. Offsets of one partition normally grow; only on the first one that does not
 * is a set of that partition's offsets built (from the rows seen so far), so rows that merely
 * come out of order are kept, and only exact repeats are dropped.
 */
export class BatchRecords {
  readonly #sources = new Map<string, Source>();
  #topic: string | undefined;
  #partition = -1;
  #source: Source | undefined;
  /** Repeats dropped so far. */
  dropped = 0;

  /**
   * `rows` without the records this batch already has (the same array when there are none).
   * `earlier`: the records kept by the previous calls for this batch, read only on a repeat.
   */
  keep<Row extends RecordRef>(rows: readonly Row[], earlier: readonly RecordRef[] = []): readonly Row[] {
    let out: Row[] | undefined;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i] as Row;
      let src = this.#source;
      if (src === undefined || row.partition !== this.#partition || row.topic !== this.#topic) {
        this.#topic = row.topic;
        this.#partition = row.partition;
        const key = `${row.partition}\u0000${row.topic}`;
        src = this.#sources.get(key);
        if (src === undefined) {
          src = { last: row.offset, seen: undefined };
          this.#sources.set(key, src);
          this.#source = src;
          out?.push(row);
          continue;
        }
        this.#source = src;
      }
      let repeat: boolean;
      if (src.seen === undefined && row.offset > src.last) {
        src.last = row.offset;
        repeat = false;
      } else {
        src.seen ??= offsetsOf(row.topic, row.partition, earlier, out ?? rows.slice(0, i));
        repeat = src.seen.has(row.offset);
        if (!repeat) {
          src.seen.add(row.offset);
          if (row.offset > src.last) src.last = row.offset;
        }
      }
      if (repeat) {
        this.dropped += 1;
        out ??= rows.slice(0, i);
      } else {
        out?.push(row);
      }
    }
    return out ?? rows;
  }
}

function offsetsOf(topic: string, partition: number, ...lists: ReadonlyArray<readonly RecordRef[]>): Set<bigint> {
  const set = new Set<bigint>();
  for (const rows of lists) {
    for (const r of rows) if (r.partition === partition && r.topic === topic) set.add(r.offset);
  }
  return set;
}

/** `rows` with each (topic, partition, offset) once (the same array when nothing repeats). */
export function uniqueRecords<Row extends RecordRef>(rows: readonly Row[]): { readonly rows: readonly Row[]; readonly dropped: number } {
  const batch = new BatchRecords();
  const kept = batch.keep(rows);
  return { rows: kept, dropped: batch.dropped };
}

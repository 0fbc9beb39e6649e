import type { WindowAggregate } from './tumblingWindow.ts';
import { exactAdd, exactTotal } from './internal/exactSum.ts';

/** What a named aggregate computes over a window's records. */
export type AggregateKind = 'sum' | 'count' | 'avg' | 'max' | 'min';

/**
 * One aggregate of a window: its kind, and the value it reads of each record (`count` without
 * one counts records). `V` is what it yields: `number` for counts, `number | null` for the others
 * (`null` when no record had a value, as SQL's `sum`, `avg`, `max` and `min` of nothing).
 */
export interface NamedAggregate<T, V extends number | null> {
  readonly kind: AggregateKind;
  readonly of: ((record: T) => number | null | undefined) | undefined;
  /** Never set: carries the value type. */
  readonly value?: V;
}

/** The value of a `windowAggregate`: one field per named aggregate. */
export type AggregateValues<S> = { readonly [K in keyof S]: S[K] extends NamedAggregate<never, infer V> ? V : never };

/** The records a set of named aggregates reads: what all their `of` functions take. */
export type AggregatedRecord<S> = UnionToIntersection<
  { [K in keyof S]: S[K] extends NamedAggregate<infer T, number | null> ? { readonly record: [T] extends [never] ? unknown : T } : never }[keyof S]
> extends { readonly record: infer T }
  ? T
  : never;

type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;

/** A `WindowAggregate` of named aggregates, which also says what they are (for table layouts). */
export interface NamedWindowAggregate<T, V> extends WindowAggregate<T, V> {
  /** The aggregates in the order given: their names and kinds. */
  readonly fields: readonly { readonly name: string; readonly kind: AggregateKind }[];
}

/**
 * Named aggregates of a window's records — sums, counts, averages, maxima and minima of any
 * fields — as one `WindowAggregate` for `tumblingWindow`: its value has one field per name.
 *
 * SQL semantics: a record whose value is `null` or `undefined` is left out of that aggregate
 * (`countOf(f)` counts the records with a value, `countOf()` every record); `sum`, `avg`, `max`
 * and `min` are `null` when no record had a value. A value that is neither a finite number nor
 * null errors the stream with a `TypeError` naming the aggregate.
 *
 * Sums (and so averages, `sum / count`) are exactly rounded: the running sum is kept without
 * rounding error (Shewchuk's algorithm, as Python's `math.fsum`) and rounded once, so a window's
 * values do not depend on the order its records arrived in. A window recomputed after a restart
 * from the same records — read from several partitions, interleaved differently — has the very
 * same values, so an upsert of it changes nothing. Per record the work is a few floating-point
 * operations per aggregate. Aggregates given the very same function (`const amount = (s: Sale) =>
 * s.amount`, then `sumOf(amount)`, `avgOf(amount)`, `maxOf(amount)`) call it once per record, and
 * its sums and averages share one running sum.
 *
 * ## Example
 * ```ts
 * sales$.pipe(
 *   tumblingWindow({
 *     size: 60_000,
 *     watermarkDelay: 120_000,
 *     key: (s) => s.product_id,
 *     eventTime: (s) => s.ts,
 *     aggregate: windowAggregate({
 *       total_revenue: sumOf((s: Sale) => s.amount),
 *       transaction_count: countOf(),
 *       avg_amount: avgOf((s: Sale) => s.amount),
 *       max_amount: maxOf((s: Sale) => s.amount),
 *     }),
 *   }),
 * ); // WindowResult: { key, start, end, value: { total_revenue, transaction_count, avg_amount, max_amount }, refs, … }
 * ```
 *
 * @param aggregates The aggregates by name: `sumOf`, `countOf`, `avgOf`, `maxOf`, `minOf`.
 * @return A `WindowAggregate` whose value has one field per name, and its `fields`.
 */
export function windowAggregate<S extends Readonly<Record<string, NamedAggregate<never, number | null>>>>(aggregates: S): NamedWindowAggregate<AggregatedRecord<S>, AggregateValues<S>>;
export function windowAggregate<S extends Readonly<Record<string, NamedAggregate<never, number | null>>>>(aggregates: S): NamedWindowAggregate<AggregatedRecord<S>, AggregateValues<S>> {
  type T = AggregatedRecord<S>;
  const entries = Object.entries(aggregates);
  if (entries.length === 0) throw new TypeError('windowAggregate: give at least one aggregate, e.g. { n: countOf() }');
  const n = entries.length;
  const names = entries.map(([name]) => name);
  const kinds = entries.map(([, a]) => a.kind);
  // The values read, one per distinct `of` (countOf() reads none), in order of first use: a
  // function given to several aggregates is called once per record, and its sums and averages
  // share one running sum.
  const readers: (((record: T) => number | null | undefined) | undefined)[] = [];
  const readerOf: number[] = [];
  for (const [, a] of entries) {
    const of = a.of as ((record: T) => number | null | undefined) | undefined;
    let j = readers.indexOf(of);
    if (j < 0) j = readers.push(of) - 1;
    readerOf.push(j);
  }
  const m = readers.length;
  /** The first field reading each value: the one its errors name. */
  const firstField = readers.map((_, j) => readerOf.indexOf(j));
  const sums = readers.map((_, j) => readerOf.some((r, i) => r === j && (kinds[i] === 'sum' || kinds[i] === 'avg')));
  const maxes = readers.map((_, j) => readerOf.some((r, i) => r === j && kinds[i] === 'max'));
  const mins = readers.map((_, j) => readerOf.some((r, i) => r === j && kinds[i] === 'min'));
  return {
    fields: entries.map(([name, a]) => ({ name, kind: a.kind })),
    init: () => {
      const value: Record<string, number | null> = {};
      for (let i = 0; i < n; i++) value[names[i] as string] = kinds[i] === 'count' ? 0 : null;
      const state: ValueState[] = [];
      for (let j = 0; j < m; j++) state.push({ count: 0, partials: [], total: 0, max: 0, min: 0 });
      Object.defineProperty(value, STATE, { value: state, enumerable: false });
      return value as AggregateValues<S>;
    },
    add: (acc, record) => {
      const value = acc as Record<string, number | null> & { [STATE]: ValueState[] };
      const state = value[STATE];
      for (let j = 0; j < m; j++) {
        const read = readers[j];
        const s = state[j] as ValueState;
        if (read === undefined) {
          s.count += 1;
          continue;
        }
        const x = read(record);
        if (x === null || x === undefined) continue;
        if (typeof x !== 'number' || !Number.isFinite(x)) {
          const i = firstField[j] as number;
          throw new TypeError(`windowAggregate: ${kinds[i] as AggregateKind} "${names[i] as string}" read ${typeof x === 'number' ? String(x) : typeof x}, not a finite number (or null)`);
        }
        s.count += 1;
        if (sums[j] === true) {
          exactAdd(s.partials, x);
          s.total = exactTotal(s.partials);
        }
        if (s.count === 1) {
          s.max = x;
          s.min = x;
        } else {
          if (maxes[j] === true && x > s.max) s.max = x;
          if (mins[j] === true && x < s.min) s.min = x;
        }
      }
      for (let i = 0; i < n; i++) {
        const s = state[readerOf[i] as number] as ValueState;
        const name = names[i] as string;
        switch (kinds[i] as AggregateKind) {
          case 'count':
            value[name] = s.count;
            break;
          case 'sum':
            if (s.count > 0) value[name] = s.total;
            break;
          case 'avg':
            if (s.count > 0) value[name] = s.total / s.count;
            break;
          case 'max':
            if (s.count > 0) value[name] = s.max;
            break;
          case 'min':
            if (s.count > 0) value[name] = s.min;
            break;
        }
      }
      return acc;
    },
  };
}

/** Where a window value keeps its running state (not enumerable: not part of the value). */
const STATE = Symbol('windowAggregate.state');

/** The running state of one value read (one `of`, or `countOf()`'s records). */
interface ValueState {
  /** Records with a value (or, for `countOf()`, records). */
  count: number;
  /** The exact running sum (when a sum or an average reads the value). */
  partials: number[];
  /** `partials` rounded once. */
  total: number;
  /** Maximum and minimum so far (once `count` > 0). */
  max: number;
  min: number;
}

/**
 * The sum of a numeric field over a window (exactly rounded; `null` when no record had a value):
 * a named aggregate of `windowAggregate`.
 *
 * ## Example
 * ```ts
 * windowAggregate({ total_revenue: sumOf((s: Sale) => s.amount) });
 * ```
 *
 * @param of The value of a record (`null`/`undefined`: left out).
 * @return The aggregate.
 */
export function sumOf<T>(of: (record: T) => number | null | undefined): NamedAggregate<T, number | null> {
  return { kind: 'sum', of };
}

/**
 * The number of records of a window, or with `of` the number that have a value (SQL
 * `count(*)` and `count(column)`): a named aggregate of `windowAggregate`.
 *
 * ## Example
 * ```ts
 * windowAggregate({ transaction_count: countOf(), with_amount: countOf((s: Sale) => s.amount) });
 * ```
 *
 * @param of The value of a record (`null`/`undefined`: not counted); omitted: count every record.
 * @return The aggregate.
 */
export function countOf<T = unknown>(of?: (record: T) => number | null | undefined): NamedAggregate<T, number> {
  return { kind: 'count', of };
}

/**
 * The average of a numeric field over a window (exact sum / count of the records with a value;
 * `null` when none had one): a named aggregate of `windowAggregate`.
 *
 * ## Example
 * ```ts
 * windowAggregate({ avg_amount: avgOf((s: Sale) => s.amount) });
 * ```
 *
 * @param of The value of a record (`null`/`undefined`: left out).
 * @return The aggregate.
 */
export function avgOf<T>(of: (record: T) => number | null | undefined): NamedAggregate<T, number | null> {
  return { kind: 'avg', of };
}

/**
 * The largest value of a numeric field over a window (`null` when no record had one): a named
 * aggregate of `windowAggregate`.
 *
 * ## Example
 * ```ts
 * windowAggregate({ max_amount: maxOf((s: Sale) => s.amount) });
 * ```
 *
 * @param of The value of a record (`null`/`undefined`: left out).
 * @return The aggregate.
 */
export function maxOf<T>(of: (record: T) => number | null | undefined): NamedAggregate<T, number | null> {
  return { kind: 'max', of };
}

/**
 * The smallest value of a numeric field over a window (`null` when no record had one): a named
 * aggregate of `windowAggregate`.
 *
 * ## Example
 * ```ts
 * windowAggregate({ min_amount: minOf((s: Sale) => s.amount) });
 * ```
 *
 * @param of The value of a record (`null`/`undefined`: left out).
 * @return The aggregate.
 */
export function minOf<T>(of: (record: T) => number | null | undefined): NamedAggregate<T, number | null> {
  return { kind: 'min', of };
}

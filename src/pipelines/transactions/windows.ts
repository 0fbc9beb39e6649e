/**
 * The per-account windows of the transactions job: per account and tumbling window, the count,
 * sum, average and maximum of `amount`, in a Delta table and a PostgreSQL table of the same name
 * (`<topic>_by_account_1m`), written exactly once in both by `windowSink` (see there, and
 * `windowResumeWatermark` for the restart).
 *
 * Windows still open when the source ends (a stop, or the end of a bounded run) are not written:
 * their records stay unacknowledged and are read again next time. The watermark is kept per
 * Kafka partition and is the minimum over the partitions assigned and not idle, so a consumer
 * catching up, which reads a batch of one partition then one of the next, does not drop the other
 * partitions' records as late.
 */
import type { WindowResult } from '../../operators/tumblingWindow.ts';
import { avgOf, countOf, maxOf, sumOf, windowAggregate } from '../../operators/windowAggregate.ts';
import type { WindowLayout, WindowRow } from '../../operators/windowSink.ts';
import type { TypedRowBase } from './events.ts';

const amount = (r: TypedRowBase): number => r.amount;

/** What each account window holds (`amount` read once per record, one running sum for sum and average). */
export const accountAggregate = windowAggregate({
  event_count: countOf(),
  amount_sum: sumOf(amount),
  amount_avg: avgOf(amount),
  amount_max: maxOf(amount),
});

export type AccountValues = ReturnType<typeof accountAggregate.init>;
/** One closed window of one account, as `tumblingWindow` gives it: `refs` are its records. */
export type AccountWindow = WindowResult<AccountValues>;
/** An account window as its Delta table takes it (`windowSink` makes them). */
export type DeltaWindow = WindowRow<AccountValues>;

export function windowTableName(topic: string, windowMs: number): string {
  return `${topic}_by_account_${windowMs % 60_000 === 0 ? `${windowMs / 60_000}m` : `${windowMs / 1000}s`}`;
}

/** The layout of a window table: account, window start and end, the aggregates; Delta partitioned by `window_date`. */
export function accountWindowLayout(name: string, schema?: string): WindowLayout {
  return { name, keyColumn: 'account_id', aggregate: accountAggregate, dateColumn: 'window_date', schema };
}

/** The `txn` appId under which a Delta window table records the largest window end it holds. */
export function windowsAppId(pipelineId: string, query: string): string {
  return `${pipelineId}-${query}-windows`;
}

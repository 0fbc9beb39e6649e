/**
 * Start-up look-ups: the group's committed offsets (retried while a young broker's coordinator
 * loads) and, for bounded mode or a timestamp start, each partition's start position and
 * high-water mark.
 */
import { withRetry } from '../../core/retry.ts';
import { LOOKUP_POLICY } from './backoff.ts';
import { keyOf } from './client.ts';
import type { KafkaClient } from './client.ts';
import { clockScheduler } from './clock.ts';
import type { Clock } from './clock.ts';

/** Where a group without committed offsets starts reading. */
export type StartFrom = 'earliest' | 'latest' | { readonly timestamp: number };

/**
 * The group's committed offsets per partition key. A broker that has just started answers
 * "coordinator not available" / "not the coordinator" until its offsets topic is ready: answers
 * the client calls retriable are retried with `LOOKUP_POLICY` (about 30 s in all, on `clock`)
 * before giving up.
 */
export async function fetchCommitted(
  client: Pick<KafkaClient, 'committedOffsets' | 'isRetriable'>,
  topics: readonly string[],
  clock: Clock,
  maxAttempts: number = LOOKUP_POLICY.maxAttempts,
): Promise<Map<string, bigint>> {
  const committed = await withRetry(() => client.committedOffsets(topics), {
    ...LOOKUP_POLICY,
    maxAttempts,
    retryIf: (err) => client.isRetriable(err),
    scheduler: clockScheduler(clock),
    random: clock.random,
  });
  const out = new Map<string, bigint>();
  for (const o of committed) {
    if (o.offset >= 0n) out.set(keyOf(o.topic, o.partition), o.offset);
  }
  return out;
}

export interface StartPlan {
  /** High-water mark per partition key at start. */
  readonly hwm: Map<string, bigint>;
  /** Where each partition starts: its committed offset, else per `startFrom`. */
  readonly positions: Map<string, bigint>;
  /** Partitions without a committed offset and a timestamp start: the offset to seek to once assigned. */
  readonly seeks: Map<string, bigint>;
}

/** Looks up where each partition of `topics` starts and ends now. */
export async function planStart(
  client: Pick<KafkaClient, 'committedOffsets' | 'isRetriable' | 'topicOffsets' | 'offsetsForTimestamp'>,
  topics: readonly string[],
  startFrom: StartFrom,
  clock: Clock,
): Promise<StartPlan> {
  const plan: StartPlan = { hwm: new Map(), positions: new Map(), seeks: new Map() };
  const committed = await fetchCommitted(client, topics, clock);
  for (const topic of topics) {
    const offsets = await client.topicOffsets(topic);
    const byTime = typeof startFrom === 'object' ? await client.offsetsForTimestamp(topic, startFrom.timestamp) : [];
    for (const o of offsets) {
      const key = keyOf(topic, o.partition);
      plan.hwm.set(key, o.high);
      let startAt: bigint;
      const c = committed.get(key);
      if (c !== undefined) {
        startAt = c;
      } else if (startFrom === 'earliest') {
        startAt = o.low;
      } else if (startFrom === 'latest') {
        startAt = o.high;
      } else {
        const at = byTime.find((b) => b.partition === o.partition)?.offset ?? -1n;
        startAt = at < 0n ? o.high : at < o.low ? o.low : at;
        plan.seeks.set(key, startAt);
      }
      plan.positions.set(key, startAt);
    }
  }
  return plan;
}

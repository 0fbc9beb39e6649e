/**
 * Start-up look-ups: the group's committed offsets (retried while a young broker's coordinator
 * loads) and, for bounded mode or a timestamp start, each partition's start position and
 * high-water mark.
 */
import { backoff } from './backoff.ts';
import { keyOf } from './client.ts';
import type { KafkaClient } from './client.ts';
import { sleep } from './clock.ts';
import type { Clock } from './clock.ts';

/** Where a group without committed offsets starts reading. */
export type StartFrom = 'earliest' | 'latest' | { readonly timestamp: number };

/** First wait before asking for committed offsets again (doubles per attempt). */
const LOOKUP_RETRY_INITIAL_MS = 200;

/**
 * The group's committed offsets per partition key. A broker that has just started answers
 * "coordinator not available" / "not the coordinator" until its offsets topic is ready: answers
 * the client calls transient are retried with backoff (about 30 s in all) before giving up.
 */
export async function fetchCommitted(
  client: Pick<KafkaClient, 'committedOffsets' | 'isTransient'>,
  topics: readonly string[],
  clock: Clock,
  maxAttempts = 8,
): Promise<Map<string, bigint>> {
  for (let attempt = 1; ; attempt++) {
    try {
      const out = new Map<string, bigint>();
      for (const o of await client.committedOffsets(topics)) {
        if (o.offset >= 0n) out.set(keyOf(o.topic, o.partition), o.offset);
      }
      return out;
    } catch (err) {
      if (!client.isTransient(err) || attempt >= maxAttempts) throw err;
      await sleep(clock, backoff(attempt, LOOKUP_RETRY_INITIAL_MS, clock.random));
    }
  }
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
  client: Pick<KafkaClient, 'committedOffsets' | 'isTransient' | 'topicOffsets' | 'offsetsForTimestamp'>,
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

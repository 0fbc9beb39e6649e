/**
 * Resuming a newly assigned partition where its sink already holds everything: the consumer
 * seeks past what is durable (or past what this run already emitted, whichever is later) when
 * that is ahead of the group's committed offset.
 */
import type { Logger } from '../../core/logger.ts';
import type { OffsetTracker } from '../offsetTracker.ts';
import type { BoundedProgress } from './bounded.ts';
import { keyOf } from './client.ts';
import type { KafkaClient } from './client.ts';
import type { Clock } from './clock.ts';
import { fetchCommitted } from './lookups.ts';

/** The next offset a sink holds durably for a partition, or `undefined`. */
export type ResumeFrom = (topic: string, partition: number) => Promise<bigint | undefined>;

export interface ResumeSession {
  readonly client: KafkaClient | undefined;
  readonly stopped: boolean;
  /** Bounded mode's progress, if bounded. */
  readonly progress: BoundedProgress | undefined;
  checkCaughtUp(): void;
}

export interface ResumeContext {
  readonly tracker: OffsetTracker;
  readonly clock: Clock;
  readonly log: Logger;
}

/**
 * Seeks a partition to `max(durable, lastEmitted + 1)` unless the group's committed offset is
 * there already. A partition that comes back to this run may still have records in flight from
 * before: it resumes after them, never before (they would be emitted twice).
 */
export async function resumeAt(ctx: ResumeContext, s: ResumeSession, topic: string, partition: number, resumeFrom: ResumeFrom): Promise<void> {
  const durable = await resumeFrom(topic, partition);
  const client = s.client;
  if (durable === undefined || !client || s.stopped) return;
  const emitted = ctx.tracker.lastEmitted(topic, partition);
  const next = emitted !== undefined && emitted >= durable ? emitted + 1n : durable;
  const key = keyOf(topic, partition);
  const committed = (await fetchCommitted(client, [topic], ctx.clock)).get(key);
  if (committed !== undefined && committed >= next) return;
  ctx.log.info('resuming partition from its sink', { topic, partition, offset: next.toString() });
  client.seek(topic, partition, next);
  ctx.tracker.resumeAt(topic, partition, next);
  if (s.progress) {
    s.progress.advance(key, next);
    s.checkCaughtUp();
  }
}

/**
 * Commit after acknowledgement: the committable offset of every owned partition (nothing past
 * an unacknowledged record, see `OffsetTracker`) is committed when it advanced, and counts as
 * committed only once the broker confirmed it. A rebalance answer is routine and retried with
 * backoff, never fatal; a broker outage is waited out.
 */
import { backoffDelay } from '../../core/retry.ts';
import { redactError } from '../../core/logger.ts';
import type { Logger } from '../../core/logger.ts';
import type { CommittedOffset, OffsetTracker } from '../offsetTracker.ts';
import { REJOIN_POLICY, RESTART_POLICY } from './backoff.ts';
import { WAIT_SLICE_MS } from './budget.ts';
import { keyOf } from './client.ts';
import type { KafkaClient } from './client.ts';
import type { Clock, Signal } from './clock.ts';
import { describeError } from './logging.ts';

/** What a commit needs of the current subscription. */
export interface CommitSession {
  readonly client: KafkaClient | undefined;
  readonly stopped: boolean;
  /** The consumer's fetch loop runs (in its group). */
  readonly running: boolean;
  /** Still emitting (not drained, completed or failed). */
  readonly emitting: boolean;
  /** Partition keys assigned to this member now. */
  readonly assigned: ReadonlySet<string>;
  /** Latest offset per partition key the broker confirmed committed. */
  readonly confirmed: ReadonlyMap<string, bigint>;
  /** Reports the broker unreachable. */
  markDown(reason: string): void;
}

export interface CommitContext {
  readonly groupId: string;
  readonly tracker: OffsetTracker;
  /** Woken on every change of the consumer's state (joined, stopped, crashed, draining). */
  readonly state: Signal;
  readonly clock: Clock;
  readonly log: Logger;
}

/** Records the broker's confirmation of committed offsets (a later, lower one changes nothing). */
export function confirm(confirmed: Map<string, bigint>, offsets: ReadonlyArray<CommittedOffset>): void {
  for (const o of offsets) {
    const key = keyOf(o.topic, o.partition);
    const prev = confirmed.get(key);
    if (prev === undefined || o.offset > prev) confirmed.set(key, o.offset);
  }
}

/**
 * Commits what is pending. While the broker is away (the consumer crashed and is restarting,
 * or a commit fails on a broker error) it waits with backoff and commits once the group is
 * back; a drain or stop meanwhile gives up (the records are read again after a restart and
 * skipped by sinks that hold them). Only offsets the broker confirmed count.
 *
 * @param ctx The source's tracker, state signal, clock and log.
 * @param current The current subscription (looked up again after every wait).
 * @return What was committed.
 */
export async function commitAcknowledged(ctx: CommitContext, current: () => CommitSession | undefined): Promise<readonly CommittedOffset[]> {
  const { tracker, state, log, clock } = ctx;
  const out: CommittedOffset[] = [];
  for (let attempt = 1; ; ) {
    const s = current();
    const client = s?.client;
    if (!s || !client || s.stopped) return out;
    if (!s.running) {
      if (!s.emitting) return out;
      await state.wait(WAIT_SLICE_MS);
      continue;
    }
    const pending = tracker.pending().filter((p) => s.assigned.has(keyOf(p.topic, p.partition)));
    if (pending.length === 0) return out;
    try {
      await client.commit(pending);
    } catch (err) {
      if (s.stopped) return out;
      const rejoin = client.rejoinReason(err);
      if (rejoin !== undefined) {
        // A rebalance (e.g. ILLEGAL_GENERATION): routine, never fatal. The consumer rejoins by
        // itself; commit again once it has — partitions it keeps are committed then, lost ones
        // are another member's (their records, still durable here, are skipped by its sinks).
        log.info('offset commit deferred: the group is rebalancing', { groupId: ctx.groupId, reason: rejoin });
        await state.wait(backoffDelay(attempt, REJOIN_POLICY, clock.random));
        attempt += 1;
        continue;
      }
      if (!client.isRetriable(err)) throw redactError(err);
      if (!s.emitting) {
        // Draining during an outage: the records are durable; a restart reads them again from
        // the last committed offsets and sinks that hold them skip them.
        log.warn('final offset commit failed: Kafka unreachable', { error: err });
        return out;
      }
      s.markDown(`offset commit failed: ${describeError(err)}`);
      await state.wait(backoffDelay(attempt, RESTART_POLICY, clock.random));
      attempt += 1;
      continue;
    }
    if (s.stopped) return out;
    let skipped = false;
    for (const p of pending) {
      const confirmed = s.confirmed.get(keyOf(p.topic, p.partition));
      if (confirmed !== undefined && confirmed >= p.offset) {
        tracker.markCommitted(p.topic, p.partition, p.offset);
        out.push(p);
      } else {
        skipped = true;
      }
    }
    // A client may drop a commit silently when its fetch loop stopped meanwhile (a crash):
    // retry once the consumer runs again.
    if (!skipped || !s.emitting) return out;
    await state.wait(WAIT_SLICE_MS);
  }
}

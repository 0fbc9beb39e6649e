/**
 * The batch handler: a fetched batch becomes records queued for the subscriber, within the
 * in-flight budget and the read-ahead bound, never emitting an offset twice (see
 * `OffsetTracker`), resolving offsets as read and, in bounded mode, stopping at the start
 * high-water mark.
 */
import type { Logger } from '../../core/logger.ts';
import type { KafkaRecord } from '../../types.ts';
import type { Handoff } from '../handoff.ts';
import type { OffsetTracker } from '../offsetTracker.ts';
import type { BoundedProgress } from './bounded.ts';
import type { InFlightBudget } from './budget.ts';
import { keyOf } from './client.ts';
import type { ClientBatch, ClientMessage, KafkaClient } from './client.ts';

const EMPTY_HEADERS: Readonly<Record<string, Uint8Array | undefined>> = Object.freeze({});

/** What the handler needs of the subscription. */
export interface BatchSession {
  readonly client: KafkaClient | undefined;
  /** Still emitting (not drained, completed, failed or unsubscribed). */
  readonly emitting: boolean;
  /** Records read and not yet handed to the subscriber. */
  readonly handoff: Handoff<KafkaRecord>;
  /** `resumeFrom` look-ups (and their seeks) that a partition's first batch waits for. */
  readonly ready: Map<string, Promise<void>>;
  readonly progress: BoundedProgress | undefined;
  /** Batch handlers waiting for in-flight budget. */
  waitingForBudget: number;
  fail(err: unknown): void;
  checkCaughtUp(): void;
}

export interface BatchContext {
  readonly tracker: OffsetTracker;
  readonly budget: InFlightBudget;
  readonly maxReadAhead: number;
  readonly log: Logger;
}

/**
 * Handles one batch. Resolves once every record is queued (or the batch stopped mattering: a
 * stop, a rebalance, a seek); waits meanwhile, heart-beating, while the budget or the
 * read-ahead queue is full — which holds the client's next fetch back.
 */
export async function handleBatch(ctx: BatchContext, s: BatchSession, batch: ClientBatch): Promise<void> {
  const { tracker, budget, maxReadAhead } = ctx;
  const { topic, partition } = batch;
  const key = keyOf(topic, partition);
  const ready = s.ready.get(key);
  if (ready) {
    try {
      await ready;
    } catch (err) {
      s.fail(err);
      return;
    }
    s.ready.delete(key);
    // After a seek the batch is stale: the client fetches again from the new position.
    if (!s.emitting || !batch.isRunning() || batch.isStale()) return;
  }
  const progress = s.progress;
  const hwm = progress?.hwm(key);
  // The invariant (see OffsetTracker): nothing at or below the partition's last emitted offset
  // is emitted again. A rebalance that keeps or returns a partition makes the broker send it
  // again from the group's committed offset; those first copies are in flight or durable.
  // Offsets only grow within a batch, so the floor is read once, not per message.
  const floor = tracker.lastEmitted(topic, partition);
  let redelivered = 0;
  const live = (): boolean => s.emitting && batch.isRunning() && !batch.isStale();
  // isStale() may cost (kafkajs builds a key per call); a seek only happens on an asynchronous
  // path (group join, resumeFrom), so between awaits it is checked once, not per message.
  const running = (): boolean => s.emitting && batch.isRunning();
  const heartbeat = (): Promise<void> => batch.heartbeat();
  if (batch.messages.length > 0 && !live()) return;
  // Resolving may cost per call: the last offset read is resolved once, before every wait and
  // on every way out, rather than once per message.
  let unresolved: bigint | undefined;
  const resolve = (): void => {
    if (unresolved === undefined) return;
    batch.resolveOffset(unresolved);
    unresolved = undefined;
  };
  // Bounded mode: the position after the last emitted record, published (never lowered) before
  // every wait and on the way out, rather than once per message.
  let lastEmitted: bigint | undefined;
  const publishPosition = (): void => {
    if (lastEmitted === undefined) return;
    progress?.advance(key, lastEmitted + 1n);
    lastEmitted = undefined;
  };
  const readAheadFull = (): boolean => s.handoff.size >= maxReadAhead;
  const drained = (): boolean => s.handoff.size === 0;
  try {
    // Indexed, not for…of: in this async function an iterator would allocate a result per message.
    const messages = batch.messages;
    for (let m = 0; m < messages.length; m++) {
      const message = messages[m] as ClientMessage;
      if (!running()) return;
      const offset = BigInt(message.offset);
      if (hwm !== undefined && offset >= hwm) {
        // Bounded mode: nothing at or past the start high-water mark is emitted.
        s.client?.pause([{ topic, partitions: [partition] }]);
        progress?.finish(key);
        s.checkCaughtUp();
        return;
      }
      if (floor !== undefined && offset <= floor) {
        // Already emitted in this run: resolved (read) but not emitted again.
        redelivered += 1;
        unresolved = offset;
        if (hwm !== undefined) lastEmitted = offset;
        continue;
      }
      // Read far enough ahead: wait for the queue to shorten (each slice wakes this).
      if (s.handoff.size >= maxReadAhead) {
        resolve();
        publishPosition();
        if (!(await budget.waitWhile(readAheadFull, live, heartbeat))) return;
      }
      const size = (message.key?.byteLength ?? 0) + (message.value?.byteLength ?? 0);
      if (budget.over(size)) {
        resolve();
        publishPosition();
        s.waitingForBudget += 1;
        try {
          // Downstream buffers may be holding what would free the budget: ask them to write it,
          // once they have every record read (else the hand-off asks when it empties).
          if (!(await budget.waitFor(size, drained, live, heartbeat))) return;
        } finally {
          s.waitingForBudget -= 1;
        }
      }
      unresolved = offset;
      if (hwm !== undefined) lastEmitted = offset;
      // False only if a seek moved the floor while waiting above: then not emitted either.
      if (!tracker.emit(topic, partition, offset, size)) {
        redelivered += 1;
        continue;
      }
      s.handoff.push(toRecord(topic, partition, offset, message, size));
    }
  } finally {
    publishPosition();
    if (redelivered > 0) {
      ctx.log.info('records sent again by the broker (a rebalance or seek) were not emitted twice', {
        topic,
        partition,
        redelivered,
        lastEmitted: floor?.toString(),
      });
    }
    // A batch made stale by a seek meanwhile: its offsets no longer matter, the seek decides.
    if (!batch.isStale()) resolve();
  }
  // Every message of the batch was emitted: offsets after the last one up to the batch's last
  // offset are transaction markers or aborted records, committable once all is acknowledged.
  const next = batch.lastOffset + 1n;
  if (live()) tracker.skipTo(topic, partition, next);
  tracker.setHighWatermark(topic, partition, batch.highWatermark);
  if (progress && live()) {
    // The batch's last offset may be a control record after the last message.
    progress.advanceCapped(key, next);
    s.checkCaughtUp();
  }
}

function toRecord(topic: string, partition: number, offset: bigint, m: ClientMessage, size: number): KafkaRecord {
  return {
    topic,
    partition,
    offset,
    timestamp: Number(m.timestamp),
    key: m.key ?? null,
    value: m.value ?? null,
    headers: toHeaders(m.headers),
    size,
  };
}

function toHeaders(headers: ClientMessage['headers']): Readonly<Record<string, Uint8Array | undefined>> {
  if (headers === undefined) return EMPTY_HEADERS;
  let out: Record<string, Uint8Array | undefined> | undefined;
  for (const name in headers) {
    const v = headers[name];
    out ??= {};
    // A repeated header arrives as an array: keep the last value, as most clients do.
    const last: Uint8Array | string | undefined = isList(v) ? v[v.length - 1] : v;
    out[name] = typeof last === 'string' ? Buffer.from(last) : last;
  }
  return out ?? EMPTY_HEADERS;
}

function isList(v: unknown): v is ReadonlyArray<Uint8Array | string> {
  return Array.isArray(v);
}

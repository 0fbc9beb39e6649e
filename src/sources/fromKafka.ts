/**
 * Kafka topics as a cold Observable of records (kafkajs `eachBatch`), with bounded in-flight
 * records/bytes (backpressure), acknowledgement bookkeeping and explicit offset commits.
 */
import { Observable, ReplaySubject, Subject } from 'rxjs';
import type { Subscriber } from 'rxjs';
import { Kafka, logLevel as LogLevel } from 'kafkajs';
import type {
  Admin,
  Consumer,
  ConsumerConfig,
  ConsumerRunConfig,
  EachBatchPayload,
  KafkaConfig,
  KafkaMessage,
  LogEntry,
  SASLOptions,
} from 'kafkajs';
import type { KafkaRecord, RecordRef } from '../types.ts';
import { Handoff } from './handoff.ts';
import { OffsetTracker } from './offsetTracker.ts';
import type { CommittedOffset, OffsetCommitTarget, TrackerStats } from './offsetTracker.ts';

/** Where a group without committed offsets starts reading. */
export type StartFrom = 'earliest' | 'latest' | { readonly timestamp: number };

export type KafkaLogLevel = 'error' | 'warn' | 'info' | 'debug';

/** Receives the client's log lines (secrets already redacted). */
export type KafkaLogger = (level: KafkaLogLevel, message: string, extra: Record<string, unknown>) => void;

export interface FromKafkaOptions {
  readonly brokers: readonly string[];
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly clientId?: string;
  readonly ssl?: KafkaConfig['ssl'];
  /** PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (passed to kafkajs); the password is never logged. */
  readonly sasl?: SASLOptions;
  /** Same as `startFrom: 'earliest'` (true) or `'latest'` (false). */
  readonly fromBeginning?: boolean;
  /** Start of a group with no committed offsets; default `'latest'` (kafkajs' default). */
  readonly startFrom?: StartFrom;
  /** Most records read (queued or emitted) but not yet acknowledged; default 100 000. */
  readonly maxInFlightRecords?: number;
  /** Most bytes (key + value) read (queued or emitted) but not yet acknowledged; default 64 MiB. */
  readonly maxInFlightBytes?: number;
  /**
   * Most records read and queued, not yet emitted (the read-ahead); default 25 000. Within the
   * in-flight budget this bounds what waits in memory as whole records when the chain is slower
   * than the client: beyond it the batch handler waits (heart-beating) until the queue shortens.
   */
  readonly maxReadAheadRecords?: number;
  /**
   * Bounded mode: read up to the high-water marks found at start, then complete `records$`.
   * The consumer stays connected until the commit chain (`commitOffsets`) finalizes.
   */
  readonly untilCaughtUp?: boolean;
  /**
   * Called for each newly assigned partition before its first record is emitted: the next
   * offset a sink already holds durably (e.g. a Delta table's `txn` version + 1), or
   * `undefined`. When it is ahead of the group's committed offset, the consumer seeks there,
   * so records the sink already has are not read again.
   */
  readonly resumeFrom?: (topic: string, partition: number) => Promise<bigint | undefined>;
  /** Client log level; default `'warn'`. */
  readonly logLevel?: KafkaLogLevel | 'nothing';
  /** Log sink; default JSON lines on stderr. */
  readonly logger?: KafkaLogger;
  /** Other kafkajs consumer settings (sessionTimeout, heartbeatInterval, maxBytes, …). */
  readonly consumer?: Partial<Omit<ConsumerConfig, 'groupId'>>;
  /** Other kafkajs client settings (connectionTimeout, requestTimeout, retry, …). */
  readonly client?: Partial<Omit<KafkaConfig, 'brokers' | 'clientId' | 'ssl' | 'sasl' | 'logLevel' | 'logCreator'>>;
  /**
   * Called when the connection health changes: the consumer lost the broker(s) (`connected:
   * false`, with the reason; called again when the reason changes) or is back in its group
   * (`connected: true`, also on the first join).
   */
  readonly onHealthChange?: (health: KafkaHealth) => void;
  /**
   * A consuming member that got no answer from any broker for this long reports itself
   * disconnected (before kafkajs gives up and restarts the consumer); default the consumer's
   * `sessionTimeout` (30 s), at least twice `heartbeatInterval` and `maxWaitTimeInMs`.
   */
  readonly stallTimeoutMs?: number;
}

export type KafkaSourceStats = TrackerStats;

/** Whether the consumer reaches Kafka. */
export interface KafkaHealth {
  /** In its group and answered by the broker(s); false before the first join and during an outage. */
  readonly connected: boolean;
  /** The last broker error (kept after recovery, for the record). */
  readonly lastError?: string;
  /** Epoch milliseconds of the last change of state (absent before the first join or outage). */
  readonly since?: number;
}

/** A Kafka source: the records, and the commit side used by `commitOffsets()`. */
export interface KafkaSource extends OffsetCommitTarget {
  /**
   * Cold: subscribing connects and runs the consumer, unsubscribing stops it. One subscriber
   * at a time.
   */
  readonly records$: Observable<KafkaRecord>;
  /**
   * Emits when the consumer stops reading because the in-flight budget is used up, and again
   * each time it finds the budget still used up (after an acknowledgement, at least every second). Nothing more arrives until something is acknowledged, so
   * buffers downstream should write what they hold: give it to `bufferTime({ flush })`. Without
   * that, batches that cannot fill (e.g. eight topics sharing a budget smaller than eight full
   * batches) wait for their time span while the consumer waits for them.
   */
  readonly saturated$: Observable<void>;
  /**
   * The partitions assigned to this consumer (`topic/partition`): emits on each assignment and
   * revocation (empty once the consumer stops), replaying the latest to each new subscriber.
   */
  readonly assignment$: Observable<ReadonlySet<string>>;
  /** Marks records durable in some sink; frees their in-flight budget. */
  acknowledge(refs: readonly RecordRef[]): void;
  /** Frees the in-flight budget of records not acknowledged yet (see `SinkAck.released`). */
  release(refs: readonly RecordRef[]): void;
  /** Commits every owned partition whose committable offset advanced; resolves to what it committed. */
  commit(): Promise<readonly CommittedOffset[]>;
  /** Keeps the consumer connected (after `records$` completes) until the returned function is called. */
  retain(): () => void;
  /**
   * Graceful stop: pauses fetching and completes `records$`, so downstream flushes its open
   * batches and `commitOffsets` commits them; the consumer disconnects when that chain ends.
   */
  drain(): void;
  /** Resolves once the consumer has disconnected (left its group); at once when not connected. */
  closed(): Promise<void>;
  stats(): KafkaSourceStats;
  /** Connection health now; see `onHealthChange`. */
  health(): KafkaHealth;
}

interface Session {
  readonly id: number;
  subscriber: Subscriber<KafkaRecord> | undefined;
  kafka: Kafka | undefined;
  consumer: Consumer | undefined;
  admin: Admin | undefined;
  /** The admin client, connected on first use (start-up look-ups, bounded mode, resumeFrom). */
  adminReady: Promise<Admin> | undefined;
  /** Emitting records (false once completed, failed or unsubscribed). */
  emitting: boolean;
  /** Consumer run loop started and not stopped. */
  running: boolean;
  stopped: boolean;
  joined: boolean;
  readonly assigned: Set<string>;
  /** Bounded mode: next offset to read per partition, and the high-water marks at start. */
  readonly positions: Map<string, bigint>;
  readonly startHwm: Map<string, bigint>;
  readonly handledBatches: Set<string>;
  /** Partitions without a committed offset at start, with the offset to seek to (timestamp start). */
  readonly seekAtStart: Map<string, bigint>;
  /** `resumeFrom` look-ups (and their seeks) that a partition's first batch waits for. */
  readonly ready: Map<string, Promise<void>>;
  /** Latest offset per partition the broker confirmed committed (kafkajs COMMIT_OFFSETS). */
  readonly confirmed: Map<string, bigint>;
  /** Records read (counted in flight) and not yet handed to the subscriber. */
  readonly handoff: Handoff<KafkaRecord>;
  /** Batch handlers waiting for in-flight budget. */
  waitingForBudget: number;
  /** Restarts this source scheduled itself after a crash kafkajs does not restart from. */
  restarts: number;
  restartTimer: NodeJS.Timeout | undefined;
  watchdog: NodeJS.Timeout | undefined;
}

const DEFAULT_MAX_RECORDS = 100_000;
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
const DEFAULT_MAX_READ_AHEAD = 25_000;
const WAIT_SLICE_MS = 1_000;
const DEFAULT_SESSION_TIMEOUT_MS = 30_000;
const DEFAULT_HEARTBEAT_INTERVAL_MS = 3_000;
const DEFAULT_MAX_WAIT_MS = 5_000;
const RESTART_INITIAL_MS = 1_000;
const RESTART_MAX_MS = 30_000;
/** First wait before committing again after a rebalance answer (doubles, up to RESTART_MAX_MS). */
const REJOIN_RETRY_INITIAL_MS = 200;
const EMPTY_HEADERS: Readonly<Record<string, Uint8Array | undefined>> = Object.freeze({});
/** Commit errors that a rejoin of the group fixes: worth retrying. */
const REJOIN_ERRORS = new Set([
  'REBALANCE_IN_PROGRESS',
  'ILLEGAL_GENERATION',
  'UNKNOWN_MEMBER_ID',
  'NOT_COORDINATOR_FOR_GROUP',
  'GROUP_COORDINATOR_NOT_AVAILABLE',
  'COORDINATOR_LOAD_IN_PROGRESS',
]);

let sessions = 0;

/**
 * Creates a Kafka source. `records$` emits each record with key, value and headers as the
 * broker's bytes, offset as `bigint`; the consumer never commits by itself — offsets are
 * committed by `commit()` (driven by `commitOffsets()`) only up to acknowledged records.
 *
 * Backpressure: at most `maxInFlightRecords` / `maxInFlightBytes` records are read and not
 * yet acknowledged; beyond that the consumer waits inside `eachBatch` (heart-beating), so no
 * more is fetched.
 *
 * Read-ahead: kafkajs fetches again only once its batch handler returns. The handler queues
 * the batch's records (they count as in flight) and returns; they are emitted on later turns
 * of the event loop, in time slices, so the next fetch crosses the network while these are
 * processed. Completion (bounded mode, `drain()`) emits every queued record first; an error or
 * unsubscribing drops them (they were not acknowledged, so their offsets are not committed).
 *
 * ## Example
 * ```ts
 * const source = fromKafka({ brokers: ['127.0.0.1:9092'], groupId: 'bronze', topics: ['trips'] });
 * source.records$.pipe(enrichMetadata(), bufferTime(), deltaSink(table), commitOffsets(source)).subscribe();
 * ```
 *
 * @param options Brokers, group, topics, security, start position, in-flight bounds, bounded mode.
 * @return The source: `records$`, `acknowledge`, `commit`, `retain`, `stats`.
 */
export function fromKafka(options: FromKafkaOptions): KafkaSource {
  const maxRecords = options.maxInFlightRecords ?? DEFAULT_MAX_RECORDS;
  const maxBytes = options.maxInFlightBytes ?? DEFAULT_MAX_BYTES;
  if (!(maxRecords >= 1)) throw new RangeError('fromKafka: maxInFlightRecords must be >= 1');
  if (!(maxBytes >= 1)) throw new RangeError('fromKafka: maxInFlightBytes must be >= 1');
  const maxReadAhead = options.maxReadAheadRecords ?? DEFAULT_MAX_READ_AHEAD;
  if (!(maxReadAhead >= 1)) throw new RangeError('fromKafka: maxReadAheadRecords must be >= 1');
  if (options.topics.length === 0) throw new RangeError('fromKafka: no topics');
  const startFrom: StartFrom = options.startFrom ?? (options.fromBeginning === true ? 'earliest' : 'latest');
  const secrets = secretsOf(options);
  const redact = (text: string): string => secrets.reduce((t, s) => t.split(s).join('***'), text);
  const log = makeLogger(options.logger, redact, options.logLevel ?? 'warn');

  const tracker = new OffsetTracker();
  /** Woken when acknowledgements free in-flight budget. */
  const { wake, wait: waitForCapacity } = wakeable();
  const saturated = new Subject<void>();
  const assignment = new ReplaySubject<ReadonlySet<string>>(1);
  let session: Session | undefined;
  let holds = 0;

  const consumerOptions = options.consumer ?? {};
  const stallMs =
    options.stallTimeoutMs ??
    Math.max(
      consumerOptions.sessionTimeout ?? DEFAULT_SESSION_TIMEOUT_MS,
      2 * (consumerOptions.heartbeatInterval ?? DEFAULT_HEARTBEAT_INTERVAL_MS),
      2 * (consumerOptions.maxWaitTimeInMs ?? DEFAULT_MAX_WAIT_MS),
    );
  if (!(stallMs > 0)) throw new RangeError('fromKafka: stallTimeoutMs must be > 0');
  /** The user's own restart policy (kafkajs `retry.restartOnFailure`) is respected as is. */
  const userRestartPolicy = options.client?.retry?.restartOnFailure !== undefined;

  // Connection health: `down` once an outage was detected, until the group is joined again.
  let connected = false;
  let down = false;
  let since: number | undefined;
  let lastError: string | undefined;
  /** Last successful broker round trip (any request), epoch ms. */
  let lastContact = 0;
  /** The client's last error-level log line (e.g. `Connection error: connect ECONNREFUSED …`). */
  let lastClientError: string | undefined;
  /** Woken on every change of the consumer's state (joined, stopped, crashed, draining). */
  const { wake: wakeState, wait: waitForState } = wakeable();

  const health = (): KafkaHealth => ({
    connected,
    ...(lastError !== undefined ? { lastError } : {}),
    ...(since !== undefined ? { since } : {}),
  });

  const notifyHealth = (): void => {
    const { onHealthChange } = options;
    if (!onHealthChange) return;
    try {
      onHealthChange(health());
    } catch (err) {
      log('warn', 'onHealthChange threw', { error: errorText(err, redact) });
    }
  };

  /** The consumer is in its group and answered: connected (again). */
  const markUp = (s: Session): void => {
    lastContact = Date.now();
    if (session !== s || s.stopped || connected) return;
    if (down) log('warn', 'Kafka reachable again: consumer back in its group', { groupId: options.groupId, downMs: Date.now() - (since ?? Date.now()) });
    connected = true;
    down = false;
    since = Date.now();
    notifyHealth();
  };

  /** The broker cannot be reached (or the consumer crashed on a broker error): disconnected. */
  const markDown = (s: Session, reason: string): void => {
    if (session !== s || s.stopped) return;
    const text = redact(reason);
    if (down && lastError === text) return;
    if (!down) {
      log('warn', 'Kafka unreachable: retrying with backoff', { groupId: options.groupId, reason: text });
      since = Date.now();
    }
    connected = false;
    down = true;
    lastError = text;
    notifyHealth();
  };

  const overBudget = (size: number): boolean =>
    tracker.inFlightRecords >= maxRecords ||
    (tracker.inFlightRecords > 0 && tracker.inFlightBytes + size > maxBytes);

  /** The last shutdown's disconnect. */
  let closing: Promise<void> = Promise.resolve();

  const retain = (): (() => void) => {
    holds += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      holds -= 1;
      if (holds === 0) shutdown();
    };
  };

  const shutdown = (): void => {
    const s = session;
    session = undefined;
    if (!s) return;
    s.stopped = true;
    s.emitting = false;
    s.subscriber = undefined;
    s.handoff.clear();
    clearTimeout(s.restartTimer);
    clearInterval(s.watchdog);
    // Disconnecting on purpose is no outage: nothing is reported.
    connected = false;
    down = false;
    wake();
    wakeState();
    const { consumer, admin } = s;
    closing = (async () => {
      try {
        await consumer?.disconnect();
      } catch (err) {
        log('warn', 'consumer disconnect failed', { error: errorText(err, redact) });
      }
      try {
        await admin?.disconnect();
      } catch {
        // ignore: the admin client only served start-up look-ups
      }
      s.running = false;
    })();
    tracker.clear();
    assignment.next(new Set());
  };

  const fail = (s: Session, err: unknown): void => {
    if (!s.emitting || !s.subscriber) return;
    s.emitting = false;
    s.handoff.clear();
    const subscriber = s.subscriber;
    subscriber.error(sanitize(err, secrets, redact));
  };

  const complete = (s: Session): void => {
    if (!s.emitting || !s.subscriber) return;
    // Everything read goes downstream before the end.
    s.handoff.flush();
    if (!s.emitting || !s.subscriber) return;
    s.emitting = false;
    const subscriber = s.subscriber;
    wake();
    wakeState();
    try {
      s.consumer?.pause(options.topics.map((topic) => ({ topic })));
    } catch (err) {
      log('warn', 'pause after catching up failed', { error: errorText(err, redact) });
    }
    subscriber.complete();
  };

  /** Bounded mode: completes once every assigned partition reached its start high-water mark. */
  const checkCaughtUp = (s: Session): void => {
    if (options.untilCaughtUp !== true || !s.joined || !s.emitting) return;
    for (const key of s.assigned) {
      const hwm = s.startHwm.get(key) ?? 0n;
      const pos = s.positions.get(key);
      if (pos === undefined || pos < hwm) return;
    }
    complete(s);
  };

  const refreshCommitted = async (s: Session): Promise<void> => {
    if (!s.admin) return;
    const committed = await fetchCommitted(s.admin, options.groupId, options.topics);
    for (const [key, offset] of committed) {
      const pos = s.positions.get(key);
      if (pos === undefined || offset > pos) s.positions.set(key, offset);
    }
  };

  const onAssign = (s: Session, memberAssignment: Record<string, number[]>): void => {
    const assigned: Array<{ topic: string; partition: number }> = [];
    for (const [topic, partitions] of Object.entries(memberAssignment)) {
      for (const partition of partitions) assigned.push({ topic, partition });
    }
    const before = new Set(s.assigned);
    s.assigned.clear();
    for (const a of assigned) s.assigned.add(keyOf(a.topic, a.partition));
    tracker.reassign(assigned);
    assignment.next(new Set(assigned.map((a) => `${a.topic}/${a.partition}`)));
    s.joined = true;
    log('info', 'partitions assigned', { groupId: options.groupId, assigned: assigned.map((a) => `${a.topic}/${a.partition}`) });
    for (const a of assigned) {
      const key = keyOf(a.topic, a.partition);
      const seekTo = s.seekAtStart.get(key);
      if (seekTo !== undefined && s.consumer) {
        s.seekAtStart.delete(key);
        s.consumer.seek({ topic: a.topic, partition: a.partition, offset: seekTo.toString() });
      }
    }
    const { resumeFrom } = options;
    if (resumeFrom) {
      for (const a of assigned) {
        const key = keyOf(a.topic, a.partition);
        if (before.has(key)) continue;
        s.ready.set(
          key,
          resumeAt(s, a.topic, a.partition, resumeFrom).catch((err: unknown) => fail(s, err)),
        );
      }
    }
    if (options.untilCaughtUp === true) {
      // Another member may have advanced these partitions: re-read the group's offsets.
      refreshCommitted(s).then(
        () => checkCaughtUp(s),
        (err: unknown) => fail(s, err),
      );
    }
  };

  const adminOf = (s: Session): Promise<Admin> => {
    s.adminReady ??= (async () => {
      if (!s.kafka) throw new Error('fromKafka: not started');
      const admin = s.kafka.admin();
      s.admin = admin;
      try {
        await admin.connect();
      } catch (err) {
        // Not cached: a later look-up (after a broker outage) connects again.
        s.admin = undefined;
        s.adminReady = undefined;
        throw err;
      }
      return admin;
    })();
    return s.adminReady;
  };

  /** Seeks a partition to where its sink resumes, when that is ahead of the group's offset. */
  const resumeAt = async (
    s: Session,
    topic: string,
    partition: number,
    resumeFrom: (topic: string, partition: number) => Promise<bigint | undefined>,
  ): Promise<void> => {
    const durable = await resumeFrom(topic, partition);
    if (durable === undefined || !s.consumer || s.stopped) return;
    // A partition that comes back to this run may still have records in flight from before:
    // resume after them, never before (they would be emitted twice).
    const emitted = tracker.lastEmitted(topic, partition);
    const next = emitted !== undefined && emitted >= durable ? emitted + 1n : durable;
    const admin = await adminOf(s);
    const committed = (await fetchCommitted(admin, options.groupId, [topic])).get(keyOf(topic, partition));
    if (committed !== undefined && committed >= next) return;
    log('info', 'resuming partition from its sink', { topic, partition, offset: next.toString() });
    s.consumer.seek({ topic, partition, offset: next.toString() });
    tracker.resumeAt(topic, partition, next);
    if (options.untilCaughtUp === true) {
      const pos = s.positions.get(keyOf(topic, partition));
      if (pos === undefined || next > pos) s.positions.set(keyOf(topic, partition), next);
      checkCaughtUp(s);
    }
  };

  const eachBatch = async (s: Session, payload: EachBatchPayload): Promise<void> => {
    const { batch } = payload;
    const { topic, partition } = batch;
    const key = keyOf(topic, partition);
    // Marks the batch as seen here (END_BATCH_PROCESS then ignores it), even on an early return.
    s.handledBatches.add(`${key}\u0000${batch.lastOffset()}`);
    const ready = s.ready.get(key);
    if (ready) {
      try {
        await ready;
      } catch (err) {
        fail(s, err);
        return;
      }
      s.ready.delete(key);
      // After a seek the batch is stale: kafkajs fetches again from the new position.
      if (!s.emitting || !payload.isRunning() || payload.isStale()) return;
    }
    const hwm = options.untilCaughtUp === true ? s.startHwm.get(key) ?? 0n : undefined;
    // The invariant (see OffsetTracker): nothing at or below the partition's last emitted offset
    // is emitted again. A rebalance that keeps or returns a partition makes the broker send it
    // again from the group's committed offset; those first copies are in flight or durable.
    // Offsets only grow within a batch, so the floor is read once, not per message.
    const floor = tracker.lastEmitted(topic, partition);
    let redelivered = 0;
    const live = (): boolean => s.emitting && payload.isRunning() && !payload.isStale();
    // isStale() builds a JSON key per call; a seek only happens on an asynchronous path (group
    // join, resumeFrom), so between awaits it is checked once, not per message.
    const running = (): boolean => s.emitting && payload.isRunning();
    if (batch.messages.length > 0 && !live()) return;
    // resolveOffset() parses and formats a Long per call: resolve the last emitted offset once,
    // before every wait and on every way out, rather than once per message.
    let unresolved: string | undefined;
    const resolve = (): void => {
      if (unresolved === undefined) return;
      payload.resolveOffset(unresolved);
      unresolved = undefined;
    };
    // Bounded mode: the position after the last emitted record, published (never lowered) before
    // every wait and on the way out, rather than once per message.
    let lastEmitted: bigint | undefined;
    const publishPosition = (): void => {
      if (lastEmitted === undefined) return;
      const next = lastEmitted + 1n;
      const pos = s.positions.get(key);
      if (pos === undefined || next > pos) s.positions.set(key, next);
      lastEmitted = undefined;
    };
    /**
     * Waits (heart-beating) while `blocked()`, which is asked again after each wake-up; offsets
     * and the position are published first. False: the batch no longer matters (stop, rebalance).
     */
    const waitWhile = async (blocked: () => boolean): Promise<boolean> => {
      resolve();
      publishPosition();
      while (blocked()) {
        await waitForCapacity(WAIT_SLICE_MS);
        if (!live()) return false;
        await payload.heartbeat();
      }
      return true;
    };
    const readAheadFull = (): boolean => s.handoff.size >= maxReadAhead;
    try {
      // Indexed, not for…of: in this async function an iterator would allocate a result per message.
      const messages = batch.messages;
      for (let m = 0; m < messages.length; m++) {
        const message = messages[m] as (typeof messages)[number];
        if (!running()) return;
        const offset = BigInt(message.offset);
        if (hwm !== undefined && offset >= hwm) {
          // Bounded mode: nothing at or past the start high-water mark is emitted.
          s.consumer?.pause([{ topic, partitions: [partition] }]);
          s.positions.set(key, hwm);
          checkCaughtUp(s);
          return;
        }
        if (floor !== undefined && offset <= floor) {
          // Already emitted in this run: resolved (read) but not emitted again.
          redelivered += 1;
          unresolved = message.offset;
          if (hwm !== undefined) lastEmitted = offset;
          continue;
        }
        // Read far enough ahead: wait for the queue to shorten (each slice wakes this).
        if (s.handoff.size >= maxReadAhead && !(await waitWhile(readAheadFull))) return;
        const size = (message.key?.byteLength ?? 0) + (message.value?.byteLength ?? 0);
        if (overBudget(size)) {
          s.waitingForBudget += 1;
          try {
            // Downstream buffers may be holding what would free the budget: ask them to write it,
            // once they have every record read (else the hand-off asks when it empties).
            const blocked = (): boolean => {
              if (overBudget(size) && s.handoff.size === 0) saturated.next();
              return overBudget(size);
            };
            if (!(await waitWhile(blocked))) return;
          } finally {
            s.waitingForBudget -= 1;
          }
        }
        unresolved = message.offset;
        if (hwm !== undefined) lastEmitted = offset;
        // False only if a seek moved the floor while waiting above: then not emitted either.
        if (!tracker.emit(topic, partition, offset, size)) {
          redelivered += 1;
          continue;
        }
        const record = toRecord(topic, partition, offset, message, size);
        s.handoff.push(record);
      }
    } finally {
      publishPosition();
      if (redelivered > 0) {
        log('info', 'records sent again by the broker (a rebalance or seek) were not emitted twice', {
          topic,
          partition,
          redelivered,
          lastEmitted: floor?.toString(),
        });
      }
      // A batch made stale by a seek meanwhile: its offsets no longer matter, the seek decides.
      if (!payload.isStale()) resolve();
    }
    // Every message of the batch was emitted: offsets after the last one up to the batch's
    // last offset are transaction markers or aborted records, committable once all is acked.
    if (live()) tracker.skipTo(topic, partition, BigInt(batch.lastOffset()) + 1n);
    tracker.setHighWatermark(topic, partition, BigInt(batch.highWatermark));
    if (hwm !== undefined && live()) {
      // The batch's last offset may be a control record after the last message.
      const next = BigInt(batch.lastOffset()) + 1n;
      const pos = s.positions.get(key);
      if (pos === undefined || next > pos) s.positions.set(key, next < hwm ? next : hwm);
      checkCaughtUp(s);
    }
  };

  const runConfig = (s: Session): ConsumerRunConfig => ({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: (payload) => eachBatch(s, payload),
  });

  /**
   * kafkajs restarts its consumer by itself after a crash on a retriable error; for a crash it
   * does not restart from although the cause is a broker outage (e.g. no group coordinator
   * found), this source runs the consumer again, with backoff.
   */
  const scheduleRestart = (s: Session): void => {
    if (s.stopped || s.restartTimer !== undefined) return;
    s.restarts += 1;
    const wait = backoff(s.restarts);
    log('warn', 'restarting the consumer', { groupId: options.groupId, attempt: s.restarts, inMs: wait });
    s.restartTimer = setTimeout(() => {
      s.restartTimer = undefined;
      const { consumer } = s;
      if (s.stopped || session !== s || !s.emitting || !consumer) return;
      consumer.run(runConfig(s)).catch((err: unknown) => {
        if (s.stopped) return;
        if (!isRetriableKafkaError(err)) {
          fail(s, err);
          return;
        }
        markDown(s, describeError(err));
        scheduleRestart(s);
      });
    }, wait);
  };

  const start = async (s: Session): Promise<void> => {
    const kafka = new Kafka({
      ...options.client,
      brokers: [...options.brokers],
      clientId: options.clientId ?? 'rxlake',
      ...(options.ssl !== undefined ? { ssl: options.ssl } : {}),
      ...(options.sasl !== undefined ? { sasl: options.sasl } : {}),
      // Error lines always reach the log creator (they name the cause of an outage); `log` filters.
      logLevel: toKafkaLogLevel(atLeastErrors(options.logLevel ?? 'warn')),
      logCreator: () => (entry: LogEntry) => {
        const { message, ...extra } = entry.log;
        if (entry.level <= LogLevel.ERROR) lastClientError = redact(message);
        log(clientLogLevel(entry), `[${entry.namespace}] ${message}`, extra);
      },
    });
    s.kafka = kafka;
    const consumer = kafka.consumer({ ...options.consumer, groupId: options.groupId });
    s.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      if (session !== s || s.stopped) return;
      // Also after kafkajs restarted a crashed consumer: it runs again.
      s.running = true;
      s.restarts = 0;
      onAssign(s, event.payload.memberAssignment);
      if (!s.emitting) {
        // Drained meanwhile: a restarted consumer must not fetch again.
        try {
          consumer.pause(options.topics.map((topic) => ({ topic })));
        } catch (err) {
          log('warn', 'pause after a restart failed', { error: errorText(err, redact) });
        }
      }
      markUp(s);
      wakeState();
    });
    consumer.on(consumer.events.CRASH, (event) => {
      if (session !== s || s.stopped) return;
      const { error, restart } = event.payload;
      if (restart) {
        // kafkajs runs the consumer again after its retry time; it rejoins once the broker is back.
        markDown(s, describeError(error));
      } else if (!userRestartPolicy && isRetriableKafkaError(error)) {
        markDown(s, describeError(error));
        scheduleRestart(s);
      } else {
        fail(s, error);
      }
      wakeState();
    });
    consumer.on(consumer.events.STOP, () => {
      s.running = false;
      wakeState();
    });
    consumer.on(consumer.events.REQUEST, () => {
      lastContact = Date.now();
      // A short outage kafkajs rode out without a crash: the running member is answered again.
      if (down && s.running && s.joined) markUp(s);
    });
    consumer.on(consumer.events.COMMIT_OFFSETS, (event) => {
      for (const t of event.payload.topics) {
        for (const p of t.partitions) {
          let offset: bigint;
          try {
            offset = BigInt(String(p.offset));
          } catch {
            continue;
          }
          const key = keyOf(t.topic, Number(p.partition));
          const prev = s.confirmed.get(key);
          if (prev === undefined || offset > prev) s.confirmed.set(key, offset);
        }
      }
    });
    s.watchdog = setInterval(() => {
      if (session !== s || s.stopped || !s.emitting || !s.running || !connected) return;
      if (Date.now() - lastContact < stallMs) return;
      const detail = lastClientError === undefined ? '' : ` (last client error: ${lastClientError})`;
      markDown(s, `no answer from Kafka for ${Math.round(stallMs / 1000)} s${detail}`);
    }, Math.min(WAIT_SLICE_MS, stallMs));
    s.watchdog.unref();
    consumer.on(consumer.events.END_BATCH_PROCESS, (event) => {
      // Batches of only control records / aborted messages never reach eachBatch.
      const { topic, partition, lastOffset } = event.payload;
      const key = keyOf(topic, partition);
      const id = `${key}\u0000${lastOffset}`;
      if (s.handledBatches.delete(id) || session !== s || !s.assigned.has(key)) return;
      const next = BigInt(lastOffset) + 1n;
      tracker.skipTo(topic, partition, next);
      if (options.untilCaughtUp !== true) return;
      const hwm = s.startHwm.get(key) ?? 0n;
      const pos = s.positions.get(key);
      if (pos === undefined || next > pos) s.positions.set(key, next < hwm ? next : hwm);
      checkCaughtUp(s);
    });

    await consumer.connect();
    if (s.stopped) return;

    const needsAdmin = options.untilCaughtUp === true || typeof startFrom === 'object';
    if (needsAdmin) {
      const admin = await adminOf(s);
      const committed = await fetchCommitted(admin, options.groupId, options.topics);
      for (const topic of options.topics) {
        const offsets = await admin.fetchTopicOffsets(topic);
        const byTime = typeof startFrom === 'object' ? await admin.fetchTopicOffsetsByTimestamp(topic, startFrom.timestamp) : [];
        for (const o of offsets) {
          const key = keyOf(topic, o.partition);
          const high = BigInt(o.high);
          const low = BigInt(o.low);
          s.startHwm.set(key, high);
          let startAt: bigint;
          const c = committed.get(key);
          if (c !== undefined) {
            startAt = c;
          } else if (startFrom === 'earliest') {
            startAt = low;
          } else if (startFrom === 'latest') {
            startAt = high;
          } else {
            const t = byTime.find((b) => b.partition === o.partition);
            const at = t === undefined ? -1n : BigInt(t.offset);
            startAt = at < 0n ? high : at < low ? low : at;
            s.seekAtStart.set(key, startAt);
          }
          s.positions.set(key, startAt);
        }
      }
      if (options.untilCaughtUp !== true && options.resumeFrom === undefined) {
        s.admin = undefined;
        s.adminReady = undefined;
        await admin.disconnect();
      }
      if (s.stopped) return;
    }

    await consumer.subscribe({ topics: [...options.topics], fromBeginning: startFrom === 'earliest' });
    if (s.stopped) return;
    s.running = true;
    await consumer.run(runConfig(s));
  };

  const records$ = new Observable<KafkaRecord>((subscriber) => {
    if (session !== undefined) {
      subscriber.error(new Error('fromKafka: records$ has one subscriber at a time (the previous run is still open)'));
      return undefined;
    }
    const release = retain();
    tracker.clear();
    sessions += 1;
    const s: Session = {
      id: sessions,
      subscriber,
      kafka: undefined,
      consumer: undefined,
      admin: undefined,
      adminReady: undefined,
      emitting: true,
      running: false,
      stopped: false,
      joined: false,
      assigned: new Set(),
      positions: new Map(),
      startHwm: new Map(),
      handledBatches: new Set(),
      seekAtStart: new Map(),
      ready: new Map(),
      confirmed: new Map(),
      handoff: new Handoff<KafkaRecord>({
        deliver: (record) => {
          if (!s.emitting || !s.subscriber) return;
          try {
            s.subscriber.next(record);
          } catch (err) {
            fail(s, err);
          }
        },
        // Every record read is downstream now: if the budget is still spent, ask for writes.
        onEmpty: () => {
          if (s.waitingForBudget > 0) saturated.next();
        },
        // A batch handler may be waiting for the read-ahead queue to shorten.
        onSlice: wake,
      }),
      waitingForBudget: 0,
      restarts: 0,
      restartTimer: undefined,
      watchdog: undefined,
    };
    session = s;
    start(s).catch((err: unknown) => fail(s, err));
    return () => {
      s.emitting = false;
      s.subscriber = undefined;
      s.handoff.clear();
      wake();
      release();
    };
  });

  /**
   * Commits what is pending. While the broker is away (the consumer crashed and kafkajs is
   * restarting it, or a commit fails on a broker error) it waits with backoff and commits once
   * the group is back; a drain or stop meanwhile gives up (the records are read again after a
   * restart and skipped by sinks that hold them). Only offsets the broker confirmed count.
   */
  const commit = async (): Promise<readonly CommittedOffset[]> => {
    const out: CommittedOffset[] = [];
    for (let attempt = 1; ; ) {
      const s = session;
      if (!s || !s.consumer || s.stopped) return out;
      if (!s.running) {
        if (!s.emitting) return out;
        await waitForState(WAIT_SLICE_MS);
        continue;
      }
      const pending = tracker.pending().filter((p) => s.assigned.has(keyOf(p.topic, p.partition)));
      if (pending.length === 0) return out;
      try {
        await s.consumer.commitOffsets(
          pending.map((p) => ({ topic: p.topic, partition: p.partition, offset: p.offset.toString() })),
        );
      } catch (err) {
        if (s.stopped) return out;
        const rejoin = rejoinErrorOf(err);
        if (rejoin !== undefined) {
          // A rebalance (kafkajs wraps the broker's answer, e.g. ILLEGAL_GENERATION, in a
          // non-retriable error): routine, never fatal. The consumer rejoins by itself; commit
          // again once it has — partitions it keeps are committed then, lost ones are another
          // member's (their records, still durable here, are skipped by that member's sinks).
          log('info', 'offset commit deferred: the group is rebalancing', { groupId: options.groupId, reason: rejoin });
          await waitForState(backoff(attempt, REJOIN_RETRY_INITIAL_MS));
          attempt += 1;
          continue;
        }
        if (!isRetriableKafkaError(err)) throw sanitize(err, secrets, redact);
        if (!s.emitting) {
          // Draining during an outage: the records are durable; a restart reads them again
          // from the last committed offsets and sinks that hold them skip them.
          log('warn', 'final offset commit failed: Kafka unreachable', { error: errorText(err, redact) });
          return out;
        }
        markDown(s, `offset commit failed: ${describeError(err)}`);
        await waitForState(backoff(attempt));
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
      // kafkajs drops a commit silently when its runner stopped meanwhile (a crash): retry
      // once the consumer runs again.
      if (!skipped || !s.emitting) return out;
      await waitForState(WAIT_SLICE_MS);
    }
  };

  return {
    records$,
    saturated$: saturated.asObservable(),
    assignment$: assignment.asObservable(),
    acknowledge(refs: readonly RecordRef[]): void {
      if (tracker.acknowledge(refs) > 0) wake();
    },
    release(refs: readonly RecordRef[]): void {
      if (tracker.release(refs) > 0) wake();
    },
    commit,
    retain,
    drain(): void {
      if (session) complete(session);
    },
    closed: () => closing,
    stats: () => tracker.stats(),
    health,
  };
}

const OUTAGE_ERROR_NAMES = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSBrokerNotFound',
  'KafkaJSGroupCoordinatorNotFound',
  'KafkaJSLockTimeout',
  'KafkaJSTimeout',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSStaleTopicMetadataAssignment',
]);
const FATAL_ERROR_NAMES = new Set([
  'KafkaJSSASLAuthenticationError',
  'KafkaJSNotImplemented',
  'KafkaJSServerDoesNotSupportApiKey',
  'KafkaJSInvariantViolation',
  'KafkaJSUnsupportedMagicByteInMessageSet',
]);
const OUTAGE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH',
  'ENETDOWN', 'EAI_AGAIN', 'ENOTFOUND',
]);

/**
 * Whether a kafkajs error is a broker outage worth waiting out (connection refused or lost,
 * request timeouts, no broker or coordinator available, retriable protocol errors, and kafkajs
 * giving up after its retries on any of those). Authentication failures, authorization and
 * other non-retriable protocol errors, unsupported protocol versions and errors that are not
 * kafkajs' own (a bug in a handler) are not.
 *
 * @param err What kafkajs threw or reported in a crash.
 * @return True when trying again later can help.
 */
export function isRetriableKafkaError(err: unknown): boolean {
  const chain: Array<{ name?: unknown; code?: unknown; retriable?: unknown; cause?: unknown }> = [];
  for (let e: unknown = err; typeof e === 'object' && e !== null && chain.length < 10; ) {
    const x = e as { name?: unknown; code?: unknown; retriable?: unknown; cause?: unknown };
    chain.push(x);
    if (x.cause === e) break;
    e = x.cause;
  }
  const root = chain[chain.length - 1];
  if (root === undefined) return false;
  if (chain.some((e) => typeof e.name === 'string' && FATAL_ERROR_NAMES.has(e.name))) return false;
  if (typeof root.name === 'string' && OUTAGE_ERROR_NAMES.has(root.name)) return true;
  if (typeof root.code === 'string' && OUTAGE_CODES.has(root.code)) return true;
  return typeof root.name === 'string' && root.name.startsWith('KafkaJS') && root.retriable === true;
}

/** The broker error type of a commit failure that a rejoin of the group fixes, looked up along the `cause` chain. */
function rejoinErrorOf(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; typeof e === 'object' && e !== null && depth < 10; depth++) {
    const { type, cause } = e as { type?: unknown; cause?: unknown };
    if (typeof type === 'string' && REJOIN_ERRORS.has(type)) return type;
    if (cause === e) break;
    e = cause;
  }
  return undefined;
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return `${err.name}: ${err.message}`;
}

/** Exponential backoff with ±20 % jitter, for restarts and commit retries during an outage. */
function backoff(attempt: number, initialMs = RESTART_INITIAL_MS): number {
  const base = Math.min(RESTART_MAX_MS, initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

function atLeastErrors(level: KafkaLogLevel | 'nothing'): KafkaLogLevel {
  return level === 'nothing' ? 'error' : level;
}

/** `wait(ms)` resolves on the next `wake()` or after `ms`, whichever comes first. */
function wakeable(): { wake: () => void; wait: (ms: number) => Promise<void> } {
  const waiters = new Set<() => void>();
  return {
    wake: () => {
      const all = [...waiters];
      waiters.clear();
      for (const w of all) w();
    },
    wait: (ms) =>
      new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        waiters.add(done);
      }),
  };
}

function keyOf(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

function toRecord(topic: string, partition: number, offset: bigint, m: KafkaMessage, size: number): KafkaRecord {
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

function toHeaders(headers: KafkaMessage['headers']): Readonly<Record<string, Uint8Array | undefined>> {
  if (headers === undefined) return EMPTY_HEADERS;
  let out: Record<string, Uint8Array | undefined> | undefined;
  for (const name in headers) {
    const v = headers[name];
    out ??= {};
    // A repeated header arrives as an array: keep the last value, as most clients do.
    const last = Array.isArray(v) ? v[v.length - 1] : v;
    out[name] = typeof last === 'string' ? Buffer.from(last) : last;
  }
  return out ?? EMPTY_HEADERS;
}

/**
 * The group's committed offsets. A broker that has just started answers "coordinator not
 * available" / "not the coordinator" until its offsets topic is ready: retriable errors are
 * retried with backoff (about 30 s in all) before giving up.
 */
export async function fetchCommitted(admin: Pick<Admin, 'fetchOffsets'>, groupId: string, topics: readonly string[], maxAttempts = 8): Promise<Map<string, bigint>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetchCommittedOnce(admin, groupId, topics);
    } catch (err) {
      if ((err as { retriable?: unknown }).retriable !== true || attempt >= maxAttempts) throw err;
      await new Promise((resolve) => setTimeout(resolve, backoff(attempt, 200)));
    }
  }
}

async function fetchCommittedOnce(admin: Pick<Admin, 'fetchOffsets'>, groupId: string, topics: readonly string[]): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  const result = await admin.fetchOffsets({ groupId, topics: [...topics] });
  for (const t of result) {
    for (const p of t.partitions) {
      const o = BigInt(p.offset);
      if (o >= 0n) out.set(keyOf(t.topic, p.partition), o);
    }
  }
  return out;
}

function secretsOf(options: FromKafkaOptions): string[] {
  const out: string[] = [];
  const sasl = options.sasl as { password?: unknown; secretAccessKey?: unknown; sessionToken?: unknown } | undefined;
  for (const v of [sasl?.password, sasl?.secretAccessKey, sasl?.sessionToken]) {
    if (typeof v === 'string' && v.length > 0) out.push(v);
  }
  return out;
}

function errorText(err: unknown, redact: (s: string) => string): string {
  return redact(err instanceof Error ? err.message : String(err));
}

/** The error as-is unless it mentions a secret; then a copy with the secret redacted. */
function sanitize(err: unknown, secrets: readonly string[], redact: (s: string) => string): unknown {
  if (secrets.length === 0) return err;
  const text = err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err);
  if (!secrets.some((s) => text.includes(s))) return err;
  const copy = new Error(errorText(err, redact));
  copy.name = err instanceof Error ? err.name : 'Error';
  return copy;
}

function toKafkaLogLevel(level: KafkaLogLevel | 'nothing'): LogLevel {
  switch (level) {
    case 'nothing':
      return LogLevel.NOTHING;
    case 'error':
      return LogLevel.ERROR;
    case 'warn':
      return LogLevel.WARN;
    case 'info':
      return LogLevel.INFO;
    case 'debug':
      return LogLevel.DEBUG;
  }
}

/**
 * Broker answers that kafkajs (or this source) retries by itself — a rebalance, a coordinator
 * that moved or is still loading, a leader election, a topic created a moment ago. kafkajs logs
 * them at ERROR; they need no person, so they are logged lower.
 */
const RETRIED_ANSWERS = [
  'The group coordinator is not available',
  'This is not the correct coordinator for this group',
  'The coordinator is loading and hence can\'t process requests',
  'The group is rebalancing, so a rejoin is needed',
  'Specified group generation id is not valid',
  'The coordinator is not aware of this member',
  'There is no leader for this topic-partition as we are in the middle of a leadership election',
  'This server is not the leader for that topic-partition',
  'The request timed out',
];

/**
 * The level a kafkajs log line is logged at: its own, except that ERROR lines about a condition
 * that is retried by itself become `debug` (a broker's answer to one request, which the caller
 * retries) or `warn` (kafkajs re-joining, restarting, or looking for a broker: health reports
 * an outage that lasts).
 */
function clientLogLevel(entry: LogEntry): KafkaLogLevel {
  const level = fromKafkaLogLevel(entry.level);
  if (level !== 'error') return level;
  const { message, error } = entry.log as { message: string; error?: unknown };
  const text = `${message} ${typeof error === 'string' ? error : ''}`;
  if (entry.namespace === 'Connection' && RETRIED_ANSWERS.some((a) => text.includes(a))) return 'debug';
  if (
    RETRIED_ANSWERS.some((a) => text.includes(a)) ||
    message.startsWith('Restarting the consumer') ||
    message.startsWith('Failed to connect to seed broker') ||
    message.startsWith('Failed to connect to broker, reconnecting')
  ) {
    return 'warn';
  }
  return level;
}

function fromKafkaLogLevel(level: LogLevel): KafkaLogLevel {
  if (level <= LogLevel.ERROR) return 'error';
  if (level === LogLevel.WARN) return 'warn';
  if (level === LogLevel.INFO) return 'info';
  return 'debug';
}

const RANK: Record<KafkaLogLevel | 'nothing', number> = { nothing: 0, error: 1, warn: 2, info: 4, debug: 5 };

function makeLogger(
  logger: KafkaLogger | undefined,
  redact: (s: string) => string,
  threshold: KafkaLogLevel | 'nothing',
): KafkaLogger {
  return (level, message, extra) => {
    if (RANK[level] > RANK[threshold]) return;
    let safeExtra: Record<string, unknown>;
    try {
      safeExtra = JSON.parse(redact(JSON.stringify(extra, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)))) as Record<
        string,
        unknown
      >;
    } catch {
      safeExtra = {};
    }
    const text = redact(message);
    if (logger) {
      logger(level, text, safeExtra);
      return;
    }
    process.stderr.write(`${JSON.stringify({ level, message: text, ...safeExtra })}\n`);
  };
}

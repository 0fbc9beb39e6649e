/**
 * The Kafka source assembled: one `OffsetTracker`, in-flight budget, health and assignment per
 * source, one `Session` per subscription of `records$`, the commit side for `commitOffsets()`.
 */
import { BehaviorSubject, Observable } from 'rxjs';
import { defaultLogger, registerSecret } from '../../core/logger.ts';
import type { KafkaRecord, RecordRef } from '../../types.ts';
import { OffsetTracker } from '../offsetTracker.ts';
import type { CommittedOffset, OffsetCommitTarget, TrackerStats } from '../offsetTracker.ts';
import { InFlightBudget } from './budget.ts';
import { signal, systemClock } from './clock.ts';
import type { Clock } from './clock.ts';
import { commitAcknowledged } from './commits.ts';
import { ConnectionHealth } from './health.ts';
import type { KafkaHealth } from './health.ts';
import { thresholdLogger } from './logging.ts';
import { resolveOptions } from './options.ts';
import type { FromKafkaOptions } from './options.ts';
import { Session } from './session.ts';
import type { SessionContext } from './session.ts';

export type KafkaSourceStats = TrackerStats;

/** A Kafka source: the records, and the commit side used by `commitOffsets()`. */
export interface KafkaSource extends OffsetCommitTarget {
  /**
   * Cold: subscribing connects and runs the consumer, unsubscribing stops it. One subscriber
   * at a time.
   */
  readonly records$: Observable<KafkaRecord>;
  /**
   * Emits when the consumer stops reading because the in-flight budget is used up, and again
   * each time it finds the budget still used up (after an acknowledgement, at least every
   * second). Nothing more arrives until something is acknowledged, so buffers downstream should
   * write what they hold: give it to `bufferTime({ flush })`. Without that, batches that cannot
   * fill (e.g. eight topics sharing a budget smaller than eight full batches) wait for their
   * time span while the consumer waits for them.
   */
  readonly saturated$: Observable<void>;
  /**
   * The partitions assigned to the consumer now, as `topic/partition` strings: emits the new set
   * on every change (a group join that assigns or revokes, the stop: empty) and replays the
   * latest to each new subscriber (empty before the first join). Never completes.
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

/** Time and scheduling of a source (fakes in unit tests). */
export interface SourceRuntime {
  readonly clock: Clock;
  /** Runs a hand-off slice on a later turn; default `setImmediate`. */
  readonly schedule?: (run: () => void) => void;
}

/** `fromKafka` with its clock and scheduler given. */
export function createKafkaSource(options: FromKafkaOptions, runtime: SourceRuntime = { clock: systemClock }): KafkaSource {
  const settings = resolveOptions(options);
  const { clock } = runtime;
  registerSecret(options.sasl?.password, typeof options.ssl === 'object' ? options.ssl.passphrase : undefined);
  const log = thresholdLogger(options.logger ?? defaultLogger(), options.logLevel ?? 'warn');
  const tracker = new OffsetTracker();
  const budget = new InFlightBudget(tracker, { maxRecords: settings.maxRecords, maxBytes: settings.maxBytes, clock });
  const health = new ConnectionHealth({ groupId: settings.groupId, clock, log, onChange: options.onHealthChange });
  const state = signal(clock);
  const assignment = new BehaviorSubject<ReadonlySet<string>>(new Set());
  const publishAssignment = (next: ReadonlySet<string>): void => {
    const now = assignment.getValue();
    if (now.size === next.size && [...next].every((k) => now.has(k))) return;
    assignment.next(next);
  };
  let session: Session | undefined;
  let holds = 0;
  /** The last stop's disconnect. */
  let closing: Promise<void> = Promise.resolve();

  const ctx: SessionContext = {
    settings,
    clock,
    schedule: runtime.schedule,
    tracker,
    budget,
    maxReadAhead: settings.maxReadAhead,
    health,
    state,
    log,
    isCurrent: (s) => session === s,
    assignmentChanged: (assigned) => {
      if (session !== undefined) publishAssignment(assigned);
    },
  };

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
    closing = s.stop();
    // Disconnecting on purpose is no outage: nothing is reported.
    health.reset();
    budget.wake();
    state.wake();
    tracker.clear();
    publishAssignment(new Set());
  };

  const records$ = new Observable<KafkaRecord>((subscriber) => {
    if (session !== undefined) {
      subscriber.error(new Error('fromKafka: records$ has one subscriber at a time (the previous run is still open)'));
      return undefined;
    }
    const release = retain();
    tracker.clear();
    const s = new Session(ctx, subscriber);
    session = s;
    s.start();
    return () => {
      s.detach();
      budget.wake();
      release();
    };
  });

  return {
    records$,
    saturated$: budget.saturated$,
    assignment$: assignment.asObservable(),
    acknowledge(refs: readonly RecordRef[]): void {
      if (tracker.acknowledge(refs) > 0) budget.wake();
    },
    release(refs: readonly RecordRef[]): void {
      if (tracker.release(refs) > 0) budget.wake();
    },
    commit: () => commitAcknowledged({ groupId: settings.groupId, tracker, state, clock, log }, () => session),
    retain,
    drain(): void {
      session?.complete();
    },
    closed: () => closing,
    stats: () => tracker.stats(),
    health: () => health.snapshot(),
  };
}

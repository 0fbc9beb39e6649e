/**
 * One subscription of `records$`: its client, from start-up look-ups and group joins to the
 * stop; the consumer run again with backoff after a crash the client does not recover from;
 * health from the client's events and a stall watchdog; completion (bounded mode, drain) and
 * failure of the subscriber.
 */
import type { Subscriber } from 'rxjs';
import { redactError } from '../../core/logger.ts';
import type { Logger } from '../../core/logger.ts';
import { backoffDelay } from '../../core/retry.ts';
import type { KafkaRecord } from '../../types.ts';
import { Handoff } from '../handoff.ts';
import type { OffsetTracker } from '../offsetTracker.ts';
import { RESTART_POLICY } from './backoff.ts';
import { handleBatch } from './batch.ts';
import type { BatchContext, BatchSession } from './batch.ts';
import { BoundedProgress } from './bounded.ts';
import { WAIT_SLICE_MS } from './budget.ts';
import type { InFlightBudget } from './budget.ts';
import { keyOf } from './client.ts';
import type { BatchHandler, ClientCrash, KafkaClient, KafkaClientEvents, TopicPartition } from './client.ts';
import type { Clock, Signal } from './clock.ts';
import { confirm } from './commits.ts';
import type { CommitSession } from './commits.ts';
import type { ConnectionHealth } from './health.ts';
import { describeError } from './logging.ts';
import { fetchCommitted, planStart } from './lookups.ts';
import type { SourceSettings } from './options.ts';
import { resumeAt } from './resume.ts';
import type { ResumeSession } from './resume.ts';

/** What the sessions of one source share. */
export interface SessionContext extends BatchContext {
  readonly settings: SourceSettings;
  readonly clock: Clock;
  /** Runs a hand-off slice on a later turn (default `setImmediate`). */
  readonly schedule: ((run: () => void) => void) | undefined;
  readonly tracker: OffsetTracker;
  readonly budget: InFlightBudget;
  readonly health: ConnectionHealth;
  /** Woken on every change of the consumer's state (joined, stopped, crashed, draining). */
  readonly state: Signal;
  readonly log: Logger;
  /** This session is the source's current one (not stopped and replaced). */
  isCurrent(s: Session): boolean;
  /** The partitions assigned to the current session changed (`topic/partition` strings). */
  assignmentChanged(assigned: ReadonlySet<string>): void;
}

export class Session implements BatchSession, CommitSession, ResumeSession {
  readonly #ctx: SessionContext;
  subscriber: Subscriber<KafkaRecord> | undefined;
  client: KafkaClient | undefined;
  /** Emitting records (false once completed, failed or unsubscribed). */
  emitting = true;
  /** Consumer run loop started and not stopped. */
  running = false;
  stopped = false;
  joined = false;
  readonly assigned = new Set<string>();
  readonly progress: BoundedProgress | undefined;
  /** Partitions without a committed offset at start, with the offset to seek to (timestamp start). */
  readonly seekAtStart = new Map<string, bigint>();
  readonly ready = new Map<string, Promise<void>>();
  readonly confirmed = new Map<string, bigint>();
  readonly handoff: Handoff<KafkaRecord>;
  waitingForBudget = 0;
  /** Restarts this session scheduled itself after a crash the client does not restart from. */
  restarts = 0;
  #cancelRestart: (() => void) | undefined;
  #cancelWatchdog: (() => void) | undefined;
  readonly #handler: BatchHandler;

  constructor(ctx: SessionContext, subscriber: Subscriber<KafkaRecord>) {
    this.#ctx = ctx;
    this.subscriber = subscriber;
    this.progress = ctx.settings.untilCaughtUp ? new BoundedProgress() : undefined;
    this.#handler = (batch) => handleBatch(ctx, this, batch);
    this.handoff = new Handoff<KafkaRecord>({
      deliver: (record) => {
        if (!this.emitting || !this.subscriber) return;
        try {
          this.subscriber.next(record);
        } catch (err) {
          this.fail(err);
        }
      },
      // Every record read is downstream now: if the budget is still spent, ask for writes.
      onEmpty: () => {
        if (this.waitingForBudget > 0) ctx.budget.saturated();
      },
      // A batch handler may be waiting for the read-ahead queue to shorten.
      onSlice: () => ctx.budget.wake(),
      ...(ctx.schedule !== undefined ? { schedule: ctx.schedule } : {}),
    });
  }

  /** Creates the client and runs it; a failure to start errors the subscriber. */
  start(): void {
    this.#start().catch((err: unknown) => this.fail(err));
  }

  async #start(): Promise<void> {
    const { settings, clock } = this.#ctx;
    const client = settings.client(settings.clientConfig, this.#events());
    this.client = client;
    this.#cancelWatchdog = clock.interval(() => this.#watch(), Math.min(WAIT_SLICE_MS, settings.stallMs));
    await client.connect();
    if (this.stopped) return;
    if (settings.untilCaughtUp || typeof settings.startFrom === 'object') {
      const plan = await planStart(client, settings.topics, settings.startFrom, clock);
      for (const [key, offset] of plan.seeks) this.seekAtStart.set(key, offset);
      this.progress?.start(plan.hwm, plan.positions);
      if (!settings.untilCaughtUp && settings.resumeFrom === undefined) await client.closeLookups();
      if (this.stopped) return;
    }
    await client.subscribe(settings.topics, settings.startFrom === 'earliest');
    if (this.stopped) return;
    this.running = true;
    await client.run(this.#handler);
  }

  #events(): KafkaClientEvents {
    const { health, state, tracker, log } = this.#ctx;
    return {
      joined: (assignment) => {
        if (!this.#current()) return;
        // Also after the client restarted a crashed consumer: it runs again.
        this.running = true;
        this.restarts = 0;
        this.#onAssign(assignment);
        if (!this.emitting) this.#pauseAll('pause after a restart failed'); // drained meanwhile: fetch nothing more
        this.#markUp();
        state.wake();
      },
      crashed: (crash) => {
        if (!this.#current()) return;
        this.#onCrash(crash);
        state.wake();
      },
      stopped: () => {
        this.running = false;
        state.wake();
      },
      answered: () => {
        health.contact();
        // A short outage the client rode out without a crash: the running member is answered again.
        if (health.down && this.running && this.joined) this.#markUp();
      },
      committed: (offsets) => confirm(this.confirmed, offsets),
      skipped: (topic, partition, lastOffset) => {
        const key = keyOf(topic, partition);
        if (!this.#ctx.isCurrent(this) || !this.assigned.has(key)) return;
        const next = lastOffset + 1n;
        tracker.skipTo(topic, partition, next);
        if (!this.progress) return;
        this.progress.advanceCapped(key, next);
        this.checkCaughtUp();
      },
      log: (line) => {
        if (line.error) health.clientError(line.message);
        log[line.level](line.namespace === undefined ? line.message : `[${line.namespace}] ${line.message}`, line.extra);
      },
    };
  }

  #current(): boolean {
    return this.#ctx.isCurrent(this) && !this.stopped;
  }

  #onAssign(assignment: readonly TopicPartition[]): void {
    const { tracker, log, settings } = this.#ctx;
    const before = new Set(this.assigned);
    this.assigned.clear();
    for (const a of assignment) this.assigned.add(keyOf(a.topic, a.partition));
    tracker.reassign(assignment);
    this.joined = true;
    const names = assignment.map((a) => `${a.topic}/${a.partition}`);
    log.info('partitions assigned', { groupId: settings.groupId, assigned: names });
    this.#ctx.assignmentChanged(new Set(names));
    for (const a of assignment) {
      const key = keyOf(a.topic, a.partition);
      const seekTo = this.seekAtStart.get(key);
      if (seekTo !== undefined && this.client) {
        this.seekAtStart.delete(key);
        this.client.seek(a.topic, a.partition, seekTo);
      }
    }
    const { resumeFrom } = settings;
    if (resumeFrom) {
      for (const a of assignment) {
        const key = keyOf(a.topic, a.partition);
        if (before.has(key)) continue;
        this.ready.set(
          key,
          resumeAt(this.#ctx, this, a.topic, a.partition, resumeFrom).catch((err: unknown) => this.fail(err)),
        );
      }
    }
    if (this.progress) {
      // Another member may have advanced these partitions: re-read the group's offsets.
      this.#refreshCommitted().then(
        () => this.checkCaughtUp(),
        (err: unknown) => this.fail(err),
      );
    }
  }

  async #refreshCommitted(): Promise<void> {
    const { client, progress } = this;
    if (!client || !progress) return;
    progress.raise(await fetchCommitted(client, this.#ctx.settings.topics, this.#ctx.clock));
  }

  #onCrash({ error, restarting, restartable }: ClientCrash): void {
    if (restarting) {
      // The client runs the consumer again after its retry time; it rejoins once the broker is back.
      this.markDown(describeError(error));
    } else if (restartable) {
      this.markDown(describeError(error));
      this.#scheduleRestart();
    } else {
      this.fail(error);
    }
  }

  /**
   * After a crash the client does not restart from although the cause is a broker outage
   * (e.g. no group coordinator found), the consumer runs again, with backoff.
   */
  #scheduleRestart(): void {
    if (this.stopped || this.#cancelRestart !== undefined) return;
    const { clock, log, settings } = this.#ctx;
    this.restarts += 1;
    const wait = backoffDelay(this.restarts, RESTART_POLICY, clock.random);
    log.warn('restarting the consumer', { groupId: settings.groupId, attempt: this.restarts, inMs: wait });
    this.#cancelRestart = clock.timeout(() => {
      this.#cancelRestart = undefined;
      const { client } = this;
      if (this.stopped || !this.#ctx.isCurrent(this) || !this.emitting || !client) return;
      client.run(this.#handler).catch((err: unknown) => {
        if (this.stopped) return;
        if (!client.isRetriable(err)) {
          this.fail(err);
          return;
        }
        this.markDown(describeError(err));
        this.#scheduleRestart();
      });
    }, wait);
  }

  /** A consuming member that heard from no broker for the stall timeout is reported down. */
  #watch(): void {
    this.#ctx.health.tick();
    if (!this.#current() || !this.emitting || !this.running) return;
    const reason = this.#ctx.health.stalled(this.#ctx.settings.stallMs);
    if (reason !== undefined) this.markDown(reason);
  }

  #markUp(): void {
    this.#ctx.health.contact();
    if (this.#current()) this.#ctx.health.up();
  }

  markDown(reason: string): void {
    if (this.#current()) this.#ctx.health.markDown(reason);
  }

  #pauseAll(failure: string): void {
    try {
      this.client?.pause(this.#ctx.settings.topics.map((topic) => ({ topic })));
    } catch (err) {
      this.#ctx.log.warn(failure, { error: err });
    }
  }

  /** Bounded mode: completes once every assigned partition reached its start high-water mark. */
  checkCaughtUp(): void {
    if (!this.progress || !this.joined || !this.emitting) return;
    if (this.progress.caughtUp(this.assigned)) this.complete();
  }

  /** Errors the subscriber (secrets redacted); records queued are dropped. */
  fail(err: unknown): void {
    if (!this.emitting || !this.subscriber) return;
    this.emitting = false;
    this.handoff.clear();
    this.subscriber.error(redactError(err));
  }

  /** Completes the subscriber after every record read; fetching stops, the consumer stays in its group. */
  complete(): void {
    if (!this.emitting || !this.subscriber) return;
    // Everything read goes downstream before the end.
    this.handoff.flush();
    if (!this.emitting || !this.subscriber) return;
    this.emitting = false;
    const subscriber = this.subscriber;
    this.#ctx.budget.wake();
    this.#ctx.state.wake();
    this.#pauseAll('pause after catching up failed');
    subscriber.complete();
  }

  /** The subscriber left: nothing more is emitted (the consumer stays until released). */
  detach(): void {
    this.emitting = false;
    this.subscriber = undefined;
    this.handoff.clear();
  }

  /** Stops for good: timers cancelled, the client disconnected (resolves once it left its group). */
  stop(): Promise<void> {
    this.stopped = true;
    this.detach();
    this.#cancelRestart?.();
    this.#cancelRestart = undefined;
    this.#cancelWatchdog?.();
    this.#cancelWatchdog = undefined;
    const { client } = this;
    return (async () => {
      try {
        await client?.disconnect();
      } catch (err) {
        this.#ctx.log.warn('consumer disconnect failed', { error: err });
      }
      this.running = false;
    })();
  }
}

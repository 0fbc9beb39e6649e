/**
 * The wire client: kafkajs for the group (membership, heartbeats, rebalances, commits, look-ups)
 * and a fetcher of its own for the records — Fetch v11 to each partition's leader, RecordBatch
 * v2 decoded in the response buffer (records.ts), one object per record, keys and values as
 * views. kafkajs's consumer runs with every topic paused, so it only keeps the membership; the
 * fetcher reads what the group assigned, from the group's committed offsets (or the log's start
 * or end without one, or a seek), exactly as kafkajs would, and hands the source one batch per
 * partition per response, one at a time: the handler's promise is the backpressure (a partition
 * is not fetched again while its batch is being handled).
 *
 * What kafkajs itself would do on a rebalance is kept: every partition of a new assignment
 * starts again from the committed offset (the source refuses what it already emitted), batches
 * of the previous generation stop running, and a seek makes the partition's fetched batches stale.
 */
import { RxlakeError, isRetriable } from '../../../core/errors.ts';
import { backoffDelay } from '../../../core/retry.ts';
import type { RetryPolicy } from '../../../core/retry.ts';
import { keyOf } from '../client.ts';
import type { BatchHandler, ClientBatch, ClientMessage, KafkaClient, KafkaClientConfig, KafkaClientEvents, KafkaClientFactory, TopicPartition } from '../client.ts';
import { kafkajsClient, tlsOptions } from '../kafkajsClient.ts';
import type { KafkajsSettings } from '../kafkajsClient.ts';
import { API_FETCH, Connection, EARLIEST, KafkaBrokerError, LATEST, OFFSET_OUT_OF_RANGE, checkVersions, fetchMetadata, listOffsets } from './protocol.ts';
import type { Metadata } from './protocol.ts';
import { decodeBatches, fetchRequest, parseFetch } from './records.ts';
import type { FetchPartition, FetchSizes } from './records.ts';
import { authenticate } from './sasl.ts';

/** Waits between attempts after a broker is away or a leader moved. */
const FETCH_RETRY: RetryPolicy = { initialMs: 200, maxMs: 10_000, jitter: 0.4 };

/**
 * Batches of a partition fetched ahead of the handler (a partition with this many waiting is not
 * fetched). 2 and 3 were measured on the bronze benchmark: no faster, more memory.
 */
const PREFETCH = 1;

/** Broker answers after which the partition's leader is looked up again. */
const LEADER_ERRORS = new Set([3, 5, 6, 9, 13, 56, 74, 75, 100]);

/**
 * The wire client for `fromKafka({ client })`: records fetched and decoded at the wire level,
 * the group kept by kafkajs (`settings` as for `kafkajsClient`).
 *
 * ## Example
 * ```ts
 * fromKafka({ brokers, groupId, topics, client: wireClient() });
 * ```
 *
 * @param settings kafkajs-only settings of the membership client.
 * @return A factory of wire clients.
 */
export function wireClient(settings: KafkajsSettings = {}): KafkaClientFactory {
  const membership = kafkajsClient(settings);
  return (config, events) => {
    let topics: readonly string[] = [];
    const fetcher = new WireFetcher(config, events);
    // eslint-disable-next-line prefer-const
    let inner: KafkaClient;
    fetcher.committedLookup = (t) => inner.committedOffsets(t);
    /** kafkajs fetches nothing: every topic paused (also in the consumer group of a restart). */
    const pauseInner = (): void => {
      try {
        inner.pause(topics.map((topic) => ({ topic })));
      } catch {
        // not running: nothing to pause
      }
    };
    inner = membership(config, {
      ...events,
      joined: (assignment) => {
        pauseInner();
        fetcher.assign(assignment);
        events.joined(assignment);
        fetcher.startPositions();
      },
      crashed: (crash) => {
        // Not a member any more: nothing fetched until the group is joined again.
        fetcher.assign([]);
        events.crashed(crash);
      },
      stopped: () => {
        fetcher.assign([]);
        events.stopped();
      },
      // kafkajs fetches nothing, so what it would skip means nothing here.
      skipped: () => undefined,
    });
    return {
      connect: () => inner.connect(),
      subscribe: async (t, fromBeginning) => {
        topics = [...t];
        fetcher.subscribe(topics, fromBeginning);
        await inner.subscribe(t, fromBeginning);
        // While the group is joined: the look-up connection (committed offsets at the join) and
        // the leaders' connections open, so the first fetch does not wait for them.
        fetcher.warmUp();
      },
      run: async (handler) => {
        fetcher.start(handler);
        const running = inner.run(() => {
          pauseInner();
          return Promise.resolve();
        });
        pauseInner();
        await running;
      },
      pause: (t) => fetcher.pause(t),
      seek: (topic, partition, offset) => fetcher.seek(topic, partition, offset),
      commit: (offsets) => inner.commit(offsets),
      disconnect: async () => {
        await fetcher.stop();
        await inner.disconnect();
      },
      committedOffsets: (t) => inner.committedOffsets(t),
      topicOffsets: (t) => inner.topicOffsets(t),
      offsetsForTimestamp: (t, ts) => inner.offsetsForTimestamp(t, ts),
      closeLookups: () => inner.closeLookups(),
      describeTopics: (t) => inner.describeTopics(t),
      isRetriable: (err) => inner.isRetriable(err) || isRetriable(err),
      rejoinReason: (err) => inner.rejoinReason(err),
    };
  };
}

/** An assigned partition's fetch state. */
interface Part {
  readonly topic: string;
  readonly partition: number;
  /** The next offset to fetch; undefined until known (committed offset, reset or seek). */
  position: number | undefined;
  /** Bumped by a seek or a reset: batches fetched before are stale. */
  epoch: number;
  paused: boolean;
  /** Its batches waiting for or in the handler: it is fetched again only below `PREFETCH`. */
  queued: number;
}

interface QueuedBatch {
  readonly part: Part;
  readonly batch: ClientBatch;
}

/** The fetching half of the wire client. */
export class WireFetcher {
  readonly #config: KafkaClientConfig;
  readonly #events: KafkaClientEvents;
  readonly #sizes: FetchSizes;
  readonly #requestTimeoutMs: number;
  #topics: readonly string[] = [];
  #fromBeginning = false;
  #handler: BatchHandler | undefined;
  #stopped = false;
  #generation = 0;
  readonly #parts = new Map<string, Part>();
  /** Seeks of partitions not (yet) assigned, applied when they are. */
  readonly #pendingSeeks = new Map<string, number>();
  /** Topic-wide pauses (`pause([{ topic }])`), also of partitions assigned later. */
  readonly #pausedTopics = new Set<string>();
  #metadata: Metadata | undefined;
  #metadataReady: Promise<Metadata> | undefined;
  readonly #connections = new Map<string, Promise<Connection>>();
  /** A fetch loop per leader (node id). */
  readonly #loops = new Map<number, Promise<void>>();
  readonly #queue: QueuedBatch[] = [];
  #delivering: Promise<void> | undefined;
  #wakers: Array<() => void> = [];
  #ensureTimer: ReturnType<typeof setTimeout> | undefined;
  /** Backoff waits, ended by `stop()`. */
  readonly #onStop = new Set<() => void>();

  constructor(config: KafkaClientConfig, events: KafkaClientEvents) {
    this.#config = config;
    this.#events = events;
    const c = config.consumer;
    this.#sizes = {
      maxWaitMs: c.maxWaitTimeInMs ?? 5_000,
      minBytes: c.minBytes ?? 1,
      maxBytes: c.maxBytes ?? 10_485_760,
      maxBytesPerPartition: c.maxBytesPerPartition ?? 1_048_576,
      readCommitted: true,
    };
    this.#requestTimeoutMs = config.connection.requestTimeout ?? 30_000;
  }

  subscribe(topics: readonly string[], fromBeginning: boolean): void {
    this.#topics = topics;
    this.#fromBeginning = fromBeginning;
  }

  /** Opens the connections a first fetch needs (failures are left for the fetch to retry). */
  warmUp(): void {
    void this.#innerCommitted().catch(() => undefined);
    void this.#leaders().then(
      (md) => {
        for (const id of new Set([...md.leaders.values()].flatMap((m) => [...m.values()]))) void this.#connection(id).catch(() => undefined);
      },
      () => undefined,
    );
  }

  start(handler: BatchHandler): void {
    this.#handler = handler;
    this.#stopped = false;
  }

  /** A new assignment (a join, or none after a crash): every partition starts again from its committed offset. */
  assign(assignment: readonly TopicPartition[]): void {
    this.#generation += 1;
    this.#parts.clear();
    for (const { topic, partition } of assignment) {
      const key = keyOf(topic, partition);
      const seek = this.#pendingSeeks.get(key);
      this.#pendingSeeks.delete(key);
      this.#parts.set(key, { topic, partition, position: seek, epoch: 0, paused: this.#pausedTopics.has(topic), queued: 0 });
    }
    // Batches of the previous generation are no longer run.
    this.#queue.length = 0;
    this.#wake();
  }

  /** Looks up where each partition without a position starts (after the source's seeks at the join). */
  startPositions(): void {
    const generation = this.#generation;
    const missing = [...this.#parts.values()].filter((p) => p.position === undefined);
    if (missing.length === 0) {
      this.#ensureLoops();
      return;
    }
    void this.#retrying(`starting positions of ${missing.length} partitions`, generation, async () => {
      const committed = new Map((await this.#innerCommitted()).map((o) => [keyOf(o.topic, o.partition), Number(o.offset)]));
      const reset: Part[] = [];
      for (const p of missing) {
        if (p.position !== undefined || this.#generation !== generation) continue;
        const c = committed.get(keyOf(p.topic, p.partition));
        if (c !== undefined) p.position = c;
        else reset.push(p);
      }
      await this.#reset(reset, generation);
      this.#wake();
      this.#ensureLoops();
    });
  }

  /** Committed offsets come from the membership client (set by the factory). */
  committedLookup: ((topics: readonly string[]) => Promise<Array<{ topic: string; partition: number; offset: bigint }>>) | undefined;

  #innerCommitted(): Promise<Array<{ topic: string; partition: number; offset: bigint }>> {
    if (this.committedLookup === undefined) throw new Error('wire fetcher: no committed-offset look-up');
    return this.committedLookup(this.#topics);
  }

  /** Positions from the log's start or end (`fromBeginning`), for partitions without a committed offset or out of range. */
  async #reset(parts: readonly Part[], generation: number): Promise<void> {
    const byTopic = new Map<string, Part[]>();
    for (const p of parts) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p]);
    for (const [topic, ps] of byTopic) {
      const byLeader = new Map<number, Part[]>();
      const md = await this.#leaders();
      for (const p of ps) {
        const leader = md.leaders.get(topic)?.get(p.partition);
        if (leader === undefined) throw new KafkaBrokerError(5, `leader of ${topic} partition ${p.partition}`);
        byLeader.set(leader, [...(byLeader.get(leader) ?? []), p]);
      }
      for (const [leader, lp] of byLeader) {
        const conn = await this.#connection(leader);
        const offsets = await listOffsets(conn, topic, lp.map((p) => p.partition), true, this.#fromBeginning ? EARLIEST : LATEST, this.#requestTimeoutMs);
        for (const p of lp) {
          if (this.#generation !== generation || this.#parts.get(keyOf(p.topic, p.partition)) !== p) continue;
          const o = offsets.get(p.partition);
          if (o !== undefined && o >= 0 && p.position === undefined) {
            p.position = o;
            p.epoch += 1;
          }
        }
      }
    }
  }

  pause(topics: ReadonlyArray<{ readonly topic: string; readonly partitions?: readonly number[] }>): void {
    for (const t of topics) {
      if (t.partitions === undefined) this.#pausedTopics.add(t.topic);
      for (const p of this.#parts.values()) {
        if (p.topic === t.topic && (t.partitions === undefined || t.partitions.includes(p.partition))) p.paused = true;
      }
    }
  }

  seek(topic: string, partition: number, offset: bigint): void {
    const p = this.#parts.get(keyOf(topic, partition));
    if (p === undefined) {
      this.#pendingSeeks.set(keyOf(topic, partition), Number(offset));
      return;
    }
    p.position = Number(offset);
    p.epoch += 1;
    this.#wake();
    this.#ensureLoops();
  }

  /** Stops fetching; resolves once the batch in the handler (if any) is handled. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#ensureTimer);
    this.#ensureTimer = undefined;
    for (const done of [...this.#onStop]) done();
    this.#generation += 1;
    this.#parts.clear();
    this.#queue.length = 0;
    this.#wake();
    for (const c of this.#connections.values()) c.then((conn) => conn.close(), () => undefined);
    this.#connections.clear();
    await this.#delivering;
    await Promise.allSettled([...this.#loops.values()]);
  }

  #wake(): void {
    const w = this.#wakers;
    this.#wakers = [];
    for (const f of w) f();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wakers.push(done);
    });
  }

  /** Waits `ms` (a backoff), or less if the fetcher stops. */
  #backoff(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#onStop.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#onStop.add(done);
    });
  }

  /** Runs `fn` until it succeeds, the generation changes or the fetcher stops; retriable failures wait and retry, others crash. */
  async #retrying(what: string, generation: number, fn: () => Promise<void>): Promise<void> {
    for (let attempt = 1; !this.#stopped && this.#generation === generation; attempt++) {
      try {
        await fn();
        return;
      } catch (err) {
        if (this.#stopped || this.#generation !== generation) return;
        if (!isRetriable(err)) {
          this.#crash(err);
          return;
        }
        if (err instanceof KafkaBrokerError && LEADER_ERRORS.has(err.brokerCode)) this.#metadata = undefined;
        const wait = backoffDelay(attempt, FETCH_RETRY);
        this.#events.log({ level: attempt === 1 ? 'debug' : 'warn', error: false, namespace: 'WireFetcher', message: `${what} failed, trying again in ${wait} ms`, extra: { error: err instanceof Error ? err.message : String(err), attempt } });
        await this.#backoff(wait);
      }
    }
  }

  #crash(error: unknown): void {
    this.#events.log({ level: 'error', error: true, namespace: 'WireFetcher', message: `fetching stopped: ${error instanceof Error ? error.message : String(error)}`, extra: {} });
    this.#generation += 1;
    this.#parts.clear();
    this.#queue.length = 0;
    this.#events.crashed({ error, restarting: false, restartable: false });
  }

  /** The leaders of the subscribed topics (looked up again after a leader error). */
  #leaders(): Promise<Metadata> {
    if (this.#metadata !== undefined) return Promise.resolve(this.#metadata);
    this.#metadataReady ??= (async () => {
      try {
        let last: Error | undefined;
        for (const address of this.#config.brokers) {
          try {
            const conn = await this.#connectionTo(address);
            const md = await fetchMetadata(conn, this.#topics, this.#requestTimeoutMs);
            this.#metadata = md;
            // Leaders may have moved: a loop for each new one (a loop exits once it leads nothing).
            this.#scheduleEnsure(0);
            return md;
          } catch (err) {
            last = err instanceof Error ? err : new Error(String(err));
          }
        }
        throw last ?? new RxlakeError('no Kafka broker configured', { code: 'KAFKA_CONFIG' });
      } finally {
        this.#metadataReady = undefined;
      }
    })();
    return this.#metadataReady;
  }

  async #connection(nodeId: number): Promise<Connection> {
    const md = await this.#leaders();
    const address = md.brokers.get(nodeId);
    if (address === undefined) {
      this.#metadata = undefined;
      throw new KafkaBrokerError(8, `broker ${nodeId}`);
    }
    return this.#connectionTo(address);
  }

  #connectionTo(address: string): Promise<Connection> {
    let c = this.#connections.get(address);
    if (c === undefined) {
      c = (async () => {
        const conn = await Connection.open(address, {
          clientId: this.#config.clientId,
          tls: this.#config.ssl === undefined || this.#config.ssl === false ? undefined : tlsOptions(this.#config.ssl),
          connectTimeoutMs: this.#config.connection.connectionTimeout ?? 10_000,
          onClose: () => {
            if (this.#connections.get(address) === c) this.#connections.delete(address);
          },
        });
        try {
          if (this.#config.sasl !== undefined) await authenticate(conn, this.#config.sasl, this.#requestTimeoutMs);
          await checkVersions(conn);
        } catch (err) {
          conn.close();
          throw err;
        }
        return conn;
      })();
      this.#connections.set(address, c);
      c.catch(() => {
        if (this.#connections.get(address) === c) this.#connections.delete(address);
      });
    }
    return c;
  }

  /** Starts a fetch loop for every leader of a fetchable partition that has none. */
  #ensureLoops(): void {
    if (this.#stopped) return;
    void this.#leaders().then(
      (md) => {
        let missingLeader = false;
        for (const p of this.#parts.values()) {
          const leader = md.leaders.get(p.topic)?.get(p.partition);
          if (leader === undefined) {
            missingLeader = true;
            continue;
          }
          if (!this.#loops.has(leader)) {
            const loop = this.#loop(leader).finally(() => {
              if (this.#loops.get(leader) === loop) this.#loops.delete(leader);
              // Partitions it no longer leads, or a crash of the loop: others take over.
              if (!this.#stopped && this.#parts.size > 0) this.#scheduleEnsure(100);
            });
            this.#loops.set(leader, loop);
          }
        }
        if (missingLeader) {
          this.#metadata = undefined;
          this.#scheduleEnsure(backoffDelay(1, FETCH_RETRY));
        }
      },
      () => this.#scheduleEnsure(backoffDelay(2, FETCH_RETRY)),
    );
  }

  /** Runs `#ensureLoops` after `ms`, unless a run is pending already (one at a time, however many ask). */
  #scheduleEnsure(ms: number): void {
    if (this.#ensureTimer !== undefined || this.#stopped) return;
    this.#ensureTimer = setTimeout(() => {
      this.#ensureTimer = undefined;
      this.#ensureLoops();
    }, ms);
  }

  /** Fetches what `leader` leads of the assignment, while it leads any of it. */
  async #loop(leader: number): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      const md = await this.#leaders().catch(() => undefined);
      if (md === undefined) return;
      const led = [...this.#parts.values()].filter((p) => md.leaders.get(p.topic)?.get(p.partition) === leader);
      if (led.length === 0) return;
      const ready = led.filter((p) => p.position !== undefined && !p.paused && p.queued < PREFETCH);
      if (ready.length === 0) {
        await this.#sleep(this.#sizes.maxWaitMs);
        continue;
      }
      const generation = this.#generation;
      const sent = ready.map((p) => ({ part: p, epoch: p.epoch, offset: p.position as number }));
      const byTopic = new Map<string, FetchPartition[]>();
      for (const s of sent) byTopic.set(s.part.topic, [...(byTopic.get(s.part.topic) ?? []), { partition: s.part.partition, offset: s.offset }]);
      let body: Buffer;
      try {
        const conn = await this.#connection(leader);
        body = await conn.request(API_FETCH, 11, fetchRequest(this.#sizes, byTopic), 'Fetch', this.#sizes.maxWaitMs + this.#requestTimeoutMs);
        failures = 0;
      } catch (err) {
        if (this.#stopped) return;
        if (!isRetriable(err)) {
          this.#crash(err);
          return;
        }
        failures += 1;
        this.#metadata = undefined;
        const wait = backoffDelay(failures, FETCH_RETRY);
        this.#events.log({ level: 'warn', error: false, namespace: 'WireFetcher', message: `fetch from broker ${leader} failed, trying again in ${wait} ms`, extra: { error: err instanceof Error ? err.message : String(err) } });
        await this.#backoff(wait);
        continue;
      }
      this.#events.answered();
      if (this.#stopped || generation !== this.#generation) continue;
      try {
        this.#take(body, sent);
      } catch (err) {
        this.#crash(err);
        return;
      }
    }
  }

  /** Turns a Fetch response into batches for the handler (one per partition with records). */
  #take(body: Buffer, sent: ReadonlyArray<{ part: Part; epoch: number; offset: number }>): void {
    const byKey = new Map(sent.map((s) => [keyOf(s.part.topic, s.part.partition), s]));
    const generation = this.#generation;
    const scratch = new Set<number>();
    let leaderMoved = false;
    const outOfRange: Part[] = [];
    for (const f of parseFetch(body)) {
      const s = byKey.get(keyOf(f.topic, f.partition));
      if (s === undefined) continue;
      const part = s.part;
      // A seek, a reset or a new assignment since the request: this answer no longer matters.
      if (part.epoch !== s.epoch || this.#parts.get(keyOf(part.topic, part.partition)) !== part) continue;
      if (f.error !== 0) {
        if (f.error === OFFSET_OUT_OF_RANGE) outOfRange.push(part);
        else if (LEADER_ERRORS.has(f.error)) leaderMoved = true;
        else throw new KafkaBrokerError(f.error, `Fetch of ${f.topic} partition ${f.partition} at offset ${s.offset}`);
        continue;
      }
      if (f.batches.length === 0) continue;
      const messages: ClientMessage[] = [];
      const counts = { control: 0, aborted: 0, compressed: 0 };
      decodeBatches(body, f, s.offset, messages, scratch, counts);
      const next = Math.max(f.next, s.offset);
      part.position = next;
      const lastOffset = BigInt(next - 1);
      if (messages.length === 0) {
        // Only transaction markers or aborted records: nothing to hand over, but committable past them.
        this.#events.skipped(part.topic, part.partition, lastOffset);
        continue;
      }
      const epoch = part.epoch;
      const batch: ClientBatch = {
        topic: part.topic,
        partition: part.partition,
        messages,
        lastOffset,
        highWatermark: BigInt(f.highWatermark),
        resolveOffset: () => undefined,
        heartbeat: () => Promise.resolve(),
        isRunning: () => !this.#stopped && this.#generation === generation,
        isStale: () => part.epoch !== epoch || this.#parts.get(keyOf(part.topic, part.partition)) !== part,
      };
      part.queued += 1;
      this.#queue.push({ part, batch });
    }
    if (leaderMoved) this.#metadata = undefined;
    if (outOfRange.length > 0) {
      this.#events.log({ level: 'warn', error: false, namespace: 'WireFetcher', message: `offsets out of range (deleted by retention?): reading ${outOfRange.map((p) => `${p.topic}/${p.partition}`).join(', ')} again from the log's ${this.#fromBeginning ? 'start' : 'end'}`, extra: {} });
      for (const p of outOfRange) p.position = undefined;
      void this.#retrying('resetting offsets out of range', generation, async () => {
        await this.#reset(outOfRange, generation);
        this.#wake();
      });
    }
    this.#deliver();
  }

  /** Hands queued batches to the handler one at a time. */
  #deliver(): void {
    if (this.#delivering !== undefined || this.#queue.length === 0) return;
    this.#delivering = (async () => {
      try {
        for (let q = this.#queue.shift(); q !== undefined; q = this.#queue.shift()) {
          const handler = this.#handler;
          if (handler === undefined || this.#stopped) break;
          try {
            await handler(q.batch);
          } catch (err) {
            this.#crash(err);
          } finally {
            q.part.queued -= 1;
            this.#wake();
          }
        }
      } finally {
        this.#delivering = undefined;
      }
    })();
  }
}

/**
 * Fakes of the Kafka source's own interfaces for unit tests: a clock whose time moves only when
 * told, a `KafkaClient` driven by the test (joins, batches, crashes, commit answers), and a
 * hand-off scheduler that runs slices when told.
 */
import type { Observable } from 'rxjs';
import { pinoLogger } from '../../src/core/logger.ts';
import type { Logger } from '../../src/core/logger.ts';
import type {
  BatchHandler,
  ClientBatch,
  ClientMessage,
  KafkaClient,
  KafkaClientConfig,
  KafkaClientEvents,
  KafkaClientFactory,
  PartitionOffset,
  PartitionRange,
  TopicDescription,
  TopicPartition,
} from '../../src/sources/kafka/client.ts';
import type { Clock } from '../../src/sources/kafka/clock.ts';
import { createKafkaSource } from '../../src/sources/kafka/source.ts';
import type { KafkaSource } from '../../src/sources/kafka/source.ts';
import type { FromKafkaOptions } from '../../src/sources/kafka/options.ts';
import type { KafkaRecord } from '../../src/types.ts';

/** Lets every pending promise continuation run (one macrotask turn: no time passes). */
export async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

interface Timer {
  at: number;
  seq: number;
  run: () => void;
  every: number | undefined;
  cancelled: boolean;
}

/** A clock that moves only in `advance()`, running due timers in time order. `random()` is 0: backoff at its full delay, no jitter. */
export class FakeClock implements Clock {
  #now = 1_700_000_000_000;
  #seq = 0;
  #timers: Timer[] = [];
  /** Every timeout asked for, in ms (what backoff chose). */
  readonly timeouts: number[] = [];

  readonly now = (): number => this.#now;
  readonly random = (): number => 0;

  readonly timeout = (run: () => void, ms: number): (() => void) => {
    this.timeouts.push(ms);
    return this.#add(run, ms, undefined);
  };

  readonly interval = (run: () => void, ms: number): (() => void) => this.#add(run, ms, ms);

  /** Timers not fired nor cancelled. */
  get pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }

  /** Moves time forward by `ms`, firing each due timer at its time and letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    await settle();
    for (;;) {
      const due = this.#timers.filter((t) => !t.cancelled && t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.#now = due.at;
      if (due.every === undefined) due.cancelled = true;
      else due.at += due.every;
      due.run();
      await settle();
    }
    this.#now = end;
    this.#timers = this.#timers.filter((t) => !t.cancelled);
    await settle();
  }

  #add(run: () => void, ms: number, every: number | undefined): () => void {
    const timer: Timer = { at: this.#now + ms, seq: this.#seq++, run, every, cancelled: false };
    this.#timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }
}

/** A hand-off scheduler that runs slices only in `run()`. */
export class ManualScheduler {
  #queue: Array<() => void> = [];
  readonly schedule = (run: () => void): void => {
    this.#queue.push(run);
  };
  get pending(): number {
    return this.#queue.length;
  }
  /** Runs queued slices (and the ones they queue) until none is left. */
  run(): void {
    for (let i = 0; i < 10_000 && this.#queue.length > 0; i++) this.#queue.shift()?.();
  }
}

/** An error the fake client calls a broker outage. */
export class FakeOutage extends Error {
  override readonly name = 'FakeOutage';
}

/** A broker answer a rejoin fixes, wrapped the way a client may wrap it (the type on the cause). */
export function rejoinError(type: string): Error {
  return new Error('commit failed', { cause: Object.assign(new Error(type), { type }) });
}

/** A batch the test hands to the source; its flags can be changed while the handler waits. */
export interface FakeBatch extends ClientBatch {
  running: boolean;
  stale: boolean;
  readonly resolved: bigint[];
  heartbeats: number;
}

export interface BatchSpec {
  /** Offsets of the records; default values are `v<offset>`. */
  readonly offsets: readonly number[];
  /** Default the last record's offset (or highWatermark - 1 when empty). */
  readonly lastOffset?: number;
  readonly highWatermark?: number;
  /** Bytes of each value; default 10. */
  readonly valueBytes?: number;
  readonly headers?: ClientMessage['headers'];
  /** The consumer still runs the generation that fetched it; default true. */
  readonly running?: boolean;
}

export class FakeKafkaClient implements KafkaClient {
  readonly config: KafkaClientConfig;
  readonly events: KafkaClientEvents;
  readonly calls: string[] = [];
  handler: BatchHandler | undefined;
  runs = 0;
  readonly seeks: PartitionOffset[] = [];
  readonly paused: Array<{ topic: string; partitions?: readonly number[] }> = [];
  /** Commits sent (each a list of offsets). */
  readonly commits: PartitionOffset[][] = [];
  /** Answers of the next commits: an error to throw, or 'silent' (accepted, never confirmed). */
  readonly commitAnswers: Array<Error | 'silent'> = [];
  /** Answers of the next `run()` calls: an error rejects it. */
  readonly runAnswers: Error[] = [];
  /** The group's committed offsets, as the broker holds them. */
  readonly groupOffsets = new Map<string, bigint>();
  /** Partitions per topic, for `topicOffsets`. */
  readonly ranges = new Map<string, PartitionRange[]>();
  /** Per topic, the offset `offsetsForTimestamp` answers per partition. */
  readonly byTimestamp = new Map<string, Array<{ partition: number; offset: bigint }>>();
  /** Topics without a leader yet (`describeTopics` says they exist but are not ready). */
  readonly leaderless = new Set<string>();
  /** Errors of the next `committedOffsets()` calls. */
  readonly lookupFailures: Error[] = [];
  disconnected = false;
  lookupsClosed = 0;
  readonly #batches: FakeBatch[] = [];

  constructor(config: KafkaClientConfig, events: KafkaClientEvents) {
    this.config = config;
    this.events = events;
  }

  connect(): Promise<void> {
    this.calls.push('connect');
    return Promise.resolve();
  }
  subscribe(topics: readonly string[], fromBeginning: boolean): Promise<void> {
    this.calls.push(`subscribe ${topics.join(',')} ${fromBeginning}`);
    return Promise.resolve();
  }
  run(handler: BatchHandler): Promise<void> {
    this.calls.push('run');
    this.runs += 1;
    const answer = this.runAnswers.shift();
    if (answer !== undefined) return Promise.reject(answer);
    this.handler = handler;
    return Promise.resolve();
  }
  pause(topics: ReadonlyArray<{ readonly topic: string; readonly partitions?: readonly number[] }>): void {
    this.paused.push(...topics);
  }
  seek(topic: string, partition: number, offset: bigint): void {
    this.seeks.push({ topic, partition, offset });
    // As clients do: batches of the partition fetched before the seek no longer count.
    for (const b of this.#batches) if (b.topic === topic && b.partition === partition) b.stale = true;
  }
  commit(offsets: readonly PartitionOffset[]): Promise<void> {
    this.commits.push([...offsets]);
    const answer = this.commitAnswers.shift();
    if (answer === 'silent') return Promise.resolve();
    if (answer !== undefined) return Promise.reject(answer);
    for (const o of offsets) this.groupOffsets.set(`${o.topic}/${o.partition}`, o.offset);
    this.events.committed(offsets);
    return Promise.resolve();
  }
  disconnect(): Promise<void> {
    this.calls.push('disconnect');
    this.disconnected = true;
    return Promise.resolve();
  }
  committedOffsets(topics: readonly string[]): Promise<PartitionOffset[]> {
    this.calls.push(`committedOffsets ${topics.join(',')}`);
    const failure = this.lookupFailures.shift();
    if (failure !== undefined) return Promise.reject(failure);
    const out: PartitionOffset[] = [];
    for (const [key, offset] of this.groupOffsets) {
      const [topic = '', partition = ''] = key.split('/');
      if (topics.includes(topic)) out.push({ topic, partition: Number(partition), offset });
    }
    return Promise.resolve(out);
  }
  topicOffsets(topic: string): Promise<PartitionRange[]> {
    return Promise.resolve(this.ranges.get(topic) ?? []);
  }
  offsetsForTimestamp(topic: string): Promise<Array<{ partition: number; offset: bigint }>> {
    return Promise.resolve(this.byTimestamp.get(topic) ?? []);
  }
  describeTopics(topics: readonly string[]): Promise<TopicDescription[]> {
    this.calls.push(`describeTopics ${topics.join(',')}`);
    return Promise.resolve(topics.map((topic) => ({ topic, exists: this.ranges.has(topic), ready: this.ranges.has(topic) && !this.leaderless.has(topic) })));
  }
  closeLookups(): Promise<void> {
    this.lookupsClosed += 1;
    return Promise.resolve();
  }
  /** An outage (a `FakeOutage`, or wrapping one), or an answer the broker calls retriable. */
  isRetriable(err: unknown): boolean {
    return err instanceof FakeOutage || (err instanceof Error && err.cause instanceof FakeOutage) || (err as { retriable?: unknown }).retriable === true;
  }
  rejoinReason(err: unknown): string | undefined {
    for (let e: unknown = err, depth = 0; typeof e === 'object' && e !== null && depth < 10; depth++) {
      const { type } = e as { type?: unknown };
      if (typeof type === 'string' && ['ILLEGAL_GENERATION', 'REBALANCE_IN_PROGRESS', 'UNKNOWN_MEMBER_ID'].includes(type)) return type;
      e = (e as { cause?: unknown }).cause;
    }
    return undefined;
  }

  // ---- what the test drives ----

  /** The broker assigns exactly these partitions (a group join). */
  join(...assignment: Array<[topic: string, partition: number]>): void {
    this.events.joined(assignment.map(([topic, partition]): TopicPartition => ({ topic, partition })));
  }

  /** Hands a batch to the source's handler; returns the batch and the handler's promise. */
  fetch(topic: string, partition: number, spec: BatchSpec): { batch: FakeBatch; done: Promise<void> } {
    if (!this.handler) throw new Error('fake client: not running');
    const size = spec.valueBytes ?? 10;
    const messages: ClientMessage[] = spec.offsets.map((o) => ({
      offset: String(o),
      timestamp: String(1_700_000_000_000 + o),
      key: Buffer.from(`k${o}`),
      value: Buffer.alloc(size, o % 256),
      ...(spec.headers !== undefined ? { headers: spec.headers } : {}),
    }));
    const last = spec.lastOffset ?? spec.offsets[spec.offsets.length - 1] ?? (spec.highWatermark ?? 0) - 1;
    const batch: FakeBatch = {
      topic,
      partition,
      messages,
      lastOffset: BigInt(last),
      highWatermark: BigInt(spec.highWatermark ?? last + 1),
      running: spec.running ?? true,
      stale: false,
      resolved: [],
      heartbeats: 0,
      resolveOffset(offset) {
        this.resolved.push(offset);
      },
      heartbeat() {
        this.heartbeats += 1;
        return Promise.resolve();
      },
      isRunning() {
        return this.running;
      },
      isStale() {
        return this.stale;
      },
    };
    this.#batches.push(batch);
    return { batch, done: this.handler(batch) };
  }
}

/** A factory of fake clients; `clients` holds one per subscription, `last` the newest. */
export function fakeClients(prepare?: (client: FakeKafkaClient) => void): { factory: KafkaClientFactory; clients: FakeKafkaClient[]; readonly last: FakeKafkaClient } {
  const clients: FakeKafkaClient[] = [];
  return {
    factory: (config, events) => {
      const c = new FakeKafkaClient(config, events);
      prepare?.(c);
      clients.push(c);
      return c;
    },
    clients,
    get last(): FakeKafkaClient {
      const c = clients[clients.length - 1];
      if (!c) throw new Error('no client created yet');
      return c;
    },
  };
}

export interface Harness {
  readonly source: KafkaSource;
  readonly clock: FakeClock;
  readonly slices: ManualScheduler;
  readonly clients: ReturnType<typeof fakeClients>;
  readonly logs: string[];
  /** Subscribes `records$`, collecting records, the error and the completion. */
  subscribe(): Received;
}

export interface Received {
  readonly records: KafkaRecord[];
  error: unknown;
  completed: boolean;
  unsubscribe(): void;
  /** `topic/partition@offset` of every record received. */
  readonly ids: () => string[];
}

/**
 * The library's pino `Logger` at `debug`, each line landing in `lines` as `level message
 * {fields}`: what the source logs, redacted as the library's loggers redact it.
 */
export function captureLogger(lines: string[]): Logger {
  return pinoLogger({
    level: 'debug',
    destination: (line) => {
      const { level, time: _time, msg, ...fields } = JSON.parse(line) as Record<string, unknown>;
      lines.push(`${String(level)} ${String(msg)} ${JSON.stringify(fields)}`);
    },
  });
}

/** A source over fake clients, a fake clock and a manual hand-off scheduler. */
export function harness(options: Partial<FromKafkaOptions> = {}, prepare?: (client: FakeKafkaClient) => void): Harness {
  const clock = new FakeClock();
  const slices = new ManualScheduler();
  const clients = fakeClients(prepare);
  const logs: string[] = [];
  const source = createKafkaSource(
    {
      brokers: ['fake:9092'],
      groupId: 'g',
      topics: ['t'],
      client: clients.factory,
      logLevel: 'debug',
      logger: captureLogger(logs),
      ...options,
    },
    { clock, schedule: slices.schedule },
  );
  return {
    source,
    clock,
    slices,
    clients,
    logs,
    subscribe: () => collect(source.records$),
  };
}

export function collect(records$: Observable<KafkaRecord>): Received {
  const received: Received = {
    records: [],
    error: undefined,
    completed: false,
    unsubscribe: () => sub.unsubscribe(),
    ids: () => received.records.map((r) => `${r.topic}/${r.partition}@${r.offset}`),
  };
  const sub = records$.subscribe({
    next: (r) => received.records.push(r),
    error: (e: unknown) => {
      received.error = e;
    },
    complete: () => {
      received.completed = true;
    },
  });
  return received;
}

/** `topic/partition@offset` ids for offsets `from`..`to` of one partition. */
export function ids(topic: string, partition: number, from: number, to: number): string[] {
  const out: string[] = [];
  for (let o = from; o <= to; o++) out.push(`${topic}/${partition}@${o}`);
  return out;
}

/**
 * The synthetic rideshare producer: generates events for the bronze topics and produces them to
 * Kafka, optionally with a fraction of corrupted records, and writes a manifest of what it
 * produced (per topic, per corruption kind, per expected dead-letter error type).
 *
 * CLI: `npx tsx src/pipelines/rideshare/generate.ts --help`. Programmatic: `generateEvents(options)`.
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CompressionTypes, Kafka, Partitioners, logLevel } from 'kafkajs';
import type { KafkaConfig, Message, Producer, logCreator } from 'kafkajs';
import { RxlakeError } from '../../core/errors.ts';
import { sleep } from '../../core/retry.ts';
import { loadKafkaAccess } from '../../runtime/config.ts';
import { ConfigError } from '../../runtime/env.ts';
import { kafkaClientSecurity } from '../../runtime/kafkaSecurity.ts';
import { retryWhileTopicNotReady } from '../../sources/checkTopics.ts';
import { clientLogLevel } from '../../sources/kafka/kafkajsClient.ts';
import type { DeadLetterErrorType } from '../../types.ts';
import { CORRUPTION_KINDS, EXPECTED_ERROR_TYPE, corrupt, createEventGenerator, padJson } from './events.ts';
import type { CorruptionKind, EventGenerator } from './events.ts';
import { BRONZE_TOPICS, isBronzeTopic } from './topics.ts';
import type { BronzeTopic } from './topics.ts';

// ---------------------------------------------------------------------------------------------
// Public shapes
// ---------------------------------------------------------------------------------------------

export interface GenerateOptions {
  /** Broker list; default `KAFKA_BOOTSTRAP_SERVERS` or 127.0.0.1:9092. */
  readonly brokers?: readonly string[];
  /** Extra kafkajs client settings (ssl, sasl, clientId, …). */
  readonly kafkaConfig?: Omit<KafkaConfig, 'brokers'>;
  /** Which logical topics to produce; default all eight. */
  readonly topics?: readonly BronzeTopic[];
  /** Prefix for Kafka topic names (`<prefix><topic>`); default none. */
  readonly topicPrefix?: string;
  /** Explicit Kafka topic name per logical topic (wins over `topicPrefix`). */
  readonly topicNames?: Partial<Record<BronzeTopic, string>>;
  /** Events per topic; the run ends when all are produced. Exactly one of `count`/`rate`. */
  readonly count?: number;
  /** Events per second per topic; runs until `signal` aborts or `durationSeconds` passes. */
  readonly rate?: number;
  /** Stop after this many seconds (rate mode: exactly `rate × durationSeconds` per topic). */
  readonly durationSeconds?: number;
  /** Fraction (0..1) of events corrupted, spread evenly over the corruption kinds. Default 0. */
  readonly corruptFraction?: number;
  /** Which corruption kinds to use; default all five. */
  readonly corruptionKinds?: readonly CorruptionKind[];
  /** Partitions for topics this run creates (existing topics are left alone). Default 3. */
  readonly partitions?: number;
  /** Replication factor for created topics; default the broker's default. */
  readonly replicationFactor?: number;
  /** Create missing topics first. Default true. */
  readonly createTopics?: boolean;
  /** Generator seed. Default 1. */
  readonly seed?: number;
  /** Driver and rider pool sizes. */
  readonly drivers?: number;
  readonly riders?: number;
  /** Start of the simulated event clock, epoch ms; default now. */
  readonly startTime?: number;
  /** Messages per produce request. Default 1000. */
  readonly batchSize?: number;
  /** Produce requests in flight at once. Default 1: the producer is idempotent, and a request that fails gives its sequence numbers back (see below). */
  readonly maxInFlight?: number;
  /** Pad gps_pings values to about this many bytes (benchmarks). */
  readonly payloadBytes?: number;
  /** Aborting stops generation; in-flight requests are flushed and the manifest returned. */
  readonly signal?: AbortSignal;
  /** Called about every `progressIntervalMs` with running totals. */
  readonly onProgress?: (progress: Progress) => void;
  /** Default 2000. */
  readonly progressIntervalMs?: number;
  /**
   * Called before a produce request is sent again because its topic is not ready yet ("not the
   * leader", "does not host this topic-partition", "leader not available": a topic created a
   * moment ago). Such requests are retried with backoff for up to a minute.
   */
  readonly onTopicRetry?: (retry: TopicRetry) => void;
}

export interface TopicRetry {
  readonly topic: string;
  readonly error: Error;
  readonly attempt: number;
  readonly retryInMs: number;
}

export interface Progress {
  readonly produced: number;
  readonly bytes: number;
  readonly elapsedMs: number;
  /** Events per second since the start. */
  readonly eventsPerSecond: number;
  /** Events per second since the previous progress report. */
  readonly recentEventsPerSecond: number;
  readonly inFlight: number;
}

export type CorruptionCounts = Record<CorruptionKind, number>;
export type ExpectedErrorCounts = Partial<Record<DeadLetterErrorType, number>>;

export interface TopicManifest {
  /** The Kafka topic the events went to. */
  readonly kafkaTopic: string;
  /** Records produced (valid + corrupted), acknowledged by the broker. */
  produced: number;
  /** Records that should land in `bronze_<topic>`. */
  valid: number;
  /** Records that should land in `dlq_bronze_<topic>`. */
  corrupted: number;
  corruption: CorruptionCounts;
  expectedErrors: ExpectedErrorCounts;
  /** Value bytes produced (tombstones count 0). */
  bytes: number;
}

export interface Manifest {
  readonly seed: number;
  readonly mode: 'count' | 'rate';
  readonly corruptFraction: number;
  readonly brokers: readonly string[];
  readonly startedAt: string;
  finishedAt: string;
  durationMs: number;
  eventsPerSecond: number;
  bytesPerSecond: number;
  /** True when a signal stopped the run before its count/duration was reached. */
  interrupted: boolean;
  readonly topics: Partial<Record<BronzeTopic, TopicManifest>>;
  readonly totals: Omit<TopicManifest, 'kafkaTopic'>;
}

/** Bad option values (the CLI maps this to exit code 2). Code `INVALID_OPTION`; not retriable. */
export class GenerateOptionError extends RxlakeError {
  readonly flag: string;
  constructor(flag: string, message: string) {
    super(message, { code: 'INVALID_OPTION' });
    this.name = 'GenerateOptionError';
    this.flag = flag;
  }
}

// ---------------------------------------------------------------------------------------------
// generateEvents
// ---------------------------------------------------------------------------------------------

const emptyCorruption = (): CorruptionCounts => ({ invalid_utf8: 0, truncated_json: 0, missing_field: 0, wrong_type: 0, null_value: 0 });

const emptyTopicStats = (): Omit<TopicManifest, 'kafkaTopic'> => ({
  produced: 0,
  valid: 0,
  corrupted: 0,
  corruption: emptyCorruption(),
  expectedErrors: {},
  bytes: 0,
});

interface BatchStats {
  readonly topic: BronzeTopic;
  readonly messages: Message[];
  valid: number;
  bytes: number;
  readonly corruption: CorruptionCounts;
}

function checkOptions(o: GenerateOptions): void {
  const positiveInt = (v: number | undefined, flag: string): void => {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new GenerateOptionError(flag, `${flag} must be a positive integer, got ${v}`);
  };
  if ((o.count === undefined) === (o.rate === undefined)) throw new GenerateOptionError('--count/--rate', 'exactly one of --count or --rate is required');
  if (o.count !== undefined && (!Number.isInteger(o.count) || o.count < 0)) throw new GenerateOptionError('--count', `--count must be a non-negative integer, got ${o.count}`);
  if (o.rate !== undefined && !(o.rate > 0 && Number.isFinite(o.rate))) throw new GenerateOptionError('--rate', `--rate must be a positive number, got ${o.rate}`);
  if (o.durationSeconds !== undefined && !(o.durationSeconds > 0 && Number.isFinite(o.durationSeconds))) {
    throw new GenerateOptionError('--duration', `--duration must be a positive number of seconds, got ${o.durationSeconds}`);
  }
  const f = o.corruptFraction ?? 0;
  if (!(f >= 0 && f <= 1)) throw new GenerateOptionError('--corrupt-fraction', `--corrupt-fraction must be between 0 and 1, got ${f}`);
  positiveInt(o.partitions, '--partitions');
  positiveInt(o.batchSize, '--batch-size');
  positiveInt(o.maxInFlight, '--max-in-flight');
  positiveInt(o.drivers, '--drivers');
  positiveInt(o.riders, '--riders');
  if (o.payloadBytes !== undefined && (!Number.isInteger(o.payloadBytes) || o.payloadBytes < 0)) {
    throw new GenerateOptionError('--payload-bytes', `--payload-bytes must be a non-negative integer, got ${o.payloadBytes}`);
  }
  if (o.seed !== undefined && !Number.isInteger(o.seed)) throw new GenerateOptionError('--seed', `--seed must be an integer, got ${o.seed}`);
  for (const t of o.topics ?? []) if (!isBronzeTopic(t)) throw new GenerateOptionError('--topics', `unknown topic ${JSON.stringify(t)}`);
  if (o.topics !== undefined && o.topics.length === 0) throw new GenerateOptionError('--topics', '--topics names no topic');
  if (o.corruptionKinds !== undefined) {
    if (o.corruptionKinds.length === 0) throw new GenerateOptionError('--corruption-kinds', '--corruption-kinds names no kind');
    for (const k of o.corruptionKinds) {
      if (!(CORRUPTION_KINDS as readonly string[]).includes(k)) throw new GenerateOptionError('--corruption-kinds', `unknown corruption kind ${JSON.stringify(k)}`);
    }
  }
}

/**
 * Generates rideshare events and produces them to Kafka; resolves with the manifest once every
 * produced record is acknowledged (acks = all) and the producer is disconnected.
 *
 * Records are keyed by entity id; values are UTF-8 JSON Buffers (one `JSON.stringify` per
 * event). Corruption is deterministic: in each topic, record `i` is corrupted when
 * `floor((i + 1) × F) > floor(i × F)`, so exactly `floor(n × F)` of `n` records are, and the
 * kinds rotate.
 *
 * ## Example
 * ```ts
 * const manifest = await generateEvents({ topics: ['trips'], count: 1000, corruptFraction: 0.05 });
 * manifest.topics.trips?.valid; // rows bronze_trips should get
 * ```
 */
export async function generateEvents(options: GenerateOptions): Promise<Manifest> {
  checkOptions(options);
  const {
    brokers = (process.env.KAFKA_BOOTSTRAP_SERVERS ?? '127.0.0.1:9092').split(',').map((s) => s.trim()).filter((s) => s !== ''),
    topics = BRONZE_TOPICS,
    topicPrefix = '',
    topicNames = {},
    corruptFraction = 0,
    corruptionKinds = CORRUPTION_KINDS,
    partitions = 3,
    replicationFactor = -1,
    createTopics = true,
    seed = 1,
    batchSize = 1000,
    maxInFlight = 1,
    payloadBytes = 0,
    progressIntervalMs = 2000,
    signal,
    onProgress,
    onTopicRetry,
  } = options;
  const selected = [...new Set(topics)];
  const kafkaTopic = (t: BronzeTopic): string => topicNames[t] ?? `${topicPrefix}${t}`;

  const kafka = new Kafka({ clientId: 'rxlake-generate', logLevel: logLevel.WARN, ...options.kafkaConfig, brokers: [...brokers] });
  if (createTopics) await ensureTopics(kafka, selected.map(kafkaTopic), partitions, replicationFactor);

  const generator: EventGenerator = createEventGenerator({
    seed,
    startTime: options.startTime ?? Date.now(),
    ...(options.drivers !== undefined ? { drivers: options.drivers } : {}),
    ...(options.riders !== undefined ? { riders: options.riders } : {}),
  });

  const manifestTopics: Partial<Record<BronzeTopic, TopicManifest>> = {};
  for (const t of selected) manifestTopics[t] = { kafkaTopic: kafkaTopic(t), ...emptyTopicStats() };
  const totals = emptyTopicStats();
  const startedAtMs = Date.now();
  const manifest: Manifest = {
    seed,
    mode: options.count !== undefined ? 'count' : 'rate',
    corruptFraction,
    brokers: [...brokers],
    startedAt: new Date(startedAtMs).toISOString(),
    finishedAt: '',
    durationMs: 0,
    eventsPerSecond: 0,
    bytesPerSecond: 0,
    interrupted: false,
    topics: manifestTopics,
    totals,
  };

  // Per-topic generation state.
  const generated = new Map<BronzeTopic, number>(selected.map((t) => [t, 0]));
  const corruptedSoFar = new Map<BronzeTopic, number>(selected.map((t) => [t, 0]));

  const buildBatch = (topic: BronzeTopic, n: number): BatchStats => {
    const messages: Message[] = new Array<Message>(n);
    const stats: BatchStats = { topic, messages, valid: 0, bytes: 0, corruption: emptyCorruption() };
    let i = generated.get(topic) ?? 0;
    let c = corruptedSoFar.get(topic) ?? 0;
    const pad = topic === 'gps_pings' && payloadBytes > 0;
    for (let k = 0; k < n; k++, i++) {
      const ev = generator.next(topic);
      let json = JSON.stringify(ev.value);
      if (pad) json = padJson(json, payloadBytes);
      let value: Buffer | null = Buffer.from(json);
      if (corruptFraction > 0 && Math.floor((i + 1) * corruptFraction) > Math.floor(i * corruptFraction)) {
        const kind = corruptionKinds[c % corruptionKinds.length] as CorruptionKind;
        const bad = corrupt(kind, value, Math.floor(c / corruptionKinds.length));
        value = bad === null ? null : Buffer.from(bad.buffer, bad.byteOffset, bad.byteLength);
        stats.corruption[kind] += 1;
        c++;
      } else {
        stats.valid += 1;
      }
      if (value !== null) stats.bytes += value.length;
      messages[k] = { key: ev.key, value };
    }
    generated.set(topic, i);
    corruptedSoFar.set(topic, c);
    return stats;
  };

  const record = (s: BatchStats): void => {
    const targets = [manifestTopics[s.topic], totals];
    for (const m of targets) {
      if (m === undefined) continue;
      m.produced += s.messages.length;
      m.valid += s.valid;
      m.bytes += s.bytes;
      for (const kind of CORRUPTION_KINDS) {
        const n = s.corruption[kind];
        if (n === 0) continue;
        m.corrupted += n;
        m.corruption[kind] += n;
        const errorType = EXPECTED_ERROR_TYPE[kind];
        m.expectedErrors[errorType] = (m.expectedErrors[errorType] ?? 0) + n;
      }
    }
  };

  // Idempotent: a request sent again (kafkajs' own retries, or ours while a new topic elects its
  // leaders) is written once, so the topics hold exactly what the manifest counts. Not idempotent,
  // a "not the leader" answer for one partition re-sent the partitions already written too
  // (measured: 2,356 records in the topics for 2,000 acknowledged). A failed request gives its
  // sequence numbers back, so requests go one at a time: another request taking those numbers
  // meanwhile would be dropped by the broker as a duplicate.
  const producer: Producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
    idempotent: true,
    maxInFlightRequests: 1,
    // The idempotent producer needs at least one retry of its own.
    retry: { ...options.kafkaConfig?.retry, retries: Math.max(1, options.kafkaConfig?.retry?.retries ?? 5) },
  });
  await producer.connect();

  // Bounded pipeline of produce requests.
  const inFlight = new Set<Promise<void>>();
  let failure: unknown = null;
  const send = async (stats: BatchStats): Promise<void> => {
    while (inFlight.size >= maxInFlight) await Promise.race(inFlight);
    if (failure !== null) return;
    const topic = kafkaTopic(stats.topic);
    // A topic created a moment ago answers "not the leader" / "does not host this topic-partition"
    // for a while, past kafkajs' own few retries: send again with backoff (bounded).
    const p = retryWhileTopicNotReady(
      () => producer.send({ topic, messages: stats.messages, acks: -1, compression: CompressionTypes.None, timeout: 30_000 }),
      { onRetry: (error, attempt, retryInMs) => onTopicRetry?.({ topic, error, attempt, retryInMs }) },
    )
      .then(
        () => record(stats),
        (err: unknown) => {
          failure ??= err;
        },
      )
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };

  let lastProgressAt = startedAtMs;
  let lastProgressCount = 0;
  const progressTimer =
    onProgress === undefined
      ? undefined
      : setInterval(() => {
          const now = Date.now();
          const elapsed = now - startedAtMs;
          onProgress({
            produced: totals.produced,
            bytes: totals.bytes,
            elapsedMs: elapsed,
            eventsPerSecond: elapsed > 0 ? (totals.produced * 1000) / elapsed : 0,
            recentEventsPerSecond: now > lastProgressAt ? ((totals.produced - lastProgressCount) * 1000) / (now - lastProgressAt) : 0,
            inFlight: inFlight.size,
          });
          lastProgressAt = now;
          lastProgressCount = totals.produced;
        }, progressIntervalMs);
  progressTimer?.unref();

  const stopped = (): boolean => failure !== null || (signal?.aborted ?? false);
  const durationMs = options.durationSeconds === undefined ? Infinity : options.durationSeconds * 1000;

  try {
    if (options.count !== undefined) {
      const count = options.count;
      let remaining = true;
      while (remaining && !stopped() && Date.now() - startedAtMs < durationMs) {
        remaining = false;
        for (const topic of selected) {
          const done = generated.get(topic) ?? 0;
          const n = Math.min(batchSize, count - done);
          if (n <= 0) continue;
          remaining = true;
          await send(buildBatch(topic, n));
          if (stopped()) break;
        }
      }
    } else {
      const rate = options.rate ?? 1;
      const tickMs = Math.max(10, Math.min(200, (batchSize / rate) * 1000));
      const runStart = Date.now();
      for (;;) {
        if (stopped()) break;
        const elapsed = Math.min(Date.now() - runStart, durationMs);
        for (const topic of selected) {
          const due = Math.floor((rate * elapsed) / 1000) - (generated.get(topic) ?? 0);
          for (let left = due; left > 0 && !stopped(); left -= batchSize) {
            await send(buildBatch(topic, Math.min(batchSize, left)));
          }
        }
        if (elapsed >= durationMs) break;
        // An abort ends the wait (rejecting with its reason); the loop then stops at its next check.
        await sleep(tickMs, signal).catch(() => undefined);
      }
    }
    await Promise.all(inFlight);
  } finally {
    if (progressTimer !== undefined) clearInterval(progressTimer);
    await Promise.allSettled(inFlight);
    await producer.disconnect();
  }
  if (failure !== null) throw failure instanceof Error ? failure : new Error('produce failed', { cause: failure });

  const finishedAtMs = Date.now();
  manifest.finishedAt = new Date(finishedAtMs).toISOString();
  manifest.durationMs = finishedAtMs - startedAtMs;
  manifest.eventsPerSecond = manifest.durationMs > 0 ? Math.round((totals.produced * 1000) / manifest.durationMs) : 0;
  manifest.bytesPerSecond = manifest.durationMs > 0 ? Math.round((totals.bytes * 1000) / manifest.durationMs) : 0;
  const target = options.count ?? (Number.isFinite(durationMs) ? Math.floor(((options.rate ?? 0) * durationMs) / 1000) : Infinity);
  manifest.interrupted = selected.some((t) => (manifestTopics[t]?.produced ?? 0) < target);
  return manifest;
}

/** Creates the topics that do not exist yet, with `partitions` partitions each. */
async function ensureTopics(kafka: Kafka, names: readonly string[], partitions: number, replicationFactor: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = names.filter((n) => !existing.has(n));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((topic) => ({ topic, numPartitions: partitions, replicationFactor })),
      });
    }
  } finally {
    await admin.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------------

const HELP = `Usage: npx tsx src/pipelines/rideshare/generate.ts (--count N | --rate R) [options]

Produces synthetic rideshare events to Kafka (brokers from KAFKA_BOOTSTRAP_SERVERS,
default 127.0.0.1:9092; KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_* as for the bronze pipeline).

  --topics all|a,b        topics to produce (default all): ${BRONZE_TOPICS.join(', ')}
  --count N               events per topic, then exit
  --rate R                events per second per topic, until SIGINT/SIGTERM or --duration
  --duration S            stop after S seconds
  --corrupt-fraction F    fraction 0..1 of corrupted records, spread over the kinds (default 0)
  --corruption-kinds K,…  subset of ${CORRUPTION_KINDS.join(', ')}
  --partitions P          partitions for topics that do not exist yet (default 3)
  --replication-factor N  replication factor for created topics (default: broker default)
  --topic-prefix X        Kafka topic name = X + topic (default KAFKA_TOPIC_PREFIX or none)
  --seed N                generator seed (default 1)
  --drivers N, --riders N pool sizes (default 50, 200)
  --batch-size N          messages per produce request (default 1000)
  --max-in-flight N       concurrent produce requests (default 1; the producer is idempotent)
  --payload-bytes N       pad gps_pings values to about N bytes
  --manifest FILE         write a JSON manifest of what was produced
  --quiet                 no progress lines
  -h, --help              this help

Exit codes: 0 ok, 1 error, 2 bad arguments.
`;

const STRING_FLAGS = [
  'topics',
  'count',
  'rate',
  'duration',
  'corrupt-fraction',
  'corruption-kinds',
  'partitions',
  'replication-factor',
  'topic-prefix',
  'seed',
  'drivers',
  'riders',
  'batch-size',
  'max-in-flight',
  'payload-bytes',
  'manifest',
] as const;

interface CliArgs {
  readonly options: GenerateOptions;
  readonly manifestFile: string | undefined;
  readonly quiet: boolean;
  readonly help: boolean;
}

/** Parses CLI arguments; throws `GenerateOptionError` naming the bad flag. */
export function parseCliArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): CliArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        ...Object.fromEntries(STRING_FLAGS.map((f) => [f, { type: 'string' as const }])),
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const flag = /'(-[^']+)'/.exec(message)?.[1] ?? /(--?[\w-]+)/.exec(message)?.[1] ?? 'arguments';
    throw new GenerateOptionError(flag, message);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  const str = (name: (typeof STRING_FLAGS)[number]): string | undefined => {
    const x = v[name];
    return typeof x === 'string' ? x : undefined;
  };
  const num = (name: (typeof STRING_FLAGS)[number]): number | undefined => {
    const s = str(name);
    if (s === undefined) return undefined;
    const n = Number(s);
    if (s.trim() === '' || !Number.isFinite(n)) throw new GenerateOptionError(`--${name}`, `--${name} expects a number, got ${JSON.stringify(s)}`);
    return n;
  };
  const list = (name: (typeof STRING_FLAGS)[number]): string[] | undefined =>
    str(name)
      ?.split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');

  const topicsArg = list('topics');
  let topics: BronzeTopic[] | undefined;
  if (topicsArg !== undefined && !(topicsArg.length === 1 && topicsArg[0] === 'all')) {
    topics = [];
    for (const t of topicsArg) {
      if (!isBronzeTopic(t)) throw new GenerateOptionError('--topics', `--topics: unknown topic ${JSON.stringify(t)} (known: all, ${BRONZE_TOPICS.join(', ')})`);
      topics.push(t);
    }
  }
  const kindsArg = list('corruption-kinds');
  let corruptionKinds: CorruptionKind[] | undefined;
  if (kindsArg !== undefined) {
    corruptionKinds = [];
    for (const k of kindsArg) {
      if (!(CORRUPTION_KINDS as readonly string[]).includes(k)) {
        throw new GenerateOptionError('--corruption-kinds', `--corruption-kinds: unknown kind ${JSON.stringify(k)} (known: ${CORRUPTION_KINDS.join(', ')})`);
      }
      corruptionKinds.push(k as CorruptionKind);
    }
  }

  const kafkaConfig = kafkaConfigFromEnv(env);
  const entries: Array<[keyof GenerateOptions, unknown]> = [
    ['topics', topics],
    ['count', num('count')],
    ['rate', num('rate')],
    ['durationSeconds', num('duration')],
    ['corruptFraction', num('corrupt-fraction')],
    ['corruptionKinds', corruptionKinds],
    ['partitions', num('partitions')],
    ['replicationFactor', num('replication-factor')],
    ['topicPrefix', str('topic-prefix') ?? env.KAFKA_TOPIC_PREFIX],
    ['seed', num('seed')],
    ['drivers', num('drivers')],
    ['riders', num('riders')],
    ['batchSize', num('batch-size')],
    ['maxInFlight', num('max-in-flight')],
    ['payloadBytes', num('payload-bytes')],
    ['kafkaConfig', kafkaConfig],
  ];
  const options = Object.fromEntries(entries.filter(([, x]) => x !== undefined)) as GenerateOptions;
  const help = v.help === true;
  if (!help) checkOptions(options);
  const rf = options.replicationFactor;
  if (rf !== undefined && (!Number.isInteger(rf) || (rf < 1 && rf !== -1))) {
    throw new GenerateOptionError('--replication-factor', `--replication-factor must be a positive integer or -1, got ${rf}`);
  }
  return { options, manifestFile: str('manifest'), quiet: v.quiet === true, help };
}

/** TLS and SASL from the variables the jobs read (`KAFKA_SECURITY_PROTOCOL`, `KAFKA_SASL_*`, `KAFKA_SSL_*`). */
function kafkaConfigFromEnv(env: NodeJS.ProcessEnv): Omit<KafkaConfig, 'brokers'> | undefined {
  try {
    const security = kafkaClientSecurity(loadKafkaAccess(env));
    return Object.keys(security).length === 0 ? undefined : security;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new GenerateOptionError(/^\s*- (KAFKA_[A-Z_]+)/m.exec(err.message)?.[1] ?? 'KAFKA_SECURITY_PROTOCOL', err.problems.join('\n'));
  }
}

/** kafkajs log lines as one short line on stderr instead of JSON. */
/**
 * kafkajs log lines as one short line each (`generate: kafkajs WARN <message>: <error>`), at the
 * level the jobs give them (`clientLogLevel`): answers kafkajs retries by itself (a coordinator
 * still loading on a young broker, a leader election) are not printed, outages are warnings.
 */
export function compactKafkaLog(write: (line: string) => void = (l) => process.stderr.write(l)): logCreator {
  return () => (entry) => {
    const level = clientLogLevel(entry);
    if (level === 'debug' || level === 'info') return;
    const { message, error } = entry.log as { message: string; error?: unknown };
    write(`generate: kafkajs ${level.toUpperCase()} ${message}${typeof error === 'string' && error !== '' ? `: ${error}` : ''}\n`);
  };
}

function formatRate(n: number): string {
  return n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0);
}

/** Runs the CLI; resolves with the process exit code. */
export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  let args: CliArgs;
  try {
    args = parseCliArgs(argv);
  } catch (err) {
    if (err instanceof GenerateOptionError) {
      process.stderr.write(`generate: ${err.message} (bad ${err.flag})\nRun with --help for usage.\n`);
      return 2;
    }
    throw err;
  }
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      process.stderr.write(`generate: second ${sig}, exiting without flushing\n`);
      process.exit(130);
    }
    process.stderr.write(`generate: ${sig}, flushing and stopping…\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const manifest = await generateEvents({
      ...args.options,
      kafkaConfig: { logCreator: compactKafkaLog(), ...args.options.kafkaConfig },
      signal: controller.signal,
      onTopicRetry: (r: TopicRetry) =>
        process.stderr.write(`generate: ${r.topic} is not ready (${r.error.message}): sending again in ${r.retryInMs} ms (retry ${r.attempt})\n`),
      ...(args.quiet
        ? {}
        : {
            onProgress: (p: Progress) =>
              process.stderr.write(
                `generate: ${p.produced} events, ${formatRate(p.recentEventsPerSecond)} ev/s now, ${formatRate(p.eventsPerSecond)} ev/s avg, ${(p.bytes / 1e6).toFixed(1)} MB, ${p.inFlight} requests in flight\n`,
              ),
          }),
    });
    if (args.manifestFile !== undefined) await writeFile(args.manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
    const t = manifest.totals;
    process.stderr.write(
      `generate: done${manifest.interrupted ? ' (interrupted)' : ''}: ${t.produced} events (${t.valid} valid, ${t.corrupted} corrupted) in ${(manifest.durationMs / 1000).toFixed(1)} s, ` +
        `${formatRate(manifest.eventsPerSecond)} ev/s, ${(manifest.bytesPerSecond / 1e6).toFixed(1)} MB/s\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof GenerateOptionError) {
      process.stderr.write(`generate: ${err.message} (bad ${err.flag})\n`);
      return 2;
    }
    process.stderr.write(`generate: failed: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

const invokedDirectly = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`generate: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

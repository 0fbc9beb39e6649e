/**
 * Producing generated events to Kafka, as the event generators of the transactions, retail and
 * cards jobs do: topics created when missing, events keyed as their generator says, a share of
 * them corrupt, as fast as possible or at a rate, a count or until stopped.
 */
import { parseArgs } from 'node:util';
import { redact } from '../../core/logger.ts';
import { loadKafkaAccess } from '../../runtime/config.ts';
import { ConfigError } from '../../runtime/env.ts';
import { kafkaClientSecurity } from '../../runtime/kafkaSecurity.ts';
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import type { Message } from 'kafkajs';
import { retryWhileTopicNotReady } from '../../sources/checkTopics.ts';
import { CORRUPTION_KINDS, corrupt } from '../rideshare/events.ts';
import type { CorruptionKind } from '../rideshare/events.ts';

/** One generated event: its topic (without prefix), Kafka key and payload. */
export interface GeneratedEvent {
  readonly topic: string;
  readonly key: string;
  readonly value: Uint8Array;
}

/** What `kafkaClientSecurity` gives: a Kafka client's `ssl` and `sasl`. */
export type KafkaClientSecurity = ReturnType<typeof kafkaClientSecurity>;

export interface ProduceOptions {
  /** Default `KAFKA_BOOTSTRAP_SERVERS` or 127.0.0.1:9092. */
  readonly brokers?: readonly string[] | undefined;
  /** TLS and SASL of the brokers (`kafkaClientSecurity(loadKafkaAccess())` reads the jobs' variables). */
  readonly security?: KafkaClientSecurity | undefined;
  /** The topics `next` produces to (created when missing, with `partitions`). */
  readonly topics: readonly string[];
  readonly topicPrefix?: string | undefined;
  /** Partitions of topics this run creates; default 3. */
  readonly partitions?: number | undefined;
  /** The next event. */
  readonly next: () => GeneratedEvent;
  /** Events to produce in all; unset: until `signal` aborts. */
  readonly count?: number | undefined;
  /** Events per second; unset: as fast as the broker takes them. */
  readonly rate?: number | undefined;
  /** Share (0..1) of events made corrupt, spread over the corruption kinds; default 0. */
  readonly corruptFraction?: number | undefined;
  /** How an event is made corrupt (`corruptEvent` with the contract's fields). */
  readonly corrupt?: ((kind: CorruptionKind, event: GeneratedEvent, variant: number) => Uint8Array | null) | undefined;
  readonly clientId?: string | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Called after each batch sent. */
  readonly onProgress?: ((produced: number) => void) | undefined;
  /** Called before a batch is sent again because its topic is not ready yet (a new topic, for a while). */
  readonly onTopicRetry?: ((topic: string, error: Error, attempt: number, retryInMs: number) => void) | undefined;
}

export interface ProduceResult {
  /** Per Kafka topic: produced, and of those corrupt. */
  readonly topics: Record<string, { produced: number; corrupt: number }>;
  readonly interrupted: boolean;
}

/** Events per send while producing as fast as possible. */
const BATCH = 1000;
/** How often a paced run sends what its rate allows. */
const TICK_MS = 100;

/** Produces generated events; resolves with what was produced once `count` are, or once aborted. */
export async function produceEvents(options: ProduceOptions): Promise<ProduceResult> {
  const { count, rate, signal } = options;
  if (count !== undefined && !(Number.isSafeInteger(count) && count >= 0)) throw new RangeError(`count must be a whole number >= 0, got ${count}`);
  if (rate !== undefined && !(rate > 0 && Number.isFinite(rate))) throw new RangeError(`rate must be a number of events per second > 0, got ${rate}`);
  const fraction = options.corruptFraction ?? 0;
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`corruptFraction must be between 0 and 1, got ${fraction}`);
  if (count === undefined && signal === undefined) throw new RangeError('give a count, or a signal that ends the run');
  const brokers = options.brokers ?? (process.env.KAFKA_BOOTSTRAP_SERVERS ?? '127.0.0.1:9092').split(',');
  const prefix = options.topicPrefix ?? '';
  const kafka = new Kafka({ brokers: [...brokers], clientId: options.clientId ?? 'rxlake-generate', logLevel: logLevel.ERROR, ...options.security });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = options.topics.map((t) => `${prefix}${t}`).filter((t) => !existing.has(t));
    if (missing.length > 0) await admin.createTopics({ topics: missing.map((topic) => ({ topic, numPartitions: options.partitions ?? 3 })), waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const topics: ProduceResult['topics'] = Object.fromEntries(options.topics.map((t) => [`${prefix}${t}`, { produced: 0, corrupt: 0 }]));
  let produced = 0;
  let corrupted = 0;
  let debt = 0;
  const started = Date.now();
  try {
    while (count === undefined || produced < count) {
      if (signal?.aborted === true) return { topics, interrupted: true };
      // Paced: what the rate allows by now; else a full batch.
      let n = rate === undefined ? BATCH : Math.min(BATCH * 10, Math.floor(((Date.now() - started) / 1000) * rate) - produced);
      if (count !== undefined) n = Math.min(n, count - produced);
      if (n <= 0) {
        await new Promise((resolve) => setTimeout(resolve, TICK_MS));
        continue;
      }
      const byTopic = new Map<string, Message[]>();
      for (let i = 0; i < n; i++) {
        const event = options.next();
        const kafkaTopic = `${prefix}${event.topic}`;
        const stats = topics[kafkaTopic];
        if (stats === undefined) throw new Error(`the generator produced to ${event.topic}, which is not among the topics (${options.topics.join(', ')})`);
        debt += fraction;
        let value: Uint8Array | null = event.value;
        if (debt >= 1 && options.corrupt !== undefined) {
          debt -= 1;
          value = options.corrupt(CORRUPTION_KINDS[corrupted % CORRUPTION_KINDS.length] as CorruptionKind, event, corrupted);
          corrupted += 1;
          stats.corrupt += 1;
        }
        stats.produced += 1;
        const messages = byTopic.get(kafkaTopic) ?? [];
        messages.push({ key: event.key, value: value === null ? null : Buffer.from(value.buffer, value.byteOffset, value.byteLength) });
        byTopic.set(kafkaTopic, messages);
      }
      for (const [topic, messages] of byTopic) {
        await retryWhileTopicNotReady(() => producer.send({ topic, acks: -1, messages }), {
          onRetry: (error, attempt, retryInMs) => options.onTopicRetry?.(topic, error, attempt, retryInMs),
        });
      }
      produced += n;
      options.onProgress?.(produced);
    }
    return { topics, interrupted: false };
  } finally {
    await producer.disconnect();
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/**
 * A corrupt version of an event of a JSON contract: `invalid_utf8`, `truncated_json` and
 * `null_value` as the rideshare generator makes them (`corrupt`); `missing_field` removes one of
 * `required` and `wrong_type` gives one field of `wrong` its bad value (`variant` picks which).
 */
export function corruptEvent(
  kind: CorruptionKind,
  value: Uint8Array,
  variant: number,
  contract: { readonly required: readonly string[]; readonly wrong: Readonly<Record<string, unknown>> },
): Uint8Array | null {
  if (kind !== 'missing_field' && kind !== 'wrong_type') return corrupt(kind, value, variant);
  const obj = JSON.parse(utf8.decode(value)) as Record<string, unknown>;
  const v = Math.abs(Math.trunc(variant));
  if (kind === 'missing_field') {
    delete obj[contract.required[v % contract.required.length] as string];
  } else {
    const fields = Object.keys(contract.wrong);
    const field = fields[v % fields.length] as string;
    obj[field] = contract.wrong[field];
  }
  return encoder.encode(JSON.stringify(obj));
}

/** Flags every generator command takes, besides its own. */
const COMMON_FLAGS = ['count', 'rate', 'corrupt-fraction', 'seed', 'partitions', 'topic-prefix', 'out-of-order-fraction', 'max-delay-ms'] as const;

/** What the common flags say (numbers checked), and the command's own numeric flags. */
export interface GenerateArgs {
  readonly count?: number;
  readonly rate?: number;
  readonly corruptFraction: number;
  readonly seed: number;
  readonly partitions?: number;
  readonly topicPrefix?: string;
  readonly outOfOrderFraction?: number;
  readonly maxDelayMs?: number;
  /** The command's own flags, as numbers. */
  readonly own: Readonly<Record<string, number | undefined>>;
}

/**
 * The command line of an event generator: `--count N` and/or `--rate N/s` (at least one; with a
 * rate and no count it runs until SIGINT/SIGTERM), `--corrupt-fraction`, `--seed`,
 * `--partitions`, `--topic-prefix`, `--out-of-order-fraction`, `--max-delay-ms`, and the
 * command's `own` numeric flags. Produces what `events(args)` makes, printing one line per topic.
 */
/** TLS and SASL of the brokers, from the variables the jobs read; `undefined` (after saying why on stderr) when they are wrong. */
export function securityFromEnv(name: string, env: NodeJS.ProcessEnv = process.env): KafkaClientSecurity | undefined {
  try {
    return kafkaClientSecurity(loadKafkaAccess(env));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${name}: ${redact(err.message)}\n`);
    return undefined;
  }
}

export async function generateMain(
  argv: readonly string[],
  command: { readonly name: string; readonly usage: string; readonly own: readonly string[] },
  events: (args: GenerateArgs) => Omit<ProduceOptions, 'count' | 'rate' | 'corruptFraction' | 'topicPrefix' | 'partitions' | 'signal'>,
): Promise<number> {
  const { name, usage } = command;
  let args: GenerateArgs;
  try {
    const { values } = parseArgs({
      args: [...argv],
      strict: true,
      options: Object.fromEntries([...COMMON_FLAGS, ...command.own, 'help'].map((f) => [f, { type: f === 'help' ? 'boolean' : 'string' }])),
    });
    if (values.help === true) {
      process.stdout.write(usage);
      return 0;
    }
    const num = (flag: string): number | undefined => {
      const s = values[flag];
      if (typeof s !== 'string') return undefined;
      const n = Number(s);
      if (s.trim() === '' || !Number.isFinite(n) || n < 0) throw new Error(`--${flag} expects a number >= 0, got ${JSON.stringify(s)}`);
      return n;
    };
    const count = num('count');
    const rate = num('rate');
    if (count === undefined && rate === undefined) throw new Error('give --count, --rate or both');
    if (count !== undefined && !Number.isSafeInteger(count)) throw new Error('--count expects a whole number');
    if (rate === 0) throw new Error('--rate expects a number of events per second > 0');
    const fraction = num('corrupt-fraction') ?? 0;
    if (fraction > 1) throw new Error('--corrupt-fraction must be between 0 and 1');
    const optional = <K extends string>(key: K, v: number | string | undefined): Partial<Record<K, number | string>> => (v === undefined ? {} : ({ [key]: v } as Record<K, number | string>));
    args = {
      ...optional('count', count),
      ...optional('rate', rate),
      corruptFraction: fraction,
      seed: num('seed') ?? 1,
      ...optional('partitions', num('partitions')),
      ...optional('topicPrefix', typeof values['topic-prefix'] === 'string' ? values['topic-prefix'] : undefined),
      ...optional('outOfOrderFraction', num('out-of-order-fraction')),
      ...optional('maxDelayMs', num('max-delay-ms')),
      own: Object.fromEntries(command.own.map((f) => [f, num(f)])),
    } as GenerateArgs;
  } catch (err) {
    process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n\n${usage}`);
    return 2;
  }
  const security = securityFromEnv(name);
  if (security === undefined) return 2;
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  process.once('SIGTERM', () => controller.abort());
  let last = 0;
  const result = await produceEvents({
    security,
    ...events(args),
    count: args.count,
    rate: args.rate,
    corruptFraction: args.corruptFraction,
    topicPrefix: args.topicPrefix,
    partitions: args.partitions,
    signal: controller.signal,
    onTopicRetry: (topic, error, attempt, retryInMs) => process.stderr.write(`${name}: ${topic} is not ready (${error.message}): sending again in ${retryInMs} ms (retry ${attempt})\n`),
    onProgress: (produced) => {
      if (Date.now() - last < 1000 && produced !== args.count) return;
      last = Date.now();
      process.stderr.write(`${name}: ${produced}${args.count === undefined ? '' : `/${args.count}`} events\n`);
    },
  });
  for (const [topic, s] of Object.entries(result.topics)) process.stdout.write(`${topic}\tproduced=${s.produced}\tcorrupt=${s.corrupt}\n`);
  // Stopped by a signal while running at a rate without a count: that is how such a run ends.
  return result.interrupted && args.count !== undefined ? 130 : 0;
}

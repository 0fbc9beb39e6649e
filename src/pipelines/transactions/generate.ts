/**
 * Produces generated `transactions` and `refunds` events (keyed by account, some out of order,
 * optionally some corrupt) to Kafka, for the transactions pipeline.
 *
 * CLI: `npx tsx src/pipelines/transactions/generate.ts --count 5000 [--topic-prefix p.] [--corrupt-fraction 0.02]`
 * (`--help` for every flag). Programmatic: `generateTransactions(options)`.
 */
import { parseArgs } from 'node:util';
import { runIfEntry } from '../../runtime/cli.ts';
import { TRANSACTION_TOPICS, corruptTransactionEvent, createTransactionGenerator } from './events.ts';
import type { GeneratedTransactionEvent, TransactionTopic } from './events.ts';
import { produceEvents, securityFromEnv } from './produce.ts';
import type { KafkaClientSecurity } from './produce.ts';

export interface GenerateTransactionsOptions {
  /** Default `KAFKA_BOOTSTRAP_SERVERS` or 127.0.0.1:9092. */
  readonly brokers?: readonly string[];
  /** TLS and SASL of the brokers. */
  readonly security?: KafkaClientSecurity;
  /** Events per topic. */
  readonly count: number;
  readonly topics?: readonly TransactionTopic[];
  readonly topicPrefix?: string;
  /** Partitions of topics this run creates (existing topics are left alone); default 3. */
  readonly partitions?: number;
  /** Share (0..1) of corrupt events, spread over the corruption kinds; default 0. */
  readonly corruptFraction?: number;
  readonly seed?: number;
  readonly accounts?: number;
  /** Event clock start, epoch ms; default now minus the span the events cover. */
  readonly startTime?: number;
  /** Mean event-clock step between events of a topic, ms; default 250. */
  readonly stepMs?: number;
  /** Called after each produced batch. */
  readonly onProgress?: (produced: number, total: number) => void;
  /**
   * Called before a batch is sent again because its topic is not ready yet (a topic created a
   * moment ago answers "not the leader" / "does not host this topic-partition" for a while);
   * such batches are retried with backoff for up to a minute.
   */
  readonly onTopicRetry?: (topic: string, error: Error, attempt: number, retryInMs: number) => void;
  readonly signal?: AbortSignal;
}

export interface GenerateTransactionsResult {
  /** Per topic: produced, and of those corrupt. */
  readonly topics: Partial<Record<TransactionTopic, { kafkaTopic: string; produced: number; corrupt: number }>>;
  readonly interrupted: boolean;
}

const STEP_MS = 250;

/** Produces `count` events to each topic; resolves with what was produced. */
export async function generateTransactions(options: GenerateTransactionsOptions): Promise<GenerateTransactionsResult> {
  const { count } = options;
  if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`count must be a whole number >= 0, got ${count}`);
  const topics = options.topics ?? TRANSACTION_TOPICS;
  const prefix = options.topicPrefix ?? '';
  const result: GenerateTransactionsResult = { topics: {}, interrupted: false };
  let before = 0;
  for (const topic of topics) {
    const gen = createTransactionGenerator({
      seed: (options.seed ?? 1) + (topic === 'refunds' ? 1 : 0),
      ...(options.accounts === undefined ? {} : { accounts: options.accounts }),
      startTime: options.startTime ?? Date.now() - count * (options.stepMs ?? STEP_MS),
      stepMs: options.stepMs ?? STEP_MS,
    });
    const done = before;
    const { topics: produced, interrupted } = await produceEvents({
      brokers: options.brokers,
      security: options.security,
      topics: [topic],
      topicPrefix: prefix,
      partitions: options.partitions,
      clientId: 'rxlake-generate-transactions',
      next: () => gen.next(topic),
      count,
      corruptFraction: options.corruptFraction,
      corrupt: (kind, event, variant) => corruptTransactionEvent(kind, event as GeneratedTransactionEvent, variant),
      signal: options.signal,
      onProgress: (n) => options.onProgress?.(done + n, count * topics.length),
      onTopicRetry: options.onTopicRetry,
    });
    const stats = produced[`${prefix}${topic}`] ?? { produced: 0, corrupt: 0 };
    result.topics[topic] = { kafkaTopic: `${prefix}${topic}`, ...stats };
    before += stats.produced;
    if (interrupted) return { ...result, interrupted: true };
  }
  return result;
}

const USAGE = `Usage: generateTransactions --count N [options]

Produces N generated events to each of the transactions and refunds topics (keyed by account,
5 % of them out of order by up to 20 s of event time).
  --count N              events per topic (required)
  --topics LIST          transactions,refunds (default both)
  --topic-prefix P       Kafka topic = P + topic
  --partitions N         partitions of topics this run creates (default 3)
  --corrupt-fraction F   share of corrupt events, 0..1 (default 0)
  --accounts N           distinct accounts (default 50)
  --seed N               generator seed (default 1)
  --step-ms N            mean event-time step between events, ms (default 250)
Brokers: KAFKA_BOOTSTRAP_SERVERS (default 127.0.0.1:9092); TLS and SASL: KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_* as for the jobs.
`;

/** CLI entry point; returns the exit code. */
export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        count: { type: 'string' },
        topics: { type: 'string' },
        'topic-prefix': { type: 'string' },
        partitions: { type: 'string' },
        'corrupt-fraction': { type: 'string' },
        accounts: { type: 'string' },
        seed: { type: 'string' },
        'step-ms': { type: 'string' },
        help: { type: 'boolean' },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`generateTransactions: ${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  const num = (flag: string, integer: boolean): number | undefined => {
    const s = values[flag];
    if (typeof s !== 'string') return undefined;
    const n = Number(s);
    if (s.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < 0) throw new Error(`--${flag} expects a ${integer ? 'whole ' : ''}number >= 0, got ${JSON.stringify(s)}`);
    return n;
  };
  let options: GenerateTransactionsOptions;
  try {
    const count = num('count', true);
    if (count === undefined) throw new Error('--count is required');
    const topics = typeof values.topics === 'string' ? values.topics.split(',').map((t) => t.trim()) : undefined;
    const unknown = topics?.find((t) => !(TRANSACTION_TOPICS as readonly string[]).includes(t));
    if (unknown !== undefined) throw new Error(`--topics: unknown topic ${JSON.stringify(unknown)} (known: ${TRANSACTION_TOPICS.join(', ')})`);
    const partitions = num('partitions', true);
    const fraction = num('corrupt-fraction', false);
    const accounts = num('accounts', true);
    const seed = num('seed', true);
    const stepMs = num('step-ms', false);
    options = {
      count,
      ...(topics === undefined ? {} : { topics: topics as TransactionTopic[] }),
      ...(typeof values['topic-prefix'] === 'string' ? { topicPrefix: values['topic-prefix'] } : {}),
      ...(partitions === undefined ? {} : { partitions }),
      ...(fraction === undefined ? {} : { corruptFraction: fraction }),
      ...(accounts === undefined ? {} : { accounts }),
      ...(seed === undefined ? {} : { seed }),
      ...(stepMs === undefined ? {} : { stepMs }),
    };
    if (fraction !== undefined && fraction > 1) throw new Error('--corrupt-fraction must be between 0 and 1');
  } catch (err) {
    process.stderr.write(`generateTransactions: ${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    return 2;
  }
  const security = securityFromEnv('generateTransactions');
  if (security === undefined) return 2;
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  process.once('SIGTERM', () => controller.abort());
  let last = 0;
  const result = await generateTransactions({
    ...options,
    security,
    signal: controller.signal,
    onTopicRetry: (topic, error, attempt, retryInMs) =>
      process.stderr.write(`generateTransactions: ${topic} is not ready (${error.message}): sending again in ${retryInMs} ms (retry ${attempt})\n`),
    onProgress: (produced, total) => {
      if (Date.now() - last < 1000 && produced < total) return;
      last = Date.now();
      process.stderr.write(`generateTransactions: ${produced}/${total} events\n`);
    },
  });
  for (const [topic, s] of Object.entries(result.topics)) {
    process.stdout.write(`${topic}\t${s.kafkaTopic}\tproduced=${s.produced}\tcorrupt=${s.corrupt}\n`);
  }
  return result.interrupted ? 130 : 0;
}

runIfEntry(import.meta.url, 'generateTransactions', main);

/**
 * The kafkajs adapter of `KafkaClient` (the default client): a kafkajs consumer run with
 * `eachBatch`, `autoCommit: false` and `eachBatchAutoResolve: false`, an admin client for the
 * look-ups (connected on first use), kafkajs' events and log lines in the source's terms, and
 * kafkajs' errors classified. The only module of the source that loads kafkajs.
 */
import { Kafka, logLevel as LogLevel } from 'kafkajs';
import type { Admin, ConsumerConfig, EachBatchPayload, IMemberAssignment, KafkaConfig, LogEntry, SASLOptions } from 'kafkajs';
import type { ConnectionOptions } from 'node:tls';
import { isRetriable } from '../../core/errors.ts';
import { isTopicNotReady, rejoinReason } from './kafkajsErrors.ts';
import type { ClientBatch, KafkaClient, KafkaClientConfig, KafkaClientEvents, KafkaClientFactory, KafkaLogLevel, KafkaSasl, KafkaSsl, PartitionOffset, PemInput, TopicDescription, TopicPartition } from './client.ts';

/** kafkajs settings beyond the client-neutral options (e.g. a `socketFactory`, `retry.restartOnFailure`). */
export interface KafkajsSettings {
  /** Merged into the `Kafka` client's configuration. */
  readonly kafka?: Partial<Omit<KafkaConfig, 'brokers' | 'clientId' | 'ssl' | 'sasl' | 'logLevel' | 'logCreator'>>;
  /** Merged into the consumer's configuration. */
  readonly consumer?: Partial<Omit<ConsumerConfig, 'groupId'>>;
}

/**
 * The kafkajs client for `fromKafka({ client })` (the default).
 *
 * ## Example
 * ```ts
 * fromKafka({ brokers, groupId, topics, client: kafkajsClient({ kafka: { enforceRequestTimeout: true } }) });
 * ```
 *
 * @param settings kafkajs-only settings; a `retry.restartOnFailure` of yours decides every restart.
 * @return A factory of kafkajs clients.
 */
export function kafkajsClient(settings: KafkajsSettings = {}): KafkaClientFactory {
  return (config, events) => {
    /** The user's own restart policy (kafkajs `retry.restartOnFailure`) is respected as is. */
    const userRestartPolicy = settings.kafka?.retry?.restartOnFailure !== undefined || settings.consumer?.retry?.restartOnFailure !== undefined;
    const kafka = new Kafka(kafkajsConfig(config, settings, events.log));
    const consumer = kafka.consumer({ ...config.consumer, ...settings.consumer, groupId: config.groupId });
    /** Batches handed to the handler, as `topic\0partition\0lastOffset` (END_BATCH_PROCESS then ignores them). */
    const handled = new Set<string>();
    consumer.on(consumer.events.GROUP_JOIN, (event) => events.joined(assignmentOf(event.payload.memberAssignment)));
    consumer.on(consumer.events.CRASH, (event) => {
      const { error, restart } = event.payload;
      events.crashed({ error, restarting: restart, restartable: !restart && !userRestartPolicy && isRetriable(error) });
    });
    consumer.on(consumer.events.STOP, () => events.stopped());
    consumer.on(consumer.events.REQUEST, () => events.answered());
    consumer.on(consumer.events.COMMIT_OFFSETS, (event) => {
      const offsets: PartitionOffset[] = [];
      for (const t of event.payload.topics) {
        for (const p of t.partitions) {
          const offset = bigintOf(p.offset);
          if (offset !== undefined) offsets.push({ topic: t.topic, partition: Number(p.partition), offset });
        }
      }
      events.committed(offsets);
    });
    consumer.on(consumer.events.END_BATCH_PROCESS, (event) => {
      // Batches of only control records / aborted messages never reach eachBatch.
      const { topic, partition, lastOffset } = event.payload;
      if (handled.delete(`${topic}\u0000${partition}\u0000${lastOffset}`)) return;
      const last = bigintOf(lastOffset);
      if (last !== undefined) events.skipped(topic, partition, last);
    });

    let admin: Admin | undefined;
    /** The admin client, connected on first use (start-up look-ups, bounded mode, resumeFrom). */
    let adminReady: Promise<Admin> | undefined;
    const adminOf = (): Promise<Admin> => {
      adminReady ??= (async () => {
        const a = kafka.admin();
        admin = a;
        try {
          await a.connect();
        } catch (err) {
          // Not cached: a later look-up (after a broker outage) connects again.
          admin = undefined;
          adminReady = undefined;
          throw err;
        }
        return a;
      })();
      return adminReady;
    };
    const dropAdmin = (): Admin | undefined => {
      const a = admin;
      admin = undefined;
      adminReady = undefined;
      return a;
    };

    const client: KafkaClient = {
      connect: () => consumer.connect(),
      subscribe: (topics, fromBeginning) => consumer.subscribe({ topics: [...topics], fromBeginning }),
      run: (handler) =>
        consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          eachBatch: (payload) => {
            const b = payload.batch;
            const lastOffset = b.lastOffset();
            // Marks the batch as seen here (END_BATCH_PROCESS then ignores it), even on an early return.
            handled.add(`${b.topic}\u0000${b.partition}\u0000${lastOffset}`);
            return handler(batchOf(payload, lastOffset));
          },
        }),
      pause: (topics) => consumer.pause(topics.map((t) => (t.partitions === undefined ? { topic: t.topic } : { topic: t.topic, partitions: [...t.partitions] }))),
      seek: (topic, partition, offset) => consumer.seek({ topic, partition, offset: offset.toString() }),
      commit: (offsets) => consumer.commitOffsets(offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset.toString() }))),
      disconnect: async () => {
        try {
          await consumer.disconnect();
        } finally {
          try {
            await dropAdmin()?.disconnect();
          } catch {
            // ignore: the admin client only served look-ups
          }
        }
      },
      committedOffsets: async (topics) => {
        const result = await (await adminOf()).fetchOffsets({ groupId: config.groupId, topics: [...topics] });
        const out: PartitionOffset[] = [];
        for (const t of result) {
          for (const p of t.partitions) {
            const offset = BigInt(p.offset);
            if (offset >= 0n) out.push({ topic: t.topic, partition: p.partition, offset });
          }
        }
        return out;
      },
      topicOffsets: async (topic) =>
        (await (await adminOf()).fetchTopicOffsets(topic)).map((o) => ({ partition: o.partition, low: BigInt(o.low), high: BigInt(o.high) })),
      offsetsForTimestamp: async (topic, timestamp) =>
        (await (await adminOf()).fetchTopicOffsetsByTimestamp(topic, timestamp)).map((o) => ({ partition: o.partition, offset: BigInt(o.offset) })),
      closeLookups: async () => {
        await dropAdmin()?.disconnect();
      },
      describeTopics: async (topics) => describeTopics(await adminOf(), topics),
      isRetriable,
      rejoinReason,
    };
    return client;
  };
}

/**
 * The kafkajs client configuration: the neutral connection settings, then the kafkajs-only
 * ones, then brokers, client id, TLS, SASL and the log creator (error lines always reach it:
 * they name the cause of an outage; the source filters by level).
 */
export function kafkajsConfig(config: KafkaClientConfig, settings: KafkajsSettings, onLog: KafkaClientEvents['log']): KafkaConfig {
  return {
    ...config.connection,
    ...settings.kafka,
    brokers: [...config.brokers],
    clientId: config.clientId,
    ...(config.ssl !== undefined ? { ssl: toTls(config.ssl) } : {}),
    ...(config.sasl !== undefined ? { sasl: toSasl(config.sasl) } : {}),
    logLevel: toKafkaLogLevel(config.logLevel === 'nothing' ? 'error' : config.logLevel),
    logCreator: () => (entry: LogEntry) => {
      const { message, ...extra } = entry.log;
      onLog({ level: clientLogLevel(entry), error: entry.level <= LogLevel.ERROR, namespace: entry.namespace, message, extra });
    },
  };
}

/** Which topics exist, and whether each partition of theirs has a leader (per the cluster's metadata). */
async function describeTopics(admin: Admin, topics: readonly string[]): Promise<TopicDescription[]> {
  const existing = new Set(await admin.listTopics());
  const present = topics.filter((t) => existing.has(t));
  let ready: Set<string>;
  try {
    const { topics: metadata } = present.length === 0 ? { topics: [] } : await admin.fetchTopicMetadata({ topics: [...present] });
    ready = new Set(metadata.filter((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0 && p.partitionErrorCode === 0)).map((t) => t.name));
  } catch (err) {
    // A topic created a moment ago: its metadata answers "unknown topic" / "no leader" for a while.
    if (!isTopicNotReady(err)) throw err;
    ready = new Set();
  }
  return topics.map((topic) => ({ topic, exists: existing.has(topic), ready: ready.has(topic) }));
}

function batchOf(payload: EachBatchPayload, lastOffset: string): ClientBatch {
  const { batch } = payload;
  return {
    topic: batch.topic,
    partition: batch.partition,
    messages: batch.messages,
    lastOffset: BigInt(lastOffset),
    highWatermark: BigInt(batch.highWatermark),
    // resolveOffset() parses and formats a Long per call: the source resolves once per wait, not per message.
    resolveOffset: (offset) => payload.resolveOffset(offset.toString()),
    heartbeat: () => payload.heartbeat(),
    isRunning: () => payload.isRunning(),
    isStale: () => payload.isStale(),
  };
}

function assignmentOf(memberAssignment: IMemberAssignment): TopicPartition[] {
  const out: TopicPartition[] = [];
  for (const [topic, partitions] of Object.entries(memberAssignment)) {
    for (const partition of partitions) out.push({ topic, partition });
  }
  return out;
}

function bigintOf(value: unknown): bigint | undefined {
  try {
    return BigInt(String(value));
  } catch {
    return undefined;
  }
}

/** The neutral SASL settings as kafkajs' (same names; the mechanism narrowed per case). */
function toSasl({ mechanism, username, password }: KafkaSasl): SASLOptions {
  switch (mechanism) {
    case 'plain':
      return { mechanism, username, password };
    case 'scram-sha-256':
      return { mechanism, username, password };
    case 'scram-sha-512':
      return { mechanism, username, password };
  }
}

/** The neutral TLS settings as Node's options (`true`: the system's trust store). */
export function tlsOptions(ssl: Exclude<KafkaSsl, false>): ConnectionOptions {
  const o = toTls(ssl);
  return typeof o === 'boolean' ? {} : o;
}

/** The neutral TLS settings as Node's (bytes as Buffers). */
function toTls(ssl: KafkaSsl): ConnectionOptions | boolean {
  if (typeof ssl === 'boolean') return ssl;
  const out: ConnectionOptions = {};
  if (ssl.ca !== undefined) out.ca = pem(ssl.ca);
  if (ssl.cert !== undefined) out.cert = pem(ssl.cert);
  if (ssl.key !== undefined) out.key = pem(ssl.key);
  if (ssl.passphrase !== undefined) out.passphrase = ssl.passphrase;
  if (ssl.rejectUnauthorized !== undefined) out.rejectUnauthorized = ssl.rejectUnauthorized;
  if (ssl.servername !== undefined) out.servername = ssl.servername;
  return out;
}

function pem(input: PemInput): string | Buffer | Array<string | Buffer> {
  const one = (v: string | Uint8Array): string | Buffer => (typeof v === 'string' || Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  return typeof input === 'string' || input instanceof Uint8Array ? one(input) : input.map(one);
}

function toKafkaLogLevel(level: KafkaLogLevel): LogLevel {
  switch (level) {
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
 * Broker answers that kafkajs (or the source) retries by itself — a rebalance, a coordinator
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

/** What a consumer's crash line (`Crash: <error>`) names when a broker is away (the source restarts the consumer). */
// "Failed to find group coordinator": the coordinator's broker is away — the crash a member meets
// first when it only heartbeats (the wire client's kafkajs consumer fetches nothing).
const OUTAGE_CAUSES = ['Connection error', 'Connection timeout', 'KafkaJSConnectionError', 'KafkaJSNoBrokerAvailableError', 'KafkaJSConnectionClosedError', 'Failed to find group coordinator', 'KafkaJSGroupCoordinatorNotFound'];

/**
 * The level a kafkajs log line is logged at: its own, except that ERROR lines about a condition
 * that is retried by itself become `debug` (a broker's answer to one request, which the caller
 * retries) or `warn` (kafkajs re-joining, restarting, looking for a broker, a connection refused
 * or timed out, the consumer crashing on such an outage, which the source restarts: health
 * reports the outage, and logs it at ERROR once it lasts — `ConnectionHealth`).
 *
 * @param entry The kafkajs log entry.
 * @return The level to log it at.
 */
export function clientLogLevel(entry: Pick<LogEntry, 'level' | 'namespace' | 'log'>): KafkaLogLevel {
  const level = fromKafkaLogLevel(entry.level);
  if (level !== 'error') return level;
  const { message, error } = entry.log as { message: string; error?: unknown };
  const text = `${message} ${typeof error === 'string' ? error : ''}`;
  if (entry.namespace === 'Connection' && RETRIED_ANSWERS.some((a) => text.includes(a))) return 'debug';
  if (
    RETRIED_ANSWERS.some((a) => text.includes(a)) ||
    message.startsWith('Restarting the consumer') ||
    message.startsWith('Failed to connect to seed broker') ||
    message.startsWith('Failed to connect to broker, reconnecting') ||
    (entry.namespace === 'Connection' && (message.startsWith('Connection error') || message.startsWith('Connection timeout'))) ||
    (message.startsWith('Crash: ') && OUTAGE_CAUSES.some((c) => message.includes(c)))
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

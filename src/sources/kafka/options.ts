/**
 * `fromKafka`'s options (client-neutral: the client is picked by `client`) and their
 * validation and defaults.
 */
import type { Logger } from '../../core/logger.ts';
import type { KafkaClientConfig, KafkaClientFactory, KafkaConnectionSettings, KafkaConsumerSettings, KafkaLogLevel, KafkaSasl, KafkaSsl } from './client.ts';
import type { KafkaHealth } from './health.ts';
import { kafkajsClient } from './kafkajsClient.ts';
import type { StartFrom } from './lookups.ts';
import type { ResumeFrom } from './resume.ts';

export interface FromKafkaOptions {
  readonly brokers: readonly string[];
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly clientId?: string;
  /** TLS: `true` (system trust store) or a CA, client certificate and key. */
  readonly ssl?: KafkaSsl;
  /** PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; the password is never logged. */
  readonly sasl?: KafkaSasl;
  /** Same as `startFrom: 'earliest'` (true) or `'latest'` (false). */
  readonly fromBeginning?: boolean;
  /** Start of a group with no committed offsets; default `'latest'`. */
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
  readonly resumeFrom?: ResumeFrom;
  /**
   * The lowest level the source logs, its own lines and the client's (the client's error lines
   * still name an outage in `health()`); default `'warn'`. `'nothing'`: no line at all.
   */
  readonly logLevel?: KafkaLogLevel | 'nothing';
  /**
   * Where the source logs; default `defaultLogger()` (pino JSON lines on stderr). The SASL
   * password and the TLS passphrase are registered as secrets (`registerSecret`): the library's
   * loggers write `***` in their place, and errors leave the source redacted.
   */
  readonly logger?: Logger;
  /** Consumer settings (sessionTimeout, heartbeatInterval, metadataMaxAge, maxBytes, …). */
  readonly consumer?: KafkaConsumerSettings;
  /** Connection settings (connectionTimeout, requestTimeout, retry, …). */
  readonly connection?: KafkaConnectionSettings;
  /** The Kafka client; default `kafkajsClient()`. */
  readonly client?: KafkaClientFactory;
  /**
   * Called when the connection health changes: the consumer lost the broker(s) (`connected:
   * false`, with the reason; called again when the reason changes) or is back in its group
   * (`connected: true`, also on the first join).
   */
  readonly onHealthChange?: (health: KafkaHealth) => void;
  /**
   * A consuming member that got no answer from any broker for this long reports itself
   * disconnected (before the client gives up and restarts the consumer); default the consumer's
   * `sessionTimeout` (30 s), at least twice `heartbeatInterval` and `maxWaitTimeInMs`.
   */
  readonly stallTimeoutMs?: number;
}

/** The options with defaults applied. */
export interface SourceSettings {
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly startFrom: StartFrom;
  readonly maxRecords: number;
  readonly maxBytes: number;
  readonly maxReadAhead: number;
  readonly untilCaughtUp: boolean;
  readonly resumeFrom: ResumeFrom | undefined;
  readonly stallMs: number;
  readonly client: KafkaClientFactory;
  readonly clientConfig: KafkaClientConfig;
}

const SASL_MECHANISMS: readonly string[] = ['plain', 'scram-sha-256', 'scram-sha-512'];
const DEFAULT_MAX_RECORDS = 100_000;
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
const DEFAULT_MAX_READ_AHEAD = 25_000;
const DEFAULT_SESSION_TIMEOUT_MS = 30_000;
const DEFAULT_HEARTBEAT_INTERVAL_MS = 3_000;
const DEFAULT_MAX_WAIT_MS = 5_000;

/** Validates the options and applies the defaults; throws a `RangeError` naming the option. */
export function resolveOptions(options: FromKafkaOptions): SourceSettings {
  const maxRecords = options.maxInFlightRecords ?? DEFAULT_MAX_RECORDS;
  const maxBytes = options.maxInFlightBytes ?? DEFAULT_MAX_BYTES;
  if (!(maxRecords >= 1)) throw new RangeError('fromKafka: maxInFlightRecords must be >= 1');
  if (!(maxBytes >= 1)) throw new RangeError('fromKafka: maxInFlightBytes must be >= 1');
  const maxReadAhead = options.maxReadAheadRecords ?? DEFAULT_MAX_READ_AHEAD;
  if (!(maxReadAhead >= 1)) throw new RangeError('fromKafka: maxReadAheadRecords must be >= 1');
  if (options.topics.length === 0) throw new RangeError('fromKafka: no topics');
  const mechanism = options.sasl?.mechanism as string | undefined;
  if (mechanism !== undefined && !SASL_MECHANISMS.includes(mechanism)) {
    throw new RangeError(`fromKafka: sasl.mechanism ${JSON.stringify(mechanism)} is not supported: use 'plain', 'scram-sha-256' or 'scram-sha-512'`);
  }
  const consumer = options.consumer ?? {};
  const stallMs =
    options.stallTimeoutMs ??
    Math.max(
      consumer.sessionTimeout ?? DEFAULT_SESSION_TIMEOUT_MS,
      2 * (consumer.heartbeatInterval ?? DEFAULT_HEARTBEAT_INTERVAL_MS),
      2 * (consumer.maxWaitTimeInMs ?? DEFAULT_MAX_WAIT_MS),
    );
  if (!(stallMs > 0)) throw new RangeError('fromKafka: stallTimeoutMs must be > 0');
  return {
    groupId: options.groupId,
    topics: options.topics,
    startFrom: options.startFrom ?? (options.fromBeginning === true ? 'earliest' : 'latest'),
    maxRecords,
    maxBytes,
    maxReadAhead,
    untilCaughtUp: options.untilCaughtUp === true,
    resumeFrom: options.resumeFrom,
    stallMs,
    client: options.client ?? kafkajsClient(),
    clientConfig: {
      brokers: options.brokers,
      clientId: options.clientId ?? 'rxlake',
      groupId: options.groupId,
      ...(options.ssl !== undefined ? { ssl: options.ssl } : {}),
      ...(options.sasl !== undefined ? { sasl: options.sasl } : {}),
      logLevel: options.logLevel ?? 'warn',
      consumer,
      connection: options.connection ?? {},
    },
  };
}

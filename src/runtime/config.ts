/**
 * What every job reads from its environment: Kafka, Delta storage, batching, backpressure, dead
 * letters, HTTP, logging (names compatible with the existing Python bronze service), with the
 * job's own defaults. A job adds its own variables (its topics, …) through `loadJobConfig`.
 * Unknown values stop start-up with a message per variable.
 */
import { BooleanFromString, BrokerList, HttpUrl, NonEmptyString, ConfigError, decodeEnv, envVar, optionalEnvVar, numberIn, oneOf } from './env.ts';
import type { EnvOf, EnvSpec } from './env.ts';
import { kafkaTlsFromEnv } from './kafkaSecurity.ts';
import type { KafkaSecurity, KafkaTls } from './kafkaSecurity.ts';

/** The defaults that name a job: its consumer group, base path, pipeline id and HTTP port. */
export interface JobDefaults {
  readonly KAFKA_CONSUMER_GROUP: string;
  readonly DELTA_BASE_PATH: string;
  readonly PIPELINE_ID: string;
  readonly HTTP_PORT: string;
  /** Default `5000`; `0` for jobs whose batches are written whole. */
  readonly BATCH_CHUNK_RECORDS?: string;
  /** Defaults `100000` records, 64 MiB, `25000` records (a job with a leaner measured profile sets its own). */
  readonly MAX_IN_FLIGHT_RECORDS?: string;
  readonly MAX_IN_FLIGHT_BYTES?: string;
  readonly MAX_READ_AHEAD_RECORDS?: string;
  /** Defaults 10 MiB and 1 MiB (kafkajs' own). */
  readonly KAFKA_FETCH_MAX_BYTES?: string;
  readonly KAFKA_PARTITION_FETCH_MAX_BYTES?: string;
}

/**
 * The variables that say how to reach the Kafka cluster (brokers, TLS, SASL): what every job
 * reads, and what the tools and event generators that talk to a job's cluster read too.
 */
export function kafkaAccessEnv() {
  return {
    KAFKA_BOOTSTRAP_SERVERS: envVar(BrokerList, 'a comma-separated list of host:port, e.g. 127.0.0.1:9092', { default: '127.0.0.1:9092' }),
    KAFKA_SECURITY_PROTOCOL: envVar(oneOf(['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'] as const), 'one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL', { default: 'PLAINTEXT' }),
    KAFKA_SASL_MECHANISM: envVar(oneOf(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const), 'one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512', { default: 'PLAIN' }),
    KAFKA_SASL_USERNAME: optionalEnvVar(NonEmptyString, 'the SASL user name (required with SASL_PLAINTEXT or SASL_SSL)'),
    KAFKA_SASL_PASSWORD: optionalEnvVar(NonEmptyString, 'the SASL password (required with SASL_PLAINTEXT or SASL_SSL)', { secret: true }),
    // TLS (SSL, SASL_SSL), named like librdkafka's ssl.* settings; files are read and checked at start.
    KAFKA_SSL_CA_LOCATION: optionalEnvVar(NonEmptyString, "the PEM file of the CA certificate(s) that signed the brokers' certificates (unset: Node's built-in CAs)"),
    KAFKA_SSL_CERTIFICATE_LOCATION: optionalEnvVar(NonEmptyString, 'the PEM file of the client certificate, for brokers that require one (mutual TLS)'),
    KAFKA_SSL_KEY_LOCATION: optionalEnvVar(NonEmptyString, "the PEM file of the client certificate's private key"),
    KAFKA_SSL_KEY_PASSWORD: optionalEnvVar(NonEmptyString, 'the password of an encrypted KAFKA_SSL_KEY_LOCATION', { secret: true }),
    KAFKA_ENABLE_SSL_CERTIFICATE_VERIFICATION: optionalEnvVar(BooleanFromString, "true or false (false accepts any broker certificate: tests only)"),
  } as const;
}

type KafkaAccessEnv = EnvOf<ReturnType<typeof kafkaAccessEnv>>;

/** The brokers and their security from the access variables, with every problem as a sentence naming the variable and the fix. */
function kafkaAccessOf(e: KafkaAccessEnv): { readonly access: KafkaSecurity; readonly problems: readonly string[] } {
  const problems: string[] = [];
  const saslOn = e.KAFKA_SECURITY_PROTOCOL.startsWith('SASL');
  if (saslOn && (e.KAFKA_SASL_USERNAME === undefined || e.KAFKA_SASL_PASSWORD === undefined)) {
    problems.push(`KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required when KAFKA_SECURITY_PROTOCOL=${e.KAFKA_SECURITY_PROTOCOL}: set both, or use PLAINTEXT/SSL.`);
  }
  const tls = kafkaTlsFromEnv(e);
  problems.push(...tls.problems);
  const mechanism = e.KAFKA_SASL_MECHANISM.toLowerCase() as 'plain' | 'scram-sha-256' | 'scram-sha-512';
  return {
    access: {
      brokers: e.KAFKA_BOOTSTRAP_SERVERS,
      ssl: tls.ssl,
      ...(saslOn && e.KAFKA_SASL_USERNAME !== undefined && e.KAFKA_SASL_PASSWORD !== undefined
        ? { sasl: { mechanism, username: e.KAFKA_SASL_USERNAME, password: e.KAFKA_SASL_PASSWORD } }
        : {}),
    },
    problems,
  };
}

/**
 * How to reach the Kafka cluster, from the same variables the jobs read (`KAFKA_BOOTSTRAP_SERVERS`,
 * `KAFKA_SECURITY_PROTOCOL`, `KAFKA_SASL_*`, `KAFKA_SSL_*`): for tools and generators that talk
 * to a job's cluster. Throws `ConfigError` naming every bad variable.
 *
 * @param env The environment.
 * @param brokersDefault The brokers when `KAFKA_BOOTSTRAP_SERVERS` is unset (default 127.0.0.1:9092).
 * @return The brokers, and `ssl` / `sasl` as a Kafka client takes them.
 */
export function loadKafkaAccess(env: NodeJS.ProcessEnv = process.env, brokersDefault?: string): KafkaSecurity {
  const e = decodeEnv(kafkaAccessEnv(), brokersDefault !== undefined && env.KAFKA_BOOTSTRAP_SERVERS === undefined ? { ...env, KAFKA_BOOTSTRAP_SERVERS: brokersDefault } : env);
  const { access, problems } = kafkaAccessOf(e);
  if (problems.length > 0) throw new ConfigError([...problems]);
  return access;
}

/** The variables every job reads, with `defaults` where the job chooses its own. */
export function jobEnv(defaults: JobDefaults) {
  return {
    ...kafkaAccessEnv(),
    KAFKA_CONSUMER_GROUP: envVar(NonEmptyString, 'a consumer group id', { default: defaults.KAFKA_CONSUMER_GROUP }),
    KAFKA_SESSION_TIMEOUT_SECONDS: envVar(numberIn(6, 300), 'seconds between 6 and 300 (a crashed member is replaced after this long)', { default: '30' }),
    KAFKA_METADATA_MAX_AGE_SECONDS: envVar(numberIn(1, 3600), 'seconds between 1 and 3600 (partitions added to a topic are consumed within this long)', { default: '30' }),
    // kafkajs' defaults; smaller fetches lower the client's own peak memory (README, "Memory").
    KAFKA_FETCH_MAX_BYTES: envVar(numberIn(1024, 2 ** 30, true), 'a number of bytes, e.g. 10485760 (the most one fetch returns)', { default: defaults.KAFKA_FETCH_MAX_BYTES ?? String(10 * 1024 * 1024) }),
    KAFKA_PARTITION_FETCH_MAX_BYTES: envVar(numberIn(1024, 2 ** 30, true), 'a number of bytes, e.g. 1048576 (the most one fetch returns per partition)', { default: defaults.KAFKA_PARTITION_FETCH_MAX_BYTES ?? String(1024 * 1024) }),
    KAFKA_CLIENT: envVar(oneOf(['wire', 'kafkajs'] as const), 'wire (records fetched and decoded at the wire level, kafkajs keeps the group) or kafkajs (kafkajs does both)', { default: 'wire' }),
    KAFKA_STARTING_OFFSETS: envVar(oneOf(['earliest', 'latest'] as const), 'earliest or latest (where a group with no committed offsets starts)', { default: 'earliest' }),
    /** Prefix added to every Kafka topic name (table names keep the bare topic). */
    KAFKA_TOPIC_PREFIX: optionalEnvVar(NonEmptyString, 'a topic-name prefix such as "staging." (none by default)'),
    /** Missing topics stop the job at start; with a wait, it checks again with backoff until then. */
    KAFKA_TOPICS_WAIT_SECONDS: envVar(numberIn(0, 86_400), 'seconds between 0 and 86400 to wait at start for missing topics (0 = stop at once)', { default: '0' }),
    DELTA_BASE_PATH: envVar(NonEmptyString, 'a local folder or s3://bucket/prefix', { default: defaults.DELTA_BASE_PATH }),
    BATCH_INTERVAL_SECONDS: envVar(numberIn(0.01, 3600), 'a number of seconds between 0.01 and 3600, e.g. 10', { default: '10' }),
    BATCH_MAX_RECORDS: envVar(numberIn(1, 10_000_000, true), 'a positive integer, e.g. 50000', { default: '50000' }),
    // Chunks: a batch's records are encoded into its files as each chunk fills, so no more than
    // about a chunk of them is held as records; the batch still becomes one file per partition.
    BATCH_CHUNK_RECORDS: envVar(numberIn(0, 10_000_000, true), 'a whole number, e.g. 5000 (records encoded at a time; 0 = whole batches)', { default: defaults.BATCH_CHUNK_RECORDS ?? '5000' }),
    BATCH_MAX_BYTES: envVar(numberIn(1024, 2 ** 31, true), 'a number of bytes between 1024 and 2147483648, e.g. 33554432', { default: String(32 * 1024 * 1024) }),
    MAX_IN_FLIGHT_RECORDS: envVar(numberIn(1, 100_000_000, true), 'a positive integer, e.g. 100000', { default: defaults.MAX_IN_FLIGHT_RECORDS ?? '100000' }),
    MAX_IN_FLIGHT_BYTES: envVar(numberIn(1024, 2 ** 40, true), 'a number of bytes, e.g. 67108864', { default: defaults.MAX_IN_FLIGHT_BYTES ?? String(64 * 1024 * 1024) }),
    MAX_READ_AHEAD_RECORDS: envVar(numberIn(1, 100_000_000, true), 'a positive integer, e.g. 25000 (records read and queued before the chain takes them)', { default: defaults.MAX_READ_AHEAD_RECORDS ?? '25000' }),
    /** Where Parquet files are encoded: a worker thread (the consuming thread keeps going) or inline. */
    // inline: measured ~220 MB less peak memory than a worker for 0-10 % less throughput (README, "Memory").
    PARQUET_ENCODER: envVar(oneOf(['worker', 'inline'] as const), 'worker or inline', { default: 'inline' }),
    MAX_PAYLOAD_BYTES: envVar(numberIn(1, 2 ** 31, true), 'a number of bytes; larger payloads go to the dead-letter table', { default: String(1024 * 1024) }),
    S3_ENDPOINT_URL: optionalEnvVar(HttpUrl, 'an http(s) URL of an S3-compatible endpoint, e.g. http://127.0.0.1:9000 (unset = AWS)'),
    AWS_ACCESS_KEY_ID: optionalEnvVar(NonEmptyString, 'an access key id'),
    AWS_SECRET_ACCESS_KEY: optionalEnvVar(NonEmptyString, 'a secret access key', { secret: true }),
    AWS_REGION: envVar(NonEmptyString, 'an AWS region, e.g. us-east-1', { default: 'us-east-1' }),
    STORAGE_STARTUP_TIMEOUT_SECONDS: envVar(numberIn(0, 86_400), 'seconds between 0 and 86400 to retry unreachable storage at start (0 = stop at once)', { default: '300' }),
    DLQ_ENABLED: envVar(BooleanFromString, 'true or false', { default: 'true' }),
    DLQ_VALIDATE_JSON: envVar(BooleanFromString, 'true or false', { default: 'true' }),
    DLQ_VALIDATE_SCHEMA: envVar(BooleanFromString, 'true or false', { default: 'true' }),
    PIPELINE_ID: envVar(NonEmptyString, 'a stable id for this pipeline (part of the Delta txn appId)', { default: defaults.PIPELINE_ID }),
    HTTP_PORT: envVar(numberIn(0, 65535, true), 'a TCP port (0 = any free port, -1 is not allowed)', { default: defaults.HTTP_PORT }),
    HTTP_HOST: envVar(NonEmptyString, 'an address to bind the health/metrics server, e.g. 0.0.0.0', { default: '127.0.0.1' }),
    PROGRESS_INTERVAL_SECONDS: envVar(numberIn(0, 3600), 'seconds between progress lines on stderr (0 = off)', { default: '10' }),
    SHUTDOWN_TIMEOUT_SECONDS: envVar(numberIn(1, 3600), 'seconds to flush and commit on SIGTERM before exiting', { default: '30' }),
    LOG_LEVEL: envVar(oneOf(['debug', 'info', 'warn', 'error'] as const), 'one of debug, info, warn, error', { default: 'info' }),
    LOG_FORMAT: envVar(oneOf(['text', 'json'] as const), 'text (one line per event: time, level, message, key=value) or json (JSON lines)', { default: 'text' }),
    // Measured on the bronze benchmark (Node 24, with --max-semi-space-size=8): peak RSS 320 → 226–236 MB at the same CPU per record.
    HEAP_GROWING_PERCENT: envVar(numberIn(0, 1000, true), "an integer from 0 to 1000: how far past what is live V8's old generation may grow before it is collected, in percent (0 = V8's own sizing)", { default: '100' }),
  } as const;
}

type SharedEnv = EnvOf<ReturnType<typeof jobEnv>>;

/** A job's configuration: what every job reads (`jobEnv`). */
export interface JobConfig {
  readonly kafka: {
    readonly brokers: string[];
    readonly groupId: string;
    /** TLS: off, on with Node's built-in CAs, or with the CA / client certificate read from the KAFKA_SSL_* files. */
    readonly ssl: boolean | KafkaTls;
    readonly sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
    readonly startFrom: 'earliest' | 'latest';
    readonly topicPrefix: string;
    readonly sessionTimeoutMs: number;
    /** Cluster metadata refresh period: partitions added to a topic are assigned within it. */
    readonly metadataMaxAgeMs: number;
    readonly fetchMaxBytes: number;
    readonly partitionFetchMaxBytes: number;
    /** How long the job waits at start for missing topics (0: it stops at once). */
    readonly topicsWaitMs: number;
    /** Which Kafka client fetches: kafkajs, or the wire fetcher (kafkajs keeps the group). */
    readonly client: 'kafkajs' | 'wire';
  };
  readonly deltaBasePath: string;
  /** How long unreachable storage is retried at start before the job stops. */
  readonly storageStartupTimeoutMs: number;
  readonly s3?: { endpoint?: string; region: string; credentials?: { accessKeyId: string; secretAccessKey: string } };
  readonly batch: { timeSpanMs: number; maxRecords: number; maxBytes: number; chunkRecords: number };
  readonly maxInFlightRecords: number;
  readonly maxInFlightBytes: number;
  readonly maxReadAheadRecords: number;
  readonly maxPayloadBytes: number;
  /** Where the Delta sinks encode Parquet (default `'inline'`: on the main thread). */
  readonly parquetEncoder: 'worker' | 'inline';
  readonly dlq: { enabled: boolean; validateJson: boolean; validateSchema: boolean };
  readonly pipelineId: string;
  readonly http: { host: string; port: number };
  readonly progressIntervalMs: number;
  readonly shutdownTimeoutMs: number;
  readonly logLevel: SharedEnv['LOG_LEVEL'];
  /** `text` (default) or `json` lines on stderr. */
  readonly logFormat: SharedEnv['LOG_FORMAT'];
  /** V8's `--heap-growing-percent` for the job's process (`runJob` sets it); 0 leaves V8's own sizing. */
  readonly heapGrowingPercent: number;
}

export interface JobEnvOptions<S extends EnvSpec> {
  readonly defaults: JobDefaults;
  /** The job's own variables. */
  readonly env: S;
  /** Further problems of the raw environment (each a sentence naming the variable and the fix). */
  readonly problems?: (env: NodeJS.ProcessEnv) => readonly string[];
}

/**
 * Reads and checks a job's configuration: the shared variables (`jobEnv` with the job's defaults)
 * and the job's own. Throws one `ConfigError` naming every bad variable, shared or own.
 */
export function loadJobConfig<S extends EnvSpec>(env: NodeJS.ProcessEnv, options: JobEnvOptions<S>): { readonly config: JobConfig; readonly own: EnvOf<S> } {
  const problems: string[] = [];
  let config: JobConfig | undefined;
  let own: EnvOf<S> | undefined;
  try {
    config = sharedConfig(decodeEnv(jobEnv(options.defaults), env));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  try {
    own = decodeEnv(options.env, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  problems.push(...(options.problems?.(env) ?? []));
  if (problems.length > 0 || config === undefined || own === undefined) throw new ConfigError(problems);
  return { config, own };
}

/** The shared variables as a `JobConfig`; throws `ConfigError` for variables that do not fit together. */
function sharedConfig(e: SharedEnv): JobConfig {
  const { access, problems: accessProblems } = kafkaAccessOf(e);
  const problems: string[] = [...accessProblems];
  const onS3 = e.DELTA_BASE_PATH.startsWith('s3://');
  if (onS3 && !/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/.test(e.DELTA_BASE_PATH)) {
    problems.push(`DELTA_BASE_PATH=${JSON.stringify(e.DELTA_BASE_PATH)} is not valid: expected s3://bucket/prefix with a valid bucket name.`);
  }
  if ((e.AWS_ACCESS_KEY_ID === undefined) !== (e.AWS_SECRET_ACCESS_KEY === undefined)) {
    problems.push('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together: set both, or neither to use the default AWS credential chain.');
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(e.DELTA_BASE_PATH) && !onS3) {
    problems.push(`DELTA_BASE_PATH=${JSON.stringify(e.DELTA_BASE_PATH)} is not valid: expected a local folder or s3://bucket/prefix.`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    kafka: {
      brokers: [...access.brokers],
      groupId: e.KAFKA_CONSUMER_GROUP,
      ssl: access.ssl,
      ...(access.sasl !== undefined ? { sasl: access.sasl } : {}),
      startFrom: e.KAFKA_STARTING_OFFSETS,
      client: e.KAFKA_CLIENT,
      topicPrefix: e.KAFKA_TOPIC_PREFIX ?? '',
      sessionTimeoutMs: Math.round(e.KAFKA_SESSION_TIMEOUT_SECONDS * 1000),
      metadataMaxAgeMs: Math.round(e.KAFKA_METADATA_MAX_AGE_SECONDS * 1000),
      fetchMaxBytes: e.KAFKA_FETCH_MAX_BYTES,
      partitionFetchMaxBytes: e.KAFKA_PARTITION_FETCH_MAX_BYTES,
      topicsWaitMs: Math.round(e.KAFKA_TOPICS_WAIT_SECONDS * 1000),
    },
    deltaBasePath: e.DELTA_BASE_PATH,
    storageStartupTimeoutMs: Math.round(e.STORAGE_STARTUP_TIMEOUT_SECONDS * 1000),
    ...(onS3
      ? {
          s3: {
            region: e.AWS_REGION,
            ...(e.S3_ENDPOINT_URL !== undefined ? { endpoint: e.S3_ENDPOINT_URL } : {}),
            ...(e.AWS_ACCESS_KEY_ID !== undefined && e.AWS_SECRET_ACCESS_KEY !== undefined
              ? { credentials: { accessKeyId: e.AWS_ACCESS_KEY_ID, secretAccessKey: e.AWS_SECRET_ACCESS_KEY } }
              : {}),
          },
        }
      : {}),
    batch: { timeSpanMs: Math.round(e.BATCH_INTERVAL_SECONDS * 1000), maxRecords: e.BATCH_MAX_RECORDS, maxBytes: e.BATCH_MAX_BYTES, chunkRecords: e.BATCH_CHUNK_RECORDS },
    maxInFlightRecords: e.MAX_IN_FLIGHT_RECORDS,
    maxInFlightBytes: e.MAX_IN_FLIGHT_BYTES,
    maxReadAheadRecords: e.MAX_READ_AHEAD_RECORDS,
    maxPayloadBytes: e.MAX_PAYLOAD_BYTES,
    parquetEncoder: e.PARQUET_ENCODER,
    dlq: { enabled: e.DLQ_ENABLED, validateJson: e.DLQ_VALIDATE_JSON, validateSchema: e.DLQ_VALIDATE_SCHEMA },
    pipelineId: e.PIPELINE_ID,
    http: { host: e.HTTP_HOST, port: e.HTTP_PORT },
    progressIntervalMs: Math.round(e.PROGRESS_INTERVAL_SECONDS * 1000),
    shutdownTimeoutMs: Math.round(e.SHUTDOWN_TIMEOUT_SECONDS * 1000),
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    heapGrowingPercent: e.HEAP_GROWING_PERCENT,
  };
}

/** The Kafka topic of a job's `topic`: with `KAFKA_TOPIC_PREFIX`. */
export function kafkaTopicOf(config: JobConfig, topic: string): string {
  return `${config.kafka.topicPrefix}${topic}`;
}

/** The kafkajs consumer settings of a job (also what the benchmarks' raw consumer uses). */
export function jobConsumerSettings(config: JobConfig): {
  maxWaitTimeInMs: number;
  sessionTimeout: number;
  heartbeatInterval: number;
  maxBytes: number;
  maxBytesPerPartition: number;
  metadataMaxAge: number;
} {
  return {
    // kafkajs notices partitions added to a topic (and rejoins to get them assigned) only when
    // its metadata is older than this; its default, 5 minutes, left new partitions unread.
    metadataMaxAge: config.kafka.metadataMaxAgeMs,
    // Short fetch waits: a stop, a rebalance or the end of a bounded run waits for an idle fetch
    // to return (up to this long): 1000 ms added ~0.9 s to every `--until-caught-up` run. An
    // idle consumer then asks five times a second; a fetch with data returns at once either way.
    maxWaitTimeInMs: 200,
    sessionTimeout: config.kafka.sessionTimeoutMs,
    heartbeatInterval: Math.max(500, Math.floor(config.kafka.sessionTimeoutMs / 10)),
    maxBytes: config.kafka.fetchMaxBytes,
    maxBytesPerPartition: config.kafka.partitionFetchMaxBytes,
  };
}

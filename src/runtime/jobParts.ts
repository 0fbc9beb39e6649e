/**
 * The parts every job builds the same way from its configuration: the Delta storage and the
 * Kafka source (with the job's consumer settings, logging into the job's log and Kafka's health
 * into its monitor), and the start-up checks of both, whose failures name the variable to fix.
 */
import { MissingDependencyError, RxlakeError, causeChain } from '../core/errors.ts';
import { withRetry } from '../core/retry.ts';
import { SystematicProcessingError } from '../operators/routeErrors.ts';
import { storageFailureOf, storageFromUri } from '../sinks/delta/storage.ts';
import type { Storage } from '../sinks/delta/storage.ts';
import { MissingTopicsError, requireTopics } from '../sources/checkTopics.ts';
import type { KafkaLookupOptions } from '../sources/checkTopics.ts';
import { fromKafka } from '../sources/fromKafka.ts';
import type { KafkaSource } from '../sources/fromKafka.ts';
import { kafkajsClient } from '../sources/kafka/kafkajsClient.ts';
import { wireClient } from '../sources/kafka/wire/wireClient.ts';
import { StartupError } from './cli.ts';
import { jobConsumerSettings } from './config.ts';
import type { JobConfig } from './config.ts';
import { kafkaClientSecurity, kafkaSecurityStartupError, probeKafkaTls } from './kafkaSecurity.ts';
import type { Logger } from './log.ts';
import type { PipelineMonitor } from './monitor.ts';

/** `DELTA_BASE_PATH` as a `Storage`: a local folder, or S3 with the configured endpoint and credentials. */
export function jobStorage(config: JobConfig): Storage {
  return storageFromUri(config.deltaBasePath, {
    ...(config.s3?.endpoint !== undefined ? { endpoint: config.s3.endpoint, forcePathStyle: true } : {}),
    ...(config.s3?.region !== undefined ? { region: config.s3.region } : {}),
    ...(config.s3?.credentials !== undefined ? { credentials: config.s3.credentials } : {}),
  });
}

/** The job's brokers and their security (TLS, SASL), for each Kafka client of the job; `suffix` ends the client id. */
export function jobKafkaAccess(config: JobConfig, suffix = ''): KafkaLookupOptions {
  const { kafka } = config;
  return {
    brokers: kafka.brokers,
    clientId: `rxlake-${config.pipelineId}${suffix}`,
    ...kafkaClientSecurity(kafka),
  };
}

/** The job's Kafka source over `topics`. */
export function jobSource(config: JobConfig, topics: readonly string[], untilCaughtUp: boolean, log: Logger, monitor: PipelineMonitor): KafkaSource {
  log.info('kafka consumer', { groupId: config.kafka.groupId, topics: topics.length, client: config.kafka.client });
  return fromKafka({
    ...jobKafkaAccess(config),
    groupId: config.kafka.groupId,
    topics: [...topics],
    startFrom: config.kafka.startFrom,
    maxInFlightRecords: config.maxInFlightRecords,
    maxInFlightBytes: config.maxInFlightBytes,
    maxReadAheadRecords: config.maxReadAheadRecords,
    untilCaughtUp,
    client: config.kafka.client === 'wire' ? wireClient() : kafkajsClient(),
    consumer: jobConsumerSettings(config),
    logger: log.child({ source: 'kafka' }),
    // A broker outage: /health turns 503 until the consumer is back in its group (it retries by itself).
    onHealthChange: (h) => {
      if (h.connected) monitor.kafkaRecovered();
      else monitor.kafkaFailed(new Error(h.lastError ?? 'Kafka unreachable'));
    },
  });
}

/**
 * Sets the monitor's consumer-lag gauges (per partition: high watermark − committed offset) and
 * in-flight gauges from the source; returns the total lag and the records in flight.
 */
export function updateSourceGauges(monitor: PipelineMonitor, source: KafkaSource): { lag: bigint; inFlightRecords: number } {
  const stats = source.stats();
  let lag = 0n;
  for (const p of stats.partitions) {
    if (p.highWatermark === undefined) continue;
    const pos = p.committed ?? 0n;
    const l = p.highWatermark > pos ? p.highWatermark - pos : 0n;
    lag += l;
    monitor.consumerLag.set({ topic: p.topic, partition: String(p.partition) }, Number(l));
  }
  monitor.inFlight.set({ kind: 'records' }, stats.inFlightRecords);
  monitor.inFlight.set({ kind: 'bytes' }, stats.inFlightBytes);
  return { lag, inFlightRecords: stats.inFlightRecords };
}

/**
 * Checks at start that the job's Kafka topics exist: a missing one stops the job with a
 * `StartupError` naming it and the fix (create it, or `topicsVariable` / `KAFKA_TOPIC_PREFIX`),
 * or, with `KAFKA_TOPICS_WAIT_SECONDS`, after waiting that long for it (each check logged).
 * A broker that cannot be reached stops it naming `KAFKA_BOOTSTRAP_SERVERS`; refused SASL
 * credentials, an untrusted broker certificate or a refused client certificate stop it naming
 * the `KAFKA_SASL_*` / `KAFKA_SSL_*` variables to fix (`kafkaSecurityStartupError`).
 */
export async function requireJobTopics(config: JobConfig, topics: readonly string[], log: Logger, topicsVariable: string): Promise<void> {
  const { kafka } = config;
  try {
    await probeKafkaTls(kafka);
    await requireTopics({
      ...jobKafkaAccess(config, '-topics'),
      topics,
      waitMs: kafka.topicsWaitMs,
      onWait: (w) => {
        if (w.missing.length > 0) {
          log.warn('waiting for Kafka topics that do not exist yet (KAFKA_TOPICS_WAIT_SECONDS)', {
            missing: w.missing.join(','),
            waitedS: Math.round(w.waitedMs / 1000),
            waitS: Math.round(kafka.topicsWaitMs / 1000),
            retryInMs: w.retryInMs,
          });
        } else {
          log.info('waiting for the partition leaders of new topics', { topics: w.leaderless.join(','), retryInMs: w.retryInMs });
        }
      },
    });
  } catch (err) {
    const security = kafkaSecurityStartupError(err, kafka);
    if (security !== undefined) throw security;
    if (err instanceof MissingTopicsError) {
      const prefix = kafka.topicPrefix === '' ? 'unset' : `"${kafka.topicPrefix}"`;
      throw new StartupError(
        `${err.message}. Create ${err.topics.length === 1 ? 'it' : 'them'} (with kafka-topics.sh --create, or with the job's event generator), ` +
          `or set ${topicsVariable} to the topics to read and KAFKA_TOPIC_PREFIX (now ${prefix}) to their prefix` +
          (kafka.topicsWaitMs === 0 ? '; KAFKA_TOPICS_WAIT_SECONDS=<seconds> waits for them at start instead.' : '.'),
        { cause: err },
      );
    }
    if (isConnectionFailure(err)) {
      throw new StartupError(
        `Kafka at ${kafka.brokers.join(',')} (KAFKA_BOOTSTRAP_SERVERS) cannot be reached: ${(err as Error).message}. ` +
          'Check KAFKA_BOOTSTRAP_SERVERS (and KAFKA_SECURITY_PROTOCOL), or start the broker.',
        { cause: err },
      );
    }
    throw err;
  }
}

/** Node codes of a broker that cannot be reached at all. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ETIMEDOUT']);

/** kafkajs could not connect to any broker (after its own retries). */
function isConnectionFailure(err: unknown): boolean {
  return causeChain(err).some((e) => {
    const { name, code } = e as { name?: unknown; code?: unknown };
    return name === 'KafkaJSConnectionError' || name === 'KafkaJSBrokerNotFound' || (typeof code === 'string' && UNREACHABLE_CODES.has(code));
  });
}

/**
 * Retries `fn` at start while it fails with a retriable error (storage down, network trouble),
 * with the library's backoff (from 500 ms up to 15 s), for at most `timeoutMs`; each retry is
 * logged as `what`.
 */
export function startupRetry<T>(log: Logger, what: string, fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  return withRetry(fn, {
    initialMs: 500,
    maxMs: 15_000,
    giveUpAfterMs: timeoutMs,
    onRetry: (err, { attempt, delayMs }) => log.warn(`${what} failed, retrying`, { attempt, retryInMs: delayMs, error: err }),
  });
}

/**
 * Checks at start that the job can list its S3 base path (local folders need no check):
 * unreachable endpoints are retried for `STORAGE_STARTUP_TIMEOUT_SECONDS`, logged naming
 * `S3_ENDPOINT_URL`; refused credentials, a missing bucket or an endpoint still unreachable
 * then stop the job with a `StartupError` naming the variables to fix (never their values).
 */
export async function checkJobStorage(config: JobConfig, storage: Storage, log: Logger): Promise<void> {
  if (!storage.uri.startsWith('s3://')) return;
  try {
    await startupRetry(log, `S3 at ${s3Where(config)}`, () => storage.list('_delta_log'), config.storageStartupTimeoutMs);
  } catch (err) {
    throw storageStartupError(err, config, storage.uri) ?? err;
  }
}

/**
 * A storage failure at start as a `StartupError` that names the variables to fix: refused
 * credentials, a missing bucket, an unreachable endpoint. `undefined` for any other error.
 */
export function storageStartupError(err: unknown, config: JobConfig, uri: string = config.deltaBasePath): StartupError | undefined {
  if (err instanceof StartupError || !uri.startsWith('s3://')) return undefined;
  if (err instanceof MissingDependencyError) return new StartupError(`DELTA_BASE_PATH=${uri}: ${err.message}`, { cause: err });
  const failure = storageFailureOf(err);
  const where = s3Where(config);
  const detail = errorCode(err);
  if (failure === 'access-denied' && detail.startsWith('CredentialsProviderError')) {
    return new StartupError(
      `S3 at ${where}: no credentials for ${uri} (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are unset and the default AWS credential chain found none): ` +
        'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.',
      { cause: err },
    );
  }
  if (failure === 'access-denied') {
    const credentials = config.s3?.credentials !== undefined ? 'set; values not shown' : 'unset, so the default AWS credential chain was used';
    return new StartupError(
      `S3 at ${where} refused access to ${uri} (${detail}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (${credentials}), ` +
        'that they may read and write this bucket, and that S3_ENDPOINT_URL names the server they belong to.',
      { cause: err },
    );
  }
  if (failure === 'no-such-bucket') {
    return new StartupError(
      `S3 at ${where} has no bucket for DELTA_BASE_PATH=${uri} (${detail}): create the bucket, or point DELTA_BASE_PATH at an existing one ` +
        '(and S3_ENDPOINT_URL at the server that has it).',
      { cause: err },
    );
  }
  if (failure === 'unreachable') {
    return new StartupError(
      `S3 at ${where} cannot be reached (${err instanceof Error ? err.message : detail}; retried for ${Math.round(config.storageStartupTimeoutMs / 1000)} s, STORAGE_STARTUP_TIMEOUT_SECONDS): ` +
        'check S3_ENDPOINT_URL, or start the S3 server.',
      { cause: err },
    );
  }
  return undefined;
}

/** A hint for a job that failed on refused S3 credentials while running; `undefined` otherwise. */
export function storageFailureHint(err: unknown): string | undefined {
  return storageFailureOf(err) === 'access-denied'
    ? 'S3 refused the credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and that they may write the bucket of DELTA_BASE_PATH.'
    : undefined;
}

/**
 * What to do after a job failed, for the failures whose fix is the same in every job: records
 * that all failed while being handled (`SystematicProcessingError`), refused S3 credentials;
 * `undefined` otherwise (the error's message says it all).
 */
export function jobFailureHint(err: unknown): string | undefined {
  if (err instanceof SystematicProcessingError) {
    return (
      `Every record failed while being handled (${err.count} in a row, the last at ${err.row.kafka_topic}/${err.row.partition}@${err.row.offset}): ` +
      'a bug or a broken codec, not bad records. Fix it (the PROCESSING_ERROR rows of the dead-letter table show the error of each) and start the job again: ' +
      'the records past the last committed offset are read again.'
    );
  }
  return storageFailureHint(err);
}

/** `http://host:port (S3_ENDPOINT_URL)`, without any user info of the URL; or AWS and its region. */
function s3Where(config: JobConfig): string {
  const endpoint = config.s3?.endpoint;
  if (endpoint === undefined) return `AWS (region ${config.s3?.region ?? 'us-east-1'}; S3_ENDPOINT_URL unset)`;
  const url = new URL(endpoint);
  url.username = '';
  url.password = '';
  return `${url.toString().replace(/\/$/, '')} (S3_ENDPOINT_URL)`;
}

/** The most telling code along an error's `cause` chain (`SignatureDoesNotMatch`, `ECONNREFUSED`, …), with its message when short. */
function errorCode(err: unknown): string {
  let code: string | undefined;
  let status: number | undefined;
  for (const e of causeChain(err)) {
    if (e instanceof RxlakeError) continue; // ours wrap the cause, which tells more
    const x = e as { name?: unknown; code?: unknown; $metadata?: { httpStatusCode?: number } };
    if (typeof x.code === 'string') code = x.code;
    else if (typeof x.name === 'string' && x.name !== 'Error') code = x.name;
    status = x.$metadata?.httpStatusCode ?? status;
  }
  return [code, status === undefined ? undefined : `HTTP ${status}`].filter((v) => v !== undefined).join(', ') || (err instanceof Error ? err.message : String(err));
}

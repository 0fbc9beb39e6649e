/**
 * One lifecycle for every job. A job says what it is (`Job`): its name, usage and configuration,
 * the topics it reads, and how it opens its tables into one chain per Kafka topic. `startJob`
 * runs it: health and metrics over HTTP, the start-up checks (topics, storage), the Kafka source,
 * the chains routed by topic with offsets committed after the sinks' acknowledgements, the
 * progress line, and a settled end (the consumer has left its group) with a summary. `runJob` is
 * its command line: `--help`, `--until-caught-up`, configuration errors and start-up problems
 * (exit 2, one message naming the fix), graceful stop on SIGINT/SIGTERM within a bounded time (a
 * second signal exits at once), exit 0 when the job ended well and 1 when it failed.
 */
import { setFlagsFromString } from 'node:v8';
import { map } from 'rxjs';
import type { Observable, OperatorFunction } from 'rxjs';
import { redact } from '../core/logger.ts';
import { commitOffsets } from '../operators/commitOffsets.ts';
import { byKey } from '../operators/byKey.ts';
import type { Storage } from '../sinks/delta/storage.ts';
import type { KafkaSource } from '../sources/fromKafka.ts';
import type { KafkaRecord, SinkAck } from '../types.ts';
import { StartupError, dropKnownClientWarning } from './cli.ts';
import { kafkaTopicOf } from './config.ts';
import type { JobConfig } from './config.ts';
import { ConfigError } from './env.ts';
import { checkJobStorage, jobSource, jobStorage, requireJobTopics, storageStartupError, updateSourceGauges } from './jobParts.ts';
import { jobLogger } from './log.ts';
import type { Logger } from './log.ts';
import { PipelineMonitor } from './monitor.ts';
import type { HealthSnapshot } from './monitor.ts';

/** What a job is; `startJob` and `runJob` do the rest. */
export interface Job<Config extends JobConfig, Summary> {
  /** Name in messages (`bronze: …`, `bronze pipeline finished`). */
  readonly name: string;
  /** What `--help` prints. */
  readonly usage: string;
  /** Reads the configuration from the environment; a `ConfigError` exits 2 with its message. */
  readonly loadConfig: () => Config;
  /** The variable that names the topics to read (a missing topic's message names it). */
  readonly topicsVariable: string;
  /** The topics to read, without `KAFKA_TOPIC_PREFIX`. */
  readonly topics: (config: Config) => readonly string[];
  /** Opens what the chains write to (created if missing), once the topics and the storage are checked. */
  readonly open: (context: JobContext<Config>) => Promise<OpenJob<Summary>>;
  /** The fields of the line logged when the job ended well. */
  readonly finished: (summary: Summary) => Record<string, unknown>;
  /** Start-up errors that exit 2 with their message (they say what to fix), besides `StartupError`. */
  readonly isStartupProblem?: (err: unknown) => boolean;
  /** Logged after the job failed, after its error (e.g. how to avoid it). */
  readonly failedHint?: (err: unknown) => string | undefined;
}

/** What a job opens its tables with. */
export interface JobContext<Config extends JobConfig> {
  readonly config: Config;
  readonly log: Logger;
  /** The run's health and metrics: the chains report their writes to it. */
  readonly monitor: PipelineMonitor;
  /** `DELTA_BASE_PATH`. */
  readonly storage: Storage;
}

/** A job, opened for one run. */
export interface OpenJob<Summary> {
  /** One chain per Kafka topic. */
  readonly topics: readonly JobTopic[];
  /** The fields of the progress line (every `PROGRESS_INTERVAL_SECONDS`). */
  readonly progress: (progress: JobProgress) => Fields | Promise<Fields>;
  /** The job's summary of a run that ended well. */
  readonly summary: (totals: JobSummary) => Summary | Promise<Summary>;
  /** Releases what `open` took, once the consumer has left its group. */
  readonly close?: () => Promise<void>;
}

type Fields = Record<string, unknown>;

/** One Kafka topic of a job: the tables its chain writes, and the chain. */
export interface JobTopic {
  /** With `KAFKA_TOPIC_PREFIX`. */
  readonly kafkaTopic: string;
  /** The Delta tables the chain writes (`/health`, `rxlake_table_version` and the summary follow them). */
  readonly tables: readonly { readonly name: string; readonly version: number | null }[];
  /** Raw records in, sink acknowledgements out: what it acknowledges is committed. */
  readonly chain: (inputs: ChainInputs) => OperatorFunction<KafkaRecord, SinkAck>;
}

/** What a chain may take from the running job. */
export interface ChainInputs {
  /**
   * The Kafka source as the chain's topic sees it: give it to `batchInto` as `pressure`, and its
   * `assignment$` to `tumblingWindow` as `watermarkSources`.
   */
  readonly source: ChainSource;
}

/** The running Kafka source, seen from the chain of one topic. */
export interface ChainSource {
  /** Emits when the consumer has stopped reading because its in-flight budget is used up (`KafkaSource.saturated$`). */
  readonly saturated$: Observable<void>;
  /** The partitions of the chain's topic assigned to this consumer (`topic/partition`), on each change; the latest is replayed. */
  readonly assignment$: Observable<ReadonlySet<string>>;
}

/** What a progress line can tell. */
export interface JobProgress {
  /** Rows made durable per second (tables and dead-letter tables) since the last line. */
  readonly rate: number;
  /** Records in the topics not committed yet. */
  readonly lag: bigint;
  /** Records read and not yet acknowledged. */
  readonly inFlight: number;
  readonly health: HealthSnapshot;
}

/** What every run counts. */
export interface JobSummary {
  readonly recordsWritten: number;
  readonly deadLetters: number;
  /** Offset commits. */
  readonly commits: number;
  readonly tables: Record<string, { version: number | null; rows: number }>;
}

export interface JobRunOptions<Config extends JobConfig> {
  readonly config: Config;
  /** Ingest what the topics hold at start, then end. */
  readonly untilCaughtUp?: boolean;
  readonly log?: Logger;
  readonly monitor?: PipelineMonitor;
  /** Storage override (tests); default from `config.deltaBasePath`. */
  readonly storage?: Storage;
  /** Serve /health, /ready, /metrics; default true. */
  readonly http?: boolean;
}

export interface JobRun<Summary> {
  /** Resolves when the job has ended (caught up, or stopped and flushed) and its consumer has left its group. */
  readonly done: Promise<Summary>;
  /** Stop fetching, flush open batches, commit, disconnect. */
  stop(): void;
  readonly monitor: PipelineMonitor;
  readonly source: KafkaSource;
  readonly httpPort: number | undefined;
}

/** Starts a job; its tables exist (created if missing) before the first record is read. */
export async function startJob<Config extends JobConfig, Summary>(job: Job<Config, Summary>, options: JobRunOptions<Config>): Promise<JobRun<Summary>> {
  const { config } = options;
  const log = options.log ?? jobLogger(config);
  const monitor = options.monitor ?? new PipelineMonitor();
  const httpServer = options.http === false ? undefined : await monitor.listen(config.http.port, config.http.host);
  if (httpServer) log.info('health and metrics', { url: `http://${config.http.host}:${httpServer.port}/health`, metrics: '/metrics' });

  const storage = options.storage ?? jobStorage(config);
  let opened: OpenJob<Summary>;
  try {
    await requireJobTopics(config, job.topics(config).map((t) => kafkaTopicOf(config, t)), log, job.topicsVariable);
    await checkJobStorage(config, storage, log);
    opened = await job.open({ config, log, monitor, storage });
  } catch (err) {
    httpServer?.server.close();
    throw storageStartupError(err, config, storage.uri) ?? err;
  }
  for (const topic of opened.topics) {
    for (const table of topic.tables) monitor.registerTable(table.name, table.version);
  }

  const source = jobSource(config, opened.topics.map((t) => t.kafkaTopic), options.untilCaughtUp === true, log, monitor);
  const chains = new Map(opened.topics.map((t) => [t.kafkaTopic, t.chain({ source: topicSource(source, t.kafkaTopic) })]));
  const commits$ = source.records$.pipe(byKey((r) => r.topic, chains), commitOffsets(source));

  const progress = startProgress(config, log, monitor, source, opened.progress);
  let commits = 0;
  const finish = async (): Promise<void> => {
    clearInterval(progress);
    httpServer?.server.close();
    // The chain's teardown (which disconnects the consumer) runs right after the subscriber's
    // callbacks: wait for the disconnect, so the member has left its group on return.
    await Promise.resolve();
    await source.closed();
    await opened.close?.();
  };
  const done = new Promise<Summary>((resolve, reject) => {
    commits$.subscribe({
      next: (e) => {
        commits += 1;
        for (const o of e.offsets) monitor.committedOffset.set({ topic: o.topic, partition: String(o.partition) }, Number(o.offset));
      },
      error: (err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        void finish().then(
          () => reject(error),
          () => reject(error),
        );
      },
      complete: () => {
        void finish()
          .then(() => {
            const health = monitor.snapshot();
            return opened.summary({
              recordsWritten: health.recordsWritten,
              deadLetters: health.dlqRecords,
              commits,
              tables: Object.fromEntries(Object.entries(health.tables).map(([name, t]) => [name, { version: t.version, rows: t.rows }])),
            });
          })
          .then(resolve, reject);
      },
    });
  });
  monitor.setReady(true);
  return { done, stop: () => source.drain(), monitor, source, httpPort: httpServer?.port };
}

/**
 * Sets V8's heap growth for a job's own process (`HEAP_GROWING_PERCENT`): V8 then collects its
 * old generation before it has grown far past what is live, instead of letting it grow up to 4×
 * — the job's live heap is small and steady, its garbage plenty. A `--heap-growing-percent` on
 * Node's command line wins. The young generation's size is fixed at start-up: `node
 * --max-semi-space-size=8` (README, "Memory").
 *
 * @param config The job's configuration.
 */
export function applyJobHeapSettings(config: Pick<JobConfig, 'heapGrowingPercent'>): void {
  if (config.heapGrowingPercent <= 0 || process.execArgv.some((a) => a.startsWith('--heap-growing-percent'))) return;
  setFlagsFromString(`--heap-growing-percent=${config.heapGrowingPercent}`);
}

/** A job's command line; resolves with its exit code. */
export async function runJob<Config extends JobConfig, Summary>(job: Job<Config, Summary>, argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(job.usage);
    return 0;
  }
  const unknown = argv.filter((a) => a !== '--until-caught-up');
  if (unknown.length > 0) {
    process.stderr.write(`${job.name}: unknown argument ${unknown[0]}\n\n${job.usage}`);
    return 2;
  }
  let config: Config;
  try {
    config = job.loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${job.name}: ${redact(err.message)}\n`);
      return 2;
    }
    throw err;
  }
  const log = jobLogger(config);
  dropKnownClientWarning();
  applyJobHeapSettings(config);
  let run: JobRun<Summary>;
  try {
    run = await startJob(job, { config, log, untilCaughtUp: argv.includes('--until-caught-up') });
  } catch (err) {
    if (err instanceof StartupError || job.isStartupProblem?.(err) === true) {
      process.stderr.write(`${job.name}: ${redact((err as Error).message)}\n`);
      return 2;
    }
    throw err;
  }
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      log.error(`second ${sig}: exiting without flushing (uncommitted records will be read again)`);
      process.exit(130);
    }
    log.info(`${sig}: stopping — flushing open batches and committing offsets`, { timeoutMs: config.shutdownTimeoutMs });
    setTimeout(() => {
      log.error('shutdown timed out: exiting (uncommitted records will be read again)', { timeoutMs: config.shutdownTimeoutMs });
      process.exit(1);
    }, config.shutdownTimeoutMs).unref();
    run.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    log.info(`${job.name} pipeline finished`, job.finished(await run.done));
    return 0;
  } catch (err) {
    log.error(`${job.name} pipeline failed`, { error: err instanceof Error ? err.message : String(err) });
    const hint = job.failedHint?.(err);
    if (hint !== undefined) log.error(hint);
    return 1;
  }
}

/** One line on stderr every `progressIntervalMs` (none when 0); the source's lag and in-flight gauges are kept current either way. */
function startProgress(config: JobConfig, log: Logger, monitor: PipelineMonitor, source: KafkaSource, fields: OpenJob<unknown>['progress']): NodeJS.Timeout {
  let last = { t: Date.now(), rows: 0 };
  const timer = setInterval(
    () => {
      const { lag, inFlightRecords } = updateSourceGauges(monitor, source);
      const health = monitor.snapshot();
      const now = Date.now();
      const rows = health.recordsWritten + health.dlqRecords;
      const rate = Math.round((rows - last.rows) / Math.max(0.001, (now - last.t) / 1000));
      last = { t: now, rows };
      if (config.progressIntervalMs > 0) {
        void Promise.resolve(fields({ rate, lag, inFlight: inFlightRecords, health })).then((f) => log.info('progress', f));
      }
    },
    Math.max(1000, config.progressIntervalMs || 5000),
  );
  timer.unref();
  return timer;
}

/** The source as the chain of `kafkaTopic` sees it: its pressure, and the partitions of that topic only. */
function topicSource(source: KafkaSource, kafkaTopic: string): ChainSource {
  const prefix = `${kafkaTopic}/`;
  return {
    saturated$: source.saturated$,
    assignment$: source.assignment$.pipe(map((assigned) => new Set([...assigned].filter((p) => p.startsWith(prefix))))),
  };
}

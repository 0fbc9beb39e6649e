/**
 * What every job's command line shares: `--help`, `--until-caught-up`, configuration errors
 * (exit 2, naming the variables), start-up errors with a fix to tell (`StartupError`, exit 2), graceful stop on
 * SIGINT/SIGTERM within a bounded time (a second signal exits at once), exit 0 on success and 1
 * on failure.
 */
import { pathToFileURL } from 'node:url';
import { ConfigError } from './env.ts';
import { createLogger } from './log.ts';
import type { LogLevel, Logger } from './log.ts';

/**
 * A problem found while a job starts that the user fixes in its configuration or its
 * surroundings (a missing topic, refused credentials, an unreachable endpoint): the command line
 * prints its message, which names the cause, the variable and the fix, with no stack trace, and
 * exits 2 as for a bad variable.
 */
export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartupError';
  }
}

/** What the command line needs of a job's configuration. */
export interface JobConfig {
  readonly logLevel: LogLevel;
  readonly shutdownTimeoutMs: number;
}

/** A running job: `done` settles when it has ended; `stop()` starts a graceful stop. */
export interface RunningJob<Summary> {
  readonly done: Promise<Summary>;
  stop(): void;
}

export interface JobCli<Config extends JobConfig, Summary> {
  /** Name in messages (`bronze: …`). */
  readonly name: string;
  readonly usage: string;
  /** Reads the configuration; a `ConfigError` exits 2 with its message. */
  readonly loadConfig: () => Config;
  readonly start: (config: Config, log: Logger, untilCaughtUp: boolean) => Promise<RunningJob<Summary>>;
  /** Start-up errors that exit 2 with their message (they say what to fix), besides `StartupError`. */
  readonly isStartupProblem?: (err: unknown) => boolean;
  /** Logged after the job ended well. */
  readonly finished: (log: Logger, summary: Summary) => void;
  /** Logged after the job failed, after its error (e.g. how to avoid it). */
  readonly failedHint?: (err: unknown) => string | undefined;
}

/** Runs a job's command line; resolves with its exit code. */
export async function runJobCli<Config extends JobConfig, Summary>(
  cli: JobCli<Config, Summary>,
  argv: readonly string[],
): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(cli.usage);
    return 0;
  }
  const unknown = argv.filter((a) => a !== '--until-caught-up');
  if (unknown.length > 0) {
    process.stderr.write(`${cli.name}: unknown argument ${unknown[0]}\n\n${cli.usage}`);
    return 2;
  }
  let config: Config;
  try {
    config = cli.loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${cli.name}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  dropKnownClientWarning();
  let run: RunningJob<Summary>;
  try {
    run = await cli.start(config, log, argv.includes('--until-caught-up'));
  } catch (err) {
    if (err instanceof StartupError || cli.isStartupProblem?.(err) === true) {
      process.stderr.write(`${cli.name}: ${(err as Error).message}\n`);
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
    cli.finished(log, await run.done);
    return 0;
  } catch (err) {
    log.error(`${cli.name} pipeline failed`, { error: err instanceof Error ? err.message : String(err) });
    const hint = cli.failedHint?.(err);
    if (hint !== undefined) log.error(hint);
    return 1;
  }
}

/** Runs `main` and exits with its code when `moduleUrl` is the process's entry point. */
export function runIfEntry(moduleUrl: string, name: string, main: () => Promise<number>): void {
  const entry = process.argv[1];
  if (entry === undefined || moduleUrl !== pathToFileURL(entry).href) return;
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}

/**
 * kafkajs 2.2 arms a timer with a negative delay, which Node 23+ reports once per run as a
 * `TimeoutNegativeWarning` (harmless: Node waits 1 ms instead). The job drops that one warning
 * and prints every other as Node would.
 */
export function dropKnownClientWarning(): void {
  const defaults = process.listeners('warning');
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    if (warning.name === 'TimeoutNegativeWarning' && (warning.stack ?? '').includes('kafkajs')) return;
    for (const listener of defaults) listener(warning);
  });
}

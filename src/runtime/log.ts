/**
 * The jobs' logging: the library's `Logger` (pino, `src/core/logger.ts`) at `LOG_LEVEL`, in the
 * format of `LOG_FORMAT` — `text` (default): one line per event on stderr,
 * `<ISO time> <LEVEL> <message> key=value…`; `json`: pino's JSON lines. Registered secrets are
 * redacted (the environment's secret variables are registered when the configuration is read).
 */
import { pinoLogger } from '../core/logger.ts';
import type { Logger, LogLevel } from '../core/logger.ts';

export type { Logger, LogLevel } from '../core/logger.ts';

/** How the jobs write their log lines. */
export type LogFormat = 'text' | 'json';

/**
 * A job's logger.
 *
 * @param level Lowest level written; default `info`.
 * @param write Gets each line, newline included; default stderr.
 * @param format `text` (default) or `json`.
 * @return A `Logger`.
 */
export function createLogger(level: LogLevel = 'info', write: (line: string) => void = (l) => process.stderr.write(l), format: LogFormat = 'text'): Logger {
  return pinoLogger({ level, format, destination: write });
}

/** The logger of a job's configuration (`LOG_LEVEL`, `LOG_FORMAT`), on stderr. */
export function jobLogger(config: { readonly logLevel: LogLevel; readonly logFormat: LogFormat }): Logger {
  return createLogger(config.logLevel, undefined, config.logFormat);
}

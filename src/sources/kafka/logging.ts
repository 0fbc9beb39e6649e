/**
 * The Kafka source's log: the library's `Logger` (`src/core/logger.ts`, which redacts the
 * secrets the source registers), below the source's `logLevel` threshold nothing.
 */
import type { LogFields, Logger, LogLevel } from '../../core/logger.ts';

const RANK: Record<LogLevel | 'nothing', number> = { nothing: 0, error: 1, warn: 2, info: 3, debug: 4 };

/**
 * `logger` without the lines below `threshold` (`'nothing'`: no line at all); its children
 * keep the threshold.
 *
 * @param logger Where the lines go.
 * @param threshold The lowest level written.
 * @return A `Logger`.
 */
export function thresholdLogger(logger: Logger, threshold: LogLevel | 'nothing'): Logger {
  const at =
    (level: LogLevel) =>
    (message: string, fields?: LogFields): void => {
      if (RANK[level] <= RANK[threshold]) logger[level](message, fields);
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (bindings) => thresholdLogger(logger.child(bindings), threshold),
  };
}

/** `Name: message` of an error (what health reports as the reason, redacted there). */
export function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

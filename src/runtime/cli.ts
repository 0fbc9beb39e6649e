/**
 * What the package's command lines share (a job's whole command line is `runJob`): start-up
 * problems that exit 2 with a message naming the fix (`StartupError`), running a module's `main`
 * when it is the process's entry point, and the one client warning users are not shown.
 */
import { pathToFileURL } from 'node:url';
import { RxlakeError } from '../core/errors.ts';
import { redact } from '../core/logger.ts';

/**
 * A problem found while a job starts that the user fixes in its configuration or its
 * surroundings (a missing topic, refused credentials, an unreachable endpoint): the command line
 * prints its message, which names the cause, the variable and the fix, with no stack trace, and
 * exits 2 as for a bad variable. Code `STARTUP_ERROR`, not retriable.
 */
export class StartupError extends RxlakeError {
  constructor(message: string, options: ErrorOptions = {}) {
    super(message, { ...options, code: 'STARTUP_ERROR' });
    this.name = 'StartupError';
  }
}

/** An error as a command line prints it when it fails: its stack (or text), registered secrets redacted. */
export function errorReport(err: unknown): string {
  return redact(err instanceof Error ? (err.stack ?? err.message) : String(err));
}

/** Runs `main` and exits with its code when `moduleUrl` is the process's entry point. */
export function runIfEntry(moduleUrl: string, name: string, main: () => Promise<number>): void {
  const entry = process.argv[1];
  if (entry === undefined || moduleUrl !== pathToFileURL(entry).href) return;
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${name}: ${errorReport(err)}\n`);
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

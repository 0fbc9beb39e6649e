/**
 * One `Logger` for the library: four levels with structured fields and `child(bindings)`. The
 * default implementation is pino (`pinoLogger`: JSON lines, or the jobs' one-line text format);
 * `fromPino` adapts a pino logger of the application's own; `silentLogger` drops everything.
 *
 * Secrets are redacted in one place: strings registered once with `registerSecret` (passwords,
 * secret keys) are replaced by `***` in every message and field a `Logger` of this module writes
 * (error messages and stacks included), and `redactError` makes the same cut in errors that
 * leave the library.
 */
import pino from 'pino';
import type { Logger as PinoLogger } from 'pino';
import { causeChain } from './errors.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Structured fields of a log line. */
export type LogFields = Readonly<Record<string, unknown>>;

/** What the library logs through. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger that adds `bindings` to every line. */
  child(bindings: LogFields): Logger;
}

// ---- secrets -------------------------------------------------------------------------------

const REDACTED = '***';
let secrets: readonly string[] = [];

/**
 * Registers secret strings (passwords, secret keys, tokens): from now on every `Logger` of
 * this module writes `***` in their place, and `redact` / `redactError` cut them. Empty and
 * missing values are ignored. Process-wide; there is no way to unregister.
 *
 * ## Example
 * ```ts
 * registerSecret(process.env.KAFKA_SASL_PASSWORD, process.env.AWS_SECRET_ACCESS_KEY);
 * ```
 *
 * @param values The secrets.
 */
export function registerSecret(...values: ReadonlyArray<string | null | undefined>): void {
  const next = new Set(secrets);
  for (const v of values) {
    if (typeof v !== 'string' || v.length === 0) continue;
    next.add(v);
    // The same secret as it appears inside JSON text.
    const escaped = JSON.stringify(v).slice(1, -1);
    if (escaped !== v) next.add(escaped);
  }
  // Longest first, so a secret that contains another is cut whole.
  secrets = [...next].sort((a, b) => b.length - a.length);
}

/**
 * `text` with every registered secret replaced by `***`.
 *
 * @param text Any text.
 * @return The text, redacted.
 */
export function redact(text: string): string {
  let out = text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join(REDACTED);
  return out;
}

/**
 * `err` itself when no registered secret appears in its message or stack (nor in its causes');
 * otherwise a copy, of the same class and with the same own fields, whose texts are redacted.
 *
 * @param err Anything thrown.
 * @return What to rethrow or print instead of `err`.
 */
export function redactError<E>(err: E): E {
  if (secrets.length === 0) return err;
  const chain = causeChain(err);
  if (!chain.some((e) => textsOf(e).some((t) => redact(t) !== t))) return typeof err === 'string' ? (redact(err) as E) : err;
  return redactObject(err, 0) as E;
}

function textsOf(e: object): string[] {
  const x = e as { message?: unknown; stack?: unknown };
  return [x.message, x.stack].filter((t): t is string => typeof t === 'string');
}

function redactObject(e: unknown, depth: number): unknown {
  if (typeof e === 'string') return redact(e);
  if (typeof e !== 'object' || e === null || depth >= 10) return e;
  const copy = Object.create(Object.getPrototypeOf(e) as object) as Record<string, unknown>;
  for (const key of Object.getOwnPropertyNames(e)) {
    const value = (e as Record<string, unknown>)[key];
    const redacted = typeof value === 'string' ? redact(value) : key === 'cause' ? redactObject(value, depth + 1) : value;
    Object.defineProperty(copy, key, { value: redacted, writable: true, configurable: true, enumerable: Object.prototype.propertyIsEnumerable.call(e, key) });
  }
  return copy;
}

// ---- fields --------------------------------------------------------------------------------

/** An error as a log field: its class, code, message and stack, with its causes'. */
function errorField(err: Error, depth: number): Record<string, unknown> {
  const x = err as Error & { code?: unknown; retriable?: unknown };
  const out: Record<string, unknown> = { type: err.name, message: redact(err.message) };
  if (typeof x.code === 'string' || typeof x.code === 'number') out.code = x.code;
  if (typeof x.retriable === 'boolean') out.retriable = x.retriable;
  if (err.stack !== undefined) out.stack = redact(err.stack);
  if (err.cause !== undefined && depth < 5) out.cause = err.cause instanceof Error ? errorField(err.cause, depth + 1) : plain(err.cause, depth + 1);
  return out;
}

/** A field value made safe to write: secrets cut, bigints as strings, errors as objects. */
function plain(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redact(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof Error) return errorField(value, depth);
  if (ArrayBuffer.isView(value)) return `<${value.byteLength} bytes>`; // payloads are not for logs
  if (depth >= 6) return '[…]';
  if (Array.isArray(value)) return value.map((v) => plain(v, depth + 1));
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Map) return plain(Object.fromEntries(value), depth);
  if (value instanceof Set) return plain([...value], depth);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = plain(v, depth + 1);
  return out;
}

function plainFields(fields: LogFields): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = plain(v, 0);
  return out;
}

// ---- pino ----------------------------------------------------------------------------------

/**
 * A `Logger` over a pino logger of the application's own (its level, destination, transports
 * and bindings stay as configured). Messages and fields are redacted before pino sees them.
 *
 * ## Example
 * ```ts
 * const log = fromPino(pino({ level: 'debug' }));
 * ```
 *
 * @param logger The pino logger.
 * @return The same logger as a `Logger`.
 */
export function fromPino(logger: PinoLogger): Logger {
  const emit =
    (level: LogLevel) =>
    (message: string, fields?: LogFields): void => {
      if (!logger.isLevelEnabled(level)) return;
      if (fields === undefined) logger[level](redact(message));
      else logger[level](plainFields(fields), redact(message));
    };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (bindings) => fromPino(logger.child(plainFields(bindings))),
  };
}

/** Where `pinoLogger` writes. */
export type LogDestination = 'stderr' | 'stdout' | ((line: string) => void);

export interface PinoLoggerOptions {
  /** Lowest level written; default `'info'`. `'silent'` writes nothing. */
  readonly level?: LogLevel | 'silent';
  /**
   * `'json'` (default): pino's JSON lines (`{"level":"info","time":"…","msg":"…",…fields}`).
   * `'text'`: one line per event, `<ISO time> <LEVEL> <message> key=value…` (what the jobs
   * write by default).
   */
  readonly format?: 'json' | 'text';
  /** Default `'stderr'`; a function gets each line, newline included. */
  readonly destination?: LogDestination;
  /** Fields on every line. */
  readonly bindings?: LogFields;
}

/**
 * The default `Logger`: pino, writing synchronously to stderr (or `destination`), JSON lines
 * or text, with registered secrets redacted.
 *
 * ## Example
 * ```ts
 * const log = pinoLogger({ level: 'debug' }).child({ table: 'bronze_trips' });
 * log.warn('commit retried', { attempt: 2, error: err });
 * ```
 *
 * @param options Level, format, destination and bindings.
 * @return A `Logger`.
 */
export function pinoLogger(options: PinoLoggerOptions = {}): Logger {
  const { level = 'info', format = 'json', destination = 'stderr', bindings } = options;
  const out: (line: string) => void =
    typeof destination === 'function' ? destination : destination === 'stdout' ? (l) => process.stdout.write(l) : (l) => process.stderr.write(l);
  const write = format === 'text' ? (line: string): void => out(textLine(line)) : out;
  const logger = pino(
    {
      level,
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Errors are turned into fields before pino sees them (`plain`): no second error format.
      serializers: { err: (v: unknown) => v },
    },
    { write },
  );
  const wrapped = fromPino(logger);
  return bindings === undefined ? wrapped : wrapped.child(bindings);
}

/** A pino JSON line as `<time> <LEVEL> <msg> key=value…`. */
function textLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { level, time, msg, ...fields } = entry;
  let line = `${String(time)} ${String(level).toUpperCase().padEnd(5)} ${typeof msg === 'string' ? msg : ''}`;
  for (const [k, v] of Object.entries(fields)) line += ` ${k}=${textValue(v)}`;
  return `${line}\n`;
}

function textValue(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (typeof v === 'object' && v !== null && typeof (v as { message?: unknown }).message === 'string' && typeof (v as { type?: unknown }).type === 'string') {
    return JSON.stringify((v as { message: string }).message); // an error: its message
  }
  return JSON.stringify(v) ?? String(v);
}

/** A `Logger` that writes nothing. */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};

let fallback: Logger | undefined;

/**
 * What the library logs through when it is given no logger: pino JSON lines on stderr, `warn`
 * and above (created on first use).
 *
 * @return The shared default logger.
 */
export function defaultLogger(): Logger {
  fallback ??= pinoLogger({ level: 'warn' });
  return fallback;
}

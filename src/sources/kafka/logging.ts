/**
 * The Kafka source's log: a level threshold, JSON lines on stderr by default, and the
 * redaction of secrets (SASL password, TLS passphrase) from every line and every error that
 * leaves the source. Kept in one place so it can give way to a shared logger in one edit.
 */
import type { KafkaLogLevel, KafkaSasl, KafkaSsl } from './client.ts';

/** Receives the client's log lines (secrets already redacted). */
export type KafkaLogger = (level: KafkaLogLevel, message: string, extra: Record<string, unknown>) => void;

/** Removes secrets from text and errors. */
export interface Redactor {
  readonly secrets: readonly string[];
  readonly text: (text: string) => string;
  /** The error's message, redacted. */
  readonly errorText: (err: unknown) => string;
  /** The error as-is unless it mentions a secret; then a copy (same name) with the secret redacted. */
  readonly error: (err: unknown) => unknown;
}

export function redactor(options: { readonly sasl?: KafkaSasl; readonly ssl?: KafkaSsl }): Redactor {
  const secrets: string[] = [];
  const passphrase = typeof options.ssl === 'object' ? options.ssl.passphrase : undefined;
  for (const v of [options.sasl?.password, passphrase]) {
    if (typeof v === 'string' && v.length > 0) secrets.push(v);
  }
  const text = (t: string): string => secrets.reduce((out, s) => out.split(s).join('***'), t);
  const errorText = (err: unknown): string => text(err instanceof Error ? err.message : String(err));
  return {
    secrets,
    text,
    errorText,
    error: (err) => {
      if (secrets.length === 0) return err;
      const all = err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err);
      if (!secrets.some((s) => all.includes(s))) return err;
      const copy = new Error(errorText(err));
      copy.name = err instanceof Error ? err.name : 'Error';
      return copy;
    },
  };
}

/** `Name: message` of an error (what health reports as the reason). */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return `${err.name}: ${err.message}`;
}

const RANK: Record<KafkaLogLevel | 'nothing', number> = { nothing: 0, error: 1, warn: 2, info: 4, debug: 5 };

/**
 * A logger that drops lines below `threshold`, redacts message and extra fields (bigints as
 * decimal strings), and writes to `logger` or, without one, JSON lines on stderr.
 */
export function makeLogger(logger: KafkaLogger | undefined, redact: Redactor, threshold: KafkaLogLevel | 'nothing'): KafkaLogger {
  return (level, message, extra) => {
    if (RANK[level] > RANK[threshold]) return;
    let safeExtra: Record<string, unknown>;
    try {
      safeExtra = JSON.parse(redact.text(JSON.stringify(extra, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)))) as Record<string, unknown>;
    } catch {
      safeExtra = {};
    }
    const text = redact.text(message);
    if (logger) {
      logger(level, text, safeExtra);
      return;
    }
    process.stderr.write(`${JSON.stringify({ level, message: text, ...safeExtra })}\n`);
  };
}

/**
 * Typed environment variables: each one an io-ts codec from the raw string, a default and a
 * human description of what is accepted. `decodeEnv` reports every bad variable at once, by
 * name, with what was found and how to fix it, so a misconfigured job fails at start.
 */
import * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';
import { RxlakeError } from '../core/errors.ts';
import { registerSecret } from '../core/logger.ts';

/** One environment variable: how to decode it, its default, what it accepts. */
export interface EnvVar<A> {
  readonly codec: t.Decoder<string, A>;
  /** Raw default used when unset or empty; omit for a required variable. */
  readonly default?: string;
  /** What is accepted, shown when the value is bad ("a positive integer, e.g. 10"). */
  readonly accepts: string;
  /** A password or key: hidden in error messages, and registered as a secret (`registerSecret`) so that no log line shows it. */
  readonly secret?: boolean;
  /** Unset is fine: the decoded value is then `undefined`. */
  readonly optional?: boolean;
}

export type EnvSpec = Record<string, EnvVar<unknown>>;
export type EnvOf<S extends EnvSpec> = {
  [K in keyof S]: S[K] extends EnvVar<infer A> ? (S[K] extends { optional: true } ? A | undefined : A) : never;
};

/** Thrown when the environment does not decode; `message` lists every problem. Code `CONFIG_ERROR`. */
export class ConfigError extends RxlakeError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`, { code: 'CONFIG_ERROR' });
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Decodes `env` against `spec`; throws a `ConfigError` naming each bad variable. Secret variables' values are registered as secrets. */
export function decodeEnv<S extends EnvSpec>(spec: S, env: NodeJS.ProcessEnv = process.env): EnvOf<S> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, v] of Object.entries(spec)) {
    const raw = env[name];
    if (v.secret === true) registerSecret(raw, raw?.trim());
    const value = raw === undefined || raw.trim() === '' ? v.default : raw.trim();
    if (value === undefined) {
      if (v.optional) continue;
      problems.push(`${name} is required: set it to ${v.accepts}.`);
      continue;
    }
    const result = v.codec.decode(value);
    if (isLeft(result)) {
      const shown = v.secret ? '(hidden)' : JSON.stringify(value);
      problems.push(`${name}=${shown} is not valid: expected ${v.accepts}.`);
      continue;
    }
    out[name] = result.right;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out as EnvOf<S>;
}

/** Declares a variable; `default` is the raw string used when it is unset. */
export function envVar<A>(codec: t.Type<A, string, string>, accepts: string, options: { default?: string; secret?: boolean } = {}): EnvVar<A> {
  return { codec, accepts, ...options };
}

/** Declares a variable that may stay unset (decoded as `undefined`). */
export function optionalEnvVar<A>(codec: t.Type<A, string, string>, accepts: string, options: { secret?: boolean } = {}): EnvVar<A> & { optional: true } {
  return { codec, accepts, optional: true, ...options };
}

// ---- codecs from string -------------------------------------------------------------------

export const NonEmptyString = new t.Type<string, string, string>(
  'NonEmptyString',
  (u): u is string => typeof u === 'string' && u.length > 0,
  (s, c) => (s.length > 0 ? t.success(s) : t.failure(s, c)),
  (s) => s,
);

/** A number in [min, max], from its decimal text. */
export function numberIn(min: number, max: number, integer = false): t.Type<number, string, string> {
  return new t.Type<number, string, string>(
    `number[${min},${max}]`,
    (u): u is number => typeof u === 'number',
    (s, c) => {
      const n = Number(s);
      const ok = s.trim() !== '' && Number.isFinite(n) && n >= min && n <= max && (!integer || Number.isInteger(n));
      return ok ? t.success(n) : t.failure(s, c);
    },
    String,
  );
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

export const BooleanFromString = new t.Type<boolean, string, string>(
  'BooleanFromString',
  (u): u is boolean => typeof u === 'boolean',
  (s, c) => {
    const l = s.toLowerCase();
    return TRUE.has(l) ? t.success(true) : FALSE.has(l) ? t.success(false) : t.failure(s, c);
  },
  String,
);

/** One of a fixed set of words (case-insensitive input, canonical output). */
export function oneOf<const W extends string>(words: readonly W[]): t.Type<W, string, string> {
  const byLower = new Map(words.map((w) => [w.toLowerCase(), w]));
  return new t.Type<W, string, string>(
    words.join('|'),
    (u): u is W => typeof u === 'string' && (words as readonly string[]).includes(u),
    (s, c) => {
      const w = byLower.get(s.toLowerCase());
      return w === undefined ? t.failure(s, c) : t.success(w);
    },
    String,
  );
}

/** Comma-separated list of `host:port`. */
export const BrokerList = new t.Type<string[], string, string>(
  'BrokerList',
  (u): u is string[] => Array.isArray(u),
  (s, c) => {
    const parts = s.split(',').map((p) => p.trim()).filter((p) => p.length > 0);
    const ok = parts.length > 0 && parts.every((p) => /^[^\s:/]+:\d{1,5}$/.test(p.replace(/^[a-z]+:\/\//i, '')));
    return ok ? t.success(parts.map((p) => p.replace(/^[a-z]+:\/\//i, ''))) : t.failure(s, c);
  },
  (a) => a.join(','),
);

/** An http(s) URL. */
export const HttpUrl = new t.Type<string, string, string>(
  'HttpUrl',
  (u): u is string => typeof u === 'string',
  (s, c) => {
    try {
      const u = new URL(s);
      return u.protocol === 'http:' || u.protocol === 'https:' ? t.success(s) : t.failure(s, c);
    } catch {
      return t.failure(s, c);
    }
  },
  (s) => s,
);

/** Comma-separated subset of `words`; `all` means every word. */
export function subsetOf<const W extends string>(words: readonly W[]): t.Type<W[], string, string> {
  return new t.Type<W[], string, string>(
    `subset of ${words.join(',')}`,
    (u): u is W[] => Array.isArray(u),
    (s, c) => {
      if (s.trim().toLowerCase() === 'all') return t.success([...words]);
      const parts = s.split(',').map((p) => p.trim()).filter((p) => p.length > 0);
      const ok = parts.length > 0 && parts.every((p) => (words as readonly string[]).includes(p));
      return ok ? t.success([...new Set(parts)] as W[]) : t.failure(s, c);
    },
    (a) => a.join(','),
  );
}

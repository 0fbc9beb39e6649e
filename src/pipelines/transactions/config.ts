/**
 * The transactions job's configuration: the variables every job reads (`src/runtime/config.ts`:
 * Kafka, Delta storage, batching, dead letters, HTTP, logging — the bronze job's names and checks)
 * with defaults of its own, plus its topics, the windows and PostgreSQL.
 *
 * Also what the jobs of the same family (retail, cards) configure alike: the window variables,
 * the PostgreSQL URL, typed events always validated, and the names their users know standing in
 * for rxlake's own (`aliasedJobConfig`).
 */
import { isRight } from 'fp-ts/lib/Either.js';
import * as t from 'io-ts';
import { loadJobConfig } from '../../runtime/config.ts';
import type { JobConfig, JobEnvOptions } from '../../runtime/config.ts';
import { BooleanFromString, ConfigError, NonEmptyString, envVar, numberIn, optionalEnvVar, subsetOf } from '../../runtime/env.ts';
import type { EnvOf, EnvSpec } from '../../runtime/env.ts';
import { TRANSACTION_TOPICS } from './events.ts';
import type { TransactionTopic } from './events.ts';

export const PostgresUrl = new t.Type<string, string, string>(
  'PostgresUrl',
  (u): u is string => typeof u === 'string',
  (s, c) => (/^postgres(ql)?:\/\/[^/\s]+(\/[^\s]*)?$/.test(s) ? t.success(s) : t.failure(s, c)),
  (s) => s,
);

/** The largest `MAX_EVENT_TIME_LEAD_SECONDS`: ten years. */
const MAX_LEAD_SECONDS = 315_360_000;

/** The quarantine error type of an event dated more than `MAX_EVENT_TIME_LEAD_SECONDS` ahead of the clock. */
export const EVENT_TIME_TOO_FAR_AHEAD = 'EVENT_TIME_TOO_FAR_AHEAD' as const;

/** The window variables, with a job's default watermark delay. */
export function windowEnv(defaultDelaySeconds: number) {
  return {
    WINDOW_SECONDS: envVar(numberIn(1, 86_400, true), 'whole seconds between 1 and 86400, e.g. 60 (tumbling window length)', { default: '60' }),
    WATERMARK_DELAY_SECONDS: envVar(numberIn(0, 86_400), 'seconds between 0 and 86400, e.g. 30 (how far behind a partition\'s newest event time its watermark stays)', {
      default: String(defaultDelaySeconds),
    }),
    WATERMARK_IDLE_SECONDS: envVar(numberIn(0.1, 86_400), 'seconds between 0.1 and 86400, e.g. 30 (a partition silent this long stops holding the watermark back)', { default: '30' }),
    MAX_EVENT_TIME_LEAD_SECONDS: envVar(
      numberIn(0, MAX_LEAD_SECONDS),
      `seconds between 0 and ${MAX_LEAD_SECONDS}, e.g. 3600 (an event dated further ahead of the clock is quarantined as ${EVENT_TIME_TOO_FAR_AHEAD} instead of moving the watermark; 0 turns the check off)`,
      { default: '3600' },
    ),
  } as const;
}

/** What a job of windows knows of them. */
export interface WindowSettings {
  readonly windowMs: number;
  readonly watermarkDelayMs: number;
  readonly watermarkIdleMs: number;
  /**
   * How far (ms) an event's time may lie ahead of the clock (`MAX_EVENT_TIME_LEAD_SECONDS`);
   * further ahead, it is quarantined. `undefined`: no limit (the variable set to 0).
   */
  readonly maxEventTimeLeadMs: number | undefined;
}

/** A job's configuration with windows. */
export type WindowedConfig = JobConfig & WindowSettings;

/** The window variables as settings. */
export function windowSettings(own: EnvOf<ReturnType<typeof windowEnv>>): WindowSettings {
  return {
    windowMs: own.WINDOW_SECONDS * 1000,
    watermarkDelayMs: Math.round(own.WATERMARK_DELAY_SECONDS * 1000),
    watermarkIdleMs: Math.round(own.WATERMARK_IDLE_SECONDS * 1000),
    maxEventTimeLeadMs: own.MAX_EVENT_TIME_LEAD_SECONDS === 0 ? undefined : Math.round(own.MAX_EVENT_TIME_LEAD_SECONDS * 1000),
  };
}

const transactionsEnv = {
  TRANSACTION_TOPICS: envVar(subsetOf(TRANSACTION_TOPICS), `"all" or a comma-separated subset of ${TRANSACTION_TOPICS.join(', ')}`, { default: 'all' }),
  POSTGRES_URL: envVar(PostgresUrl, 'a PostgreSQL URL, e.g. postgres://user:password@host:5432/db', { default: 'postgres://postgres@127.0.0.1:54329/postgres', secret: true }),
  POSTGRES_SCHEMA: optionalEnvVar(NonEmptyString, 'a PostgreSQL schema name (default: the PIPELINE_ID, so two pipelines never share a window table)'),
  ...windowEnv(30),
} as const;

export interface TransactionsConfig extends WindowedConfig {
  readonly transactionTopics: readonly TransactionTopic[];
  readonly postgresUrl: string;
  /** Schema of the PostgreSQL window tables (created if missing). */
  readonly postgresSchema: string;
}

/** Reads and checks the transactions job's configuration; throws `ConfigError` naming every bad variable. */
export function loadTransactionsConfig(env: NodeJS.ProcessEnv = process.env): TransactionsConfig {
  const { config, own } = loadJobConfig(env, {
    defaults: { KAFKA_CONSUMER_GROUP: 'transactions', DELTA_BASE_PATH: './data/transactions', PIPELINE_ID: 'transactions', HTTP_PORT: '8081' },
    env: transactionsEnv,
    problems: alwaysValidated('transactions'),
  });
  return {
    ...config,
    transactionTopics: own.TRANSACTION_TOPICS,
    postgresUrl: own.POSTGRES_URL,
    postgresSchema: own.POSTGRES_SCHEMA ?? config.pipelineId,
    ...windowSettings(own),
  };
}

/** A job that types every event cannot have JSON and schema checks switched off. */
export function alwaysValidated(job: string): (env: NodeJS.ProcessEnv) => string[] {
  return (env) => {
    const problems: string[] = [];
    for (const name of ['DLQ_VALIDATE_JSON', 'DLQ_VALIDATE_SCHEMA'] as const) {
      const raw = (env[name] ?? '').trim();
      const decoded = raw === '' ? undefined : BooleanFromString.decode(raw);
      if (decoded !== undefined && isRight(decoded) && !decoded.right) {
        problems.push(`${name}=false is not valid for the ${job} job: it types every event, so events are always checked; unset ${name}.`);
      }
    }
    return problems;
  };
}

/**
 * A variable of the job's users standing for one of rxlake's: when set, its value (converted, if
 * `convert` is given) is the rxlake variable's, and messages about it name it.
 */
export interface EnvAlias {
  /** The users' name, e.g. `OUTPUT_PATH` for `DELTA_BASE_PATH`. */
  readonly name: string;
  /** Its value when neither it nor the rxlake variable is set. */
  readonly default?: string;
  /** Its value as the rxlake variable's raw value; a string is a problem (what to fix). */
  readonly convert?: (raw: string) => { readonly value: string } | string;
}

/**
 * `loadJobConfig` for a job whose users know some variables by other names (`aliases`, by
 * rxlake name). An alias that is set wins; setting both it and the rxlake variable to different
 * values is a problem; unset, the rxlake variable and then the alias's default apply. Problems
 * with an aliased value name the alias.
 */
export function aliasedJobConfig<S extends EnvSpec>(
  env: NodeJS.ProcessEnv,
  aliases: Readonly<Record<string, EnvAlias>>,
  options: JobEnvOptions<S>,
): { readonly config: JobConfig; readonly own: EnvOf<S> } {
  const merged: NodeJS.ProcessEnv = { ...env };
  const problems: string[] = [];
  const named = new Map<string, string>();
  for (const [target, alias] of Object.entries(aliases)) {
    const raw = (env[alias.name] ?? '').trim();
    const theirs = (env[target] ?? '').trim();
    const given = raw !== '' ? raw : theirs === '' ? alias.default : undefined;
    if (given === undefined) continue;
    const converted = alias.convert === undefined ? { value: given } : alias.convert(given);
    if (typeof converted === 'string') {
      problems.push(`${alias.name}=${JSON.stringify(given)} is not valid: ${converted}`);
      continue;
    }
    if (raw !== '' && theirs !== '' && theirs !== converted.value) {
      problems.push(`${alias.name} and ${target} are both set, to different values: set only ${alias.name}.`);
      continue;
    }
    merged[target] = converted.value;
    named.set(target, alias.name);
  }
  try {
    const loaded = loadJobConfig(merged, options);
    if (problems.length > 0) throw new ConfigError([]);
    return loaded;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const renamed = err.problems.map((p) => {
      const name = /^[A-Z0-9_]+/.exec(p)?.[0];
      const alias = name === undefined ? undefined : named.get(name);
      return alias === undefined ? p : `${alias}${p.slice((name as string).length)}`;
    });
    throw new ConfigError([...problems, ...renamed]);
  }
}

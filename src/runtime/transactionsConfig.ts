/**
 * The transactions job's configuration: the bronze job's variables (Kafka, Delta storage,
 * batching, dead letters, HTTP, logging — same names, same checks) with defaults of its own,
 * plus the windows and PostgreSQL.
 */
import { TRANSACTION_TOPICS } from '../pipelines/transactions/events.ts';
import type { TransactionTopic } from '../pipelines/transactions/events.ts';
import { loadBronzeConfig } from './config.ts';
import type { BronzeConfig } from './config.ts';
import { BooleanFromString, ConfigError, NonEmptyString, decodeEnv, envVar, numberIn, optionalEnvVar, subsetOf } from './env.ts';
import { isRight } from 'fp-ts/lib/Either.js';
import type { EnvOf } from './env.ts';
import * as t from 'io-ts';

/** Defaults that differ from the bronze job's (applied when the variable is unset). */
const DEFAULTS: Readonly<Record<string, string>> = {
  KAFKA_CONSUMER_GROUP: 'transactions',
  DELTA_BASE_PATH: './data/transactions',
  PIPELINE_ID: 'transactions',
  HTTP_PORT: '8081',
  BATCH_CHUNK_RECORDS: '0',
};

const PostgresUrl = new t.Type<string, string, string>(
  'PostgresUrl',
  (u): u is string => typeof u === 'string',
  (s, c) => (/^postgres(ql)?:\/\/[^/\s]+(\/[^\s]*)?$/.test(s) ? t.success(s) : t.failure(s, c)),
  (s) => s,
);

export const transactionsEnv = {
  TRANSACTION_TOPICS: envVar(subsetOf(TRANSACTION_TOPICS), `"all" or a comma-separated subset of ${TRANSACTION_TOPICS.join(', ')}`, { default: 'all' }),
  POSTGRES_URL: envVar(PostgresUrl, 'a PostgreSQL URL, e.g. postgres://user:password@host:5432/db', { default: 'postgres://postgres@127.0.0.1:54329/postgres', secret: true }),
  POSTGRES_SCHEMA: optionalEnvVar(NonEmptyString, 'a PostgreSQL schema name (default: the PIPELINE_ID, so two pipelines never share a window table)'),
  WINDOW_SECONDS: envVar(numberIn(1, 86_400, true), 'whole seconds between 1 and 86400, e.g. 60 (tumbling window length)', { default: '60' }),
  WATERMARK_DELAY_SECONDS: envVar(numberIn(0, 86_400), 'seconds between 0 and 86400, e.g. 30 (how far behind a partition\'s newest event time its watermark stays)', { default: '30' }),
  WATERMARK_IDLE_SECONDS: envVar(numberIn(0.1, 86_400), 'seconds between 0.1 and 86400, e.g. 30 (a partition silent this long stops holding the watermark back)', { default: '30' }),
} as const;

export interface TransactionsConfig extends BronzeConfig {
  readonly transactionTopics: readonly TransactionTopic[];
  readonly postgresUrl: string;
  /** Schema of the PostgreSQL window tables (created if missing). */
  readonly postgresSchema: string;
  readonly windowMs: number;
  readonly watermarkDelayMs: number;
  readonly watermarkIdleMs: number;
}

/** Reads and checks the transactions job's configuration; throws `ConfigError` naming every bad variable. */
export function loadTransactionsConfig(env: NodeJS.ProcessEnv = process.env): TransactionsConfig {
  const withDefaults: NodeJS.ProcessEnv = { ...env };
  for (const [name, value] of Object.entries(DEFAULTS)) {
    if ((env[name] ?? '').trim() === '') withDefaults[name] = value;
  }
  const problems: string[] = [];
  let base: BronzeConfig | undefined;
  let own: EnvOf<typeof transactionsEnv> | undefined;
  try {
    base = loadBronzeConfig(withDefaults);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  try {
    own = decodeEnv(transactionsEnv, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  for (const name of ['DLQ_VALIDATE_JSON', 'DLQ_VALIDATE_SCHEMA'] as const) {
    const raw = (env[name] ?? '').trim();
    const decoded = raw === '' ? undefined : BooleanFromString.decode(raw);
    if (decoded !== undefined && isRight(decoded) && !decoded.right) {
      problems.push(`${name}=false is not valid for the transactions job: it types every event, so events are always checked; unset ${name}.`);
    }
  }
  if (problems.length > 0 || base === undefined || own === undefined) throw new ConfigError(problems);
  return {
    ...base,
    transactionTopics: own.TRANSACTION_TOPICS,
    postgresUrl: own.POSTGRES_URL,
    postgresSchema: own.POSTGRES_SCHEMA ?? base.pipelineId,
    windowMs: own.WINDOW_SECONDS * 1000,
    watermarkDelayMs: Math.round(own.WATERMARK_DELAY_SECONDS * 1000),
    watermarkIdleMs: Math.round(own.WATERMARK_IDLE_SECONDS * 1000),
  };
}

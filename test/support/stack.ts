/**
 * Where the local stack's real services listen (started by `scripts/stack.sh up`), and the
 * independent Delta reader. Every integration test takes its endpoints from here.
 *
 * The explicit variables win (`KAFKA_BOOTSTRAP_SERVERS`, `S3_ENDPOINT_URL`, `RXLAKE_PG_URL`,
 * `RXLAKE_PYTHON`); otherwise the endpoints follow the stack script's own variables
 * (`KAFKA_PORT`, `S3_PORT`, `PG_PORT`, `RXLAKE_STACK_DIR`), so a second stack on other ports
 * is tested by setting the same variables for `scripts/stack.sh up` and for the tests.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const env = process.env;

/** A port variable of scripts/stack.sh, or its default. */
function stackPort(name: 'KAFKA_PORT' | 'S3_PORT' | 'PG_PORT', fallback: number): number {
  const raw = (env[name] ?? '').trim();
  if (raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${name}=${JSON.stringify(raw)} is not a TCP port (1-65535)`);
  return port;
}

const kafkaBrokers = (env.KAFKA_BOOTSTRAP_SERVERS ?? `127.0.0.1:${stackPort('KAFKA_PORT', 9092)}`).split(',');
const pgUrl = env.RXLAKE_PG_URL ?? `postgres://postgres@127.0.0.1:${stackPort('PG_PORT', 54329)}/postgres`;
const stackDir = resolve(env.RXLAKE_STACK_DIR ?? join(root, '.stack')); // relative: to the working folder, as scripts/stack.sh takes it

export const stack = {
  kafkaBrokers,
  s3: {
    endpoint: env.S3_ENDPOINT_URL ?? `http://127.0.0.1:${stackPort('S3_PORT', 9000)}`,
    accessKeyId: env.AWS_ACCESS_KEY_ID ?? 'rxlake',
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? 'rxlake-secret',
    region: env.AWS_REGION ?? 'us-east-1',
    bucket: env.RXLAKE_TEST_BUCKET ?? 'rxlake',
  },
  pgUrl,
  python: env.RXLAKE_PYTHON ?? join(stackDir, 'venv', 'bin', 'python'),
  /** The stack's folder (`RXLAKE_STACK_DIR`, default `.stack`). */
  dir: stackDir,
  /**
   * The Kafka and PostgreSQL endpoints as a job's environment variables: spread them into every
   * job configuration and job process, so a job never falls back to its own defaults
   * (127.0.0.1:9092, …) when the stack runs elsewhere.
   */
  jobEnv: { KAFKA_BOOTSTRAP_SERVERS: kafkaBrokers.join(','), POSTGRES_URL: pgUrl } as Readonly<Record<string, string>>,
  /** A Node that strips types (22.18+), installed by scripts/node-current.sh; unset: use tsx. */
  nodeCurrent: env.RXLAKE_NODE_CURRENT,
  root,
} as const;

/** A name no other test run uses: topics, tables, consumer groups. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`;
}

export interface VerifiedTable {
  version: number;
  protocol: { min_reader_version: number; min_writer_version: number };
  schema: Array<{ name: string; type: unknown; nullable: boolean }>;
  partition_columns: string[];
  files: Array<{
    path: string;
    size: number;
    partition_values: Record<string, string | null>;
    num_records: number;
    stats: Record<string, unknown>;
  }>;
  txn: Record<string, number | null>;
  /** `txn` versions as exact decimal strings (Kafka offsets may exceed 2^53). */
  txn_exact: Record<string, string | null>;
  history_len: number;
  num_rows: number;
  /** int64 as string when beyond 2^53, timestamps as ISO µs 'Z', binary as {base64}. */
  rows?: Array<Record<string, unknown>>;
}

export interface VerifyOptions {
  version?: number;
  appIds?: string[];
  rows?: boolean;
  columns?: string[];
}

/** Reads a Delta table with delta-rs (Python `deltalake`): the independent judge. */
export async function verifyDelta(uri: string, opts: VerifyOptions = {}): Promise<VerifiedTable> {
  const args = [join(root, 'scripts', 'delta_verify.py'), uri];
  if (opts.version !== undefined) args.push('--version', String(opts.version));
  for (const id of opts.appIds ?? []) args.push('--app-id', id);
  if (opts.rows) args.push('--rows');
  if (opts.columns) args.push('--columns', opts.columns.join(','));
  try {
    const { stdout } = await run(stack.python, args, { env: s3Env(), maxBuffer: 1 << 30 });
    return JSON.parse(stdout) as VerifiedTable;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`delta-rs could not read ${uri}: ${e.stdout ?? ''} ${e.stderr ?? ''} ${e.message}`);
  }
}

/** Appends rows with delta-rs itself (interop tests). Values as in `VerifiedTable.rows`. */
export async function appendWithDeltaRs(uri: string, rows: Array<Record<string, unknown>>): Promise<number> {
  const args = [join(root, 'scripts', 'delta_verify.py'), uri, '--write-rows', JSON.stringify(rows)];
  const { stdout } = await run(stack.python, args, { env: s3Env(), maxBuffer: 1 << 26 });
  return (JSON.parse(stdout) as { version: number }).version;
}

function s3Env(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    S3_ENDPOINT_URL: stack.s3.endpoint,
    AWS_ACCESS_KEY_ID: stack.s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: stack.s3.secretAccessKey,
    AWS_REGION: stack.s3.region,
  };
}

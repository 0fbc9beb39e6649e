/**
 * The table maintenance commands of `rxlake`: `inspect`, `tail`, `optimize`, `vacuum` and
 * `replay-dlq`. Each takes a table (a local folder, `s3://bucket/prefix/table`, or a table name
 * under `DELTA_BASE_PATH`), prints for people or, with `--json`, one JSON document for scripts,
 * and ends with an exit code: 0 done, 1 failed, 2 bad usage or a refused request (no table, a
 * retention below the safety bound), 3 nothing done because of other writers (a compaction that
 * lost every bin, a replay still open).
 *
 * S3 settings come from the same variables as the jobs': `S3_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
 * `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`; Kafka's from `--brokers` or `KAFKA_BOOTSTRAP_SERVERS`,
 * with `KAFKA_SECURITY_PROTOCOL` and `KAFKA_SASL_*`.
 */
import { statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { KafkaConfig } from 'kafkajs';
import { loadKafkaAccess } from '../runtime/config.ts';
import { ConfigError } from '../runtime/env.ts';
import { kafkaClientSecurity } from '../runtime/kafkaSecurity.ts';
import { DeltaError } from '../sinks/delta/retry.ts';
import { storageFailureOf, storageFromUri } from '../sinks/delta/storage.ts';
import type { Storage } from '../sinks/delta/storage.ts';
import { TableNotFoundError, UnsupportedTableError, formatBytes, formatDuration, loadTable, parseDuration } from './common.ts';
import type { TableReport } from './inspect.ts';
import { inspectTable } from './inspect.ts';
import type { PartitionLag } from './lag.ts';
import { tableLag } from './lag.ts';
import { executeOptimize, planOptimize } from './optimize.ts';
import { ReplayInProgressError, replayDeadLetters } from './replayDlq.ts';
import { TailUsageError, parseFilter, tailTable } from './tail.ts';
import type { ShownValue } from './tail.ts';
import { RetentionTooShortError, vacuum } from './vacuum.ts';

/** Where a command writes: stdout and stderr (tests pass their own). */
export interface Io {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
}

const processIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  env: process.env,
};

/** A bad command line: the message and the usage go to stderr, exit 2. */
class UsageError extends Error {}

const COMMON_HELP = `Table: a local folder, s3://bucket/prefix/table, or a table name under DELTA_BASE_PATH.
S3: S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION (as the jobs).
Exit codes: 0 done, 1 failed, 2 bad usage or refused, 3 nothing done because of other writers.`;

const USAGE: Readonly<Record<string, string>> = {
  inspect: `Usage: rxlake inspect TABLE [options]

Version, protocol, partition columns, files and sizes (small files flagged), rows, the last
commits with their operation, and the txn versions per source partition.

Options:
  --brokers LIST        also the lag per partition: topic end offset - txn version - 1
                        (KAFKA_BOOTSTRAP_SERVERS when LIST is "env")
  --topic NAME          the Kafka topic (default: found from the txn appIds)
  --dlq TABLE           a dead-letter table whose txn versions count for the lag too
                        (default: dlq_<name> beside TABLE, when it exists; "none" for none)
  --commits N           last commits to list (default 10)
  --partitions N        partitions to list (default 20; all with --json)
  --small-size SIZE     files below are small (default 96MiB, what optimize compacts)
  --json                one JSON document
  -h, --help

${COMMON_HELP}
`,
  tail: `Usage: rxlake tail TABLE [options]

The last rows, newest last: by --order-by (default _ingested_at, else the first timestamp
column), reading only the files that may hold them.

Options:
  -n, --rows N          rows (default 10)
  --where COND          COLUMN OP VALUE, OP one of = != < <= > >= ~ (contains); repeatable (and)
                        e.g. --where error_type=JSON_PARSE_ERROR --where '_kafka_offset>=100'
  --order-by COLUMN     ordering column
  --columns A,B,…       columns to show (default all)
  --width N             longest value shown, in characters (default 200; 0 = whole)
  --json                one JSON document (whole values)
  -h, --help

${COMMON_HELP}
`,
  optimize: `Usage: rxlake optimize TABLE [options]

Compacts each partition's small files into files near the target size: one commit of remove +
add actions with dataChange false and the txn versions untouched. Safe while a job appends to
the table; a compaction whose files another one removed meanwhile gives up those files.

Options:
  --target-size SIZE    size to aim for (default 128MiB, or the table's delta.targetFileSize)
  --min-size SIZE       files below are compacted (default 3/4 of the target size)
  --partition COL=VAL   only this partition; repeatable
  --max-attempts N      commit attempts after lost races (default 100)
  --dry-run             list what would be compacted; write nothing
  --json                one JSON document
  -h, --help

SIZE: bytes, or with a unit: 64MiB, 128MB, 1GiB, 512KiB.
${COMMON_HELP}
`,
  vacuum: `Usage: rxlake vacuum TABLE [options]

Deletes data files that neither the latest version nor any version within the retention period
references (and that were last modified before it), then log files older than the log retention
that the newest expired checkpoint no longer needs. Time travel within the retention keeps working.

Options:
  --retention DURATION      keep removed files this long (default 7d, or the table's
                            delta.deletedFileRetentionDuration); shorter needs --force
  --log-retention DURATION  keep log files this long (default 30d, or delta.logRetentionDuration)
  --keep-log                leave the log alone
  --force                   allow retentions below the safety bounds (only with no writer running)
  --dry-run                 list what would be deleted; delete nothing
  --json                    one JSON document
  -h, --help

DURATION: 7d, 168h, 90m, 30s, 0.
${COMMON_HELP}
`,
  'replay-dlq': `Usage: rxlake replay-dlq TABLE [options]

Re-publishes the rows of a dead-letter table to their original topic (or --topic): the payload
bytes exactly as first received, no key, the original partition when the topic has it, and
headers rxlake.replay.id, rxlake.original.topic/partition/offset/timestamp, rxlake.error.type,
rxlake.error.message. What was replayed is recorded in the table's own log: a row is never
replayed twice.

Options:
  --brokers LIST        Kafka bootstrap servers (default KAFKA_BOOTSTRAP_SERVERS, else 127.0.0.1:9092)
  --topic NAME          publish every row to this topic
  --source-topic NAME   only rows that came from this topic
  --error-type TYPE     only rows of this error type; repeatable
  --limit N             at most N rows (oldest offsets first)
  --resume              finish a replay that stopped before recording what it published
  --dry-run             say what would be replayed; publish nothing
  --json                one JSON document (without the payloads)
  -h, --help

${COMMON_HELP}
`,
};

/** The table argument as a storage (see the module comment). */
function tableStorage(arg: string, env: NodeJS.ProcessEnv): Storage {
  let uri = arg;
  const base = env.DELTA_BASE_PATH;
  const bare = !arg.includes('/') && !arg.includes('://') && arg !== '.' && arg !== '..';
  if (bare && base !== undefined && base !== '' && !isDirectory(arg)) uri = `${base.replace(/\/+$/, '')}/${arg}`;
  const key = env.AWS_ACCESS_KEY_ID;
  const secret = env.AWS_SECRET_ACCESS_KEY;
  return storageFromUri(uri, {
    ...(env.S3_ENDPOINT_URL ? { endpoint: env.S3_ENDPOINT_URL, forcePathStyle: true } : {}),
    region: env.AWS_REGION ?? 'us-east-1',
    ...(key && secret ? { credentials: { accessKeyId: key, secretAccessKey: secret } } : {}),
  });
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** kafkajs settings from the jobs' variables (security protocol, SASL, TLS files), checked as the jobs check them. */
function kafkaSettings(env: NodeJS.ProcessEnv): Omit<KafkaConfig, 'brokers'> {
  try {
    return kafkaClientSecurity(loadKafkaAccess(env));
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.problems.join('\n'));
    throw err;
  }
}

function brokersOf(value: string | undefined, env: NodeJS.ProcessEnv, fallback: string | undefined): string[] | undefined {
  const raw = value === undefined || value === 'env' ? (env.KAFKA_BOOTSTRAP_SERVERS ?? fallback) : value;
  if (raw === undefined) return undefined;
  const list = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (list.length === 0 || list.some((b) => !/^[^\s:]+:\d+$/.test(b))) throw new UsageError(`--brokers ${JSON.stringify(raw)}: expected host:port[,host:port…]`);
  return list;
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3,
};

/** `128MiB`, `64MB`, `1048576` → bytes. */
export function parseSize(text: string, option: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? SIZE_UNITS[(m[2] as string).toLowerCase()] : undefined;
  if (!m || unit === undefined || Number(m[1]) <= 0) throw new UsageError(`${option} ${JSON.stringify(text)}: expected a size such as 128MiB, 64MB or 1048576`);
  return Math.round(Number(m[1]) * unit);
}

function durationOf(text: string, option: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new UsageError(`${option} ${JSON.stringify(text)}: expected a duration such as 7d, 168h, 90m, 30s or 0`);
  return ms;
}

function positiveInt(text: string | undefined, option: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${option} ${JSON.stringify(text)}: expected a whole number`);
  return n;
}

const iso = (ms: number | null | undefined): string => (ms === null || ms === undefined ? '-' : new Date(ms).toISOString());
const int = (n: number | string): string => (typeof n === 'number' ? n.toLocaleString('en-US') : n);

/** Columns of text, right-aligned where `right[i]`. */
function table(head: readonly string[], rows: ReadonlyArray<readonly string[]>, right: readonly boolean[] = []): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (right[i] ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}

function json(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n';
}

type Handler = (argv: readonly string[], io: Io) => Promise<number>;

function parse<T extends Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>>(command: string, argv: readonly string[], options: T) {
  try {
    return parseArgs({ args: [...argv], options: { ...options, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`rxlake ${command}: ${(err as Error).message}`);
  }
}

function oneTable(command: string, positionals: readonly string[]): string {
  if (positionals.length !== 1) throw new UsageError(`rxlake ${command}: expected one TABLE, got ${positionals.length === 0 ? 'none' : positionals.join(' ')}`);
  return positionals[0] as string;
}

async function inspect(argv: readonly string[], io: Io): Promise<number> {
  const { values, positionals } = parse('inspect', argv, {
    brokers: { type: 'string' },
    topic: { type: 'string' },
    dlq: { type: 'string' },
    commits: { type: 'string' },
    partitions: { type: 'string' },
    'small-size': { type: 'string' },
  });
  if (values.help) return help('inspect', io);
  const storage = tableStorage(oneTable('inspect', positionals), io.env);
  const report = await inspectTable(storage, {
    commits: positiveInt(values.commits, '--commits', 10),
    ...(values['small-size'] !== undefined ? { smallFileSize: parseSize(values['small-size'], '--small-size') } : {}),
  });
  let lag: PartitionLag[] | undefined;
  let dlqUri: string | null = null;
  if (values.brokers !== undefined) {
    const brokers = brokersOf(values.brokers, io.env, undefined);
    if (!brokers) throw new UsageError('rxlake inspect: --brokers env needs KAFKA_BOOTSTRAP_SERVERS');
    const txns = new Map(report.txns.filter((t) => !isReplayRecord(t.appId)).map((t) => [t.appId, BigInt(t.version)]));
    const dlq = await deadLetterSibling(storage, values.dlq, io.env);
    if (dlq) {
      dlqUri = dlq.uri;
      for (const [appId, v] of dlq.txns) {
        if (isReplayRecord(appId)) continue;
        if (!txns.has(appId) || (txns.get(appId) as bigint) < v) txns.set(appId, v);
      }
    }
    lag = await tableLag(brokers, txns, { kafka: kafkaSettings(io.env), ...(values.topic !== undefined ? { topic: values.topic } : {}) });
  }
  if (values.json) {
    io.out(json({ ...report, ...(lag ? { lag, lagTotal: lag.reduce((n, l) => n + BigInt(l.lag), 0n).toString(), deadLetterTable: dlqUri } : {}) }));
    return 0;
  }
  io.out(inspectText(report, positiveInt(values.partitions, '--partitions', 20)));
  if (lag) io.out(lagText(lag, dlqUri));
  return 0;
}

/** The txn actions `replay-dlq` records in a dead-letter table (not a writer's offsets). */
const isReplayRecord = (appId: string): boolean => appId.startsWith('rxlake-replay');

/** The dead-letter table whose txn versions count for the lag: `--dlq`, or `dlq_<name>` beside the table. */
async function deadLetterSibling(storage: Storage, option: string | undefined, env: NodeJS.ProcessEnv): Promise<{ uri: string; txns: Map<string, bigint> } | undefined> {
  if (option === 'none') return undefined;
  let dlq: Storage;
  if (option !== undefined) {
    dlq = tableStorage(option, env);
  } else {
    const uri = storage.uri.replace(/\/+$/, '');
    const at = uri.lastIndexOf('/');
    const name = uri.slice(at + 1);
    if (at < 0 || name.startsWith('dlq_')) return undefined;
    dlq = tableStorage(`${uri.slice(0, at)}/dlq_${name}`, env);
  }
  try {
    const state = await loadTable(dlq);
    return { uri: dlq.uri, txns: state.txns };
  } catch (err) {
    if (err instanceof TableNotFoundError && option === undefined) return undefined;
    throw err;
  }
}

function inspectText(r: TableReport, maxPartitions: number): string {
  const f = r.files;
  const lines = [
    `table       ${r.uri}${r.name ? `  (${r.name})` : ''}`,
    `version     ${r.version}${r.timestamp !== null ? `  at ${iso(r.timestamp)}` : ''}${r.checkpointVersion !== null ? `  (checkpoint ${r.checkpointVersion})` : ''}`,
    `protocol    reader ${r.protocol.minReaderVersion}, writer ${r.protocol.minWriterVersion}`,
    `columns     ${r.columns.map((c) => `${c.name} ${c.type}`).join(', ')}`,
    `partitions  ${r.partitionColumns.length ? `${r.partitionColumns.join(', ')} (${r.partitions.length} value${r.partitions.length === 1 ? '' : 's'})` : 'none'}`,
    `files       ${int(f.count)}, ${formatBytes(f.bytes)}${f.count ? ` (${formatBytes(f.minSize ?? 0)} to ${formatBytes(f.maxSize ?? 0)})` : ''}; ` +
      `${int(f.small)} small (< ${formatBytes(f.smallFileSize)}, ${formatBytes(f.smallBytes)})${f.small > 1 ? ': rxlake optimize compacts them' : ''}`,
    `rows        ${int(r.rows)}${r.filesWithoutStats ? ` (+ ${r.filesWithoutStats} files without row counts)` : ''}`,
    `tombstones  ${int(r.tombstones)} removed files still in the log${r.tombstones ? ' (rxlake vacuum deletes them after the retention)' : ''}`,
    '',
  ];
  let out = lines.join('\n');
  if (r.partitionColumns.length && r.partitions.length) {
    const shown = r.partitions.slice(0, maxPartitions);
    out += table(
      ['partition', 'files', 'size', 'small', 'rows'],
      shown.map((p) => [
        r.partitionColumns.map((c) => `${c}=${p.values[c] ?? 'null'}`).join('/'),
        int(p.files),
        formatBytes(p.bytes),
        int(p.smallFiles),
        p.rows === null ? '?' : int(p.rows),
      ]),
      [false, true, true, true, true],
    );
    if (r.partitions.length > shown.length) out += `… ${r.partitions.length - shown.length} more partitions (--partitions N, or --json)\n`;
    out += '\n';
  }
  out += 'last commits\n';
  out += table(
    ['version', 'time', 'operation', '+files', '-files', '+rows', 'txns'],
    r.commits.map((c) => [String(c.version), iso(c.timestamp), c.operation ?? '-', int(c.filesAdded), int(c.filesRemoved), c.rowsAdded === null ? '?' : int(c.rowsAdded), int(c.txns)]),
    [true, false, false, true, true, true, true],
  );
  out += '\n';
  const writers = r.txns.filter((t) => !isReplayRecord(t.appId));
  if (writers.length) {
    out += 'txn versions (last offset written, per source partition)\n';
    out += table(
      ['appId', 'version', 'updated'],
      writers.map((t) => [t.appId, t.version, iso(t.lastUpdated)]),
      [false, true, false],
    );
  } else {
    out += 'txn versions: none\n';
  }
  const replays = r.txns.filter((t) => isReplayRecord(t.appId));
  if (replays.length) {
    const started = replays.find((t) => t.appId === 'rxlake-replay-started');
    const finished = replays.find((t) => t.appId === 'rxlake-replay-finished');
    const open = started !== undefined && (finished === undefined || BigInt(finished.version) < BigInt(started.version));
    const marks = replays.filter((t) => /^rxlake-replay-(?!started$|finished$)/.test(t.appId)).length;
    const single = replays.filter((t) => t.appId.startsWith('rxlake-replayed-')).length;
    out += `replay-dlq records: ${marks} partition watermarks, ${single} single rows; last run ${open ? `started at version ${started?.version ?? '?'} and NOT finished (rxlake replay-dlq --resume)` : `finished (started at version ${finished?.version ?? '?'})`}\n`;
  }
  return out;
}

function lagText(lag: readonly PartitionLag[], dlqUri: string | null): string {
  if (lag.length === 0) return '\nlag: no txn appId names a topic of the cluster (give --topic)\n';
  const total = lag.reduce((n, l) => n + BigInt(l.lag), 0n);
  let out = `\nlag (topic end offset - txn version - 1)${dlqUri ? `, dead letters in ${dlqUri} counted` : ''}: ${total} in all\n`;
  out += table(
    ['topic', 'partition', 'end offset', 'written up to', 'lag'],
    lag.map((l) => [l.topic, String(l.partition), l.endOffset, l.txnVersion ?? '-', l.lag]),
    [false, true, true, true, true],
  );
  return out;
}

async function tail(argv: readonly string[], io: Io): Promise<number> {
  const { values, positionals } = parse('tail', argv, {
    rows: { type: 'string', short: 'n' },
    where: { type: 'string', multiple: true },
    'order-by': { type: 'string' },
    columns: { type: 'string' },
    width: { type: 'string' },
  });
  if (values.help) return help('tail', io);
  const storage = tableStorage(oneTable('tail', positionals), io.env);
  const result = await tailTable(storage, {
    limit: positiveInt(values.rows, '--rows', 10),
    where: (values.where ?? []).map(parseFilter),
    ...(values['order-by'] !== undefined ? { orderBy: values['order-by'] } : {}),
    ...(values.columns !== undefined ? { columns: values.columns.split(',').map((c) => c.trim()).filter(Boolean) } : {}),
  });
  if (values.json) {
    io.out(json(result));
    return 0;
  }
  const width = positiveInt(values.width, '--width', 200);
  const nameWidth = Math.max(0, ...result.columns.map((c) => c.name.length));
  const text = (v: ShownValue): string => {
    const s = v === null ? 'null' : typeof v === 'object' ? `base64:${v.base64}` : String(v);
    const flat = s.replace(/\r?\n/g, '\\n');
    return width > 0 && flat.length > width ? `${flat.slice(0, width)}… (${flat.length} chars)` : flat;
  };
  let out = `${result.uri} version ${result.version}: last ${result.rows.length} row${result.rows.length === 1 ? '' : 's'}${result.orderBy ? ` by ${result.orderBy}` : ''} (${result.filesRead} of ${result.files} files read)\n`;
  result.rows.forEach((row, i) => {
    out += `-[ row ${i + 1} ]${'-'.repeat(Math.max(0, nameWidth - 6))}\n`;
    for (const c of result.columns) out += `${c.name.padEnd(nameWidth)}  ${text(row[c.name] ?? null)}\n`;
  });
  io.out(out);
  return 0;
}

async function optimizeCommand(argv: readonly string[], io: Io): Promise<number> {
  const { values, positionals } = parse('optimize', argv, {
    'target-size': { type: 'string' },
    'min-size': { type: 'string' },
    partition: { type: 'string', multiple: true },
    'max-attempts': { type: 'string' },
    'dry-run': { type: 'boolean' },
  });
  if (values.help) return help('optimize', io);
  const storage = tableStorage(oneTable('optimize', positionals), io.env);
  const partitions: Record<string, string | null> = {};
  for (const p of values.partition ?? []) {
    const at = p.indexOf('=');
    if (at <= 0) throw new UsageError(`--partition ${JSON.stringify(p)}: expected COLUMN=VALUE`);
    const v = p.slice(at + 1);
    partitions[p.slice(0, at)] = v === 'null' ? null : v;
  }
  const files: Array<{ path: string; inputs: number; inputBytes: number; bytes: number; rows: number; ms: number }> = [];
  const plan = await planOptimize(storage, {
    ...(values['target-size'] !== undefined ? { targetSize: parseSize(values['target-size'], '--target-size') } : {}),
    ...(values['min-size'] !== undefined ? { minFileSize: parseSize(values['min-size'], '--min-size') } : {}),
    ...(values.partition ? { partitions } : {}),
    maxAttempts: positiveInt(values['max-attempts'], '--max-attempts', 100),
    onFile: (f) => {
      files.push({ path: f.path, inputs: f.inputs, inputBytes: f.inputBytes, bytes: f.bytes, rows: f.rows, ms: f.ms });
      if (!values.json) io.err(`wrote ${f.path}: ${f.inputs} files, ${formatBytes(f.inputBytes)} → ${formatBytes(f.bytes)}, ${int(f.rows)} rows, ${(f.ms / 1000).toFixed(1)} s\n`);
    },
    onWarning: (m, e) => io.err(`warning: ${m}${e instanceof Error ? `: ${e.message}` : ''}\n`),
  });
  const planned = {
    uri: storage.uri,
    readVersion: plan.readVersion,
    targetSize: plan.targetSize,
    minFileSize: plan.minFileSize,
    filesBefore: plan.filesBefore,
    bytesBefore: plan.bytesBefore,
    bins: plan.bins.map((b) => ({ partitionValues: b.partitionValues, files: b.files.length, bytes: b.bytes, rows: b.rows ?? null })),
  };
  if (values['dry-run']) {
    if (values.json) io.out(json({ dryRun: true, ...planned }));
    else {
      const inputs = plan.bins.reduce((n, b) => n + b.files.length, 0);
      let out = `${storage.uri} version ${plan.readVersion}: ${plan.filesBefore} files; would compact ${inputs} of them (< ${formatBytes(plan.minFileSize)}) into ${plan.bins.length} (target ${formatBytes(plan.targetSize)})\n`;
      if (plan.bins.length) {
        out += table(
          ['partition', 'files', 'size', 'rows'],
          plan.bins.map((b) => [Object.entries(b.partitionValues).map(([k, v]) => `${k}=${v ?? 'null'}`).join('/') || '(table)', int(b.files.length), formatBytes(b.bytes), b.rows === undefined ? '?' : int(b.rows)]),
          [false, true, true, true],
        );
      }
      io.out(out);
    }
    return 0;
  }
  const result = await executeOptimize(plan);
  const lostAll = result.version === null && result.binsDropped > 0;
  if (values.json) {
    io.out(json({ ...planned, ...result, files }));
    return lostAll ? 3 : 0;
  }
  if (result.version === null) {
    io.out(
      lostAll
        ? `${storage.uri}: nothing committed: another compaction removed the files of all ${result.binsDropped} bins meanwhile\n`
        : `${storage.uri} version ${result.readVersion}: nothing to compact (${result.filesBefore} files, none of 2 or more below ${formatBytes(plan.minFileSize)} in one partition)\n`,
    );
    return lostAll ? 3 : 0;
  }
  const seconds = result.durationMs / 1000;
  io.out(
    [
      `${storage.uri}: optimized at version ${result.version} (read version ${result.readVersion}, ${result.attempts} commit attempt${result.attempts === 1 ? '' : 's'})`,
      `  files   ${int(result.filesBefore)} → ${int(result.filesAfter)} (${int(result.filesRemoved)} compacted into ${int(result.filesAdded)}, in ${result.partitions} partition${result.partitions === 1 ? '' : 's'})`,
      `  bytes   ${formatBytes(result.bytesRemoved)} → ${formatBytes(result.bytesAdded)}`,
      `  rows    ${int(result.rows)} rewritten, unchanged`,
      `  time    ${seconds.toFixed(1)} s (${formatBytes(Math.round(result.bytesRemoved / Math.max(seconds, 0.001)))}/s)`,
      ...(result.binsDropped ? [`  ${result.binsDropped} bins given up: another compaction removed their files meanwhile`] : []),
      '',
    ].join('\n'),
  );
  return 0;
}

async function vacuumCommand(argv: readonly string[], io: Io): Promise<number> {
  const { values, positionals } = parse('vacuum', argv, {
    retention: { type: 'string' },
    'log-retention': { type: 'string' },
    'keep-log': { type: 'boolean' },
    force: { type: 'boolean' },
    'dry-run': { type: 'boolean' },
  });
  if (values.help) return help('vacuum', io);
  const storage = tableStorage(oneTable('vacuum', positionals), io.env);
  const r = await vacuum(storage, {
    ...(values.retention !== undefined ? { retentionMs: durationOf(values.retention, '--retention') } : {}),
    ...(values['log-retention'] !== undefined ? { logRetentionMs: durationOf(values['log-retention'], '--log-retention') } : {}),
    cleanLog: values['keep-log'] !== true,
    force: values.force === true,
    dryRun: values['dry-run'] === true,
    onWarning: (m, e) => io.err(`warning: ${m}${e instanceof Error ? `: ${e.message}` : ''}\n`),
  });
  if (values.json) {
    io.out(json(r));
    return 0;
  }
  const verb = r.dryRun ? 'would delete' : 'deleted';
  let out = `${r.uri} version ${r.version}: retention ${formatDuration(r.retentionMs)} (files removed or written before ${iso(r.cutoff)}), log retention ${formatDuration(r.logRetentionMs)}\n`;
  out += `  data files  ${verb} ${int(r.deleted.length)} (${formatBytes(r.bytesDeleted)}); kept ${int(r.live)} live, ${int(r.tombstonesKept)} removed within the retention, ${int(r.recentUntracked)} recent and not (yet) committed\n`;
  out += `  log files   ${verb} ${int(r.logDeleted.length)}; the log starts at version ${r.oldestVersion}${r.logDeleted.length ? ' (a checkpoint)' : ''}\n`;
  out += `  time travel reads the versions committed after ${iso(r.cutoff)}\n`;
  if (r.commitVersion !== null) out += `  recorded as version ${r.commitVersion} (VACUUM END)\n`;
  if (r.dryRun) for (const p of [...r.deleted, ...r.logDeleted]) out += `  ${p}\n`;
  io.out(out);
  return 0;
}

async function replayCommand(argv: readonly string[], io: Io): Promise<number> {
  const { values, positionals } = parse('replay-dlq', argv, {
    brokers: { type: 'string' },
    topic: { type: 'string' },
    'source-topic': { type: 'string' },
    'error-type': { type: 'string', multiple: true },
    limit: { type: 'string' },
    resume: { type: 'boolean' },
    'dry-run': { type: 'boolean' },
  });
  if (values.help) return help('replay-dlq', io);
  const storage = tableStorage(oneTable('replay-dlq', positionals), io.env);
  const brokers = brokersOf(values.brokers, io.env, '127.0.0.1:9092') as string[];
  const r = await replayDeadLetters(storage, {
    brokers,
    kafka: kafkaSettings(io.env),
    ...(values.topic !== undefined ? { topic: values.topic } : {}),
    ...(values['source-topic'] !== undefined ? { sourceTopic: values['source-topic'] } : {}),
    ...(values['error-type'] ? { errorTypes: values['error-type'] } : {}),
    ...(values.limit !== undefined ? { limit: positiveInt(values.limit, '--limit', 0) } : {}),
    resume: values.resume === true,
    dryRun: values['dry-run'] === true,
    onProgress: (n, total) => {
      if (!values.json) io.err(`published ${n}/${total}\n`);
    },
  });
  const replayed = r.replayed.map((x) => ({ topic: x.topic, partition: x.partition, offset: x.offset.toString(), errorType: x.errorType, bytes: x.payload?.byteLength ?? null }));
  if (values.json) {
    io.out(json({ ...r, replayed }));
    return 0;
  }
  const verb = r.dryRun ? 'would re-publish' : 're-published';
  let out = `${r.uri}: ${r.rows} dead-letter rows; ${r.alreadyReplayed} replayed before, ${r.filteredOut} left out by the filters\n`;
  if (r.recovered) out += `  recovered ${r.recovered} records an interrupted replay had published (recorded, not published again)\n`;
  out += `  ${verb} ${r.published}${r.replayId ? ` (replay ${r.replayId}, recorded at version ${r.recordVersion})` : ''}\n`;
  for (const [t, n] of Object.entries(r.byTopic)) out += `    to ${t}: ${n}\n`;
  for (const [t, n] of Object.entries(r.byErrorType)) out += `    ${t}: ${n}\n`;
  io.out(out);
  return 0;
}

function help(command: string, io: Io): number {
  io.out(USAGE[command] ?? '');
  return 0;
}

/** Runs a handler: known failures become a message and their exit code. */
function guarded(command: string, handler: Handler): (argv: readonly string[], io?: Io) => Promise<number> {
  return async (argv, io = processIo) => {
    try {
      return await handler(argv, io);
    } catch (err) {
      if (err instanceof UsageError) {
        io.err(`${err.message}\n\n${USAGE[command] ?? ''}`);
        return 2;
      }
      if (err instanceof TableNotFoundError || err instanceof UnsupportedTableError || err instanceof RetentionTooShortError || err instanceof TailUsageError) {
        io.err(`rxlake ${command}: ${err.message}\n`);
        return 2;
      }
      if (err instanceof ReplayInProgressError) {
        io.err(`rxlake ${command}: ${err.message}\n`);
        return 3;
      }
      const failure = storageFailureOf(err);
      if (failure !== undefined) {
        const hint = failure === 'access-denied'
          ? 'check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY'
          : failure === 'no-such-bucket'
            ? 'check the bucket in the table path'
            : 'check S3_ENDPOINT_URL and that the server runs';
        io.err(`rxlake ${command}: ${(err as Error).message} (${hint})\n`);
        return 1;
      }
      if (err instanceof DeltaError) {
        io.err(`rxlake ${command}: ${err.message}\n`);
        return 1;
      }
      throw err;
    }
  };
}

/** The commands, by name, as `rxlake` runs them: each resolves with its exit code. */
export const commands = {
  inspect: guarded('inspect', inspect),
  tail: guarded('tail', tail),
  optimize: guarded('optimize', optimizeCommand),
  vacuum: guarded('vacuum', vacuumCommand),
  'replay-dlq': guarded('replay-dlq', replayCommand),
} as const;

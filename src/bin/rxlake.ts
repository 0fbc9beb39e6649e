#!/usr/bin/env node
/**
 * The `rxlake` command: one entry point for the jobs and tools that ship with the package.
 * `rxlake <command> [options]` loads that command's module and runs its `main` with the
 * remaining arguments, ending the process as running the module directly would (the jobs exit
 * with their code at once; `generate` sets the exit code and lets the process drain).
 */
import { readFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { errorReport } from '../runtime/cli.ts';

// Node 22.1+ keeps the compiled code of the modules loaded below (the command's, loaded on
// demand) in a cache on disk: a job starts with ~0.2 CPU-s less work. NODE_DISABLE_COMPILE_CACHE=1
// turns it off; on Node 20 there is no such cache.
(nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();

interface Command {
  /** What `rxlake --help` says of it. */
  readonly summary: string;
  /** The name the module uses in its own messages. */
  readonly name: string;
  readonly load: () => Promise<{ main: (argv: readonly string[]) => Promise<number> }>;
  /** `exit`: `process.exit(code)` when `main` resolves; `exitCode`: set the code, let the process end by itself. */
  readonly ending: 'exit' | 'exitCode';
}

const COMMANDS: Readonly<Record<string, Command>> = {
  bronze: {
    summary: 'the bronze pipeline: the rideshare topics into bronze_<topic> and dlq_bronze_<topic> Delta tables',
    name: 'bronze',
    load: () => import('../pipelines/bronze.ts'),
    ending: 'exit',
  },
  transactions: {
    summary: 'the transactions pipeline: typed tables and per-account windows in Delta Lake and PostgreSQL (needs `pg`)',
    name: 'transactions',
    load: () => import('../pipelines/transactions.ts'),
    ending: 'exit',
  },
  retail: { summary: 'the retail metrics job: transactions, refunds, per-product minute metrics and quarantine in PostgreSQL (needs `pg`)', name: 'retail', load: () => import('../pipelines/retail.ts'), ending: 'exit' },
  cards: { summary: 'the card medallion job: bronze, quarantine, silver and gold Delta tables (gold also in PostgreSQL)', name: 'cards', load: () => import('../pipelines/cards.ts'), ending: 'exit' },
  'generate-retail': { summary: 'produces retail transactions and refunds to Kafka', name: 'generate-retail', load: () => import('../pipelines/retail/generate.ts'), ending: 'exit' },
  'generate-cards': { summary: 'produces card transactions to Kafka, keyed by card_id, at a rate', name: 'generate-cards', load: () => import('../pipelines/cards/generate.ts'), ending: 'exit' },
  generate: {
    summary: 'produces synthetic rideshare events (some corrupt, on purpose) to Kafka',
    name: 'generate',
    load: () => import('../pipelines/rideshare/generate.ts'),
    ending: 'exitCode',
  },
  'generate-transactions': {
    summary: 'produces synthetic transactions and refunds events to Kafka',
    name: 'generateTransactions',
    load: () => import('../pipelines/transactions/generate.ts'),
    ending: 'exit',
  },
  inspect: {
    summary: 'a Delta table at a glance: version, files (small ones flagged), rows, last commits, txn versions; with --brokers the lag',
    name: 'rxlake inspect',
    load: () => opsCommand('inspect'),
    ending: 'exit',
  },
  tail: {
    summary: 'the last rows of a Delta table, readable, optionally filtered (--where)',
    name: 'rxlake tail',
    load: () => opsCommand('tail'),
    ending: 'exit',
  },
  optimize: {
    summary: "compacts a table's small files (safe while a job appends to it)",
    name: 'rxlake optimize',
    load: () => opsCommand('optimize'),
    ending: 'exit',
  },
  vacuum: {
    summary: 'deletes files no version within the retention needs, and expired log files',
    name: 'rxlake vacuum',
    load: () => opsCommand('vacuum'),
    ending: 'exit',
  },
  'replay-dlq': {
    summary: 're-publishes dead-letter rows to their topic, bytes exact, never twice',
    name: 'rxlake replay-dlq',
    load: () => opsCommand('replay-dlq'),
    ending: 'exit',
  },
};

/** A table maintenance command (src/ops/cli.ts) as a module with a `main`. */
async function opsCommand(name: 'inspect' | 'tail' | 'optimize' | 'vacuum' | 'replay-dlq'): Promise<{ main: (argv: readonly string[]) => Promise<number> }> {
  const { commands } = await import('../ops/cli.ts');
  return { main: (argv) => commands[name](argv) };
}

/** Packages the package declares as optional peers, and what needs them. */
const OPTIONAL_PEERS: Readonly<Record<string, string>> = {
  pg: 'the PostgreSQL client, for the transactions and retail jobs, and the cards job when its gold goes to PostgreSQL',
  '@aws-sdk/client-s3': 'the S3 client, for s3:// table paths',
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length)) + 2;
  const lines = Object.entries(COMMANDS).map(([command, c]) => `  ${command.padEnd(width)}${c.summary}`);
  return `Usage: rxlake <command> [options]

Commands:
${lines.join('\n')}

  rxlake <command> --help   the command's options
  rxlake --version          the package version

Tables (inspect, tail, optimize, vacuum, replay-dlq): a local folder, s3://bucket/prefix/table, or a table name
under DELTA_BASE_PATH; S3 settings from S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION.

The jobs take their configuration from environment variables (see the README): KAFKA_BOOTSTRAP_SERVERS,
DELTA_BASE_PATH, POSTGRES_URL, … A bad value stops a job at start with exit code 2.
NODE_OPTIONS=--max-semi-space-size=8 saves the bronze job memory at no cost in speed (README, "Memory").
`;
}

/** The optional peer whose absence `err` reports, if any. */
function missingOptionalPeer(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || (err as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND') return undefined;
  const missing = /Cannot find package '([^']+)'/.exec((err as Error).message)?.[1];
  return missing !== undefined && missing in OPTIONAL_PEERS ? missing : undefined;
}

/**
 * `process.exit(code)` once what was written to stdout and stderr has left the process: an exit
 * right after a large write to a pipe (`--json` of a big table) would cut it short.
 */
function exitFlushed(code: number): void {
  let pending = 2;
  const done = (): void => {
    pending -= 1;
    if (pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

async function run(argv: readonly string[]): Promise<void> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    process.stderr.write(usage());
    process.exitCode = 2;
    return;
  }
  if (first === '--help' || first === '-h' || (first === 'help' && rest.length === 0)) {
    process.stdout.write(usage());
    return;
  }
  if (first === '--version' || first === '-v') {
    process.stdout.write(`${version()}\n`);
    return;
  }
  // `rxlake help <command>` is `rxlake <command> --help`.
  const [name, args] = first === 'help' ? [rest[0] ?? '', ['--help']] : [first, rest];
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) {
    process.stderr.write(`rxlake: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    process.exitCode = 2;
    return;
  }
  let main: (argv: readonly string[]) => Promise<number>;
  try {
    ({ main } = await command.load());
  } catch (err) {
    const peer = missingOptionalPeer(err);
    if (peer === undefined) throw err;
    process.stderr.write(`rxlake ${name}: needs the package ${peer} (${OPTIONAL_PEERS[peer]}), an optional peer dependency: npm install ${peer}\n`);
    process.exitCode = 2;
    return;
  }
  let code: number;
  try {
    code = await main(args);
  } catch (err) {
    process.stderr.write(`${command.name}: ${errorReport(err)}\n`);
    if (command.ending === 'exit') process.exit(1);
    process.exitCode = 1;
    return;
  }
  if (command.ending === 'exit') exitFlushed(code);
  else process.exitCode = code;
}

run(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`rxlake: ${errorReport(err)}\n`);
  process.exit(1);
});

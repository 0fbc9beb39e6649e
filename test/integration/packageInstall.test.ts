/**
 * The package as a user gets it: `npm pack` of a checkout without `dist` (prepack builds it),
 * the tarball installed into a fresh project next to rxjs, then every `exports` subpath
 * imported from ESM and from CommonJS `require()` (Node 20 and the current Node), a TypeScript
 * consumer type-checked with `moduleResolution: NodeNext` against the shipped `.d.ts`, a small
 * pipeline run into a Delta table on local disk that delta-rs reads back, and `npx rxlake`.
 *
 * The checkout is copied (tracked and untracked files that git does not ignore) so packing
 * never touches this checkout's own `dist`.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as root from '../../src/index.ts';
import * as operators from '../../src/operators/index.ts';
import * as sinks from '../../src/sinks/index.ts';
import * as sources from '../../src/sources/index.ts';
import * as validation from '../../src/validation/index.ts';
import { stack, verifyDelta } from '../support/stack.ts';

const repo = stack.root;
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  exports: Record<string, string | { types: string; default: string }>;
  dependencies: Record<string, string>;
  bin: Record<string, string>;
  sideEffects: string[];
  peerDependencies: Record<string, string>;
};
const subpaths = Object.keys(pkg.exports).filter((s) => s !== './package.json');
const specifier = (subpath: string): string => (subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`);
/** What each entry point exports, from the sources. */
const expectedNames: Record<string, string[]> = {
  '.': Object.keys(root).sort(),
  './operators': Object.keys(operators).sort(),
  './sinks': Object.keys(sinks).sort(),
  './sources': Object.keys(sources).sort(),
  './validation': Object.keys(validation).sort(),
};
/** Operators whose `.d.ts` still carries no documentation on its first overload (the doc block sits on the implementation, which tsc drops). */
interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment for child npm and node processes: CI, no npm lifecycle variables of a surrounding `npm test`. */
const childEnv: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_') || k.startsWith('npm_config_'))),
  CI: 'true',
  NO_UPDATE_NOTIFIER: '1',
  npm_config_update_notifier: 'false',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
};

function run(command: string, args: readonly string[], cwd: string, timeoutMs = 120_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `run`, failing with the output unless the process exits 0. */
async function ok(command: string, args: readonly string[], cwd: string, timeoutMs?: number): Promise<Ran> {
  const r = await run(command, args, cwd, timeoutMs);
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  return r;
}

const t0 = Date.now();
function progress(message: string): void {
  console.log(`[package] ${((Date.now() - t0) / 1000).toFixed(1)} s: ${message}`);
}

const work = mkdtempSync(join(tmpdir(), 'rxlake-package-'));
const checkout = join(work, 'checkout');
const packs = join(work, 'packs');
const project = join(work, 'project');
let packed: { filename: string; entryCount: number; size: number; unpackedSize: number; files: Array<{ path: string }> };
let installed = '';
/** Started as soon as the package is installed; awaited by its test. */
let typecheck: Promise<Ran>;

beforeAll(async () => {
  // A copy of the checkout as git sees it (no dist, no node_modules), with this checkout's node_modules for the build.
  const listed = await ok('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], repo);
  for (const file of listed.stdout.split('\0')) {
    if (file === '' || !existsSync(join(repo, file))) continue;
    mkdirSync(dirname(join(checkout, file)), { recursive: true });
    cpSync(join(repo, file), join(checkout, file));
  }
  symlinkSync(join(repo, 'node_modules'), join(checkout, 'node_modules'), 'dir');
  expect(existsSync(join(checkout, 'dist'))).toBe(false);
  progress('checkout copied; npm pack (prepack builds dist)…');

  mkdirSync(packs);
  const pack = ok('npm', ['pack', '--json', '--pack-destination', packs], checkout, 240_000);

  // Meanwhile a fresh project gets rxjs (the peer), Node's types and the package's dependencies,
  // from the local npm cache where it can; the tarball joins them once packed.
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), `${JSON.stringify({ name: 'rxlake-consumer', version: '1.0.0', private: true }, null, 2)}\n`);
  const versionIn = (name: string): string => (JSON.parse(readFileSync(join(repo, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  const npmInstall = ['install', '--prefer-offline', '--no-audit', '--no-fund'];
  const peers = [`rxjs@${versionIn('rxjs')}`, `@types/node@${versionIn('@types/node')}`];
  const dependencies = Object.entries(pkg.dependencies).map(([name, range]) => `${name}@${range}`);
  await Promise.all([pack, ok('npm', [...npmInstall, '--no-save', ...peers, ...dependencies], project, 240_000)]);
  const reports = JSON.parse((await pack).stdout.replace(/^[^[]*/, '')) as Array<typeof packed>;
  packed = reports[0]!;
  progress(`packed ${packed.filename}: ${packed.entryCount} files, ${(packed.size / 1000).toFixed(1)} kB (${(packed.unpackedSize / 1e6).toFixed(2)} MB unpacked)`);
  await ok('npm', [...npmInstall, join(packs, packed.filename), ...peers], project, 240_000);
  installed = join(project, 'node_modules', pkg.name);
  progress(`installed into ${project}`);
  writeConsumerFiles();
  typecheck = run(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], project);
}, 600_000);

afterAll(async () => {
  await typecheck?.catch(() => undefined);
  // Some 5,000 files: removed by a process of its own, which the test does not wait for.
  spawn('rm', ['-rf', work], { detached: true, stdio: 'ignore' }).unref();
});

/** The consumer's scripts and TypeScript files. */
function writeConsumerFiles(): void {
  const specs = JSON.stringify(subpaths.map(specifier));
  // Every entry point from ESM, then from CommonJS: the names each one exports, sorted.
  writeFileSync(
    join(project, 'imports.mjs'),
    `const out = {};\nfor (const s of ${specs}) out[s] = Object.keys(await import(s)).sort();\nprocess.stdout.write(JSON.stringify(out));\n`,
  );
  writeFileSync(
    join(project, 'imports.cjs'),
    `const out = {};\nfor (const s of ${specs}) out[s] = Object.keys(require(s)).filter((k) => k !== '__esModule' && k !== 'module.exports').sort();\nout['${pkg.name}/package.json'] = require('${pkg.name}/package.json').version;\nprocess.stdout.write(JSON.stringify(out));\n`,
  );
  writeFileSync(
    join(project, 'pipeline.mjs'),
    `// Kafka-shaped records → enrichMetadata → chunked micro-batches → a Delta table on local disk.
import { from, lastValueFrom, toArray } from 'rxjs';
import { bufferTime, deltaSink, enrichMetadata } from '${pkg.name}/operators';
import { DeltaTable, localStorage } from '${pkg.name}/sinks';

const [folder, count] = [process.argv[2], Number(process.argv[3])];
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const records = Array.from({ length: count }, (_, i) => {
  const value = encoder.encode(JSON.stringify({ n: i, city: 'São Paulo' }));
  return { topic: 'events', partition: i % 2, offset: BigInt(Math.floor(i / 2)), timestamp: Date.UTC(2026, 0, 1) + i, key: null, value, headers: {}, size: value.byteLength };
});
const table = await DeltaTable.openOrCreate(localStorage(folder), {
  name: 'bronze_events',
  columns: [
    { name: '_raw_value', type: 'string', get: (r) => decoder.decode(r.value) },
    { name: '_kafka_partition', type: 'integer', nullable: false },
    { name: '_kafka_offset', type: 'long', nullable: false },
    { name: '_kafka_timestamp', type: 'timestamp' },
    { name: '_ingested_at', type: 'timestamp' },
    { name: '_ingestion_date', type: 'string' },
  ],
  partitionColumns: ['_ingestion_date'],
});
const acks = await lastValueFrom(
  from(records).pipe(
    enrichMetadata(),
    bufferTime({ timeSpan: 1000, maxRecords: 40, chunkRecords: 15 }),
    deltaSink(table, { pipelineId: 'package' }),
    toArray(),
  ),
);
process.stdout.write(JSON.stringify(acks.map((a) => ({ version: a.version, rows: a.rows, refs: a.refs.length }))));
`,
  );
  // An s3:// table without the optional AWS SDK peer: the error says what to install.
  writeFileSync(
    join(project, 'noSdk.mjs'),
    `import { storageFromUri } from '${pkg.name}/sinks';
import { RxlakeError } from '${pkg.name}';
const err = await storageFromUri('s3://some-bucket/tables').list('_delta_log').then(() => undefined, (e) => e);
process.stdout.write(JSON.stringify({ ours: err instanceof RxlakeError, name: err?.name, code: err?.code, retriable: err?.retriable, message: err?.message }));
`,
  );
  // TypeScript: an ES module and a CommonJS module, NodeNext, the declarations checked too (no skipLibCheck).
  writeFileSync(
    join(project, 'consumer.mts'),
    `import { from, type Observable } from 'rxjs';
import { DeltaTable, bufferTime, deltaSink, enrichMetadata, type EnrichedRecord, type KafkaRecord, type SinkAck } from '${pkg.name}';
import { amountStats, commitOffsets, fanOut, partitionByDate, pgSink, routeErrors, tumblingWindow, withDeadLetters } from '${pkg.name}/operators';
import { PgTable, localStorage, type TableSpec } from '${pkg.name}/sinks';
import { OffsetTracker, fromKafka, type KafkaSource } from '${pkg.name}/sources';
import { JsonBytesScanner, MAX_JSON_DEPTH, compileBytesGuard } from '${pkg.name}/validation';
import { RxlakeError, StorageError, isRetriable, pinoLogger, registerSecret, s3Storage, withRetry, type Logger, type RetryPolicy, type S3ClientLike } from '${pkg.name}';

declare const records: readonly KafkaRecord[];
declare const source: KafkaSource;
const spec: TableSpec<EnrichedRecord> = { name: 'bronze_events', columns: [{ name: '_kafka_offset', type: 'long', nullable: false }], partitionColumns: [] };
export async function pipeline(folder: string): Promise<Observable<SinkAck>> {
  const table = await DeltaTable.openOrCreate(localStorage(folder), spec);
  return from(records).pipe(enrichMetadata(), bufferTime({ timeSpan: 1000, chunkRecords: 500 }), deltaSink(table, { pipelineId: 'ts' }));
}
export const commits = (acks: Observable<SinkAck>) => acks.pipe(commitOffsets(source));
// @ts-expect-error: bufferTime's options are typed
bufferTime({ timeSpan: 'soon' });
const depth: number = MAX_JSON_DEPTH;
// The error model, the retry path and the logger.
const log: Logger = pinoLogger({ level: 'warn', format: 'json' }).child({ job: 'consumer' });
const policy: RetryPolicy = { initialMs: 100, maxMs: 5000, jitter: 0.5, maxAttempts: 5 };
registerSecret(process.env.MY_PASSWORD);
export const listed = (client: S3ClientLike) =>
  withRetry(() => s3Storage({ bucket: 'b', client }).list('_delta_log'), { ...policy, onRetry: (err, { attempt }) => log.warn('retrying', { attempt, error: err }) }).catch((err: unknown) => {
    if (err instanceof StorageError && err.code === 'STORAGE_ERROR' && !isRetriable(err)) return [];
    if (err instanceof RxlakeError) log.error(err.message, { code: err.code, retriable: err.retriable, cause: err.cause });
    throw err;
  });
export { amountStats, depth, fanOut, fromKafka, JsonBytesScanner, compileBytesGuard, OffsetTracker, partitionByDate, PgTable, pgSink, routeErrors, tumblingWindow, withDeadLetters };
`,
  );
  writeFileSync(
    join(project, 'consumer.cts'),
    `import { bufferTime } from '${pkg.name}/operators';
import rxlake = require('${pkg.name}');
export const batches = bufferTime<number>({ maxRecords: 2 });
export const Table: typeof rxlake.DeltaTable = rxlake.DeltaTable;
`,
  );
  writeFileSync(
    join(project, 'tsconfig.json'),
    `${JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2023'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          types: ['node'],
          strict: true,
          exactOptionalPropertyTypes: true,
          skipLibCheck: false,
          noEmit: true,
        },
        files: ['consumer.mts', 'consumer.cts'],
      },
      null,
      2,
    )}\n`,
  );
}

describe('the packed package', () => {
  it('holds dist (built by prepack from a checkout without it), the sources of its maps, README, LICENSE; no test files', () => {
    const files = new Set(packed.files.map((f) => f.path));
    for (const target of Object.values(pkg.exports)) {
      for (const path of typeof target === 'string' ? [target] : [target.types, target.default]) expect(files.has(path.replace(/^\.\//, '')), path).toBe(true);
    }
    for (const path of [...Object.values(pkg.bin), ...pkg.sideEffects]) expect(files.has(path.replace(/^\.\//, '')), path).toBe(true);
    for (const path of ['LICENSE', 'README.md', 'package.json', 'dist/index.js.map', 'dist/index.d.ts.map', 'src/index.ts']) expect(files.has(path), path).toBe(true);
    expect([...files].filter((f) => !/^(dist|src)\//.test(f) && !['LICENSE', 'README.md', 'package.json'].includes(f))).toEqual([]);
    expect([...files].filter((f) => f.startsWith('dist/src/'))).toEqual([]);
    // Every source map points at a shipped source file.
    const map = JSON.parse(readFileSync(join(installed, 'dist', 'operators', 'bufferTime.js.map'), 'utf8')) as { sources: string[] };
    expect(existsSync(join(installed, 'dist', 'operators', map.sources[0]!))).toBe(true);
  });

  it('installs without the optional peers (AWS SDK, pg, avsc, ajv), and says what to install for an s3:// table', async () => {
    const optional = Object.keys(pkg.peerDependencies).filter((p) => p !== 'rxjs');
    expect(optional.sort()).toEqual(['@aws-sdk/client-s3', 'ajv', 'avsc', 'pg']);
    for (const name of optional) expect(existsSync(join(project, 'node_modules', name)), name).toBe(false);
    const noSdk = JSON.parse((await ok(process.execPath, ['noSdk.mjs'], project)).stdout) as Record<string, unknown>;
    expect(noSdk).toMatchObject({ ours: true, name: 'MissingDependencyError', code: 'MISSING_DEPENDENCY', retriable: false });
    expect(noSdk.message).toContain('S3 storage (s3://some-bucket/tables) needs the package @aws-sdk/client-s3: install @aws-sdk/client-s3 (optional peer dependency)');
  });

  const nodes: Array<[string, string]> = [[`Node ${process.versions.node}`, process.execPath]];
  if (stack.nodeCurrent !== undefined && stack.nodeCurrent !== process.execPath) nodes.push(['the current Node (RXLAKE_NODE_CURRENT)', stack.nodeCurrent]);
  it.each(nodes)('imports every subpath from ESM and from require() on %s', async (_label, node) => {
    const [esmRun, cjsRun] = await Promise.all([ok(node, ['imports.mjs'], project), ok(node, ['imports.cjs'], project)]);
    const esm = JSON.parse(esmRun.stdout) as Record<string, string[]>;
    const cjs = JSON.parse(cjsRun.stdout) as Record<string, string[] | string>;
    for (const subpath of subpaths) {
      expect(esm[specifier(subpath)], `import ${specifier(subpath)}`).toEqual(expectedNames[subpath]);
      expect(cjs[specifier(subpath)], `require ${specifier(subpath)}`).toEqual(expectedNames[subpath]);
    }
    expect(cjs[`${pkg.name}/package.json`]).toBe(pkg.version);
    progress(`imports from ESM and require() on ${node}`);
  });

  it('type-checks a TypeScript consumer (NodeNext; ESM and CommonJS) against the shipped declarations', async () => {
    const r = await typecheck;
    // No optional peer is installed: the declarations need none of their types (storage.d.ts declares its own S3 client shape).
    const errors = `${r.stdout}${r.stderr}`.split('\n').filter((l) => /error TS\d+/.test(l));
    expect(errors).toEqual([]);
    expect(r.code, `${r.stdout}${r.stderr}`).toBe(0);
    progress('TypeScript consumer type-checks');
  });

  it("carries the operators' documentation in .d.ts, overloaded ones included", () => {
    const undocumented: string[] = [];
    for (const name of Object.keys(operators)) {
      const dts = readFileSync(join(installed, 'dist', 'operators', `${moduleOf(name)}.d.ts`), 'utf8');
      const at = dts.search(new RegExp(`^export declare (function|class|const) ${name}\\b`, 'm'));
      if (at < 0) continue;
      if (!dts.slice(0, at).trimEnd().endsWith('*/')) undocumented.push(name);
    }
    expect(undocumented).toEqual([]);
  });

  it('runs a pipeline into a local Delta table that delta-rs reads back', async () => {
    const folder = join(work, 'table');
    const acks = JSON.parse((await ok(process.execPath, ['pipeline.mjs', folder, '100'], project)).stdout) as Array<{ version: number; rows: number; refs: number }>;
    expect(acks).toEqual([
      { version: 1, rows: 40, refs: 40 },
      { version: 2, rows: 40, refs: 40 },
      { version: 3, rows: 20, refs: 20 },
    ]);
    const v = await verifyDelta(folder, { appIds: ['package-events-0', 'package-events-1'], rows: true, columns: ['_raw_value'] });
    expect(v.version).toBe(3);
    expect(v.num_rows).toBe(100);
    expect(v.txn_exact).toEqual({ 'package-events-0': '49', 'package-events-1': '49' });
    expect(new Set(v.rows?.map((r) => r._raw_value))).toEqual(new Set(Array.from({ length: 100 }, (_, i) => JSON.stringify({ n: i, city: 'São Paulo' }))));
    progress('pipeline written and read back by delta-rs');
  });

  it('runs npx rxlake --help, each command\'s own --help, and names a missing optional peer', async () => {
    // `npx rxlake` as a user types it; the other runs start the same installed command without npx's own start-up.
    const rxlake = (...args: string[]): Promise<Ran> => run(process.execPath, [join(project, 'node_modules', '.bin', 'rxlake'), ...args], project);
    const [help, version, ...commands] = await Promise.all([
      run('npx', ['rxlake', '--help'], project),
      rxlake('--version'),
      rxlake('bronze', '--help'),
      rxlake('generate', '--help'),
      rxlake('generate-transactions', '--help'),
    ]);
    expect(help.code, help.stderr).toBe(0);
    for (const command of ['bronze', 'transactions', 'generate', 'generate-transactions']) expect(help.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    expect(version.stdout.trim()).toBe(pkg.version);
    // Each command's help is the job's or tool's own (its usage line and options).
    expect(commands.map((r) => [r.code, /^Usage: /.test(r.stdout), r.stdout.includes('--until-caught-up') || r.stdout.includes('--count')])).toEqual([
      [0, true, true],
      [0, true, true],
      [0, true, true],
    ]);
    const [unknown, transactions] = await Promise.all([rxlake('bronz'), rxlake('transactions')]);
    expect([unknown.code, unknown.stderr.split('\n')[0]]).toEqual([2, 'rxlake: unknown command "bronz"']);
    expect(transactions.code).toBe(2);
    expect(transactions.stderr).toContain('npm install pg');
    progress('npx rxlake runs');
  });
});

/** The operator module that exports `name`. */
function moduleOf(name: string): string {
  const index = readFileSync(join(installed, 'dist', 'operators', 'index.d.ts'), 'utf8');
  const line = index.split('\n').find((l) => new RegExp(`[{ ,]${name}[ ,}]`).test(l) && !l.startsWith('export type'));
  const module = /from '\.\/([^']+?)\.(?:ts|js)'/.exec(line ?? '')?.[1];
  if (module === undefined) throw new Error(`${name}: not found in dist/operators/index.d.ts`);
  return module;
}

import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import * as root from '../../src/index.ts';
import * as operators from '../../src/operators/index.ts';
import * as sinks from '../../src/sinks/index.ts';
import * as sources from '../../src/sources/index.ts';
import * as validation from '../../src/validation/index.ts';

const dir = join(import.meta.dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
  type: string;
  license: string;
  sideEffects: boolean | string[];
  exports: Record<string, string | { types: string; default: string }>;
  bin: Record<string, string>;
  files: string[];
  scripts: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** `./dist/x/y.js` (or `dist/x/y.js`) → the absolute path of its source, `src/x/y.ts`. */
const sourceOf = (built: string): string => join(dir, built.replace(/^(\.\/)?dist\//, 'src/').replace(/\.js$/, '.ts'));

const entrySources = Object.values(pkg.exports)
  .filter((t) => typeof t !== 'string')
  .map((t) => sourceOf(t.default));

function parse(file: string): ts.SourceFile {
  return ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
}

/** Module specifiers a file loads when it is imported (type-only imports and exports are erased; `import()` is not counted). */
function runtimeImports(sf: ts.SourceFile): string[] {
  const out: string[] = [];
  for (const s of sf.statements) {
    if (ts.isImportDeclaration(s) && s.importClause?.isTypeOnly !== true && ts.isStringLiteral(s.moduleSpecifier)) out.push(s.moduleSpecifier.text);
    if (ts.isExportDeclaration(s) && !s.isTypeOnly && s.moduleSpecifier !== undefined && ts.isStringLiteral(s.moduleSpecifier)) out.push(s.moduleSpecifier.text);
  }
  return out;
}

/** Every source file the package's entry points load, with the bare packages they load. */
function entryGraph(): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const queue = [...entrySources];
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    if (files.has(file)) continue;
    files.add(file);
    for (const spec of runtimeImports(parse(file))) {
      if (spec.startsWith('.')) queue.push(resolve(dirname(file), spec));
      else if (!spec.startsWith('node:')) packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
  }
  return { files, packages };
}

/** `for (…) TABLE[i] = …;` filling a lookup table the module declares itself. */
function fillsOwnTable(s: ts.Statement, own: ReadonlySet<string>): boolean {
  if (!ts.isForStatement(s) && !ts.isForOfStatement(s)) return false;
  const body = s.statement;
  if (!ts.isExpressionStatement(body) || !ts.isBinaryExpression(body.expression)) return false;
  const target = body.expression.left;
  return body.expression.operatorToken.kind === ts.SyntaxKind.EqualsToken && ts.isElementAccessExpression(target) && ts.isIdentifier(target.expression) && own.has(target.expression.text);
}

/** Whether a module runs statements of its own at import (beyond declarations, imports, exports and filling its own lookup tables). */
function runsCodeAtImport(sf: ts.SourceFile): boolean {
  const own = new Set(
    sf.statements.filter(ts.isVariableStatement).flatMap((v) => v.declarationList.declarations.map((d) => (ts.isIdentifier(d.name) ? d.name.text : ''))),
  );
  return sf.statements.some(
    (s) =>
      !ts.isImportDeclaration(s) &&
      !ts.isExportDeclaration(s) &&
      !ts.isFunctionDeclaration(s) &&
      !ts.isClassDeclaration(s) &&
      !ts.isInterfaceDeclaration(s) &&
      !ts.isTypeAliasDeclaration(s) &&
      !ts.isVariableStatement(s) &&
      !fillsOwnTable(s, own),
  );
}

function walk(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(folder, e.name)) : [join(folder, e.name)]));
}

describe('package shape', () => {
  it('is ESM with rxjs as a peer dependency', () => {
    expect(pkg.type).toBe('module');
    expect(pkg.peerDependencies.rxjs).toBeDefined();
    expect(pkg.dependencies.rxjs).toBeUndefined();
  });

  it('maps every entry point to built files whose sources exist, types first', () => {
    for (const [name, target] of Object.entries(pkg.exports)) {
      if (typeof target === 'string') continue;
      expect(Object.keys(target)[0], name).toBe('types');
      expect(target.default, name).toMatch(/^\.\/dist\/(?!src\/).*\.js$/);
      const source = sourceOf(target.default);
      expect(existsSync(source), `${name} → ${relative(dir, source)}`).toBe(true);
      expect(target.types.replace(/\.d\.ts$/, '.js')).toBe(target.default);
    }
  });

  it('packs dist (built by prepack), the sources its maps point to, README and LICENSE', () => {
    expect(pkg.files).toEqual(expect.arrayContaining(['dist', 'src']));
    expect(pkg.scripts.prepack).toMatch(/npm run build$/);
    expect(readFileSync(join(dir, 'LICENSE'), 'utf8')).toMatch(/Apache License\s+Version 2\.0, January 2004/);
    expect(pkg.license).toBe('Apache-2.0');
    expect(existsSync(join(dir, 'README.md'))).toBe(true);
  });

  it('has one rxlake command, a node script', () => {
    expect(Object.keys(pkg.bin)).toEqual(['rxlake']);
    const source = sourceOf(pkg.bin.rxlake!);
    expect(readFileSync(source, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
  });

  it('lists every module with side effects at import, and none the entry points load', () => {
    expect(Array.isArray(pkg.sideEffects), 'sideEffects lists modules').toBe(true);
    const listed = new Set((pkg.sideEffects as string[]).map(sourceOf));
    for (const file of listed) expect(existsSync(file), relative(dir, file)).toBe(true);
    // Modules that run statements at import: the job and tool entry points (which start when
    // run directly), the worker script, the command.
    const running = walk(join(dir, 'src')).filter((f) => f.endsWith('.ts') && runsCodeAtImport(parse(f)));
    for (const file of running) expect(listed.has(file), `${relative(dir, file)} runs code at import: list it in sideEffects`).toBe(true);
    // The native SNAPPY addon is loaded (and RXLAKE_SNAPPY read) while its module is imported.
    expect(listed.has(join(dir, 'src/sinks/delta/snappy.ts'))).toBe(true);
    expect(listed.has(sourceOf(pkg.bin.rxlake!))).toBe(true);
    for (const file of entrySources) expect(listed.has(file), relative(dir, file)).toBe(false);
  });

  it('keeps the AWS SDK, pg, avsc and ajv as optional peers that the entry points never load at import', () => {
    const optional = Object.entries(pkg.peerDependenciesMeta ?? {})
      .filter(([, m]) => m.optional === true)
      .map(([name]) => name)
      .sort();
    expect(optional).toEqual(['@aws-sdk/client-s3', 'ajv', 'avsc', 'pg']);
    const { packages } = entryGraph();
    for (const name of optional) {
      expect(pkg.peerDependencies[name], name).toBeDefined();
      expect(pkg.dependencies[name], name).toBeUndefined();
      expect(pkg.devDependencies[name], `${name}: the tests need it`).toBe(pkg.peerDependencies[name]);
      expect(packages.has(name), `${name} is imported at load time by the entry points`).toBe(false);
    }
    // What the entry points do load must be a dependency (or rxjs, the peer).
    for (const name of packages) expect(pkg.dependencies[name] ?? pkg.peerDependencies[name], name).toBeDefined();
  });

  it('exports the operators, sinks, sources and validation by name', () => {
    expect(Object.keys(operators).sort()).toEqual(
      [
        'DeadLetterError', 'SystematicProcessingError', 'deadLetterRowOf', 'ackSources', 'amountStats', 'batchInto', 'bufferTime', 'byKey', 'commitOffsets', 'deltaSink', 'enrichMetadata', 'fanOut', 'isBatchChunk', 'kafkaPartition', 'partitionByDate', 'pgSink', 'routeErrors', 'tumblingWindow', 'withDeadLetters',
        'decodeWithRegistry', 'loadRegistryCodecs', 'SchemaRegistryClient', 'SchemaRegistryError', 'SchemaRegistryUnavailableError',
        'windowAggregate', 'sumOf', 'countOf', 'avgOf', 'maxOf', 'minOf', 'windowSink', 'windowResumeWatermark', 'windowDeltaSpec', 'windowPgSpec',
      ].sort(),
    );
    for (const name of ['DeltaTable', 'deadLetterTableSpec', 'localStorage', 's3Storage', 'storageFromUri', 'isRetriable', 'PgTable', 'PgSinkError', 'isRetriablePg']) expect(sinks).toHaveProperty(name);
    // Every error class the sinks throw, and the base class.
    for (const name of ['RxlakeError', 'DeltaError', 'StorageError', 'CommitConflictError', 'SchemaMismatchError', 'ConcurrentMetadataChangeError', 'CorruptLogError', 'InvalidValueError', 'ParquetWorkerError', 'PgSinkError', 'MissingDependencyError']) {
      expect(sinks).toHaveProperty(name);
    }
    // The error model, the retry path and the logger, from the root.
    for (const name of ['RxlakeError', 'isRetriable', 'causeChain', 'backoffDelay', 'retryWith', 'withRetry', 'pinoLogger', 'fromPino', 'silentLogger', 'defaultLogger', 'registerSecret', 'redact', 'redactError', 'ConfigError', 'StartupError']) {
      expect(root).toHaveProperty(name);
    }
    for (const name of ['fromKafka', 'OffsetTracker', 'requireTopics']) expect(sources).toHaveProperty(name);
    // The synthetic event generators belong to the jobs (src/pipelines), not to the library.
    for (const name of ['createEventGenerator', 'corrupt', 'CORRUPTION_KINDS', 'EXPECTED_ERROR_TYPE']) expect(root).not.toHaveProperty(name);
    for (const name of ['compileBytesGuard', 'JsonBytesScanner', 'IsoTimestamp', 'isIsoTimestamp', 'parseIsoTimestampMicros', 'parseIsoTimestampMs']) expect(validation).toHaveProperty(name);
    for (const name of [...Object.keys(operators), ...Object.keys(sinks), ...Object.keys(sources), ...Object.keys(validation)]) expect(root).toHaveProperty(name);
  });
});

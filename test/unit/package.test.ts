import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as root from '../../src/index.ts';
import * as operators from '../../src/operators/index.ts';
import * as sinks from '../../src/sinks/index.ts';
import * as sources from '../../src/sources/index.ts';
import * as validation from '../../src/validation/index.ts';

const dir = join(import.meta.dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
  type: string;
  sideEffects: boolean;
  exports: Record<string, string | { types: string; default: string }>;
  peerDependencies: Record<string, string>;
  dependencies: Record<string, string>;
};

describe('package shape', () => {
  it('is ESM, side-effect free, with rxjs as a peer dependency', () => {
    expect(pkg.type).toBe('module');
    expect(pkg.sideEffects).toBe(false);
    expect(pkg.peerDependencies.rxjs).toBeDefined();
    expect(pkg.dependencies.rxjs).toBeUndefined();
  });

  it('maps every entry point to built files whose sources exist, types first', () => {
    for (const [name, target] of Object.entries(pkg.exports)) {
      if (typeof target === 'string') continue;
      expect(Object.keys(target)[0], name).toBe('types');
      const source = target.default.replace('./dist/', './').replace(/\.js$/, '.ts');
      expect(existsSync(join(dir, source)), `${name} → ${source}`).toBe(true);
      expect(target.types.replace(/\.d\.ts$/, '.js')).toBe(target.default);
    }
  });

  it('exports the operators, sinks, sources and validation by name', () => {
    expect(Object.keys(operators).sort()).toEqual(
      ['DeadLetterError', 'amountStats', 'bufferTime', 'commitOffsets', 'deltaSink', 'enrichMetadata', 'fanOut', 'isBatchChunk', 'partitionByDate', 'pgSink', 'routeErrors', 'tumblingWindow', 'withDeadLetters'].sort(),
    );
    for (const name of ['DeltaTable', 'deadLetterTableSpec', 'localStorage', 's3Storage', 'storageFromUri', 'isRetriable', 'PgTable', 'PgSinkError', 'isRetriablePg']) expect(sinks).toHaveProperty(name);
    for (const name of ['fromKafka', 'OffsetTracker', 'createEventGenerator', 'corrupt']) expect(sources).toHaveProperty(name);
    for (const name of ['compileBytesGuard', 'JsonBytesScanner']) expect(validation).toHaveProperty(name);
    for (const name of [...Object.keys(operators), ...Object.keys(sinks), ...Object.keys(sources), ...Object.keys(validation)]) expect(root).toHaveProperty(name);
  });
});

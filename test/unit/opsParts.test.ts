/**
 * The pure parts of the table maintenance commands: durations and sizes as typed, `--where`
 * conditions, appIds, which log files a cleanup may delete, how replays are recorded, and the
 * command line's usage errors (no table is touched).
 */
import { describe, expect, it } from 'vitest';
import { commands, parseSize } from '../../src/ops/cli.ts';
import type { Io } from '../../src/ops/cli.ts';
import { formatBytes, formatDuration, parseDuration } from '../../src/ops/common.ts';
import { appIdParts } from '../../src/ops/lag.ts';
import { isReplayed, recordTxns } from '../../src/ops/replayDlq.ts';
import type { ReplayRow } from '../../src/ops/replayDlq.ts';
import { parseFilter } from '../../src/ops/tail.ts';
import { expiredLog } from '../../src/ops/vacuum.ts';
import type { FullState } from '../../src/sinks/delta/log.ts';

describe('durations, sizes, filters, appIds', () => {
  it('parses durations as typed and as Delta table properties', () => {
    expect(parseDuration('7d')).toBe(7 * 86_400_000);
    expect(parseDuration('168h')).toBe(7 * 86_400_000);
    expect(parseDuration('interval 7 days')).toBe(7 * 86_400_000);
    expect(parseDuration('interval 1 week')).toBe(7 * 86_400_000);
    expect(parseDuration('90m')).toBe(5_400_000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('soon')).toBeUndefined();
    expect(parseDuration('7 fortnights')).toBeUndefined();
    expect(formatDuration(7 * 86_400_000)).toBe('7d');
    expect(formatDuration(5_400_000)).toBe('90m');
    expect(formatBytes(134_217_728)).toBe('128 MiB');
    expect(formatBytes(1536)).toBe('1.5 KiB');
  });

  it('parses sizes; rejects what is not one', () => {
    expect(parseSize('128MiB', '--target-size')).toBe(134_217_728);
    expect(parseSize('64MB', '--target-size')).toBe(64_000_000);
    expect(parseSize('1048576', '--target-size')).toBe(1_048_576);
    expect(parseSize('1.5GiB', '--target-size')).toBe(1_610_612_736);
    expect(() => parseSize('big', '--target-size')).toThrow('expected a size such as 128MiB');
    expect(() => parseSize('0', '--target-size')).toThrow('expected a size');
    expect(() => parseSize('12 parsecs', '--min-size')).toThrow('--min-size');
  });

  it('parses --where conditions', () => {
    expect(parseFilter('error_type=JSON_PARSE_ERROR')).toEqual({ column: 'error_type', op: '=', value: 'JSON_PARSE_ERROR' });
    expect(parseFilter('_kafka_offset >= 100')).toEqual({ column: '_kafka_offset', op: '>=', value: '100' });
    expect(parseFilter('a!=b')).toEqual({ column: 'a', op: '!=', value: 'b' });
    expect(parseFilter('error_message~depth')).toEqual({ column: 'error_message', op: '~', value: 'depth' });
    expect(parseFilter('x=a=b')).toEqual({ column: 'x', op: '=', value: 'a=b' });
    expect(() => parseFilter('nothing')).toThrow('expected COLUMN OP VALUE');
  });

  it('splits writer appIds of a topic, whatever dashes the pipeline id and topic hold', () => {
    expect(appIdParts('bronze-trips-2', 'trips')).toEqual({ pipeline: 'bronze', partition: 2 });
    expect(appIdParts('my-job-stg.gps-pings-10', 'stg.gps-pings')).toEqual({ pipeline: 'my-job', partition: 10 });
    expect(appIdParts('bronze-trips-2', 'rips')).toBeUndefined();
    expect(appIdParts('bronze-trips', 'trips')).toBeUndefined();
  });
});

describe('log cleanup: which files go', () => {
  const DAY = 86_400_000;
  const name = (v: number, kind = 'json'): string => `_delta_log/${String(v).padStart(20, '0')}.${kind}`;
  /** Commits 0..24, commit v written on day v; checkpoints at 10 and 20. */
  const files = [
    ...Array.from({ length: 25 }, (_, v) => ({ path: name(v), size: 1, modified: v * DAY })),
    { path: name(10, 'checkpoint.parquet'), size: 1, modified: 10 * DAY },
    { path: name(20, 'checkpoint.parquet'), size: 1, modified: 20 * DAY },
  ];
  const short = (n: string): string => n.replace(/^0+(?=\d)/, '');

  it('deletes up to the newest checkpoint at or before the last expired commit, never that checkpoint', () => {
    const r = expiredLog(files, 15 * DAY, 20);
    expect(r.oldest).toBe(10);
    expect(r.names.map(short)).toEqual(Array.from({ length: 10 }, (_, v) => `${v}.json`));
    const later = expiredLog(files, 23 * DAY, 20);
    expect(later.oldest).toBe(20);
    expect(later.names).toHaveLength(21); // commits 0-19 and checkpoint 10
    expect(later.names).toContain(name(10, 'checkpoint.parquet').slice('_delta_log/'.length));
  });

  it('deletes nothing before the first checkpoint expires, nor past the one _last_checkpoint names', () => {
    expect(expiredLog(files, 9 * DAY, 20)).toEqual({ names: [], oldest: 0 });
    expect(expiredLog(files, 23 * DAY, 10).oldest).toBe(10);
    expect(expiredLog(files.filter((f) => !f.path.includes('checkpoint')), 23 * DAY, undefined).names).toEqual([]);
  });
});

describe('replay records', () => {
  const state = (txns: Record<string, bigint>): FullState =>
    ({ txns: new Map(Object.entries(txns)) }) as unknown as FullState;
  const row = (partition: number, offset: number, errorType = 'JSON_PARSE_ERROR'): ReplayRow => ({
    topic: 't', partition, offset: BigInt(offset), errorType, errorMessage: 'm', timestamp: 0n, payload: new Uint8Array([1]),
  });
  const ids = (txns: ReadonlyArray<{ appId: string; version: bigint }>): Record<string, bigint> => Object.fromEntries(txns.map((t) => [t.appId, t.version]));

  it('advances a partition watermark over rows replayed in order', () => {
    const all = [row(0, 3), row(0, 7), row(1, 2)];
    expect(ids(recordTxns(state({}), all, all, 1))).toEqual({ 'rxlake-replay-t-0': 7n, 'rxlake-replay-t-1': 2n });
  });

  it('records rows replayed past a row left out one by one, and folds them into the watermark later', () => {
    const all = [row(0, 3), row(0, 5, 'SCHEMA_VALIDATION_ERROR'), row(0, 7)];
    const first = recordTxns(state({}), all, [all[0] as ReplayRow, all[2] as ReplayRow], 1);
    expect(ids(first)).toEqual({ 'rxlake-replay-t-0': 3n, 'rxlake-replayed-t-0-7': 7n });
    const after = state(ids(first));
    expect(all.map((r) => isReplayed(after, r))).toEqual([true, false, true]);
    const second = recordTxns(after, all, [all[1] as ReplayRow], 2);
    expect(ids(second)).toEqual({ 'rxlake-replay-t-0': 7n });
    expect(all.every((r) => isReplayed(state({ ...ids(first), ...ids(second) }), r))).toBe(true);
  });
});

describe('table commands: usage', () => {
  const io = (): Io & { stdout: () => string; stderr: () => string } => {
    let out = '';
    let err = '';
    return { out: (t) => (out += t), err: (t) => (err += t), env: {}, stdout: () => out, stderr: () => err };
  };

  it('--help exits 0 with the usage; unknown options and missing arguments exit 2 with it', async () => {
    for (const [name, run] of Object.entries(commands)) {
      const help = io();
      expect(await run(['--help'], help)).toBe(0);
      expect(help.stdout()).toContain(`Usage: rxlake ${name} TABLE`);
      const bad = io();
      expect(await run(['--frobnicate'], bad)).toBe(2);
      expect(bad.stderr()).toContain("Unknown option '--frobnicate'");
      expect(bad.stderr()).toContain(`Usage: rxlake ${name}`);
      const none = io();
      expect(await run([], none)).toBe(2);
      expect(none.stderr()).toContain('expected one TABLE');
    }
  });

  it('names a bad duration, size, count or broker list', async () => {
    const cases: Array<[keyof typeof commands, string[], string]> = [
      ['vacuum', ['t', '--retention', 'a while'], 'expected a duration such as 7d'],
      ['optimize', ['t', '--min-size=-1'], 'expected a size'],
      ['optimize', ['t', '--partition', 'nodate'], 'expected COLUMN=VALUE'],
      ['tail', ['t', '-n', 'ten'], 'expected a whole number'],
      ['replay-dlq', ['t', '--brokers', 'localhost'], 'expected host:port'],
    ];
    for (const [name, args, message] of cases) {
      const r = io();
      expect(await commands[name](args, r), `${name} ${args.join(' ')}`).toBe(2);
      expect(r.stderr()).toContain(message);
    }
  });
});

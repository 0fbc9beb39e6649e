/**
 * Compaction run by a job itself, in the background: after every N commits of a table, or when
 * one of its partitions holds more than K small files. Off unless a job wires it to its sink
 * (`deltaSink(table, { onWrite: auto.onWrite })`); ingestion never waits for it, and a failed
 * compaction is reported, not thrown.
 */
import type { SinkAck } from '../types.ts';
import type { Storage } from '../sinks/delta/storage.ts';
import type { OptimizeOptions, OptimizeResult } from './optimize.ts';
import { executeOptimize, planOptimize } from './optimize.ts';

export interface AutoOptimizeOptions extends OptimizeOptions {
  /** Compact after this many commits of the table since the last compaction (0 or unset: not by count). */
  readonly everyCommits?: number;
  /** Compact when a partition holds more than this many small files (0 or unset: not by files). */
  readonly smallFiles?: number;
  /** How often the small files are counted at most (default 60 s; counting reads the table's state). */
  readonly checkIntervalMs?: number;
  /** Called after each compaction that ran. */
  readonly onResult?: (result: OptimizeResult) => void;
  /** Called when a compaction failed (the next trigger tries again). */
  readonly onError?: (err: unknown) => void;
}

export interface AutoOptimizer {
  /** Give it every acknowledgement of the table's sink (`deltaSink`'s `onWrite`). */
  readonly onWrite: (ack: SinkAck) => void;
  /** Resolves when no compaction runs. */
  idle(): Promise<void>;
}

/**
 * Background compaction of the table at `storage`, triggered by its sink's acknowledgements.
 *
 * ## Example
 * ```ts
 * const auto = autoOptimize(table.storage, { everyCommits: 100, smallFiles: 50 });
 * batches$.pipe(deltaSink(table, { onWrite: auto.onWrite }), commitOffsets(source));
 * ```
 *
 * @param storage The table root (the sink's table's `storage`).
 * @param options `everyCommits`, `smallFiles`, and the compaction's own options.
 * @return The `onWrite` hook and `idle()`.
 */
export function autoOptimize(storage: Storage, options: AutoOptimizeOptions): AutoOptimizer {
  const every = options.everyCommits ?? 0;
  const smallFiles = options.smallFiles ?? 0;
  const checkInterval = options.checkIntervalMs ?? 60_000;
  let commits = 0;
  let lastCheck = -Infinity;
  let running: Promise<void> | undefined;

  const run = async (force: boolean): Promise<void> => {
    const plan = await planOptimize(storage, options);
    if (!force) {
      // Compact only when a partition holds more than `smallFiles` small files.
      const perPartition = new Map<string, number>();
      for (const b of plan.bins) {
        const k = JSON.stringify(b.partitionValues);
        perPartition.set(k, (perPartition.get(k) ?? 0) + b.files.length);
      }
      if (![...perPartition.values()].some((n) => n > smallFiles)) return;
    }
    commits = 0;
    const result = await executeOptimize(plan);
    options.onResult?.(result);
  };

  const start = (force: boolean): void => {
    if (running) return;
    running = run(force)
      .catch((err: unknown) => options.onError?.(err))
      .finally(() => {
        running = undefined;
      });
  };

  return {
    onWrite: (ack) => {
      if (ack.version === null) return;
      commits += 1;
      if (every > 0 && commits >= every) {
        start(true);
        return;
      }
      const now = Date.now();
      if (smallFiles > 0 && now - lastCheck >= checkInterval) {
        lastCheck = now;
        start(false);
      }
    },
    idle: async () => {
      while (running) await running;
    },
  };
}

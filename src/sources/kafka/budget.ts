/**
 * The in-flight budget: at most so many records and bytes read and not yet acknowledged. A
 * batch handler that finds it used up waits (heart-beating, so the group keeps the member),
 * which holds the client's next fetch back; acknowledgements wake it. While it waits with every
 * record read already downstream, `saturated$` asks buffers to write what they hold.
 */
import { Subject } from 'rxjs';
import type { Observable } from 'rxjs';
import type { OffsetTracker } from '../offsetTracker.ts';
import { signal } from './clock.ts';
import type { Clock } from './clock.ts';

/** Longest wait between two checks of a blocked batch (and between heartbeats). */
export const WAIT_SLICE_MS = 1_000;

export interface BudgetOptions {
  readonly maxRecords: number;
  readonly maxBytes: number;
  readonly clock: Clock;
}

export class InFlightBudget {
  readonly #tracker: OffsetTracker;
  readonly #maxRecords: number;
  readonly #maxBytes: number;
  readonly #freed;
  readonly #saturated = new Subject<void>();

  readonly saturated$: Observable<void> = this.#saturated.asObservable();

  constructor(tracker: OffsetTracker, options: BudgetOptions) {
    this.#tracker = tracker;
    this.#maxRecords = options.maxRecords;
    this.#maxBytes = options.maxBytes;
    this.#freed = signal(options.clock);
  }

  /** Whether a record of `size` bytes does not fit now (one record always fits an empty budget). */
  over(size: number): boolean {
    const t = this.#tracker;
    return t.inFlightRecords >= this.#maxRecords || (t.inFlightRecords > 0 && t.inFlightBytes + size > this.#maxBytes);
  }

  /** Budget was freed (or the wait no longer matters): every waiting handler looks again. */
  wake(): void {
    this.#freed.wake();
  }

  /** Resolves on the next `wake()` or after `ms`. */
  wait(ms: number): Promise<void> {
    return this.#freed.wait(ms);
  }

  /** Asks downstream buffers to write what they hold. */
  saturated(): void {
    this.#saturated.next();
  }

  /**
   * Waits until a record of `size` fits, asking for writes whenever every record read is
   * downstream (`drained()`). False: the wait ended because the batch no longer matters.
   */
  waitFor(size: number, drained: () => boolean, live: () => boolean, heartbeat: () => Promise<void>): Promise<boolean> {
    const blocked = (): boolean => {
      if (this.over(size) && drained()) this.#saturated.next();
      return this.over(size);
    };
    return this.waitWhile(blocked, live, heartbeat);
  }

  /**
   * Waits (heart-beating) while `blocked()`, which is asked again after each wake-up or slice.
   * False: the batch no longer matters (`live()` turned false: a stop, a rebalance).
   */
  async waitWhile(blocked: () => boolean, live: () => boolean, heartbeat: () => Promise<void>): Promise<boolean> {
    while (blocked()) {
      await this.wait(WAIT_SLICE_MS);
      if (!live()) return false;
      await heartbeat();
    }
    return true;
  }
}

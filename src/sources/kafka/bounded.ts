/**
 * Bounded mode (`untilCaughtUp`): the high-water mark of each partition found at start, and
 * how far each partition was read. The run is caught up once every assigned partition reached
 * its start high-water mark; positions only ever move forward.
 */

export class BoundedProgress {
  readonly #hwm = new Map<string, bigint>();
  readonly #positions = new Map<string, bigint>();

  /** The start-up look-ups: high-water marks and start positions per partition key. */
  start(hwm: ReadonlyMap<string, bigint>, positions: ReadonlyMap<string, bigint>): void {
    for (const [key, h] of hwm) this.#hwm.set(key, h);
    for (const [key, p] of positions) this.#positions.set(key, p);
  }

  /** The partition's high-water mark at start (0 for a partition unknown then: nothing to read). */
  hwm(key: string): bigint {
    return this.#hwm.get(key) ?? 0n;
  }

  position(key: string): bigint | undefined {
    return this.#positions.get(key);
  }

  /** The partition reached its end: nothing at or past the start high-water mark is read. */
  finish(key: string): void {
    this.#positions.set(key, this.hwm(key));
  }

  /** Read up to `next` (exclusive); never moves back. */
  advance(key: string, next: bigint): void {
    const pos = this.#positions.get(key);
    if (pos === undefined || next > pos) this.#positions.set(key, next);
  }

  /** Like `advance`, at most to the start high-water mark (a batch may end past it). */
  advanceCapped(key: string, next: bigint): void {
    const pos = this.#positions.get(key);
    const hwm = this.hwm(key);
    if (pos === undefined || next > pos) this.#positions.set(key, next < hwm ? next : hwm);
  }

  /** Another member may have advanced these partitions: their committed offsets count as read. */
  raise(committed: ReadonlyMap<string, bigint>): void {
    for (const [key, offset] of committed) this.advance(key, offset);
  }

  /** Every assigned partition reached its start high-water mark. */
  caughtUp(assigned: Iterable<string>): boolean {
    for (const key of assigned) {
      const pos = this.#positions.get(key);
      if (pos === undefined || pos < this.hwm(key)) return false;
    }
    return true;
  }
}

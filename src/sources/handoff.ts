/**
 * A FIFO between the Kafka client and the subscriber: records read from a fetch are queued and
 * handed on in time slices on later turns of the event loop, so the client's next fetch goes
 * out at once and its response arrives while these records are processed (kafkajs fetches
 * again only once the batch handler returns).
 */
export interface HandoffOptions<T> {
  /** Receives each item, in order. */
  readonly deliver: (item: T) => void;
  /** Called when the queue has just been emptied by a slice. */
  readonly onEmpty?: () => void;
  /** Called after every slice of deliveries (the queue is shorter than before). */
  readonly onSlice?: () => void;
  /** Longest slice of deliveries before yielding to the event loop, ms (default 10). */
  readonly sliceMs?: number;
  /** Runs a slice later (default `setImmediate`: after pending I/O). */
  readonly schedule?: (run: () => void) => void;
}

export class Handoff<T> {
  /** A ring: items at `#head` … `#head + #size - 1` (mod capacity, a power of two). */
  #ring: Array<T | undefined> = new Array<T | undefined>(1024);
  #head = 0;
  #size = 0;
  /** Items were pushed since the queue last emptied (or was cleared): the next emptying is reported. */
  #filled = false;
  #scheduled = false;
  readonly #deliver: (item: T) => void;
  readonly #onEmpty: () => void;
  readonly #onSlice: () => void;
  readonly #sliceMs: number;
  readonly #schedule: (run: () => void) => void;

  constructor(options: HandoffOptions<T>) {
    this.#deliver = options.deliver;
    this.#onEmpty = options.onEmpty ?? (() => undefined);
    this.#onSlice = options.onSlice ?? (() => undefined);
    this.#sliceMs = options.sliceMs ?? 10;
    this.#schedule = options.schedule ?? ((run) => setImmediate(run));
  }

  /** Items queued and not delivered yet. */
  get size(): number {
    return this.#size;
  }

  /** Queues an item; it is delivered on a later turn. */
  push(item: T): void {
    if (this.#size === this.#ring.length) this.#grow();
    this.#ring[(this.#head + this.#size) & (this.#ring.length - 1)] = item;
    this.#size += 1;
    this.#filled = true;
    if (!this.#scheduled) {
      this.#scheduled = true;
      this.#schedule(this.#run);
    }
  }

  /** Delivers everything queued now (before a completion, so nothing read is left behind). */
  flush(): void {
    this.#drain(Number.POSITIVE_INFINITY);
  }

  /** Drops everything queued (the subscriber is gone or failed). */
  clear(): void {
    this.#ring = new Array<T | undefined>(1024);
    this.#head = 0;
    this.#size = 0;
    this.#filled = false;
  }

  readonly #run = (): void => {
    // Still scheduled while draining: pushes meanwhile join this slice or the next one.
    try {
      this.#drain(performance.now() + this.#sliceMs);
    } finally {
      if (this.#size > 0) this.#schedule(this.#run);
      else this.#scheduled = false;
      this.#onSlice();
    }
  };

  /** Twice the room, items kept in order from index 0 (the queue stays allocated: no garbage per item). */
  #grow(): void {
    const old = this.#ring;
    const next = new Array<T | undefined>(old.length * 2);
    for (let i = 0; i < this.#size; i++) next[i] = old[(this.#head + i) & (old.length - 1)];
    this.#ring = next;
    this.#head = 0;
  }

  #drain(deadline: number): void {
    let n = 0;
    while (this.#size > 0) {
      const ring = this.#ring;
      const at = this.#head;
      const item = ring[at] as T;
      ring[at] = undefined;
      this.#head = (at + 1) & (ring.length - 1);
      this.#size -= 1;
      // May flush or clear this queue re-entrantly; the loop re-reads its state.
      this.#deliver(item);
      n += 1;
      if (this.#size > 0 && (n & 127) === 0 && performance.now() >= deadline) return;
    }
    if (this.#filled) {
      this.#filled = false;
      this.#onEmpty();
    }
  }
}

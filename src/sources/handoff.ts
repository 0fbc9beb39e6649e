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
  #items: Array<T | undefined> = [];
  #head = 0;
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
    return this.#items.length - this.#head;
  }

  /** Queues an item; it is delivered on a later turn. */
  push(item: T): void {
    this.#items.push(item);
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
    this.#items = [];
    this.#head = 0;
  }

  readonly #run = (): void => {
    // Still scheduled while draining: pushes meanwhile join this slice or the next one.
    try {
      this.#drain(performance.now() + this.#sliceMs);
    } finally {
      if (this.size > 0) this.#schedule(this.#run);
      else this.#scheduled = false;
      this.#onSlice();
    }
  };

  /** Drops delivered slots once they are most of the array (a queue that never empties). */
  #compact(): void {
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }

  #drain(deadline: number): void {
    let n = 0;
    while (this.#head < this.#items.length) {
      const item = this.#items[this.#head] as T;
      this.#items[this.#head] = undefined;
      this.#head += 1;
      // May flush or clear this queue re-entrantly; the loop re-reads its state.
      this.#deliver(item);
      n += 1;
      if ((n & 127) === 0 && performance.now() >= deadline) {
        this.#compact();
        return;
      }
    }
    if (this.#items.length > 0) {
      this.#items = [];
      this.#head = 0;
      this.#onEmpty();
    }
  }
}

/**
 * Acknowledgement bookkeeping between a source and its sinks: which emitted records are still
 * in flight, how much of the in-flight budget they use, and up to where each partition may be
 * committed. Pure (no I/O, no timers), so it is unit-tested on its own and reused by any
 * `OffsetCommitTarget`.
 */
import type { ObservableInput } from 'rxjs';
import type { RecordRef } from '../types.ts';

/** A committed (or committable) position: `offset` is the next offset to read, Kafka's convention. */
export interface CommittedOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
}

/**
 * What `commitOffsets()` talks to: the `KafkaSource`, or anything with the same contract.
 * `acknowledge` marks records durable; `commit` commits every committable position that advanced
 * and yields what it committed (an empty array when nothing advanced).
 */
export interface OffsetCommitTarget {
  acknowledge(refs: readonly RecordRef[]): void;
  /** Optional: frees the in-flight budget of records not acknowledged yet (`SinkAck.released`). */
  release?(refs: readonly RecordRef[]): void;
  commit(): ObservableInput<readonly CommittedOffset[]>;
  /**
   * Optional: keeps the target's connection open until the returned function is called. The
   * commit chain holds it so a completing source is not disconnected before the final commit.
   */
  retain?(): () => void;
}

/** Per-partition numbers for metrics and lag. */
export interface PartitionStats {
  readonly topic: string;
  readonly partition: number;
  readonly highWatermark?: bigint;
  readonly lastEmitted?: bigint;
  readonly committed?: bigint;
}

export interface TrackerStats {
  readonly inFlightRecords: number;
  readonly inFlightBytes: number;
  readonly peakInFlightRecords: number;
  readonly peakInFlightBytes: number;
  readonly partitions: PartitionStats[];
}

interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  /** Assigned to this consumer now (a revoked partition keeps its state while its records are in flight). */
  owned: boolean;
  /** Emitted offsets, strictly increasing; entries before `head` are acknowledged. */
  offsets: bigint[];
  sizes: number[];
  done: boolean[];
  head: number;
  lastEmitted: bigint | undefined;
  committed: bigint | undefined;
  highWatermark: bigint | undefined;
}

const COMPACT_AT = 4096;
/** `sizes[i]` of a record whose budget `release()` freed before its acknowledgement. */
const RELEASED = -1;

function keyOf(topic: string, partition: number): string {
  return `${partition}\u0000${topic}`;
}

/**
 * Tracks emitted and acknowledged offsets per partition.
 *
 * The invariant it enforces: **an offset is emitted at most once per partition for the
 * tracker's lifetime** (one subscription of the source). Whatever moved the consumer — a
 * rebalance that keeps or returns a partition, a new generation, a seek, start-up look-ups
 * retried — the broker may hand over records already emitted; `emit()` refuses every offset at
 * or below the partition's last emitted one, so no second copy of a record enters the chain
 * while its first copy is in flight (and none after it is durable either). Only a new
 * subscription (`clear()`) starts over, when nothing of the old chain is in flight any more.
 *
 * Rules:
 * - `emit()` records offsets in increasing order per partition and returns `true`; an offset at
 *   or below the last emitted (or skipped) one returns `false` and must not be emitted. Offsets
 *   need not be contiguous (compaction, transaction markers): only emitted offsets count.
 * - `acknowledge()` accepts refs in any order, from any number of sinks; refs of unknown
 *   partitions or unknown offsets are ignored. A record releases its in-flight budget on its
 *   first acknowledgement.
 * - The committable offset of a partition is its lowest emitted-but-unacknowledged offset, or
 *   last emitted + 1 when every emitted record is acknowledged. Nothing past an unacknowledged
 *   record is ever committable.
 * - `revoke()` marks a partition as not owned: it is no longer committed (`pending()`) nor
 *   reported (`stats()`), but its records already emitted stay in flight — they are still in the
 *   chain and will be written — so their budget stays held and their acknowledgements still
 *   count. `assign()` owns it again with that state, so a partition that comes back is not
 *   emitted twice either.
 */
export class OffsetTracker {
  readonly #partitions = new Map<string, PartitionState>();
  #inFlightRecords = 0;
  #inFlightBytes = 0;
  #peakRecords = 0;
  #peakBytes = 0;
  /** The partition `emit()` saw last (records arrive in runs of one partition). */
  #last: PartitionState | undefined;

  get inFlightRecords(): number {
    return this.#inFlightRecords;
  }

  get inFlightBytes(): number {
    return this.#inFlightBytes;
  }

  /** Owns a partition (again): its state, if any, is kept (see the class rules). */
  assign(topic: string, partition: number): void {
    this.#stateOf(topic, partition).owned = true;
  }

  /**
   * The partition is no longer owned: not committed nor reported any more. Its emitted records
   * stay in flight (budget held, acknowledgements counted) until the chain writes them.
   */
  revoke(topic: string, partition: number): void {
    const state = this.#partitions.get(keyOf(topic, partition));
    if (state) state.owned = false;
  }

  /** Owns exactly `assigned`: revokes every other partition, assigns these. */
  reassign(assigned: ReadonlyArray<{ topic: string; partition: number }>): void {
    const keep = new Set(assigned.map((a) => keyOf(a.topic, a.partition)));
    for (const [key, state] of this.#partitions) {
      if (!keep.has(key)) state.owned = false;
    }
    for (const a of assigned) this.assign(a.topic, a.partition);
  }

  /** Forgets every partition and releases the whole budget: a new chain, nothing in flight. */
  clear(): void {
    for (const state of this.#partitions.values()) this.#release(state);
    this.#partitions.clear();
    this.#last = undefined;
  }

  isAssigned(topic: string, partition: number): boolean {
    return this.#partitions.get(keyOf(topic, partition))?.owned === true;
  }

  /**
   * Records an emitted record; it stays in flight until acknowledged. Returns `false`, recording
   * nothing, for an offset at or below the partition's last emitted one: a redelivery, whose
   * first copy is in flight or durable — the caller must not emit it.
   */
  emit(topic: string, partition: number, offset: bigint, size: number): boolean {
    let state = this.#last;
    if (state === undefined || state.partition !== partition || state.topic !== topic) {
      state = this.#stateOf(topic, partition);
      this.#last = state;
    }
    if (state.lastEmitted !== undefined && offset <= state.lastEmitted) return false;
    state.offsets.push(offset);
    state.sizes.push(size);
    state.done.push(false);
    state.lastEmitted = offset;
    this.#inFlightRecords += 1;
    this.#inFlightBytes += size;
    if (this.#inFlightRecords > this.#peakRecords) this.#peakRecords = this.#inFlightRecords;
    if (this.#inFlightBytes > this.#peakBytes) this.#peakBytes = this.#inFlightBytes;
    return true;
  }

  /** A partition's state, created (owned) if missing. */
  #stateOf(topic: string, partition: number): PartitionState {
    const key = keyOf(topic, partition);
    let state = this.#partitions.get(key);
    if (!state) {
      state = fresh(topic, partition);
      this.#partitions.set(key, state);
    }
    return state;
  }

  /**
   * The partition restarts at `offset` (a seek to where a sink already holds everything before
   * it): offsets below it are never emitted, and `offset` is committable once the records
   * emitted before (if any) are acknowledged. Same as `skipTo`; named for the seek.
   */
  resumeAt(topic: string, partition: number, offset: bigint): void {
    this.skipTo(topic, partition, offset);
  }

  /**
   * Offsets below `next` that were not emitted carry no data (transaction markers, aborted or
   * compacted records): once every emitted record is acknowledged, `next` is committable.
   */
  skipTo(topic: string, partition: number, next: bigint): void {
    const state = this.#stateOf(topic, partition);
    if (state.lastEmitted === undefined || next - 1n > state.lastEmitted) state.lastEmitted = next - 1n;
  }

  /** Marks records durable. Returns how many were newly acknowledged. */
  acknowledge(refs: Iterable<RecordRef>): number {
    let count = 0;
    let lastTopic: string | undefined;
    let lastPartition = -1;
    let state: PartitionState | undefined;
    let next = -1;
    for (const ref of refs) {
      if (ref.partition !== lastPartition || ref.topic !== lastTopic) {
        state = this.#partitions.get(keyOf(ref.topic, ref.partition));
        lastTopic = ref.topic;
        lastPartition = ref.partition;
        next = -1;
      }
      if (!state) continue;
      // Refs mostly come in emit order: try the slot after the previous one before searching.
      const i = next >= state.head && state.offsets[next] === ref.offset ? next : indexOf(state.offsets, state.head, ref.offset);
      next = i + 1;
      if (i < 0 || state.done[i] === true) continue;
      state.done[i] = true;
      const size = state.sizes[i] ?? 0;
      if (size !== RELEASED) {
        this.#inFlightRecords -= 1;
        this.#inFlightBytes -= size;
      }
      count += 1;
      if (i === state.head) advance(state);
    }
    return count;
  }

  /**
   * Frees the in-flight budget of records without acknowledging them: their offsets stay
   * uncommittable until `acknowledge()`. For records only a small reference of which is still
   * held (e.g. waiting in an event-time window). Returns how many were newly released.
   */
  release(refs: Iterable<RecordRef>): number {
    let count = 0;
    for (const ref of refs) {
      const state = this.#partitions.get(keyOf(ref.topic, ref.partition));
      if (!state) continue;
      const i = indexOf(state.offsets, state.head, ref.offset);
      if (i < 0 || state.done[i] === true || state.sizes[i] === RELEASED) continue;
      this.#inFlightRecords -= 1;
      this.#inFlightBytes -= state.sizes[i] ?? 0;
      state.sizes[i] = RELEASED;
      count += 1;
    }
    return count;
  }

  /** The offset up to which (exclusive) a partition may be committed, if anything was emitted. */
  committable(topic: string, partition: number): bigint | undefined {
    const state = this.#partitions.get(keyOf(topic, partition));
    if (!state || state.lastEmitted === undefined) return undefined;
    const first = state.offsets[state.head];
    return first ?? state.lastEmitted + 1n;
  }

  /** Committable positions of owned partitions that advanced beyond the last committed one. */
  pending(): CommittedOffset[] {
    const out: CommittedOffset[] = [];
    for (const state of this.#partitions.values()) {
      if (!state.owned) continue;
      const offset = this.committable(state.topic, state.partition);
      if (offset === undefined) continue;
      if (state.committed !== undefined && offset <= state.committed) continue;
      out.push({ topic: state.topic, partition: state.partition, offset });
    }
    return out;
  }

  /** Records a successful commit (ignored for partitions no longer tracked). */
  markCommitted(topic: string, partition: number, offset: bigint): void {
    const state = this.#partitions.get(keyOf(topic, partition));
    if (!state) return;
    if (state.committed === undefined || offset > state.committed) state.committed = offset;
  }

  committed(topic: string, partition: number): bigint | undefined {
    return this.#partitions.get(keyOf(topic, partition))?.committed;
  }

  setHighWatermark(topic: string, partition: number, hwm: bigint): void {
    const state = this.#partitions.get(keyOf(topic, partition));
    if (state) state.highWatermark = hwm;
  }

  lastEmitted(topic: string, partition: number): bigint | undefined {
    return this.#partitions.get(keyOf(topic, partition))?.lastEmitted;
  }

  stats(): TrackerStats {
    const partitions: PartitionStats[] = [];
    for (const s of this.#partitions.values()) {
      if (!s.owned) continue;
      partitions.push({
        topic: s.topic,
        partition: s.partition,
        ...(s.highWatermark !== undefined ? { highWatermark: s.highWatermark } : {}),
        ...(s.lastEmitted !== undefined ? { lastEmitted: s.lastEmitted } : {}),
        ...(s.committed !== undefined ? { committed: s.committed } : {}),
      });
    }
    partitions.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
    return {
      inFlightRecords: this.#inFlightRecords,
      inFlightBytes: this.#inFlightBytes,
      peakInFlightRecords: this.#peakRecords,
      peakInFlightBytes: this.#peakBytes,
      partitions,
    };
  }

  #release(state: PartitionState): void {
    for (let i = state.head; i < state.offsets.length; i++) {
      if (state.done[i] === true || state.sizes[i] === RELEASED) continue;
      this.#inFlightRecords -= 1;
      this.#inFlightBytes -= state.sizes[i] ?? 0;
    }
    state.head = state.offsets.length;
  }
}

function fresh(topic: string, partition: number): PartitionState {
  return {
    topic,
    partition,
    owned: true,
    offsets: [],
    sizes: [],
    done: [],
    head: 0,
    lastEmitted: undefined,
    committed: undefined,
    highWatermark: undefined,
  };
}

function advance(state: PartitionState): void {
  let h = state.head;
  const n = state.offsets.length;
  while (h < n && state.done[h] === true) h++;
  state.head = h;
  if (h >= COMPACT_AT && h * 2 >= n) {
    state.offsets = state.offsets.slice(h);
    state.sizes = state.sizes.slice(h);
    state.done = state.done.slice(h);
    state.head = 0;
  }
}

/** Binary search for `offset` in the strictly increasing `offsets[from..]`; -1 if absent. */
function indexOf(offsets: readonly bigint[], from: number, offset: bigint): number {
  let lo = from;
  let hi = offsets.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = offsets[mid];
    if (v === undefined) return -1;
    if (v === offset) return mid;
    if (v < offset) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

import { describe, expect, it } from 'vitest';
import { Handoff } from '../../src/sources/handoff.ts';

/** A hand-off whose slices run when the test says, with a clock the test moves. */
function harness(sliceMs = 10) {
  const delivered: number[] = [];
  const runs: Array<() => void> = [];
  let empties = 0;
  let onDeliver: (n: number) => void = () => undefined;
  const h = new Handoff<number>({
    deliver: (n) => {
      delivered.push(n);
      onDeliver(n);
    },
    onEmpty: () => (empties += 1),
    sliceMs,
    schedule: (run) => runs.push(run),
  });
  const turn = (): void => {
    const run = runs.shift();
    if (!run) throw new Error('nothing scheduled');
    run();
  };
  return {
    h,
    delivered,
    runs,
    turn,
    empties: () => empties,
    setOnDeliver: (f: (n: number) => void) => (onDeliver = f),
  };
}

describe('Handoff', () => {
  it('delivers nothing on push, everything in order on a later turn, and reports the queue emptied once', () => {
    const t = harness();
    for (let i = 0; i < 5; i++) t.h.push(i);
    expect(t.delivered).toEqual([]);
    expect(t.h.size).toBe(5);
    expect(t.runs).toHaveLength(1); // one scheduled slice for any number of pushes
    t.turn();
    expect(t.delivered).toEqual([0, 1, 2, 3, 4]);
    expect(t.h.size).toBe(0);
    expect(t.empties()).toBe(1);
    expect(t.runs).toHaveLength(0);
  });

  it('yields after its time slice and goes on in the next turn', () => {
    const t = harness(0); // every check of the clock is past the deadline
    for (let i = 0; i < 300; i++) t.h.push(i);
    t.turn();
    // The clock is checked every 128 deliveries.
    expect(t.delivered).toHaveLength(128);
    expect(t.empties()).toBe(0);
    expect(t.runs).toHaveLength(1);
    t.turn();
    t.turn();
    expect(t.delivered).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(t.empties()).toBe(1);
    expect(t.runs).toHaveLength(0);
  });

  it('flush delivers everything at once, in order; a later turn finds nothing', () => {
    const t = harness();
    for (let i = 0; i < 3; i++) t.h.push(i);
    t.h.flush();
    expect(t.delivered).toEqual([0, 1, 2]);
    expect(t.empties()).toBe(1);
    t.turn();
    expect(t.delivered).toEqual([0, 1, 2]);
    expect(t.empties()).toBe(1);
  });

  it('clear drops what is queued without reporting an empty queue', () => {
    const t = harness();
    t.h.push(1);
    t.h.push(2);
    t.h.clear();
    expect(t.h.size).toBe(0);
    t.turn();
    expect(t.delivered).toEqual([]);
    expect(t.empties()).toBe(0);
  });

  it('a delivery that clears the queue stops the slice; one that flushes keeps the order', () => {
    const a = harness();
    a.setOnDeliver((n) => {
      if (n === 1) a.h.clear();
    });
    for (let i = 0; i < 4; i++) a.h.push(i);
    a.turn();
    expect(a.delivered).toEqual([0, 1]);

    const b = harness();
    b.setOnDeliver((n) => {
      if (n === 1) b.h.flush();
    });
    for (let i = 0; i < 4; i++) b.h.push(i);
    b.turn();
    expect(b.delivered).toEqual([0, 1, 2, 3]);
    expect(b.empties()).toBe(1);
  });

  it('items pushed during a slice are delivered in the same or a later turn, never lost', () => {
    const t = harness(0);
    t.setOnDeliver((n) => {
      if (n < 300) t.h.push(n + 1);
    });
    t.h.push(0);
    let turns = 0;
    while (t.runs.length > 0) {
      t.turn();
      turns += 1;
    }
    expect(t.delivered).toEqual(Array.from({ length: 301 }, (_, i) => i));
    expect(turns).toBe(3); // 128 + 128 + 45
    expect(t.empties()).toBe(1);
  });

  it('a queue that never empties keeps order across many slices', () => {
    const t = harness(0);
    let next = 0;
    // Every turn adds 200 before 128 are delivered: the backlog grows, the queue never empties.
    for (let turn = 0; turn < 200; turn++) {
      for (let i = 0; i < 200; i++) t.h.push(next++);
      t.turn();
    }
    expect(t.empties()).toBe(0);
    while (t.runs.length > 0) t.turn();
    expect(t.delivered).toEqual(Array.from({ length: next }, (_, i) => i));
    expect(t.empties()).toBe(1);
  });
});

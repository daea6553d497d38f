// A seeded PRNG (mulberry32): the nemesis schedule and the load's choices are drawn from it, so
// `--seed S` replays the same schedule. Not for cryptography; 32 bits of state is plenty for
// choosing faults and seats, and it is the same on every platform (integer arithmetic only).
import { strict as assert } from 'node:assert';

export const seed_max = 0xffff_ffff;

export class Prng {
  private state: number;

  constructor(seed: number) {
    assert.ok(Number.isInteger(seed) && seed >= 0 && seed <= seed_max, `seed ${seed} is a u32`);
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number {
    assert.ok(Number.isInteger(lo) && Number.isInteger(hi) && lo <= hi, `int range [${lo}, ${hi}]`);
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    assert.ok(items.length > 0, 'pick from a non-empty list');
    return items[this.int(0, items.length - 1)]!;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A new generator seeded from this one: independent streams (schedule, each user). */
  fork(): Prng {
    return new Prng(this.int(0, seed_max));
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}

/** A fresh seed when none is given (printed, so the run can be replayed). */
export function random_seed(): number {
  return Math.floor(Math.random() * seed_max);
}

// The per-user counts of one event (held seats, sold seats, active holds), packed into one small
// integer per user: a Map entry with an object value cost ~85 B per (event, user) in
// bench/memory_probe.ts (48 B the object, the rest the entry), a Map entry with a small-integer
// value ~35 B. check_seats and check_user_limits read them on every new hold, apply changes them.
import { assert } from '../util/assert.js';
import * as L from './limits.js';

export interface UserCount { held: number; sold: number; active_holds: number }

/** Bits per count: 10 bits hold 0..1023, above max_seats_per_user_max (100) and
 *  holds_per_user_max (10); three counts use 30 bits, a small integer on every V8 build. */
const count_bits = 10;
const count_max = (1 << count_bits) - 1;
assert(L.max_seats_per_user_max <= count_max && L.holds_per_user_max <= count_max,
  'the user counts fit their bits');

const zero: UserCount = Object.freeze({ held: 0, sold: 0, active_holds: 0 });

export class UserCounts {
  private readonly packed = new Map<string, number>();

  get size(): number {
    return this.packed.size;
  }

  /** The counts of `user_id` (a copy), or undefined for a user never seen. */
  get(user_id: string): UserCount | undefined {
    const p = this.packed.get(user_id);
    return p === undefined ? undefined : unpack(p);
  }

  /** The counts of `user_id` (a copy), zero for a user never seen. */
  of(user_id: string): UserCount {
    return this.get(user_id) ?? { ...zero };
  }

  /** Adds the deltas to `user_id`'s counts (creating them at zero). No allocation: restore
   *  calls it once per hold. */
  add(user_id: string, held: number, sold: number, active_holds: number): void {
    const p = this.packed.get(user_id) ?? 0;
    this.packed.set(user_id, pack(
      (p & count_max) + held, ((p >>> count_bits) & count_max) + sold,
      ((p >>> (2 * count_bits)) & count_max) + active_holds,
    ));
  }

  [Symbol.iterator](): IterableIterator<[string, UserCount]> {
    return this.entries();
  }

  *entries(): IterableIterator<[string, UserCount]> {
    for (const [user_id, p] of this.packed) yield [user_id, unpack(p)];
  }
}

function pack(held: number, sold: number, active_holds: number): number {
  assert(in_bits(held) && in_bits(sold) && in_bits(active_holds), 'a user count within its bits');
  return held | (sold << count_bits) | (active_holds << (2 * count_bits));
}

function in_bits(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= count_max;
}

function unpack(p: number): UserCount {
  return {
    held: p & count_max, sold: (p >>> count_bits) & count_max,
    active_holds: (p >>> (2 * count_bits)) & count_max,
  };
}

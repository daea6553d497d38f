// The per-user counts of one event (held seats, sold seats, active holds), packed into one small
// integer per user: a Map entry with an object value cost ~85 B per (event, user) in
// bench/memory_probe.ts (48 B the object, the rest the entry), a Map entry with a small-integer
// value ~35 B. check_seats and check_user_limits read them on every new hold, apply changes them.
import { assert } from '../util/assert.js';
import * as L from './limits.js';
import type { UserCount } from './partition_state.js';

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

  /** Adds the deltas to `user_id`'s counts (creating them at zero). */
  add(user_id: string, held: number, sold: number, active_holds: number): void {
    const c = this.of(user_id);
    const next = { held: c.held + held, sold: c.sold + sold, active_holds: c.active_holds + active_holds };
    this.packed.set(user_id, pack(next));
  }

  [Symbol.iterator](): IterableIterator<[string, UserCount]> {
    return this.entries();
  }

  *entries(): IterableIterator<[string, UserCount]> {
    for (const [user_id, p] of this.packed) yield [user_id, unpack(p)];
  }
}

function pack(c: UserCount): number {
  for (const n of [c.held, c.sold, c.active_holds]) {
    assert(Number.isInteger(n) && n >= 0 && n <= count_max, 'a user count within its bits');
  }
  return c.held | (c.sold << count_bits) | (c.active_holds << (2 * count_bits));
}

function unpack(p: number): UserCount {
  return {
    held: p & count_max, sold: (p >>> count_bits) & count_max,
    active_holds: (p >>> (2 * count_bits)) & count_max,
  };
}

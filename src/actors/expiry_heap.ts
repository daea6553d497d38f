// The active holds by expiry: a binary min-heap in typed arrays (expiry ms, hold slot, slot
// generation: 16 B an entry) instead of an object per entry (~76 B with its boxed key, measured
// with bench/memory_probe.ts). Ties are broken by the hold ids, as the strings sort, so the
// order holds expire in is a function of the holds alone (a restored partition pops them as the
// one that journaled them). A derived index: entries of ended or extended holds go stale and are
// skipped when popped (pop_due_holds); the generation tells a reused slot's entries apart.
import { assert } from '../util/assert.js';
import type { HoldTable } from './hold_table.js';

const entries_initial = 16;

export class ExpiryHeap {
  private keys = new Float64Array(entries_initial);
  private slots = new Int32Array(entries_initial);
  private gens = new Uint32Array(entries_initial);
  private n = 0;

  constructor(private readonly table: HoldTable) {}

  get size(): number {
    return this.n;
  }

  peek_key(): number | null {
    return this.n === 0 ? null : this.keys[0]!;
  }

  /** The slot and generation of the top entry (null when empty). */
  peek(): { key: number; slot: number; gen: number } | null {
    return this.n === 0 ? null : { key: this.keys[0]!, slot: this.slots[0]!, gen: this.gens[0]! };
  }

  push(key: number, slot: number): void {
    assert(Number.isFinite(key), 'an expiry is a time');
    if (this.n === this.keys.length) this.grow(this.n * 2);
    this.put(this.n, key, slot, this.table.gen_of(slot));
    this.n++;
    this.up(this.n - 1);
  }

  pop(): void {
    assert(this.n > 0, 'pop from a non-empty heap');
    this.n--;
    if (this.n === 0) return;
    this.put(0, this.keys[this.n]!, this.slots[this.n]!, this.gens[this.n]!);
    this.down(0);
  }

  /** Replaces the contents with one entry per (key, slot) pair, heapified in O(n) (restore). */
  build(keys: Float64Array, slots: Int32Array): void {
    assert(keys.length === slots.length, 'a key per slot');
    const capacity = Math.max(entries_initial, keys.length);
    this.keys = new Float64Array(capacity);
    this.slots = new Int32Array(capacity);
    this.gens = new Uint32Array(capacity);
    this.keys.set(keys);
    this.slots.set(slots);
    for (let i = 0; i < slots.length; i++) this.gens[i] = this.table.gen_of(slots[i]!);
    this.n = keys.length;
    for (let i = (this.n >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private put(i: number, key: number, slot: number, gen: number): void {
    this.keys[i] = key;
    this.slots[i] = slot;
    this.gens[i] = gen;
  }

  private less(a: number, b: number): boolean {
    const ka = this.keys[a]!;
    const kb = this.keys[b]!;
    if (ka !== kb) return ka < kb;
    return this.table.id_less(this.slots[a]!, this.slots[b]!);
  }

  private swap(a: number, b: number): void {
    const k = this.keys[a]!; const s = this.slots[a]!; const g = this.gens[a]!;
    this.put(a, this.keys[b]!, this.slots[b]!, this.gens[b]!);
    this.put(b, k, s, g);
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.n && this.less(l, m)) m = l;
      if (r < this.n && this.less(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private grow(capacity: number): void {
    const keys = new Float64Array(capacity); keys.set(this.keys); this.keys = keys;
    const slots = new Int32Array(capacity); slots.set(this.slots); this.slots = slots;
    const gens = new Uint32Array(capacity); gens.set(this.gens); this.gens = gens;
  }
}

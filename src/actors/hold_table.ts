// The holds of one partition, one column per field (structure of arrays) instead of one object
// per hold. Measured in bench/memory_probe.ts (100,000 active 1-seat holds): an object per hold
// with its seats array, its id string, its Map entry and its expiry heap entry cost 423-433 B a
// hold; see notes/memory.md for the bytes after. A hold lives in a slot; a slot is reused after
// its hold is forgotten, and `gen` counts the reuses so that a stale reference (an expiry heap
// entry, a HoldView) never reads the slot's next hold.
//
// Ids: the node issues hold ids `hold_<partition>_<22 chars>` (ids.ts). Their 22 chars are
// stored as bytes and found through an open-addressing hash index over the slots: no string and
// no Map entry per hold. Any other id (an older journal's, a test's) is kept as a string in
// `odd_ids`, found through a Map: every id round-trips exactly.
import { assert } from '../util/assert.js';

export type HoldStatus = 'active' | 'released' | 'expired' | 'confirmed';

export interface Hold {
  hold_id: string;
  hold_no: number;
  event_id: string;
  user_id: string;
  seats: number[];
  created_ms: number;
  expires_at_ms: number;
  status: HoldStatus;
  order_id: string;
  ended_ms: number;
  trace_id: string;
  /** ExtendHold calls applied (0 at creation; snapshots from before extensions restore as 0). */
  extensions: number;
}

const statuses: readonly HoldStatus[] = ['active', 'released', 'expired', 'confirmed'];
/** The random part of an issued id: 16 bytes in base64url (ids.ts). */
export const id_chars = 22;
/** Slots of a new table; doubled when full. */
const slots_initial = 16;
/** Index entries: 0 empty, -1 deleted, slot + 1 a hold. */
const index_empty = 0;
const index_deleted = -1;
/** Holds per seat of a hold, at most (the seats of multi-seat holds live in `more_seats`). */
const seat_count_max = 255;

export class HoldTable {
  readonly prefix: string;
  private capacity = 0;
  private used = 0;
  private high = 0;
  private free: number[] = [];
  // Columns, one entry per slot.
  private chars = new Uint8Array(0);
  private readonly odd_ids = new Map<number, string>();
  private readonly odd_index = new Map<string, number>();
  private index = new Int32Array(0);
  private index_deleted_count = 0;
  private event_no = new Int32Array(0);
  private readonly event_ids: string[] = [];
  private readonly event_no_by_id = new Map<string, number>();
  private readonly user_ids: string[] = [];
  private readonly trace_ids: string[] = [];
  private readonly order_ids = new Map<number, string>();
  private hold_no = new Int32Array(0);
  private first_seat = new Int32Array(0);
  private seat_n = new Uint8Array(0);
  private readonly more_seats = new Map<number, readonly number[]>();
  private created = new Float64Array(0);
  private expires = new Float64Array(0);
  private ended = new Float64Array(0);
  private status_code = new Uint8Array(0);
  private ext = new Uint8Array(0);
  private generation = new Uint32Array(0);
  /** 1 while the slot holds a hold. */
  private live = new Uint8Array(0);

  constructor(readonly partition: number) {
    this.prefix = `hold_${partition}_`;
    this.grow(slots_initial);
  }

  get size(): number {
    return this.used;
  }

  has(hold_id: string): boolean {
    return this.slot_of(hold_id) !== -1;
  }

  get(hold_id: string): Hold | undefined {
    const slot = this.slot_of(hold_id);
    return slot === -1 ? undefined : this.view(slot);
  }

  /** The hold in `slot` (live), as a view that checks the slot was not reused on every read. */
  view(slot: number): HoldView {
    assert(this.live[slot] === 1, 'a view of a live slot');
    return new HoldView(this, slot, this.generation[slot]!);
  }

  /** Whether `slot` still holds the hold it held at generation `gen`. */
  is(slot: number, gen: number): boolean {
    return slot >= 0 && slot < this.high && this.live[slot] === 1 && this.generation[slot] === gen;
  }

  gen_of(slot: number): number {
    return this.generation[slot]!;
  }

  *keys(): IterableIterator<string> {
    for (let slot = 0; slot < this.high; slot++) if (this.live[slot] === 1) yield this.id_of(slot);
  }

  /** The live slots, in order. */
  *slots(): IterableIterator<number> {
    for (let slot = 0; slot < this.high; slot++) if (this.live[slot] === 1) yield slot;
  }

  /** Live holds in slot order (not creation order: slots are reused). */
  *values(): IterableIterator<HoldView> {
    for (let slot = 0; slot < this.high; slot++) if (this.live[slot] === 1) yield this.view(slot);
  }

  /** Adds `hold` (its id new); returns its slot. */
  insert(hold: Hold): number {
    assert(this.slot_of(hold.hold_id) === -1, 'a hold id is added once');
    assert(hold.seats.length >= 1 && hold.seats.length <= seat_count_max, 'a hold has seats');
    if (this.free.length === 0 && this.high === this.capacity) this.grow(this.capacity * 2);
    const slot = this.free.length > 0 ? this.free.pop()! : this.high++;
    this.live[slot] = 1;
    this.used++;
    this.generation[slot] = (this.generation[slot]! + 1) >>> 0;
    this.set_id(slot, hold.hold_id);
    let event_no = this.event_no_by_id.get(hold.event_id);
    if (event_no === undefined) {
      event_no = this.event_ids.length;
      this.event_ids.push(hold.event_id);
      this.event_no_by_id.set(hold.event_id, event_no);
    }
    this.event_no[slot] = event_no;
    this.user_ids[slot] = hold.user_id;
    this.trace_ids[slot] = hold.trace_id;
    this.hold_no[slot] = hold.hold_no;
    this.set_seats(slot, hold.seats);
    this.created[slot] = hold.created_ms;
    this.expires[slot] = hold.expires_at_ms;
    this.ended[slot] = hold.ended_ms;
    this.set_status(slot, hold.status);
    this.set_order_id(slot, hold.order_id);
    this.set_extensions(slot, hold.extensions);
    assert(this.slot_of(hold.hold_id) === slot, 'an added hold is found by its id');
    return slot;
  }

  delete(hold_id: string): void {
    const slot = this.slot_of(hold_id);
    assert(slot !== -1, 'a deleted hold exists');
    if (this.odd_ids.has(slot)) {
      this.odd_ids.delete(slot);
      this.odd_index.delete(hold_id);
    } else {
      const at = this.index_position(hold_id);
      assert(at !== -1 && this.index[at] === slot + 1, 'the index names the slot');
      this.index[at] = index_deleted;
      this.index_deleted_count++;
    }
    this.live[slot] = 0;
    this.user_ids[slot] = '';
    this.trace_ids[slot] = '';
    this.order_ids.delete(slot);
    this.more_seats.delete(slot);
    this.used--;
    this.free.push(slot);
  }

  /** The slot of `hold_id`, or -1. */
  slot_of(hold_id: string): number {
    if (!this.canonical(hold_id)) return this.odd_index.get(hold_id) ?? -1;
    const at = this.index_position(hold_id);
    return at === -1 ? -1 : this.index[at]! - 1;
  }

  /** Every live hold as columns, in slot order (snapshot.ts writes them in snapshot version 3). */
  columns(): HoldColumns {
    const n = this.used;
    const c: HoldColumns = {
      count: n, id_chars: new Uint8Array(n * id_chars), odd_ids: [], event_ids: [...this.event_ids],
      event_no: new Int32Array(n), user_ids: [], user_no: new Int32Array(n), trace_ids: new Array<string>(n),
      hold_no: new Int32Array(n), seat_n: new Uint8Array(n), created_ms: new Float64Array(n),
      expires_at_ms: new Float64Array(n), ended_ms: new Float64Array(n), status: new Uint8Array(n),
      extensions: new Uint8Array(n), order_ids: [], seats: new Int32Array(0),
    };
    const user_no = new Map<string, number>();
    const seats: number[] = [];
    let i = 0;
    for (let slot = 0; slot < this.high; slot++) {
      if (this.live[slot] !== 1) continue;
      const odd = this.odd_ids.get(slot);
      if (odd === undefined) {
        // A byte loop, not set(subarray()): a view per hold cost more than the copy.
        for (let k = 0, from = slot * id_chars, to = i * id_chars; k < id_chars; k++) c.id_chars[to + k] = this.chars[from + k]!;
      } else c.odd_ids.push([i, odd]);
      c.event_no[i] = this.event_no[slot]!;
      const user_id = this.user_ids[slot]!;
      let u = user_no.get(user_id);
      if (u === undefined) {
        u = c.user_ids.length;
        c.user_ids.push(user_id);
        user_no.set(user_id, u);
      }
      c.user_no[i] = u;
      c.trace_ids[i] = this.trace_ids[slot]!;
      c.hold_no[i] = this.hold_no[slot]!;
      c.seat_n[i] = this.seat_n[slot]!;
      if (this.seat_n[slot] === 1) seats.push(this.first_seat[slot]!);
      else seats.push(...this.more_seats.get(slot)!);
      c.created_ms[i] = this.created[slot]!;
      c.expires_at_ms[i] = this.expires[slot]!;
      c.ended_ms[i] = this.ended[slot]!;
      c.status[i] = this.status_code[slot]!;
      c.extensions[i] = this.ext[slot]!;
      if (this.status_code[slot] !== 0) {
        const order_id = this.order_ids.get(slot);
        if (order_id !== undefined) c.order_ids.push([i, order_id]);
      }
      i++;
    }
    assert(i === n, 'every live hold written once');
    c.seats = Int32Array.from(seats);
    return c;
  }

  /** Fills an empty table from `c` (hold i in slot i): bulk copies, one index build. */
  restore(c: HoldColumns): void {
    assert(this.used === 0 && this.high === 0, 'restore into an empty table');
    const n = c.count;
    assert(c.id_chars.length === n * id_chars && c.event_no.length === n && c.user_no.length === n
      && c.trace_ids.length === n && c.hold_no.length === n && c.seat_n.length === n
      && c.created_ms.length === n && c.expires_at_ms.length === n && c.ended_ms.length === n
      && c.status.length === n && c.extensions.length === n, 'one entry per hold in every column');
    let capacity = slots_initial;
    while (capacity < n) capacity *= 2;
    if (capacity > this.capacity) this.grow(capacity);
    this.chars.set(c.id_chars);
    for (const [i, id] of c.odd_ids) {
      assert(!this.canonical(id) && i >= 0 && i < n, 'an odd id is not an issued one');
      this.odd_ids.set(i, id);
      this.odd_index.set(id, i);
    }
    for (const event_id of c.event_ids) {
      this.event_no_by_id.set(event_id, this.event_ids.length);
      this.event_ids.push(event_id);
    }
    this.event_no.set(c.event_no);
    this.hold_no.set(c.hold_no);
    this.seat_n.set(c.seat_n);
    this.created.set(c.created_ms);
    this.expires.set(c.expires_at_ms);
    this.ended.set(c.ended_ms);
    this.status_code.set(c.status);
    this.ext.set(c.extensions);
    this.live.fill(1, 0, n);
    this.generation.fill(1, 0, n);
    let seat_at = 0;
    for (let i = 0; i < n; i++) {
      const k = c.seat_n[i]!;
      assert(k >= 1 && c.status[i]! < statuses.length && c.event_no[i]! < c.event_ids.length, 'a hold restored whole');
      this.first_seat[i] = c.seats[seat_at]!;
      if (k > 1) this.more_seats.set(i, Array.from(c.seats.subarray(seat_at, seat_at + k)));
      seat_at += k;
      this.user_ids.push(c.user_ids[c.user_no[i]!]!);
      this.trace_ids.push(c.trace_ids[i]!);
    }
    assert(seat_at === c.seats.length, 'every seat of the holds restored');
    for (const [i, order_id] of c.order_ids) this.set_order_id(i, order_id);
    this.high = n;
    this.used = n;
    this.rebuild_index(this.index.length);
    assert(c.odd_ids.length === this.odd_index.size, 'odd ids distinct');
  }

  // -- field access by slot (HoldView's) --------------------------------------------------------

  id_of(slot: number): string {
    const odd = this.odd_ids.get(slot);
    if (odd !== undefined) return odd;
    const at = slot * id_chars;
    return this.prefix + String.fromCharCode(...this.chars.subarray(at, at + id_chars));
  }

  event_id_of(slot: number): string { return this.event_ids[this.event_no[slot]!]!; }
  user_id_of(slot: number): string { return this.user_ids[slot]!; }
  trace_id_of(slot: number): string { return this.trace_ids[slot]!; }
  hold_no_of(slot: number): number { return this.hold_no[slot]!; }
  created_ms_of(slot: number): number { return this.created[slot]!; }
  expires_at_ms_of(slot: number): number { return this.expires[slot]!; }
  ended_ms_of(slot: number): number { return this.ended[slot]!; }
  status_of(slot: number): HoldStatus { return statuses[this.status_code[slot]!]!; }
  order_id_of(slot: number): string { return this.order_ids.get(slot) ?? ''; }
  extensions_of(slot: number): number { return this.ext[slot]!; }
  seat_count_of(slot: number): number { return this.seat_n[slot]!; }

  seats_of(slot: number): number[] {
    const more = this.more_seats.get(slot);
    return more === undefined ? [this.first_seat[slot]!] : [...more];
  }

  set_status(slot: number, status: HoldStatus): void {
    const code = statuses.indexOf(status);
    assert(code !== -1, `a known hold status (${status})`);
    this.status_code[slot] = code;
  }

  set_order_id(slot: number, order_id: string): void {
    assert(typeof order_id === 'string', 'an order id is a string');
    if (order_id === '') this.order_ids.delete(slot);
    else this.order_ids.set(slot, order_id);
  }

  set_expires_at_ms(slot: number, ms: number): void { this.expires[slot] = ms; }
  set_ended_ms(slot: number, ms: number): void { this.ended[slot] = ms; }

  set_extensions(slot: number, extensions: number): void {
    assert(Number.isInteger(extensions) && extensions >= 0 && extensions <= 255, 'extensions fit a byte');
    this.ext[slot] = extensions;
  }

  /** Whether the id of slot `a` sorts before the id of slot `b` (as the strings do). */
  id_less(a: number, b: number): boolean {
    if (this.odd_ids.has(a) || this.odd_ids.has(b)) return this.id_of(a) < this.id_of(b);
    const c = this.chars;
    for (let i = 0, x = a * id_chars, y = b * id_chars; i < id_chars; i++, x++, y++) {
      if (c[x] !== c[y]) return c[x]! < c[y]!;
    }
    return false;
  }

  // -- internals ---------------------------------------------------------------------------------

  private canonical(hold_id: string): boolean {
    if (hold_id.length !== this.prefix.length + id_chars || !hold_id.startsWith(this.prefix)) return false;
    for (let i = this.prefix.length; i < hold_id.length; i++) if (hold_id.charCodeAt(i) >= 128) return false;
    return true;
  }

  private set_id(slot: number, hold_id: string): void {
    if (!this.canonical(hold_id)) {
      this.odd_ids.set(slot, hold_id);
      this.odd_index.set(hold_id, slot);
      return;
    }
    const p = this.prefix.length;
    for (let i = 0; i < id_chars; i++) this.chars[slot * id_chars + i] = hold_id.charCodeAt(p + i);
    this.index_add(slot, hash(hold_id, p));
  }

  private set_seats(slot: number, seats: readonly number[]): void {
    this.first_seat[slot] = seats[0]!;
    this.seat_n[slot] = seats.length;
    if (seats.length > 1) this.more_seats.set(slot, [...seats]);
  }

  private index_add(slot: number, h: number): void {
    // Rebuilt at half full (deleted entries counted): probes stay short.
    if ((this.used + this.index_deleted_count) * 2 > this.index.length) {
      this.rebuild_index(this.index.length * 2, slot);
    }
    const mask = this.index.length - 1;
    let at = h & mask;
    while (this.index[at]! > index_empty) at = (at + 1) & mask;
    if (this.index[at] === index_deleted) this.index_deleted_count--;
    this.index[at] = slot + 1;
  }

  /** The index position of canonical `hold_id`, or -1. */
  private index_position(hold_id: string): number {
    const p = this.prefix.length;
    const mask = this.index.length - 1;
    for (let at = hash(hold_id, p) & mask; ; at = (at + 1) & mask) {
      const entry = this.index[at]!;
      if (entry === index_empty) return -1;
      if (entry !== index_deleted && this.chars_equal(entry - 1, hold_id, p)) return at;
    }
  }

  private chars_equal(slot: number, hold_id: string, p: number): boolean {
    const base = slot * id_chars;
    for (let i = 0; i < id_chars; i++) if (this.chars[base + i] !== hold_id.charCodeAt(p + i)) return false;
    return true;
  }

  /** A new index of `length` entries over the live slots, `skip` (the slot being added) not. */
  private rebuild_index(length: number, skip = -1): void {
    assert((length & (length - 1)) === 0 && length >= 2 * this.used, 'an index of a power of two, half free');
    this.index = new Int32Array(length);
    this.index_deleted_count = 0;
    const mask = length - 1;
    for (let slot = 0; slot < this.high; slot++) {
      if (this.live[slot] !== 1 || slot === skip || this.odd_ids.has(slot)) continue;
      let at = hash_chars(this.chars, slot * id_chars) & mask;
      while (this.index[at] !== index_empty) at = (at + 1) & mask;
      this.index[at] = slot + 1;
    }
  }

  private grow(capacity: number): void {
    assert(capacity > this.capacity, 'the table grows');
    const typed = <T extends Uint8Array | Int32Array | Uint32Array | Float64Array>(old: T, make: new (n: number) => T, per = 1): T => {
      const next = new make(capacity * per);
      next.set(old);
      return next;
    };
    this.chars = typed(this.chars, Uint8Array, id_chars);
    this.event_no = typed(this.event_no, Int32Array);
    this.hold_no = typed(this.hold_no, Int32Array);
    this.first_seat = typed(this.first_seat, Int32Array);
    this.seat_n = typed(this.seat_n, Uint8Array);
    this.created = typed(this.created, Float64Array);
    this.expires = typed(this.expires, Float64Array);
    this.ended = typed(this.ended, Float64Array);
    this.status_code = typed(this.status_code, Uint8Array);
    this.ext = typed(this.ext, Uint8Array);
    this.generation = typed(this.generation, Uint32Array);
    this.live = typed(this.live, Uint8Array);
    this.capacity = capacity;
    if (this.index.length < 2 * capacity) this.rebuild_index(2 * capacity);
  }
}

/** The holds of a table as columns (snapshot version 3): hold i is entry i of each. */
export interface HoldColumns {
  count: number;
  /** id_chars per hold: the random part of an issued id (zeros for an odd id). */
  id_chars: Uint8Array;
  /** [hold, id] of each hold whose id is not an issued one of the partition. */
  odd_ids: [number, string][];
  event_ids: string[];
  event_no: Int32Array;
  /** Each user once; user_no names a hold's. */
  user_ids: string[];
  user_no: Int32Array;
  trace_ids: string[];
  hold_no: Int32Array;
  seat_n: Uint8Array;
  /** The seats of every hold, hold after hold (seat_n each). */
  seats: Int32Array;
  created_ms: Float64Array;
  expires_at_ms: Float64Array;
  ended_ms: Float64Array;
  /** Index into ['active', 'released', 'expired', 'confirmed']. */
  status: Uint8Array;
  extensions: Uint8Array;
  /** [hold, order id] of each confirmed hold. */
  order_ids: [number, string][];
}

/** The status a HoldColumns status code names. */
export function status_of_code(code: number): HoldStatus {
  const status = statuses[code];
  assert(status !== undefined, 'a known hold status code');
  return status;
}

/** FNV-1a over the 22 id chars of `hold_id` from `p`. */
function hash(hold_id: string, p: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id_chars; i++) h = Math.imul(h ^ hold_id.charCodeAt(p + i), 0x01000193);
  return h >>> 0;
}

function hash_chars(chars: Uint8Array, base: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id_chars; i++) h = Math.imul(h ^ chars[base + i]!, 0x01000193);
  return h >>> 0;
}

/** One hold of a HoldTable, read and written through to its slot. Short-lived: made by
 *  HoldTable.get/values, and refusing every access once its slot holds another hold. */
export class HoldView implements Hold {
  constructor(private readonly table: HoldTable, readonly slot: number, readonly gen: number) {}

  private at(): number {
    assert(this.table.is(this.slot, this.gen), 'a hold view outlived its hold');
    return this.slot;
  }

  get hold_id(): string { return this.table.id_of(this.at()); }
  get hold_no(): number { return this.table.hold_no_of(this.at()); }
  get event_id(): string { return this.table.event_id_of(this.at()); }
  get user_id(): string { return this.table.user_id_of(this.at()); }
  get seats(): number[] { return this.table.seats_of(this.at()); }
  get seat_count(): number { return this.table.seat_count_of(this.at()); }
  get created_ms(): number { return this.table.created_ms_of(this.at()); }
  get trace_id(): string { return this.table.trace_id_of(this.at()); }
  get expires_at_ms(): number { return this.table.expires_at_ms_of(this.at()); }
  set expires_at_ms(ms: number) { this.table.set_expires_at_ms(this.at(), ms); }
  get status(): HoldStatus { return this.table.status_of(this.at()); }
  set status(status: HoldStatus) { this.table.set_status(this.at(), status); }
  get order_id(): string { return this.table.order_id_of(this.at()); }
  set order_id(order_id: string) { this.table.set_order_id(this.at(), order_id); }
  get ended_ms(): number { return this.table.ended_ms_of(this.at()); }
  set ended_ms(ms: number) { this.table.set_ended_ms(this.at(), ms); }
  get extensions(): number { return this.table.extensions_of(this.at()); }
  set extensions(n: number) { this.table.set_extensions(this.at(), n); }

  /** The hold as a plain object (JSON, comparisons in tests). */
  toJSON(): Hold {
    return {
      hold_id: this.hold_id, hold_no: this.hold_no, event_id: this.event_id, user_id: this.user_id,
      seats: this.seats, created_ms: this.created_ms, expires_at_ms: this.expires_at_ms,
      status: this.status, order_id: this.order_id, ended_ms: this.ended_ms,
      trace_id: this.trace_id, extensions: this.extensions,
    };
  }
}

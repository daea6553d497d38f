// The free-run index of an event: what best available (selection.ts) searches instead of the
// seats themselves, and the free places of each standing area for general admission. Derived
// (not journaled, not in snapshots): set_seat calls runs_on_change for every change and
// derive_indices calls runs_rebuild, so no apply path can change a seat without it noticing.
//
// Per row: the free seats, the free accessible seats, and two masks over block sizes
// t = 1..seats_per_hold_max: bit t of block_mask says the row has t adjacent free seats that are
// not accessible; bit t of clean_mask says such a block exists that strands no seat (an orphan:
// a free seat with a free neighbour before the hold and none after it). A best-available call
// then tests one mask per row instead of scanning seats: O(rows), not O(seats).
//
// A seat change marks its row dirty (O(log rows) to find it, O(1) to mark); the next search
// rescans each dirty row once (a row is at most seats_per_row_max seats). So a hold of 10 seats
// in one row costs one rescan, not ten, and a hold's apply stays O(seats of the hold).
//
// An area's free places are a stack of place indices plus each place's position in it: taking
// or returning a place is O(1), and the places a GA hold takes are the top of the stack.
import { assert } from '../util/assert.js';
import type { EventSpec } from './event_spec.js';
import { seats_per_hold_max } from './limits.js';
import { SEAT_FREE, type EventState, type FreeRuns } from './partition_state.js';
import type { SeatMap } from './seat_map.js';

// The masks hold bits 1..seats_per_hold_max in 16 bits.
assert(seats_per_hold_max < 16, 'block sizes fit the masks');

/** An empty index for `map`; runs_rebuild fills it from the seat arrays. */
export function create_runs(spec: EventSpec, map: SeatMap): FreeRuns {
  const rows = map.rows.length;
  let accessible: Uint8Array | null = null;
  spec.sections.forEach((s, si) => s.rows.forEach((r, ri) => {
    if (r.accessible_seats === undefined) return;
    accessible ??= new Uint8Array(map.seat_count);
    const offset = map.sections[si]!.rows[ri]!.offset;
    for (const n of r.accessible_seats) accessible[offset + n - 1] = 1;
  }));
  return {
    free: new Uint16Array(rows), free_accessible: new Uint16Array(rows),
    block_mask: new Uint16Array(rows), clean_mask: new Uint16Array(rows),
    dirty: new Uint8Array(rows), dirty_rows: [], accessible, ranked_rows: rank_rows(spec, map),
    areas: map.areas.map((a) => ({
      stack: new Int32Array(a.capacity), top: 0, pos: new Int32Array(a.capacity).fill(-1),
    })),
  };
}

function rank_rows(spec: EventSpec, map: SeatMap): Int32Array {
  const keys: { row: number; key: number[] }[] = [];
  let row = 0;
  spec.sections.forEach((s, si) => s.rows.forEach((r, ri) => {
    keys.push({ row, key: [s.priority ?? 0, si, r.priority ?? 0, ri] });
    row++;
  }));
  assert(row === map.rows.length, 'one rank per row');
  keys.sort((a, b) => {
    for (let i = 0; i < 4; i++) if (a.key[i] !== b.key[i]) return a.key[i]! - b.key[i]!;
    return 0;
  });
  return Int32Array.from(keys, (k) => k.row);
}

/** Called by set_seat after seat or place `index` changed. */
export function runs_on_change(event: EventState, index: number): void {
  const { map, runs } = event;
  if (index < map.seat_count) {
    const row = map.row_number_of(index);
    if (runs.dirty[row] === 0) {
      runs.dirty[row] = 1;
      runs.dirty_rows.push(row);
    }
    return;
  }
  const area = map.area_of_index(index);
  const free = runs.areas[map.areas.indexOf(area)]!;
  const k = index - area.offset;
  const at = free.pos[k]!;
  if (event.seat_state[index] === SEAT_FREE && at === -1) {
    free.stack[free.top] = index;
    free.pos[k] = free.top;
    free.top++;
  } else if (event.seat_state[index] !== SEAT_FREE && at !== -1) {
    // Swap with the top, then pop: O(1).
    free.top--;
    const moved = free.stack[free.top]!;
    free.stack[at] = moved;
    free.pos[moved - area.offset] = at;
    free.pos[k] = -1;
  }
}

/** Rebuilds the whole index from the seat arrays (event creation, snapshot restore). */
export function runs_rebuild(event: EventState): void {
  const { map, runs } = event;
  runs.dirty_rows.length = 0;
  runs.dirty.fill(0);
  for (let row = 0; row < map.rows.length; row++) rescan_row(event, row);
  map.areas.forEach((area, a) => {
    const free = runs.areas[a]!;
    free.top = 0;
    free.pos.fill(-1);
    // Pushed from the last place down, so the top of the stack is the area's first place.
    for (let k = area.capacity - 1; k >= 0; k--) {
      if (event.seat_state[area.offset + k] !== SEAT_FREE) continue;
      free.stack[free.top] = area.offset + k;
      free.pos[k] = free.top;
      free.top++;
    }
  });
}

/** Brings dirty rows up to date. A derived index only: searching may call it from a decide
 *  function, which changes no journaled state (like the expiry heap's stale entries). */
export function runs_flush(event: EventState): void {
  const runs = event.runs;
  for (const row of runs.dirty_rows) {
    rescan_row(event, row);
    runs.dirty[row] = 0;
  }
  runs.dirty_rows.length = 0;
}

function rescan_row(event: EventState, row_number: number): void {
  const row = event.map.rows[row_number]!;
  const acc = event.runs.accessible;
  const state = event.seat_state;
  const end = row.offset + row.seats;
  let free = 0;
  let free_accessible = 0;
  let block_mask = 0;
  let clean_mask = 0;
  let i = row.offset;
  while (i < end) {
    if (state[i] !== SEAT_FREE) {
      i++;
      continue;
    }
    // A maximal free run [run_start, run_end), accessible seats included.
    const run_start = i;
    while (i < end && state[i] === SEAT_FREE) i++;
    const run_end = i;
    free += run_end - run_start;
    for (let p = run_start; p < run_end;) {
      if (acc !== null && acc[p] === 1) {
        free_accessible++;
        p++;
        continue;
      }
      const plain_start = p;
      while (p < run_end && (acc === null || acc[p] === 0)) p++;
      const masks = block_masks(run_start, run_end, plain_start, p);
      block_mask |= masks.block;
      clean_mask |= masks.clean;
    }
  }
  const runs = event.runs;
  runs.free[row_number] = free;
  runs.free_accessible[row_number] = free_accessible;
  runs.block_mask[row_number] = block_mask;
  runs.clean_mask[row_number] = clean_mask;
}

/** The masks of one stretch [l, r) of free plain seats inside the free run [run_l, run_r). */
function block_masks(
  run_l: number, run_r: number, l: number, r: number,
): { block: number; clean: number } {
  let block = 0;
  let clean = 0;
  for (let t = 1; t <= seats_per_hold_max && t <= r - l; t++) {
    block |= 1 << t;
    // Only two starts strand a seat (run_l + 1 and run_r - t - 1), so of any three
    // consecutive starts one is clean.
    for (let s = l; s <= r - t && s <= l + 2; s++) {
      if (strands_none(run_l, run_r, s, t)) {
        clean |= 1 << t;
        break;
      }
    }
  }
  return { block, clean };
}

/** Whether taking [s, s + t) out of the free run [run_l, run_r) leaves no single seat. */
export function strands_none(run_l: number, run_r: number, s: number, t: number): boolean {
  assert(s >= run_l && s + t <= run_r, 'the block lies within the run');
  return s - run_l !== 1 && run_r - (s + t) !== 1;
}

/** Free places of area number `a` (of map.areas). */
export function area_free_count(event: EventState, a: number): number {
  return event.runs.areas[a]!.top;
}

/** Checks the index against a rebuild from the seat arrays (tests, recovery's check). */
export function check_runs(event: EventState): void {
  runs_flush(event);
  const fresh = { ...event, runs: create_runs(event.spec, event.map) };
  runs_rebuild(fresh);
  const a = event.runs;
  const b = fresh.runs;
  for (let row = 0; row < event.map.rows.length; row++) {
    assert(a.free[row] === b.free[row] && a.free_accessible[row] === b.free_accessible[row]
      && a.block_mask[row] === b.block_mask[row] && a.clean_mask[row] === b.clean_mask[row],
    `free-run index of row ${row} agrees with the seats`);
  }
  event.map.areas.forEach((area, n) => {
    const free = a.areas[n]!;
    assert(free.top === b.areas[n]!.top, `area ${area.name}: free places counted`);
    for (let at = 0; at < free.top; at++) {
      const place = free.stack[at]!;
      assert(event.seat_state[place] === SEAT_FREE && free.pos[place - area.offset] === at,
        `area ${area.name}: the free stack holds free places at their positions`);
    }
  });
}

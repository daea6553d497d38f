// Best available and general admission: holds whose seats the partition chooses. Each decide
// function produces an ordinary hold_created record through inventory.ts's rules (plan_seats:
// ttl, seats_per_hold_max, max_seats_per_user, holds_per_user_max, every seat free), so release,
// confirm, expiry, events and snapshots treat the hold like any other. Imports inventory.ts,
// never the reverse. Searches the free-run index (free_runs.ts), not the seats.
//
// The rules of best available:
// - Candidates are the free seats of rows whose tier is in `tiers` and whose section is in
//   `sections` (empty: every tier / section). Exactly `accessible_quantity` of the chosen seats
//   are accessible and the others are not: accessible seats go only to a request asking for them.
// - Rank: sections by (priority, listed order), then rows by (priority, listed order); by default
//   the rows rank as listed (an event file lists the lower rows first).
// - Choice, first that exists: (a) `quantity` adjacent seats in one row that strand no seat, in
//   the best row that has such a block, the block nearest the row's centre (ties: the lower
//   seat number); (b) adjacent seats that strand one, in the best row that has a block, nearest
//   the centre; (c) not adjacent: blocks in rank order, one per free run, choosing a combination
//   that strands no seat when one exists (the earliest in rank order), else seats in rank order.
// - A stranded seat (an orphan) is a free seat that has a free neighbour in its row before the
//   hold and none after it; a row's ends count as taken.
// - All or nothing: too few eligible seats is SeatsUnavailableError, and nothing is held.
import type { DecideContext, Decision } from '../runtime/behaviour.js';
import { assert } from '../util/assert.js';
import { InvalidArgumentError, SeatsUnavailableError } from './errors.js';
import { validate_event_id } from './event_spec.js';
import { area_free_count, runs_flush, strands_none } from './free_runs.js';
import {
  check_user_limits, event_of, hold_created_event, hold_ttl_of, plan_seats,
  seats_per_hold_exceeded, validate_user_id, type PartitionRecord, type ReserveReply,
} from './inventory.js';
import * as L from './limits.js';
import { SEAT_FREE, type EventState, type PartitionState } from './partition_state.js';

export interface ReserveBestRequest {
  event_id: string; user_id: string; quantity: number; tiers: string[]; sections: string[];
  accessible_quantity: number; hold_ttl_seconds: number; trace_id: string;
}
export interface ReserveBestReply { hold_id: string; expires_at_ms: number; seat_ids: string[] }
export interface ReserveGaRequest {
  event_id: string; area: string; quantity: number; user_id: string; hold_ttl_seconds: number;
  trace_id: string;
}
export type ReserveGaReply = ReserveReply;

/** What best available looks for: `quantity` seats, `accessible` of them accessible, in rows
 *  for which `row_ok` (a row number of map.rows) holds. */
export interface BestWant { quantity: number; accessible: number; row_ok: (row: number) => boolean }

/** quantity 1..seats_per_hold_max, with ReserveTickets' refusals for a bad count. */
function validate_quantity(quantity: unknown): number {
  if (typeof quantity !== 'number' || !Number.isSafeInteger(quantity) || quantity < 1) {
    throw new InvalidArgumentError(
      `quantity must be 1..${L.seats_per_hold_max}, got ${String(quantity).slice(0, 24)}`);
  }
  if (quantity > L.seats_per_hold_max) throw seats_per_hold_exceeded(quantity);
  return quantity;
}

function names(raw: unknown, field: string, max: number): string[] {
  if (!Array.isArray(raw) || raw.length > max) throw new InvalidArgumentError(`${field} must list at most ${max} names`);
  for (const name of raw) {
    if (typeof name !== 'string' || name.length === 0 || name.length > L.section_name_length_max
      || !/^[A-Za-z0-9_]+$/.test(name)) {
      throw new InvalidArgumentError(`${field} must be names of letters, digits and _`);
    }
  }
  return raw as string[];
}

/** The rows a request may take seats from; InvalidArgumentError for an unknown tier or section. */
function row_filter(event: EventState, req: ReserveBestRequest): (row: number) => boolean {
  const tiers = names(req.tiers, 'tiers', L.price_tiers_per_event_max);
  const sections = names(req.sections, 'sections', L.sections_per_event_max);
  for (const tier of tiers) {
    if (!Object.hasOwn(event.spec.price_tiers, tier)) {
      throw new InvalidArgumentError(`event ${event.spec.event_id} has no price tier ${tier}`);
    }
  }
  const map = event.map;
  const section_ok = new Uint8Array(map.sections.length).fill(sections.length === 0 ? 1 : 0);
  for (const name of sections) {
    const section = map.section(name);
    if (section === undefined) {
      const hint = map.area(name) !== undefined ? ' (a standing area: use ReserveGeneralAdmission)' : '';
      throw new InvalidArgumentError(`event ${event.spec.event_id} has no section ${name}${hint}`);
    }
    section_ok[map.sections.indexOf(section)] = 1;
  }
  const tier_set = new Set(tiers);
  return (row: number): boolean => {
    const layout = map.rows[row]!;
    return section_ok[layout.section] === 1 && (tier_set.size === 0 || tier_set.has(layout.tier));
  };
}

export function decide_reserve_best(
  state: PartitionState, req: ReserveBestRequest, ctx: DecideContext,
): Decision<PartitionRecord, ReserveBestReply> {
  assert(ctx.partition === state.partition, 'request routed to its partition');
  validate_event_id(req.event_id);
  const event = event_of(state, req.event_id);
  const user_id = validate_user_id(req.user_id);
  const quantity = validate_quantity(req.quantity);
  const accessible = req.accessible_quantity;
  if (!Number.isSafeInteger(accessible) || accessible < 0 || accessible > quantity) {
    throw new InvalidArgumentError(`accessible_quantity must be 0..quantity (${quantity}), got ${accessible}`);
  }
  const row_ok = row_filter(event, req);
  const ttl_s = hold_ttl_of(req.hold_ttl_seconds);
  check_user_limits(event, user_id, quantity);
  const seats = choose_best(event, { quantity, accessible, row_ok });
  if (seats === null) {
    const kind = accessible > 0 ? ` (${accessible} of them accessible)` : '';
    throw new SeatsUnavailableError(`not enough free seats for ${quantity}${kind} `
      + `in the tiers and sections asked for on event ${req.event_id}`);
  }
  const planned = plan_seats(state, event, { user_id, seats, ttl_s, trace_id: req.trace_id }, ctx);
  const r = planned.record;
  const seat_ids = r.seats.map((s) => event.map.id_of(s));
  return {
    records: [r], reply: { hold_id: r.hold_id, expires_at_ms: r.expires_at_ms, seat_ids },
    outbox: [hold_created_event(planned)],
  };
}

export function decide_reserve_ga(
  state: PartitionState, req: ReserveGaRequest, ctx: DecideContext,
): Decision<PartitionRecord, ReserveGaReply> {
  assert(ctx.partition === state.partition, 'request routed to its partition');
  validate_event_id(req.event_id);
  const event = event_of(state, req.event_id);
  const user_id = validate_user_id(req.user_id);
  if (typeof req.area !== 'string' || req.area.length === 0) throw new InvalidArgumentError('area is required');
  const area = event.map.area(req.area);
  if (area === undefined) {
    const hint = event.map.section(req.area) !== undefined ? ' (a seated section: name its seats)' : '';
    throw new InvalidArgumentError(`event ${req.event_id} has no standing area ${req.area.slice(0, L.section_name_length_max)}${hint}`);
  }
  const quantity = validate_quantity(req.quantity);
  const ttl_s = hold_ttl_of(req.hold_ttl_seconds);
  check_user_limits(event, user_id, quantity);
  const a = event.map.areas.indexOf(area);
  const left = area_free_count(event, a);
  if (left < quantity) {
    throw new SeatsUnavailableError(`area ${area.name} has ${left} places left; ${quantity} were requested`);
  }
  const free = event.runs.areas[a]!;
  const seats = Array.from(free.stack.subarray(left - quantity, left)).sort((x, y) => x - y);
  const planned = plan_seats(state, event, { user_id, seats, ttl_s, trace_id: req.trace_id }, ctx);
  const r = planned.record;
  return {
    records: [r], reply: { hold_id: r.hold_id, expires_at_ms: r.expires_at_ms },
    outbox: [hold_created_event(planned)],
  };
}

/** The seats best available chooses (ascending indices), or null when too few are eligible.
 *  Exported for the oracle test. */
export function choose_best(event: EventState, want: BestWant): number[] | null {
  assert(want.quantity >= 1 && want.quantity <= L.seats_per_hold_max, 'quantity checked');
  assert(want.accessible >= 0 && want.accessible <= want.quantity, 'accessible_quantity checked');
  runs_flush(event);
  if (!enough_seats(event, want)) return null;
  const adjacent = choose_adjacent(event, want);
  const seats = adjacent ?? choose_clean_scattered(event, want) ?? choose_in_rank(event, want);
  assert(seats.length === want.quantity, 'all or nothing');
  return seats.sort((x, y) => x - y);
}

function enough_seats(event: EventState, want: BestWant): boolean {
  const runs = event.runs;
  let plain = 0;
  let accessible = 0;
  for (const row of runs.ranked_rows) {
    if (!want.row_ok(row)) continue;
    plain += runs.free[row]! - runs.free_accessible[row]!;
    accessible += runs.free_accessible[row]!;
    if (plain >= want.quantity - want.accessible && accessible >= want.accessible) return true;
  }
  return false;
}

/** Rule (a), else (b): a block of adjacent seats in the best row, or null when no row has one.
 *  For a request without accessible seats the masks decide a row in O(1); otherwise rows with
 *  enough free seats are scanned. */
function choose_adjacent(event: EventState, want: BestWant): number[] | null {
  const runs = event.runs;
  const bit = 1 << want.quantity;
  let stranding: { row: number; start: number } | null = null;
  for (const row of runs.ranked_rows) {
    if (!want.row_ok(row)) continue;
    if (want.accessible === 0) {
      if ((runs.block_mask[row]! & bit) === 0) continue;
      if ((runs.clean_mask[row]! & bit) === 0) {
        stranding ??= { row, start: -1 };
        continue;
      }
    } else if (runs.free[row]! < want.quantity || runs.free_accessible[row]! < want.accessible) {
      continue;
    }
    const found = row_blocks(event, row, want);
    if (found.clean !== -1) return block(found.clean, want.quantity);
    if (found.any !== -1) stranding ??= { row, start: found.any };
  }
  if (stranding === null) return null;
  const start = stranding.start !== -1 ? stranding.start : row_blocks(event, stranding.row, want).any;
  assert(start !== -1, 'the index promised a block in this row');
  return block(start, want.quantity);
}

function block(start: number, quantity: number): number[] {
  return Array.from({ length: quantity }, (_, i) => start + i);
}

/** The blocks of `row` nearest its centre: one stranding no seat (clean), and any. -1: none. */
function row_blocks(event: EventState, row_number: number, want: BestWant): { clean: number; any: number } {
  const row = event.map.rows[row_number]!;
  const state = event.seat_state;
  const acc = event.runs.accessible;
  const q = want.quantity;
  const end = row.offset + row.seats;
  let clean = -1;
  let clean_distance = Infinity;
  let any = -1;
  let any_distance = Infinity;
  for (let i = row.offset; i < end;) {
    if (state[i] !== SEAT_FREE) {
      i++;
      continue;
    }
    const run_l = i;
    while (i < end && state[i] === SEAT_FREE) i++;
    const run_r = i;
    // Accessible seats in the window [s, s + q), slid along the run.
    let window_accessible = 0;
    for (let s = run_l; s + q <= run_r; s++) {
      if (s === run_l) for (let k = s; k < s + q; k++) window_accessible += acc?.[k] ?? 0;
      else window_accessible += (acc?.[s + q - 1] ?? 0) - (acc?.[s - 1] ?? 0);
      if (window_accessible !== want.accessible) continue;
      // Twice the distance of the block's centre from the row's: integers, no rounding.
      const distance = Math.abs(2 * (s - row.offset) + q - row.seats);
      if (distance < any_distance) {
        any = s;
        any_distance = distance;
      }
      if (distance < clean_distance && strands_none(run_l, run_r, s, q)) {
        clean = s;
        clean_distance = distance;
      }
    }
  }
  return { clean, any };
}

/** A choice option of rule (c): `count` seats from `start` in one free run. */
interface Piece { start: number; count: number; plain: number; accessible: number }

/** Rule (c) without orphans: one block per free run, runs in rank order, the earliest
 *  combination that strands no seat (a knapsack over (plain, accessible) counts: at most
 *  (seats_per_hold_max + 1)^2 states). Null when no such combination exists. */
function choose_clean_scattered(event: EventState, want: BestWant): number[] | null {
  const plain_target = want.quantity - want.accessible;
  const width = want.accessible + 1;
  const target = plain_target * width + want.accessible;
  // For each reached state: the piece that reached it first and the state before it.
  const via: (Piece | null)[] = new Array((plain_target + 1) * width).fill(null);
  const from = new Int32Array(via.length).fill(-1);
  const reached = new Uint8Array(via.length);
  reached[0] = 1;
  for (const row of event.runs.ranked_rows) {
    if (!want.row_ok(row) || event.runs.free[row] === 0) continue;
    for (const pieces of clean_pieces_by_run(event, row, want)) {
      const before = reached.slice();
      for (let state = 0; state < via.length; state++) {
        if (before[state] === 0) continue;
        const p = Math.floor(state / width);
        const a = state % width;
        for (const piece of pieces) {
          if (p + piece.plain > plain_target || a + piece.accessible > want.accessible) continue;
          const next = (p + piece.plain) * width + a + piece.accessible;
          if (reached[next] === 1) continue;
          reached[next] = 1;
          via[next] = piece;
          from[next] = state;
        }
      }
      if (reached[target] === 1) return walk_back(via, from, target);
    }
  }
  return null;
}

function walk_back(via: (Piece | null)[], from: Int32Array, target: number): number[] {
  const seats: number[] = [];
  for (let state = target; state !== 0; state = from[state]!) {
    const piece = via[state]!;
    for (let k = 0; k < piece.count; k++) seats.push(piece.start + k);
  }
  return seats;
}

/** Per free run of `row`: the blocks of at most `quantity` seats that strand no seat, one per
 *  (plain, accessible) count. */
function clean_pieces_by_run(event: EventState, row_number: number, want: BestWant): Piece[][] {
  const row = event.map.rows[row_number]!;
  const state = event.seat_state;
  const acc = event.runs.accessible;
  const end = row.offset + row.seats;
  const by_run: Piece[][] = [];
  for (let i = row.offset; i < end;) {
    if (state[i] !== SEAT_FREE) {
      i++;
      continue;
    }
    const run_l = i;
    while (i < end && state[i] === SEAT_FREE) i++;
    const run_r = i;
    const seen = new Set<number>();
    const pieces: Piece[] = [];
    for (let s = run_l; s < run_r; s++) {
      let accessible = 0;
      for (let count = 1; count <= want.quantity && s + count <= run_r; count++) {
        accessible += acc?.[s + count - 1] ?? 0;
        const plain = count - accessible;
        if (accessible > want.accessible || plain > want.quantity - want.accessible) break;
        const key = plain * (L.seats_per_hold_max + 1) + accessible;
        if (seen.has(key) || !strands_none(run_l, run_r, s, count)) continue;
        seen.add(key);
        pieces.push({ start: s, count, plain, accessible });
      }
    }
    if (pieces.length > 0) by_run.push(pieces);
  }
  return by_run;
}

/** Rule (c)'s last resort: the eligible seats in rank order (row by row, seat by seat). */
function choose_in_rank(event: EventState, want: BestWant): number[] {
  const acc = event.runs.accessible;
  let plain_left = want.quantity - want.accessible;
  let accessible_left = want.accessible;
  const seats: number[] = [];
  for (const row_number of event.runs.ranked_rows) {
    if (!want.row_ok(row_number)) continue;
    const row = event.map.rows[row_number]!;
    for (let s = row.offset; s < row.offset + row.seats; s++) {
      if (event.seat_state[s] !== SEAT_FREE) continue;
      if ((acc?.[s] ?? 0) === 1) {
        if (accessible_left === 0) continue;
        accessible_left--;
      } else {
        if (plain_left === 0) continue;
        plain_left--;
      }
      seats.push(s);
      if (plain_left === 0 && accessible_left === 0) return seats;
    }
  }
  assert(false, 'enough_seats counted these seats');
}

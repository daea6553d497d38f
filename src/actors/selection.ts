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
//   that strands no seat when one exists (the earliest in rank order, searched over the first
//   best_available_scattered_runs_max free runs), else seats in rank order.
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
import { queue_gate } from './queue_gate.js';

export interface ReserveBestRequest {
  event_id: string; user_id: string; quantity: number; tiers: string[]; sections: string[];
  accessible_quantity: number; hold_ttl_seconds: number; trace_id: string;
  /** The waiting room's `admission-token` ('' / absent: none) and whether a service asks. */
  admission_token?: string; by_service?: boolean;
}
export interface ReserveBestReply { hold_id: string; expires_at_ms: number; seat_ids: string[] }
export interface ReserveGaRequest {
  event_id: string; area: string; quantity: number; user_id: string; hold_ttl_seconds: number;
  trace_id: string;
  /** The waiting room's `admission-token` ('' / absent: none) and whether a service asks. */
  admission_token?: string; by_service?: boolean;
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
  if (!Array.isArray(raw) || raw.length > max) {
    throw new InvalidArgumentError(`${field} must list at most ${max} names`);
  }
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
      const hint = map.area(name) !== undefined
        ? ' (a standing area: use ReserveGeneralAdmission)' : '';
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
    throw new InvalidArgumentError(
      `accessible_quantity must be 0..quantity (${quantity}), got ${accessible}`);
  }
  const row_ok = row_filter(event, req);
  const ttl_s = hold_ttl_of(req.hold_ttl_seconds);
  const admitted = queue_gate(state.queues, req, ctx.now_ms);
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
    records: [...admitted, r], reply: { hold_id: r.hold_id, expires_at_ms: r.expires_at_ms, seat_ids },
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
  if (typeof req.area !== 'string' || req.area.length === 0) {
    throw new InvalidArgumentError('area is required');
  }
  const area = event.map.area(req.area);
  if (area === undefined) {
    const hint = event.map.section(req.area) !== undefined ? ' (a seated section: name its seats)' : '';
    const name = req.area.slice(0, L.section_name_length_max);
    throw new InvalidArgumentError(`event ${req.event_id} has no standing area ${name}${hint}`);
  }
  const quantity = validate_quantity(req.quantity);
  const ttl_s = hold_ttl_of(req.hold_ttl_seconds);
  const admitted = queue_gate(state.queues, req, ctx.now_ms);
  check_user_limits(event, user_id, quantity);
  const a = event.map.areas.indexOf(area);
  const left = area_free_count(event, a);
  if (left < quantity) {
    throw new SeatsUnavailableError(
      `area ${area.name} has ${left} places left; ${quantity} were requested`);
  }
  const free = event.runs.areas[a]!;
  const seats = Array.from(free.stack.subarray(left - quantity, left)).sort((x, y) => x - y);
  const planned = plan_seats(state, event, { user_id, seats, ttl_s, trace_id: req.trace_id }, ctx);
  const r = planned.record;
  return {
    records: [...admitted, r], reply: { hold_id: r.hold_id, expires_at_ms: r.expires_at_ms },
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
  const start = stranding.start !== -1
    ? stranding.start : row_blocks(event, stranding.row, want).any;
  assert(start !== -1, 'the index promised a block in this row');
  return block(start, want.quantity);
}

function block(start: number, quantity: number): number[] {
  return Array.from({ length: quantity }, (_, i) => start + i);
}

/** The blocks of `row` nearest its centre: one stranding no seat (clean), and any. -1: none. */
function row_blocks(
  event: EventState, row_number: number, want: BestWant,
): { clean: number; any: number } {
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

/** Rule (c) without orphans: the free runs in rank order, from each any seats that strand none
 *  of the run's others (run_options), the earliest combination reaching the counts asked for.
 *  A knapsack over (plain, accessible) counts: at most (seats_per_hold_max + 1)^2 states. Null
 *  when no such combination exists. */
function choose_clean_scattered(event: EventState, want: BestWant): number[] | null {
  const goal = { plain: want.quantity - want.accessible, accessible: want.accessible };
  const width = goal.accessible + 1;
  const size = (goal.plain + 1) * width;
  const target = size - 1;
  // For each reached state: the run and counts that reached it first, and the state before.
  const via: ({ l: number; r: number; state: number } | null)[] = new Array(size).fill(null);
  const from = new Int32Array(size).fill(-1);
  const reached = new Uint8Array(size);
  reached[0] = 1;
  let runs_left = L.best_available_scattered_runs_max;
  for (const row of event.runs.ranked_rows) {
    if (!want.row_ok(row) || event.runs.free[row] === 0) continue;
    for (const run of free_runs_of(event, row)) {
      if (runs_left-- === 0) return null;
      const options = run_options(event, run.l, run.r, goal, null);
      const before = reached.slice();
      for (let state = 0; state < size; state++) {
        if (before[state] === 0) continue;
        const p = Math.floor(state / width);
        const a = state % width;
        for (let option = 1; option < size; option++) {
          if (options[option] === 0) continue;
          const op = Math.floor(option / width);
          const oa = option % width;
          if (p + op > goal.plain || a + oa > goal.accessible) continue;
          const next = (p + op) * width + a + oa;
          if (reached[next] === 1) continue;
          reached[next] = 1;
          via[next] = { ...run, state: option };
          from[next] = state;
        }
      }
      if (reached[target] === 1) return walk_back(event, via, from, target, goal);
    }
  }
  return null;
}

function walk_back(
  event: EventState, via: ({ l: number; r: number; state: number } | null)[], from: Int32Array,
  target: number, goal: { plain: number; accessible: number },
): number[] {
  const seats: number[] = [];
  for (let state = target; state !== 0; state = from[state]!) {
    const step = via[state]!;
    const pick: number[] = [];
    run_options(event, step.l, step.r, goal, { state: step.state, seats: pick });
    assert(pick.length > 0, 'a reached option has its seats');
    seats.push(...pick);
  }
  return seats;
}

/** The maximal free runs [l, r) of a row, accessible seats included. */
function free_runs_of(event: EventState, row_number: number): { l: number; r: number }[] {
  const row = event.map.rows[row_number]!;
  const state = event.seat_state;
  const end = row.offset + row.seats;
  const runs: { l: number; r: number }[] = [];
  for (let i = row.offset; i < end;) {
    if (state[i] !== SEAT_FREE) {
      i++;
      continue;
    }
    const l = i;
    while (i < end && state[i] === SEAT_FREE) i++;
    runs.push({ l, r: i });
  }
  return runs;
}

// What is left of a run behind the seat just decided: 0 a taken seat (or the run's start), 1 one
// free seat, 2 two or more. Taking a seat right after exactly one left free strands that one.
const streaks = 3;

/**
 * Which (plain, accessible) counts, state p * (goal.accessible + 1) + a, can be taken from the
 * free run [l, r) leaving no single seat stranded: a walk along the run, each seat taken or
 * left, over (counts, streak). With `pick`, also the seats of one way to take `pick.state`
 * (the walk is kept and walked back). O(run length × states).
 */
function run_options(
  event: EventState, l: number, r: number, goal: { plain: number; accessible: number },
  pick: { state: number; seats: number[] } | null,
): Uint8Array {
  const acc = event.runs.accessible;
  const width = goal.accessible + 1;
  const size = (goal.plain + 1) * width;
  const cells = size * streaks;
  const table = pick === null ? null : new Uint8Array((r - l + 1) * cells);
  let cur = new Uint8Array(cells);
  cur[0] = 1;
  table?.set(cur, 0);
  for (let k = l; k < r; k++) {
    const next = new Uint8Array(cells);
    const accessible = (acc?.[k] ?? 0) === 1;
    for (let cell = 0; cell < cells; cell++) {
      if (cur[cell] === 0) continue;
      const state = Math.floor(cell / streaks);
      const streak = cell % streaks;
      next[state * streaks + Math.min(streak + 1, 2)] = 1; // leave seat k
      const taken = take_one(state, width, goal, accessible);
      if (taken !== -1 && streak !== 1) next[taken * streaks] = 1; // take seat k
    }
    cur = next;
    table?.set(cur, (k - l + 1) * cells);
  }
  const options = new Uint8Array(size);
  for (let state = 1; state < size; state++) {
    options[state] = cur[state * streaks] === 1 || cur[state * streaks + 2] === 1 ? 1 : 0;
  }
  if (pick !== null) walk_run(event, l, r, goal, table!, pick);
  return options;
}

/** The state after taking one more seat (accessible or not), or -1 past the goal. */
function take_one(
  state: number, width: number, goal: { plain: number; accessible: number }, accessible: boolean,
): number {
  const p = Math.floor(state / width);
  const a = state % width;
  if (accessible) return a + 1 > goal.accessible ? -1 : state + 1;
  return p + 1 > goal.plain ? -1 : state + width;
}

/** Walks run_options' table back from `pick.state` at the run's end, collecting taken seats. */
function walk_run(
  event: EventState, l: number, r: number, goal: { plain: number; accessible: number },
  table: Uint8Array, pick: { state: number; seats: number[] },
): void {
  const acc = event.runs.accessible;
  const width = goal.accessible + 1;
  const cells = (goal.plain + 1) * width * streaks;
  const at = (k: number, state: number, streak: number): boolean =>
    table[(k - l) * cells + state * streaks + streak] === 1;
  let state = pick.state;
  let streak = at(r, state, 0) ? 0 : 2;
  assert(at(r, state, streak), 'the picked counts are reachable at the run\'s end');
  for (let k = r - 1; k >= l; k--) {
    if (streak === 0) {
      // Seat k was taken: the state before had one seat fewer, with a streak other than 1.
      const before = state - ((acc?.[k] ?? 0) === 1 ? 1 : width);
      pick.seats.push(k);
      state = before;
      streak = at(k, state, 0) ? 0 : 2;
    } else if (streak === 1) {
      streak = 0;
    } else {
      streak = at(k, state, 2) ? 2 : 1;
    }
    assert(at(k, state, streak), 'the walk back follows reachable cells');
  }
  assert(state === 0, 'the walk back ends where the run began');
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

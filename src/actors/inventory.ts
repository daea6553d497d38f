// Holds on the seat inventory of every event in one partition: a single-threaded state machine.
// decide_* functions validate and decide without changing anything and return journal records;
// apply() is the only code that changes state, and the same apply() replays the journal on
// recovery. Orders build on holds (orders.ts imports this file, never the reverse), so what a
// hold's end does to its draft (ReleaseHold, expiry) is decided there. State types:
// partition_state.ts. Knows nothing of threads, LMDB or gRPC.
import { read, type DecideContext, type Decision, type OutboxEntry } from '../runtime/behaviour.js';
import { assert } from '../util/assert.js';
import {
  EventExistsError, EventNotFoundError, HoldConfirmedError, HoldNotActiveError, HoldNotFoundError,
  HoldExtensionRefusedError,
  FieldTooLongError, HoldsPerUserExceededError, InvalidArgumentError, SeatsPerHoldExceededError, SeatsPerUserExceededError, SeatsUnavailableError,
} from './errors.js';
import { seat_count_of, validate_event_id, validate_event_spec, type EventSpec } from './event_spec.js';
import { id_random_bytes, make_id } from './ids.js';
import * as L from './limits.js';
import { SeatMap } from './seat_map.js';
import { derive_indices, set_seat } from './seat_change.js';
import { create_runs } from './free_runs.js';
import { apply_purchase, is_purchase_record, type PurchaseRecord } from './purchase_records.js';
import { apply_queue, is_queue_record, type QueueRecord } from './queue_records.js';
import { queue_gate } from './queue_gate.js';
import { UserCounts } from './user_counts.js';
import {
  SEAT_FREE, SEAT_HELD, SEAT_SOLD, type EventState, type Hold, type PartitionState, type UserCount,
} from './partition_state.js';

/** Expired holds turned into records by one timer run; the rest wait for the next run. */
export const expiries_per_timer_run_max = 4096;

/** A journal record of a partition: the holds' records here, the purchases' in purchase_records.ts. */
export type PartitionRecord =
  | { t: 'event_created'; spec: EventSpec }
  | { t: 'hold_created'; hold_id: string; hold_no: number; event_id: string; user_id: string; seats: number[]; at_ms: number; expires_at_ms: number; trace_id: string }
  | { t: 'hold_released'; hold_id: string; at_ms: number }
  | { t: 'hold_expired'; hold_id: string; at_ms: number }
  | { t: 'hold_confirmed'; hold_id: string; order_id: string; at_ms: number }
  | { t: 'holds_forgotten'; hold_ids: string[] }
  /** ExtendHold: the active hold (and the draft it carries) now expires at `expires_at_ms`. */
  | { t: 'hold_extended'; hold_id: string; expires_at_ms: number; at_ms: number }
  /** ReturnSeats: sold seats of the order go free (a refund_started of `refund_id` follows in
   *  the same decision when money is returned; '' without one). */
  | { t: 'seats_returned'; order_id: string; seats: number[]; refund_id: string; at_ms: number }
  | PurchaseRecord
  | QueueRecord;

export interface ReserveRequest {
  event_id: string; seat_ids: string[]; hold_ttl_seconds: number; user_id: string; trace_id: string;
  /** The waiting room's `admission-token` ('' / absent: none) and whether a service asks. */
  admission_token?: string; by_service?: boolean;
}
export interface ReleaseRequest { hold_id: string; /** null: a service acting for anyone. */ actor_user_id: string | null }
export interface ConfirmRequest { hold_id: string; order_id: string }

export interface CreateEventReply { event_id: string; created: boolean; seat_count: number }
export interface ReserveReply { hold_id: string; expires_at_ms: number }
export interface ReleaseReply { released: boolean }
export interface ConfirmReply { confirmed: boolean }
export interface AvailabilityRequest { event_id: string; section: string }
export interface ExtendHoldRequest {
  hold_id: string; extend_seconds: number;
  /** null: a service acting for anyone. */ actor_user_id: string | null; trace_id: string;
}
export interface ExtendHoldReply { expires_at_ms: number; extensions_left: number }

/** The refusal for a hold of more than seats_per_hold_max seats (also raised at the gRPC edge). */
export function seats_per_hold_exceeded(requested: number): SeatsPerHoldExceededError {
  return new SeatsPerHoldExceededError(`a hold may have at most ${L.seats_per_hold_max} seats; ${requested} were requested`);
}

function decision<Reply>(
  records: PartitionRecord[], reply: Reply, outbox: OutboxEntry[] = [],
): Decision<PartitionRecord, Reply> {
  return { records, reply, outbox };
}

export function event_of(state: PartitionState, event_id: string): EventState {
  const event = state.events.get(event_id);
  if (event === undefined) throw new EventNotFoundError(`event ${event_id} does not exist`);
  return event;
}

export function validate_user_id(user_id: unknown): string {
  if (typeof user_id !== 'string' || user_id.length === 0) throw new InvalidArgumentError('user_id is required');
  if (user_id.length > L.user_id_length_max) throw new FieldTooLongError(`user_id is longer than ${L.user_id_length_max} characters`);
  if (!L.id_pattern.test(user_id)) throw new InvalidArgumentError('user_id may contain only letters, digits and . _ : -');
  return user_id;
}

function user_count(event: EventState, user_id: string): UserCount {
  return event.users.of(user_id);
}

function list(ids: string[]): string {
  const shown = ids.slice(0, 10).join(', ');
  return ids.length > 10 ? `${shown} and ${ids.length - 10} more` : shown;
}

// ---------------------------------------------------------------------------------------------
// decide: validate and choose; never mutate

export function decide_create_event(
  state: PartitionState, input: unknown,
): Decision<PartitionRecord, CreateEventReply> {
  const spec = validate_event_spec(input);
  const seat_count = seat_count_of(spec);
  const existing = state.events.get(spec.event_id);
  if (existing !== undefined) {
    if (JSON.stringify(existing.spec) !== JSON.stringify(spec)) {
      throw new EventExistsError(`event ${spec.event_id} already exists with a different definition`);
    }
    return read({ event_id: spec.event_id, created: false, seat_count });
  }
  return decision([{ t: 'event_created', spec }], { event_id: spec.event_id, created: true, seat_count });
}

export type HoldCreatedRecord = Extract<PartitionRecord, { t: 'hold_created' }>;

export interface PlannedHold { record: HoldCreatedRecord; event: EventState }

/** Validates a hold of `seat_ids` for `user_id` and plans its record (ReserveTickets and
 *  CreateDraft share every rule; ConfirmOrder's retake shares the seat rules, check_seats).
 *  Changes nothing. */
export function plan_hold(state: PartitionState, req: ReserveRequest, ctx: DecideContext): PlannedHold {
  assert(ctx.partition === state.partition, 'request routed to its partition');
  validate_event_id(req.event_id);
  const event = event_of(state, req.event_id);
  const user_id = validate_user_id(req.user_id);
  const seat_ids = req.seat_ids;
  if (!Array.isArray(seat_ids) || seat_ids.length === 0) throw new InvalidArgumentError('seat_ids must list at least one seat');
  if (seat_ids.length > L.seats_per_hold_max) {
    throw seats_per_hold_exceeded(seat_ids.length);
  }
  const ttl_s = hold_ttl_of(req.hold_ttl_seconds);
  const seats: number[] = [];
  const unknown: string[] = [];
  const seen = new Set<number>();
  const duplicates: string[] = [];
  for (const seat_id of seat_ids) {
    const index = typeof seat_id === 'string' ? event.map.index_of(seat_id) : -1;
    if (index < 0) unknown.push(String(seat_id).slice(0, L.seat_id_length_max));
    else if (seen.has(index)) duplicates.push(seat_id);
    else {
      seen.add(index);
      seats.push(index);
    }
  }
  if (unknown.length > 0) throw new InvalidArgumentError(`not seats of event ${req.event_id} (SECTION-ROW-NUMBER): ${list(unknown)}`);
  if (duplicates.length > 0) throw new InvalidArgumentError(`seats listed more than once: ${list(duplicates)}`);
  const planned = plan_seats(state, event, { user_id, seats, ttl_s, trace_id: req.trace_id }, ctx);
  assert(planned.record.seats.length === seat_ids.length, 'every requested seat planned');
  return planned;
}

/** A hold's TTL in seconds from the request's (0: the default); InvalidArgumentError outside
 *  hold_ttl_seconds_min..max. */
export function hold_ttl_of(hold_ttl_seconds: number): number {
  const ttl_s = hold_ttl_seconds === 0 ? L.hold_ttl_seconds_default : hold_ttl_seconds;
  if (!Number.isSafeInteger(ttl_s) || ttl_s < L.hold_ttl_seconds_min || ttl_s > L.hold_ttl_seconds_max) {
    throw new InvalidArgumentError(
      `hold_ttl_seconds must be 0 (default ${L.hold_ttl_seconds_default}) or ${L.hold_ttl_seconds_min}..${L.hold_ttl_seconds_max}, got ${hold_ttl_seconds}`,
    );
  }
  return ttl_s;
}

/** The per-user rules of a new hold of `seat_count` seats or places: max_seats_per_user, then
 *  holds_per_user_max. Best available and general admission check them before choosing. */
export function check_user_limits(event: EventState, user_id: string, seat_count: number): void {
  const count = user_count(event, user_id);
  const user_seats = count.held + count.sold + seat_count;
  if (user_seats > event.spec.max_seats_per_user) {
    throw new SeatsPerUserExceededError(
      `user ${user_id} would have ${user_seats} seats of event ${event.spec.event_id}; `
        + `max_seats_per_user is ${event.spec.max_seats_per_user} (held ${count.held}, sold ${count.sold})`,
    );
  }
  if (count.active_holds >= L.holds_per_user_max) {
    throw new HoldsPerUserExceededError(
      `user ${user_id} already has ${count.active_holds} active holds on event ${event.spec.event_id} `
        + '(holds_per_user_max)',
    );
  }
}

/** Plans a hold of `seats` (indices, checked to be of the event, no duplicates) under every
 *  rule of a new hold: the user's limits, then each seat free. Changes nothing. */
export function plan_seats(
  state: PartitionState, event: EventState,
  hold: { user_id: string; seats: number[]; ttl_s: number; trace_id: string }, ctx: DecideContext,
): PlannedHold {
  const check = check_seats(event, hold.user_id, hold.seats, null);
  assert(check.user_seats === check.count.held + check.count.sold + hold.seats.length,
    'check_seats counts the new seats');
  check_user_limits(event, hold.user_id, hold.seats.length);
  if (check.taken.length > 0) {
    const taken = check.taken.map((s) => event.map.id_of(s));
    throw new SeatsUnavailableError(`seats not available: ${list(taken)}`);
  }
  return { record: hold_record(state, event, hold, ctx), event };
}

/** What the seat rules of a new hold find (check_seats). */
export interface SeatCheck {
  /** Seats asked for that are not free. */
  taken: number[];
  /** The user's seats of the event (held + sold) once the hold is taken. */
  user_seats: number;
  within_user_limit: boolean;
  /** The user's counts now, less the ending hold. */
  count: UserCount;
}

/**
 * The seat rules every new hold obeys: each seat free, and the user within max_seats_per_user.
 * ReserveTickets and CreateDraft apply them through plan_hold; ConfirmOrder applies them when it
 * retakes a lapsed draft's seats. `ending`: the user's hold that ends in the same decision (the
 * lapsed draft's own, its timer not run yet): its seats count as free and no longer the user's.
 */
export function check_seats(
  event: EventState, user_id: string, seats: number[], ending: Hold | null,
): SeatCheck {
  assert(ending === null || (ending.user_id === user_id && ending.status === 'active'),
    'only the user\'s own active hold ends in the same decision');
  const own = (s: number): boolean => ending !== null && event.seat_state[s] === SEAT_HELD
    && event.seat_owner[s] === ending.hold_no;
  const taken = seats.filter((s) => event.seat_state[s] !== SEAT_FREE && !own(s));
  const now = user_count(event, user_id);
  const count: UserCount = ending === null ? now : {
    held: now.held - ending.seats.length, sold: now.sold, active_holds: now.active_holds - 1,
  };
  assert(count.held >= 0 && count.active_holds >= 0, 'user counts cover the ending hold');
  const user_seats = count.held + count.sold + seats.length;
  return {
    taken, user_seats, within_user_limit: user_seats <= event.spec.max_seats_per_user, count,
  };
}

/** The record of a new hold of `seats`, which passed the rules (plan_hold, check_seats). */
export function hold_record(
  state: PartitionState, event: EventState,
  hold: { user_id: string; seats: number[]; ttl_s: number; trace_id: string }, ctx: DecideContext,
): HoldCreatedRecord {
  assert(hold.ttl_s >= L.hold_ttl_seconds_min && hold.ttl_s <= L.hold_ttl_seconds_max,
    'the ttl was checked');
  const hold_id = make_id('hold', state.partition, ctx.random_bytes(id_random_bytes));
  assert(!state.holds.has(hold_id), 'hold ids never collide');
  return {
    t: 'hold_created', hold_id, hold_no: event.next_hold_no, event_id: event.spec.event_id,
    user_id: hold.user_id, seats: hold.seats, at_ms: ctx.now_ms,
    expires_at_ms: ctx.now_ms + hold.ttl_s * 1000, trace_id: hold.trace_id,
  };
}

/** The HoldCreated event of a planned hold (lifecycle events: docs/contracts.md "Kafka"). */
export function hold_created_event(planned: PlannedHold): OutboxEntry {
  const r = planned.record;
  return {
    type: 'HoldCreated',
    key: r.event_id,
    payload: {
      hold_id: r.hold_id, event_id: r.event_id, user_id: r.user_id, seat_ids: r.seats.map((s) => planned.event.map.id_of(s)),
      expires_at_unix: Math.floor(r.expires_at_ms / 1000), created_at_unix: Math.floor(r.at_ms / 1000), trace_id: r.trace_id,
    },
  };
}

export function decide_reserve(
  state: PartitionState, req: ReserveRequest, ctx: DecideContext,
): Decision<PartitionRecord, ReserveReply> {
  const admitted = queue_gate(state.queues, req, ctx.now_ms);
  const planned = plan_hold(state, req, ctx);
  const r = planned.record;
  return decision([...admitted, r], { hold_id: r.hold_id, expires_at_ms: r.expires_at_ms }, [hold_created_event(planned)]);
}

export function hold_of(state: PartitionState, hold_id: string): Hold {
  const hold = state.holds.get(hold_id);
  if (hold === undefined) throw new HoldNotFoundError(`hold ${hold_id} does not exist (or was forgotten after it ended)`);
  return hold;
}

/** ReleaseHold's hold part: orders.ts's decide_release adds what the release does to a draft. */
export function release_hold(
  state: PartitionState, req: ReleaseRequest, ctx: DecideContext,
): Decision<PartitionRecord, ReleaseReply> {
  const hold = hold_of(state, req.hold_id);
  // Someone else's hold answers like a missing one: existence must not leak.
  if (req.actor_user_id !== null && req.actor_user_id !== hold.user_id) {
    throw new HoldNotFoundError(`hold ${req.hold_id} does not exist (or was forgotten after it ended)`);
  }
  switch (hold.status) {
    case 'confirmed':
      throw new HoldConfirmedError(`hold ${req.hold_id} is confirmed for order ${hold.order_id}; it can no longer be released`);
    case 'released':
    case 'expired':
      return read({ released: false });
    case 'active': {
      // Past its expiry the hold is expired even if the timer has not run yet.
      if (ctx.now_ms >= hold.expires_at_ms) return read({ released: false });
      const records: PartitionRecord[] = [{ t: 'hold_released', hold_id: hold.hold_id, at_ms: ctx.now_ms }];
      const outbox: OutboxEntry[] = [{
        type: 'HoldReleased', key: hold.event_id,
        payload: { hold_id: hold.hold_id, event_id: hold.event_id, released_at_unix: Math.floor(ctx.now_ms / 1000), trace_id: hold.trace_id },
      }];
      return decision(records, { released: true }, outbox);
    }
  }
}

export function decide_confirm(
  state: PartitionState, req: ConfirmRequest, ctx: DecideContext,
): Decision<PartitionRecord, ConfirmReply> {
  const order_id = req.order_id;
  if (typeof order_id !== 'string' || order_id.length === 0) throw new InvalidArgumentError('order_id is required');
  if (order_id.length > L.order_id_length_max || !L.id_pattern.test(order_id)) {
    throw new InvalidArgumentError(`order_id must be 1..${L.order_id_length_max} of letters, digits and . _ : -`);
  }
  const hold = hold_of(state, req.hold_id);
  // A draft's hold is sold only by ConfirmOrder, which takes the payment with it: allocating it
  // here would sell seats the buyer has not paid for.
  const draft_order = state.purchase.order_by_hold.get(hold.hold_id);
  if (draft_order !== undefined && (draft_order !== order_id || hold.status !== 'confirmed')) {
    throw new HoldNotActiveError(`hold ${req.hold_id} belongs to order ${draft_order}; confirm it with OrderService.ConfirmOrder`);
  }
  switch (hold.status) {
    case 'confirmed':
      if (hold.order_id === order_id) return read({ confirmed: true });
      throw new HoldNotActiveError(`hold ${req.hold_id} is already confirmed for another order`);
    case 'released':
      throw new HoldNotActiveError(`hold ${req.hold_id} was released; reserve the seats again`);
    case 'expired':
      throw new HoldNotActiveError(`hold ${req.hold_id} expired; reserve the seats again`);
    case 'active':
      if (ctx.now_ms >= hold.expires_at_ms) throw new HoldNotActiveError(`hold ${req.hold_id} expired; reserve the seats again`);
      return decision([{ t: 'hold_confirmed', hold_id: hold.hold_id, order_id, at_ms: ctx.now_ms }], { confirmed: true });
  }
}

/** ExtendHold: the owner (or a service) moves an active hold's expiry later, within
 *  hold_life_seconds_max of its creation and at most hold_extensions_max times. A draft's hold
 *  extends the draft (apply_hold_extended). */
export function decide_extend_hold(
  state: PartitionState, req: ExtendHoldRequest, ctx: DecideContext,
): Decision<PartitionRecord, ExtendHoldReply> {
  const hold = hold_of(state, req.hold_id);
  // Someone else's hold answers like a missing one, as ReleaseHold does.
  if (req.actor_user_id !== null && req.actor_user_id !== hold.user_id) {
    throw new HoldNotFoundError(
      `hold ${req.hold_id} does not exist (or was forgotten after it ended)`,
    );
  }
  const s = req.extend_seconds;
  if (!Number.isSafeInteger(s) || s < 1 || s > L.hold_ttl_seconds_max) {
    throw new InvalidArgumentError(`extend_seconds must be 1..${L.hold_ttl_seconds_max}, got ${s}`);
  }
  // Past its expiry the hold is expired even if the timer has not run yet.
  if (hold.status !== 'active' || ctx.now_ms >= hold.expires_at_ms) {
    const status = hold.status === 'active' ? 'expired' : hold.status;
    throw new HoldNotActiveError(
      `hold ${req.hold_id} is ${status}; only an active hold is extended`,
    );
  }
  if (hold.extensions >= L.hold_extensions_max) {
    throw new HoldExtensionRefusedError(
      `hold ${req.hold_id} was extended ${hold.extensions} times already (hold_extensions_max)`,
    );
  }
  const life_end_ms = hold.created_ms + L.hold_life_seconds_max * 1000;
  const expires_at_ms = Math.min(hold.expires_at_ms + s * 1000, life_end_ms);
  if (expires_at_ms <= hold.expires_at_ms) {
    throw new HoldExtensionRefusedError(`hold ${req.hold_id} already expires at the end of its `
      + `life, ${L.hold_life_seconds_max} s after it was made (hold_life_seconds_max)`);
  }
  assert(expires_at_ms > ctx.now_ms && expires_at_ms <= life_end_ms,
    'extended within the life cap');
  const extensions_left = L.hold_extensions_max - hold.extensions - 1;
  const order_id = state.purchase.order_by_hold.get(hold.hold_id) ?? '';
  const outbox: OutboxEntry[] = [{
    type: 'HoldExtended', key: hold.event_id,
    payload: {
      hold_id: hold.hold_id, event_id: hold.event_id, user_id: hold.user_id,
      expires_at_unix: Math.floor(expires_at_ms / 1000), extensions_left, order_id,
      extended_at_unix: Math.floor(ctx.now_ms / 1000), trace_id: req.trace_id,
    },
  }];
  const record: PartitionRecord = {
    t: 'hold_extended', hold_id: hold.hold_id, expires_at_ms, at_ms: ctx.now_ms,
  };
  return decision([record], { expires_at_ms, extensions_left }, outbox);
}

/** The InventoryHoldExpired event of `hold`, expired at `now_ms` (by the timer, or by
 *  ConfirmOrder finding the hold lapsed before its timer ran). */
export function hold_expired_event(hold: Hold, now_ms: number): OutboxEntry {
  return {
    type: 'InventoryHoldExpired',
    key: hold.event_id,
    payload: {
      hold_id: hold.hold_id, event_id: hold.event_id, expired_at_unix: Math.floor(now_ms / 1000),
      trace_id: hold.trace_id,
    },
  };
}

/** Active holds due at `now_ms`, earliest first, at most expiries_per_timer_run_max (the rest
 *  wait for the next run). The caller journals a hold_expired record for each. */
export function pop_due_holds(state: PartitionState, now_ms: number): Hold[] {
  const due_holds: Hold[] = [];
  // The expiry heap is a derived index: popping stale entries here changes no journaled state.
  while (due_holds.length < expiries_per_timer_run_max) {
    const top = state.expiry.peek();
    if (top === null || top.key > now_ms) break;
    state.expiry.pop();
    // A stale entry: its slot reused by another hold (gen), its hold ended or extended.
    if (!state.holds.is(top.slot, top.gen)) continue;
    const hold = state.holds.view(top.slot);
    if (hold.status !== 'active' || hold.expires_at_ms !== top.key) continue;
    due_holds.push(hold);
  }
  assert(due_holds.every((h) => h.expires_at_ms <= now_ms), 'only due holds expire');
  return due_holds;
}

/** The holds_forgotten record of the tombstones due at `now_ms` (bounded), if any. */
export function forget_tombstones(state: PartitionState, now_ms: number): PartitionRecord[] {
  const forget: string[] = [];
  for (const tomb of state.tombstones) {
    if (tomb.forget_at_ms > now_ms || forget.length >= expiries_per_timer_run_max) break;
    forget.push(tomb.hold_id);
  }
  return forget.length > 0 ? [{ t: 'holds_forgotten', hold_ids: forget }] : [];
}

/** The earliest time a hold expires or a tombstone is forgotten; null: none is due ever. */
export function hold_deadline_ms(state: PartitionState): number | null {
  const expiry = state.expiry.peek_key();
  const forget = state.tombstones[0]?.forget_at_ms ?? null;
  if (expiry === null) return forget;
  return forget === null ? expiry : Math.min(expiry, forget);
}

// ---------------------------------------------------------------------------------------------
// apply: the only place state changes

function new_event(spec: EventSpec): EventState {
  const map = new SeatMap(spec);
  // Seats and standing places: an area's places follow the seats in the same arrays.
  const seat_owner = new Int32Array(map.place_count).fill(-1);
  const event: EventState = {
    spec, map, seat_state: new Uint8Array(map.place_count), seat_owner, orders: [], order_no_by_id: new Map(),
    next_hold_no: 0, users: new UserCounts(), held: 0, sold: 0, runs: create_runs(spec, map),
  };
  derive_indices(event);
  return event;
}

function end_hold(state: PartitionState, hold: Hold, status: 'released' | 'expired' | 'confirmed', at_ms: number): EventState {
  assert(hold.status === 'active', `only an active hold ends (hold ${hold.hold_id} is ${hold.status})`);
  const event = state.events.get(hold.event_id);
  assert(event !== undefined, 'hold belongs to an existing event');
  const count = event.users.get(hold.user_id);
  const seat_count = hold.seats.length;
  assert(count !== undefined && count.held >= seat_count && count.active_holds >= 1, 'user counts cover the hold');
  event.users.add(hold.user_id, -seat_count, 0, -1);
  event.held -= seat_count;
  state.active_holds -= 1;
  hold.status = status;
  hold.ended_ms = at_ms;
  return event;
}

export function apply(state: PartitionState, record: PartitionRecord): void {
  if (is_purchase_record(record)) {
    apply_purchase(state.purchase, record);
    return;
  }
  if (is_queue_record(record)) {
    apply_queue(state.queues, record);
    return;
  }
  switch (record.t) {
    case 'event_created': {
      assert(!state.events.has(record.spec.event_id), 'event created once');
      state.events.set(record.spec.event_id, new_event(record.spec));
      return;
    }
    case 'hold_created': return apply_hold_created(state, record);
    case 'hold_released':
    case 'hold_expired': return apply_hold_freed(state, record);
    case 'hold_confirmed': return apply_hold_confirmed(state, record);
    case 'holds_forgotten': return apply_holds_forgotten(state, record);
    case 'hold_extended': return apply_hold_extended(state, record);
    case 'seats_returned': return apply_seats_returned(state, record);
  }
}

type HoldRecord<T extends PartitionRecord['t']> = Extract<PartitionRecord, { t: T }>;

function apply_hold_created(state: PartitionState, record: HoldCreatedRecord): void {
  const event = state.events.get(record.event_id);
  assert(event !== undefined, 'hold on an existing event');
  assert(record.hold_no === event.next_hold_no, 'hold numbers are dense per event');
  for (const seat of record.seats) {
    assert(event.seat_state[seat] === SEAT_FREE, `seat ${seat} free before hold`);
    set_seat(event, seat, SEAT_HELD, record.hold_no);
  }
  event.next_hold_no += 1;
  event.held += record.seats.length;
  event.users.add(record.user_id, record.seats.length, 0, 1);
  const count = event.users.get(record.user_id)!;
  const hold: Hold = {
    hold_id: record.hold_id, hold_no: record.hold_no, event_id: record.event_id,
    user_id: record.user_id, seats: record.seats, created_ms: record.at_ms,
    expires_at_ms: record.expires_at_ms, status: 'active', order_id: '', ended_ms: 0,
    trace_id: record.trace_id, extensions: 0,
  };
  const slot = state.holds.insert(hold);
  state.expiry.push(record.expires_at_ms, slot);
  state.active_holds += 1;
  assert(count.held <= event.held && event.held + event.sold <= event.map.place_count,
    'held seats counted within the event');
}

/** A released or expired hold: its seats are free again, and it is remembered as a tombstone. */
function apply_hold_freed(
  state: PartitionState, record: HoldRecord<'hold_released' | 'hold_expired'>,
): void {
  const hold = state.holds.get(record.hold_id);
  assert(hold !== undefined, 'released/expired hold exists');
  const status = record.t === 'hold_released' ? 'released' : 'expired';
  const event = end_hold(state, hold, status, record.at_ms);
  for (const seat of hold.seats) {
    assert(event.seat_state[seat] === SEAT_HELD && event.seat_owner[seat] === hold.hold_no,
      'seat held by this hold');
    set_seat(event, seat, SEAT_FREE, -1);
  }
  const forget_at_ms = record.at_ms + L.hold_tombstone_retention_ms;
  state.tombstones.push({ hold_id: hold.hold_id, forget_at_ms });
}

function apply_hold_confirmed(state: PartitionState, record: HoldRecord<'hold_confirmed'>): void {
  const hold = state.holds.get(record.hold_id);
  assert(hold !== undefined, 'confirmed hold exists');
  const event = end_hold(state, hold, 'confirmed', record.at_ms);
  hold.order_id = record.order_id;
  let order_no = event.order_no_by_id.get(record.order_id);
  if (order_no === undefined) {
    order_no = event.orders.length;
    event.orders.push(record.order_id);
    event.order_no_by_id.set(record.order_id, order_no);
  }
  for (const seat of hold.seats) {
    assert(event.seat_state[seat] === SEAT_HELD && event.seat_owner[seat] === hold.hold_no,
      'seat held by this hold');
    set_seat(event, seat, SEAT_SOLD, order_no);
  }
  event.sold += hold.seats.length;
  event.users.add(hold.user_id, 0, hold.seats.length, 0);
  assert(event.orders[order_no] === record.order_id, 'the order numbers its seats');
}

function apply_holds_forgotten(state: PartitionState, record: HoldRecord<'holds_forgotten'>): void {
  for (const hold_id of record.hold_ids) {
    const tomb = state.tombstones.shift();
    assert(tomb !== undefined && tomb.hold_id === hold_id,
      'holds are forgotten in the order they ended');
    const hold = state.holds.get(hold_id);
    assert(hold !== undefined && (hold.status === 'released' || hold.status === 'expired'),
      'only ended holds are forgotten');
    state.holds.delete(hold_id);
  }
}

function apply_hold_extended(state: PartitionState, record: HoldRecord<'hold_extended'>): void {
  const slot = state.holds.slot_of(record.hold_id);
  const hold = slot === -1 ? undefined : state.holds.view(slot);
  assert(hold !== undefined && hold.status === 'active', 'only an active hold is extended');
  assert(record.expires_at_ms > hold.expires_at_ms
    && record.expires_at_ms <= hold.created_ms + L.hold_life_seconds_max * 1000,
  'an extension moves the expiry later, within the hold\'s life');
  assert(hold.extensions < L.hold_extensions_max, 'extensions within hold_extensions_max');
  hold.expires_at_ms = record.expires_at_ms;
  hold.extensions += 1;
  // The entry at the old expiry goes stale (pop_due_holds skips it).
  state.expiry.push(record.expires_at_ms, slot);
  // The draft the hold carries expires with its hold (decide_timers, Authorize, ConfirmOrder
  // read the hold's expiry; the order's copy is what GetOrder shows).
  const order_id = state.purchase.order_by_hold.get(hold.hold_id);
  const order = order_id === undefined ? undefined : state.purchase.orders.get(order_id);
  if (order !== undefined && order.status === 'DRAFT') {
    order.hold_expires_at_ms = record.expires_at_ms;
    order.updated_ms = record.at_ms;
  }
}

/** Returned seats go free and are no longer the user's; the order remembers them. */
function apply_seats_returned(state: PartitionState, record: HoldRecord<'seats_returned'>): void {
  const order = state.purchase.orders.get(record.order_id);
  assert(order !== undefined, 'returned seats belong to an order');
  const event = state.events.get(order.event_id);
  assert(event !== undefined, 'an order has its event');
  const order_no = event.order_no_by_id.get(order.order_id);
  assert(order_no !== undefined && record.seats.length > 0, 'a sold order returns seats');
  for (const seat of record.seats) {
    assert(order.seats.includes(seat) && !order.returned.includes(seat),
      'a seat of the order, returned once');
    assert(event.seat_state[seat] === SEAT_SOLD && event.seat_owner[seat] === order_no,
      'a returned seat was sold to its order');
    set_seat(event, seat, SEAT_FREE, -1);
  }
  const count = event.users.get(order.user_id);
  assert(count !== undefined && count.sold >= record.seats.length, 'user counts cover the sale');
  event.users.add(order.user_id, 0, -record.seats.length, 0);
  event.sold -= record.seats.length;
  order.returned.push(...record.seats);
  order.status = order.returned.length === order.seats.length ? 'RETURNED' : 'PARTIALLY_RETURNED';
  order.updated_ms = record.at_ms;
  assert(event.sold >= 0 && order.returned.length <= order.seats.length, 'returns within the sale');
}

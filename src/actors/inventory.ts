// Seat inventory of every event in one partition: a single-threaded state machine. decide_*
// functions validate and decide without changing anything and return journal records; apply()
// is the only code that changes state, and the same apply() replays the journal on recovery.
// Knows nothing of threads, LMDB or gRPC.
import { read, type DecideContext, type Decision, type Effects, type OutboxEntry } from '../runtime/behaviour.js';
import { assert } from '../runtime/assert.js';
import { MinHeap } from '../runtime/heap.js';
import {
  EventExistsError, EventNotFoundError, HoldConfirmedError, HoldNotActiveError, HoldNotFoundError,
  FieldTooLongError, HoldsPerUserExceededError, InvalidArgumentError, SeatsPerHoldExceededError, SeatsPerUserExceededError, SeatsUnavailableError,
} from './errors.js';
import { seat_count_of, validate_event_id, validate_event_spec, type EventSpec } from './event_spec.js';
import { id_random_bytes, make_id } from './ids.js';
import * as L from './limits.js';
import { SeatMap } from './seat_map.js';
import { apply_purchase, is_purchase_record, type PurchaseRecord } from './purchase_records.js';
import { create_purchase_state, type PurchaseState } from './purchase_state.js';

export const SEAT_FREE = 0;
export const SEAT_HELD = 1;
export const SEAT_SOLD = 2;

/** Expired holds turned into records by one timer run; the rest wait for the next run. */
export const expiries_per_timer_run_max = 4096;

export interface UserCount { held: number; sold: number; active_holds: number }

export interface EventState {
  spec: EventSpec;
  map: SeatMap;
  /** SEAT_FREE | SEAT_HELD | SEAT_SOLD per seat index. */
  seat_state: Uint8Array;
  /** hold_no of the holding hold when HELD, order_no when SOLD, -1 when FREE. */
  seat_owner: Int32Array;
  orders: string[];
  order_no_by_id: Map<string, number>;
  next_hold_no: number;
  users: Map<string, UserCount>;
  held: number;
  sold: number;
}

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
}

export interface InventoryState {
  partition: number;
  events: Map<string, EventState>;
  holds: Map<string, Hold>;
  /** Active holds by expiry; stale entries (ended holds) are skipped when popped. */
  expiry: MinHeap<string>;
  /** Ended holds in end order, forgotten after hold_tombstone_retention_ms. */
  tombstones: { hold_id: string; forget_at_ms: number }[];
  active_holds: number;
  /** Orders and payments of this partition's events (purchase_state.ts). */
  purchase: PurchaseState;
}

export type InventoryRecord =
  | { t: 'event_created'; spec: EventSpec }
  | { t: 'hold_created'; hold_id: string; hold_no: number; event_id: string; user_id: string; seats: number[]; at_ms: number; expires_at_ms: number; trace_id: string }
  | { t: 'hold_released'; hold_id: string; at_ms: number }
  | { t: 'hold_expired'; hold_id: string; at_ms: number }
  | { t: 'hold_confirmed'; hold_id: string; order_id: string; at_ms: number }
  | { t: 'holds_forgotten'; hold_ids: string[] }
  | PurchaseRecord;

export interface ReserveRequest { event_id: string; seat_ids: string[]; hold_ttl_seconds: number; user_id: string; trace_id: string }
export interface ReleaseRequest { hold_id: string; /** null: a service acting for anyone. */ actor_user_id: string | null }
export interface ConfirmRequest { hold_id: string; order_id: string }
export interface AvailabilityRequest { event_id: string; section: string }

export interface CreateEventReply { event_id: string; created: boolean; seat_count: number }
export interface ReserveReply { hold_id: string; expires_at_ms: number }
export interface ReleaseReply { released: boolean }
export interface ConfirmReply { confirmed: boolean }

export function create_state(partition: number): InventoryState {
  return {
    partition, events: new Map(), holds: new Map(), expiry: new MinHeap(), tombstones: [], active_holds: 0,
    purchase: create_purchase_state(),
  };
}

/** The refusal for a hold of more than seats_per_hold_max seats (also raised at the gRPC edge). */
export function seats_per_hold_exceeded(requested: number): SeatsPerHoldExceededError {
  return new SeatsPerHoldExceededError(`a hold may have at most ${L.seats_per_hold_max} seats; ${requested} were requested`);
}

function decision<Reply>(records: InventoryRecord[], reply: Reply, outbox: OutboxEntry[] = []): Decision<InventoryRecord, Reply> {
  return { records, reply, outbox };
}

export function event_of(state: InventoryState, event_id: string): EventState {
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
  return event.users.get(user_id) ?? { held: 0, sold: 0, active_holds: 0 };
}

function list(ids: string[]): string {
  const shown = ids.slice(0, 10).join(', ');
  return ids.length > 10 ? `${shown} and ${ids.length - 10} more` : shown;
}

// ---------------------------------------------------------------------------------------------
// decide: validate and choose; never mutate

export function decide_create_event(state: InventoryState, input: unknown): Decision<InventoryRecord, CreateEventReply> {
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

export interface PlannedHold { record: Extract<InventoryRecord, { t: 'hold_created' }>; event: EventState }

/** Validates a hold of `seat_ids` for `user_id` and plans its record (ReserveTickets and
 *  CreateDraft share every rule). Changes nothing. */
export function plan_hold(state: InventoryState, req: ReserveRequest, ctx: DecideContext): PlannedHold {
  assert(ctx.partition === state.partition, 'request routed to its partition');
  validate_event_id(req.event_id);
  const event = event_of(state, req.event_id);
  const user_id = validate_user_id(req.user_id);
  const seat_ids = req.seat_ids;
  if (!Array.isArray(seat_ids) || seat_ids.length === 0) throw new InvalidArgumentError('seat_ids must list at least one seat');
  if (seat_ids.length > L.seats_per_hold_max) {
    throw seats_per_hold_exceeded(seat_ids.length);
  }
  const ttl_s = req.hold_ttl_seconds === 0 ? L.hold_ttl_seconds_default : req.hold_ttl_seconds;
  if (!Number.isSafeInteger(ttl_s) || ttl_s < L.hold_ttl_seconds_min || ttl_s > L.hold_ttl_seconds_max) {
    throw new InvalidArgumentError(
      `hold_ttl_seconds must be 0 (default ${L.hold_ttl_seconds_default}) or ${L.hold_ttl_seconds_min}..${L.hold_ttl_seconds_max}, got ${req.hold_ttl_seconds}`,
    );
  }
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
  const count = user_count(event, user_id);
  if (count.held + count.sold + seats.length > event.spec.max_seats_per_user) {
    throw new SeatsPerUserExceededError(
      `user ${user_id} would have ${count.held + count.sold + seats.length} seats of event ${req.event_id}; max_seats_per_user is ${event.spec.max_seats_per_user} (held ${count.held}, sold ${count.sold})`,
    );
  }
  if (count.active_holds >= L.holds_per_user_max) {
    throw new HoldsPerUserExceededError(`user ${user_id} already has ${count.active_holds} active holds on event ${req.event_id} (holds_per_user_max)`);
  }
  const taken = seats.filter((s) => event.seat_state[s] !== SEAT_FREE);
  if (taken.length > 0) {
    throw new SeatsUnavailableError(`seats not available: ${list(taken.map((s) => event.map.id_of(s)))}`);
  }
  const hold_id = make_id('hold', state.partition, ctx.random_bytes(id_random_bytes));
  assert(!state.holds.has(hold_id), 'hold ids never collide');
  const record: PlannedHold['record'] = {
    t: 'hold_created', hold_id, hold_no: event.next_hold_no, event_id: req.event_id, user_id, seats,
    at_ms: ctx.now_ms, expires_at_ms: ctx.now_ms + ttl_s * 1000, trace_id: req.trace_id,
  };
  assert(record.seats.length === seat_ids.length, 'every requested seat planned');
  return { record, event };
}

/** The HoldCreated event of a planned hold (DESIGN §6 lifecycle events). */
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

export function decide_reserve(state: InventoryState, req: ReserveRequest, ctx: DecideContext): Decision<InventoryRecord, ReserveReply> {
  const planned = plan_hold(state, req, ctx);
  const r = planned.record;
  return decision([r], { hold_id: r.hold_id, expires_at_ms: r.expires_at_ms }, [hold_created_event(planned)]);
}

export function hold_of(state: InventoryState, hold_id: string): Hold {
  const hold = state.holds.get(hold_id);
  if (hold === undefined) throw new HoldNotFoundError(`hold ${hold_id} does not exist (or was forgotten after it ended)`);
  return hold;
}

export function decide_release(state: InventoryState, req: ReleaseRequest, ctx: DecideContext): Decision<InventoryRecord, ReleaseReply> {
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
      const records: InventoryRecord[] = [{ t: 'hold_released', hold_id: hold.hold_id, at_ms: ctx.now_ms }];
      // Releasing a draft's hold cancels the draft; an authorization it had is voided.
      records.push(...end_draft(state, hold.hold_id, 'order_cancelled', ctx.now_ms));
      const outbox: OutboxEntry[] = [{
        type: 'HoldReleased', key: hold.event_id,
        payload: { hold_id: hold.hold_id, event_id: hold.event_id, released_at_unix: Math.floor(ctx.now_ms / 1000), trace_id: hold.trace_id },
      }];
      return decision(records, { released: true }, outbox);
    }
  }
}

/** Records that end the draft order carried by `hold_id`, if any: the order is cancelled
 *  (voiding any authorization it has) or expired (an authorization stays confirmable for
 *  authorization_grace_ms: ConfirmOrder may retake free seats). */
export function end_draft(state: InventoryState, hold_id: string, t: 'order_cancelled' | 'order_expired', now_ms: number): InventoryRecord[] {
  const order_id = state.purchase.order_by_hold.get(hold_id);
  if (order_id === undefined) return [];
  const order = state.purchase.orders.get(order_id);
  assert(order !== undefined && order.hold_id === hold_id, 'a hold\'s order carries it');
  if (order.status !== 'DRAFT') return [];
  const records: InventoryRecord[] = [{ t, order_id, at_ms: now_ms }];
  if (t === 'order_cancelled') {
    for (const payment_id of order.payment_ids) {
      const payment = state.purchase.payments.get(payment_id);
      if (payment?.status === 'AUTHORIZED') records.push({ t: 'payment_voiding', payment_id, at_ms: now_ms });
    }
  }
  return records;
}

export function decide_confirm(state: InventoryState, req: ConfirmRequest, ctx: DecideContext): Decision<InventoryRecord, ConfirmReply> {
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

export function decide_timers(state: InventoryState, ctx: DecideContext): Effects<InventoryRecord> {
  const records: InventoryRecord[] = [];
  const outbox: OutboxEntry[] = [];
  // The expiry heap is a derived index: popping stale entries here changes no journaled state.
  let expired = 0;
  while (expired < expiries_per_timer_run_max) {
    const due = state.expiry.peek_key();
    if (due === null || due > ctx.now_ms) break;
    const hold_id = state.expiry.pop()!;
    const hold = state.holds.get(hold_id);
    if (hold === undefined || hold.status !== 'active' || hold.expires_at_ms !== due) continue;
    expired++;
    records.push({ t: 'hold_expired', hold_id, at_ms: ctx.now_ms });
    outbox.push({
      type: 'InventoryHoldExpired',
      key: hold.event_id,
      payload: { hold_id, event_id: hold.event_id, expired_at_unix: Math.floor(ctx.now_ms / 1000), trace_id: hold.trace_id },
    });
    const ended = end_draft(state, hold_id, 'order_expired', ctx.now_ms);
    records.push(...ended);
    if (ended.length > 0) {
      const order = state.purchase.orders.get(state.purchase.order_by_hold.get(hold_id)!)!;
      outbox.push({
        type: 'OrderExpired',
        key: order.order_id,
        payload: { order_id: order.order_id, user_id: order.user_id, event_id: order.event_id, expired_at_unix: Math.floor(ctx.now_ms / 1000), trace_id: order.trace_id },
      });
    }
  }
  const forget: string[] = [];
  for (const tomb of state.tombstones) {
    if (tomb.forget_at_ms > ctx.now_ms || forget.length >= expiries_per_timer_run_max) break;
    forget.push(tomb.hold_id);
  }
  if (forget.length > 0) records.push({ t: 'holds_forgotten', hold_ids: forget });
  const keys: string[] = [];
  for (const key of state.purchase.idempotency_queue) {
    const entry = state.purchase.idempotency.get(key);
    assert(entry !== undefined, 'queued idempotency keys are stored');
    if (entry.forget_at_ms > ctx.now_ms || keys.length >= expiries_per_timer_run_max) break;
    keys.push(key);
  }
  if (keys.length > 0) records.push({ t: 'idempotency_forgotten', keys });
  let dequeued = 0;
  const order_ids: string[] = [];
  for (const entry of state.purchase.ended_orders) {
    if (entry.forget_at_ms > ctx.now_ms || dequeued >= L.orders_forgotten_per_run_max) break;
    dequeued++;
    const order = state.purchase.orders.get(entry.order_id);
    assert(order !== undefined, 'a queued ended order exists');
    const ended = order.status === 'EXPIRED' || order.status === 'CANCELLED';
    // An order with a gateway call still owed (the gateway has been down a whole day) is kept.
    const settled = order.payment_ids.every((id) => !state.purchase.open_payments.has(id));
    if (ended && settled) order_ids.push(entry.order_id);
  }
  if (dequeued > 0) records.push({ t: 'orders_forgotten', dequeued, order_ids });
  return { records, outbox };
}

export function next_deadline_ms(state: InventoryState): number | null {
  const candidates = [
    state.expiry.peek_key(),
    state.tombstones[0]?.forget_at_ms ?? null,
    state.purchase.idempotency.get(state.purchase.idempotency_queue[0] ?? '')?.forget_at_ms ?? null,
    state.purchase.ended_orders[0]?.forget_at_ms ?? null,
  ].filter((t): t is number => t !== null);
  return candidates.length === 0 ? null : Math.min(...candidates);
}

// ---------------------------------------------------------------------------------------------
// apply: the only place state changes

function new_event(spec: EventSpec): EventState {
  const map = new SeatMap(spec);
  const seat_owner = new Int32Array(map.seat_count).fill(-1);
  return {
    spec, map, seat_state: new Uint8Array(map.seat_count), seat_owner, orders: [], order_no_by_id: new Map(),
    next_hold_no: 0, users: new Map(), held: 0, sold: 0,
  };
}

function end_hold(state: InventoryState, hold: Hold, status: 'released' | 'expired' | 'confirmed', at_ms: number): EventState {
  assert(hold.status === 'active', `only an active hold ends (hold ${hold.hold_id} is ${hold.status})`);
  const event = state.events.get(hold.event_id);
  assert(event !== undefined, 'hold belongs to an existing event');
  const count = event.users.get(hold.user_id);
  assert(count !== undefined && count.held >= hold.seats.length && count.active_holds >= 1, 'user counts cover the hold');
  count.held -= hold.seats.length;
  count.active_holds -= 1;
  event.held -= hold.seats.length;
  state.active_holds -= 1;
  hold.status = status;
  hold.ended_ms = at_ms;
  return event;
}

export function apply(state: InventoryState, record: InventoryRecord): void {
  if (is_purchase_record(record)) {
    apply_purchase(state.purchase, record);
    return;
  }
  switch (record.t) {
    case 'event_created': {
      assert(!state.events.has(record.spec.event_id), 'event created once');
      state.events.set(record.spec.event_id, new_event(record.spec));
      return;
    }
    case 'hold_created': {
      const event = state.events.get(record.event_id);
      assert(event !== undefined, 'hold on an existing event');
      assert(record.hold_no === event.next_hold_no, 'hold numbers are dense per event');
      for (const seat of record.seats) {
        assert(event.seat_state[seat] === SEAT_FREE, `seat ${seat} free before hold`);
        event.seat_state[seat] = SEAT_HELD;
        event.seat_owner[seat] = record.hold_no;
      }
      event.next_hold_no += 1;
      event.held += record.seats.length;
      let count = event.users.get(record.user_id);
      if (count === undefined) {
        count = { held: 0, sold: 0, active_holds: 0 };
        event.users.set(record.user_id, count);
      }
      count.held += record.seats.length;
      count.active_holds += 1;
      const hold: Hold = {
        hold_id: record.hold_id, hold_no: record.hold_no, event_id: record.event_id, user_id: record.user_id,
        seats: record.seats, created_ms: record.at_ms, expires_at_ms: record.expires_at_ms, status: 'active',
        order_id: '', ended_ms: 0, trace_id: record.trace_id,
      };
      state.holds.set(record.hold_id, hold);
      state.expiry.push(record.expires_at_ms, record.hold_id, record.hold_id);
      state.active_holds += 1;
      return;
    }
    case 'hold_released':
    case 'hold_expired': {
      const hold = state.holds.get(record.hold_id);
      assert(hold !== undefined, 'released/expired hold exists');
      const event = end_hold(state, hold, record.t === 'hold_released' ? 'released' : 'expired', record.at_ms);
      for (const seat of hold.seats) {
        assert(event.seat_state[seat] === SEAT_HELD && event.seat_owner[seat] === hold.hold_no, 'seat held by this hold');
        event.seat_state[seat] = SEAT_FREE;
        event.seat_owner[seat] = -1;
      }
      state.tombstones.push({ hold_id: hold.hold_id, forget_at_ms: record.at_ms + L.hold_tombstone_retention_ms });
      return;
    }
    case 'hold_confirmed': {
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
        assert(event.seat_state[seat] === SEAT_HELD && event.seat_owner[seat] === hold.hold_no, 'seat held by this hold');
        event.seat_state[seat] = SEAT_SOLD;
        event.seat_owner[seat] = order_no;
      }
      event.sold += hold.seats.length;
      event.users.get(hold.user_id)!.sold += hold.seats.length;
      return;
    }
    case 'holds_forgotten': {
      for (const hold_id of record.hold_ids) {
        const tomb = state.tombstones.shift();
        assert(tomb !== undefined && tomb.hold_id === hold_id, 'holds are forgotten in the order they ended');
        const hold = state.holds.get(hold_id);
        assert(hold !== undefined && (hold.status === 'released' || hold.status === 'expired'), 'only ended holds are forgotten');
        state.holds.delete(hold_id);
      }
      return;
    }
  }
}

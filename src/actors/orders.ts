// Orders: CreateDraft, fraud decisions, ConfirmOrder, and reading orders back; and what a hold's
// end does to the draft it carries (ReleaseHold cancels it, expiry expires it), so the partition's
// timers run here. Orders build on holds: this file imports inventory.ts, never the reverse.
// decide_* change nothing; their records go through apply() (inventory.ts → purchase_records.ts).
import { read, type DecideContext, type Decision, type Effects, type OutboxEntry } from '../runtime/behaviour.js';
import { assert } from '../util/assert.js';
import {
  HoldNotActiveError, HoldNotFoundError, IdempotencyKeyReusedError, InvalidArgumentError,
  OrderNotFoundError, OrderStateError, PaymentStateError,
} from './errors.js';
import { score, type FraudSignals } from './fraud.js';
import { id_random_bytes, make_id } from './ids.js';
import {
  check_seats, event_of, expiries_per_timer_run_max, forget_tombstones, hold_created_event,
  hold_deadline_ms, hold_expired_event, hold_of, hold_record, plan_hold, pop_due_holds,
  release_hold,
  validate_user_id, type PartitionRecord, type ReleaseReply, type ReleaseRequest,
} from './inventory.js';
import * as L from './limits.js';
import type { EventState, Hold, PartitionState } from './partition_state.js';
import { check_promo, price, usable_promo, type Price } from './pricing.js';
import { queue_gate } from './queue_gate.js';
import { is_sold, promo_key, type Order, type Payment } from './purchase_state.js';

export interface CreateDraftRequest {
  event_id: string; seat_ids: string[]; user_id: string; promo_code: string; idempotency_key: string;
  trace_id: string;
  /** The waiting room's `admission-token` ('' / absent: none) and whether a service asks. */
  admission_token?: string; by_service?: boolean;
}
export interface ScoreRequest { order_id: string; user_id: string; signals: FraudSignals }
export interface ScoreReply { risk_score: number; decision: string; reasons: string[] }
export interface ConfirmOrderRequest { order_id: string; payment_id: string; actor_user_id: string | null; trace_id: string }
export interface GetOrderRequest { order_id: string; actor_user_id: string | null }
export interface ListOrdersRequest { user_id: string; before_ms: number; before_order_id: string; limit: number }
export interface CreateDraftFromHoldRequest {
  hold_id: string; promo_code: string; idempotency_key: string;
  /** null: a service acting for anyone. */ actor_user_id: string | null; trace_id: string;
}

/** The seed's Order message, numbers as numbers (the gRPC layer writes int64 as strings). */
export interface OrderView {
  id: string;
  status: string;
  created_at_unix: number;
  updated_at_unix: number;
  total: { amount_micros: number; currency: string };
}

export interface OrderDetails extends OrderView {
  event_id: string;
  user_id: string;
  seat_ids: string[];
  hold_id: string;
  hold_expires_at_unix: number;
  promo_code: string;
  subtotal: { amount_micros: number; currency: string };
  payment_id: string;
  payment_status: string;
  captured_micros: number;
  refunded_micros: number;
  fraud_decision: string;
  risk_score: number;
  created_at_ms: number;
  /** Seats (or places) of seat_ids returned to sale (ReturnSeats). */
  returned_seat_ids: string[];
  /** ExtendHold calls of the order's current hold; how many more it may have (0 once the hold
   *  is no longer active). */
  hold_extensions: number;
  hold_extensions_left: number;
}

/** What the purchase orchestrator must do after ConfirmOrder's decision. */
export type ConfirmOrderReply =
  | { k: 'done'; order: OrderView }
  | { k: 'capture'; order: OrderView; payment_id: string; gateway_ref: string; amount_micros: number; currency: string }
  | { k: 'void_then_fail'; payment_id: string; gateway_ref: string; message: string };

export function order_view(order: Order, overrides: Partial<Pick<Order, 'status' | 'updated_ms'>> = {}): OrderView {
  const updated_ms = overrides.updated_ms ?? order.updated_ms;
  return {
    id: order.order_id,
    status: overrides.status ?? order.status,
    created_at_unix: Math.floor(order.created_ms / 1000),
    updated_at_unix: Math.floor(updated_ms / 1000),
    total: { amount_micros: order.total_micros, currency: order.currency },
  };
}

/** The order, if it exists and `actor` may see it; someone else's answers like a missing one. */
export function owned_order(state: PartitionState, order_id: string, actor_user_id: string | null): Order {
  const order = state.purchase.orders.get(order_id);
  if (order === undefined || (actor_user_id !== null && actor_user_id !== order.user_id)) {
    throw new OrderNotFoundError(`order ${order_id} does not exist`);
  }
  return order;
}

function validate_idempotency_key(key: unknown, field: string): string {
  if (typeof key !== 'string') throw new InvalidArgumentError(`${field} must be a string`);
  if (key.length > L.idempotency_key_length_max) throw new InvalidArgumentError(`${field} is longer than ${L.idempotency_key_length_max} characters`);
  if (key !== '' && !L.id_pattern.test(key)) throw new InvalidArgumentError(`${field} may contain only letters, digits and . _ : -`);
  return key;
}

function validate_promo_code(promo_code: unknown): string {
  if (typeof promo_code !== 'string' || promo_code.length > L.promo_code_length_max || (promo_code !== '' && !L.promo_code_pattern.test(promo_code))) {
    throw new InvalidArgumentError(`promo_code must be up to ${L.promo_code_length_max} of A-Z 0-9 _ -`);
  }
  return promo_code;
}

/** A draft's price: `seats` at the event's tiers, less the promo code ('' for none) if it is
 *  usable now (CreateDraft and CreateDraftFromHold share every promo rule). */
function price_draft(
  state: PartitionState, event: EventState, seats: number[], promo_code: string, now_ms: number,
): Price {
  const spec = event.spec;
  const uses = state.purchase.promo_uses.get(promo_key(spec.event_id, promo_code)) ?? 0;
  const promo = promo_code === '' ? null : usable_promo(spec, promo_code, uses, now_ms);
  return price(spec, event.map, seats, promo);
}

export function decide_create_draft(
  state: PartitionState, req: CreateDraftRequest, ctx: DecideContext,
): Decision<PartitionRecord, OrderView> {
  const user_id = validate_user_id(req.user_id);
  const key = validate_idempotency_key(req.idempotency_key, 'idempotency_key');
  const promo_code = validate_promo_code(req.promo_code);
  // A key names one checkout of one event by one user. Scoped to the event (whose partition
  // holds it) so the answer never depends on which partition another event landed in: the
  // same key on another event is another checkout.
  const draft_key = key === '' ? '' : `${user_id}\u0000${req.event_id}\u0000${key}`;
  const earlier_id = draft_key === '' ? undefined : state.purchase.order_by_draft_key.get(draft_key);
  if (earlier_id !== undefined) {
    // A retry: the same request gets the same order (as it is now); another request is refused.
    const earlier = state.purchase.orders.get(earlier_id);
    assert(earlier !== undefined, 'a draft key names an order');
    const event = event_of(state, earlier.event_id);
    const asked = Array.isArray(req.seat_ids) ? req.seat_ids.map((s) => (typeof s === 'string' ? event.map.index_of(s) : -1)) : [];
    const same = earlier.event_id === req.event_id && earlier.promo_code === promo_code
      && asked.length === earlier.seats.length && [...asked].sort((a, b) => a - b).join() === [...earlier.seats].sort((a, b) => a - b).join();
    if (!same) throw new IdempotencyKeyReusedError(`idempotency_key ${key} was used for a different CreateDraft (order ${earlier_id})`);
    return read(order_view(earlier));
  }
  // After the retry's answer: a retry of a draft its token made needs no second token.
  const admitted = queue_gate(state.queues, req, ctx.now_ms);
  const planned = plan_hold(state, { event_id: req.event_id, seat_ids: req.seat_ids, hold_ttl_seconds: 0, user_id, trace_id: req.trace_id }, ctx);
  const spec = planned.event.spec;
  const priced = price_draft(state, planned.event, planned.record.seats, promo_code, ctx.now_ms);
  const order_id = make_id('order', state.partition, ctx.random_bytes(id_random_bytes));
  assert(!state.purchase.orders.has(order_id), 'order ids never collide');
  assert(priced.total_micros <= priced.subtotal_micros, 'a promo never raises the price');
  const records: PartitionRecord[] = [...admitted, planned.record, {
    t: 'order_created', order_id, event_id: spec.event_id, user_id, hold_id: planned.record.hold_id,
    hold_expires_at_ms: planned.record.expires_at_ms, seats: planned.record.seats, subtotal_micros: priced.subtotal_micros,
    total_micros: priced.total_micros, currency: spec.currency, promo_code, draft_key, at_ms: ctx.now_ms, trace_id: req.trace_id,
  }];
  const reply: OrderView = {
    id: order_id, status: 'DRAFT', created_at_unix: Math.floor(ctx.now_ms / 1000), updated_at_unix: Math.floor(ctx.now_ms / 1000),
    total: { amount_micros: priced.total_micros, currency: spec.currency },
  };
  return { records, outbox: [hold_created_event(planned)], reply };
}

/** CreateDraftFromHold: a draft of the seats (or standing places) of an active hold the caller
 *  owns, priced like CreateDraft's. The hold carries the draft as it is: no new hold, no second
 *  HoldCreated; its expiry is the draft's. */
export function decide_create_draft_from_hold(
  state: PartitionState, req: CreateDraftFromHoldRequest, ctx: DecideContext,
): Decision<PartitionRecord, OrderView> {
  const hold = hold_of(state, req.hold_id);
  // Someone else's hold answers like a missing one, as ReleaseHold does.
  if (req.actor_user_id !== null && req.actor_user_id !== hold.user_id) {
    throw new HoldNotFoundError(
      `hold ${req.hold_id} does not exist (or was forgotten after it ended)`,
    );
  }
  const key = validate_idempotency_key(req.idempotency_key, 'idempotency_key');
  const promo_code = validate_promo_code(req.promo_code);
  // Scoped as CreateDraft's (user, event, key): one key names one checkout, whichever call
  // made it.
  const draft_key = key === '' ? '' : `${hold.user_id}\u0000${hold.event_id}\u0000${key}`;
  const earlier_id = draft_key === ''
    ? undefined : state.purchase.order_by_draft_key.get(draft_key);
  if (earlier_id !== undefined) {
    const earlier = state.purchase.orders.get(earlier_id);
    assert(earlier !== undefined, 'a draft key names an order');
    const same = earlier.event_id === hold.event_id && earlier.promo_code === promo_code
      && same_seats(earlier.seats, hold.seats);
    if (!same) {
      throw new IdempotencyKeyReusedError(
        `idempotency_key ${key} was used for a different draft (order ${earlier_id})`,
      );
    }
    return read(order_view(earlier));
  }
  const carried = state.purchase.order_by_hold.get(hold.hold_id)
    ?? (hold.order_id !== '' ? hold.order_id : undefined);
  if (carried !== undefined) {
    throw new HoldNotActiveError(`hold ${req.hold_id} already carries order ${carried}; `
      + 'use that order (or retry with its idempotency_key)');
  }
  if (hold.status !== 'active' || ctx.now_ms >= hold.expires_at_ms) {
    const status = hold.status === 'active' ? 'expired' : hold.status;
    throw new HoldNotActiveError(`hold ${req.hold_id} is ${status}; reserve the seats again`);
  }
  const event = event_of(state, hold.event_id);
  const priced = price_draft(state, event, hold.seats, promo_code, ctx.now_ms);
  const order_id = make_id('order', state.partition, ctx.random_bytes(id_random_bytes));
  assert(!state.purchase.orders.has(order_id), 'order ids never collide');
  const records: PartitionRecord[] = [{
    t: 'order_created', order_id, event_id: hold.event_id, user_id: hold.user_id,
    hold_id: hold.hold_id, hold_expires_at_ms: hold.expires_at_ms, seats: [...hold.seats],
    subtotal_micros: priced.subtotal_micros, total_micros: priced.total_micros,
    currency: event.spec.currency, promo_code, draft_key, at_ms: ctx.now_ms, trace_id: req.trace_id,
  }];
  const at_unix = Math.floor(ctx.now_ms / 1000);
  const reply: OrderView = {
    id: order_id, status: 'DRAFT', created_at_unix: at_unix, updated_at_unix: at_unix,
    total: { amount_micros: priced.total_micros, currency: event.spec.currency },
  };
  return { records, outbox: [], reply };
}

function same_seats(a: number[], b: number[]): boolean {
  const sorted = (x: number[]): string => [...x].sort((p, q) => p - q).join();
  return a.length === b.length && sorted(a) === sorted(b);
}

export function decide_score(
  state: PartitionState, req: ScoreRequest, ctx: DecideContext,
): Decision<PartitionRecord, ScoreReply> {
  const order = owned_order(state, req.order_id, null);
  if (order.user_id !== req.user_id) throw new InvalidArgumentError(`order ${req.order_id} is not an order of user_id ${req.user_id}`);
  const fraud = score(req.signals, { total_micros: order.total_micros, seat_count: order.seats.length }, ctx.now_ms);
  return { records: [{ t: 'fraud_scored', order_id: order.order_id, fraud }], outbox: [], reply: { risk_score: fraud.risk_score, decision: fraud.decision, reasons: fraud.reasons } };
}

function order_confirmed_event(order: Order, now_ms: number): OutboxEntry {
  return {
    type: 'OrderConfirmed',
    key: order.order_id,
    payload: {
      order_id: order.order_id, user_id: order.user_id, total: { amount_micros: order.total_micros, currency: order.currency },
      confirmed_at_unix: Math.floor(now_ms / 1000), trace_id: order.trace_id,
    },
  };
}

export function decide_confirm_order(
  state: PartitionState, req: ConfirmOrderRequest, ctx: DecideContext,
): Decision<PartitionRecord, ConfirmOrderReply> {
  const order = owned_order(state, req.order_id, req.actor_user_id);
  const payment = state.purchase.payments.get(req.payment_id);
  if (payment === undefined || payment.order_id !== order.order_id) {
    throw new PaymentStateError(`payment ${req.payment_id} is not a payment of order ${order.order_id}`);
  }
  if (is_sold(order)) {
    // A repeat: the same answer (finishing a capture a crash or outage interrupted).
    if (order.payment_id !== payment.payment_id) throw new OrderStateError(`order ${order.order_id} is already confirmed with payment ${order.payment_id}`);
    const reply: ConfirmOrderReply = payment.status === 'CAPTURING'
      ? { k: 'capture', order: order_view(order), payment_id: payment.payment_id, gateway_ref: payment.gateway_ref, amount_micros: payment.amount_micros, currency: payment.currency }
      : { k: 'done', order: order_view(order) };
    return read(reply);
  }
  if (order.status === 'CANCELLED') throw new OrderStateError(`order ${order.order_id} was cancelled (its hold was released)`);
  if (payment.status !== 'AUTHORIZED') {
    throw new PaymentStateError(`payment ${payment.payment_id} is ${payment.status}; ConfirmOrder needs an AUTHORIZED payment`);
  }
  assert(order.status === 'DRAFT' || order.status === 'EXPIRED', 'only drafts (or lapsed ones) reach allocation');
  assert(payment.amount_micros === order.total_micros && payment.currency === order.currency, 'an authorization covers exactly the order total');
  const hold = state.holds.get(order.hold_id);
  const live = order.status === 'DRAFT' && hold !== undefined && hold.status === 'active';
  // A draft's hold stays active until its end ends the draft (end_draft, same decision).
  assert(live || order.status === 'EXPIRED', 'a draft has its active hold');
  if (live && ctx.now_ms < hold.expires_at_ms) {
    const records: PartitionRecord[] = [
      { t: 'hold_confirmed', hold_id: hold.hold_id, order_id: order.order_id, at_ms: ctx.now_ms },
    ];
    return sell(order, payment, hold, { records, outbox: [] }, ctx.now_ms);
  }
  return decide_retake(state, order, payment, live ? hold : null, ctx);
}

/** Sells `order` the seats of `hold` (confirmed by `d.records` already) and says to capture. */
function sell(
  order: Order, payment: Payment, hold: { hold_id: string; expires_at_ms: number },
  d: { records: PartitionRecord[]; outbox: OutboxEntry[] }, now_ms: number,
): Decision<PartitionRecord, ConfirmOrderReply> {
  assert(d.records.at(-1)?.t === 'hold_confirmed', 'the seats are allocated before the sale');
  d.records.push({
    t: 'order_confirmed', order_id: order.order_id, payment_id: payment.payment_id,
    hold_id: hold.hold_id, hold_expires_at_ms: hold.expires_at_ms, at_ms: now_ms,
  });
  d.outbox.push(order_confirmed_event(order, now_ms));
  const reply: ConfirmOrderReply = {
    k: 'capture', order: order_view(order, { status: 'CONFIRMED', updated_ms: now_ms }),
    payment_id: payment.payment_id, gateway_ref: payment.gateway_ref,
    amount_micros: payment.amount_micros, currency: payment.currency,
  };
  return { records: d.records, outbox: d.outbox, reply };
}

/**
 * ConfirmOrder after the draft's hold expired: the seats are taken again under a new hold if a
 * new hold of them would be allowed now (retake_refusal), else the authorization is voided.
 * `lapsed`: the draft's hold when its timer has not run yet; it is expired here, with the draft.
 */
function decide_retake(
  state: PartitionState, order: Order, payment: Payment, lapsed: Hold | null, ctx: DecideContext,
): Decision<PartitionRecord, ConfirmOrderReply> {
  const event = event_of(state, order.event_id);
  const records: PartitionRecord[] = [];
  const outbox: OutboxEntry[] = [];
  if (lapsed !== null) {
    records.push({ t: 'hold_expired', hold_id: lapsed.hold_id, at_ms: ctx.now_ms });
    outbox.push(hold_expired_event(lapsed, ctx.now_ms));
    records.push(...end_draft(state, lapsed.hold_id, 'order_expired', ctx.now_ms));
  }
  const why = retake_refusal(state, event, order, lapsed, ctx.now_ms);
  if (why === null) {
    const hold = hold_record(state, event, {
      user_id: order.user_id, seats: order.seats, ttl_s: L.hold_ttl_seconds_default,
      trace_id: order.trace_id,
    }, ctx);
    records.push(hold, {
      t: 'hold_confirmed', hold_id: hold.hold_id, order_id: order.order_id, at_ms: ctx.now_ms,
    });
    return sell(order, payment, hold, { records, outbox }, ctx.now_ms);
  }
  // No money is kept for seats we cannot give: the authorization is voided.
  assert(!records.some((r) => r.t === 'order_confirmed' || r.t === 'hold_confirmed'),
    'a refused confirmation sells nothing');
  records.push({ t: 'payment_voiding', payment_id: payment.payment_id, at_ms: ctx.now_ms });
  // The draft expired in this decision (its timer had not run): say so on the bus, as the timer
  // would have. Had it run, its OrderExpired is out already.
  if (lapsed !== null) outbox.push(order_expired_event(order, ctx.now_ms));
  const reply: ConfirmOrderReply = {
    k: 'void_then_fail', payment_id: payment.payment_id, gateway_ref: payment.gateway_ref,
    message: `order ${order.order_id} expired: its hold lapsed before ConfirmOrder and ${why}; `
      + `the authorization of payment ${payment.payment_id} is voided (no money is kept); `
      + 'create a new draft',
  };
  return { records, outbox, reply };
}

/**
 * Why a lapsed draft's seats cannot be retaken now (null: they can): the rules a new hold of them
 * meets (check_seats: seats free, max_seats_per_user; check_promo: the code unexpired and not used
 * up). holds_per_user_max does not apply: the new hold is confirmed in the same decision, so it
 * never counts as an active hold.
 */
function retake_refusal(
  state: PartitionState, event: EventState, order: Order, lapsed: Hold | null, now_ms: number,
): string | null {
  const seats = check_seats(event, order.user_id, order.seats, lapsed);
  if (seats.taken.length > 0) {
    return `${seats.taken.length} of its seats were taken after the hold expired`;
  }
  if (!seats.within_user_limit) {
    const max = event.spec.max_seats_per_user;
    return `the user now has other seats of the event, and max_seats_per_user is ${max}`;
  }
  if (order.promo_code === '') return null;
  // The order's own use is not counted: it was returned when the draft expired (at the timer,
  // or in this decision).
  const counted = state.purchase.promo_uses.get(promo_key(order.event_id, order.promo_code)) ?? 0;
  const uses = counted - (order.promo_counted ? 1 : 0);
  const promo = check_promo(event.spec, order.promo_code, uses, now_ms);
  assert(promo.k !== 'unknown', 'an order\'s promo code stays defined (event specs never change)');
  if (promo.k === 'used_up') {
    return `promo code ${order.promo_code} was used up after the hold expired`;
  }
  return promo.k === 'expired' ? promo.message : null;
}

export function order_details(state: PartitionState, order: Order): OrderDetails {
  const event = event_of(state, order.event_id);
  const payment: Payment | undefined = state.purchase.payments.get(order.payment_id !== '' ? order.payment_id : order.payment_ids.at(-1) ?? '');
  const hold = state.holds.get(order.hold_id);
  return {
    ...order_view(order),
    event_id: order.event_id,
    user_id: order.user_id,
    seat_ids: order.seats.map((s) => event.map.id_of(s)),
    hold_id: order.hold_id,
    hold_expires_at_unix: Math.floor(order.hold_expires_at_ms / 1000),
    promo_code: order.promo_code,
    subtotal: { amount_micros: order.subtotal_micros, currency: order.currency },
    payment_id: payment?.payment_id ?? '',
    payment_status: payment?.status ?? '',
    captured_micros: payment?.captured_micros ?? 0,
    refunded_micros: payment?.refunded_micros ?? 0,
    fraud_decision: order.fraud?.decision ?? '',
    risk_score: order.fraud?.risk_score ?? 0,
    created_at_ms: order.created_ms,
    returned_seat_ids: order.returned.map((s) => event.map.id_of(s)),
    hold_extensions: hold?.extensions ?? 0,
    hold_extensions_left: hold?.status === 'active' ? L.hold_extensions_max - hold.extensions : 0,
  };
}

export function get_order(state: PartitionState, req: GetOrderRequest): OrderDetails {
  return order_details(state, owned_order(state, req.order_id, req.actor_user_id));
}

/** The user's orders in this partition, newest first, strictly before the cursor (created_ms,
 *  order_id), at most `limit`. The caller merges partitions. */
export function list_orders(state: PartitionState, req: ListOrdersRequest): OrderDetails[] {
  assert(req.limit > 0 && req.limit <= L.list_orders_page_max, 'page size within list_orders_page_max');
  const ids = state.purchase.orders_by_user.get(req.user_id) ?? [];
  const found: Order[] = [];
  // orders_by_user is in creation order (created_ms never decreases), so walking backwards is
  // newest first; orders of the same millisecond are then ordered by id, like the merge does.
  for (let i = ids.length - 1; i >= 0; i--) {
    const order = state.purchase.orders.get(ids[i]!)!;
    const last = found.at(-1);
    if (found.length >= req.limit && last !== undefined && order.created_ms < last.created_ms) break;
    const before = order.created_ms < req.before_ms || (order.created_ms === req.before_ms && order.order_id < req.before_order_id);
    if (before) found.push(order);
  }
  const out = found.map((o) => order_details(state, o)).sort(newest_first).slice(0, req.limit);
  assert(out.length <= req.limit, 'page bounded');
  return out;
}

/** Page order of ListOrders, here and where the orchestrator merges partitions: newest first,
 *  then by id within a millisecond. */
export function newest_first(a: OrderDetails, b: OrderDetails): number {
  if (a.created_at_ms !== b.created_at_ms) return b.created_at_ms - a.created_at_ms;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

// ---------------------------------------------------------------------------------------------
// What a hold's end does to its draft, and the partition's timers

/** Records that end the draft order carried by `hold_id`, if any: the order is cancelled
 *  (voiding any authorization it has) or expired (an authorization stays confirmable for
 *  authorization_grace_ms: ConfirmOrder may retake free seats). */
export function end_draft(
  state: PartitionState, hold_id: string, t: 'order_cancelled' | 'order_expired', now_ms: number,
): PartitionRecord[] {
  const order_id = state.purchase.order_by_hold.get(hold_id);
  if (order_id === undefined) return [];
  const order = state.purchase.orders.get(order_id);
  assert(order !== undefined && order.hold_id === hold_id, 'a hold\'s order carries it');
  if (order.status !== 'DRAFT') return [];
  const records: PartitionRecord[] = [{ t, order_id, at_ms: now_ms }];
  if (t === 'order_cancelled') {
    for (const payment_id of order.payment_ids) {
      const payment = state.purchase.payments.get(payment_id);
      if (payment?.status === 'AUTHORIZED') {
        records.push({ t: 'payment_voiding', payment_id, at_ms: now_ms });
      }
    }
  }
  return records;
}

/** ReleaseHold: the hold's seats go free (inventory.ts's release_hold), and releasing a draft's
 *  hold cancels the draft; an authorization it had is voided. */
export function decide_release(
  state: PartitionState, req: ReleaseRequest, ctx: DecideContext,
): Decision<PartitionRecord, ReleaseReply> {
  const released = release_hold(state, req, ctx);
  const record = released.records[0];
  if (record === undefined) return released;
  assert(record.t === 'hold_released' && released.records.length === 1,
    'a release journals one record');
  released.records.push(...end_draft(state, record.hold_id, 'order_cancelled', ctx.now_ms));
  return released;
}

function order_expired_event(order: Order, now_ms: number): OutboxEntry {
  return {
    type: 'OrderExpired',
    key: order.order_id,
    payload: {
      order_id: order.order_id, user_id: order.user_id, event_id: order.event_id,
      expired_at_unix: Math.floor(now_ms / 1000), trace_id: order.trace_id,
    },
  };
}

/** The partition's timer run (fire_timers): due holds expire, and the drafts they carry with
 *  them; tombstones, idempotency keys and ended orders past their retention are forgotten.
 *  Every sweep is bounded, so a run after a long outage stays short; the host runs again. */
export function decide_timers(
  state: PartitionState, ctx: DecideContext,
): Effects<PartitionRecord> {
  const records: PartitionRecord[] = [];
  const outbox: OutboxEntry[] = [];
  for (const hold of pop_due_holds(state, ctx.now_ms)) {
    records.push({ t: 'hold_expired', hold_id: hold.hold_id, at_ms: ctx.now_ms });
    outbox.push(hold_expired_event(hold, ctx.now_ms));
    const ended = end_draft(state, hold.hold_id, 'order_expired', ctx.now_ms);
    records.push(...ended);
    const expired = ended[0];
    if (expired !== undefined) {
      assert(expired.t === 'order_expired', 'an expired hold expires its draft');
      outbox.push(order_expired_event(owned_order(state, expired.order_id, null), ctx.now_ms));
    }
  }
  records.push(...forget_tombstones(state, ctx.now_ms));
  records.push(...forget_idempotency_keys(state, ctx.now_ms));
  records.push(...forget_ended_orders(state, ctx.now_ms));
  return { records, outbox };
}

/** The idempotency_forgotten record of the keys past retention at `now_ms` (bounded), if any. */
function forget_idempotency_keys(state: PartitionState, now_ms: number): PartitionRecord[] {
  const keys: string[] = [];
  for (const key of state.purchase.idempotency_queue) {
    const entry = state.purchase.idempotency.get(key);
    assert(entry !== undefined, 'queued idempotency keys are stored');
    if (entry.forget_at_ms > now_ms || keys.length >= expiries_per_timer_run_max) break;
    keys.push(key);
  }
  return keys.length > 0 ? [{ t: 'idempotency_forgotten', keys }] : [];
}

/** The orders_forgotten record of the ended orders past retention at `now_ms` (bounded), if any:
 *  each leaves the queue; only those still ended and settled are forgotten. */
function forget_ended_orders(state: PartitionState, now_ms: number): PartitionRecord[] {
  let dequeued = 0;
  const order_ids: string[] = [];
  for (const entry of state.purchase.ended_orders) {
    if (entry.forget_at_ms > now_ms || dequeued >= L.orders_forgotten_per_run_max) break;
    dequeued++;
    const order = state.purchase.orders.get(entry.order_id);
    assert(order !== undefined, 'a queued ended order exists');
    const ended = order.status === 'EXPIRED' || order.status === 'CANCELLED';
    // An order with a gateway call still owed (the gateway has been down a whole day) is kept.
    const settled = order.payment_ids.every((id) => !state.purchase.open_payments.has(id));
    if (ended && settled) order_ids.push(entry.order_id);
  }
  assert(order_ids.length <= dequeued, 'only dequeued orders are forgotten');
  return dequeued > 0 ? [{ t: 'orders_forgotten', dequeued, order_ids }] : [];
}

/** When the timers must run next (the host arms one timer); null: nothing is ever due. */
export function next_deadline_ms(state: PartitionState): number | null {
  const p = state.purchase;
  const candidates = [
    hold_deadline_ms(state),
    p.idempotency.get(p.idempotency_queue[0] ?? '')?.forget_at_ms ?? null,
    p.ended_orders[0]?.forget_at_ms ?? null,
  ].filter((t): t is number => t !== null);
  return candidates.length === 0 ? null : Math.min(...candidates);
}

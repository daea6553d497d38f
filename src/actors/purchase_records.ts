// Journal records of purchases and the only code that applies them. Like inventory.ts's
// apply(), the same function runs live and on replay.
import { assert } from '../util/assert.js';
import * as L from './limits.js';
import {
  index_order, is_open, promo_key, type FraudDecision, type Order, type Payment, type PurchaseState,
} from './purchase_state.js';

export type PurchaseRecord =
  | { t: 'order_created'; order_id: string; event_id: string; user_id: string; hold_id: string; hold_expires_at_ms: number; seats: number[]; subtotal_micros: number; total_micros: number; currency: string; promo_code: string; draft_key: string; at_ms: number; trace_id: string }
  | { t: 'order_cancelled'; order_id: string; at_ms: number }
  | { t: 'order_expired'; order_id: string; at_ms: number }
  | { t: 'fraud_scored'; order_id: string; fraud: FraudDecision }
  | { t: 'payment_started'; payment_id: string; order_id: string; amount_micros: number; currency: string; at_ms: number; trace_id: string }
  | { t: 'payment_authorized'; payment_id: string; gateway_ref: string; at_ms: number }
  | { t: 'payment_declined'; payment_id: string; reason: string; at_ms: number }
  /** Seats allocated to the order (hold_confirmed precedes it), payment → CAPTURING. */
  | { t: 'order_confirmed'; order_id: string; payment_id: string; hold_id: string; hold_expires_at_ms: number; at_ms: number }
  | { t: 'payment_captured'; payment_id: string; at_ms: number }
  | { t: 'payment_voiding'; payment_id: string; at_ms: number }
  | { t: 'payment_voided'; payment_id: string; at_ms: number }
  | { t: 'refund_started'; refund_id: string; payment_id: string; amount_micros: number; idempotency_key: string; at_ms: number }
  | { t: 'refund_succeeded'; refund_id: string; at_ms: number }
  | { t: 'idempotency_stored'; key: string; fingerprint: string; reply: unknown; at_ms: number }
  | { t: 'idempotency_forgotten'; keys: string[] }
  /** The first `dequeued` ended-order entries leave the queue; of those, `order_ids` are
   *  forgotten with their payments (the others were sold since, or still owe a gateway call). */
  | { t: 'orders_forgotten'; dequeued: number; order_ids: string[] };

export function is_purchase_record(record: { t: string }): record is PurchaseRecord {
  return purchase_record_types.has(record.t);
}

const purchase_record_types = new Set([
  'order_created', 'order_cancelled', 'order_expired', 'fraud_scored', 'payment_started', 'payment_authorized',
  'payment_declined', 'order_confirmed', 'payment_captured', 'payment_voiding', 'payment_voided', 'refund_started',
  'refund_succeeded', 'idempotency_stored', 'idempotency_forgotten', 'orders_forgotten',
]);

function order_of(p: PurchaseState, order_id: string): Order {
  const order = p.orders.get(order_id);
  assert(order !== undefined, `order ${order_id} exists`);
  return order;
}

function payment_of(p: PurchaseState, payment_id: string): Payment {
  const payment = p.payments.get(payment_id);
  assert(payment !== undefined, `payment ${payment_id} exists`);
  return payment;
}

function count_promo(p: PurchaseState, order: Order, delta: 1 | -1): void {
  if (order.promo_code === '') return;
  assert(order.promo_counted === (delta === -1), 'a promo use is counted once and returned once');
  const key = promo_key(order.event_id, order.promo_code);
  const uses = (p.promo_uses.get(key) ?? 0) + delta;
  assert(uses >= 0, 'promo uses never negative');
  // No zero entries: the map then equals what a restore rebuilds from the orders.
  if (uses === 0) p.promo_uses.delete(key);
  else p.promo_uses.set(key, uses);
  order.promo_counted = delta === 1;
}

function set_payment_status(p: PurchaseState, payment: Payment, status: Payment['status'], at_ms: number): void {
  payment.status = status;
  payment.updated_ms = at_ms;
  if (is_open(payment)) p.open_payments.add(payment.payment_id);
  else p.open_payments.delete(payment.payment_id);
}

function forget_order(p: PurchaseState, order_id: string): void {
  const order = order_of(p, order_id);
  assert(order.status === 'EXPIRED' || order.status === 'CANCELLED', 'only ended drafts are forgotten');
  assert(!order.promo_counted, 'an ended draft holds no promo use');
  for (const payment_id of order.payment_ids) {
    const payment = payment_of(p, payment_id);
    assert(!p.open_payments.has(payment_id) && payment.captured_micros === 0, 'no money or gateway call is forgotten');
    p.payments.delete(payment_id);
  }
  if (p.order_by_hold.get(order.hold_id) === order_id) p.order_by_hold.delete(order.hold_id);
  if (order.draft_key !== '' && p.order_by_draft_key.get(order.draft_key) === order_id) p.order_by_draft_key.delete(order.draft_key);
  const list = p.orders_by_user.get(order.user_id);
  assert(list !== undefined, 'an order is listed for its user');
  list.splice(list.indexOf(order_id), 1);
  if (list.length === 0) p.orders_by_user.delete(order.user_id);
  p.orders.delete(order_id);
}

type Rec<T extends PurchaseRecord['t']> = Extract<PurchaseRecord, { t: T }>;

export function apply_purchase(p: PurchaseState, record: PurchaseRecord): void {
  switch (record.t) {
    case 'order_created': return apply_order_created(p, record);
    case 'order_cancelled':
    case 'order_expired': return apply_order_ended(p, record);
    case 'fraud_scored': {
      order_of(p, record.order_id).fraud = record.fraud;
      return;
    }
    case 'payment_started': return apply_payment_started(p, record);
    case 'payment_authorized': return apply_payment_authorized(p, record);
    case 'payment_declined': return apply_payment_declined(p, record);
    case 'order_confirmed': return apply_order_confirmed(p, record);
    case 'payment_captured': return apply_payment_captured(p, record);
    case 'payment_voiding': return apply_payment_voiding(p, record);
    case 'payment_voided': return apply_payment_voided(p, record);
    case 'refund_started': return apply_refund_started(p, record);
    case 'refund_succeeded': return apply_refund_succeeded(p, record);
    case 'idempotency_stored': return apply_idempotency_stored(p, record);
    case 'orders_forgotten': return apply_orders_forgotten(p, record);
    case 'idempotency_forgotten': return apply_idempotency_forgotten(p, record);
  }
}

function apply_order_created(p: PurchaseState, record: Rec<'order_created'>): void {
  assert(!p.orders.has(record.order_id), 'order created once');
  const order: Order = {
    order_id: record.order_id, event_id: record.event_id, user_id: record.user_id,
    hold_id: record.hold_id, hold_expires_at_ms: record.hold_expires_at_ms, seats: record.seats,
    subtotal_micros: record.subtotal_micros, total_micros: record.total_micros,
    currency: record.currency, promo_code: record.promo_code, draft_key: record.draft_key,
    status: 'DRAFT', created_ms: record.at_ms, updated_ms: record.at_ms, payment_id: '',
    payment_ids: [], fraud: null, promo_counted: false, trace_id: record.trace_id, returned: [],
  };
  index_order(p, order);
  count_promo(p, order, 1);
  assert(p.order_by_hold.get(order.hold_id) === order.order_id, 'a new order is found by its hold');
}

function apply_order_ended(
  p: PurchaseState, record: Rec<'order_cancelled' | 'order_expired'>,
): void {
  const order = order_of(p, record.order_id);
  const cancelled = record.t === 'order_cancelled';
  assert(order.status === 'DRAFT', `only a draft is ${cancelled ? 'cancelled' : 'expired'}`);
  order.status = cancelled ? 'CANCELLED' : 'EXPIRED';
  order.updated_ms = record.at_ms;
  const forget_at_ms = record.at_ms + L.ended_order_retention_ms;
  p.ended_orders.push({ order_id: order.order_id, forget_at_ms });
  // The promo use is returned: only drafts in progress and sales count against the cap.
  if (order.promo_counted) count_promo(p, order, -1);
  assert(!order.promo_counted, 'an ended draft holds no promo use');
}

function apply_payment_started(p: PurchaseState, record: Rec<'payment_started'>): void {
  assert(!p.payments.has(record.payment_id), 'payment started once');
  const order = order_of(p, record.order_id);
  assert(order.status === 'DRAFT' && order.payment_ids.length < L.payments_per_order_max,
    'payments start on drafts, within the cap');
  const payment: Payment = {
    payment_id: record.payment_id, order_id: record.order_id,
    amount_micros: record.amount_micros, currency: record.currency, status: 'PENDING',
    gateway_ref: '', decline_reason: '', created_ms: record.at_ms, updated_ms: record.at_ms,
    authorized_ms: 0, captured_micros: 0, refunded_micros: 0, refund_pending_micros: 0,
    refunds: [], trace_id: record.trace_id,
  };
  p.payments.set(payment.payment_id, payment);
  order.payment_ids.push(payment.payment_id);
  set_payment_status(p, payment, 'PENDING', record.at_ms);
  assert(p.open_payments.has(payment.payment_id), 'a pending payment is open');
}

function apply_payment_authorized(p: PurchaseState, record: Rec<'payment_authorized'>): void {
  const payment = payment_of(p, record.payment_id);
  assert(payment.status === 'PENDING', 'only a pending payment is authorized');
  payment.gateway_ref = record.gateway_ref;
  payment.authorized_ms = record.at_ms;
  set_payment_status(p, payment, 'AUTHORIZED', record.at_ms);
}

function apply_payment_declined(p: PurchaseState, record: Rec<'payment_declined'>): void {
  const payment = payment_of(p, record.payment_id);
  assert(payment.status === 'PENDING', 'only a pending payment is declined');
  payment.decline_reason = record.reason;
  set_payment_status(p, payment, 'DECLINED', record.at_ms);
  assert(!p.open_payments.has(payment.payment_id), 'a declined payment is settled');
}

function apply_order_confirmed(p: PurchaseState, record: Rec<'order_confirmed'>): void {
  const order = order_of(p, record.order_id);
  const payment = payment_of(p, record.payment_id);
  assert(order.status === 'DRAFT' || order.status === 'EXPIRED',
    'a draft (or an expired one, seats retaken) is confirmed');
  assert(payment.status === 'AUTHORIZED' && payment.order_id === order.order_id,
    'confirmed with its own authorized payment');
  if (!order.promo_counted && order.promo_code !== '') count_promo(p, order, 1);
  if (order.hold_id !== record.hold_id) {
    // Seats retaken under a new hold: the index maps each order's current hold only.
    p.order_by_hold.delete(order.hold_id);
    p.order_by_hold.set(record.hold_id, order.order_id);
    order.hold_id = record.hold_id;
  }
  order.hold_expires_at_ms = record.hold_expires_at_ms;
  order.status = 'CONFIRMED';
  order.payment_id = payment.payment_id;
  order.updated_ms = record.at_ms;
  set_payment_status(p, payment, 'CAPTURING', record.at_ms);
  assert(order.promo_code === '' || order.promo_counted, 'a sale counts its promo use');
}

function apply_payment_captured(p: PurchaseState, record: Rec<'payment_captured'>): void {
  const payment = payment_of(p, record.payment_id);
  assert(payment.status === 'CAPTURING', 'only a capturing payment is captured');
  payment.captured_micros = payment.amount_micros;
  set_payment_status(p, payment, 'CAPTURED', record.at_ms);
}

function apply_payment_voiding(p: PurchaseState, record: Rec<'payment_voiding'>): void {
  const payment = payment_of(p, record.payment_id);
  assert(payment.status === 'AUTHORIZED' || payment.status === 'PENDING',
    'only an authorization (or a pending one) is voided');
  set_payment_status(p, payment, 'VOIDING', record.at_ms);
}

function apply_payment_voided(p: PurchaseState, record: Rec<'payment_voided'>): void {
  const payment = payment_of(p, record.payment_id);
  assert(payment.status === 'VOIDING', 'a void completes what voiding began');
  set_payment_status(p, payment, 'VOIDED', record.at_ms);
}

function apply_refund_started(p: PurchaseState, record: Rec<'refund_started'>): void {
  const payment = payment_of(p, record.payment_id);
  assert(record.amount_micros > 0, 'a refund refunds something');
  assert(payment.refunded_micros + payment.refund_pending_micros + record.amount_micros
    <= payment.captured_micros, 'never refund more than captured');
  assert(!p.payment_by_refund.has(record.refund_id), 'refund started once');
  payment.refunds.push({
    refund_id: record.refund_id, amount_micros: record.amount_micros, status: 'PENDING',
    created_ms: record.at_ms, idempotency_key: record.idempotency_key,
  });
  payment.refund_pending_micros += record.amount_micros;
  p.payment_by_refund.set(record.refund_id, payment.payment_id);
  set_payment_status(p, payment, payment.status, record.at_ms);
  assert(p.open_payments.has(payment.payment_id), 'a payment with a pending refund is open');
}

function apply_refund_succeeded(p: PurchaseState, record: Rec<'refund_succeeded'>): void {
  const payment_id = p.payment_by_refund.get(record.refund_id);
  assert(payment_id !== undefined, 'refund exists');
  const payment = payment_of(p, payment_id);
  const refund = payment.refunds.find((r) => r.refund_id === record.refund_id);
  assert(refund !== undefined && refund.status === 'PENDING', 'a pending refund succeeds once');
  refund.status = 'SUCCEEDED';
  payment.refund_pending_micros -= refund.amount_micros;
  payment.refunded_micros += refund.amount_micros;
  assert(payment.refunded_micros <= payment.captured_micros && payment.refund_pending_micros >= 0,
    'refund accounting within captured');
  const full = payment.refunded_micros === payment.captured_micros;
  set_payment_status(p, payment, full ? 'REFUNDED' : 'PARTIALLY_REFUNDED', record.at_ms);
  const order = order_of(p, payment.order_id);
  // An order with seats returned keeps saying so (PARTIALLY_RETURNED / RETURNED): the seats are
  // the news; the payment's status says how much money went back.
  if (order.returned.length === 0) order.status = full ? 'REFUNDED' : 'PARTIALLY_REFUNDED';
  order.updated_ms = record.at_ms;
}

function apply_idempotency_stored(p: PurchaseState, record: Rec<'idempotency_stored'>): void {
  const existing = p.idempotency.get(record.key);
  if (existing === undefined) p.idempotency_queue.push(record.key);
  else assert(existing.fingerprint === record.fingerprint, 'an idempotency key keeps its request');
  // Retention counts from the first use: a retry does not extend it.
  const forget_at_ms = existing?.forget_at_ms ?? record.at_ms + L.idempotency_retention_ms;
  const entry = { fingerprint: record.fingerprint, reply: record.reply, forget_at_ms };
  p.idempotency.set(record.key, entry);
}

function apply_orders_forgotten(p: PurchaseState, record: Rec<'orders_forgotten'>): void {
  assert(record.dequeued >= record.order_ids.length && record.dequeued <= p.ended_orders.length,
    'forgotten orders come off the queue');
  const leaving = new Set(p.ended_orders.splice(0, record.dequeued).map((e) => e.order_id));
  for (const order_id of record.order_ids) {
    assert(leaving.has(order_id), 'only queued orders are forgotten');
    forget_order(p, order_id);
  }
}

function apply_idempotency_forgotten(p: PurchaseState, record: Rec<'idempotency_forgotten'>): void {
  for (const key of record.keys) {
    assert(p.idempotency_queue[0] === key,
      'idempotency keys are forgotten in the order they were stored');
    p.idempotency_queue.shift();
    p.idempotency.delete(key);
  }
}

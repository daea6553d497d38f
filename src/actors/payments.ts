// Payments: Authorize, Capture, Refund and their settlement. The gateway is outside (it is I/O
// and the actor never awaits), so each money movement is two decisions around one gateway call:
// *_begin journals the intent (PENDING, CAPTURING, VOIDING, a PENDING refund) and says what to
// call; the orchestrator (src/purchase) calls the gateway with the payment or refund id as the
// gateway's idempotency reference, then settles the outcome here. A crash between the two
// leaves an open payment that the settlement loop finishes, so money and seats always agree.
import {
  read, refuse, type DecideContext, type Decision, type OutboxEntry,
} from '../runtime/behaviour.js';
import { assert } from '../util/assert.js';
import {
  IdempotencyKeyReusedError, InvalidArgumentError, OrderStateError, PaymentNotFoundError, PaymentsPerOrderExceededError, RefundsPerPaymentExceededError,
  PaymentStateError, RefundExceedsCapturedError,
} from './errors.js';
import { score, type FraudSignals } from './fraud.js';
import { id_random_bytes, make_id } from './ids.js';
import type { PartitionRecord } from './inventory.js';
import * as L from './limits.js';
import { owned_order } from './orders.js';
import type { PartitionState } from './partition_state.js';
import { is_sold, type Order, type Payment } from './purchase_state.js';

export interface AuthorizeBeginRequest {
  order_id: string; amount_micros: number; currency: string; actor_user_id: string | null;
  /** Scoped idempotency key ('' without one). */
  idempotency_key: string; signals: FraudSignals; trace_id: string;
}
export type GatewayOutcome = { approved: true; gateway_ref: string } | { approved: false; reason: string };
export interface AuthorizeEndRequest { payment_id: string; outcome: GatewayOutcome }
export interface CaptureRequest { payment_id: string; actor_user_id: string | null }
export interface RefundBeginRequest { payment_id: string; amount_micros: number; currency: string; idempotency_key: string; trace_id: string }
export interface SettleRequest { action: 'captured' | 'voided' | 'refunded'; payment_id: string; refund_id: string; idempotency_key: string }
export interface BeginVoidRequest { payment_id: string }

/** The seed's AuthorizeResponse. */
export interface AuthorizeView { payment_id: string; status: 'AUTHORIZED' | 'DECLINED'; authorized_at_unix: number }
export interface RefundView { refund_id: string; status: string }

/** `scored`: this decision scored the order with the request's signals (there was no recorded
 *  decision), so the attempt counts toward velocity. */
export type AuthorizeReply =
  | { k: 'done'; reply: AuthorizeView; scored?: boolean }
  | { k: 'call'; payment_id: string; amount_micros: number; currency: string; scored?: boolean };
export type CaptureReply = { k: 'done'; payment_id: string; status: 'CAPTURED' } | { k: 'call'; payment_id: string; gateway_ref: string; amount_micros: number };
export type RefundReply = { k: 'done'; reply: RefundView } | { k: 'call'; refund_id: string; payment_id: string; gateway_ref: string; amount_micros: number };
/** A settled capture or void answers with the payment's status; a settled refund with the
 *  refund's (the RefundView a Refund call returns). */
export type SettleReply = { payment_id: string; status: Payment['status'] } | RefundView;
export interface BeginVoidReply { voiding: boolean; gateway_ref: string }

/** Work for the settlement loop: a gateway call whose outcome is then settled. */
export interface Settlement {
  action: 'capture' | 'void' | 'refund';
  payment_id: string;
  refund_id: string;
  gateway_ref: string;
  amount_micros: number;
  /** The payment is not VOIDING yet: call begin_void first (it re-checks eligibility). */
  begin: boolean;
}

function payment_of(state: PartitionState, payment_id: string): Payment {
  const payment = state.purchase.payments.get(payment_id);
  if (payment === undefined) throw new PaymentNotFoundError(`payment ${payment_id} does not exist`);
  return payment;
}

/** A payment whose order `actor` owns; someone else's answers like a missing one. */
function owned_payment(state: PartitionState, payment_id: string, actor_user_id: string | null): { payment: Payment; order: Order } {
  const payment = payment_of(state, payment_id);
  const order = state.purchase.orders.get(payment.order_id);
  assert(order !== undefined, 'a payment has its order');
  if (actor_user_id !== null && actor_user_id !== order.user_id) throw new PaymentNotFoundError(`payment ${payment_id} does not exist`);
  return { payment, order };
}

/** The settled answer of an authorization; an abandoned one is refused (nothing to journal). */
function authorize_view(payment: Payment): AuthorizeView {
  if (payment.authorized_ms > 0) return { payment_id: payment.payment_id, status: 'AUTHORIZED', authorized_at_unix: Math.floor(payment.authorized_ms / 1000) };
  if (payment.status === 'DECLINED') return { payment_id: payment.payment_id, status: 'DECLINED', authorized_at_unix: 0 };
  throw new PaymentStateError(
    `payment ${payment.payment_id} was abandoned (the gateway did not answer within `
    + `${L.authorization_pending_ms_max} ms, or the order ended first) and is ${payment.status}; `
    + 'authorize again with a new idempotency-key',
  );
}

export function idempotent<T>(state: PartitionState, key: string, fingerprint: string): T | undefined {
  if (key === '') return undefined;
  const entry = state.purchase.idempotency.get(key);
  if (entry === undefined) return undefined;
  if (entry.fingerprint !== fingerprint) throw new IdempotencyKeyReusedError('idempotency-key was used for a different request');
  return entry.reply as T;
}

/** `min`: 0 for Authorize (a free order, e.g. a 100 % promo, authorizes 0: the amount must equal
 *  the total anyway), 1 for a refund. */
export function check_money(amount_micros: number, currency: string, min: 0 | 1): void {
  if (!Number.isSafeInteger(amount_micros) || amount_micros < min) throw new InvalidArgumentError(`amount.amount_micros must be an integer from ${min} to 2^53 - 1, got ${amount_micros}`);
  if (!L.currency_pattern.test(currency)) throw new InvalidArgumentError('amount.currency must be an ISO 4217 code such as EUR');
}

export function decide_authorize_begin(
  state: PartitionState, req: AuthorizeBeginRequest, ctx: DecideContext,
): Decision<PartitionRecord, AuthorizeReply> {
  const order = owned_order(state, req.order_id, req.actor_user_id);
  check_money(req.amount_micros, req.currency, 0);
  const fingerprint = `authorize|${order.order_id}|${req.amount_micros}|${req.currency}`;
  const earlier = idempotent<{ payment_id: string }>(state, req.idempotency_key, fingerprint);
  if (earlier !== undefined) {
    // A retry: the first result, or the same gateway call again while it is still PENDING (the
    // payment id is the gateway's reference, so the gateway does not authorize twice).
    const payment = payment_of(state, earlier.payment_id);
    const reply: AuthorizeReply = payment.status === 'PENDING'
      ? { k: 'call', payment_id: payment.payment_id, amount_micros: payment.amount_micros, currency: payment.currency }
      : { k: 'done', reply: authorize_view(payment) };
    return read(reply);
  }
  if (order.status !== 'DRAFT') throw new OrderStateError(`order ${order.order_id} is ${order.status}; Authorize needs a DRAFT order`);
  const hold = state.holds.get(order.hold_id);
  if (hold === undefined || hold.status !== 'active' || ctx.now_ms >= hold.expires_at_ms) {
    throw new OrderStateError(`the hold of order ${order.order_id} expired; create a new draft`);
  }
  if (req.currency !== order.currency || req.amount_micros !== order.total_micros) {
    throw new InvalidArgumentError(`amount must equal the order total, ${order.total_micros} micros ${order.currency}; got ${req.amount_micros} ${req.currency}`);
  }
  for (const id of order.payment_ids) {
    const other = payment_of(state, id);
    if (other.status === 'PENDING' || other.status === 'AUTHORIZED') {
      throw new PaymentStateError(`order ${order.order_id} already has payment ${id} ${other.status}: confirm the order with it (a PENDING one is voided after ${L.authorization_pending_ms_max} ms)`);
    }
  }
  if (order.payment_ids.length >= L.payments_per_order_max) {
    throw new PaymentsPerOrderExceededError(`order ${order.order_id} already had ${order.payment_ids.length} payment attempts (payments_per_order_max); create a new draft`);
  }
  const records: PartitionRecord[] = [];
  // The latest recorded decision counts; without one, Authorize scores with what it knows.
  let fraud = order.fraud;
  const scored = fraud === null;
  if (fraud === null) {
    fraud = score(req.signals, { total_micros: order.total_micros, seat_count: order.seats.length }, ctx.now_ms);
    records.push({ t: 'fraud_scored', order_id: order.order_id, fraud });
  }
  const payment_id = make_id('pay', state.partition, ctx.random_bytes(id_random_bytes));
  assert(!state.purchase.payments.has(payment_id), 'payment ids never collide');
  records.push({ t: 'payment_started', payment_id, order_id: order.order_id, amount_micros: order.total_micros, currency: order.currency, at_ms: ctx.now_ms, trace_id: req.trace_id });
  if (req.idempotency_key !== '') records.push({ t: 'idempotency_stored', key: req.idempotency_key, fingerprint, reply: { payment_id }, at_ms: ctx.now_ms });
  if (fraud.decision === 'DECLINE') {
    records.push({ t: 'payment_declined', payment_id, reason: `fraud: ${fraud.reasons.join('; ')}`, at_ms: ctx.now_ms });
    return { records, outbox: [], reply: { k: 'done', reply: { payment_id, status: 'DECLINED', authorized_at_unix: 0 }, scored } satisfies AuthorizeReply };
  }
  const reply: AuthorizeReply = { k: 'call', payment_id, amount_micros: order.total_micros, currency: order.currency, scored };
  return { records, outbox: [], reply };
}

export function decide_authorize_end(
  state: PartitionState, req: AuthorizeEndRequest, ctx: DecideContext,
): Decision<PartitionRecord, AuthorizeReply> {
  const payment = payment_of(state, req.payment_id);
  if (payment.status !== 'PENDING') {
    // Settled meanwhile (a retry's call answered first, or the pending payment was voided).
    return read({ k: 'done', reply: authorize_view(payment) });
  }
  const order = state.purchase.orders.get(payment.order_id);
  assert(order !== undefined && order.payment_ids.includes(payment.payment_id), 'a payment belongs to its order');
  assert(payment.authorized_ms === 0 && payment.gateway_ref === '', 'a pending payment was never authorized');
  if (!req.outcome.approved) {
    const reason = req.outcome.reason;
    return {
      records: [{ t: 'payment_declined', payment_id: payment.payment_id, reason, at_ms: ctx.now_ms }],
      outbox: [],
      reply: { k: 'done', reply: { payment_id: payment.payment_id, status: 'DECLINED', authorized_at_unix: 0 } } satisfies AuthorizeReply,
    };
  }
  const records: PartitionRecord[] = [{ t: 'payment_authorized', payment_id: payment.payment_id, gateway_ref: req.outcome.gateway_ref, at_ms: ctx.now_ms }];
  if (order.status === 'CANCELLED') {
    // The buyer released the seats while the gateway answered: keep no authorization.
    records.push({ t: 'payment_voiding', payment_id: payment.payment_id, at_ms: ctx.now_ms });
    // Refused, yet the authorization and its void are journaled: the settlement loop voids it.
    return refuse(new OrderStateError(
      `order ${order.order_id} was cancelled while the payment was authorized; `
      + 'the authorization is being voided',
    ), records);
  }
  return { records, outbox: [], reply: { k: 'done', reply: { payment_id: payment.payment_id, status: 'AUTHORIZED', authorized_at_unix: Math.floor(ctx.now_ms / 1000) } } satisfies AuthorizeReply };
}

export function decide_capture(
  state: PartitionState, req: CaptureRequest,
): Decision<PartitionRecord, CaptureReply> {
  const { payment } = owned_payment(state, req.payment_id, req.actor_user_id);
  let reply: CaptureReply;
  switch (payment.status) {
    case 'CAPTURED':
    case 'PARTIALLY_REFUNDED':
    case 'REFUNDED':
      reply = { k: 'done', payment_id: payment.payment_id, status: 'CAPTURED' };
      break;
    case 'CAPTURING':
      reply = { k: 'call', payment_id: payment.payment_id, gateway_ref: payment.gateway_ref, amount_micros: payment.amount_micros };
      break;
    case 'AUTHORIZED':
      // Capturing before the seats are allocated could keep money for seats the buyer never gets.
      throw new PaymentStateError(`payment ${payment.payment_id} is AUTHORIZED; it is captured when its order is confirmed (OrderService.ConfirmOrder)`);
    default:
      throw new PaymentStateError(`payment ${payment.payment_id} is ${payment.status}; there is nothing to capture`);
  }
  return read(reply);
}

export function decide_refund_begin(
  state: PartitionState, req: RefundBeginRequest, ctx: DecideContext,
): Decision<PartitionRecord, RefundReply> {
  const payment = payment_of(state, req.payment_id);
  check_money(req.amount_micros, req.currency, 1);
  const fingerprint = `refund|${payment.payment_id}|${req.amount_micros}|${req.currency}`;
  const earlier = idempotent<{ refund_id: string; result?: RefundView }>(state, req.idempotency_key, fingerprint);
  if (earlier !== undefined) {
    if (earlier.result !== undefined) return read({ k: 'done', reply: earlier.result });
    const refund = payment.refunds.find((r) => r.refund_id === earlier.refund_id);
    assert(refund !== undefined, 'a key names a refund of its payment');
    // Completed refunds store their result under their key (decide_settle), whoever completed
    // them; so a key without a result names a refund still pending: call the gateway again.
    assert(refund.status === 'PENDING', 'a refund completed under a key has its result stored');
    return read({
      k: 'call', refund_id: refund.refund_id, payment_id: payment.payment_id,
      gateway_ref: payment.gateway_ref, amount_micros: refund.amount_micros,
    });
  }
  const started = start_refund(state, payment, req, ctx);
  const records: PartitionRecord[] = [started];
  if (req.idempotency_key !== '') records.push({ t: 'idempotency_stored', key: req.idempotency_key, fingerprint, reply: { refund_id: started.refund_id }, at_ms: ctx.now_ms });
  return { records, outbox: [], reply: { k: 'call', refund_id: started.refund_id, payment_id: payment.payment_id, gateway_ref: payment.gateway_ref, amount_micros: req.amount_micros } };
}

export type RefundStartedRecord = Extract<PartitionRecord, { t: 'refund_started' }>;

/**
 * The refund_started record of a new refund of `amount_micros` (> 0) of `payment`, which the
 * refund rules allow (captured money, the payment's currency, within what is left to refund,
 * refunds_per_payment_max); else the refusal. Refund and ReturnSeats share it, so whatever
 * starts a refund, the settlement loop completes it the same way. `idempotency_key`: the key
 * whose stored answer gets the refund's result when it completes ('' for none).
 */
export function start_refund(
  state: PartitionState, payment: Payment,
  req: { amount_micros: number; currency: string; idempotency_key: string }, ctx: DecideContext,
): RefundStartedRecord {
  if (payment.status === 'REFUNDED') throw new RefundExceedsCapturedError(`payment ${payment.payment_id} is already fully refunded`);
  if (payment.status !== 'CAPTURED' && payment.status !== 'PARTIALLY_REFUNDED') {
    throw new PaymentStateError(`payment ${payment.payment_id} is ${payment.status}; only captured money is refunded`);
  }
  if (req.currency !== payment.currency) throw new InvalidArgumentError(`amount.currency must be the payment's, ${payment.currency}`);
  const refundable = payment.captured_micros - payment.refunded_micros - payment.refund_pending_micros;
  if (req.amount_micros > refundable) {
    throw new RefundExceedsCapturedError(`refund of ${req.amount_micros} micros exceeds what is left to refund: ${refundable} of ${payment.captured_micros} captured (${payment.refunded_micros} refunded, ${payment.refund_pending_micros} in progress)`);
  }
  if (payment.refunds.length >= L.refunds_per_payment_max) throw new RefundsPerPaymentExceededError(`payment ${payment.payment_id} already has ${payment.refunds.length} refunds (refunds_per_payment_max)`);
  assert(req.amount_micros > 0 && req.amount_micros <= refundable, 'the refund fits what is left');
  const refund_id = make_id('refund', state.partition, ctx.random_bytes(id_random_bytes));
  assert(!state.purchase.payment_by_refund.has(refund_id), 'refund ids never collide');
  return { t: 'refund_started', refund_id, payment_id: payment.payment_id, amount_micros: req.amount_micros, idempotency_key: req.idempotency_key, at_ms: ctx.now_ms };
}

/** Records the gateway's completion of a capture, void or refund. Repeats change nothing. */
export function decide_settle(
  state: PartitionState, req: SettleRequest, ctx: DecideContext,
): Decision<PartitionRecord, SettleReply> {
  const payment = payment_of(state, req.payment_id);
  const order = state.purchase.orders.get(payment.order_id);
  assert(order !== undefined, 'a payment has its order');
  // Money moves only for what was decided: a capture for a sold order, a void for one that is not.
  assert(payment.status !== 'CAPTURING' || is_sold(order), 'a capture in flight belongs to a sold order');
  const records: PartitionRecord[] = [];
  const outbox: OutboxEntry[] = [];
  const at_unix = Math.floor(ctx.now_ms / 1000);
  switch (req.action) {
    case 'captured':
      if (payment.status === 'CAPTURING') {
        records.push({ t: 'payment_captured', payment_id: payment.payment_id, at_ms: ctx.now_ms });
        outbox.push({ type: 'PaymentCaptured', key: order.order_id, payload: { payment_id: payment.payment_id, order_id: order.order_id, amount: { amount_micros: payment.amount_micros, currency: payment.currency }, captured_at_unix: at_unix, trace_id: payment.trace_id } });
      }
      return { records, outbox, reply: { payment_id: payment.payment_id, status: records.length > 0 ? 'CAPTURED' : payment.status } };
    case 'voided':
      if (payment.status === 'VOIDING') records.push({ t: 'payment_voided', payment_id: payment.payment_id, at_ms: ctx.now_ms });
      return { records, outbox, reply: { payment_id: payment.payment_id, status: records.length > 0 ? 'VOIDED' : payment.status } };
    case 'refunded': {
      const refund = payment.refunds.find((r) => r.refund_id === req.refund_id);
      if (refund === undefined) throw new PaymentNotFoundError(`refund ${req.refund_id} does not exist`);
      let status = payment.status;
      if (refund.status === 'PENDING') {
        const refunded = payment.refunded_micros + refund.amount_micros;
        status = refunded === payment.captured_micros ? 'REFUNDED' : 'PARTIALLY_REFUNDED';
        records.push({ t: 'refund_succeeded', refund_id: refund.refund_id, at_ms: ctx.now_ms });
        outbox.push({
          type: 'OrderRefunded', key: order.order_id,
          payload: {
            order_id: order.order_id, payment_id: payment.payment_id, refund_id: refund.refund_id,
            amount: { amount_micros: refund.amount_micros, currency: payment.currency },
            refunded_total: { amount_micros: refunded, currency: payment.currency }, status, refunded_at_unix: at_unix, trace_id: payment.trace_id,
          },
        });
        // The first result is what a retry gets, even after later refunds change the status; it
        // is stored whoever completes the refund (this call, or the settlement loop).
        const entry = refund.idempotency_key === '' ? undefined : state.purchase.idempotency.get(refund.idempotency_key);
        if (entry !== undefined) records.push({ t: 'idempotency_stored', key: refund.idempotency_key, fingerprint: entry.fingerprint, reply: { refund_id: refund.refund_id, result: { refund_id: refund.refund_id, status } }, at_ms: ctx.now_ms });
      }
      return { records, outbox, reply: { refund_id: refund.refund_id, status } };
    }
  }
}

function void_due(state: PartitionState, payment: Payment, now_ms: number): boolean {
  const order = state.purchase.orders.get(payment.order_id)!;
  if (payment.status === 'PENDING') return now_ms - payment.created_ms >= L.authorization_pending_ms_max;
  if (payment.status !== 'AUTHORIZED') return false;
  if (order.status === 'CANCELLED') return true;
  if (order.status === 'EXPIRED') return now_ms - order.updated_ms >= L.authorization_grace_ms;
  // A draft cannot be confirmed with this payment once another confirmed it or it ended.
  return order.status !== 'DRAFT' && order.payment_id !== payment.payment_id;
}

/** Journals VOIDING for a payment the settlement loop found due (re-checked here: ConfirmOrder
 *  may have used the authorization meanwhile). */
export function decide_begin_void(
  state: PartitionState, req: BeginVoidRequest, ctx: DecideContext,
): Decision<PartitionRecord, BeginVoidReply> {
  const payment = payment_of(state, req.payment_id);
  if (!void_due(state, payment, ctx.now_ms)) {
    return read({ voiding: payment.status === 'VOIDING', gateway_ref: payment.gateway_ref });
  }
  return { records: [{ t: 'payment_voiding', payment_id: payment.payment_id, at_ms: ctx.now_ms }], outbox: [], reply: { voiding: true, gateway_ref: payment.gateway_ref } };
}

/** Gateway calls still owed by this partition: unfinished captures, voids and refunds, and
 *  authorizations due to be voided. Only open payments are looked at. */
export function open_settlements(state: PartitionState, now_ms: number, limit: number): Settlement[] {
  assert(limit > 0 && limit <= L.settlements_per_request_max, 'settlement batch bounded');
  const out: Settlement[] = [];
  for (const payment_id of state.purchase.open_payments) {
    if (out.length >= limit) break;
    const payment = payment_of(state, payment_id);
    const base = { payment_id, refund_id: '', gateway_ref: payment.gateway_ref, amount_micros: payment.amount_micros, begin: false };
    if (payment.status === 'CAPTURING') out.push({ ...base, action: 'capture' });
    else if (payment.status === 'VOIDING') out.push({ ...base, action: 'void' });
    else if (void_due(state, payment, now_ms)) out.push({ ...base, action: 'void', begin: true });
    for (const refund of payment.refunds) {
      if (refund.status === 'PENDING' && out.length < limit) out.push({ ...base, action: 'refund', refund_id: refund.refund_id, amount_micros: refund.amount_micros });
    }
  }
  assert(out.length <= limit, 'settlements bounded');
  return out;
}

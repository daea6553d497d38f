// ReturnSeats: sold seats of an order go back on sale, and the refund owed for them (if any) is
// journaled in the same decision, so a crash can never free seats without owing their money, nor
// owe money for seats still sold. The refund is an ordinary refund (payments.ts start_refund):
// the orchestrator calls the gateway and settles it, or the settlement loop does after a crash.
// decide_* change nothing; apply: inventory.ts (seats_returned), purchase_records.ts (refunds).
import { read, type DecideContext, type Decision, type OutboxEntry } from '../runtime/behaviour.js';
import { assert } from '../util/assert.js';
import { InvalidArgumentError, OrderStateError, PaymentStateError } from './errors.js';
import { event_of, type PartitionRecord } from './inventory.js';
import * as L from './limits.js';
import { order_details, owned_order, type OrderDetails } from './orders.js';
import type { EventState, PartitionState } from './partition_state.js';
import { check_money, idempotent, start_refund, type RefundStartedRecord } from './payments.js';
import { is_sold, type Order, type Payment } from './purchase_state.js';

export interface ReturnSeatsRequest {
  order_id: string;
  /** Empty: every seat of the order not returned yet. */
  seat_ids: string[];
  /** 0: no refund (currency may then be ''). */
  refund_amount_micros: number;
  currency: string;
  /** Required; scoped by the orchestrator (caller, method, order). */
  idempotency_key: string;
  trace_id: string;
}

/** `call`: make the refund at the gateway (reference refund_id), settle it, then read the order;
 *  `done`: nothing is owed at the gateway by this call. */
export type ReturnSeatsReply =
  | { k: 'done'; order: OrderDetails }
  | {
    k: 'call'; refund_id: string; payment_id: string; gateway_ref: string; amount_micros: number;
  };

/** What a stored ReturnSeats key answers: the refund it started ('' for none); decide_settle
 *  adds the refund's `result` when it completes. */
interface StoredReturn { refund_id: string }

export function decide_return_seats(
  state: PartitionState, req: ReturnSeatsRequest, ctx: DecideContext,
): Decision<PartitionRecord, ReturnSeatsReply> {
  const order = owned_order(state, req.order_id, null);
  const key = req.idempotency_key;
  if (typeof key !== 'string' || key === '') {
    throw new InvalidArgumentError('idempotency_key is required');
  }
  if (!Array.isArray(req.seat_ids) || req.seat_ids.length > L.seats_per_hold_max) {
    throw new InvalidArgumentError(
      `seat_ids lists at most ${L.seats_per_hold_max} seats (an order has no more)`,
    );
  }
  const refund_micros = req.refund_amount_micros;
  if (refund_micros !== 0 || req.currency !== '') check_money(refund_micros, req.currency, 0);
  const asked = [...req.seat_ids].map(String).sort();
  const fingerprint =
    `return|${order.order_id}|${asked.join(',')}|${refund_micros}|${req.currency}`;
  const earlier = idempotent<StoredReturn>(state, key, fingerprint);
  if (earlier !== undefined) return read(retry_reply(state, order, earlier));
  const event = event_of(state, order.event_id);
  const payment = sold_payment(state, order);
  const seats = seats_to_return(event, order, asked);
  const records: PartitionRecord[] = [];
  let refund: RefundStartedRecord | null = null;
  if (req.currency !== '' && req.currency !== order.currency) {
    throw new InvalidArgumentError(`refund_amount.currency must be the order's, ${order.currency}`);
  }
  if (refund_micros > 0) {
    // The refund's result is stored under this key when it completes, as a Refund call's is.
    const asked_refund = {
      amount_micros: refund_micros, currency: req.currency, idempotency_key: key,
    };
    refund = start_refund(state, payment, asked_refund, ctx);
  }
  const refund_id = refund?.refund_id ?? '';
  records.push({
    t: 'seats_returned', order_id: order.order_id, seats, refund_id, at_ms: ctx.now_ms,
  });
  if (refund !== null) records.push(refund);
  const stored: StoredReturn = { refund_id };
  records.push({ t: 'idempotency_stored', key, fingerprint, reply: stored, at_ms: ctx.now_ms });
  const left = order.seats.length - order.returned.length - seats.length;
  assert(left >= 0 && seats.length > 0, 'returns seats the order still has');
  const status = left === 0 ? 'RETURNED' : 'PARTIALLY_RETURNED';
  const outbox = [
    seats_returned_event(event, order, { seats, refund, status }, req.trace_id, ctx.now_ms),
  ];
  const reply: ReturnSeatsReply = refund === null
    ? { k: 'done', order: returned_details(state, order, seats, ctx.now_ms) }
    : {
      k: 'call', refund_id, payment_id: payment.payment_id, gateway_ref: payment.gateway_ref,
      amount_micros: refund_micros,
    };
  return { records, outbox, reply };
}

/** A retry's answer: the refund's gateway call again while it is pending (the refund id is the
 *  gateway's reference, so it never refunds twice), else the order as it is now. */
function retry_reply(state: PartitionState, order: Order, earlier: StoredReturn): ReturnSeatsReply {
  if (earlier.refund_id !== '') {
    const payment = state.purchase.payments.get(order.payment_id);
    const refund = payment?.refunds.find((r) => r.refund_id === earlier.refund_id);
    assert(payment !== undefined && refund !== undefined, 'a stored return names its refund');
    if (refund.status === 'PENDING') {
      return {
        k: 'call', refund_id: refund.refund_id, payment_id: payment.payment_id,
        gateway_ref: payment.gateway_ref, amount_micros: refund.amount_micros,
      };
    }
  }
  return { k: 'done', order: order_details(state, order) };
}

/** The payment of a sold order whose capture went through: only then are seats returned (a
 *  capture still owed could otherwise take money for seats already back on sale). */
function sold_payment(state: PartitionState, order: Order): Payment {
  if (!is_sold(order)) {
    throw new OrderStateError(
      `order ${order.order_id} is ${order.status}; only a confirmed order returns seats`,
    );
  }
  if (order.status === 'RETURNED') {
    throw new OrderStateError(`order ${order.order_id} has returned all its seats already`);
  }
  const payment = state.purchase.payments.get(order.payment_id);
  assert(payment !== undefined, 'a sold order has its payment');
  if (payment.status === 'CAPTURING') {
    throw new PaymentStateError(`payment ${payment.payment_id} of order ${order.order_id} is `
      + 'still CAPTURING; return seats once it is captured');
  }
  return payment;
}

/** The seat indices to return: the named ones (each a seat of the order not returned yet), or
 *  every seat not returned yet when none is named. */
function seats_to_return(event: EventState, order: Order, asked: string[]): number[] {
  const returned = new Set(order.returned);
  if (asked.length === 0) return order.seats.filter((s) => !returned.has(s));
  const by_id = new Map(order.seats.map((s) => [event.map.id_of(s), s]));
  const seats: number[] = [];
  const not_ours: string[] = [];
  const again: string[] = [];
  for (const [i, id] of asked.entries()) {
    const seat = by_id.get(id);
    if (i > 0 && asked[i - 1] === id) {
      throw new InvalidArgumentError(`seat ${id} is listed more than once`);
    }
    if (seat === undefined) not_ours.push(id.slice(0, L.seat_id_length_max));
    else if (returned.has(seat)) again.push(id);
    else seats.push(seat);
  }
  if (not_ours.length > 0) {
    throw new InvalidArgumentError(`not seats of order ${order.order_id}: ${not_ours.join(', ')}`);
  }
  if (again.length > 0) {
    throw new OrderStateError(
      `seats of order ${order.order_id} already returned: ${again.join(', ')}`,
    );
  }
  return seats;
}

interface Returned { seats: number[]; refund: RefundStartedRecord | null; status: string }

function seats_returned_event(
  event: EventState, order: Order, { seats, refund, status }: Returned, trace_id: string,
  now_ms: number,
): OutboxEntry {
  return {
    type: 'OrderSeatsReturned',
    key: order.order_id,
    payload: {
      order_id: order.order_id, event_id: order.event_id, user_id: order.user_id,
      seat_ids: seats.map((s) => event.map.id_of(s)),
      refund_amount: { amount_micros: refund?.amount_micros ?? 0, currency: order.currency },
      refund_id: refund?.refund_id ?? '', status, returned_at_unix: Math.floor(now_ms / 1000),
      trace_id,
    },
  };
}

/** The order's details once `seats` are returned (the decision is not applied yet). */
function returned_details(
  state: PartitionState, order: Order, seats: number[], now_ms: number,
): OrderDetails {
  const returned = [...order.returned, ...seats];
  const status = returned.length === order.seats.length ? 'RETURNED' : 'PARTIALLY_RETURNED';
  return order_details(state, { ...order, returned, status, updated_ms: now_ms });
}

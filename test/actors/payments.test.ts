// Payments (src/actors/payments.ts) driven through decide + apply with a fake clock: Authorize
// in its two decisions around the gateway, idempotent retries, Capture, Refund within what was
// captured, settlement of the gateway's outcomes, voids, and the settlement loop's work list.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OrderStateError } from '../../src/actors/errors.js';
import { no_signals, type FraudSignals } from '../../src/actors/fraud.js';
import type { PartitionRecord } from '../../src/actors/inventory.js';
import * as L from '../../src/actors/limits.js';
import { decide_confirm_order, decide_create_draft } from '../../src/actors/orders.js';
import {
  decide_authorize_begin, decide_authorize_end, decide_begin_void, decide_capture,
  decide_refund_begin, decide_settle, open_settlements, type GatewayOutcome,
} from '../../src/actors/payments.js';
import type { Payment } from '../../src/actors/purchase_state.js';
import { Harness, rejects, replied, step } from './helpers.js';

/** Seat 101-A-1 is tier A of the sample event: 50 EUR. */
const TOTAL = 50_000_000;
const approved: GatewayOutcome = { approved: true, gateway_ref: 'gw-1' };

function kinds(records: PartitionRecord[]): string[] {
  return records.map((r) => r.t);
}

class Shop extends Harness {
  /** Each draft takes the next seat of row 101-A (tier A, 24 seats). */
  private next_seat = 1;

  constructor() {
    super();
    this.create_event();
  }

  draft(user_id = 'alice', seat = `101-A-${this.next_seat++}`): string {
    const d = step(this.state, decide_create_draft(this.state, {
      event_id: 'evt-1', seat_ids: [seat], user_id, promo_code: '', idempotency_key: '', trace_id: 't',
    }, this.ctx()));
    return replied(d).id;
  }

  begin(order_id: string, key = '', amount_micros = TOTAL, signals: FraudSignals = no_signals) {
    return step(this.state, decide_authorize_begin(this.state, {
      order_id, amount_micros, currency: 'EUR', actor_user_id: null, idempotency_key: key, signals, trace_id: 't',
    }, this.ctx()));
  }

  end(payment_id: string, outcome: GatewayOutcome = approved) {
    return step(this.state, decide_authorize_end(this.state, { payment_id, outcome }, this.ctx()));
  }

  /** A draft with a PENDING payment (the gateway call not answered yet). */
  pending(key = ''): { order_id: string; payment_id: string } {
    const order_id = this.draft();
    const reply = replied(this.begin(order_id, key));
    assert.is(reply.k, 'call');
    const payment_id = reply.k === 'call' ? reply.payment_id : '';
    return { order_id, payment_id };
  }

  authorized(key = ''): { order_id: string; payment_id: string } {
    const ids = this.pending(key);
    this.end(ids.payment_id);
    assert.is(this.payment(ids.payment_id).status, 'AUTHORIZED');
    return ids;
  }

  /** Confirmed and captured: the money a refund may return. */
  captured(): { order_id: string; payment_id: string } {
    const ids = this.authorized();
    step(this.state, decide_confirm_order(this.state, { ...ids, actor_user_id: null, trace_id: 't' }, this.ctx()));
    this.settle('captured', ids.payment_id);
    assert.is(this.payment(ids.payment_id).status, 'CAPTURED');
    return ids;
  }

  settle(action: 'captured' | 'voided' | 'refunded', payment_id: string, refund_id = '') {
    return step(this.state, decide_settle(this.state, { action, payment_id, refund_id, idempotency_key: '' }, this.ctx()));
  }

  refund(payment_id: string, amount_micros: number, key = '') {
    return step(this.state, decide_refund_begin(this.state, {
      payment_id, amount_micros, currency: 'EUR', idempotency_key: key, trace_id: 't',
    }, this.ctx()));
  }

  capture(payment_id: string, actor_user_id: string | null = null) {
    return decide_capture(this.state, { payment_id, actor_user_id });
  }

  payment(payment_id: string): Payment {
    const payment = this.state.purchase.payments.get(payment_id);
    assert.ok(payment !== undefined, `payment ${payment_id} exists`);
    return payment!;
  }
}

// ---------------------------------------------------------------------------------------------
// Authorize

test('authorize_begin journals a PENDING payment (scored once) and asks for the gateway call', () => {
  const h = new Shop();
  const order_id = h.draft();
  const d = h.begin(order_id);
  assert.equal(kinds(d.records), ['fraud_scored', 'payment_started']);
  const reply = replied(d);
  assert.ok(reply.k === 'call');
  if (reply.k !== 'call') return;
  assert.equal({ amount: reply.amount_micros, currency: reply.currency, scored: reply.scored }, { amount: TOTAL, currency: 'EUR', scored: true });
  assert.is(h.payment(reply.payment_id).status, 'PENDING');
  assert.ok(reply.payment_id.startsWith('pay_0_'), 'a payment id encodes its partition');
  const other = h.draft('bob');
  rejects(h, 'InvalidArgumentError', () => h.begin(other, '', TOTAL + 1));
  h.check();
});

test('authorize_begin: a fraud DECLINE declines at once, with no gateway call', () => {
  const h = new Shop();
  const d = h.begin(h.draft(), '', TOTAL, { ...no_signals, ip_blocked: true });
  assert.equal(kinds(d.records), ['fraud_scored', 'payment_started', 'payment_declined']);
  const reply = replied(d);
  assert.ok(reply.k === 'done' && reply.reply.status === 'DECLINED');
  h.check();
});

test('authorize_end approved: AUTHORIZED with the gateway reference, at the decision\'s second', () => {
  const h = new Shop();
  const { payment_id } = h.pending();
  h.advance(1_500);
  const d = h.end(payment_id, { approved: true, gateway_ref: 'gw-7' });
  assert.equal(kinds(d.records), ['payment_authorized']);
  assert.equal(replied(d), { k: 'done', reply: { payment_id, status: 'AUTHORIZED', authorized_at_unix: Math.floor(h.now / 1000) } });
  assert.equal([h.payment(payment_id).status, h.payment(payment_id).gateway_ref], ['AUTHORIZED', 'gw-7']);
  h.check();
});

test('authorize_end declined: DECLINED with the gateway\'s reason; the order may try again', () => {
  const h = new Shop();
  const { order_id, payment_id } = h.pending();
  const d = h.end(payment_id, { approved: false, reason: 'card declined' });
  assert.equal(kinds(d.records), ['payment_declined']);
  assert.equal(replied(d), { k: 'done', reply: { payment_id, status: 'DECLINED', authorized_at_unix: 0 } });
  assert.equal([h.payment(payment_id).status, h.payment(payment_id).decline_reason], ['DECLINED', 'card declined']);
  assert.is(replied(h.begin(order_id)).k, 'call', 'a declined attempt does not block a new one');
  h.check();
});

test('idempotent replay: the same key and request get the first result and journal nothing', () => {
  const h = new Shop();
  const { order_id, payment_id } = h.pending('key-1');
  const while_pending = h.begin(order_id, 'key-1');
  assert.equal(while_pending.records, [], 'a retry while PENDING journals nothing');
  assert.equal(replied(while_pending), { k: 'call', payment_id, amount_micros: TOTAL, currency: 'EUR' }, 'the same gateway call again');
  h.end(payment_id);
  const settled = h.begin(order_id, 'key-1');
  assert.equal(settled.records, []);
  assert.equal(replied(settled), { k: 'done', reply: { payment_id, status: 'AUTHORIZED', authorized_at_unix: Math.floor(h.now / 1000) } });
  assert.is(h.state.purchase.orders.get(order_id)!.payment_ids.length, 1, 'one payment for the key');
});

test('a key reused with another request is refused, before the request\'s own checks', () => {
  const h = new Shop();
  const { order_id } = h.pending('key-1');
  // Another amount: the key's fingerprint differs (checked before "amount must equal total").
  rejects(h, 'IdempotencyKeyReusedError', () => h.begin(order_id, 'key-1', TOTAL + 1));
  const other = h.draft('bob');
  rejects(h, 'IdempotencyKeyReusedError', () => h.begin(other, 'key-1'));
});

test('the order was cancelled while the gateway authorized: authorization and void journaled AND refused', () => {
  const h = new Shop();
  const { order_id, payment_id } = h.pending();
  h.release(h.state.purchase.orders.get(order_id)!.hold_id, null);
  assert.is(h.state.purchase.orders.get(order_id)!.status, 'CANCELLED');
  const d = h.end(payment_id);
  assert.equal(kinds(d.records), ['payment_authorized', 'payment_voiding'], 'journaled: the money held is voided');
  assert.is(d.reply, undefined, 'no reply beside the refusal');
  assert.instance(d.refusal, OrderStateError);
  assert.is(d.refusal?.rejection, true);
  assert.match(d.refusal?.message ?? '', `order ${order_id} was cancelled while the payment was authorized`);
  assert.is(h.payment(payment_id).status, 'VOIDING');
  assert.equal(open_settlements(h.state, h.now, 10).map((s) => [s.action, s.payment_id, s.gateway_ref]), [['void', payment_id, 'gw-1']]);
  h.check();
});

test('an abandoned payment (voided while PENDING) is refused to a late answer and to a retry', () => {
  const h = new Shop();
  const { order_id, payment_id } = h.pending('key-1');
  h.advance(L.authorization_pending_ms_max);
  const begun = step(h.state, decide_begin_void(h.state, { payment_id }, h.ctx()));
  assert.equal(replied(begun), { voiding: true, gateway_ref: '' });
  const late = rejects(h, 'PaymentStateError', () => h.end(payment_id));
  assert.match(late.message, `payment ${payment_id} was abandoned`);
  assert.match(rejects(h, 'PaymentStateError', () => h.begin(order_id, 'key-1')).message, 'authorize again with a new idempotency-key');
  assert.is(h.payment(payment_id).status, 'VOIDING', 'nothing changed');
});

test('authorize_begin: a second live payment, and more than payments_per_order_max attempts, are refused', () => {
  const h = new Shop();
  const { order_id } = h.pending();
  rejects(h, 'PaymentStateError', () => h.begin(order_id));
  const other = h.draft('bob');
  for (let i = 0; i < L.payments_per_order_max; i++) {
    const reply = replied(h.begin(other));
    if (reply.k === 'call') h.end(reply.payment_id, { approved: false, reason: 'no' });
  }
  rejects(h, 'PaymentsPerOrderExceededError', () => h.begin(other));
});

// ---------------------------------------------------------------------------------------------
// Capture, refund, settle

test('capture: CAPTURED answers done, CAPTURING asks for the call, AUTHORIZED is refused, another\'s is not found', () => {
  const h = new Shop();
  const { order_id, payment_id } = h.authorized();
  rejects(h, 'PaymentStateError', () => h.capture(payment_id));
  step(h.state, decide_confirm_order(h.state, { order_id, payment_id, actor_user_id: null, trace_id: 't' }, h.ctx()));
  assert.equal(replied(h.capture(payment_id)), { k: 'call', payment_id, gateway_ref: 'gw-1', amount_micros: TOTAL });
  h.settle('captured', payment_id);
  const done = h.capture(payment_id);
  assert.equal([done.records, replied(done)], [[], { k: 'done', payment_id, status: 'CAPTURED' }]);
  rejects(h, 'PaymentNotFoundError', () => h.capture(payment_id, 'mallory'));
  assert.equal(replied(h.capture(payment_id, 'alice')), { k: 'done', payment_id, status: 'CAPTURED' });
});

test('settle captured: journals the capture and PaymentCaptured once; a repeat changes nothing', () => {
  const h = new Shop();
  const { order_id, payment_id } = h.authorized();
  step(h.state, decide_confirm_order(h.state, { order_id, payment_id, actor_user_id: null, trace_id: 't' }, h.ctx()));
  const first = h.settle('captured', payment_id);
  assert.equal(kinds(first.records), ['payment_captured']);
  assert.equal(first.outbox.map((o) => [o.type, o.key]), [['PaymentCaptured', order_id]]);
  assert.equal(replied(first), { payment_id, status: 'CAPTURED' });
  assert.is(h.payment(payment_id).captured_micros, TOTAL);
  const again = h.settle('captured', payment_id);
  assert.equal([again.records, again.outbox, replied(again)], [[], [], { payment_id, status: 'CAPTURED' }]);
  h.check();
});

test('refund within what was captured: journaled, asks for the call, settles PARTIALLY_REFUNDED then REFUNDED', () => {
  const h = new Shop();
  const { payment_id } = h.captured();
  const part = replied(h.refund(payment_id, 20_000_000, 'r-1'));
  assert.ok(part.k === 'call' && part.amount_micros === 20_000_000 && part.gateway_ref === 'gw-1');
  if (part.k !== 'call') return;
  assert.is(h.payment(payment_id).refund_pending_micros, 20_000_000, 'a pending refund counts against what is left');
  rejects(h, 'RefundExceedsCapturedError', () => h.refund(payment_id, 30_000_001));
  const settled = h.settle('refunded', payment_id, part.refund_id);
  assert.equal(replied(settled), { refund_id: part.refund_id, status: 'PARTIALLY_REFUNDED' });
  assert.equal(settled.outbox.map((o) => o.type), ['OrderRefunded']);
  assert.ok(kinds(settled.records).includes('idempotency_stored'), 'the result is stored under the key');
  assert.equal(replied(h.refund(payment_id, 20_000_000, 'r-1')), { k: 'done', reply: { refund_id: part.refund_id, status: 'PARTIALLY_REFUNDED' } });
  const rest = replied(h.refund(payment_id, 30_000_000));
  if (rest.k !== 'call') throw new Error('the rest is refundable');
  assert.equal(replied(h.settle('refunded', payment_id, rest.refund_id)), { refund_id: rest.refund_id, status: 'REFUNDED' });
  assert.equal([h.payment(payment_id).status, h.payment(payment_id).refunded_micros], ['REFUNDED', TOTAL]);
  assert.match(rejects(h, 'RefundExceedsCapturedError', () => h.refund(payment_id, 1)).message, 'already fully refunded');
  assert.equal(h.settle('refunded', payment_id, rest.refund_id).records, [], 'a repeated settle changes nothing');
  rejects(h, 'PaymentNotFoundError', () => h.settle('refunded', payment_id, 'refund_0_unknown'));
  h.check();
});

test('refunds: only captured money, and at most refunds_per_payment_max per payment', () => {
  const h = new Shop();
  const { payment_id: authorized } = h.authorized();
  rejects(h, 'PaymentStateError', () => h.refund(authorized, 1));
  const { payment_id } = h.captured();
  for (let i = 0; i < L.refunds_per_payment_max; i++) assert.is(replied(h.refund(payment_id, 1)).k, 'call');
  assert.ok(L.refunds_per_payment_max < TOTAL, 'money is left: the count, not the amount, refuses');
  rejects(h, 'RefundsPerPaymentExceededError', () => h.refund(payment_id, 1));
  rejects(h, 'InvalidArgumentError', () => h.refund(payment_id, 0));
});

// ---------------------------------------------------------------------------------------------
// Voids and the settlement loop's work

test('begin_void: journals VOIDING only when due; settle voided finishes it once', () => {
  const h = new Shop();
  const { order_id, payment_id } = h.authorized();
  const early = step(h.state, decide_begin_void(h.state, { payment_id }, h.ctx()));
  assert.equal([early.records, replied(early)], [[], { voiding: false, gateway_ref: 'gw-1' }], 'a live draft\'s authorization is kept');
  // Cancelling the draft journals the void itself; an expired one waits authorization_grace_ms.
  h.release(h.state.purchase.orders.get(order_id)!.hold_id, null);
  assert.is(h.payment(payment_id).status, 'VOIDING');
  const again = step(h.state, decide_begin_void(h.state, { payment_id }, h.ctx()));
  assert.equal([again.records, replied(again)], [[], { voiding: true, gateway_ref: 'gw-1' }]);
  const voided = h.settle('voided', payment_id);
  assert.equal([kinds(voided.records), replied(voided)], [['payment_voided'], { payment_id, status: 'VOIDED' }]);
  assert.equal(h.settle('voided', payment_id).records, []);
  h.check();
});

test('open_settlements: captures, voids, due voids and pending refunds owed, within the limit', () => {
  const h = new Shop();
  const capturing = h.authorized();
  step(h.state, decide_confirm_order(h.state, { ...capturing, actor_user_id: null, trace_id: 't' }, h.ctx()));
  const refunding = h.captured();
  const refund = replied(h.refund(refunding.payment_id, 5_000_000));
  const pending = h.pending();
  assert.equal(open_settlements(h.state, h.now, 10).map((s) => [s.action, s.payment_id, s.begin]).sort(), [
    ['capture', capturing.payment_id, false], ['refund', refunding.payment_id, false],
  ].sort(), 'a fresh PENDING payment is not owed anything yet');
  h.advance(L.authorization_pending_ms_max);
  const owed = open_settlements(h.state, h.now, 10);
  assert.equal(owed.find((s) => s.payment_id === pending.payment_id), {
    action: 'void', payment_id: pending.payment_id, refund_id: '', gateway_ref: '', amount_micros: TOTAL, begin: true,
  }, 'a PENDING payment past authorization_pending_ms_max is due a void');
  assert.equal(owed.find((s) => s.action === 'refund')?.refund_id, refund.k === 'call' ? refund.refund_id : 'none');
  assert.is(owed.length, 3);
  assert.is(open_settlements(h.state, h.now, 2).length, 2, 'bounded by the limit');
});

test.run();

// Orders (src/actors/orders.ts) driven through decide + apply with a fake clock: CreateDraft,
// fraud scores, ConfirmOrder (live, repeated, lapsed: retaken or voided), reading orders back,
// and what a hold's end (release, expiry) does to its draft. Each test names the rule it pins.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { EventSpec, PromoSpec } from '../../src/actors/event_spec.js';
import { no_signals, type FraudSignals } from '../../src/actors/fraud.js';
import type { PartitionRecord } from '../../src/actors/inventory.js';
import * as L from '../../src/actors/limits.js';
import {
  decide_confirm_order, decide_create_draft, decide_score, get_order, list_orders, next_deadline_ms,
  type ConfirmOrderReply, type OrderDetails, type OrderView,
} from '../../src/actors/orders.js';
import { SEAT_HELD, SEAT_SOLD } from '../../src/actors/partition_state.js';
import {
  decide_authorize_begin, decide_authorize_end, decide_settle,
} from '../../src/actors/payments.js';
import type { Effects } from '../../src/runtime/behaviour.js';
import { Harness, rejects, sample_spec, step, T0 } from './helpers.js';

const TTL_MS = L.hold_ttl_seconds_default * 1000;

function promo(code: string, overrides: Partial<PromoSpec> = {}): PromoSpec {
  const none = { amount_off_micros: 0, max_uses: 0, valid_until_unix: 0 };
  return { code, percent_off: 10, ...none, ...overrides };
}

function kinds(records: readonly PartitionRecord[]): string[] {
  return records.map((r) => r.t);
}

/** The message of a void_then_fail answer; '' for any other answer. */
function void_message(reply: ConfirmOrderReply): string {
  return reply.k === 'void_then_fail' ? reply.message : '';
}

const NEWEST = { before_ms: Number.MAX_SAFE_INTEGER, before_order_id: '' };

/** A Harness that also drives the purchase requests of one partition. */
class Shop extends Harness {
  constructor(spec: Partial<EventSpec> = {}) {
    super();
    this.create_event(sample_spec(spec));
  }

  draft(user_id: string, seat_ids: string[], promo_code = '', key = '', event_id = 'evt-1') {
    const req = {
      event_id, seat_ids, user_id, promo_code, idempotency_key: key, trace_id: 'trace-d',
    };
    const d = step(this.state, decide_create_draft(this.state, req, this.ctx()));
    return { decision: d, reply: d.reply as OrderView };
  }

  /** Authorize begin: the id of a PENDING payment of the whole total. */
  begin_payment(order_id: string): string {
    const order = this.state.purchase.orders.get(order_id)!;
    const begin = step(this.state, decide_authorize_begin(this.state, {
      order_id, amount_micros: order.total_micros, currency: order.currency,
      actor_user_id: order.user_id, idempotency_key: '', signals: no_signals, trace_id: 'trace-p',
    }, this.ctx()));
    const call = begin.reply as { k: string; payment_id: string };
    assert.is(call.k, 'call', 'an unscored small order goes to the gateway');
    return call.payment_id;
  }

  end_payment(payment_id: string, approved: boolean): void {
    const outcome = approved
      ? { approved: true as const, gateway_ref: `gw-${payment_id}` }
      : { approved: false as const, reason: 'card declined' };
    step(this.state, decide_authorize_end(this.state, { payment_id, outcome }, this.ctx()));
    const status = this.state.purchase.payments.get(payment_id)!.status;
    assert.is(status, approved ? 'AUTHORIZED' : 'DECLINED');
  }

  /** An AUTHORIZED payment of the order's total. */
  pay(order_id: string): string {
    const payment_id = this.begin_payment(order_id);
    this.end_payment(payment_id, true);
    return payment_id;
  }

  confirm_order(order_id: string, payment_id: string, actor_user_id: string | null) {
    const req = { order_id, payment_id, actor_user_id, trace_id: 'trace-c' };
    const d = step(this.state, decide_confirm_order(this.state, req, this.ctx()));
    return { decision: d, reply: d.reply as ConfirmOrderReply };
  }

  captured(payment_id: string): void {
    const req = { action: 'captured' as const, payment_id, refund_id: '', idempotency_key: '' };
    step(this.state, decide_settle(this.state, req, this.ctx()));
  }

  order(order_id: string) {
    return this.state.purchase.orders.get(order_id)!;
  }

  seat(seat_id: string): { state: number; owner: number } {
    const event = this.state.events.get('evt-1')!;
    const index = event.map.index_of(seat_id);
    return { state: event.seat_state[index]!, owner: event.seat_owner[index]! };
  }

  promo_uses(code: string): number {
    return this.state.purchase.promo_uses.get(`evt-1\u0000${code}`) ?? 0;
  }
}

// ---------------------------------------------------------------------------------------------
// CreateDraft

test('CreateDraft: holds the seats for the default TTL; a DRAFT order rides on that hold', () => {
  const s = new Shop();
  const { decision, reply } = s.draft('alice', ['101-A-1', '101-B-1']);
  assert.equal(kinds(decision.records), ['hold_created', 'order_created']);
  assert.equal(decision.outbox.map((e) => e.type), ['HoldCreated']);
  const order = s.order(reply.id);
  const hold = s.state.holds.get(order.hold_id)!;
  assert.is(hold.status, 'active');
  assert.is(hold.user_id, 'alice');
  assert.is(hold.expires_at_ms, T0 + TTL_MS);
  assert.is(order.hold_expires_at_ms, T0 + TTL_MS);
  assert.is(s.state.purchase.order_by_hold.get(hold.hold_id), reply.id);
  for (const seat of ['101-A-1', '101-B-1']) {
    assert.equal(s.seat(seat), { state: SEAT_HELD, owner: hold.hold_no });
  }
  assert.is(reply.status, 'DRAFT');
  assert.is(order.status, 'DRAFT');
  assert.is(reply.created_at_unix, Math.floor(T0 / 1000));
  s.check();
});

test('CreateDraft: the price is the sum of the seats\' tiers, in the event\'s currency', () => {
  const s = new Shop({ currency: 'USD' });
  // 101-A is tier A (50), 101-B and 102-A tier B (30).
  const { reply } = s.draft('alice', ['101-A-1', '101-B-1', '102-A-1']);
  assert.equal(reply.total, { amount_micros: 110_000_000, currency: 'USD' });
  const order = s.order(reply.id);
  assert.equal([order.subtotal_micros, order.total_micros, order.currency],
    [110_000_000, 110_000_000, 'USD']);
});

test('CreateDraft: a usable promo lowers the total and counts one use', () => {
  const s = new Shop({ promo_codes: [promo('TEN', { max_uses: 5 })] });
  const { reply } = s.draft('alice', ['101-A-1', '101-B-1'], 'TEN');
  assert.equal(reply.total, { amount_micros: 72_000_000, currency: 'EUR' });
  const order = s.order(reply.id);
  assert.equal([order.subtotal_micros, order.promo_code, order.promo_counted],
    [80_000_000, 'TEN', true]);
  assert.is(s.promo_uses('TEN'), 1);
  s.check();
});

test('CreateDraft: an unknown, expired or used-up promo is refused and nothing is held', () => {
  const valid_until_unix = Math.floor(T0 / 1000) + 60;
  const s = new Shop({
    promo_codes: [promo('ONCE', { max_uses: 1 }), promo('SOON', { valid_until_unix })],
  });
  rejects(s, 'PromoUnavailableError', () => s.draft('alice', ['101-A-1'], 'NOPE'));
  rejects(s, 'InvalidArgumentError', () => s.draft('alice', ['101-A-1'], 'lower'));
  s.draft('alice', ['101-A-1'], 'ONCE');
  rejects(s, 'PromoUnavailableError', () => s.draft('bob', ['101-A-2'], 'ONCE'));
  s.draft('bob', ['101-A-2'], 'SOON');
  s.advance(60_000);
  rejects(s, 'PromoUnavailableError', () => s.draft('carol', ['101-A-3'], 'SOON'));
  assert.is(s.state.purchase.orders.size, 2);
});

test('CreateDraft: seat and per-user limits are the hold\'s (drafts count as held seats)', () => {
  const s = new Shop();
  s.draft('alice', ['101-A-1', '101-A-2', '101-A-3', '101-A-4', '101-A-5']);
  rejects(s, 'SeatsUnavailableError', () => s.draft('bob', ['101-A-5']));
  // max_seats_per_user is 8: 5 in a draft + 4 more is 9.
  const four = ['101-B-1', '101-B-2', '101-B-3', '101-B-4'];
  rejects(s, 'SeatsPerUserExceededError', () => s.draft('alice', four));
  s.draft('alice', ['101-B-1', '101-B-2', '101-B-3']);
  const many = new Shop({ max_seats_per_user: 50 });
  for (let i = 1; i <= L.holds_per_user_max; i++) many.draft('bob', [`101-A-${i}`]);
  rejects(many, 'HoldsPerUserExceededError', () => many.draft('bob', ['101-A-20']));
  const eleven = Array.from({ length: 11 }, (_, i) => `101-A-${i + 11}`);
  rejects(many, 'SeatsPerHoldExceededError', () => many.draft('carol', eleven));
});

test('CreateDraft: a retry with its key gets the same order; another request is refused', () => {
  const s = new Shop({ promo_codes: [promo('TEN')] });
  s.create_event(sample_spec({ event_id: 'evt-2' }));
  const first = s.draft('alice', ['101-A-1', '101-A-2'], 'TEN', 'k1');
  const again = s.draft('alice', ['101-A-2', '101-A-1'], 'TEN', 'k1');
  assert.equal(again.decision.records, [], 'a retry journals nothing');
  assert.equal(again.decision.outbox, []);
  assert.equal(again.reply, first.reply);
  const other_seats = ['101-A-1', '101-A-3'];
  rejects(s, 'IdempotencyKeyReusedError', () => s.draft('alice', other_seats, 'TEN', 'k1'));
  rejects(s, 'IdempotencyKeyReusedError', () => s.draft('alice', ['101-A-1', '101-A-2'], '', 'k1'));
  // The key is scoped to user and event: others using it start their own checkout.
  const bob = s.draft('bob', ['101-A-5'], '', 'k1');
  const other_event = s.draft('alice', ['101-A-1'], '', 'k1', 'evt-2');
  assert.is.not(bob.reply.id, first.reply.id);
  assert.is.not(other_event.reply.id, first.reply.id);
  // Without a key every call is a new draft.
  const a = s.draft('carol', ['101-B-1']);
  const b = s.draft('carol', ['101-B-2']);
  assert.is.not(a.reply.id, b.reply.id);
  s.check();
});

// ---------------------------------------------------------------------------------------------
// Fraud scores

test('Score: records the decision on the order and answers it; only for the order\'s user', () => {
  const s = new Shop();
  const { reply } = s.draft('alice', ['101-A-1']);
  const signals: FraudSignals = { ...no_signals, ip_blocked: true };
  const score = (order_id: string, user_id: string) =>
    decide_score(s.state, { order_id, user_id, signals }, s.ctx());
  const d = step(s.state, score(reply.id, 'alice'));
  assert.equal(kinds(d.records), ['fraud_scored']);
  const verdict = { risk_score: 1, decision: 'DECLINE', reasons: ['ip is on the blocklist'] };
  assert.equal(d.reply, verdict);
  assert.equal(s.order(reply.id).fraud, { ...verdict, at_ms: T0 });
  rejects(s, 'InvalidArgumentError', () => score(reply.id, 'bob'));
  rejects(s, 'OrderNotFoundError', () => score('order-x', 'alice'));
});

// ---------------------------------------------------------------------------------------------
// ConfirmOrder

test('ConfirmOrder: a live draft sells its hold\'s seats and says to capture the payment', () => {
  const s = new Shop();
  const { reply: view } = s.draft('alice', ['101-A-1', '101-A-2']);
  const payment_id = s.pay(view.id);
  const hold_id = s.order(view.id).hold_id;
  s.advance(TTL_MS - 1);
  const { decision, reply } = s.confirm_order(view.id, payment_id, 'alice');
  assert.equal(kinds(decision.records), ['hold_confirmed', 'order_confirmed']);
  assert.equal(decision.outbox.map((e) => e.type), ['OrderConfirmed']);
  assert.equal(reply, {
    k: 'capture',
    order: { ...view, status: 'CONFIRMED', updated_at_unix: Math.floor(s.now / 1000) },
    payment_id, gateway_ref: `gw-${payment_id}`, amount_micros: 100_000_000, currency: 'EUR',
  });
  const order = s.order(view.id);
  assert.equal([order.status, order.payment_id, order.hold_id], ['CONFIRMED', payment_id, hold_id]);
  assert.is(s.state.purchase.payments.get(payment_id)!.status, 'CAPTURING');
  assert.is(s.seat('101-A-1').state, SEAT_SOLD);
  s.check();
});

test('ConfirmOrder: a repeat journals nothing: capture while CAPTURING, done once captured', () => {
  const s = new Shop();
  const { reply: view } = s.draft('alice', ['101-A-1']);
  const payment_id = s.pay(view.id);
  s.confirm_order(view.id, payment_id, 'alice');
  const capturing = s.confirm_order(view.id, payment_id, 'alice');
  assert.equal(capturing.decision.records, []);
  assert.is(capturing.reply.k, 'capture');
  s.captured(payment_id);
  const done = s.confirm_order(view.id, payment_id, 'alice');
  assert.equal(done.decision.records, []);
  assert.equal(done.reply, { k: 'done', order: { ...view, status: 'CONFIRMED' } });
});

test('ConfirmOrder refuses: another user, another order\'s payment, unpaid, cancelled', () => {
  const s = new Shop();
  const a = s.draft('alice', ['101-A-1']).reply.id;
  const b = s.draft('alice', ['101-A-2']).reply.id;
  const declined = s.begin_payment(a);
  s.end_payment(declined, false);
  const pay_a = s.pay(a);
  rejects(s, 'OrderNotFoundError', () => s.confirm_order(a, pay_a, 'bob'));
  rejects(s, 'PaymentStateError', () => s.confirm_order(b, pay_a, 'alice'));
  rejects(s, 'PaymentStateError', () => s.confirm_order(a, declined, 'alice'));
  s.confirm_order(a, pay_a, 'alice');
  // Once sold, another payment of the order confirms nothing.
  rejects(s, 'OrderStateError', () => s.confirm_order(a, declined, 'alice'));
  const pending = s.begin_payment(b);
  rejects(s, 'PaymentStateError', () => s.confirm_order(b, pending, 'alice'));
  const c = s.draft('alice', ['101-A-3']).reply.id;
  const pay_c = s.pay(c);
  s.release(s.order(c).hold_id, 'alice');
  rejects(s, 'OrderStateError', () => s.confirm_order(c, pay_c, 'alice'));
});

test('ConfirmOrder, hold lapsed, timer not run: the hold expires, free seats are retaken', () => {
  const s = new Shop();
  const { reply: view } = s.draft('alice', ['101-A-1', '101-A-2']);
  const payment_id = s.pay(view.id);
  const old_hold = s.order(view.id).hold_id;
  s.advance(TTL_MS);
  const { decision, reply } = s.confirm_order(view.id, payment_id, 'alice');
  assert.equal(kinds(decision.records),
    ['hold_expired', 'order_expired', 'hold_created', 'hold_confirmed', 'order_confirmed']);
  assert.equal(decision.outbox.map((e) => e.type), ['InventoryHoldExpired', 'OrderConfirmed']);
  assert.equal(decision.outbox[0]!.payload, {
    hold_id: old_hold, event_id: 'evt-1', expired_at_unix: Math.floor(s.now / 1000),
    trace_id: 'trace-d',
  });
  assert.is(reply.k, 'capture');
  const order = s.order(view.id);
  assert.is(order.status, 'CONFIRMED');
  assert.is.not(order.hold_id, old_hold, 'sold under a new hold');
  assert.is(order.hold_expires_at_ms, s.now + TTL_MS);
  assert.is(s.state.holds.get(old_hold)!.status, 'expired');
  assert.is(s.state.holds.get(order.hold_id)!.status, 'confirmed');
  assert.is(s.seat('101-A-2').state, SEAT_SOLD);
  s.check();
});

test('ConfirmOrder after the timer expired the draft: free seats are retaken', () => {
  const s = new Shop();
  const { reply: view } = s.draft('alice', ['101-A-1']);
  const payment_id = s.pay(view.id);
  s.advance(TTL_MS);
  s.timers();
  assert.is(s.order(view.id).status, 'EXPIRED');
  const { decision, reply } = s.confirm_order(view.id, payment_id, 'alice');
  assert.equal(kinds(decision.records), ['hold_created', 'hold_confirmed', 'order_confirmed']);
  assert.is(reply.k, 'capture');
  assert.is(s.order(view.id).status, 'CONFIRMED');
  s.check();
});

test('ConfirmOrder, hold lapsed, a seat taken: voids the authorization, sells nothing', () => {
  const s = new Shop();
  const { reply: view } = s.draft('alice', ['101-A-1', '101-A-2']);
  const payment_id = s.pay(view.id);
  s.advance(TTL_MS);
  s.timers();
  const bob = s.reserve('bob', ['101-A-2']).reply.hold_id;
  const { decision, reply } = s.confirm_order(view.id, payment_id, 'alice');
  assert.equal(decision.records, [{ t: 'payment_voiding', payment_id, at_ms: s.now }]);
  assert.is(reply.k, 'void_then_fail');
  assert.ok(void_message(reply).includes('1 of its seats were taken'), 'says why');
  assert.is(s.order(view.id).status, 'EXPIRED');
  assert.is(s.state.purchase.payments.get(payment_id)!.status, 'VOIDING');
  assert.equal(s.seat('101-A-2'), { state: SEAT_HELD, owner: s.state.holds.get(bob)!.hold_no });
  assert.is(s.availability().sold, 0);
  s.check();
});

test('ConfirmOrder retake: max_seats_per_user counts other seats, not the lapsed ones', () => {
  const s = new Shop();
  // 4 seats lapsed + 4 held now = 8 = max: the retake is within the limit (the lapsed 4 are not
  // counted twice, even while its hold is still active because the timer has not run).
  const view = s.draft('alice', ['101-A-1', '101-A-2', '101-A-3', '101-A-4']).reply;
  const pay = s.pay(view.id);
  s.advance(TTL_MS - 1);
  s.reserve('alice', ['101-B-1', '101-B-2', '101-B-3', '101-B-4']);
  s.advance(1);
  assert.is(s.confirm_order(view.id, pay, 'alice').reply.k, 'capture');
  // One more seat held meanwhile puts the next retake over the limit.
  const t = new Shop();
  const late = t.draft('alice', ['101-A-1', '101-A-2', '101-A-3', '101-A-4']).reply;
  const late_pay = t.pay(late.id);
  t.advance(TTL_MS);
  t.timers();
  t.reserve('alice', ['101-B-1', '101-B-2', '101-B-3', '101-B-4', '101-B-5']);
  const refused = t.confirm_order(late.id, late_pay, 'alice');
  assert.is(refused.reply.k, 'void_then_fail');
  assert.ok(void_message(refused.reply).includes('max_seats_per_user is 8'));
  t.check();
});

test('ConfirmOrder retake: holds_per_user_max does not apply (the new hold is confirmed at once)',
  () => {
  const s = new Shop({ max_seats_per_user: 50 });
  const view = s.draft('alice', ['102-A-1']).reply;
  const pay = s.pay(view.id);
  s.advance(TTL_MS);
  s.timers();
  for (let i = 1; i <= L.holds_per_user_max; i++) s.reserve('alice', [`101-A-${i}`]);
  rejects(s, 'HoldsPerUserExceededError', () => s.reserve('alice', ['101-A-20']));
  assert.is(s.confirm_order(view.id, pay, 'alice').reply.k, 'capture');
  s.check();
});

test('ConfirmOrder retake: the promo cap counts others\' uses, not the order\'s own', () => {
  const s = new Shop({ promo_codes: [promo('ONE', { max_uses: 1 })] });
  const view = s.draft('alice', ['101-A-1'], 'ONE').reply;
  const pay = s.pay(view.id);
  s.advance(TTL_MS);
  // The draft's own use is returned in the same decision: the retake may use it again.
  assert.is(s.confirm_order(view.id, pay, 'alice').reply.k, 'capture');
  assert.is(s.promo_uses('ONE'), 1);
  s.check();
  const t = new Shop({ promo_codes: [promo('ONE', { max_uses: 1 })] });
  const lapsed = t.draft('alice', ['101-A-1'], 'ONE').reply;
  const lapsed_pay = t.pay(lapsed.id);
  t.advance(TTL_MS);
  t.timers();
  assert.is(t.promo_uses('ONE'), 0, 'an expired draft returns its use');
  t.draft('bob', ['101-A-9'], 'ONE');
  const refused = t.confirm_order(lapsed.id, lapsed_pay, 'alice');
  assert.is(refused.reply.k, 'void_then_fail');
  assert.ok(void_message(refused.reply).includes('promo code ONE was used up'));
  assert.is(t.promo_uses('ONE'), 1);
  t.check();
});

test('ConfirmOrder retake after the promo expired is refused, as a new draft with it is', () => {
  // The hold lapses at T0 + 600 s; the promo is valid until T0 + 650 s.
  const valid_until_unix = Math.floor(T0 / 1000) + 650;
  for (const run_timer of [false, true]) {
    const s = new Shop({ promo_codes: [promo('EARLY', { valid_until_unix })] });
    const view = s.draft('alice', ['101-A-1'], 'EARLY').reply;
    const pay = s.pay(view.id);
    s.advance(TTL_MS + 60_000);
    if (run_timer) s.timers();
    rejects(s, 'PromoUnavailableError', () => s.draft('bob', ['101-A-5'], 'EARLY'));
    const { decision, reply } = s.confirm_order(view.id, pay, 'alice');
    assert.is(reply.k, 'void_then_fail', `refused (timer run: ${run_timer})`);
    assert.ok(void_message(reply).includes('promo code EARLY expired at'), 'says why');
    const expiry = ['hold_expired', 'order_expired'];
    assert.equal(kinds(decision.records).filter((t) => !expiry.includes(t)), ['payment_voiding']);
    assert.is(s.order(view.id).status, 'EXPIRED');
    assert.is(s.availability().sold, 0);
    // The draft expires once on the bus: by the timer, or here when the timer had not run.
    const types = decision.outbox.map((e) => e.type);
    assert.equal(types, run_timer ? [] : ['InventoryHoldExpired', 'OrderExpired']);
    if (!run_timer) {
      assert.equal(decision.outbox[1]!.payload, {
        order_id: view.id, user_id: 'alice', event_id: 'evt-1',
        expired_at_unix: Math.floor(s.now / 1000), trace_id: s.order(view.id).trace_id,
      });
    }
    s.check();
  }
  // Before the promo's end the same retake sells.
  const s = new Shop({ promo_codes: [promo('EARLY', { valid_until_unix })] });
  const view = s.draft('alice', ['101-A-1'], 'EARLY').reply;
  const pay = s.pay(view.id);
  s.advance(TTL_MS + 10_000);
  assert.is(s.confirm_order(view.id, pay, 'alice').reply.k, 'capture');
});

// ---------------------------------------------------------------------------------------------
// Reading orders back

test('GetOrder: the owner and a service see the order; another user gets OrderNotFoundError',
  () => {
  const s = new Shop();
  const view = s.draft('alice', ['101-A-1', '102-A-1']).reply;
  const pay = s.pay(view.id);
  const details = get_order(s.state, { order_id: view.id, actor_user_id: 'alice' });
  assert.equal([details.id, details.status, details.user_id, details.event_id],
    [view.id, 'DRAFT', 'alice', 'evt-1']);
  assert.equal(details.seat_ids, ['101-A-1', '102-A-1']);
  assert.equal([details.payment_id, details.payment_status], [pay, 'AUTHORIZED']);
  assert.equal(details.subtotal, { amount_micros: 80_000_000, currency: 'EUR' });
  assert.equal(get_order(s.state, { order_id: view.id, actor_user_id: null }), details);
  const get = (order_id: string, actor_user_id: string | null) =>
    get_order(s.state, { order_id, actor_user_id });
  rejects(s, 'OrderNotFoundError', () => get(view.id, 'bob'));
  rejects(s, 'OrderNotFoundError', () => get('order-none', null));
});

test('ListOrders: the user\'s own orders, newest first, paged strictly before the cursor', () => {
  const s = new Shop();
  const ids: string[] = [];
  for (let i = 1; i <= 3; i++) {
    ids.push(s.draft('alice', [`101-A-${i}`]).reply.id);
    s.draft('bob', [`101-B-${i}`]);
    s.advance(1000);
  }
  // Two more in the same millisecond: ordered by id, descending.
  const same = [s.draft('alice', ['102-A-1']).reply.id, s.draft('alice', ['102-A-2']).reply.id];
  same.sort().reverse();
  const all = list_orders(s.state, { user_id: 'alice', ...NEWEST, limit: 100 });
  assert.equal(all.map((o) => o.id), [...same, ids[2], ids[1], ids[0]]);
  assert.ok(all.every((o) => o.user_id === 'alice'));
  const page = (before: OrderDetails | undefined): string[] => {
    const cursor = before === undefined
      ? NEWEST
      : { before_ms: before.created_at_ms, before_order_id: before.id };
    return list_orders(s.state, { user_id: 'alice', ...cursor, limit: 2 }).map((o) => o.id);
  };
  const first = page(undefined);
  assert.equal(first, same);
  const second = page(all[1]);
  assert.equal(second, [ids[2], ids[1]]);
  assert.equal(page(all[3]), [ids[0]]);
  assert.equal(page(all[4]), []);
  assert.equal(list_orders(s.state, { user_id: 'nobody', ...NEWEST, limit: 5 }), []);
  const too_many = L.list_orders_page_max + 1;
  assert.throws(() => list_orders(s.state, { user_id: 'alice', ...NEWEST, limit: too_many }));
});

// ---------------------------------------------------------------------------------------------
// A hold's end and the timers

test('expiry: the timer expires a draft with its hold, frees its promo, emits OrderExpired', () => {
  const s = new Shop({ promo_codes: [promo('TEN')] });
  const view = s.draft('alice', ['101-A-1'], 'TEN').reply;
  const order = s.order(view.id);
  s.advance(TTL_MS - 1);
  assert.equal(s.timers().records, []);
  assert.is(next_deadline_ms(s.state), T0 + TTL_MS);
  s.advance(1);
  const d: Effects<PartitionRecord> = s.timers();
  assert.equal(d.records, [
    { t: 'hold_expired', hold_id: order.hold_id, at_ms: s.now },
    { t: 'order_expired', order_id: view.id, at_ms: s.now },
  ]);
  assert.equal(d.outbox.map((e) => e.type), ['InventoryHoldExpired', 'OrderExpired']);
  assert.equal(d.outbox[1], {
    type: 'OrderExpired', key: view.id,
    payload: {
      order_id: view.id, user_id: 'alice', event_id: 'evt-1',
      expired_at_unix: Math.floor(s.now / 1000), trace_id: 'trace-d',
    },
  });
  assert.is(s.order(view.id).status, 'EXPIRED');
  assert.is(s.promo_uses('TEN'), 0);
  assert.is(s.availability().held, 0);
  s.check();
});

test('ReleaseHold of a draft\'s hold cancels the draft and voids its authorization', () => {
  const s = new Shop();
  const view = s.draft('alice', ['101-A-1']).reply;
  const pay = s.pay(view.id);
  const { decision, reply } = s.release(s.order(view.id).hold_id, 'alice');
  assert.is(reply.released, true);
  assert.equal(kinds(decision.records), ['hold_released', 'order_cancelled', 'payment_voiding']);
  assert.equal(decision.outbox.map((e) => e.type), ['HoldReleased']);
  assert.is(s.order(view.id).status, 'CANCELLED');
  assert.is(s.state.purchase.payments.get(pay)!.status, 'VOIDING');
  s.check();
});

test('ended drafts are forgotten after their retention, unless a gateway call is owed', () => {
  const s = new Shop();
  const quiet = s.draft('alice', ['101-A-1']).reply.id;
  const owed = s.draft('alice', ['101-A-2']).reply.id;
  const pay = s.pay(owed);
  s.release(s.order(owed).hold_id, 'alice');
  const status = s.state.purchase.payments.get(pay)!.status;
  assert.is(status, 'VOIDING', 'the void is owed to the gateway');
  s.advance(TTL_MS);
  s.timers();
  assert.is(s.order(quiet).status, 'EXPIRED');
  // The cancelled one is due first: it leaves the queue but is kept.
  s.advance(L.ended_order_retention_ms - TTL_MS);
  const first = s.timers().records.filter((r) => r.t === 'orders_forgotten');
  assert.equal(first, [{ t: 'orders_forgotten', dequeued: 1, order_ids: [] }]);
  assert.ok(s.state.purchase.orders.has(owed), 'kept while the void is owed');
  assert.ok(s.state.purchase.payments.has(pay));
  s.advance(TTL_MS - 1);
  assert.equal(s.timers().records.filter((r) => r.t === 'orders_forgotten'), []);
  assert.ok(s.state.purchase.orders.has(quiet));
  assert.is(next_deadline_ms(s.state), s.now + 1);
  s.advance(1);
  const second = s.timers().records.filter((r) => r.t === 'orders_forgotten');
  assert.equal(second, [{ t: 'orders_forgotten', dequeued: 1, order_ids: [quiet] }]);
  assert.not.ok(s.state.purchase.orders.has(quiet));
  assert.ok(s.state.purchase.orders.has(owed));
  s.check();
});

test.run();

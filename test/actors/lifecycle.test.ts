// Hold lifecycle (issue 14) through decide + apply with a fake clock: ExtendHold's rules and
// caps, CreateDraftFromHold (then Authorize and ConfirmOrder unchanged), ReturnSeats (seats
// free, counts down, the refund owed in the same decision, retries), and a restart from a
// snapshot with extensions and returned seats.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { no_signals } from '../../src/actors/fraud.js';
import { decide_extend_hold, type PartitionRecord } from '../../src/actors/inventory.js';
import * as L from '../../src/actors/limits.js';
import {
  decide_confirm_order, decide_create_draft, decide_create_draft_from_hold, get_order,
} from '../../src/actors/orders.js';
import {
  decide_authorize_begin, decide_authorize_end, decide_refund_begin, decide_settle, open_settlements,
} from '../../src/actors/payments.js';
import { SEAT_FREE, SEAT_HELD } from '../../src/actors/partition_state.js';
import { decide_return_seats, type ReturnSeatsReply } from '../../src/actors/returns.js';
import { EventCodec } from '../../src/kafka/encode.js';
import { Harness, rejects, replied, restart, restart_v2, step } from './helpers.js';

/** 101-A seats are tier A: 50 EUR each. */
const SEAT_MICROS = 50_000_000;
const codec = new EventCodec();

function kinds(records: PartitionRecord[]): string[] {
  return records.map((r) => r.t);
}

class Shop extends Harness {
  constructor() {
    super();
    this.create_event();
  }

  extend(hold_id: string, extend_seconds: number, actor: string | null = 'alice') {
    return step(this.state, decide_extend_hold(this.state, {
      hold_id, extend_seconds, actor_user_id: actor, trace_id: 't-ext',
    }, this.ctx()));
  }

  from_hold(hold_id: string, actor: string | null = 'alice', key = '', promo_code = '') {
    return step(this.state, decide_create_draft_from_hold(this.state, {
      hold_id, promo_code, idempotency_key: key, actor_user_id: actor, trace_id: 't-draft',
    }, this.ctx()));
  }

  /** A draft from a hold of `seats`, authorized, confirmed and captured. */
  bought(seats: string[], user = 'alice'): { order_id: string; payment_id: string; hold_id: string } {
    const { hold_id } = this.reserve(user, seats).reply;
    const order = replied(this.from_hold(hold_id, user));
    const begin = replied(step(this.state, decide_authorize_begin(this.state, {
      order_id: order.id, amount_micros: order.total.amount_micros, currency: 'EUR',
      actor_user_id: user, idempotency_key: '', signals: no_signals, trace_id: 't',
    }, this.ctx())));
    assert.is(begin.k, 'call');
    const payment_id = begin.k === 'call' ? begin.payment_id : '';
    step(this.state, decide_authorize_end(this.state, { payment_id, outcome: { approved: true, gateway_ref: 'gw-1' } }, this.ctx()));
    const confirmed = replied(step(this.state, decide_confirm_order(this.state, {
      order_id: order.id, payment_id, actor_user_id: user, trace_id: 't',
    }, this.ctx())));
    assert.is(confirmed.k, 'capture');
    step(this.state, decide_settle(this.state, { action: 'captured', payment_id, refund_id: '', idempotency_key: '' }, this.ctx()));
    assert.is(this.state.purchase.payments.get(payment_id)!.status, 'CAPTURED');
    return { order_id: order.id, payment_id, hold_id };
  }

  give_back(order_id: string, seat_ids: string[], refund_micros = 0, key = 'ret-1', currency = 'EUR') {
    return step(this.state, decide_return_seats(this.state, {
      order_id, seat_ids, refund_amount_micros: refund_micros, currency, idempotency_key: key, trace_id: 't-ret',
    }, this.ctx()));
  }

  seat(id: string): number {
    return this.state.events.get('evt-1')!.map.index_of(id);
  }

  sold_to(user: string): number {
    return this.state.events.get('evt-1')!.users.get(user)?.sold ?? 0;
  }
}

test('ExtendHold: moves the expiry, counts down the extensions, says HoldExtended; the timer follows the new expiry', () => {
  const h = new Shop();
  const { hold_id, expires_at_ms } = h.reserve('alice', ['101-A-1'], 600).reply;
  const d = h.extend(hold_id, 300);
  assert.equal(replied(d), { expires_at_ms: expires_at_ms + 300_000, extensions_left: L.hold_extensions_max - 1 });
  assert.equal(kinds(d.records), ['hold_extended']);
  assert.is(d.outbox.length, 1);
  assert.is(d.outbox[0]!.type, 'HoldExtended');
  assert.is(d.outbox[0]!.key, 'evt-1');
  assert.equal(d.outbox[0]!.payload, {
    hold_id, event_id: 'evt-1', user_id: 'alice', expires_at_unix: Math.floor((expires_at_ms + 300_000) / 1000),
    extensions_left: L.hold_extensions_max - 1, order_id: '', extended_at_unix: Math.floor(h.now / 1000), trace_id: 't-ext',
  });
  // The payload encodes as the proto's HoldExtended (unknown fields would be refused).
  assert.ok(codec.to_message({ ...d.outbox[0]!, event_id: 'n-p0-1', created_ms: h.now }, '').value.length > 0);
  h.advance(600_000);
  assert.equal(kinds(h.timers().records), [], 'not expired at the old expiry');
  assert.is(h.state.holds.get(hold_id)!.status, 'active');
  h.advance(300_000);
  assert.equal(kinds(h.timers().records), ['hold_expired'], 'expired at the new expiry');
  h.check();
});

test('ExtendHold caps: hold_life_seconds_max from creation, hold_extensions_max calls; each refusal says which cap', () => {
  const h = new Shop();
  const { hold_id } = h.reserve('alice', ['101-A-1'], 3000).reply;
  const created = h.state.holds.get(hold_id)!.created_ms;
  // 3000 + 3600 would pass the life cap: the expiry stops at creation + 3600 s.
  assert.is(replied(h.extend(hold_id, 3600)).expires_at_ms, created + L.hold_life_seconds_max * 1000);
  const at_cap = rejects(h, 'HoldExtensionRefusedError', () => h.extend(hold_id, 60));
  assert.match(at_cap.message, 'hold_life_seconds_max');
  const other = new Shop();
  const b = other.reserve('alice', ['101-A-2'], 60).reply.hold_id;
  for (let i = 0; i < L.hold_extensions_max; i++) replied(other.extend(b, 60));
  assert.is(other.state.holds.get(b)!.extensions, L.hold_extensions_max);
  const spent = rejects(other, 'HoldExtensionRefusedError', () => other.extend(b, 60));
  assert.match(spent.message, 'hold_extensions_max');
  other.check();
});

test('ExtendHold hostile input: someone else\'s hold is NOT_FOUND, bad seconds, expired (before and after its timer), released, unknown', () => {
  const h = new Shop();
  const { hold_id } = h.reserve('alice', ['101-A-1'], 60).reply;
  rejects(h, 'HoldNotFoundError', () => h.extend(hold_id, 60, 'mallory'));
  for (const s of [0, -1, L.hold_ttl_seconds_max + 1, 1.5, Number.NaN]) rejects(h, 'InvalidArgumentError', () => h.extend(hold_id, s));
  rejects(h, 'HoldNotFoundError', () => h.extend('hold_0_AAAAAAAAAAAAAAAAAAAAAA', 60));
  replied(h.extend(hold_id, 60, null)); // a service may
  h.advance(120_000);
  rejects(h, 'HoldNotActiveError', () => h.extend(hold_id, 60), 'evt-1');
  h.timers();
  rejects(h, 'HoldNotActiveError', () => h.extend(hold_id, 60));
  const r = h.reserve('alice', ['101-A-2']).reply.hold_id;
  h.release(r, 'alice');
  rejects(h, 'HoldNotActiveError', () => h.extend(r, 60));
});

test('ExtendHold of a draft\'s hold extends the draft: GetOrder shows it, Authorize still works after the old expiry', () => {
  const h = new Shop();
  const order = replied(step(h.state, decide_create_draft(h.state, {
    event_id: 'evt-1', seat_ids: ['101-A-3'], user_id: 'alice', promo_code: '', idempotency_key: '', trace_id: 't',
  }, h.ctx())));
  const hold_id = h.state.purchase.orders.get(order.id)!.hold_id;
  const d = h.extend(hold_id, 600);
  assert.is(d.outbox[0]!.payload['order_id' as keyof object], order.id);
  const details = get_order(h.state, { order_id: order.id, actor_user_id: 'alice' });
  assert.is(details.hold_expires_at_unix, Math.floor(replied(d).expires_at_ms / 1000));
  assert.equal([details.hold_extensions, details.hold_extensions_left], [1, L.hold_extensions_max - 1]);
  h.advance(L.hold_ttl_seconds_default * 1000 + 1000);
  assert.equal(kinds(h.timers().records), [], 'neither the hold nor the draft expired');
  const begin = replied(step(h.state, decide_authorize_begin(h.state, {
    order_id: order.id, amount_micros: SEAT_MICROS, currency: 'EUR', actor_user_id: 'alice', idempotency_key: '', signals: no_signals, trace_id: 't',
  }, h.ctx())));
  assert.is(begin.k, 'call');
  h.advance(600_000);
  assert.equal(kinds(h.timers().records), ['hold_expired', 'order_expired'], 'the draft expires with its hold');
  h.check();
});

test('CreateDraftFromHold: priced from the hold, the same hold and expiry, no new hold or HoldCreated; then Authorize + ConfirmOrder sell it', () => {
  const h = new Shop();
  const { hold_id, expires_at_ms } = h.reserve('alice', ['101-A-1', '101-B-1']).reply;
  const holds = h.state.holds.size;
  const d = h.from_hold(hold_id);
  assert.equal(kinds(d.records), ['order_created']);
  assert.equal(d.outbox, []);
  const order = replied(d);
  assert.equal([order.status, order.total], ['DRAFT', { amount_micros: 80_000_000, currency: 'EUR' }]);
  assert.is(h.state.holds.size, holds);
  const o = h.state.purchase.orders.get(order.id)!;
  assert.equal([o.hold_id, o.hold_expires_at_ms], [hold_id, expires_at_ms]);
  h.check();
  const bought = h.bought(['101-A-5']);
  assert.is(h.state.purchase.orders.get(bought.order_id)!.status, 'CONFIRMED');
  assert.is(h.state.holds.get(bought.hold_id)!.status, 'confirmed');
  h.check();
});

test('CreateDraftFromHold hostile input: someone else\'s hold, a hold with an order, a confirmed / released / expired hold, key reuse', () => {
  const h = new Shop();
  const { hold_id } = h.reserve('alice', ['101-A-1']).reply;
  rejects(h, 'HoldNotFoundError', () => h.from_hold(hold_id, 'mallory'));
  const first = replied(h.from_hold(hold_id, 'alice', 'k1'));
  assert.equal(replied(h.from_hold(hold_id, 'alice', 'k1')), first, 'a retry answers the same order');
  assert.equal(replied(h.from_hold(hold_id, null, 'k1')), first, 'a service retrying for alice too');
  const carried = rejects(h, 'HoldNotActiveError', () => h.from_hold(hold_id, 'alice', 'k2'));
  assert.match(carried.message, first.id);
  rejects(h, 'HoldNotActiveError', () => h.from_hold(hold_id, 'alice'));
  const other = h.reserve('alice', ['101-A-2']).reply.hold_id;
  rejects(h, 'IdempotencyKeyReusedError', () => h.from_hold(other, 'alice', 'k1'));
  const bought = h.bought(['101-A-3']);
  rejects(h, 'HoldNotActiveError', () => h.from_hold(bought.hold_id));
  h.confirm(h.reserve('alice', ['101-A-4']).reply.hold_id, 'ord-ext-1');
  const allocated = [...h.state.holds.values()].find((x) => x.order_id === 'ord-ext-1')!;
  assert.match(rejects(h, 'HoldNotActiveError', () => h.from_hold(allocated.hold_id)).message, 'ord-ext-1');
  h.release(other, 'alice');
  rejects(h, 'HoldNotActiveError', () => h.from_hold(other));
  const late = h.reserve('alice', ['101-A-6'], 60).reply.hold_id;
  h.advance(61_000);
  rejects(h, 'HoldNotActiveError', () => h.from_hold(late));
  const bobs = h.reserve('bob', ['101-A-7']).reply.hold_id;
  rejects(h, 'PromoUnavailableError', () => h.from_hold(bobs, 'bob', '', 'NOPE'));
  h.check();
});

test('ReturnSeats with a refund: seats free, counts down, refund owed in the same decision; settled like any refund', () => {
  const h = new Shop();
  const { order_id, payment_id } = h.bought(['101-A-1', '101-A-2']);
  const event = h.state.events.get('evt-1')!;
  assert.equal([event.sold, h.sold_to('alice')], [2, 2]);
  const d = h.give_back(order_id, ['101-A-2'], 30_000_000);
  assert.equal(kinds(d.records), ['seats_returned', 'refund_started', 'idempotency_stored']);
  const reply = replied(d);
  assert.is(reply.k, 'call');
  const refund_id = reply.k === 'call' ? reply.refund_id : '';
  assert.is(event.seat_state[h.seat('101-A-2')], SEAT_FREE);
  assert.equal([event.sold, h.sold_to('alice')], [1, 1]);
  assert.equal(d.outbox.map((e) => e.type), ['OrderSeatsReturned']);
  assert.equal(d.outbox[0]!.payload, {
    order_id, event_id: 'evt-1', user_id: 'alice', seat_ids: ['101-A-2'],
    refund_amount: { amount_micros: 30_000_000, currency: 'EUR' }, refund_id, status: 'PARTIALLY_RETURNED',
    returned_at_unix: Math.floor(h.now / 1000), trace_id: 't-ret',
  });
  assert.ok(codec.to_message({ ...d.outbox[0]!, event_id: 'n-p0-2', created_ms: h.now }, '').value.length > 0);
  assert.equal(open_settlements(h.state, h.now, 10).map((s) => [s.action, s.refund_id, s.amount_micros]), [['refund', refund_id, 30_000_000]]);
  const settled = step(h.state, decide_settle(h.state, { action: 'refunded', payment_id, refund_id, idempotency_key: '' }, h.ctx()));
  assert.equal(kinds(settled.records), ['refund_succeeded', 'idempotency_stored']);
  const details = get_order(h.state, { order_id, actor_user_id: null });
  assert.equal([details.status, details.returned_seat_ids, details.refunded_micros, details.payment_status],
    ['PARTIALLY_RETURNED', ['101-A-2'], 30_000_000, 'PARTIALLY_REFUNDED']);
  assert.equal(details.seat_ids, ['101-A-1', '101-A-2'], 'seat_ids stays what was bought');
  // The rest, no refund: RETURNED, the user owns nothing of the event any more.
  const rest = replied(h.give_back(order_id, [], 0, 'ret-2', ''));
  assert.is(rest.k, 'done');
  assert.is(rest.k === 'done' ? rest.order.status : '', 'RETURNED');
  assert.equal([event.sold, h.sold_to('alice'), h.state.purchase.orders.get(order_id)!.status], [0, 0, 'RETURNED']);
  h.check();
});

test('ReturnSeats retries answer the first result; a pending refund is called again with the same refund id, never a second one', () => {
  const h = new Shop();
  const { order_id, payment_id } = h.bought(['101-A-1', '101-A-2']);
  const first = replied(h.give_back(order_id, ['101-A-1'], 10_000_000, 'ret-9'));
  const again = h.give_back(order_id, ['101-A-1'], 10_000_000, 'ret-9');
  assert.equal(again.records, [], 'a retry journals nothing');
  assert.equal(replied(again), first, 'a retry while the refund is pending: the same gateway call');
  const refund_id = first.k === 'call' ? first.refund_id : '';
  step(h.state, decide_settle(h.state, { action: 'refunded', payment_id, refund_id, idempotency_key: '' }, h.ctx()));
  const done: ReturnSeatsReply = replied(h.give_back(order_id, ['101-A-1'], 10_000_000, 'ret-9'));
  assert.is(done.k, 'done');
  assert.is(h.state.purchase.payments.get(payment_id)!.refunds.length, 1, 'one refund only');
  rejects(h, 'IdempotencyKeyReusedError', () => h.give_back(order_id, ['101-A-2'], 0, 'ret-9'));
  h.check();
});

test('ReturnSeats hostile input: another order\'s seats, twice, beyond capture, wrong currency, not sold, no key, a customer\'s order id', () => {
  const h = new Shop();
  const a = h.bought(['101-A-1', '101-A-2']);
  const b = h.bought(['101-A-3'], 'bob');
  rejects(h, 'InvalidArgumentError', () => h.give_back(a.order_id, ['101-A-3'], 0, 'x1'));
  rejects(h, 'InvalidArgumentError', () => h.give_back(a.order_id, ['nonsense'], 0, 'x2'));
  rejects(h, 'InvalidArgumentError', () => h.give_back(a.order_id, ['101-A-1', '101-A-1'], 0, 'x3'));
  rejects(h, 'InvalidArgumentError', () => h.give_back(a.order_id, ['101-A-1'], 0, ''));
  rejects(h, 'RefundExceedsCapturedError', () => h.give_back(a.order_id, ['101-A-1'], 2 * SEAT_MICROS + 1, 'x4'));
  rejects(h, 'InvalidArgumentError', () => h.give_back(a.order_id, ['101-A-1'], 1, 'x5', 'USD'));
  rejects(h, 'InvalidArgumentError', () => h.give_back(a.order_id, ['101-A-1'], -1, 'x6'));
  replied(h.give_back(a.order_id, ['101-A-1'], SEAT_MICROS, 'x7'));
  rejects(h, 'OrderStateError', () => h.give_back(a.order_id, ['101-A-1'], 0, 'x8'), 'evt-1');
  // What is left to refund counts the pending refund.
  rejects(h, 'RefundExceedsCapturedError', () => h.give_back(a.order_id, ['101-A-2'], SEAT_MICROS + 1, 'x9'));
  // A refund through PaymentService.Refund sees the pending return refund too.
  rejects(h, 'RefundExceedsCapturedError', () => step(h.state, decide_refund_begin(h.state, {
    payment_id: a.payment_id, amount_micros: SEAT_MICROS + 1, currency: 'EUR', idempotency_key: '', trace_id: 't',
  }, h.ctx())));
  const carols = h.reserve('carol', ['101-A-9']).reply.hold_id;
  const draft = replied(h.from_hold(carols, 'carol'));
  rejects(h, 'OrderStateError', () => h.give_back(draft.id, [], 0, 'x10'));
  rejects(h, 'OrderNotFoundError', () => h.give_back('order_0_AAAAAAAAAAAAAAAAAAAAAA', [], 0, 'x11'));
  assert.equal(h.state.purchase.orders.get(b.order_id)!.returned, [], 'bob\'s order untouched');
  h.check();
});

test('a returned seat can be reserved and bought by someone else; its first buyer may buy again within max_seats_per_user', () => {
  const h = new Shop();
  const seats = ['101-A-1', '101-A-2', '101-A-3', '101-A-4', '101-A-5', '101-A-6', '101-A-7', '101-A-8'];
  const a = h.bought(seats);
  rejects(h, 'SeatsPerUserExceededError', () => h.reserve('alice', ['101-A-9']));
  replied(h.give_back(a.order_id, ['101-A-8'], SEAT_MICROS, 'r1'));
  const bob = h.reserve('bob', ['101-A-8']).reply.hold_id;
  assert.is(h.state.events.get('evt-1')!.seat_state[h.seat('101-A-8')], SEAT_HELD);
  h.check();
  h.bought(['101-A-9']); // alice is back within her limit
  h.release(bob, 'bob');
  h.bought(['101-A-8'], 'bob');
  assert.equal([h.sold_to('alice'), h.sold_to('bob')], [8, 1]);
  h.check();
});

test('restart from a snapshot keeps extensions, returned seats, counts and the owed refund; old snapshots restore as 0 / []', () => {
  const h = new Shop();
  const a = h.bought(['101-A-1', '101-A-2']);
  const r = replied(h.give_back(a.order_id, ['101-A-2'], 5_000_000, 'r1'));
  const { hold_id } = h.reserve('bob', ['101-A-2']).reply;
  replied(h.extend(hold_id, 120, 'bob'));
  h.state = restart(h.state);
  h.check();
  assert.is(h.state.holds.get(hold_id)!.extensions, 1);
  assert.equal(h.state.purchase.orders.get(a.order_id)!.returned, [h.seat('101-A-2')]);
  assert.equal([h.sold_to('alice'), h.state.events.get('evt-1')!.sold], [1, 1]);
  const owed = open_settlements(h.state, h.now, 10);
  assert.equal(owed.map((s) => s.refund_id), [r.k === 'call' ? r.refund_id : '?'], 'the refund is owed exactly once');
  // An older snapshot: no extensions on holds, no returned on orders.
  const old = new Shop();
  const o = old.bought(['101-A-1']);
  const held = old.reserve('bob', ['101-A-3']).reply.hold_id;
  for (const order of old.state.purchase.orders.values()) delete (order as { returned?: number[] }).returned;
  old.state = restart_v2(old.state, ['extensions']);
  assert.equal([old.state.holds.get(held)!.extensions, old.state.purchase.orders.get(o.order_id)!.returned], [0, []]);
  old.check();
  replied(old.extend(held, 60, 'bob'));
  replied(old.give_back(o.order_id, [], 0, 'r2', ''));
  old.check();
});

test.run();

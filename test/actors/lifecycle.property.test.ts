// Model-based test of the hold lifecycle (issue 14): random ReserveTickets, ExtendHold, buying a
// hold (CreateDraftFromHold → Authorize → ConfirmOrder → capture), ReturnSeats with and without
// a refund (new keys and retries), settling owed refunds, ReleaseHold, clock advances (with or
// without the timer) and restarts from a snapshot, from three users contending for eight seats.
// After every command, model and actor agree: every seat's state, every user's held and sold
// counts, each order's returned seats and status, and the refunds owed (each exactly once) and
// made; the invariants hold.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { no_signals } from '../../src/actors/fraud.js';
import { decide_extend_hold } from '../../src/actors/inventory.js';
import { check_invariants } from '../../src/actors/invariants.js';
import * as L from '../../src/actors/limits.js';
import { decide_confirm_order, decide_create_draft_from_hold } from '../../src/actors/orders.js';
import { SEAT_FREE, SEAT_HELD, SEAT_SOLD } from '../../src/actors/partition_state.js';
import {
  decide_authorize_begin, decide_authorize_end, decide_settle, open_settlements,
} from '../../src/actors/payments.js';
import { decide_return_seats } from '../../src/actors/returns.js';
import { restore, snapshot } from '../../src/actors/snapshot.js';
import { Harness, replied, restart, sample_spec, step } from './helpers.js';

const EVENT = 'evt-l';
const PRICE = 1_000_000;
const SPEC = sample_spec({
  event_id: EVENT, price_tiers: { T: PRICE },
  sections: [{ name: 'S', rows: [{ name: 'A', seats: 8, tier: 'T' }] }], max_seats_per_user: 4,
});
const SEATS = 8;
const SEAT_IDS = Array.from({ length: SEATS }, (_, i) => `S-A-${i + 1}`);
const USERS = ['u0', 'u1', 'u2'];
const MAX = SPEC.max_seats_per_user;

type Seat = 'free' | 'held' | 'sold';
interface MOrder { id: string; payment_id: string; seats: number[]; returned: Set<number>; captured: number; pending: Map<string, number>; refunded: number; refunds: number }
interface MHold {
  id: string; user: string; seats: number[]; created: number; expires_at: number;
  status: 'active' | 'released' | 'expired' | 'confirmed'; extensions: number; order: MOrder | null;
}
interface Model {
  start: number; now: number; seat: Seat[]; holds: MHold[]; keys: number;
  /** Extended holds the timer expired (at their new expiry). */ late_expiries: number;
  last_return: { order: MOrder; req: ReturnReq; reply: string } | null }
interface ReturnReq { seat_ids: string[]; refund: number; key: string }
interface Real { h: Harness }

/** ref 0 is the newest item, 1 the one before, and so on round. */
function pick<T>(items: T[], ref: number): T | undefined {
  return items.length === 0 ? undefined : items[items.length - 1 - (ref % items.length)];
}

function orders(m: Model): MOrder[] {
  return m.holds.flatMap((h) => (h.order === null ? [] : [h.order]));
}

function counts(m: Model, user: string): { held: number; sold: number } {
  let held = 0;
  let sold = 0;
  for (const h of m.holds.filter((x) => x.user === user)) {
    if (h.status === 'active') held += h.seats.length;
    if (h.status === 'confirmed') sold += h.seats.length - (h.order?.returned.size ?? 0);
  }
  return { held, sold };
}

function attempt(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (error) {
    if (!(error instanceof Error) || error.name === 'AssertionError') throw error;
    assert.is((error as { rejection?: unknown }).rejection, true, `${error.name} is a rejection`);
    return error.name;
  }
}

function verify(m: Model, r: Real): void {
  const state = r.h.state;
  check_invariants(state);
  const event = state.events.get(EVENT)!;
  const want = { free: SEAT_FREE, held: SEAT_HELD, sold: SEAT_SOLD };
  for (let i = 0; i < SEATS; i++) assert.is(event.seat_state[i], want[m.seat[i]!], `seat ${SEAT_IDS[i]}`);
  for (const user of USERS) {
    const c = event.users.get(user);
    assert.equal({ held: c?.held ?? 0, sold: c?.sold ?? 0 }, counts(m, user), `user ${user} counts exact`);
  }
  const owed = new Set(open_settlements(state, m.now, L.settlements_per_request_max).filter((s) => s.action === 'refund').map((s) => s.refund_id));
  const pending = new Set(orders(m).flatMap((o) => [...o.pending.keys()]));
  assert.equal(owed, pending, 'every refund owed, exactly once, and no other');
  for (const o of orders(m)) {
    const real = state.purchase.orders.get(o.id)!;
    assert.equal(new Set(real.returned), o.returned, `order ${o.id} returned seats`);
    const status = o.returned.size === 0 ? (o.refunded === 0 ? 'CONFIRMED' : o.refunded === o.captured ? 'REFUNDED' : 'PARTIALLY_REFUNDED')
      : o.returned.size === o.seats.length ? 'RETURNED' : 'PARTIALLY_RETURNED';
    assert.is(real.status, status, `order ${o.id} status`);
    const payment = state.purchase.payments.get(o.payment_id)!;
    const pending_micros = [...o.pending.values()].reduce((a, b) => a + b, 0);
    assert.equal([payment.refunded_micros, payment.refund_pending_micros], [o.refunded, pending_micros], `order ${o.id} money`);
  }
  for (const h of m.holds) {
    const real = state.holds.get(h.id)!;
    assert.equal([real.status, real.expires_at_ms, real.extensions], [h.status, h.expires_at, h.extensions], `hold ${h.id}`);
  }
}

class Reserve implements fc.Command<Model, Real> {
  constructor(readonly user: string, readonly seats: number[], readonly ttl: number) {}
  check(): boolean {
    return true;
  }
  run(m: Model, r: Real): void {
    const c = counts(m, this.user);
    const ok = this.seats.every((i) => m.seat[i] === 'free') && c.held + c.sold + this.seats.length <= MAX;
    let hold_id = '';
    const got = attempt(() => {
      hold_id = r.h.reserve(this.user, this.seats.map((i) => SEAT_IDS[i]!), this.ttl, EVENT).reply.hold_id;
    });
    assert.is(got === 'ok', ok, `reserve answered ${got}`);
    if (!ok) return;
    for (const i of this.seats) m.seat[i] = 'held';
    m.holds.push({ id: hold_id, user: this.user, seats: [...this.seats], created: m.now, expires_at: m.now + this.ttl * 1000, status: 'active', extensions: 0, order: null });
  }
  toString(): string {
    return `reserve(${this.user}, ${this.seats.join(',')}, ${this.ttl}s)`;
  }
}

class Extend implements fc.Command<Model, Real> {
  constructor(readonly ref: number, readonly actor: 'owner' | 'other' | 'service', readonly seconds: number) {}
  check(m: Readonly<Model>): boolean {
    return m.holds.length > 0;
  }
  run(m: Model, r: Real): void {
    const h = pick(m.holds, this.ref)!;
    const actor = this.actor === 'service' ? null : this.actor === 'owner' ? h.user : USERS[(USERS.indexOf(h.user) + 1) % USERS.length]!;
    const life_end = h.created + L.hold_life_seconds_max * 1000;
    const next = Math.min(h.expires_at + this.seconds * 1000, life_end);
    const expected = actor !== null && actor !== h.user ? 'HoldNotFoundError'
      : this.seconds < 1 || this.seconds > L.hold_ttl_seconds_max ? 'InvalidArgumentError'
        : h.status !== 'active' || m.now >= h.expires_at ? 'HoldNotActiveError'
          : h.extensions >= L.hold_extensions_max || next <= h.expires_at ? 'HoldExtensionRefusedError' : 'ok';
    const got = attempt(() => step(r.h.state, decide_extend_hold(r.h.state, { hold_id: h.id, extend_seconds: this.seconds, actor_user_id: actor, trace_id: 't' }, r.h.ctx())));
    assert.is(got, expected);
    if (got !== 'ok') return;
    h.expires_at = next;
    h.extensions++;
  }
  toString(): string {
    return `extend(#${this.ref}, ${this.actor}, ${this.seconds}s)`;
  }
}

class Buy implements fc.Command<Model, Real> {
  constructor(readonly ref: number) {}
  check(m: Readonly<Model>): boolean {
    return m.holds.length > 0;
  }
  run(m: Model, r: Real): void {
    const h = pick(m.holds, this.ref)!;
    const s = r.h.state;
    const expected = h.order !== null || h.status !== 'active' || m.now >= h.expires_at ? 'HoldNotActiveError' : 'ok';
    let order_id = '';
    const got = attempt(() => {
      order_id = replied(step(s, decide_create_draft_from_hold(s, { hold_id: h.id, promo_code: '', idempotency_key: '', actor_user_id: h.user, trace_id: 't' }, r.h.ctx()))).id;
    });
    assert.is(got, expected);
    if (got !== 'ok') return;
    const total = PRICE * h.seats.length;
    const begin = replied(step(s, decide_authorize_begin(s, { order_id, amount_micros: total, currency: 'EUR', actor_user_id: h.user, idempotency_key: '', signals: no_signals, trace_id: 't' }, r.h.ctx())));
    assert.is(begin.k, 'call');
    const payment_id = begin.k === 'call' ? begin.payment_id : '';
    step(s, decide_authorize_end(s, { payment_id, outcome: { approved: true, gateway_ref: 'gw' } }, r.h.ctx()));
    assert.is(replied(step(s, decide_confirm_order(s, { order_id, payment_id, actor_user_id: h.user, trace_id: 't' }, r.h.ctx()))).k, 'capture');
    step(s, decide_settle(s, { action: 'captured', payment_id, refund_id: '', idempotency_key: '' }, r.h.ctx()));
    for (const i of h.seats) m.seat[i] = 'sold';
    h.status = 'confirmed';
    h.order = { id: order_id, payment_id, seats: [...h.seats], returned: new Set(), captured: total, pending: new Map(), refunded: 0, refunds: 0 };
  }
  toString(): string {
    return `buy(#${this.ref})`;
  }
}

class Return implements fc.Command<Model, Real> {
  constructor(readonly ref: number, readonly which: 'all' | 'some' | 'again' | 'foreign' | 'retry', readonly money: 'none' | 'one' | 'rest' | 'over') {}
  check(m: Readonly<Model>): boolean {
    return orders(m as Model).length > 0;
  }
  run(m: Model, r: Real): void {
    if (this.which === 'retry' && m.last_return !== null) return this.retry(m, r, m.last_return);
    const o = pick(orders(m), this.ref)!;
    const left_seats = o.seats.filter((s) => !o.returned.has(s));
    const foreign = SEAT_IDS.find((_, i) => !o.seats.includes(i));
    const seat_ids = this.which === 'some' ? left_seats.slice(0, 1).map((i) => SEAT_IDS[i]!)
      : this.which === 'again' ? [...o.returned].slice(0, 1).map((i) => SEAT_IDS[i]!)
        : this.which === 'foreign' && foreign !== undefined ? [foreign] : [];
    const left_micros = o.captured - o.refunded - [...o.pending.values()].reduce((a, b) => a + b, 0);
    const refund = { none: 0, one: 1, rest: left_micros, over: left_micros + 1 }[this.money];
    const key = `k${m.keys++}`;
    const returning = seat_ids.length === 0 ? left_seats : seat_ids.map((id) => SEAT_IDS.indexOf(id));
    // In the order the actor checks: the order, the seats, then the money.
    const expected = left_seats.length === 0 ? 'OrderStateError'
      : this.which === 'foreign' && foreign !== undefined ? 'InvalidArgumentError'
        : this.which === 'again' && o.returned.size > 0 ? 'OrderStateError'
          : refund > left_micros ? 'RefundExceedsCapturedError'
            : refund > 0 && o.refunds >= L.refunds_per_payment_max ? 'RefundsPerPaymentExceededError' : 'ok';
    const req: ReturnReq = { seat_ids, refund, key };
    let reply = '';
    const got = attempt(() => {
      reply = JSON.stringify(replied(this.call(r, o, req)));
    });
    assert.is(got, expected, `return ${JSON.stringify(req)}`);
    if (got !== 'ok') return;
    for (const s of returning) {
      o.returned.add(s);
      m.seat[s] = 'free';
    }
    const parsed = JSON.parse(reply) as { k: string; refund_id?: string };
    assert.is(parsed.k, refund > 0 ? 'call' : 'done');
    if (parsed.refund_id !== undefined) {
      o.pending.set(parsed.refund_id, refund);
      o.refunds++;
    }
    m.last_return = { order: o, req, reply };
  }
  /** The same request and key again: the first answer (or the same gateway call), nothing new. */
  retry(m: Model, r: Real, last: NonNullable<Model['last_return']>): void {
    const d = this.call(r, last.order, last.req);
    assert.equal(d.records, []);
    const reply = replied(d);
    const first = JSON.parse(last.reply) as { k: string; refund_id?: string };
    const pending = first.refund_id !== undefined && last.order.pending.has(first.refund_id);
    assert.is(reply.k, pending ? 'call' : 'done', 'the gateway call again while the refund is owed, else done');
    if (reply.k === 'call') assert.is(reply.refund_id, first.refund_id, 'the same refund, never a second');
    assert.ok(m.keys > 0);
  }
  call(r: Real, o: MOrder, req: ReturnReq) {
    return step(r.h.state, decide_return_seats(r.h.state, { order_id: o.id, seat_ids: req.seat_ids, refund_amount_micros: req.refund, currency: 'EUR', idempotency_key: req.key, trace_id: 't' }, r.h.ctx()));
  }
  toString(): string {
    return `return(#${this.ref}, ${this.which}, ${this.money})`;
  }
}

class SettleRefunds implements fc.Command<Model, Real> {
  check(): boolean {
    return true;
  }
  run(m: Model, r: Real): void {
    for (const item of open_settlements(r.h.state, m.now, L.settlements_per_request_max)) {
      if (item.action !== 'refund') continue;
      step(r.h.state, decide_settle(r.h.state, { action: 'refunded', payment_id: item.payment_id, refund_id: item.refund_id, idempotency_key: '' }, r.h.ctx()));
      const o = orders(m).find((x) => x.pending.has(item.refund_id))!;
      o.refunded += o.pending.get(item.refund_id)!;
      o.pending.delete(item.refund_id);
    }
  }
  toString(): string {
    return 'settle_refunds';
  }
}

class Release implements fc.Command<Model, Real> {
  constructor(readonly ref: number) {}
  check(m: Readonly<Model>): boolean {
    return m.holds.length > 0;
  }
  run(m: Model, r: Real): void {
    const h = pick(m.holds, this.ref)!;
    const got = attempt(() => r.h.release(h.id, h.user));
    assert.is(got, h.status === 'confirmed' ? 'HoldConfirmedError' : 'ok');
    if (h.status !== 'active' || m.now >= h.expires_at) return;
    for (const i of h.seats) m.seat[i] = 'free';
    h.status = 'released';
  }
  toString(): string {
    return `release(#${this.ref})`;
  }
}

class Advance implements fc.Command<Model, Real> {
  constructor(readonly ms: number, readonly timers: boolean) {}
  /** Within a day of the start: ended holds are not forgotten (hold_tombstone_retention_ms),
   *  which this model does not follow. */
  check(m: Readonly<Model>): boolean {
    return m.now + this.ms - m.start < L.hold_tombstone_retention_ms;
  }
  run(m: Model, r: Real): void {
    m.now += this.ms;
    r.h.advance(this.ms);
    if (!this.timers) return;
    const expired = r.h.timers().records.flatMap((x) => (x.t === 'hold_expired' ? [x.hold_id] : []));
    const due = m.holds.filter((h) => h.status === 'active' && h.expires_at <= m.now);
    assert.equal(new Set(expired), new Set(due.map((h) => h.id)), 'holds expire at their (extended) expiry, once');
    for (const h of due) {
      if (h.extensions > 0) m.late_expiries++;
      h.status = 'expired';
      for (const i of h.seats) m.seat[i] = 'free';
    }
  }
  toString(): string {
    return `advance(${this.ms}${this.timers ? '' : ', no timers'})`;
  }
}

class Restart implements fc.Command<Model, Real> {
  constructor(readonly via: 'msgpackr' | 'memory') {}
  check(): boolean {
    return true;
  }
  run(_m: Model, r: Real): void {
    r.h.state = this.via === 'msgpackr' ? restart(r.h.state) : restore(r.h.partition, snapshot(r.h.state));
  }
  toString(): string {
    return `restart(${this.via})`;
  }
}

function checked(cmd: fc.Command<Model, Real>): fc.Command<Model, Real> {
  return {
    check: (m) => cmd.check(m),
    run: (m, r) => {
      cmd.run(m, r);
      verify(m, r);
    },
    toString: () => cmd.toString(),
  };
}

const ref = fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.nat(40) });
const commands: fc.Arbitrary<fc.Command<Model, Real>>[] = [
  fc.tuple(fc.constantFrom(...USERS), fc.uniqueArray(fc.nat(SEATS - 1), { minLength: 1, maxLength: 3 }), fc.constantFrom(30, 60, 600, 3000))
    .map(([u, s, ttl]) => checked(new Reserve(u, s, ttl))),
  fc.tuple(ref, fc.constantFrom('owner' as const, 'owner' as const, 'other' as const, 'service' as const), fc.constantFrom(0, 30, 600, 3600, 3601))
    .map(([h, a, s]) => checked(new Extend(h, a, s))),
  ref.map((h) => checked(new Buy(h))),
  fc.tuple(ref, fc.constantFrom('all' as const, 'some' as const, 'some' as const, 'again' as const, 'foreign' as const, 'retry' as const),
    fc.constantFrom('none' as const, 'one' as const, 'rest' as const, 'over' as const))
    .map(([o, w, money]) => checked(new Return(o, w, money))),
  fc.constant(checked(new SettleRefunds())),
  ref.map((h) => checked(new Release(h))),
  fc.tuple(fc.constantFrom(0, 10_000, 60_000, 600_000), fc.boolean()).map(([ms, t]) => checked(new Advance(ms, t))),
  fc.tuple(fc.constantFrom(30_000, 600_000, 3_600_000), fc.constant(true)).map(([ms, t]) => checked(new Advance(ms, t))),
  fc.constantFrom('msgpackr' as const, 'memory' as const).map((via) => checked(new Restart(via))),
];

function setup(): { model: Model; real: Real } {
  const h = new Harness(0);
  h.create_event(SPEC);
  const model: Model = { start: h.now, now: h.now, seat: Array.from({ length: SEATS }, (): Seat => 'free'), holds: [], keys: 0, last_return: null, late_expiries: 0 };
  return { model, real: { h } };
}

test('hold lifecycle agrees with a model: extensions, purchases from holds, returns, refunds owed once, restarts', () => {
  fc.assert(fc.property(fc.commands(commands, { maxCommands: 50, size: 'max' }), (cmds) => {
    fc.modelRun(setup, cmds);
  }), { numRuns: 150 });
});

test('the model run reaches every outcome (not vacuous): extensions refused at each cap, returns with refunds settled', () => {
  let extended = 0;
  let capped = 0;
  let returned = 0;
  let settled = 0;
  let resold = 0;
  let late = 0;
  fc.assert(fc.property(fc.commands(commands, { maxCommands: 50, size: 'max' }), (cmds) => {
    const s = setup();
    fc.modelRun(() => s, cmds);
    late += s.model.late_expiries;
    extended += s.model.holds.filter((h) => h.extensions > 0).length;
    capped += s.model.holds.filter((h) => h.extensions === L.hold_extensions_max || h.expires_at === h.created + L.hold_life_seconds_max * 1000).length;
    returned += orders(s.model).filter((o) => o.returned.size > 0).length;
    settled += orders(s.model).filter((o) => o.refunded > 0).length;
    // Holds made on a seat another order returned (it was sold before, so made after the return).
    for (const o of orders(s.model)) {
      resold += s.model.holds.filter((h) => h.order !== o && h.seats.some((i) => o.returned.has(i))).length;
    }
  }), { numRuns: 60, seed: 14 });
  const seen = { extended, capped, late, returned, settled, resold };
  assert.ok(Object.values(seen).every((n) => n > 0), JSON.stringify(seen));
});

test.run();

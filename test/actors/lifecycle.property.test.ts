// Model-based test of the hold lifecycle (issue 14): random ReserveTickets, ReserveBestAvailable
// (tiers, sections, accessible seats), ReserveGeneralAdmission, ExtendHold, buying a hold of
// any kind (CreateDraftFromHold → Authorize → ConfirmOrder → capture), ReturnSeats of seats and
// standing places with and without a refund (new keys and retries), settling owed refunds,
// ReleaseHold, clock advances (with or without the timer) and restarts from a snapshot, from
// three users contending for eleven seats and a standing area of six places.
// After every command, model and actor agree: every seat's and place's state and owner (no
// place in two holds or sold twice), every area's held + sold within its capacity, every
// user's held and sold counts (seats and places together), each hold's seats, each order's
// returned seats and status, and the refunds owed (each exactly once) and made; the invariants
// hold; a refusal changes nothing. The model does not re-choose best-available seats (the
// oracle test does): it checks the answer was free, eligible, complete and now held.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { no_signals } from '../../src/actors/fraud.js';
import { decide_extend_hold, type PartitionRecord } from '../../src/actors/inventory.js';
import { check_invariants } from '../../src/actors/invariants.js';
import * as L from '../../src/actors/limits.js';
import { decide_confirm_order, decide_create_draft_from_hold } from '../../src/actors/orders.js';
import { SEAT_FREE, SEAT_HELD, SEAT_SOLD } from '../../src/actors/partition_state.js';
import {
  decide_authorize_begin, decide_authorize_end, decide_settle, open_settlements,
} from '../../src/actors/payments.js';
import { get_availability } from '../../src/actors/queries.js';
import { decide_return_seats } from '../../src/actors/returns.js';
import { decide_reserve_best, decide_reserve_ga } from '../../src/actors/selection.js';
import { Harness, replied, sample_spec, step } from './helpers.js';
import {
  area_of, attempt, checked_by, layout_of, pick, Restart, type Real,
} from './model_helpers.js';

const EVENT = 'evt-l';
const PRICE = 1_000_000;
// Three tiers priced apart, so a draft priced from the wrong tier (or the wrong count) shows.
const PRICES: Record<string, number> = { T: PRICE, U: 400_000, G: 250_000 };
const SPEC = sample_spec({
  event_id: EVENT, price_tiers: PRICES,
  sections: [
    { name: 'S', rows: [{ name: 'A', seats: 8, tier: 'T', accessible_seats: [1, 8] }] },
    { name: 'R', rows: [{ name: 'A', seats: 3, tier: 'U' }] },
  ],
  areas: [{ name: 'FLOOR', capacity: 6, tier: 'G' }],
  // 3 users x 5 < 17 places: contention for rows and the area, not only for the user limits.
  max_seats_per_user: 5,
});
const LAYOUT = layout_of(SPEC);
/** Seats only; places (standing) follow them, up to PLACES. */
const SEATS = LAYOUT.seats;
const PLACES = LAYOUT.places;
const FLOOR = LAYOUT.areas[0]!;
/** Ids of seats and places by index. */
const SEAT_IDS = LAYOUT.ids;
const USERS = ['u0', 'u1', 'u2'];
const MAX = SPEC.max_seats_per_user;

type Seat = 'free' | 'held' | 'sold';
interface MOrder { id: string; payment_id: string; seats: number[]; returned: Set<number>; captured: number; pending: Map<string, number>; refunded: number; refunds: number }
type Kind = 'seats' | 'best' | 'ga';
interface MHold {
  id: string; user: string; kind: Kind; seats: number[]; created: number; expires_at: number;
  status: 'active' | 'released' | 'expired' | 'confirmed'; extensions: number; order: MOrder | null;
}
interface Model {
  start: number; now: number; seat: Seat[]; holds: MHold[]; keys: number;
  /** Extended holds the timer expired (at their new expiry). */ late_expiries: number;
  last_return: { order: MOrder; req: ReturnReq; reply: string } | null;
  /** Successes (and chosen refusals) per kind of command: the guard against a vacuous run. */
  won: Map<string, number> }
interface ReturnReq { seat_ids: string[]; refund: number; key: string }
function sorted(xs: readonly number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

function won(m: Model, kind: string): void {
  m.won.set(kind, (m.won.get(kind) ?? 0) + 1);
}

function orders(m: Model): MOrder[] {
  return m.holds.flatMap((h) => (h.order === null ? [] : [h.order]));
}

function counts(m: Model, user: string): { held: number; sold: number; active: number } {
  let held = 0;
  let sold = 0;
  let active = 0;
  for (const h of m.holds.filter((x) => x.user === user)) {
    if (h.status === 'active') {
      held += h.seats.length;
      active++;
    }
    if (h.status === 'confirmed') sold += h.seats.length - (h.order?.returned.size ?? 0);
  }
  return { held, sold, active };
}

/** The per-user refusal for `quantity` more places, in the actor's order, or null. */
function user_refusal(m: Model, user: string, quantity: number): string | null {
  const c = counts(m, user);
  if (c.held + c.sold + quantity > MAX) return 'SeatsPerUserExceededError';
  if (c.active >= L.holds_per_user_max) return 'HoldsPerUserExceededError';
  return null;
}

/** A new hold of `seats` (each free in the model until now). */
function hold_taken(m: Model, user: string, kind: Kind, seats: number[], hold_id: string, ttl: number): void {
  for (const i of seats) {
    assert.is(m.seat[i], 'free', `place ${SEAT_IDS[i]} was free`);
    m.seat[i] = 'held';
  }
  m.holds.push({ id: hold_id, user, kind, seats: [...seats], created: m.now, expires_at: m.now + ttl * 1000, status: 'active', extensions: 0, order: null });
  won(m, kind === 'seats' ? 'reserve' : kind);
}

/** The hold's seats as the actor journaled them, checked against the hold and the reply. */
function journaled_seats(r: Real, records: PartitionRecord[], hold_id: string): number[] {
  const created = records.find((x) => x.t === 'hold_created');
  assert.ok(created !== undefined && created.t === 'hold_created', 'a hold_created record');
  assert.is(created.hold_id, hold_id);
  assert.is(records.length, 1, 'one record: the hold');
  const hold = r.h.state.holds.get(hold_id)!;
  assert.equal(hold.seats, created.seats, 'the hold has the journaled seats');
  assert.is(new Set(hold.seats).size, hold.seats.length, 'no seat twice in one hold');
  return [...created.seats];
}

function verify(m: Model, r: Real): void {
  const state = r.h.state;
  check_invariants(state);
  const event = state.events.get(EVENT)!;
  const want = { free: SEAT_FREE, held: SEAT_HELD, sold: SEAT_SOLD };
  for (let i = 0; i < PLACES; i++) assert.is(event.seat_state[i], want[m.seat[i]!], `seat ${SEAT_IDS[i]}`);
  for (const user of USERS) {
    const c = event.users.get(user);
    const real = { held: c?.held ?? 0, sold: c?.sold ?? 0, active: c?.active_holds ?? 0 };
    assert.equal(real, counts(m, user), `user ${user} counts exact`);
  }
  verify_owners(m, r);
  verify_areas(m, r);
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
    assert.equal(sorted(real.seats), sorted(h.seats), `hold ${h.id} seats`);
  }
}

/** No place in two holds or sold twice: in the model each place has at most one claim (an
 *  active hold, or an order that has not returned it), exactly when it is not free; the actor's
 *  owner of each held or sold place is that hold or order. */
function verify_owners(m: Model, r: Real): void {
  const event = r.h.state.events.get(EVENT)!;
  const claims: { hold: MHold | null; order: MOrder | null }[][] = SEAT_IDS.map(() => []);
  for (const h of m.holds) {
    if (h.status === 'active') for (const i of h.seats) claims[i]!.push({ hold: h, order: null });
    if (h.status !== 'confirmed') continue;
    for (const i of h.seats) if (!h.order!.returned.has(i)) claims[i]!.push({ hold: null, order: h.order });
  }
  for (let i = 0; i < PLACES; i++) {
    const c = claims[i]!;
    assert.ok(c.length <= 1, `place ${SEAT_IDS[i]} has one claim at most, has ${c.length}`);
    assert.is(c.length === 0, m.seat[i] === 'free', `place ${SEAT_IDS[i]} free exactly when unclaimed`);
    const owner = c[0] === undefined ? -1 : c[0].hold !== null
      ? r.h.state.holds.get(c[0].hold.id)!.hold_no : event.order_no_by_id.get(c[0].order!.id);
    assert.is(event.seat_owner[i], owner, `owner of ${SEAT_IDS[i]}`);
    if (c[0]?.hold) assert.is(m.seat[i], 'held');
    if (c[0]?.order) assert.is(m.seat[i], 'sold');
  }
}

/** Every area: held + sold <= capacity, as the model counts and as GetAvailability and the
 *  free-place index say. */
function verify_areas(m: Model, r: Real): void {
  const event = r.h.state.events.get(EVENT)!;
  const availability = get_availability(r.h.state, EVENT, '');
  for (const [n, a] of LAYOUT.areas.entries()) {
    const places = m.seat.slice(a.offset, a.offset + a.capacity);
    const held = places.filter((x) => x === 'held').length;
    const sold = places.filter((x) => x === 'sold').length;
    assert.ok(held + sold <= a.capacity, `area ${a.name}: held + sold within capacity`);
    const real = availability.areas[n]!;
    const counted = [real.name, real.capacity, real.free, real.held, real.sold];
    assert.equal(counted, [a.name, a.capacity, a.capacity - held - sold, held, sold], `area ${a.name}`);
    assert.is(event.runs.areas[n]!.top, a.capacity - held - sold, `area ${a.name} free index`);
    if (held + sold === a.capacity) won(m, 'area_full');
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
    // A standing place has no seat id ReserveTickets knows: it is refused before any other rule.
    const place = this.seats.some((i) => i >= SEATS);
    let hold_id = '';
    const got = attempt(() => r.h.state, () => {
      hold_id = r.h.reserve(this.user, this.seats.map((i) => SEAT_IDS[i]!), this.ttl, EVENT).reply.hold_id;
    });
    if (place) return assert.is(got, 'InvalidArgumentError', 'a place named as a seat');
    assert.is(got === 'ok', ok, `reserve answered ${got}`);
    if (!ok) return;
    hold_taken(m, this.user, 'seats', this.seats, hold_id, this.ttl);
  }
  toString(): string {
    return `reserve(${this.user}, ${this.seats.join(',')}, ${this.ttl}s)`;
  }
}

/** ReserveBestAvailable: the model checks the answer, it does not choose the seats. */
class Best implements fc.Command<Model, Real> {
  constructor(
    readonly user: string, readonly q: number, readonly accessible: number,
    readonly section: string, readonly tier: string, readonly ttl: number,
  ) {}
  check(): boolean {
    return true;
  }
  eligible(i: number): boolean {
    return i < SEATS && (this.section === '' || LAYOUT.section[i] === this.section)
      && (this.tier === '' || LAYOUT.tier[i] === this.tier);
  }
  /** The refusal due, in the actor's order, or 'ok'. */
  expected(m: Model): string {
    if (!Number.isSafeInteger(this.q) || this.q < 1) return 'InvalidArgumentError';
    if (this.q > L.seats_per_hold_max) return 'SeatsPerHoldExceededError';
    if (this.section !== '' && !SPEC.sections.some((s) => s.name === this.section)) {
      return 'InvalidArgumentError'; // an area (or nothing) named as a section
    }
    const limit = user_refusal(m, this.user, this.q);
    if (limit !== null) return limit;
    const free = SEAT_IDS.map((_, i) => i).filter((i) => this.eligible(i) && m.seat[i] === 'free');
    const accessible = free.filter((i) => LAYOUT.accessible[i]).length;
    const plain = free.length - accessible;
    return accessible < this.accessible || plain < this.q - this.accessible ? 'SeatsUnavailableError' : 'ok';
  }
  run(m: Model, r: Real): void {
    const req = {
      event_id: EVENT, user_id: this.user, quantity: this.q, tiers: this.tier === '' ? [] : [this.tier],
      sections: this.section === '' ? [] : [this.section], accessible_quantity: this.accessible,
      hold_ttl_seconds: this.ttl, trace_id: 't',
    };
    const expected = this.expected(m);
    const out: { d: ReturnType<typeof decide_reserve_best> | null } = { d: null };
    const got = attempt(() => r.h.state, () => {
      out.d = step(r.h.state, decide_reserve_best(r.h.state, req, r.h.ctx()));
    });
    assert.is(got, expected, `${this}`);
    const decision = out.d;
    if (got !== 'ok' || decision === null) return;
    const reply = replied(decision);
    const seats = journaled_seats(r, decision.records, reply.hold_id);
    assert.is(seats.length, this.q, 'the count asked for, all or nothing');
    assert.equal(sorted(reply.seat_ids.map((id) => SEAT_IDS.indexOf(id))), sorted(seats), 'the reply names the held seats');
    assert.ok(seats.every((i) => this.eligible(i)), `only seats of the tiers and sections asked for: ${seats}`);
    assert.is(seats.filter((i) => LAYOUT.accessible[i]).length, this.accessible, 'exactly the accessible seats asked for');
    assert.is(reply.expires_at_ms, m.now + this.ttl * 1000);
    hold_taken(m, this.user, 'best', seats, reply.hold_id, this.ttl);
    if (this.accessible > 0) won(m, 'best_accessible');
  }
  toString(): string {
    return `best(${this.user}, ${this.q}, acc=${this.accessible}, ${this.section}/${this.tier}, ${this.ttl}s)`;
  }
}

/** ReserveGeneralAdmission: any free places of the area, never more than it has. */
class Ga implements fc.Command<Model, Real> {
  constructor(readonly user: string, readonly area: string, readonly q: number, readonly ttl: number) {}
  check(): boolean {
    return true;
  }
  run(m: Model, r: Real): void {
    const a = LAYOUT.areas.find((x) => x.name === this.area);
    const free = a === undefined ? 0 : m.seat.slice(a.offset, a.offset + a.capacity).filter((x) => x === 'free').length;
    const limit = user_refusal(m, this.user, this.q);
    const expected = a === undefined || !Number.isSafeInteger(this.q) || this.q < 1 ? 'InvalidArgumentError'
      : this.q > L.seats_per_hold_max ? 'SeatsPerHoldExceededError'
        : limit ?? (free < this.q ? 'SeatsUnavailableError' : 'ok');
    const req = { event_id: EVENT, area: this.area, quantity: this.q, user_id: this.user, hold_ttl_seconds: this.ttl, trace_id: 't' };
    const out: { d: ReturnType<typeof decide_reserve_ga> | null } = { d: null };
    let message = '';
    const got = attempt(() => r.h.state, () => {
      try {
        out.d = step(r.h.state, decide_reserve_ga(r.h.state, req, r.h.ctx()));
      } catch (error) {
        message = error instanceof Error ? error.message : '';
        throw error;
      }
    });
    assert.is(got, expected, `${this}`);
    if (got === 'SeatsUnavailableError') {
      assert.match(message, `${free} places left`);
      return won(m, 'ga_sold_out');
    }
    const decision = out.d;
    if (got !== 'ok' || decision === null || a === undefined) return;
    const reply = replied(decision);
    const seats = journaled_seats(r, decision.records, reply.hold_id);
    assert.is(seats.length, this.q, 'the count asked for');
    assert.ok(seats.every((i) => area_of(LAYOUT, i) === a), `places of area ${a.name}: ${seats}`);
    hold_taken(m, this.user, 'ga', seats, reply.hold_id, this.ttl);
  }
  toString(): string {
    return `ga(${this.user}, ${this.area}, ${this.q}, ${this.ttl}s)`;
  }
}

class Extend implements fc.Command<Model, Real> {
  /** `times` the same extension of the same hold in a row, each checked: the caps (count and
   *  life) are reached within one command, not only by luck across many. */
  constructor(readonly ref: number, readonly actor: 'owner' | 'other' | 'service', readonly seconds: number, readonly times = 1) {}
  check(m: Readonly<Model>): boolean {
    return m.holds.length > 0;
  }
  run(m: Model, r: Real): void {
    const h = pick(m.holds, this.ref)!;
    for (let n = 0; n < this.times; n++) {
      if (n > 0) verify(m, r);
      this.once(m, r, h);
    }
  }
  once(m: Model, r: Real, h: MHold): void {
    const actor = this.actor === 'service' ? null : this.actor === 'owner' ? h.user : USERS[(USERS.indexOf(h.user) + 1) % USERS.length]!;
    const life_end = h.created + L.hold_life_seconds_max * 1000;
    const next = Math.min(h.expires_at + this.seconds * 1000, life_end);
    const expected = actor !== null && actor !== h.user ? 'HoldNotFoundError'
      : this.seconds < 1 || this.seconds > L.hold_ttl_seconds_max ? 'InvalidArgumentError'
        : h.status !== 'active' || m.now >= h.expires_at ? 'HoldNotActiveError'
          : h.extensions >= L.hold_extensions_max || next <= h.expires_at ? 'HoldExtensionRefusedError' : 'ok';
    const got = attempt(() => r.h.state, () => step(r.h.state, decide_extend_hold(r.h.state, { hold_id: h.id, extend_seconds: this.seconds, actor_user_id: actor, trace_id: 't' }, r.h.ctx())));
    assert.is(got, expected);
    if (got === 'HoldExtensionRefusedError') won(m, h.extensions >= L.hold_extensions_max ? 'extend_capped_count' : 'extend_capped_life');
    if (got !== 'ok') return;
    h.expires_at = next;
    h.extensions++;
    won(m, `extend_${h.kind}`);
  }
  toString(): string {
    return `extend(#${this.ref}, ${this.actor}, ${this.seconds}s${this.times > 1 ? ` x${this.times}` : ''})`;
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
    let draft_total = -1;
    const got = attempt(() => r.h.state, () => {
      const draft = replied(step(s, decide_create_draft_from_hold(s, { hold_id: h.id, promo_code: '', idempotency_key: '', actor_user_id: h.user, trace_id: 't' }, r.h.ctx())));
      order_id = draft.id;
      draft_total = draft.total.amount_micros;
    });
    assert.is(got, expected);
    if (got !== 'ok') return;
    // Each seat at its row's tier price, each place at its area's.
    const total = h.seats.reduce((sum, i) => sum + PRICES[LAYOUT.tier[i]!]!, 0);
    assert.is(draft_total, total, `draft of ${h.kind} hold priced from its tiers`);
    const begin = replied(step(s, decide_authorize_begin(s, { order_id, amount_micros: total, currency: 'EUR', actor_user_id: h.user, idempotency_key: '', signals: no_signals, trace_id: 't' }, r.h.ctx())));
    assert.is(begin.k, 'call');
    const payment_id = begin.k === 'call' ? begin.payment_id : '';
    step(s, decide_authorize_end(s, { payment_id, outcome: { approved: true, gateway_ref: 'gw' } }, r.h.ctx()));
    assert.is(replied(step(s, decide_confirm_order(s, { order_id, payment_id, actor_user_id: h.user, trace_id: 't' }, r.h.ctx()))).k, 'capture');
    step(s, decide_settle(s, { action: 'captured', payment_id, refund_id: '', idempotency_key: '' }, r.h.ctx()));
    for (const i of h.seats) m.seat[i] = 'sold';
    h.status = 'confirmed';
    h.order = { id: order_id, payment_id, seats: [...h.seats], returned: new Set(), captured: total, pending: new Map(), refunded: 0, refunds: 0 };
    won(m, `buy_${h.kind}`);
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
    // Another place of the same kind: a seat for a seated order, a place of its area for GA.
    const area = area_of(LAYOUT, o.seats[0]!);
    const foreign = SEAT_IDS.find((_, i) => !o.seats.includes(i) && area_of(LAYOUT, i) === area);
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
    const got = attempt(() => r.h.state, () => {
      reply = JSON.stringify(replied(this.call(r, o, req)));
    });
    assert.is(got, expected, `return ${JSON.stringify(req)}`);
    if (got !== 'ok') return;
    for (const s of returning) {
      o.returned.add(s);
      m.seat[s] = 'free';
      won(m, s < SEATS ? 'return_seat' : 'return_place');
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
      won(m, 'refund_settled');
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
    const got = attempt(() => r.h.state, () => r.h.release(h.id, h.user));
    assert.is(got, h.status === 'confirmed' ? 'HoldConfirmedError' : 'ok');
    if (h.status !== 'active' || m.now >= h.expires_at) return;
    for (const i of h.seats) m.seat[i] = 'free';
    h.status = 'released';
    won(m, `release_${h.kind}`);
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
      won(m, `expire_${h.kind}`);
      h.status = 'expired';
      for (const i of h.seats) m.seat[i] = 'free';
    }
  }
  toString(): string {
    return `advance(${this.ms}${this.timers ? '' : ', no timers'})`;
  }
}

const checked = checked_by(verify);

const ref = fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.nat(40) });
const user = fc.constantFrom(...USERS);
const ttl = fc.constantFrom(30, 60, 600, 3000);
// Mostly counts a user may take; now and then a count every call refuses.
const count = fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 1, max: 4 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -1, 11, 1e9) });
// Mostly seats; now and then a standing place named as a seat.
const seat = fc.oneof({ weight: 15, arbitrary: fc.nat(SEATS - 1) },
  { weight: 1, arbitrary: fc.integer({ min: SEATS, max: PLACES - 1 }) });
// Listed twice, as GA: with three kinds of hold to extend, once would reach each cap too rarely.
// Short extensions weigh most: a fourth extension (refused) needs three that left life to spare.
const extend_command = fc.tuple(ref, fc.constantFrom('owner' as const, 'owner' as const, 'owner' as const, 'other' as const, 'service' as const), fc.constantFrom(0, 30, 30, 60, 600, 3600, 3601),
  fc.constantFrom(1, 1, 2, 4))
  .map(([h, a, s, n]) => checked(new Extend(h, a, s, n)));
// Up to a user's whole allowance, and listed twice: the area must fill up (and refuse) often.
const ga_command = fc.tuple(user, fc.constantFrom(FLOOR.name, FLOOR.name, FLOOR.name, 'R', 'NOPE'),
  fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 1, max: MAX }) }, { weight: 1, arbitrary: count }), ttl)
  .map(([u, area, q, t]) => checked(new Ga(u, area, q, t)));
const commands: fc.Arbitrary<fc.Command<Model, Real>>[] = [
  fc.tuple(user, fc.uniqueArray(seat, { minLength: 1, maxLength: 3 }), ttl)
    .map(([u, s, ttl]) => checked(new Reserve(u, s, ttl))),
  fc.tuple(user, count, fc.constantFrom(0, 0, 0, 1, 2), fc.constantFrom('', '', 'S', 'R', 'FLOOR'),
    fc.constantFrom('', '', 'T', 'U', 'G'), ttl)
    .map(([u, q, a, sec, tier, t]) => checked(new Best(u, q, Math.max(0, Math.min(a, q)), sec, tier, t))),
  ga_command,
  ga_command,
  extend_command,
  extend_command,
  ref.map((h) => checked(new Buy(h))),
  fc.tuple(ref, fc.constantFrom('all' as const, 'some' as const, 'some' as const, 'again' as const, 'foreign' as const, 'retry' as const),
    fc.constantFrom('none' as const, 'one' as const, 'rest' as const, 'over' as const))
    .map(([o, w, money]) => checked(new Return(o, w, money))),
  fc.constant(checked(new SettleRefunds())),
  ref.map((h) => checked(new Release(h))),
  fc.tuple(fc.constantFrom(0, 10_000, 60_000, 600_000), fc.boolean()).map(([ms, t]) => checked(new Advance(ms, t))),
  fc.tuple(fc.constantFrom(30_000, 600_000, 3_600_000), fc.constant(true)).map(([ms, t]) => checked(new Advance(ms, t))),
  fc.constantFrom('msgpackr' as const, 'memory' as const, 'v2' as const)
    .map((via) => checked(new Restart<Model>(via, (m) => {
      if (m.holds.length > 0) won(m, 'restart');
    }))),
];

function setup(): { model: Model; real: Real } {
  const h = new Harness(0);
  h.create_event(SPEC);
  const map = h.state.events.get(EVENT)!.map;
  assert.equal([map.seat_count, map.place_count], [SEATS, PLACES], 'the model knows the layout');
  SEAT_IDS.forEach((id, i) => assert.is(map.id_of(i), id, 'the model names places as the actor'));
  const model: Model = { start: h.now, now: h.now, seat: Array.from({ length: PLACES }, (): Seat => 'free'), holds: [], keys: 0, last_return: null, late_expiries: 0, won: new Map() };
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
  let resold_places = 0;
  let late = 0;
  const won_total = new Map<string, number>();
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
      resold_places += s.model.holds.filter((h) => h.order !== o && h.seats.some((i) => i >= SEATS && o.returned.has(i))).length;
    }
    for (const [kind, n] of s.model.won) won_total.set(kind, (won_total.get(kind) ?? 0) + n);
  }), { numRuns: 60, seed: 14 });
  const seen = { extended, capped, late, returned, settled, resold, resold_places };
  assert.ok(Object.values(seen).every((n) => n > 0), JSON.stringify(seen));
  // Every kind of command succeeded (or reached the refusal named) at least once.
  const kinds = [
    'reserve', 'best', 'best_accessible', 'ga', 'ga_sold_out', 'area_full',
    'extend_seats', 'extend_best', 'extend_ga', 'extend_capped_count', 'extend_capped_life',
    'buy_seats', 'buy_best', 'buy_ga', 'return_seat', 'return_place', 'refund_settled',
    'release_seats', 'release_best', 'release_ga', 'expire_seats', 'expire_best', 'expire_ga',
    'restart',
  ];
  const missing = kinds.filter((k) => (won_total.get(k) ?? 0) === 0);
  assert.equal(missing, [], `kinds never reached: ${JSON.stringify(Object.fromEntries(won_total))}`);
});

test.run();

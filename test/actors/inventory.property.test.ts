// Model-based test: random ReserveTickets / ReleaseHold / ConfirmAllocation / clock advances
// (with or without the expiry timer running) / restarts from a snapshot, from five users
// contending for twelve seats, run against the inventory actor and against a plain model.
// After every command: model and actor agree seat by seat and on availability, invariants hold,
// no seat is sold twice, and no user holds + owns more than max_seats_per_user.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import type { PartitionRecord } from '../../src/actors/inventory.js';
import { check_invariants } from '../../src/actors/invariants.js';
import * as L from '../../src/actors/limits.js';
import { get_availability, type Availability } from '../../src/actors/queries.js';
import { next_deadline_ms } from '../../src/actors/orders.js';
import { SEAT_FREE, SEAT_HELD, SEAT_SOLD } from '../../src/actors/partition_state.js';
import { Harness, sample_spec } from './helpers.js';
import { checked_by, Restart, type Real } from './model_helpers.js';

const EVENT = 'evt-p';
const SPEC = sample_spec({
  event_id: EVENT,
  price_tiers: { T: 1_000_000 },
  sections: [
    { name: 'S1', rows: [{ name: 'A', seats: 6, tier: 'T' }] },
    { name: 'S2', rows: [{ name: 'A', seats: 4, tier: 'T' }, { name: 'B', seats: 2, tier: 'T' }] },
  ],
  max_seats_per_user: 4,
});
const SEAT_IDS: string[] = [];
const SECTION_OF: string[] = [];
for (const s of SPEC.sections) {
  for (const r of s.rows) {
    for (let n = 1; n <= r.seats; n++) {
      SEAT_IDS.push(`${s.name}-${r.name}-${n}`);
      SECTION_OF.push(s.name);
    }
  }
}
const SEATS = SEAT_IDS.length; // 12
const USERS = ['u0', 'u1', 'u2', 'u3', 'u4'];
const UNKNOWN_HOLD = 'hold_0_AAAAAAAAAAAAAAAAAAAAAA';
const MAX = SPEC.max_seats_per_user;

type SeatState = 'free' | 'held' | 'sold';
type Status = 'active' | 'released' | 'expired' | 'confirmed' | 'forgotten';

interface MHold {
  id: string;
  user: string;
  seats: number[];
  expires_at: number;
  status: Status;
  order: string;
  forget_at: number;
  trace: string;
}

interface Model {
  now: number;
  seat: SeatState[];
  holds: MHold[];
}

function user_counts(m: Model, user: string): { held: number; sold: number; active: number } {
  const c = { held: 0, sold: 0, active: 0 };
  for (const h of m.holds) {
    if (h.user !== user) continue;
    if (h.status === 'active') {
      c.held += h.seats.length;
      c.active++;
    } else if (h.status === 'confirmed') c.sold += h.seats.length;
  }
  return c;
}

function model_availability(m: Model): Availability {
  const sections = SPEC.sections.map((s) => ({ name: s.name, free: 0, held: 0, sold: 0, free_seat_ids: [] as string[] }));
  for (let i = 0; i < SEATS; i++) {
    const s = sections.find((x) => x.name === SECTION_OF[i])!;
    s[m.seat[i]!]++;
    if (m.seat[i] === 'free') s.free_seat_ids.push(SEAT_IDS[i]!);
  }
  const sum = (k: 'free' | 'held' | 'sold') => sections.reduce((n, s) => n + s[k], 0);
  return { event_id: EVENT, free: sum('free'), held: sum('held'), sold: sum('sold'), sections, truncated: false, areas: [] };
}

/** Everything decide must leave alone on a rejection. */
function fingerprint(r: Real): string {
  const e = r.h.state.events.get(EVENT)!;
  return JSON.stringify([[...e.seat_state], [...e.seat_owner], e.held, e.sold, [...e.users], [...r.h.state.holds.values()], r.h.state.tombstones]);
}

/** ref -2: the newest hold; -1: a hold id that never existed; otherwise any hold. */
function resolve(m: Model, ref: number): MHold | undefined {
  if (ref === -2) return m.holds[m.holds.length - 1];
  if (ref < 0 || m.holds.length === 0) return undefined;
  return m.holds[ref % m.holds.length];
}

function attempt<T>(fn: () => T): { ok: true; value: T } | { ok: false; error: Error } {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    if (error.name === 'AssertionError') throw error; // a bug, never an answer
    return { ok: false, error };
  }
}

function expect_rejection(r: Real, allowed: string[], fn: () => unknown): Error {
  const before = fingerprint(r);
  const result = attempt(fn);
  if (result.ok) throw new Error(`expected one of ${allowed.join(', ')}, but it succeeded`);
  assert.ok(allowed.includes(result.error.name), `expected one of ${allowed.join(', ')}, got ${result.error.name}: ${result.error.message}`);
  assert.is((result.error as { rejection?: unknown }).rejection, true);
  assert.is(fingerprint(r), before, `state changed on ${result.error.name}`);
  return result.error;
}

function verify(m: Model, r: Real): void {
  const state = r.h.state;
  check_invariants(state);
  const e = state.events.get(EVENT)!;
  const want: Record<SeatState, number> = { free: SEAT_FREE, held: SEAT_HELD, sold: SEAT_SOLD };
  for (let i = 0; i < SEATS; i++) assert.is(e.seat_state[i], want[m.seat[i]!], `seat ${SEAT_IDS[i]}`);
  assert.equal(get_availability(state, EVENT, ''), model_availability(m));
  // Hold statuses agree; forgotten holds are gone.
  for (const h of m.holds) {
    const real = state.holds.get(h.id);
    if (h.status === 'forgotten') assert.is(real, undefined, `hold ${h.id} forgotten`);
    else assert.is(real?.status, h.status, `hold ${h.id} status`);
  }
  // No seat sold twice; every sold seat belongs to exactly one confirmed hold.
  const sold_by = new Map<number, string>();
  const per_user = new Map<string, number>();
  for (const h of state.holds.values()) {
    if (h.status === 'confirmed') {
      for (const s of h.seats) {
        assert.not.ok(sold_by.has(s), `seat ${SEAT_IDS[s]} sold twice`);
        sold_by.set(s, h.hold_id);
      }
    }
    if (h.status === 'confirmed' || h.status === 'active') per_user.set(h.user_id, (per_user.get(h.user_id) ?? 0) + h.seats.length);
  }
  for (let i = 0; i < SEATS; i++) assert.is(e.seat_state[i] === SEAT_SOLD, sold_by.has(i), `seat ${SEAT_IDS[i]} sold iff in a confirmed hold`);
  for (const [user, n] of per_user) assert.ok(n <= MAX, `user ${user} has ${n} seats held + sold`);
  // The timer never sleeps past an active hold's expiry.
  const deadline = next_deadline_ms(state);
  for (const h of m.holds) if (h.status === 'active') assert.ok(deadline !== null && deadline <= h.expires_at, 'deadline covers every active hold');
}

// ---------------------------------------------------------------------------------------------
// commands

class Reserve implements fc.Command<Model, Real> {
  constructor(readonly user: string, readonly seats: number[], readonly dup: boolean, readonly bad: boolean, readonly ttl: number) {}

  check(m: Readonly<Model>): boolean {
    // Between a hold's expiry and the timer run, whether its seats are already free for others is
    // not pinned down by this test; only release/confirm are exercised in that window.
    return !m.holds.some((h) => h.status === 'active' && h.expires_at <= m.now);
  }

  run(m: Model, r: Real): void {
    const ids = this.seats.map((i) => SEAT_IDS[i]!);
    if (this.dup) ids.push(ids[0]!);
    if (this.bad) ids.push('S9-A-1');
    const ttl_s = this.ttl === 0 ? L.hold_ttl_seconds_default : this.ttl;
    const allowed: string[] = [];
    if (ttl_s < L.hold_ttl_seconds_min || ttl_s > L.hold_ttl_seconds_max) allowed.push('InvalidArgumentError');
    if (this.dup || this.bad) allowed.push('InvalidArgumentError');
    const c = user_counts(m, this.user);
    if (c.held + c.sold + this.seats.length > MAX) allowed.push('SeatsPerUserExceededError');
    if (c.active >= L.holds_per_user_max) allowed.push('HoldsPerUserExceededError');
    const taken = this.seats.filter((i) => m.seat[i] !== 'free');
    if (taken.length > 0) allowed.push('SeatsUnavailableError');
    const trace = `trace-${m.holds.length}`;
    const call = () => r.h.reserve(this.user, ids, this.ttl, EVENT, trace);
    if (allowed.length > 0) {
      const error = expect_rejection(r, allowed, call);
      if (error.name === 'SeatsUnavailableError') {
        for (const i of taken) assert.ok(error.message.includes(SEAT_IDS[i]!), `message names ${SEAT_IDS[i]}: ${error.message}`);
      }
      return;
    }
    const { decision, reply } = call();
    assert.equal(decision.records.map((x) => x.t), ['hold_created']);
    assert.is(reply.expires_at_ms, m.now + ttl_s * 1000);
    for (const i of this.seats) m.seat[i] = 'held';
    m.holds.push({ id: reply.hold_id, user: this.user, seats: [...this.seats], expires_at: reply.expires_at_ms, status: 'active', order: '', forget_at: 0, trace });
  }

  toString(): string {
    return `reserve(${this.user}, [${this.seats.map((i) => SEAT_IDS[i]).join(',')}]${this.dup ? '+dup' : ''}${this.bad ? '+bad' : ''}, ttl=${this.ttl})`;
  }
}

class Release implements fc.Command<Model, Real> {
  constructor(readonly ref: number, readonly actor: 'owner' | 'other' | 'service') {}

  check(): boolean {
    return true;
  }

  run(m: Model, r: Real): void {
    const hold = resolve(m, this.ref);
    const id = hold?.id ?? UNKNOWN_HOLD;
    const owner = hold?.user ?? 'u0';
    const actor = this.actor === 'service' ? null : this.actor === 'owner' ? owner : USERS[(USERS.indexOf(owner) + 1) % USERS.length]!;
    const call = () => r.h.release(id, actor);
    if (hold === undefined || hold.status === 'forgotten' || (actor !== null && actor !== hold.user)) {
      expect_rejection(r, ['HoldNotFoundError'], call);
      return;
    }
    if (hold.status === 'confirmed') {
      expect_rejection(r, ['HoldConfirmedError'], call);
      return;
    }
    const { decision, reply } = call();
    if (hold.status !== 'active' || m.now >= hold.expires_at) {
      assert.equal(reply, { released: false });
      assert.equal(decision.records, []);
      return;
    }
    assert.equal(reply, { released: true });
    assert.equal(decision.records.map((x) => x.t), ['hold_released']);
    for (const i of hold.seats) m.seat[i] = 'free';
    hold.status = 'released';
    hold.forget_at = m.now + L.hold_tombstone_retention_ms;
  }

  toString(): string {
    return `release(#${this.ref}, ${this.actor})`;
  }
}

class Confirm implements fc.Command<Model, Real> {
  constructor(readonly ref: number, readonly order: string) {}

  check(): boolean {
    return true;
  }

  run(m: Model, r: Real): void {
    const hold = resolve(m, this.ref);
    const id = hold?.id ?? UNKNOWN_HOLD;
    const call = () => r.h.confirm(id, this.order);
    const allowed: string[] = [];
    if (this.order === '') allowed.push('InvalidArgumentError');
    if (hold === undefined || hold.status === 'forgotten') allowed.push('HoldNotFoundError');
    if (allowed.length > 0) {
      expect_rejection(r, allowed, call);
      return;
    }
    const h = hold!;
    if (h.status === 'confirmed' && h.order === this.order) {
      const { decision, reply } = call();
      assert.equal(reply, { confirmed: true });
      assert.equal(decision.records, []);
      return;
    }
    if (h.status !== 'active' || m.now >= h.expires_at) {
      expect_rejection(r, ['HoldNotActiveError'], call);
      return;
    }
    const { decision, reply } = call();
    assert.equal(reply, { confirmed: true });
    assert.equal(decision.records.map((x) => x.t), ['hold_confirmed']);
    for (const i of h.seats) m.seat[i] = 'sold';
    h.status = 'confirmed';
    h.order = this.order;
  }

  toString(): string {
    return `confirm(#${this.ref}, ${JSON.stringify(this.order)})`;
  }
}

class Advance implements fc.Command<Model, Real> {
  constructor(readonly ms: number, readonly timers: boolean) {}

  check(): boolean {
    return true;
  }

  run(m: Model, r: Real): void {
    m.now += this.ms;
    r.h.advance(this.ms);
    assert.is(r.h.now, m.now);
    if (!this.timers) return;
    const forget = m.holds.filter((h) => (h.status === 'released' || h.status === 'expired') && h.forget_at <= m.now);
    const due = m.holds.filter((h) => h.status === 'active' && h.expires_at <= m.now);
    const d = r.h.timers();
    const expired_ids = d.records.filter((x): x is Extract<PartitionRecord, { t: 'hold_expired' }> => x.t === 'hold_expired').map((x) => x.hold_id);
    const forgotten_ids = d.records.flatMap((x) => (x.t === 'holds_forgotten' ? x.hold_ids : []));
    assert.equal(new Set(expired_ids), new Set(due.map((h) => h.id)), 'expired holds');
    assert.is(expired_ids.length, due.length, 'each hold expires once');
    assert.equal(new Set(forgotten_ids), new Set(forget.map((h) => h.id)), 'forgotten holds');
    assert.is(d.outbox.length, due.length, 'one InventoryHoldExpired per expired hold');
    for (const h of due) {
      const entry = d.outbox.find((o) => o.payload['hold_id'] === h.id);
      assert.equal(entry, {
        type: 'InventoryHoldExpired',
        key: EVENT,
        payload: { hold_id: h.id, event_id: EVENT, expired_at_unix: Math.floor(m.now / 1000), trace_id: h.trace },
      });
      for (const i of h.seats) m.seat[i] = 'free';
      h.status = 'expired';
      h.forget_at = m.now + L.hold_tombstone_retention_ms;
    }
    for (const h of forget) h.status = 'forgotten';
    const after = next_deadline_ms(r.h.state);
    assert.ok(after === null || after > m.now, 'nothing due after a timer run');
  }

  toString(): string {
    return `advance(${this.ms}${this.timers ? '' : ', no timers'})`;
  }
}

const checked = checked_by(verify);

const rarely = fc.integer({ min: 0, max: 9 }).map((x) => x === 0);
const ref = fc.oneof({ weight: 1, arbitrary: fc.constant(-2) }, { weight: 3, arbitrary: fc.integer({ min: -1, max: 40 }) });

const command_arbs: fc.Arbitrary<fc.Command<Model, Real>>[] = [
  fc.tuple(
    fc.constantFrom(...USERS),
    fc.uniqueArray(fc.nat(SEATS - 1), { minLength: 1, maxLength: 4 }),
    rarely,
    rarely,
    fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(0, 30, 30, 60, 3600) },
      { weight: 1, arbitrary: fc.constantFrom(29, 3601, -5) },
    ),
  ).map(([u, s, dup, bad, ttl]) => checked(new Reserve(u, s, dup, bad, ttl))),
  fc.tuple(ref, fc.constantFrom('owner' as const, 'owner' as const, 'other' as const, 'service' as const))
    .map(([h, a]) => checked(new Release(h, a))),
  fc.tuple(ref, fc.constantFrom('o1', 'o2', 'o3', 'o1', 'o2', ''))
    .map(([h, o]) => checked(new Confirm(h, o))),
  fc.tuple(
    fc.constantFrom(0, 1_000, 29_999, 30_000, 30_000, 60_000, 600_000, 3_600_000, L.hold_tombstone_retention_ms),
    fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 2, arbitrary: fc.constant(false) }),
  ).map(([ms, timers]) => checked(new Advance(ms, timers))),
  fc.constantFrom('msgpackr' as const, 'memory' as const, 'v2' as const).map((via) => checked(new Restart<Model>(via))),
];

test('inventory agrees with a model under random contention, expiry and restarts', () => {
  fc.assert(
    fc.property(fc.commands(command_arbs, { maxCommands: 60, size: 'max' }), (cmds) => {
      const setup = () => {
        const h = new Harness(0);
        h.create_event(SPEC);
        const model: Model = { now: h.now, seat: Array.from({ length: SEATS }, () => 'free' as SeatState), holds: [] };
        verify(model, { h });
        return { model, real: { h } };
      };
      fc.modelRun(setup, cmds);
    }),
    { numRuns: 100 },
  );
});

test('the model run sees every outcome (guards against a vacuous property)', () => {
  // Counts outcomes over a fixed-seed sample so a generator change cannot silently stop
  // exercising confirmations, expiries or contention.
  const seen = new Set<string>();
  fc.assert(
    fc.property(fc.commands(command_arbs, { maxCommands: 60, size: 'max' }), (cmds) => {
      const h = new Harness(0);
      h.create_event(SPEC);
      const model: Model = { now: h.now, seat: Array.from({ length: SEATS }, () => 'free' as SeatState), holds: [] };
      const real = { h };
      for (const cmd of cmds) {
        if (!cmd.check(model)) continue;
        cmd.run(model, real);
        for (const x of model.holds) seen.add(x.status);
      }
    }),
    { numRuns: 50, seed: 1 },
  );
  for (const s of ['active', 'released', 'expired', 'confirmed', 'forgotten']) assert.ok(seen.has(s), `outcome ${s} reached`);
});

test.run();

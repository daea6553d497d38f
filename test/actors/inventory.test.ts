// The Inventory rows of docs/contracts.md "Behaviour" (ReserveTickets, ReleaseHold,
// ConfirmAllocation, hold expiry) plus CreateEvent and snapshots, driven through decide + apply
// with a fake clock.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  decide_create_event, decide_reserve, expiries_per_timer_run_max, type PartitionRecord,
} from '../../src/actors/inventory.js';
import { decide_timers, next_deadline_ms } from '../../src/actors/orders.js';
import { SEAT_FREE, SEAT_HELD, SEAT_SOLD } from '../../src/actors/partition_state.js';
import { check_invariants } from '../../src/actors/invariants.js';
import * as L from '../../src/actors/limits.js';
import { restore, snapshot } from '../../src/actors/snapshot.js';
import { get_availability } from '../../src/actors/queries.js';
import { Harness, make_ctx, rejects, restart, sample_seat_ids, sample_spec, step, T0 } from './helpers.js';

/** Bad input is InvalidArgumentError, except a string over its length limit: FieldTooLongError
 *  (counted by limit in the metrics). */
function invalid_name(message: string): string {
  return message.includes('is longer than') ? 'FieldTooLongError' : 'InvalidArgumentError';
}

function ready(): Harness {
  const h = new Harness();
  h.create_event();
  return h;
}

function kinds(records: PartitionRecord[]): string[] {
  return records.map((r) => r.t);
}

const ALL = sample_seat_ids().length; // 39

// ---------------------------------------------------------------------------------------------
// harness sanity

test('make_ctx: seeded randomness is deterministic and step() applies every record', () => {
  const a = make_ctx(3, 123, 7);
  const b = make_ctx(3, 123, 7);
  assert.equal(a.partition, 3);
  assert.equal(a.now_ms, 123);
  assert.equal([...a.random_bytes(16)], [...b.random_bytes(16)]);
  const h = new Harness();
  const d = decide_create_event(h.state, sample_spec());
  assert.is(h.state.events.size, 0, 'decide alone changes nothing');
  step(h.state, d);
  assert.is(h.state.events.size, 1);
  h.check();
});

test('reserve ids are deterministic for a seed and differ between holds', () => {
  const run = () => {
    const h = ready();
    return [h.reserve('u1', ['101-A-1']).reply.hold_id, h.reserve('u2', ['101-A-2']).reply.hold_id];
  };
  const [a1, a2] = run();
  const [b1, b2] = run();
  assert.is(a1, b1);
  assert.is(a2, b2);
  assert.is.not(a1, a2);
  assert.match(a1!, /^hold_0_[A-Za-z0-9_-]{22}$/);
});

// ---------------------------------------------------------------------------------------------
// CreateEvent

test('CreateEvent: creates once; the same spec again is created=false with no records', () => {
  const h = new Harness();
  const first = h.create_event();
  assert.equal(first.reply, { event_id: 'evt-1', created: true, seat_count: ALL });
  assert.equal(kinds(first.records as PartitionRecord[]), ['event_created']);
  const again = h.create_event();
  assert.equal(again.reply, { event_id: 'evt-1', created: false, seat_count: ALL });
  assert.equal(again.records, []);
  assert.equal(again.outbox, []);
  // Same definition written differently (tier keys reordered, defaults spelled out or left out).
  const reordered = { ...sample_spec(), price_tiers: { B: 30_000_000, A: 50_000_000 } } as Record<string, unknown>;
  delete reordered['promo_codes'];
  assert.equal(h.create_event(reordered).records, []);
  const a = h.availability();
  assert.equal([a.free, a.held, a.sold], [ALL, 0, 0]);
  h.check();
});

test('CreateEvent: a different spec under the same id -> EventExistsError, state unchanged', () => {
  const h = ready();
  h.reserve('u1', ['101-A-1']);
  const err = rejects(h, 'EventExistsError', () => h.create_event(sample_spec({ name: 'Other show' })));
  assert.match(err.message, /evt-1/);
  rejects(h, 'EventExistsError', () => h.create_event(sample_spec({ max_seats_per_user: 9 })));
  assert.is(h.state.events.get('evt-1')!.spec.name, 'Sample concert');
});

test('CreateEvent: invalid specs -> InvalidArgumentError and no event', () => {
  const big_section = { name: 'X', rows: Array.from({ length: 201 }, (_, i) => ({ name: `R${i}`, seats: 1000, tier: 'A' })) };
  const bad: [string, unknown][] = [
    ['no sections', sample_spec({ sections: [] })],
    ['sections missing', { ...sample_spec(), sections: undefined }],
    ['unknown tier', sample_spec({ sections: [{ name: '101', rows: [{ name: 'A', seats: 3, tier: 'C' }] }] })],
    ['section name with -', sample_spec({ sections: [{ name: '10-1', rows: [{ name: 'A', seats: 3, tier: 'A' }] }] })],
    ['row name with -', sample_spec({ sections: [{ name: '101', rows: [{ name: 'A-B', seats: 3, tier: 'A' }] }] })],
    ['too many seats', sample_spec({ sections: [big_section] })],
    ['bad currency lower case', sample_spec({ currency: 'eur' })],
    ['bad currency 4 letters', sample_spec({ currency: 'EURO' })],
    ['bad currency empty', sample_spec({ currency: '' })],
    ['bad event id', sample_spec({ event_id: 'evt 1' })],
    ['not an object', 'evt-1'],
    ['null', null],
  ];
  for (const [what, spec] of bad) {
    const h = new Harness();
    let caught: unknown;
    try {
      h.create_event(spec);
    } catch (error) {
      caught = error;
    }
    assert.instance(caught, Error, what);
    assert.is((caught as Error).name, invalid_name((caught as Error).message), what);
    assert.is(h.state.events.size, 0, `${what}: no event created`);
  }
});

// ---------------------------------------------------------------------------------------------
// ReserveTickets

test('ReserveTickets: happy path holds the seats for the default 600 s', () => {
  const h = ready();
  const { decision, reply } = h.reserve('u1', ['101-A-1', '101-A-2', '102-A-5'], 0);
  assert.is(reply.expires_at_ms, T0 + 600_000);
  assert.equal(kinds(decision.records), ['hold_created']);
  assert.equal(decision.outbox, [{
    type: 'HoldCreated', key: 'evt-1',
    payload: {
      hold_id: reply.hold_id, event_id: 'evt-1', user_id: 'u1', seat_ids: ['101-A-1', '101-A-2', '102-A-5'],
      expires_at_unix: Math.floor((T0 + 600_000) / 1000), created_at_unix: Math.floor(T0 / 1000), trace_id: decision.outbox[0]!.payload['trace_id'],
    },
  }]);
  const a = h.availability();
  assert.equal([a.free, a.held, a.sold], [ALL - 3, 3, 0]);
  const s101 = h.availability('101');
  assert.equal([s101.free, s101.held], [32, 2]);
  assert.not.ok(s101.sections[0]!.free_seat_ids.includes('101-A-1'));
  assert.not.ok(s101.sections[0]!.free_seat_ids.includes('101-A-2'));
  assert.ok(s101.sections[0]!.free_seat_ids.includes('101-A-3'));
  const s102 = h.availability('102');
  assert.equal(s102.sections[0]!.free_seat_ids, ['102-A-1', '102-A-2', '102-A-3', '102-A-4']);
  const hold = h.state.holds.get(reply.hold_id)!;
  assert.is(hold.status, 'active');
  assert.is(hold.user_id, 'u1');
  assert.is(hold.expires_at_ms, T0 + 600_000);
  h.check();
});

test('ReserveTickets: ttl 30 and 3600 accepted with expires_at = now + ttl', () => {
  const h = ready();
  assert.is(h.reserve('u1', ['101-A-1'], 30).reply.expires_at_ms, T0 + 30_000);
  assert.is(h.reserve('u1', ['101-A-2'], 3600).reply.expires_at_ms, T0 + 3_600_000);
  assert.is(h.reserve('u1', ['101-A-3'], 31).reply.expires_at_ms, T0 + 31_000);
  h.check();
});

test('ReserveTickets: ttl 29, 3601, negative, fractional -> InvalidArgumentError', () => {
  const h = ready();
  for (const ttl of [29, 3601, -1, -600, 1, 30.5, Number.NaN, Infinity]) {
    const err = rejects(h, 'InvalidArgumentError', () => h.reserve('u1', ['101-A-1'], ttl));
    assert.match(err.message, /hold_ttl_seconds/);
  }
  assert.is(h.availability().held, 0);
});

test('ReserveTickets: unknown event -> EventNotFoundError', () => {
  const h = ready();
  const err = rejects(h, 'EventNotFoundError', () => h.reserve('u1', ['101-A-1'], 0, 'evt-nope'));
  assert.match(err.message, /evt-nope/);
  const h2 = new Harness();
  let caught: unknown;
  try {
    h2.reserve('u1', ['101-A-1']);
  } catch (error) {
    caught = error;
  }
  assert.is((caught as Error).name, 'EventNotFoundError');
  assert.is(h2.state.holds.size, 0);
});

test('ReserveTickets: seat taken -> SeatsUnavailableError naming the taken seats (held and sold)', () => {
  const h = ready();
  const held = h.reserve('u1', ['101-A-1', '101-A-2']).reply.hold_id;
  const sold = h.reserve('u2', ['101-B-3']).reply.hold_id;
  h.confirm(sold, 'order-2');
  const err = rejects(h, 'SeatsUnavailableError', () => h.reserve('u3', ['101-A-3', '101-A-2', '101-B-3', '101-A-4']));
  assert.match(err.message, /101-A-2/);
  assert.match(err.message, /101-B-3/);
  assert.not.match(err.message, /101-A-3\b/);
  assert.not.match(err.message, /101-A-4\b/);
  assert.not.match(err.message, /101-A-1\b/);
  assert.is(h.state.holds.get(held)!.status, 'active');
  // The holder itself cannot hold its own seats twice either.
  rejects(h, 'SeatsUnavailableError', () => h.reserve('u1', ['101-A-1']));
});

test('ReserveTickets: all-or-nothing: one taken seat means none are held', () => {
  const h = ready();
  h.reserve('u1', ['102-A-3']);
  const holds = h.state.holds.size;
  rejects(h, 'SeatsUnavailableError', () => h.reserve('u2', ['102-A-1', '102-A-2', '102-A-3', '102-A-4']));
  assert.is(h.state.holds.size, holds);
  const s = h.availability('102');
  assert.equal(s.sections[0]!.free_seat_ids, ['102-A-1', '102-A-2', '102-A-4', '102-A-5']);
  // Same with one bad id among good ones.
  rejects(h, 'InvalidArgumentError', () => h.reserve('u2', ['102-A-1', '102-A-9']));
  assert.is(h.availability('102').free, 4);
  // After the blocking seat is released the same request succeeds as a whole.
  h.release([...h.state.holds.keys()][0]!, 'u1');
  assert.equal(kinds(h.reserve('u2', ['102-A-1', '102-A-2', '102-A-3', '102-A-4']).decision.records), ['hold_created']);
  assert.equal(h.availability('102').sections[0]!.free_seat_ids, ['102-A-5']);
  h.check();
});

test('ReserveTickets: malformed or unknown seat ids -> InvalidArgumentError', () => {
  const h = ready();
  const bad = [
    '', '101-A', '101-A-0', '101-A-25', '101-B-11', '102-A-6', '999-A-1', '101-C-1', '101-A-01', 'a-b-c-d', '101-a-1',
    '-A-1', '101--1', '101-A-', '101-A-1-', ' 101-A-1', '101-A-1 ', '101-A-1.0', '101-A-+1', '101-A-1e1', '101-A--1',
    '101', 'x'.repeat(100), '101-A-1\u0000',
  ];
  for (const id of bad) {
    const err = rejects(h, 'InvalidArgumentError', () => h.reserve('u1', [id]));
    assert.ok(err.message.length > 0, id);
  }
  // Not strings at all.
  for (const id of [5, null, undefined, {}] as unknown as string[]) {
    rejects(h, 'InvalidArgumentError', () => h.reserve('u1', [id]));
  }
  // seat_ids missing or empty.
  rejects(h, 'InvalidArgumentError', () => h.reserve('u1', []));
  rejects(h, 'InvalidArgumentError', () => h.reserve('u1', null as unknown as string[]));
  const err = rejects(h, 'InvalidArgumentError', () => h.reserve('u1', ['101-A-1', '999-A-1']));
  assert.match(err.message, /999-A-1/);
  assert.is(h.availability().held, 0);
});

test('ReserveTickets: duplicate seats -> InvalidArgumentError naming the seat', () => {
  const h = ready();
  const err = rejects(h, 'InvalidArgumentError', () => h.reserve('u1', ['101-A-1', '101-A-2', '101-A-1']));
  assert.match(err.message, /101-A-1/);
  assert.is(h.availability().held, 0);
});

test('ReserveTickets: 11 seats -> SeatsPerHoldExceededError; 10 seats allowed', () => {
  const h = new Harness();
  h.create_event(sample_spec({ max_seats_per_user: 20 }));
  const eleven = sample_seat_ids().slice(0, 11);
  const err = rejects(h, 'SeatsPerHoldExceededError', () => h.reserve('u1', eleven));
  assert.match(err.message, /10/);
  assert.equal(kinds(h.reserve('u1', eleven.slice(0, 10)).decision.records), ['hold_created']);
  assert.is(h.availability().held, 10);
  h.check();
});

test('ReserveTickets: max_seats_per_user counts held + sold -> SeatsPerUserExceededError', () => {
  const h = ready(); // max 8
  const a = h.reserve('u1', ['101-A-1', '101-A-2', '101-A-3', '101-A-4', '101-A-5']).reply.hold_id;
  rejects(h, 'SeatsPerUserExceededError', () => h.reserve('u1', ['101-B-1', '101-B-2', '101-B-3', '101-B-4']));
  h.confirm(a, 'order-1'); // 5 sold
  const b = h.reserve('u1', ['101-B-1', '101-B-2', '101-B-3']).reply.hold_id; // 5 sold + 3 held = 8
  const err = rejects(h, 'SeatsPerUserExceededError', () => h.reserve('u1', ['102-A-1']));
  assert.match(err.message, /u1/);
  assert.match(err.message, /8/);
  // Other users are not affected.
  h.reserve('u2', ['102-A-1']);
  // Releasing held seats frees quota; sold seats keep counting.
  h.release(b, 'u1');
  h.reserve('u1', ['101-B-5', '101-B-6', '101-B-7']);
  rejects(h, 'SeatsPerUserExceededError', () => h.reserve('u1', ['102-A-2']));
  // An expired hold frees quota too.
  h.advance(600_000);
  h.timers();
  h.reserve('u1', ['102-A-2', '102-A-3', '102-A-4']);
  h.check();
});

/** The README's promises, as literals: changing a constant in src/actors/limits.ts must fail
 *  here, not silently move every test with it. */
const README_HOLDS_PER_USER = 10; // "≤ 10 active holds per user per event"
const README_TOMBSTONE_MS = 24 * 60 * 60 * 1000; // "released/expired holds remembered 24 h"

test('ReserveTickets: at most 10 active holds per user (holds_per_user_max)', () => {
  const h = new Harness();
  h.create_event(sample_spec({ max_seats_per_user: 100 }));
  const ids = sample_seat_ids();
  const holds: string[] = [];
  for (let i = 0; i < README_HOLDS_PER_USER; i++) holds.push(h.reserve('u1', [ids[i]!]).reply.hold_id);
  const err = rejects(h, 'HoldsPerUserExceededError', () => h.reserve('u1', [ids[20]!]));
  assert.match(err.message, /holds/);
  h.reserve('u2', [ids[20]!]);
  h.release(holds[0]!, 'u1');
  h.reserve('u1', [ids[21]!]);
  // A confirmed hold is no longer active.
  h.confirm(holds[1]!, 'order-1');
  h.reserve('u1', [ids[22]!]);
  rejects(h, 'HoldsPerUserExceededError', () => h.reserve('u1', [ids[23]!]));
  h.check();
});

test('ReserveTickets: empty or malformed user_id -> InvalidArgumentError', () => {
  const h = ready();
  for (const user of ['', 'has space', 'ü', null as unknown as string]) {
    rejects(h, 'InvalidArgumentError', () => h.reserve(user, ['101-A-1']));
  }
  rejects(h, 'FieldTooLongError', () => h.reserve('x'.repeat(129), ['101-A-1']));
  h.reserve('x'.repeat(128), ['101-A-1']);
  h.check();
});

// ---------------------------------------------------------------------------------------------
// ReleaseHold

test('ReleaseHold: active hold -> released=true and its seats are free', () => {
  const h = ready();
  const id = h.reserve('u1', ['101-A-1', '101-A-2']).reply.hold_id;
  const { decision, reply } = h.release(id, 'u1');
  assert.equal(reply, { released: true });
  assert.equal(kinds(decision.records), ['hold_released']);
  assert.equal(decision.outbox.map((o) => [o.type, o.key, o.payload['hold_id'], o.payload['released_at_unix']]), [['HoldReleased', 'evt-1', id, Math.floor(T0 / 1000)]]);
  const a = h.availability();
  assert.equal([a.free, a.held, a.sold], [ALL, 0, 0]);
  assert.is(h.state.holds.get(id)!.status, 'released');
  // The seats can be held again by someone else.
  h.reserve('u2', ['101-A-1', '101-A-2']);
  h.check();
});

test('ReleaseHold: releasing again -> released=false with no records', () => {
  const h = ready();
  const id = h.reserve('u1', ['101-A-1']).reply.hold_id;
  h.release(id, 'u1');
  const again = h.release(id, 'u1');
  assert.equal(again.reply, { released: false });
  assert.equal(again.decision.records, []);
  h.check();
});

test('ReleaseHold: expired hold -> released=false', () => {
  const h = ready();
  const id = h.reserve('u1', ['101-A-1'], 30).reply.hold_id;
  h.advance(30_000);
  assert.equal(kinds(h.timers().records), ['hold_expired']);
  const r = h.release(id, 'u1');
  assert.equal(r.reply, { released: false });
  assert.equal(r.decision.records, []);
  h.check();
});

test('ReleaseHold: past expiry but before the timer ran -> released=false, no records', () => {
  const h = ready();
  const id = h.reserve('u1', ['101-A-1'], 30).reply.hold_id;
  h.advance(30_000);
  const r = h.release(id, 'u1');
  assert.equal(r.reply, { released: false });
  assert.equal(r.decision.records, []);
  // The timer still expires it exactly once.
  const t = h.timers();
  assert.equal(kinds(t.records), ['hold_expired']);
  assert.is(t.outbox.length, 1);
  h.check();
});

test('ReleaseHold: confirmed hold -> HoldConfirmedError', () => {
  const h = ready();
  const id = h.reserve('u1', ['101-A-1']).reply.hold_id;
  h.confirm(id, 'order-1');
  const err = rejects(h, 'HoldConfirmedError', () => h.release(id, 'u1'));
  assert.match(err.message, new RegExp(id));
  rejects(h, 'HoldConfirmedError', () => h.release(id, null));
  assert.is(h.availability().sold, 1);
});

test('ReleaseHold: unknown hold -> HoldNotFoundError', () => {
  const h = ready();
  h.reserve('u1', ['101-A-1']);
  rejects(h, 'HoldNotFoundError', () => h.release('hold_0_AAAAAAAAAAAAAAAAAAAAAA', 'u1'));
  rejects(h, 'HoldNotFoundError', () => h.release('hold_0_AAAAAAAAAAAAAAAAAAAAAA', null));
  rejects(h, 'HoldNotFoundError', () => h.release('', null));
});

test("ReleaseHold: another user's hold -> HoldNotFoundError (same answer as unknown)", () => {
  const h = ready();
  const id = h.reserve('u1', ['101-A-1']).reply.hold_id;
  const err = rejects(h, 'HoldNotFoundError', () => h.release(id, 'u2'));
  const unknown = rejects(h, 'HoldNotFoundError', () => h.release('hold_0_AAAAAAAAAAAAAAAAAAAAAA', 'u2'));
  assert.is(err.message.replace(id, 'X'), unknown.message.replace('hold_0_AAAAAAAAAAAAAAAAAAAAAA', 'X'));
  assert.is(h.state.holds.get(id)!.status, 'active');
  // Not even a confirmed hold's existence leaks to another user.
  h.confirm(id, 'order-1');
  rejects(h, 'HoldNotFoundError', () => h.release(id, 'u2'));
});

test('ReleaseHold: actor_user_id null (a service) may release anyone\'s hold', () => {
  const h = ready();
  const id = h.reserve('u1', ['101-A-1']).reply.hold_id;
  assert.equal(h.release(id, null).reply, { released: true });
  assert.is(h.availability().held, 0);
  h.check();
});

// ---------------------------------------------------------------------------------------------
// ConfirmAllocation

test('ConfirmAllocation: held seats become sold to the order', () => {
  const h = ready();
  const id = h.reserve('u1', ['101-A-1', '101-A-2', '102-A-1']).reply.hold_id;
  const { decision, reply } = h.confirm(id, 'order-1');
  assert.equal(reply, { confirmed: true });
  assert.equal(kinds(decision.records), ['hold_confirmed']);
  const a = h.availability();
  assert.equal([a.free, a.held, a.sold], [ALL - 3, 0, 3]);
  assert.equal([h.availability('102').sold, h.availability('101').sold], [1, 2]);
  const event = h.state.events.get('evt-1')!;
  const i = event.map.index_of('101-A-1');
  assert.is(event.seat_state[i], SEAT_SOLD);
  assert.is(event.orders[event.seat_owner[i]!], 'order-1');
  assert.is(h.state.holds.get(id)!.status, 'confirmed');
  // Sold seats cannot be held.
  rejects(h, 'SeatsUnavailableError', () => h.reserve('u2', ['101-A-1']));
  h.check();
});

test('ConfirmAllocation: repeating with the same order -> confirmed=true, no records', () => {
  const h = ready();
  const id = h.reserve('u1', ['101-A-1']).reply.hold_id;
  h.confirm(id, 'order-1');
  const again = h.confirm(id, 'order-1');
  assert.equal(again.reply, { confirmed: true });
  assert.equal(again.decision.records, []);
  // Still true after the hold would have expired and after tombstone retention.
  h.advance(2 * L.hold_tombstone_retention_ms);
  h.timers();
  assert.equal(h.confirm(id, 'order-1').reply, { confirmed: true });
  assert.is(h.availability().sold, 1);
  h.check();
});

test('ConfirmAllocation: another order -> HoldNotActiveError', () => {
  const h = ready();
  const id = h.reserve('u1', ['101-A-1']).reply.hold_id;
  h.confirm(id, 'order-1');
  rejects(h, 'HoldNotActiveError', () => h.confirm(id, 'order-2'));
  const event = h.state.events.get('evt-1')!;
  assert.is(event.orders[event.seat_owner[event.map.index_of('101-A-1')]!], 'order-1');
});

test('ConfirmAllocation: released or expired hold -> HoldNotActiveError', () => {
  const h = ready();
  const released = h.reserve('u1', ['101-A-1']).reply.hold_id;
  h.release(released, 'u1');
  rejects(h, 'HoldNotActiveError', () => h.confirm(released, 'order-1'));
  const expired = h.reserve('u1', ['101-A-2'], 30).reply.hold_id;
  h.advance(30_000);
  h.timers();
  const err = rejects(h, 'HoldNotActiveError', () => h.confirm(expired, 'order-1'));
  assert.match(err.message, /expired/);
  assert.is(h.availability().sold, 0);
});

test('ConfirmAllocation: past expiry but timer not yet run -> HoldNotActiveError', () => {
  const h = ready();
  const id = h.reserve('u1', ['101-A-1'], 30).reply.hold_id;
  h.advance(29_999);
  // One ms before expiry it still confirms (on a copy of the partition).
  const other = ready();
  const id2 = other.reserve('u1', ['101-A-1'], 30).reply.hold_id;
  other.advance(29_999);
  assert.equal(other.confirm(id2, 'order-1').reply, { confirmed: true });
  h.advance(1);
  rejects(h, 'HoldNotActiveError', () => h.confirm(id, 'order-1'));
  h.advance(5_000);
  rejects(h, 'HoldNotActiveError', () => h.confirm(id, 'order-1'));
  assert.is(h.state.holds.get(id)!.status, 'active', 'timer has not run yet');
  h.timers();
  assert.is(h.state.holds.get(id)!.status, 'expired');
  h.check();
});

test('ConfirmAllocation: bad order_id -> InvalidArgumentError', () => {
  const h = ready();
  const id = h.reserve('u1', ['101-A-1']).reply.hold_id;
  for (const order of ['', 'has space', 'o'.repeat(129), 'ordér', null as unknown as string]) {
    rejects(h, 'InvalidArgumentError', () => h.confirm(id, order));
  }
  assert.is(h.state.holds.get(id)!.status, 'active');
  h.confirm(id, 'o'.repeat(128));
  h.check();
});

test('ConfirmAllocation: unknown hold -> HoldNotFoundError', () => {
  const h = ready();
  rejects(h, 'HoldNotFoundError', () => h.confirm('hold_0_AAAAAAAAAAAAAAAAAAAAAA', 'order-1'));
});

test('ConfirmAllocation: two holds confirmed to one order share it', () => {
  const h = ready();
  const a = h.reserve('u1', ['101-A-1']).reply.hold_id;
  const b = h.reserve('u1', ['101-A-2']).reply.hold_id;
  h.confirm(a, 'order-1');
  h.confirm(b, 'order-1');
  const event = h.state.events.get('evt-1')!;
  assert.equal(event.orders, ['order-1']);
  assert.is(h.availability().sold, 2);
  h.check();
});

// ---------------------------------------------------------------------------------------------
// hold expiry

test('expiry: at expires_at one hold_expired record and one InventoryHoldExpired outbox entry', () => {
  const h = ready();
  const { hold_id, expires_at_ms } = h.reserve('u1', ['101-A-1', '101-A-2'], 30, 'evt-1', 'trace-abc').reply;
  h.advance(29_999);
  const early = h.timers();
  assert.equal(early.records, []);
  assert.equal(early.outbox, []);
  assert.is(h.availability().held, 2);
  h.advance(1);
  assert.is(h.now, expires_at_ms);
  const due = h.timers();
  assert.equal(due.records, [{ t: 'hold_expired', hold_id, at_ms: expires_at_ms }]);
  assert.equal(due.outbox, [{
    type: 'InventoryHoldExpired',
    key: 'evt-1',
    payload: { hold_id, event_id: 'evt-1', expired_at_unix: Math.floor(expires_at_ms / 1000), trace_id: 'trace-abc' },
  }]);
  assert.is(Math.floor(expires_at_ms / 1000), 1_700_000_030);
  const a = h.availability();
  assert.equal([a.free, a.held, a.sold], [ALL, 0, 0]);
  assert.is(h.state.holds.get(hold_id)!.status, 'expired');
  h.check();
  // Expired once: later runs emit nothing more.
  for (const ms of [0, 1, 60_000]) {
    h.advance(ms);
    const again = h.timers();
    assert.equal(again.records, []);
    assert.equal(again.outbox, []);
  }
});

test('expiry: a late timer run expires every due hold once, leaves later ones', () => {
  const h = ready();
  const a = h.reserve('u1', ['101-A-1'], 30).reply.hold_id;
  const b = h.reserve('u2', ['101-A-2'], 60).reply.hold_id;
  const c = h.reserve('u3', ['101-A-3'], 120).reply.hold_id;
  const d = h.reserve('u4', ['101-A-4'], 60).reply.hold_id;
  h.advance(90_000);
  const run = h.timers();
  assert.equal(new Set(run.records.map((r) => (r as { hold_id: string }).hold_id)), new Set([a, b, d]));
  assert.equal(run.outbox.map((o) => o.type), ['InventoryHoldExpired', 'InventoryHoldExpired', 'InventoryHoldExpired']);
  assert.equal(new Set(run.outbox.map((o) => o.payload['hold_id'])), new Set([a, b, d]));
  assert.is(h.state.holds.get(c)!.status, 'active');
  assert.is(h.availability().held, 1);
  h.check();
});

test('expiry: a released or confirmed hold never expires', () => {
  const h = ready();
  const a = h.reserve('u1', ['101-A-1'], 30).reply.hold_id;
  const b = h.reserve('u2', ['101-A-2'], 30).reply.hold_id;
  h.release(a, 'u1');
  h.confirm(b, 'order-b');
  h.advance(30_000);
  const run = h.timers();
  assert.equal(run.records, []);
  assert.equal(run.outbox, []);
  assert.is(h.availability().sold, 1);
  h.check();
});

test('expiry: next_deadline_ms is the earliest active hold expiry', () => {
  const h = ready();
  assert.is(next_deadline_ms(h.state), null);
  const late = h.reserve('u1', ['101-A-1'], 120).reply;
  assert.is(next_deadline_ms(h.state), late.expires_at_ms);
  const early = h.reserve('u2', ['101-A-2'], 30).reply;
  assert.is(next_deadline_ms(h.state), early.expires_at_ms);
  h.advance(30_000);
  h.timers();
  assert.is(next_deadline_ms(h.state), late.expires_at_ms);
  // A released hold may leave a stale (earlier) wake-up, never a later one; the run at that
  // wake-up does nothing and leaves the true deadline.
  const mid = h.reserve('u3', ['101-A-3'], 60).reply;
  h.release(mid.hold_id, 'u3');
  const deadline = next_deadline_ms(h.state)!;
  assert.ok(deadline <= late.expires_at_ms);
  h.advance(deadline - h.now);
  const idle = h.timers();
  assert.equal(idle.records, []);
  assert.is(next_deadline_ms(h.state), late.expires_at_ms);
  h.advance(late.expires_at_ms - h.now);
  assert.equal(kinds(h.timers().records), ['hold_expired']);
  // Only tombstones remain: the next deadline is the first forget time.
  assert.is(next_deadline_ms(h.state), T0 + 30_000 + L.hold_tombstone_retention_ms);
  h.check();
});

test('expiry: a timer run is bounded; repeated runs (as the host arms them) expire every due hold once', () => {
  // decide_timers stops after expiries_per_timer_run_max expiries so one commit stays bounded;
  // the host re-arms with no delay while anything is due (src/runtime/host.ts run_timers).
  const h = new Harness();
  const n = expiries_per_timer_run_max + 1;
  const rows = Array.from({ length: 5 }, (_, i) => ({ name: `R${i}`, seats: 1000, tier: 'A' }));
  h.create_event(sample_spec({ sections: [{ name: 'S', rows }], max_seats_per_user: 100 }));
  const event = h.state.events.get('evt-1')!;
  for (let i = 0; i < n; i++) {
    h.reserve(`u${Math.floor(i / L.holds_per_user_max)}`, [event.map.id_of(i)], 30);
  }
  h.advance(30_000);
  const first = h.timers();
  assert.is(first.records.length, expiries_per_timer_run_max, 'first run stops at the bound');
  assert.ok(next_deadline_ms(h.state)! <= h.now, 'the rest is still due');
  const second = h.timers();
  assert.is(second.records.length, 1);
  assert.is(first.outbox.length + second.outbox.length, n, 'one InventoryHoldExpired per hold');
  check_invariants(h.state);
  const after = next_deadline_ms(h.state);
  assert.ok(after === null || after > h.now, 'nothing due after the second run');
  assert.is(event.held, 0);
});

test('tombstones: after a long outage every due tombstone is forgotten within bounded runs', () => {
  const h = ready();
  const n = expiries_per_timer_run_max + 1;
  for (let i = 0; i < n; i++) h.release(h.reserve('u1', ['101-A-1']).reply.hold_id, 'u1');
  h.advance(L.hold_tombstone_retention_ms);
  const first = h.timers();
  assert.is((first.records[0] as { hold_ids: string[] }).hold_ids.length, expiries_per_timer_run_max);
  const second = h.timers();
  assert.is((second.records[0] as { hold_ids: string[] }).hold_ids.length, 1);
  check_invariants(h.state);
  const after = next_deadline_ms(h.state);
  assert.ok(after === null || after > h.now, 'nothing due after the second run');
  assert.is(h.state.holds.size, 0, 'every tombstone forgotten');
});

// ---------------------------------------------------------------------------------------------
// tombstones

test('tombstones: ended holds answer released=false for 24 h, then HoldNotFoundError', () => {
  const h = ready();
  const released = h.reserve('u1', ['101-A-1']).reply.hold_id;
  h.release(released, 'u1'); // tombstone at T0
  const expired = h.reserve('u2', ['101-A-2'], 30).reply.hold_id;
  h.advance(30_000);
  h.timers(); // tombstone at T0 + 30 s
  h.advance(README_TOMBSTONE_MS - 30_000 - 1);
  assert.equal(h.timers().records, []);
  assert.equal(h.release(released, 'u1').reply, { released: false });
  h.advance(1);
  const forget = h.timers();
  assert.equal(forget.records, [{ t: 'holds_forgotten', hold_ids: [released] }]);
  assert.equal(forget.outbox, []);
  rejects(h, 'HoldNotFoundError', () => h.release(released, 'u1'));
  rejects(h, 'HoldNotFoundError', () => h.confirm(released, 'order-1'));
  assert.equal(h.release(expired, 'u2').reply, { released: false });
  h.advance(30_000);
  assert.equal(h.timers().records, [{ t: 'holds_forgotten', hold_ids: [expired] }]);
  rejects(h, 'HoldNotFoundError', () => h.release(expired, 'u2'));
  assert.is(next_deadline_ms(h.state), null);
  h.check();
});

// ---------------------------------------------------------------------------------------------
// snapshot / restore

function busy_partition(): { h: Harness; active: string; confirmed: string; released: string; expired: string } {
  const h = ready();
  const confirmed = h.reserve('u1', ['101-A-1', '101-A-2', '101-A-3', '101-A-4', '101-A-5']).reply.hold_id;
  h.confirm(confirmed, 'order-1');
  const released = h.reserve('u2', ['101-B-1']).reply.hold_id;
  h.release(released, 'u2');
  const expired = h.reserve('u3', ['101-B-2'], 30).reply.hold_id;
  h.advance(31_000);
  h.timers();
  const active = h.reserve('u1', ['102-A-1', '102-A-2', '102-A-3'], 120, 'evt-1', 'trace-active').reply.hold_id;
  h.reserve('u4', ['101-B-9'], 3600);
  return { h, active, confirmed, released, expired };
}

for (const [how, copy] of [
  ['snapshot/restore in memory', (h: Harness) => restore(h.partition, snapshot(h.state))],
  ['snapshot/restore through msgpackr', (h: Harness) => restart(h.state)],
] as const) {
  test(`${how}: same availability, invariants hold, holds keep expiring`, () => {
    const { h, active, confirmed, released, expired } = busy_partition();
    const before = JSON.stringify(h.availability());
    const deadline = next_deadline_ms(h.state);
    const restored = copy(h);
    check_invariants(restored);
    assert.is(JSON.stringify(get_availability(restored, 'evt-1', '')), before);
    for (const s of ['101', '102']) assert.equal(get_availability(restored, 'evt-1', s), h.availability(s));
    assert.is(next_deadline_ms(restored), deadline);
    assert.is(restored.active_holds, 2);
    h.state = restored;
    // Answers as before.
    assert.equal(h.confirm(confirmed, 'order-1').reply, { confirmed: true });
    rejects(h, 'HoldConfirmedError', () => h.release(confirmed, 'u1'));
    assert.equal(h.release(released, 'u2').reply, { released: false });
    assert.equal(h.release(expired, 'u3').reply, { released: false });
    // Per-user counts were rebuilt: u1 has 5 sold + 3 held = 8.
    rejects(h, 'SeatsPerUserExceededError', () => h.reserve('u1', ['101-A-20']));
    rejects(h, 'SeatsUnavailableError', () => h.reserve('u5', ['102-A-1']));
    // New holds get fresh numbers.
    const fresh = h.reserve('u5', ['101-A-20']).reply.hold_id;
    h.check();
    // The active hold still expires exactly once, with its trace id.
    h.advance(120_000);
    const run = h.timers();
    const expired_ids = run.records.filter((r) => r.t === 'hold_expired').map((r) => (r as { hold_id: string }).hold_id);
    assert.equal(expired_ids, [active]);
    assert.equal(run.outbox.length, 1);
    assert.is(run.outbox[0]!.payload['trace_id'], 'trace-active');
    assert.equal(h.timers().records, []);
    assert.is(h.state.holds.get(fresh)!.status, 'active');
    h.check();
    // Tombstones from before the restart are still forgotten in order.
    h.advance(L.hold_tombstone_retention_ms);
    const forget = h.timers().records.filter((r) => r.t === 'holds_forgotten');
    assert.equal(forget.length, 1);
    assert.ok((forget[0] as { hold_ids: string[] }).hold_ids.includes(released));
    rejects(h, 'HoldNotFoundError', () => h.release(released, 'u2'));
    h.check();
  });
}

test('snapshot through msgpackr twice (restart after restart) is stable', () => {
  const { h } = busy_partition();
  const once = restart(h.state);
  const twice = restart(once);
  check_invariants(twice);
  assert.equal(get_availability(twice, 'evt-1', ''), h.availability());
  const e1 = h.state.events.get('evt-1')!;
  const e2 = twice.events.get('evt-1')!;
  assert.equal([...e2.seat_state], [...e1.seat_state]);
  assert.equal([...e2.seat_owner], [...e1.seat_owner]);
  assert.is(e2.next_hold_no, e1.next_hold_no);
  assert.is(e2.seat_state[e2.map.index_of('101-A-1')], SEAT_SOLD);
  assert.is(e2.seat_state[e2.map.index_of('102-A-1')], SEAT_HELD);
  assert.is(e2.seat_state[e2.map.index_of('101-B-1')], SEAT_FREE);
});

test('decide never mutates: a rejected or unapplied reserve leaves state as it was', () => {
  const h = ready();
  const before = JSON.stringify(h.availability());
  const d = decide_reserve(h.state, { event_id: 'evt-1', seat_ids: ['101-A-1'], hold_ttl_seconds: 0, user_id: 'u1', trace_id: '' }, h.ctx());
  assert.is(d.records.length, 1);
  assert.is(JSON.stringify(h.availability()), before);
  assert.is(h.state.holds.size, 0);
  // Timers with nothing due decide nothing.
  assert.equal(decide_timers(h.state, h.ctx()).records, []);
  h.check();
});

test.run();

// Best available and general admission (selection.ts): the rules of the choice, the refusals
// (hostile input included), and that a hold made here is an ordinary hold.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { EventSpec } from '../../src/actors/event_spec.js';
import { decide_create_draft } from '../../src/actors/orders.js';
import { price } from '../../src/actors/pricing.js';
import {
  choose_best, decide_reserve_best, decide_reserve_ga, type ReserveBestRequest,
} from '../../src/actors/selection.js';
import * as L from '../../src/actors/limits.js';
import { SEAT_SOLD } from '../../src/actors/partition_state.js';
import { set_seat } from '../../src/actors/seat_change.js';
import { Harness, rejects, replied, restart, sample_spec, step } from './helpers.js';

/** ORCH (rows A with accessible seats 1 and 2, and B), BOX (same priority, listed later), BALC
 *  (priority 1: after both), and a standing area FLOOR of 5 places. */
function sel_spec(overrides: Partial<EventSpec> = {}): EventSpec {
  return sample_spec({
    price_tiers: { A: 100, B: 50, S: 20 },
    sections: [
      { name: 'ORCH', rows: [{ name: 'A', seats: 10, tier: 'A', accessible_seats: [1, 2] }, { name: 'B', seats: 10, tier: 'A' }] },
      { name: 'BALC', priority: 1, rows: [{ name: 'A', seats: 8, tier: 'B' }] },
      { name: 'BOX', rows: [{ name: 'A', seats: 4, tier: 'B' }] },
    ],
    areas: [{ name: 'FLOOR', capacity: 5, tier: 'S' }],
    max_seats_per_user: 30,
    ...overrides,
  });
}

class Sel extends Harness {
  best(user_id: string, quantity: number, more: Partial<ReserveBestRequest> = {}) {
    const req: ReserveBestRequest = {
      event_id: 'evt-1', user_id, quantity, tiers: [], sections: [], accessible_quantity: 0,
      hold_ttl_seconds: 0, trace_id: 't', ...more,
    };
    const d = step(this.state, decide_reserve_best(this.state, req, this.ctx()));
    return { decision: d, reply: replied(d) };
  }

  ga(user_id: string, area: string, quantity: number, hold_ttl_seconds = 0) {
    const req = { event_id: 'evt-1', area, quantity, user_id, hold_ttl_seconds, trace_id: 't' };
    const d = step(this.state, decide_reserve_ga(this.state, req, this.ctx()));
    return { decision: d, reply: replied(d) };
  }
}

function sel(spec: EventSpec = sel_spec()): Sel {
  const h = new Sel();
  h.create_event(spec);
  return h;
}

test('rule (a): the best row, the clean block nearest its centre; accessible seats stay out', () => {
  const h = sel();
  assert.equal(h.best('u1', 4).reply.seat_ids, ['ORCH-A-4', 'ORCH-A-5', 'ORCH-A-6', 'ORCH-A-7']);
  // Row A has no 4 adjacent plain seats left (3 | 8 9 10): the next row.
  assert.equal(h.best('u2', 4).reply.seat_ids, ['ORCH-B-4', 'ORCH-B-5', 'ORCH-B-6', 'ORCH-B-7']);
  // 8 9 10 fill row A's end exactly: clean, in the best row.
  assert.equal(h.best('u3', 3).reply.seat_ids, ['ORCH-A-8', 'ORCH-A-9', 'ORCH-A-10']);
  // Two in ORCH would strand a seat (A: only 3 is plain; B: 1 2 3 | 8 9 10): BOX (same
  // priority as ORCH, listed before BALC's priority 1) has a clean pair.
  assert.equal(h.best('u4', 2).reply.seat_ids, ['BOX-A-1', 'BOX-A-2']);
  h.check();
});

test('rule (b): when every adjacent block strands a seat, the best row nearest the centre', () => {
  const h = sel(sample_spec({ sections: [{ name: 'S', rows: [{ name: 'A', seats: 5, tier: 'A' }] }] }));
  h.reserve('x', ['S-A-4']);
  assert.equal(h.best('u1', 2).reply.seat_ids, ['S-A-2', 'S-A-3']);
  h.check();
});

test('rule (c): not adjacent, a combination stranding nothing when one exists, else rank order', () => {
  const one_row = (seats: number) => sample_spec({ sections: [{ name: 'S', rows: [{ name: 'A', seats, tier: 'A' }] }] });
  const h = sel(one_row(6));
  h.reserve('x', ['S-A-2', 'S-A-5']);
  // Free 1 | 3 4 | 6: 1 + (3 4) strands nothing; 3 + 4 + 6 would strand... nothing too, but 1
  // ranks first.
  assert.equal(h.best('u1', 3).reply.seat_ids, ['S-A-1', 'S-A-3', 'S-A-4']);
  const g = sel(one_row(5));
  g.reserve('x', ['S-A-3']);
  // Free 1 2 | 4 5: any 3 strand one; rank order.
  assert.equal(g.best('u1', 3).reply.seat_ids, ['S-A-1', 'S-A-2', 'S-A-4']);
  h.check();
  g.check();
});

test('accessible seats: exactly accessible_quantity of them, and only when asked for', () => {
  const h = sel();
  assert.equal(h.best('u1', 2, { accessible_quantity: 2 }).reply.seat_ids, ['ORCH-A-1', 'ORCH-A-2']);
  const g = sel();
  // Exactly one accessible: 2 3 4 is the only such block (it strands seat 1: rule b).
  assert.equal(g.best('u1', 3, { accessible_quantity: 1 }).reply.seat_ids, ['ORCH-A-2', 'ORCH-A-3', 'ORCH-A-4']);
  rejects(g, 'SeatsUnavailableError', () => g.best('u2', 2, { accessible_quantity: 2 }));
  // Everything but the accessible seats 1 and 2 of row A sold or held: a plain request finds none.
  const f = sel();
  f.best('u1', 8, { sections: ['ORCH'] });
  f.best('u2', 10, { sections: ['ORCH'] });
  f.best('u3', 8, { sections: ['BALC'] });
  f.best('u5', 4, { sections: ['BOX'] });
  const e = rejects(f, 'SeatsUnavailableError', () => f.best('u4', 1));
  assert.match(e.message, /not enough free seats for 1/);
  // Either strands the other (rule b): the one nearer the row's centre.
  assert.equal(f.best('u4', 1, { accessible_quantity: 1 }).reply.seat_ids, ['ORCH-A-2']);
  f.check();
});

test('tiers and sections narrow the candidates; unknown names are refused', () => {
  const h = sel();
  assert.equal(h.best('u1', 2, { tiers: ['B'] }).reply.seat_ids, ['BOX-A-1', 'BOX-A-2']);
  assert.equal(h.best('u1', 2, { sections: ['BALC'] }).reply.seat_ids, ['BALC-A-4', 'BALC-A-5']);
  // BALC is 1 2 3 | 6 7 8 now: every pair strands a seat (rule b), nearest the centre.
  assert.equal(h.best('u1', 2, { sections: ['BALC', 'ORCH'], tiers: ['B'] }).reply.seat_ids, ['BALC-A-2', 'BALC-A-3']);
  assert.match(rejects(h, 'InvalidArgumentError', () => h.best('u1', 2, { tiers: ['Z'] })).message, /no price tier Z/);
  assert.match(rejects(h, 'InvalidArgumentError', () => h.best('u1', 2, { sections: ['NOPE'] })).message, /no section NOPE/);
  assert.match(rejects(h, 'InvalidArgumentError', () => h.best('u1', 2, { sections: ['FLOOR'] })).message, /standing area/);
  rejects(h, 'InvalidArgumentError', () => h.best('u1', 2, { sections: ['a-b'] }));
  rejects(h, 'InvalidArgumentError', () => h.best('u1', 2, { tiers: 'A' as unknown as string[] }));
  rejects(h, 'InvalidArgumentError', () => h.best('u1', 2, { sections: Array(501).fill('ORCH') }));
  h.check();
});

test('hostile counts: the refusals ReserveTickets gives for the same counts', () => {
  const h = sel();
  for (const q of [0, -1, -2_147_483_648, 1.5, Number.NaN]) {
    rejects(h, 'InvalidArgumentError', () => h.best('u1', q));
    rejects(h, 'InvalidArgumentError', () => h.ga('u1', 'FLOOR', q));
  }
  for (const q of [11, 2_147_483_647, 1e15]) {
    rejects(h, 'SeatsPerHoldExceededError', () => h.best('u1', q));
    rejects(h, 'SeatsPerHoldExceededError', () => h.ga('u1', 'FLOOR', q));
  }
  rejects(h, 'SeatsPerHoldExceededError', () => h.reserve('u1', Array.from({ length: 11 }, (_, i) => `ORCH-B-${i % 10 + 1}`)));
  rejects(h, 'InvalidArgumentError', () => h.best('u1', 2, { accessible_quantity: 3 }));
  rejects(h, 'InvalidArgumentError', () => h.best('u1', 2, { accessible_quantity: -1 }));
  rejects(h, 'InvalidArgumentError', () => h.best('u1', 2, { hold_ttl_seconds: 5 }));
  rejects(h, 'InvalidArgumentError', () => h.ga('u1', 'FLOOR', 2, 99_999));
  rejects(h, 'InvalidArgumentError', () => h.best('', 2));
  rejects(h, 'EventNotFoundError', () => h.best('u1', 2, { event_id: 'evt-404' }));
  h.check();
});

test('per-user limits apply, and standing places count toward max_seats_per_user', () => {
  const h = sel(sel_spec({ max_seats_per_user: 6 }));
  h.ga('u1', 'FLOOR', 3);
  h.best('u1', 2);
  rejects(h, 'SeatsPerUserExceededError', () => h.best('u1', 2));
  rejects(h, 'SeatsPerUserExceededError', () => h.ga('u1', 'FLOOR', 2));
  h.ga('u1', 'FLOOR', 1);
  const g = sel();
  for (let i = 0; i < 10; i++) g.best('u1', 1);
  rejects(g, 'HoldsPerUserExceededError', () => g.best('u1', 1));
  rejects(g, 'HoldsPerUserExceededError', () => g.ga('u1', 'FLOOR', 1));
  h.check();
  g.check();
});

test('general admission: places by quantity, never past capacity; an ordinary hold', () => {
  const h = sel();
  const first = h.ga('u1', 'FLOOR', 3);
  const hold = h.state.holds.get(first.reply.hold_id)!;
  const map = h.state.events.get('evt-1')!.map;
  assert.equal(hold.seats.map((s) => map.id_of(s)), ['FLOOR-GA-1', 'FLOOR-GA-2', 'FLOOR-GA-3']);
  const event_out = first.decision.outbox[0]!;
  assert.is(event_out.type, 'HoldCreated');
  assert.equal((event_out.payload as { seat_ids: string[] }).seat_ids, ['FLOOR-GA-1', 'FLOOR-GA-2', 'FLOOR-GA-3']);
  const e = rejects(h, 'SeatsUnavailableError', () => h.ga('u2', 'FLOOR', 3));
  assert.match(e.message, /area FLOOR has 2 places left; 3 were requested/);
  const second = h.ga('u2', 'FLOOR', 2);
  assert.equal(h.availability('FLOOR').areas, [{ name: 'FLOOR', capacity: 5, free: 0, held: 5, sold: 0 }]);
  assert.equal(h.availability('FLOOR').sections, []);
  h.release(first.reply.hold_id, 'u1');
  h.confirm(second.reply.hold_id, 'ord-1');
  const all = h.availability();
  assert.equal(all.areas, [{ name: 'FLOOR', capacity: 5, free: 3, held: 0, sold: 2 }]);
  assert.equal([all.free, all.held, all.sold], [32, 0, 0], 'the totals count seats only');
  // Priced at the area's tier.
  assert.is(price(h.state.events.get('evt-1')!.spec, map, hold.seats, null).subtotal_micros, 60);
  // Expiry returns places too.
  h.ga('u3', 'FLOOR', 3, 30);
  h.advance(31_000);
  h.timers();
  assert.is(h.availability('FLOOR').areas[0]!.free, 3);
  h.check();
});

test('unknown areas are refused; a place id cannot be named by ReserveTickets or CreateDraft', () => {
  const h = sel();
  assert.match(rejects(h, 'InvalidArgumentError', () => h.ga('u1', 'PIT', 1)).message, /no standing area PIT/);
  assert.match(rejects(h, 'InvalidArgumentError', () => h.ga('u1', 'ORCH', 1)).message, /seated section/);
  rejects(h, 'InvalidArgumentError', () => h.ga('u1', '', 1));
  rejects(h, 'InvalidArgumentError', () => h.reserve('u1', ['FLOOR-GA-1']));
  rejects(h, 'InvalidArgumentError', () => h.reserve('u1', ['ORCH-A-1', 'FLOOR-GA-2']));
  const draft = { event_id: 'evt-1', seat_ids: ['FLOOR-GA-1'], user_id: 'u1', promo_code: '', idempotency_key: 'k1', trace_id: 't' };
  rejects(h, 'InvalidArgumentError', () => decide_create_draft(h.state, draft, h.ctx()));
  h.check();
});

test('a restart (snapshot, restore) keeps best-available and GA holds and rebuilds the index', () => {
  const h = sel();
  h.best('u1', 4);
  h.ga('u2', 'FLOOR', 2);
  const held = h.state.holds.size;
  h.state = restart(h.state);
  h.check();
  assert.is(h.state.holds.size, held);
  assert.equal(h.best('u3', 4).reply.seat_ids, ['ORCH-B-4', 'ORCH-B-5', 'ORCH-B-6', 'ORCH-B-7']);
  assert.match(rejects(h, 'SeatsUnavailableError', () => h.ga('u4', 'FLOOR', 4)).message, /3 places left/);
  h.ga('u4', 'FLOOR', 3);
  h.check();
});

test('rule (c) searches at most best_available_scattered_runs_max runs, then takes rank order', () => {
  // 19 rows of 999 seats, every third sold: 6,327 free runs of 2, more than the cap; three
  // seats cannot be taken from runs of 2 without stranding one. The last row has one free seat
  // only, which would complete a clean combination, but past the cap: the search gives up.
  const rows = Array.from({ length: 20 }, (_, r) => ({ name: `R${r}`, seats: 999, tier: 'A' }));
  const h = sel(sample_spec({ sections: [{ name: 'S', rows }], max_seats_per_user: 100 }));
  const e = h.state.events.get('evt-1')!;
  assert.ok(19 * 333 > L.best_available_scattered_runs_max);
  for (let i = 0; i < e.map.seat_count; i++) {
    const last_row = i >= 19 * 999;
    if (last_row ? i !== 19 * 999 : (i % 999) % 3 === 2) set_seat(e, i, SEAT_SOLD, 0);
  }
  const seats = choose_best(e, { quantity: 3, accessible: 0, row_ok: () => true });
  assert.equal(seats, [0, 1, 3], 'rank order: S-R0-1, 2, 4');
});

test.run();

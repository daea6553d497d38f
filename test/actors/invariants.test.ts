// The ticketing behaviour's check (check_invariants), which the runtime runs after every
// recovery: a consistent state passes, and each kind of damage a wrong replay could leave is
// refused with a message naming what broke.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { behaviour } from '../../src/actors/behaviour.js';
import { SEAT_FREE, SEAT_HELD, type PartitionState } from '../../src/actors/partition_state.js';
import { check_invariants } from '../../src/actors/invariants.js';
import { Harness } from './helpers.js';

/** A partition with one event, an active hold of 101-A-1 and 101-A-2, and 101-A-3 sold. */
function sample(): { h: Harness; hold_id: string } {
  const h = new Harness();
  h.create_event();
  const hold_id = h.reserve('u1', ['101-A-1', '101-A-2']).reply.hold_id;
  h.confirm(h.reserve('u2', ['101-A-3']).reply.hold_id, 'order-1');
  return { h, hold_id };
}

function seats(state: PartitionState) {
  const event = state.events.get('evt-1');
  assert.ok(event !== undefined, 'the sample event exists');
  return { event, seat: (id: string) => event.map.index_of(id) };
}

test('the ticketing behaviour checks its invariants after recovery; a consistent state passes', () => {
  assert.is(behaviour.check, check_invariants, 'wired into the runtime contract');
  const { h } = sample();
  behaviour.check!(h.state);
  behaviour.check!(behaviour.restore(0, behaviour.snapshot(h.state)));
});

test('a held seat that is free, or owned by another hold, is refused naming the seat', () => {
  const freed = sample();
  const a = seats(freed.h.state);
  a.event.seat_state[a.seat('101-A-2')] = SEAT_FREE;
  a.event.seat_owner[a.seat('101-A-2')] = -1;
  assert.throws(() => check_invariants(freed.h.state),
    (e: Error) => e.message === `seat 101-A-2 of active hold ${freed.hold_id} is held`);
  const moved = sample();
  const b = seats(moved.h.state);
  b.event.seat_owner[b.seat('101-A-1')] = 12345;
  assert.throws(() => check_invariants(moved.h.state),
    (e: Error) => e.message === `seat 101-A-1 is held by hold ${moved.hold_id}`);
});

test('a sold seat owned by another order, or a held seat of no hold, is refused', () => {
  const resold = sample();
  const a = seats(resold.h.state);
  a.event.seat_owner[a.seat('101-A-3')] = 999;
  assert.throws(() => check_invariants(resold.h.state),
    (e: Error) => e.message === 'seat 101-A-3 sold to order order-1');
  const orphan = sample();
  const b = seats(orphan.h.state);
  b.event.seat_state[b.seat('102-A-5')] = SEAT_HELD;
  b.event.seat_owner[b.seat('102-A-5')] = 7;
  assert.throws(() => check_invariants(orphan.h.state),
    (e: Error) => e.message === 'held seat 102-A-5 belongs to an active hold');
});

test('counts that drifted from the seats are refused', () => {
  const { h } = sample();
  seats(h.state).event.held += 1;
  assert.throws(() => check_invariants(h.state), /event evt-1 held count consistent/);
});

test.run();

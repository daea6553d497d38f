// Whole-state consistency check: O(seats + holds). Tests call it after every step; it is not
// on the request path. Throws AssertionError naming the first broken invariant.
import { assert } from '../runtime/assert.js';
import { SEAT_FREE, SEAT_HELD, SEAT_SOLD, type InventoryState } from './inventory.js';

export function check_invariants(state: InventoryState): void {
  let active = 0;
  for (const [event_id, event] of state.events) {
    const held_by = new Int32Array(event.map.seat_count).fill(-1);
    const users = new Map<string, { held: number; sold: number; active_holds: number }>();
    let held = 0;
    let sold = 0;
    for (const hold of state.holds.values()) {
      if (hold.event_id !== event_id) continue;
      const u = users.get(hold.user_id) ?? { held: 0, sold: 0, active_holds: 0 };
      users.set(hold.user_id, u);
      if (hold.status === 'active') {
        active++;
        u.active_holds++;
        u.held += hold.seats.length;
        held += hold.seats.length;
        for (const seat of hold.seats) {
          assert(event.seat_state[seat] === SEAT_HELD, `seat ${event.map.id_of(seat)} of active hold ${hold.hold_id} is held`);
          assert(event.seat_owner[seat] === hold.hold_no, `seat ${event.map.id_of(seat)} is held by hold ${hold.hold_id}`);
          assert(held_by[seat] === -1, `seat ${event.map.id_of(seat)} is in one active hold only`);
          held_by[seat] = hold.hold_no;
        }
      } else if (hold.status === 'confirmed') {
        u.sold += hold.seats.length;
        sold += hold.seats.length;
        const order_no = event.order_no_by_id.get(hold.order_id);
        assert(order_no !== undefined, `order ${hold.order_id} of hold ${hold.hold_id} is known`);
        for (const seat of hold.seats) {
          assert(event.seat_state[seat] === SEAT_SOLD && event.seat_owner[seat] === order_no, `seat ${event.map.id_of(seat)} sold to order ${hold.order_id}`);
        }
      }
    }
    let held_seats = 0;
    let sold_seats = 0;
    for (let i = 0; i < event.map.seat_count; i++) {
      const s = event.seat_state[i];
      assert(s === SEAT_FREE || s === SEAT_HELD || s === SEAT_SOLD, 'a seat is in exactly one known state');
      if (s === SEAT_FREE) assert(event.seat_owner[i] === -1, 'a free seat has no owner');
      if (s === SEAT_HELD) {
        held_seats++;
        assert(held_by[i] !== -1, `held seat ${event.map.id_of(i)} belongs to an active hold`);
      }
      if (s === SEAT_SOLD) sold_seats++;
    }
    assert(held_seats === held && held === event.held, `event ${event_id} held count consistent`);
    assert(sold_seats === sold && sold === event.sold, `event ${event_id} sold count consistent (a seat sold twice would break it)`);
    for (const [user_id, u] of users) {
      const c = event.users.get(user_id) ?? { held: 0, sold: 0, active_holds: 0 };
      assert(c.held === u.held && c.sold === u.sold && c.active_holds === u.active_holds, `user ${user_id} counts consistent`);
      assert(u.held + u.sold <= event.spec.max_seats_per_user, `user ${user_id} within max_seats_per_user`);
    }
  }
  assert(active === state.active_holds, 'active hold count consistent');
}

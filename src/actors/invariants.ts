// Whole-state consistency check: O(seats + holds). Tests call it after every step; it is not
// on the request path. Throws AssertionError naming the first broken invariant.
import { assert } from '../util/assert.js';
import { check_runs } from './free_runs.js';
import {
  SEAT_FREE, SEAT_HELD, SEAT_SOLD, type EventState, type PartitionState,
} from './partition_state.js';
import { is_open, is_sold, promo_key, type Order } from './purchase_state.js';
import { check_queue_invariants } from './queue_invariants.js';

/** A failed check. The per-seat checks call it only once they failed: naming a seat costs more
 *  than checking it, and the runtime runs this check on every recovery. */
function fail(message: string): never {
  assert(false, message);
}

/** Items grouped by key, in one pass. */
function group<T>(items: Iterable<T>, key_of: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = key_of(item);
    const members = groups.get(key);
    if (members === undefined) groups.set(key, [item]);
    else members.push(item);
  }
  return groups;
}

const none: ReadonlySet<number> = new Set();

/** The seats the order carried by confirmed hold `hold_id` returned to sale. */
function returned_seats(
  state: PartitionState, hold_id: string, order_id: string,
): ReadonlySet<number> {
  const order = state.purchase.orders.get(order_id);
  if (order === undefined || order.hold_id !== hold_id || order.returned.length === 0) return none;
  return new Set(order.returned);
}

export function check_invariants(state: PartitionState): void {
  let active = 0;
  // Grouped once: a scan of every hold per event made the check O(events × holds), which the
  // runtime pays on each recovery (measured in bench/check_probe.ts).
  // Slots, not hold views: the check reads the hold table's columns (a view per hold made the
  // recovery check of 1,000,000 holds allocate 1,000,000 objects; bench/restart_probe.ts).
  const t = state.holds;
  const holds_of_event = group(t.slots(), (slot) => t.event_id_of(slot));
  for (const [event_id, event] of state.events) {
    const held_by = new Int32Array(event.map.place_count).fill(-1);
    const users = new Map<string, { held: number; sold: number; active_holds: number }>();
    let held = 0;
    let sold = 0;
    for (const slot of holds_of_event.get(event_id) ?? []) {
      const user_id = t.user_id_of(slot);
      const status = t.status_of(slot);
      const hold_no = t.hold_no_of(slot);
      const seats = t.seats_of(slot);
      const hold_id = (): string => t.id_of(slot);
      const order_id = t.order_id_of(slot);
      const u = users.get(user_id) ?? { held: 0, sold: 0, active_holds: 0 };
      users.set(user_id, u);
      if (status === 'active') {
        active++;
        u.active_holds++;
        u.held += seats.length;
        held += seats.length;
        for (const seat of seats) {
          const id = (): string => event.map.id_of(seat);
          if (event.seat_state[seat] !== SEAT_HELD) fail(`seat ${id()} of active hold ${hold_id()} is held`);
          if (event.seat_owner[seat] !== hold_no) fail(`seat ${id()} is held by hold ${hold_id()}`);
          if (held_by[seat] !== -1) fail(`seat ${id()} is in one active hold only`);
          held_by[seat] = hold_no;
        }
      } else if (status === 'confirmed') {
        const order_no = event.order_no_by_id.get(order_id);
        assert(order_no !== undefined, `order ${order_id} of hold ${hold_id()} is known`);
        // Seats returned to sale (ReturnSeats) by the order this hold carries are sold no more.
        const returned = returned_seats(state, hold_id(), order_id);
        u.sold += seats.length - returned.size;
        sold += seats.length - returned.size;
        for (const seat of seats) {
          const sold_to_order = event.seat_state[seat] === SEAT_SOLD && event.seat_owner[seat] === order_no;
          if (returned.has(seat)) {
            if (sold_to_order) {
              fail(`returned seat ${event.map.id_of(seat)} is no longer sold to ${order_id}`);
            }
          } else if (!sold_to_order) {
            fail(`seat ${event.map.id_of(seat)} sold to order ${order_id}`);
          }
        }
      }
    }
    let held_seats = 0;
    let sold_seats = 0;
    // Seats and standing places alike (the arrays' length).
    for (let i = 0; i < event.map.place_count; i++) {
      const s = event.seat_state[i];
      assert(s === SEAT_FREE || s === SEAT_HELD || s === SEAT_SOLD, 'a seat is in exactly one known state');
      if (s === SEAT_FREE) assert(event.seat_owner[i] === -1, 'a free seat has no owner');
      if (s === SEAT_HELD) {
        held_seats++;
        if (held_by[i] === -1) fail(`held seat ${event.map.id_of(i)} belongs to an active hold`);
      }
      if (s === SEAT_SOLD) sold_seats++;
    }
    assert(held_seats === held && held === event.held, `event ${event_id} held count consistent`);
    assert(sold_seats === sold && sold === event.sold, `event ${event_id} sold count consistent (a seat sold twice would break it)`);
    check_runs(event);
    for (const [user_id, u] of users) {
      const c = event.users.get(user_id) ?? { held: 0, sold: 0, active_holds: 0 };
      assert(c.held === u.held && c.sold === u.sold && c.active_holds === u.active_holds, `user ${user_id} counts consistent`);
      assert(u.held + u.sold <= event.spec.max_seats_per_user, `user ${user_id} within max_seats_per_user`);
    }
  }
  assert(active === state.active_holds, 'active hold count consistent');
  check_purchase_invariants(state);
  check_queue_invariants(state);
}

/** A sold order: its seats sold to it until returned, its payment captured (or capturing), and
 *  its status what its returns, else its refunds, say. */
function check_sold_order(state: PartitionState, event: EventState, order: Order): void {
  const order_no = event.order_no_by_id.get(order.order_id);
  assert(order_no !== undefined, `sold order ${order.order_id} is known to its event`);
  const returned = new Set(order.returned);
  assert(returned.size === order.returned.length
    && order.returned.every((s) => order.seats.includes(s)),
  `order ${order.order_id} returned each of its seats at most once`);
  for (const seat of order.seats) {
    const sold_to_it = event.seat_state[seat] === SEAT_SOLD
      && event.seat_owner[seat] === order_no;
    assert(sold_to_it !== returned.has(seat), `every seat of confirmed order ${order.order_id} `
      + 'is sold to it until returned, and no longer after');
  }
  const payment = state.purchase.payments.get(order.payment_id);
  assert(payment !== undefined && payment.order_id === order.order_id, `confirmed order ${order.order_id} has its payment`);
  assert(['CAPTURING', 'CAPTURED', 'PARTIALLY_REFUNDED', 'REFUNDED'].includes(payment.status), `confirmed order ${order.order_id}'s payment is captured or capturing`);
  assert(payment.amount_micros === order.total_micros, 'the captured amount is the order total');
  const refunds = payment.status === 'REFUNDED' ? 'REFUNDED'
    : payment.status === 'PARTIALLY_REFUNDED' ? 'PARTIALLY_REFUNDED' : 'CONFIRMED';
  const all = order.returned.length === order.seats.length;
  const returns = all ? 'RETURNED' : 'PARTIALLY_RETURNED';
  const expected = order.returned.length > 0 ? returns : refunds;
  assert(order.status === expected, `order ${order.order_id} status ${order.status} follows its payment ${payment.status}`);
}

/** Orders, payments and promo uses agree with each other and with the seats. */
export function check_purchase_invariants(state: PartitionState): void {
  const p = state.purchase;
  const uses = new Map<string, number>();
  for (const order of p.orders.values()) {
    const event = state.events.get(order.event_id);
    assert(event !== undefined, `order ${order.order_id} has its event`);
    if (order.promo_counted) uses.set(promo_key(order.event_id, order.promo_code), (uses.get(promo_key(order.event_id, order.promo_code)) ?? 0) + 1);
    assert(order.promo_counted === (order.promo_code !== '' && (order.status === 'DRAFT' || is_sold(order))), `order ${order.order_id} counts its promo use exactly while a draft or sold`);
    assert(order.total_micros <= order.subtotal_micros, 'a promo never raises the price');
    if (order.status === 'DRAFT') {
      const hold = state.holds.get(order.hold_id);
      assert(hold !== undefined && hold.status === 'active', `draft ${order.order_id} has an active hold`);
      assert(order.hold_expires_at_ms === hold.expires_at_ms,
        `draft ${order.order_id} expires with its hold`);
    }
    if (!is_sold(order)) {
      assert(order.returned.length === 0, `only a sold order returns seats (${order.order_id})`);
    }
    const paid = order.payment_ids.map((id) => p.payments.get(id)!);
    const live_auths = paid.filter((x) => x.status === 'PENDING' || x.status === 'AUTHORIZED' || x.status === 'CAPTURING');
    assert(live_auths.length <= 1, `order ${order.order_id} has at most one live authorization`);
    if (is_sold(order)) check_sold_order(state, event, order);
  }
  for (const [key, n] of uses) {
    assert(p.promo_uses.get(key) === n, `promo ${key} uses counted consistently`);
    const [event_id, code] = key.split('\u0000');
    const promo = state.events.get(event_id!)!.spec.promo_codes.find((x) => x.code === code)!;
    assert(promo.max_uses === 0 || n <= promo.max_uses, `promo ${code} within its cap`);
  }
  for (const [key, n] of p.promo_uses) assert(n === (uses.get(key) ?? 0), `promo ${key} has no phantom uses`);
  for (const payment of p.payments.values()) {
    const order = p.orders.get(payment.order_id);
    assert(order !== undefined, `payment ${payment.payment_id} has its order`);
    assert(payment.refunded_micros + payment.refund_pending_micros <= payment.captured_micros, `payment ${payment.payment_id} never refunds more than captured`);
    assert(payment.captured_micros === 0 || payment.captured_micros === payment.amount_micros, 'capture is whole');
    if (payment.captured_micros > 0) assert(is_sold(order) && order.payment_id === payment.payment_id, `money captured only for a confirmed order (${payment.payment_id})`);
    const refunded = payment.refunds.filter((r) => r.status === 'SUCCEEDED').reduce((a, r) => a + r.amount_micros, 0);
    const pending = payment.refunds.filter((r) => r.status === 'PENDING').reduce((a, r) => a + r.amount_micros, 0);
    assert(refunded === payment.refunded_micros && pending === payment.refund_pending_micros, `payment ${payment.payment_id} refund sums consistent`);
    assert(is_open(payment) === p.open_payments.has(payment.payment_id), `payment ${payment.payment_id} open index consistent`);
  }
  assert(p.open_payments.size <= p.payments.size, 'open payments are payments');
  let previous = 0;
  for (const entry of p.ended_orders) {
    assert(entry.forget_at_ms >= previous, 'ended orders are forgotten in the order they ended');
    previous = entry.forget_at_ms;
    const order = p.orders.get(entry.order_id);
    assert(order !== undefined && order.status !== 'DRAFT', `queued ended order ${entry.order_id} exists and is not a draft`);
  }
  let listed = 0;
  for (const ids of p.orders_by_user.values()) listed += ids.length;
  assert(listed === p.orders.size, 'every order is listed for its user exactly once');
}

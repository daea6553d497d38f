// Snapshot = the journaled facts only (event specs, seat arrays, holds, tombstones). Everything
// derivable (seat maps, user counts, expiry heap, order numbers) is rebuilt on restore, so the
// snapshot cannot disagree with itself.
//
// Version 3 writes the holds as columns (hold_table.ts HoldColumns: typed arrays, decoded and
// copied in bulk) instead of an object per hold; version 2 snapshots (holds as objects) still
// restore.
import { assert } from '../util/assert.js';
import type { EventSpec } from './event_spec.js';
import {
  create_state, SEAT_HELD, SEAT_SOLD, type EventState, type Hold, type PartitionState,
} from './partition_state.js';
import { SeatMap } from './seat_map.js';
import { status_of_code, type HoldColumns } from './hold_table.js';
import { UserCounts } from './user_counts.js';
import { derive_indices } from './seat_change.js';
import { create_runs } from './free_runs.js';
import { index_order, is_open, promo_key, type IdempotencyEntry, type Order, type Payment } from './purchase_state.js';
import { restore_queue, snapshot_queue, type QueueSnapshot } from './queue_records.js';
import { queue_pace_pct_full } from './queue_state.js';

interface EventSnapshot {
  spec: EventSpec;
  seat_state: Uint8Array;
  seat_owner: Int32Array;
  orders: string[];
  next_hold_no: number;
}

/** Fields added after version 2 was written: absent in older snapshots, restored as their
 *  zero value (no extensions, no seats returned). */
type Added<T, K extends keyof T> = Omit<T, K> & Partial<Pick<T, K>>;

export interface InventorySnapshot {
  /** 2: `holds` as objects; 3: `hold_columns`. */
  version: 2 | 3;
  events: EventSnapshot[];
  /** Version 2 only. */
  holds?: Added<Hold, 'extensions'>[];
  /** Version 3 only. */
  hold_columns?: HoldColumns;
  tombstones: { hold_id: string; forget_at_ms: number }[];
  orders: Added<Order, 'returned'>[];
  payments: Payment[];
  /** In the order they will be forgotten. */
  idempotency: [string, IdempotencyEntry][];
  ended_orders: { order_id: string; forget_at_ms: number }[];
  /** The waiting rooms, in queue_no order (absent before issue 16: none). */
  queues?: QueueSnapshot[];
  /** The partition's admission pace (pace_queues; absent before it: 100). */
  queue_pace_pct?: number;
}

export function snapshot(state: PartitionState): InventorySnapshot {
  const events: EventSnapshot[] = [];
  for (const e of state.events.values()) {
    events.push({ spec: e.spec, seat_state: e.seat_state, seat_owner: e.seat_owner, orders: e.orders, next_hold_no: e.next_hold_no });
  }
  const p = state.purchase;
  return {
    version: 3, events, hold_columns: state.holds.columns(), tombstones: state.tombstones,
    orders: [...p.orders.values()], payments: [...p.payments.values()],
    idempotency: p.idempotency_queue.map((key) => [key, p.idempotency.get(key)!]),
    ended_orders: p.ended_orders, queues: state.queues.by_no.map(snapshot_queue),
    queue_pace_pct: state.queues.pace_pct,
  };
}

export function restore(partition: number, raw: unknown): PartitionState {
  const snap = raw as InventorySnapshot;
  assert(snap.version === 2 || snap.version === 3, 'snapshot version known');
  const state = create_state(partition);
  for (const e of snap.events) {
    const map = new SeatMap(e.spec);
    assert(e.seat_state.length === map.place_count && e.seat_owner.length === map.place_count,
      'seat arrays fit the map (seats and standing places)');
    const event: EventState = {
      spec: e.spec, map,
      // Copy out of the decoded buffer so the arrays own aligned memory.
      seat_state: new Uint8Array(e.seat_state), seat_owner: new Int32Array(e.seat_owner),
      orders: e.orders, order_no_by_id: new Map(e.orders.map((id, i) => [id, i])),
      next_hold_no: e.next_hold_no, users: new UserCounts(), held: 0, sold: 0, runs: create_runs(e.spec, map),
    };
    for (let i = 0; i < map.place_count; i++) {
      if (event.seat_state[i] === SEAT_HELD) event.held++;
      else if (event.seat_state[i] === SEAT_SOLD) event.sold++;
    }
    derive_indices(event);
    state.events.set(e.spec.event_id, event);
  }
  const orders = snap.orders.map((o): Order => ({ ...o, returned: o.returned ?? [] }));
  // The seats an order returned are no longer sold to the user (its current hold lists them).
  const returned_of_hold = new Map(orders.map((o) => [o.hold_id, o.returned.length]));
  if (snap.version === 2) restore_holds_v2(state, snap.holds ?? [], returned_of_hold);
  else restore_holds(state, snap.hold_columns!, returned_of_hold);
  state.tombstones = snap.tombstones;
  // Purchases: the orders and payments themselves; every index is rebuilt from them.
  const p = state.purchase;
  for (const order of orders) {
    index_order(p, order);
    if (order.promo_counted) {
      const key = promo_key(order.event_id, order.promo_code);
      p.promo_uses.set(key, (p.promo_uses.get(key) ?? 0) + 1);
    }
  }
  for (const payment of snap.payments) {
    p.payments.set(payment.payment_id, payment);
    if (is_open(payment)) p.open_payments.add(payment.payment_id);
    for (const refund of payment.refunds) p.payment_by_refund.set(refund.refund_id, payment.payment_id);
  }
  for (const [key, entry] of snap.idempotency) {
    p.idempotency.set(key, entry);
    p.idempotency_queue.push(key);
  }
  p.ended_orders = snap.ended_orders;
  for (const saved of snap.queues ?? []) {
    const queue = restore_queue(saved);
    assert(queue.queue_no === state.queues.by_no.length && state.events.has(queue.event_id),
      'queues restored in number order, each of an event');
    state.queues.by_no.push(queue);
    state.queues.by_event.set(queue.event_id, queue);
  }
  state.queues.pace_pct = snap.queue_pace_pct ?? queue_pace_pct_full;
  assert(p.orders.size === snap.orders.length && p.payments.size === snap.payments.length, 'every order and payment restored once');
  return state;
}

/** Version 3: the columns in bulk, then the user counts and the expiry heap from them. */
function restore_holds(
  state: PartitionState, c: HoldColumns, returned_of_hold: Map<string, number>,
): void {
  state.holds.restore(c);
  const events = c.event_ids.map((event_id) => {
    const event = state.events.get(event_id);
    assert(event !== undefined, 'snapshot hold has its event');
    return event;
  });
  const active = new Int32Array(c.count);
  let n = 0;
  let seat_at = 0;
  for (let i = 0; i < c.count; i++) {
    const event = events[c.event_no[i]!]!;
    const user_id = c.user_ids[c.user_no[i]!]!;
    const seats = c.seat_n[i]!;
    const status = status_of_code(c.status[i]!);
    if (status === 'active') {
      event.users.add(user_id, seats, 0, 1);
      active[n++] = i;
    } else if (status === 'confirmed') {
      const returned = returned_of_hold.get(state.holds.id_of(i)) ?? 0;
      event.users.add(user_id, 0, seats - returned, 0);
    } else {
      event.users.add(user_id, 0, 0, 0);
    }
    seat_at += seats;
  }
  assert(seat_at === c.seats.length, 'the seats of every hold counted');
  state.active_holds = n;
  const slots = active.subarray(0, n);
  state.expiry.build(Float64Array.from(slots, (i) => c.expires_at_ms[i]!), slots);
}

/** Version 2: an object per hold. */
function restore_holds_v2(
  state: PartitionState, holds: Added<Hold, 'extensions'>[], returned_of_hold: Map<string, number>,
): void {
  for (const saved of holds) {
    const hold: Hold = { ...saved, extensions: saved.extensions ?? 0 };
    const event = state.events.get(hold.event_id);
    assert(event !== undefined, 'snapshot hold has its event');
    const slot = state.holds.insert(hold);
    if (hold.status === 'active') {
      event.users.add(hold.user_id, hold.seats.length, 0, 1);
      state.active_holds += 1;
      state.expiry.push(hold.expires_at_ms, slot);
    } else if (hold.status === 'confirmed') {
      event.users.add(hold.user_id, 0, hold.seats.length - (returned_of_hold.get(hold.hold_id) ?? 0), 0);
    } else {
      event.users.add(hold.user_id, 0, 0, 0);
    }
  }
}

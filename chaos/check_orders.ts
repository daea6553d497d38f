// Holds, orders and money as read back: every acknowledged hold where the history says; every
// acknowledged draft there as drafted, in a status the history allows; each idempotency key
// applied at most once; no order nobody asked for; per order, captured − refunded agrees with
// its status, nothing captured for an unconfirmed order, no refund beyond the capture, and the
// refunded total within what the refunds acknowledged (and those whose outcome is unknown).
import type { Call } from './history.js';
import { micros, str, type FinalState, type HoldProbe, type OrderRead } from './checker_state.js';
import {
  draft_expiry_node_ms,
  hold_expiry_node_ms,
  ok,
  seat_key,
  unknown,
  type HoldIx,
  type Index,
  type NodeClock,
  type PurchaseIx,
  type Violation,
  refunded_statuses,
  sold_statuses,
} from './checker_index.js';

const released = (c: Call): boolean => ok(c) && c.reply?.['released'] === true;
const sold_by = (c: Call): boolean => ok(c) && c.reply?.['confirmed'] === true;

function allowed_probes(h: HoldIx, clock: NodeClock): Set<HoldProbe> {
  if (h.sales.some(sold_by)) return new Set(['confirmed']);
  if (h.releases.some(released)) return new Set(['not_live']);
  const allowed = new Set<HoldProbe>(['released']);
  if (clock.max_node_ms() >= hold_expiry_node_ms(h) || h.releases.some(unknown))
    allowed.add('not_live');
  if (h.sales.some(unknown)) allowed.add('confirmed');
  return allowed;
}

export function check_holds(
  ix: Index,
  final: FinalState,
  clock: NodeClock,
  out: Violation[],
): void {
  for (const h of ix.holds.values()) {
    const probe = final.holds[h.id];
    const calls = [h.reserve.id, ...h.releases.map((c) => c.id), ...h.sales.map((c) => c.id)];
    const allowed = allowed_probes(h, clock);
    const either = probe === 'ambiguous' && (allowed.has('released') || allowed.has('not_live'));
    if (probe === undefined || (!allowed.has(probe) && !either)) {
      const found =
        probe === undefined ? 'not read back' : probe === 'not_found' ? 'lost (NOT_FOUND)' : probe;
      out.push({
        check: probe === 'not_found' ? 'lost_hold' : 'hold_state',
        message: `acknowledged hold ${h.id}: ${found}, expected ${[...allowed].join(' or ')}`,
        calls,
      });
    }
    if (h.releases.some(released) && h.sales.some(sold_by)) {
      out.push({
        check: 'hold_state',
        message: `hold ${h.id}: both a release and a sale acknowledged`,
        calls,
      });
    }
  }
}

function allowed_statuses(p: PurchaseIx, clock: NodeClock): Set<string> {
  const confirmed = (c: Call): boolean => ok(c) && sold_statuses.has(str(c.reply, 'status'));
  if (p.confirms.some(confirmed)) return new Set(sold_statuses);
  const allowed = new Set(['DRAFT']);
  if (p.confirms.some(unknown)) for (const s of sold_statuses) allowed.add(s);
  if (clock.max_node_ms() >= draft_expiry_node_ms(p)) allowed.add('EXPIRED');
  return allowed;
}

const same_seats = (a: string[], b: string[]): boolean =>
  [...a].sort().join() === [...b].sort().join();

/** Orders ListOrders names that no acknowledged draft made: each must be an unknown draft's,
 *  one per idempotency key at most. */
function check_unasked(ix: Index, final: FinalState, out: Violation[]): void {
  const candidates = new Map<string, PurchaseIx[]>();
  for (const p of ix.purchases.values()) {
    if (p.order_ids.size > 0 || !p.drafts.some(unknown)) continue;
    const k = `${p.user}|${seat_key(p.event_id, p.seats)}`;
    candidates.set(k, [...(candidates.get(k) ?? []), p]);
  }
  for (const [user, ids] of Object.entries(final.user_orders)) {
    for (const id of ids) {
      if (ix.purchase_of_order.has(id)) continue;
      const read = final.orders[id];
      const k =
        read === undefined || read === 'not_found'
          ? ''
          : `${user}|${seat_key(read.event_id, read.seat_ids)}`;
      const list = candidates.get(k) ?? [];
      if (list.length > 0) {
        list.shift(); // this unknown draft happened; it may explain one order only
        continue;
      }
      out.push({
        check: 'change_not_made',
        message:
          `order ${id} of ${user} was never acknowledged, and no unknown draft is left ` +
          `to explain it (a refused call applied, or one applied twice)`,
        calls: [],
      });
    }
  }
}

export function check_orders(
  ix: Index,
  final: FinalState,
  clock: NodeClock,
  out: Violation[],
): void {
  for (const p of ix.purchases.values()) {
    const calls = [...p.drafts, ...p.authorizes, ...p.confirms, ...p.refunds].map((c) => c.id);
    if (p.order_ids.size > 1) {
      out.push({
        check: 'applied_twice',
        message: `idempotency key ${p.key} made orders ${[...p.order_ids].join(', ')}`,
        calls,
      });
    }
    for (const id of p.order_ids) {
      const read = final.orders[id];
      if (read === undefined || read === 'not_found') {
        out.push({
          check: 'lost_order',
          message: `acknowledged order ${id}: ${read === undefined ? 'not read back' : 'lost (NOT_FOUND)'}`,
          calls,
        });
        continue;
      }
      if (
        read.user_id !== p.user ||
        read.event_id !== p.event_id ||
        !same_seats(read.seat_ids, p.seats)
      ) {
        out.push({
          check: 'order_content',
          message: `order ${id} reads back as ${read.user_id} ${read.event_id} [${read.seat_ids}], drafted as ${p.user} ${p.event_id} [${p.seats}]`,
          calls,
        });
      }
      const statuses = allowed_statuses(p, clock);
      if (!statuses.has(read.status)) {
        out.push({
          check: 'order_state',
          message: `acknowledged order ${id}: ${read.status}, expected ${[...statuses].join(' or ')}`,
          calls,
        });
      }
      check_payments(p, read, calls, out);
      check_money(p, read, calls, out);
    }
  }
  check_unasked(ix, final, out);
  for (const read of Object.values(final.orders)) {
    if (read !== 'not_found') check_money_read(read, [], out);
  }
}

const refusing_tokens = new Set(['tok_chargeDeclined', 'tok_insufficientFunds']);

function check_payments(p: PurchaseIx, read: OrderRead, calls: number[], out: Violation[]): void {
  const by_key = new Map<string, Set<string>>();
  for (const c of p.authorizes.filter(ok)) {
    const ids = by_key.get(c.key) ?? new Set<string>();
    ids.add(str(c.reply, 'payment_id'));
    by_key.set(c.key, ids);
    const token = str(c.request, 'payment_token');
    if (refusing_tokens.has(token) && str(c.reply, 'status') === 'AUTHORIZED') {
      out.push({
        check: 'payment',
        message: `order ${read.order_id}: ${token} was AUTHORIZED`,
        calls: [c.id],
      });
    }
  }
  for (const [key, ids] of by_key) {
    if (key !== '' && ids.size > 1) {
      out.push({
        check: 'applied_twice',
        message: `authorize key ${key} made payments ${[...ids].join(', ')}`,
        calls,
      });
    }
  }
  for (const c of p.confirms.filter((x) => ok(x) && sold_statuses.has(str(x.reply, 'status')))) {
    if (read.payment_id !== str(c.request, 'payment_id')) {
      out.push({
        check: 'payment',
        message: `order ${read.order_id} confirmed with payment ${str(c.request, 'payment_id')}, reads back ${read.payment_id}`,
        calls: [c.id],
      });
    }
  }
}

/** Refunds acknowledged (SUCCEEDED, by refund id) and possible (unknown, or still pending). */
function refund_bounds(
  p: PurchaseIx,
  payment_id: string,
): { certain: number; possible: number; calls: number[] } {
  const done = new Map<string, number>();
  const open = new Map<string, number>();
  for (const c of p.refunds.filter((x) => str(x.request, 'payment_id') === payment_id)) {
    const amount = micros(c.request, 'amount');
    if (ok(c) && refunded_statuses.has(str(c.reply, 'status')))
      done.set(str(c.reply, 'refund_id'), amount);
    else if (unknown(c) || ok(c)) open.set(c.key === '' ? `#${c.id}` : c.key, amount);
  }
  for (const c of p.refunds.filter((x) => ok(x) && refunded_statuses.has(str(x.reply, 'status'))))
    open.delete(c.key);
  const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
  return { certain: sum(done), possible: sum(done) + sum(open), calls: p.refunds.map((c) => c.id) };
}

function check_money(p: PurchaseIx, read: OrderRead, calls: number[], out: Violation[]): void {
  if (read.payment_id === '') return;
  const b = refund_bounds(p, read.payment_id);
  if (read.refunded_micros < b.certain || read.refunded_micros > b.possible) {
    out.push({
      check: 'money',
      message:
        `order ${read.order_id}: refunded ${read.refunded_micros}, the refunds acknowledged ` +
        `${b.certain} (at most ${b.possible} with unknown outcomes)`,
      calls: [...calls, ...b.calls],
    });
  }
}

/** Money that must hold for every order read back, whoever made it. */
export function check_money_read(read: OrderRead, calls: number[], out: Violation[]): void {
  const {
    captured_micros: cap,
    refunded_micros: ref,
    total_micros: total,
    payment_status: ps,
  } = read;
  const say = (message: string): void => {
    out.push({
      check: 'money',
      message: `order ${read.order_id} (${read.status}, payment ${read.payment_id} ${ps}): ${message}`,
      calls,
    });
  };
  if (ref > cap) say(`refunded ${ref} beyond the capture ${cap}`);
  if (!sold_statuses.has(read.status)) {
    if (cap !== 0 || ref !== 0)
      say(`captured ${cap}, refunded ${ref} for an order that was not confirmed`);
    return;
  }
  const expected: Record<string, boolean> = {
    CAPTURING: cap === 0 && ref === 0,
    CAPTURED: cap === total && ref === 0,
    PARTIALLY_REFUNDED: cap === total && ref > 0 && ref < cap,
    REFUNDED: cap === total && ref === cap,
  };
  if (expected[ps] !== true)
    say(`captured ${cap} − refunded ${ref} of total ${total} does not agree with ${ps}`);
}

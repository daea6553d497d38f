// Seats: from the history, no seat in two holds that were certainly live at one moment and none
// sold twice; from the final state, no seat sold or held twice, none of them free, the sold
// count equal to the sales read back (nothing sold to an order that was not confirmed), and at
// least as many held as the live holds and drafts read back.
import type { Call } from './history.js';
import type { FinalState, OrderRead } from './checker_state.js';
import { str } from './checker_state.js';
import {
  draft_expiry_node_ms,
  first_ok,
  hold_expiry_node_ms,
  ok,
  unknown,
  type HoldIx,
  type Index,
  type NodeClock,
  type PurchaseIx,
  type Violation,
  sold_statuses,
} from './checker_index.js';

interface Window {
  from_ms: number;
  until_ms: number;
  sold: boolean;
}
interface Occupant {
  who: string;
  event_id: string;
  seats: string[];
  windows: Window[];
  calls: number[];
}

const released = (c: Call): boolean => ok(c) && c.reply?.['released'] === true;
const sold_by = (c: Call): boolean => ok(c) && c.reply?.['confirmed'] === true;
const order_confirmed = (c: Call): boolean => ok(c) && sold_statuses.has(str(c.reply, 'status'));

function hold_occupant(h: HoldIx, clock: NodeClock): Occupant {
  const sold = h.sales.some(sold_by);
  const from_ms = h.reserve.end_ms;
  const enders = h.releases.filter((c) => released(c) || unknown(c)).map((c) => c.start_ms);
  let until_ms = Math.min(Infinity, ...enders);
  if (!sold) until_ms = Math.min(until_ms, clock.earliest_reach(from_ms, hold_expiry_node_ms(h)));
  const r = h.reserve.request;
  return {
    who: `hold ${h.id}`,
    event_id: str(r, 'event_id'),
    seats: (r['seat_ids'] ?? []) as string[],
    windows: [{ from_ms, until_ms, sold }],
    calls: [h.reserve.id, ...h.sales.filter(sold_by).map((c) => c.id)],
  };
}

function order_occupant(p: PurchaseIx, clock: NodeClock): Occupant | undefined {
  const first = first_ok(p.drafts);
  if (first === undefined) return undefined;
  const windows: Window[] = [
    {
      from_ms: first.end_ms,
      until_ms: clock.earliest_reach(first.end_ms, draft_expiry_node_ms(p)),
      sold: false,
    },
  ];
  const confirm = first_ok(p.confirms.filter(order_confirmed));
  if (confirm !== undefined)
    windows.push({ from_ms: confirm.end_ms, until_ms: Infinity, sold: true });
  return {
    who: `order ${str(first.reply, 'id')}`,
    event_id: p.event_id,
    seats: p.seats,
    windows,
    calls: [first.id, ...(confirm === undefined ? [] : [confirm.id])],
  };
}

function overlap(a: Occupant, b: Occupant): boolean {
  return a.windows.some((x) =>
    b.windows.some((y) => x.from_ms < y.until_ms && y.from_ms < x.until_ms),
  );
}

export function check_occupancy(ix: Index, clock: NodeClock, out: Violation[]): void {
  const occupants: Occupant[] = [...ix.holds.values()].map((h) => hold_occupant(h, clock));
  for (const p of ix.purchases.values()) {
    const o = order_occupant(p, clock);
    if (o !== undefined) occupants.push(o);
  }
  const per_seat = new Map<string, Occupant[]>();
  for (const o of occupants) {
    for (const seat of o.seats) {
      const key = `${o.event_id}/${seat}`;
      per_seat.set(key, [...(per_seat.get(key) ?? []), o]);
    }
  }
  for (const [seat, list] of per_seat) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const a = list[i]!;
        const b = list[j]!;
        if (!overlap(a, b)) continue;
        const twice = a.windows.some((w) => w.sold) && b.windows.some((w) => w.sold);
        out.push({
          check: twice ? 'sold_twice' : 'two_live_holds',
          message:
            `seat ${seat} ${twice ? 'sold twice' : 'in two live holds at once'}: ` +
            `${a.who} and ${b.who}`,
          calls: [...a.calls, ...b.calls],
        });
      }
    }
  }
}

interface Taker {
  who: string;
  event_id: string;
  seats: string[];
  sold: boolean;
}

function takers_at_read(ix: Index, final: FinalState): Taker[] {
  const out: Taker[] = [];
  for (const h of ix.holds.values()) {
    const probe = final.holds[h.id];
    if (probe !== 'released' && probe !== 'confirmed') continue;
    const r = h.reserve.request;
    out.push({
      who: `hold ${h.id}`,
      event_id: str(r, 'event_id'),
      seats: (r['seat_ids'] ?? []) as string[],
      sold: probe === 'confirmed',
    });
  }
  for (const read of Object.values(final.orders)) {
    if (read === 'not_found' || (read.status !== 'DRAFT' && !sold_statuses.has(read.status)))
      continue;
    const o: OrderRead = read;
    out.push({
      who: `order ${o.order_id}`,
      event_id: o.event_id,
      seats: o.seat_ids,
      sold: sold_statuses.has(o.status),
    });
  }
  return out;
}

export function check_final_seats(ix: Index, final: FinalState, out: Violation[]): void {
  const takers = takers_at_read(ix, final);
  for (const [event_id, read] of Object.entries(final.events)) {
    const free = new Set(read.free_seat_ids);
    const owner = new Map<string, Taker>();
    let sold = 0;
    let held = 0;
    for (const t of takers.filter((x) => x.event_id === event_id)) {
      for (const seat of t.seats) {
        const other = owner.get(seat);
        if (other !== undefined) {
          const twice = other.sold && t.sold;
          out.push({
            check: twice ? 'sold_twice' : 'two_live_holds',
            message:
              `final state: seat ${event_id}/${seat} ${twice ? 'sold twice' : 'taken twice'}: ` +
              `${other.who} and ${t.who}`,
            calls: [],
          });
        }
        owner.set(seat, t);
        if (free.has(seat)) {
          out.push({
            check: 'taken_seat_free',
            message: `final state: seat ${event_id}/${seat} of ${t.who} is free`,
            calls: [],
          });
        }
      }
      if (t.sold) sold += t.seats.length;
      else held += t.seats.length;
    }
    if (read.sold !== sold) {
      out.push({
        check: 'sold_count',
        message:
          `final state: ${event_id} has ${read.sold} seats sold; the confirmed orders and ` +
          `sold holds read back have ${sold} (a sale to an unconfirmed order, or a lost sale)`,
        calls: [],
      });
    }
    if (read.held < held) {
      out.push({
        check: 'held_count',
        message:
          `final state: ${event_id} has ${read.held} seats held; the live holds and drafts ` +
          `read back have ${held}`,
        calls: [],
      });
    }
  }
}

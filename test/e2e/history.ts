// A client's history of answers, and the checker that judges it (issue 12's "checked from the
// client's history of answers and from the final state").
//
// Every call the load makes is recorded: which node it went to, the rpc, the request, when it
// started and ended (one clock: this process's Date.now()), and its outcome: ok with the reply,
// or an error code. An error is a refusal (nothing happened), except UNAVAILABLE and
// DEADLINE_EXCEEDED: those are unknown outcomes (the change may or may not have happened) and
// the checker accepts both possibilities, and nothing else.
//
// The checker reads two things: the history, and the final state read back through the API
// once the load stopped (availability of every event, GetOrder of every known order, and a
// ReleaseHold probe of every acknowledged hold: released=true proves the hold was live,
// released=false that it had ended, FAILED_PRECONDITION that it was sold, NOT_FOUND that it is
// lost). It returns violations as sentences; none means the history is consistent.
import { status } from '@grpc/grpc-js';

/** Outcomes that say nothing about whether the change happened. */
export const unknown_codes: ReadonlySet<number> = new Set([
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
]);
/** A draft's hold: CreateDraft reserves with the default TTL (src/actors/limits.ts). */
export const draft_hold_ttl_ms = 600_000;
/** expires_at_unix is whole seconds: a hold may lapse up to a second before it says. */
const expiry_margin_ms = 1_000;

export interface ReserveRequest {
  event_id: string;
  seat_ids: string[];
  user_id: string;
  hold_ttl_seconds: number;
}
export interface DraftRequest {
  event_id: string;
  seat_ids: string[];
  user_id: string;
  idempotency_key: string;
}
export interface AuthorizeRequest {
  order_id: string;
  amount_micros: string;
  idempotency_key: string;
}
export interface OrderReply {
  id: string;
  status: string;
  created_at_unix: number;
  total_micros: string;
}

export interface Rpcs {
  reserve: { request: ReserveRequest; reply: { hold_id: string; expires_at_unix: number } };
  release: { request: { hold_id: string }; reply: { released: boolean } };
  confirm: { request: { order_id: string; hold_id: string }; reply: { confirmed: boolean } };
  create_draft: { request: DraftRequest; reply: OrderReply };
  authorize: { request: AuthorizeRequest; reply: { payment_id: string; status: string } };
  confirm_order: { request: { order_id: string; payment_id: string }; reply: OrderReply };
}
export type Rpc = keyof Rpcs;
export type Outcome<T> = { ok: true; reply: T } | { ok: false; code: number; details: string };
export interface CallOf<R extends Rpc> {
  id: number;
  /** Index of the node the call went to. */
  node: number;
  rpc: R;
  request: Rpcs[R]['request'];
  start_ms: number;
  end_ms: number;
  outcome: Outcome<Rpcs[R]['reply']>;
}
export type Call = { [R in Rpc]: CallOf<R> }[Rpc];

export function is_unknown(outcome: Outcome<unknown>): boolean {
  return !outcome.ok && unknown_codes.has(outcome.code);
}

/** The recorder: every call of the load goes through record(). */
export class History {
  readonly calls: Call[] = [];

  /** Runs `run`, records its outcome (a thrown error's gRPC code; anything else is rethrown). */
  async record<R extends Rpc>(
    node: number,
    rpc: R,
    request: Rpcs[R]['request'],
    run: () => Promise<Rpcs[R]['reply']>,
  ): Promise<Outcome<Rpcs[R]['reply']>> {
    const start_ms = Date.now();
    let outcome: Outcome<Rpcs[R]['reply']>;
    try {
      outcome = { ok: true, reply: await run() };
    } catch (error) {
      const e = error as { code?: unknown; details?: unknown };
      if (typeof e.code !== 'number') throw error; // not a gRPC status: a bug of the test
      outcome = { ok: false, code: e.code, details: String(e.details ?? '') };
    }
    const call = {
      id: this.calls.length,
      node,
      rpc,
      request,
      start_ms,
      end_ms: Date.now(),
      outcome,
    };
    // The union cannot be narrowed through the generic R; the fields were built from R's types.
    this.calls.push(call as unknown as Call);
    return outcome;
  }

  of<R extends Rpc>(rpc: R): CallOf<R>[] {
    return this.calls.filter((c): c is CallOf<R> & Call => c.rpc === rpc);
  }
}

/** What a ReleaseHold probe of an acknowledged hold answered at the end. 'ambiguous': an
 *  attempt of the probe had an unknown outcome and a retry found the hold not live (the first
 *  attempt may have released it): accepted where 'released' or 'not_live' would be. */
export type HoldProbe = 'released' | 'not_live' | 'confirmed' | 'not_found' | 'ambiguous';
export interface OrderRead {
  status: string;
  user_id: string;
  event_id: string;
  seat_ids: string[];
  hold_id: string;
  payment_id: string;
  payment_status: string;
}
export interface EventRead {
  free_seat_ids: Set<string>;
  held: number;
  sold: number;
}
export interface FinalState {
  /** When the reads began (after the load stopped). */
  read_ms: number;
  /** GetAvailability of every event, read before the probes. */
  events: Map<string, EventRead>;
  /** GetOrder of every order id the history acknowledged. */
  orders: Map<string, OrderRead | 'not_found'>;
  /** ReleaseHold of every hold id the history acknowledged, read last. */
  holds: Map<string, HoldProbe>;
}

/** The calls on one acknowledged hold. */
interface HoldCalls {
  id: string;
  reserve: CallOf<'reserve'>;
  release: CallOf<'release'>[];
  confirm: CallOf<'confirm'>[];
}
/** The calls on one acknowledged order (every CreateDraft that answered its id). */
interface OrderCalls {
  id: string;
  drafts: CallOf<'create_draft'>[];
  authorize: CallOf<'authorize'>[];
  confirm: CallOf<'confirm_order'>[];
}
interface Index {
  holds: Map<string, HoldCalls>;
  orders: Map<string, OrderCalls>;
}

function index_of(calls: Call[]): Index {
  const ix: Index = { holds: new Map(), orders: new Map() };
  for (const c of calls) {
    if (c.rpc === 'reserve' && c.outcome.ok) {
      const id = c.outcome.reply.hold_id;
      ix.holds.set(id, { id, reserve: c, release: [], confirm: [] });
    } else if (c.rpc === 'create_draft' && c.outcome.ok) {
      const id = c.outcome.reply.id;
      const entry = ix.orders.get(id) ?? { id, drafts: [], authorize: [], confirm: [] };
      entry.drafts.push(c);
      ix.orders.set(id, entry);
    }
  }
  for (const c of calls) {
    // Calls on ids the history never acknowledged are not judged (the load only makes them
    // after an acknowledgement; a fabricated history may).
    if (c.rpc === 'release') ix.holds.get(c.request.hold_id)?.release.push(c);
    else if (c.rpc === 'confirm') ix.holds.get(c.request.hold_id)?.confirm.push(c);
    else if (c.rpc === 'authorize') ix.orders.get(c.request.order_id)?.authorize.push(c);
    else if (c.rpc === 'confirm_order') ix.orders.get(c.request.order_id)?.confirm.push(c);
  }
  return ix;
}

const released_ok = (c: CallOf<'release'>): boolean => c.outcome.ok && c.outcome.reply.released;
const confirmed_ok = (c: CallOf<'confirm'>): boolean => c.outcome.ok && c.outcome.reply.confirmed;
const order_confirmed_ok = (c: CallOf<'confirm_order'>): boolean =>
  c.outcome.ok && c.outcome.reply.status === 'CONFIRMED';
const authorized_ok = (c: CallOf<'authorize'>): boolean =>
  c.outcome.ok && c.outcome.reply.status === 'AUTHORIZED';

function hold_expiry_ms(h: HoldCalls): number {
  return h.reserve.outcome.ok
    ? h.reserve.outcome.reply.expires_at_unix * 1000 - expiry_margin_ms
    : 0;
}
function first_draft(o: OrderCalls): CallOf<'create_draft'> {
  return o.drafts.reduce((a, b) => (b.end_ms < a.end_ms ? b : a));
}
function draft_expiry_ms(o: OrderCalls): number {
  const first = first_draft(o);
  const created_ms = first.outcome.ok ? first.outcome.reply.created_at_unix * 1000 : 0;
  return created_ms + draft_hold_ttl_ms - expiry_margin_ms;
}

/** A seat's occupant (a hold, or a draft's hold) over the time it certainly held the seat. */
interface Occupant {
  who: string;
  event_id: string;
  seats: string[];
  from_ms: number;
  until_ms: number;
  sold: boolean;
}

/** From the reserve's reply until the start of the first call that may have ended it, or its
 *  expiry; a sold hold occupies its seats for good. */
function hold_occupant(h: HoldCalls): Occupant {
  const sold = h.confirm.some(confirmed_ok);
  const enders = h.release.filter((c) => released_ok(c) || is_unknown(c.outcome));
  let until_ms = Math.min(Infinity, ...enders.map((c) => c.start_ms));
  if (!sold) until_ms = Math.min(until_ms, hold_expiry_ms(h));
  const r = h.reserve;
  return {
    who: `hold ${h.id}`,
    event_id: r.request.event_id,
    seats: r.request.seat_ids,
    from_ms: r.end_ms,
    until_ms,
    sold,
  };
}

function order_occupant(o: OrderCalls): Occupant {
  const first = first_draft(o);
  const sold = o.confirm.some(order_confirmed_ok);
  const until_ms = sold ? Infinity : draft_expiry_ms(o);
  const { event_id, seat_ids } = first.request;
  return { who: `order ${o.id}`, event_id, seats: seat_ids, from_ms: first.end_ms, until_ms, sold };
}

function by_seat(occupants: Occupant[]): Map<string, Occupant[]> {
  const seats = new Map<string, Occupant[]>();
  for (const o of occupants) {
    for (const seat of o.seats) {
      const key = `${o.event_id}/${seat}`;
      seats.set(key, [...(seats.get(key) ?? []), o]);
    }
  }
  return seats;
}

/** From the history: no seat in two certainly-live holds at one moment, none sold twice. */
function check_occupancy(ix: Index, out: string[]): void {
  const occupants = [
    ...[...ix.holds.values()].map(hold_occupant),
    ...[...ix.orders.values()].map(order_occupant),
  ];
  for (const [seat, list] of by_seat(occupants)) {
    const sold = list.filter((o) => o.sold);
    if (sold.length > 1)
      out.push(`seat ${seat} sold twice: ${sold.map((o) => o.who).join(' and ')}`);
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const a = list[i]!;
        const b = list[j]!;
        if (a.sold && b.sold) continue; // reported above
        if (a.from_ms < b.until_ms && b.from_ms < a.until_ms) {
          out.push(
            `seat ${seat} in two holds at once: ${a.who} (from ${a.from_ms}) and ${b.who} (from ` +
              `${b.from_ms})`,
          );
        }
      }
    }
  }
}

/** Every probe answer the history allows for an acknowledged hold. */
function allowed_probes(h: HoldCalls, read_ms: number): Set<HoldProbe> {
  if (h.confirm.some(confirmed_ok)) return new Set(['confirmed']);
  if (h.release.some(released_ok)) return new Set(['not_live']);
  const allowed = new Set<HoldProbe>(['released']);
  if (read_ms >= hold_expiry_ms(h) || h.release.some((c) => is_unknown(c.outcome)))
    allowed.add('not_live');
  if (h.confirm.some((c) => is_unknown(c.outcome))) allowed.add('confirmed');
  return allowed;
}

/** Every acknowledged hold is where the history says (live, ended or sold), none lost. */
function check_holds(ix: Index, final: FinalState, out: string[]): void {
  for (const h of ix.holds.values()) {
    const probe = final.holds.get(h.id);
    const acked = `acknowledged by node ${h.reserve.node} at ${h.reserve.end_ms}`;
    if (probe === undefined) {
      out.push(`hold ${h.id} (${acked}) was not read back`);
      continue;
    }
    const allowed = allowed_probes(h, final.read_ms);
    const either = probe === 'ambiguous' && (allowed.has('released') || allowed.has('not_live'));
    if (!allowed.has(probe) && !either) {
      const found =
        probe === 'not_found'
          ? 'lost (NOT_FOUND)'
          : `${probe}, expected ${[...allowed].join(' or ')}`;
      out.push(`hold ${h.id} ${acked}: ${found}`);
    }
    if (h.release.some(released_ok) && h.confirm.some(confirmed_ok)) {
      out.push(`hold ${h.id}: both a release and a sale acknowledged`);
    }
  }
}

/** Order statuses the history allows at read time. */
function allowed_statuses(o: OrderCalls, read_ms: number): Set<string> {
  if (o.confirm.some(order_confirmed_ok)) return new Set(['CONFIRMED']);
  const allowed = new Set(['DRAFT']);
  if (o.confirm.some((c) => is_unknown(c.outcome))) allowed.add('CONFIRMED');
  if (read_ms >= draft_expiry_ms(o)) allowed.add('EXPIRED');
  return allowed;
}

const same_seats = (a: string[], b: string[]): boolean =>
  [...a].sort().join() === [...b].sort().join();

/** The authorization the history acknowledged for this order, if any (at most one). */
function acked_payment(o: OrderCalls, out: string[]): string | undefined {
  const ids = new Set(
    o.authorize.filter(authorized_ok).map((c) => (c.outcome.ok ? c.outcome.reply.payment_id : '')),
  );
  for (const c of o.confirm.filter(order_confirmed_ok)) ids.add(c.request.payment_id);
  if (ids.size > 1) out.push(`order ${o.id}: two payments acknowledged (${[...ids].join(', ')})`);
  return ids.values().next().value;
}

/** Every acknowledged draft, payment and sale is there, as acknowledged. */
function check_orders(ix: Index, final: FinalState, out: string[]): void {
  for (const o of ix.orders.values()) {
    const read = final.orders.get(o.id);
    const first = first_draft(o);
    const acked = `acknowledged by node ${first.node} at ${first.end_ms}`;
    if (read === undefined || read === 'not_found') {
      out.push(
        `order ${o.id} (${acked}) ${read === undefined ? 'was not read back' : 'lost (NOT_FOUND)'}`,
      );
      continue;
    }
    const r = first.request;
    if (
      read.user_id !== r.user_id ||
      read.event_id !== r.event_id ||
      !same_seats(read.seat_ids, r.seat_ids)
    ) {
      out.push(
        `order ${o.id} reads back as ${read.user_id} ${read.event_id} [${read.seat_ids}], ` +
          `drafted as ${r.user_id} ${r.event_id} [${r.seat_ids}]`,
      );
    }
    const statuses = allowed_statuses(o, final.read_ms);
    if (!statuses.has(read.status))
      out.push(`order ${o.id} ${acked}: ${read.status}, expected ${[...statuses].join(' or ')}`);
    const payment = acked_payment(o, out);
    if (payment === undefined) continue;
    const paid = read.status === 'CONFIRMED' ? ['CAPTURING', 'CAPTURED'] : ['AUTHORIZED'];
    if (read.status === 'EXPIRED') paid.push('VOIDING', 'VOIDED');
    if (read.payment_id !== payment || !paid.includes(read.payment_status)) {
      out.push(
        `order ${o.id}: payment ${read.payment_id} ${read.payment_status}, acknowledged ` +
          `${payment} (expected ${paid.join(' or ')})`,
      );
    }
  }
}

/** Seats of unknown reserves and drafts: they may hold seats nobody can name. */
function unknown_seats(calls: Call[], event_id: string): number {
  let seats = 0;
  for (const c of calls) {
    if (
      (c.rpc === 'reserve' || c.rpc === 'create_draft') &&
      is_unknown(c.outcome) &&
      c.request.event_id === event_id
    ) {
      seats += c.request.seat_ids.length;
    }
  }
  return seats;
}

/** Seats of holds whose probe was ambiguous: live or not when availability was read. */
function ambiguous_seats(ix: Index, final: FinalState, event_id: string): number {
  let seats = 0;
  for (const h of ix.holds.values()) {
    const r = h.reserve.request;
    if (final.holds.get(h.id) === 'ambiguous' && r.event_id === event_id) {
      seats += r.seat_ids.length;
    }
  }
  return seats;
}

interface Holder {
  who: string;
  seats: string[];
  sold: boolean;
}

/** Who holds and who bought what at read time, per event, as the final reads say. */
function holders_at_read(ix: Index, final: FinalState): Map<string, Holder[]> {
  const per_event = new Map<string, Holder[]>();
  const add = (event_id: string, h: Holder): void => {
    per_event.set(event_id, [...(per_event.get(event_id) ?? []), h]);
  };
  for (const h of ix.holds.values()) {
    const probe = final.holds.get(h.id);
    if (probe !== 'released' && probe !== 'confirmed') continue;
    add(h.reserve.request.event_id, {
      who: `hold ${h.id}`,
      seats: h.reserve.request.seat_ids,
      sold: probe === 'confirmed',
    });
  }
  for (const [id, read] of final.orders) {
    if (read === 'not_found' || (read.status !== 'DRAFT' && read.status !== 'CONFIRMED')) continue;
    add(read.event_id, {
      who: `order ${id}`,
      seats: read.seat_ids,
      sold: read.status === 'CONFIRMED',
    });
  }
  return per_event;
}

/** From the final state: no seat held or sold twice, held and sold seats are not free, and the
 *  event's counts agree with the holds and orders read back. */
function check_final_seats(ix: Index, calls: Call[], final: FinalState, out: string[]): void {
  const holders = holders_at_read(ix, final);
  for (const [event_id, read] of final.events) {
    const list = holders.get(event_id) ?? [];
    const owner = new Map<string, Holder>();
    for (const h of list) {
      for (const seat of h.seats) {
        const other = owner.get(seat);
        if (other !== undefined) {
          const what = other.sold && h.sold ? 'sold twice' : 'in two holds';
          out.push(`final state: seat ${event_id}/${seat} ${what}: ${other.who} and ${h.who}`);
        }
        owner.set(seat, h);
        if (read.free_seat_ids.has(seat))
          out.push(`final state: seat ${event_id}/${seat} of ${h.who} is free`);
      }
    }
    const count = (sold: boolean): number =>
      list.filter((h) => h.sold === sold).reduce((n, h) => n + h.seats.length, 0);
    if (read.sold !== count(true)) {
      out.push(
        `final state: ${event_id} has ${read.sold} seats sold, the sold holds and confirmed ` +
          `orders have ${count(true)}`,
      );
    }
    const held_max =
      count(false) + unknown_seats(calls, event_id) + ambiguous_seats(ix, final, event_id);
    if (read.held < count(false) || read.held > held_max) {
      out.push(
        `final state: ${event_id} has ${read.held} seats held, the live holds and drafts read ` +
          `back have ${count(false)} (at most ${held_max} with unknown outcomes)`,
      );
    }
  }
}

/** Every violation of the history against the final state; [] when it is consistent. */
export function check_history(calls: Call[], final: FinalState): string[] {
  const ix = index_of(calls);
  const out: string[] = [];
  check_occupancy(ix, out);
  check_holds(ix, final, out);
  check_orders(ix, final, out);
  check_final_seats(ix, calls, final, out);
  return out;
}

/** What a read_committed consumer saw: one entry per message (duplicates included). */
export interface EventsSeen {
  hold_created: string[];
  order_confirmed: string[];
}

function counts(ids: string[]): Map<string, number> {
  const n = new Map<string, number>();
  for (const id of ids) n.set(id, (n.get(id) ?? 0) + 1);
  return n;
}

/** Exactly once: one HoldCreated per acknowledged hold and per draft read back, one
 *  OrderConfirmed per order read back CONFIRMED, none for other orders, no id twice. */
export function check_events(calls: Call[], final: FinalState, seen: EventsSeen): string[] {
  const out: string[] = [];
  const holds = counts(seen.hold_created);
  const orders = counts(seen.order_confirmed);
  for (const [id, n] of holds) if (n > 1) out.push(`HoldCreated of ${id} seen ${n} times`);
  for (const [id, n] of orders) if (n > 1) out.push(`OrderConfirmed of ${id} seen ${n} times`);
  for (const id of index_of(calls).holds.keys()) {
    if (!holds.has(id)) out.push(`no HoldCreated for acknowledged hold ${id}`);
  }
  for (const [id, read] of final.orders) {
    if (read === 'not_found') continue;
    if (!holds.has(read.hold_id))
      out.push(`no HoldCreated for the hold ${read.hold_id} of order ${id}`);
    const confirmed = read.status === 'CONFIRMED';
    if (confirmed && !orders.has(id)) out.push(`no OrderConfirmed for confirmed order ${id}`);
    if (!confirmed && orders.has(id))
      out.push(`OrderConfirmed for order ${id}, which is ${read.status}`);
  }
  return out;
}

/** Outcome counts per rpc and code name, for the test output ("reserve OK 120, UNAVAILABLE 3"). */
export function summary(calls: Call[]): string {
  const names = new Map(Object.entries(status).map(([name, code]) => [code, name]));
  const per = new Map<string, Map<string, number>>();
  for (const c of calls) {
    const code = c.outcome.ok ? 'OK' : (names.get(c.outcome.code) ?? String(c.outcome.code));
    const m = per.get(c.rpc) ?? new Map<string, number>();
    m.set(code, (m.get(code) ?? 0) + 1);
    per.set(c.rpc, m);
  }
  return [...per]
    .map(([rpc, m]) => `${rpc} ${[...m].map(([k, v]) => `${k} ${v}`).join(', ')}`)
    .join('; ');
}

/** One call as a line of a report: id, node, rpc, request, times, outcome. */
export function format_call(c: Call): string {
  const outcome = c.outcome.ok
    ? `OK ${JSON.stringify(c.outcome.reply)}`
    : `code ${c.outcome.code} ${c.outcome.details}`;
  return (
    `#${c.id} node ${c.node} ${c.rpc} ${JSON.stringify(c.request)} [${c.start_ms}, ` +
    `${c.end_ms}] → ${outcome}`
  );
}

/** The calls a violation names (by hold or order id), for a report's history excerpt. */
export function excerpt(calls: Call[], violation: string, max = 12): string[] {
  const ids = violation.match(/(hold|order)_[0-9]+_[A-Za-z0-9_-]+/g) ?? [];
  const about = (c: Call): string =>
    JSON.stringify({ ...c.request, ...(c.outcome.ok ? c.outcome.reply : {}) });
  return calls
    .filter((c) => ids.some((id) => about(c).includes(id)))
    .slice(0, max)
    .map(format_call);
}

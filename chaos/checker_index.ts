// The history indexed for the checks: holds by id, purchases by their draft's idempotency key,
// payments and refunds by id, and the node's clock bounds as a function of wall time.
import type { Call, ClockStep } from './history.js';
import { num, str, strs } from './checker_state.js';

/** expires_at_unix is whole seconds, and a hold may lapse up to a second before it says. */
export const expiry_margin_ms = 1_000;
/** CreateDraft holds for the default TTL (src/actors/limits.ts hold_ttl_seconds_default). */
export const draft_hold_ttl_ms = 600_000;

export interface Violation {
  check: string;
  message: string;
  /** Ids of the calls involved (into the history). */
  calls: number[];
}

export interface HoldIx {
  id: string;
  reserve: Call;
  releases: Call[];
  sales: Call[];
}

/** One purchase: every call made under one draft idempotency key (the load's retries). */
export interface PurchaseIx {
  key: string;
  user: string;
  event_id: string;
  seats: string[];
  drafts: Call[];
  /** Order ids the drafts acknowledged (one, if idempotency holds). */
  order_ids: Set<string>;
  authorizes: Call[];
  confirms: Call[];
  captures: Call[];
  refunds: Call[];
}

export interface Index {
  holds: Map<string, HoldIx>;
  purchases: Map<string, PurchaseIx>;
  purchase_of_order: Map<string, PurchaseIx>;
  purchase_of_payment: Map<string, PurchaseIx>;
  /** Calls whose outcome is unknown, for attributing unexplained changes. */
  unknown_reserves: Call[];
}

export const ok = (c: Call): boolean => c.result === 'ok';
/** Order statuses of a sale: confirmed, and after refunds (the seats stay sold). */
export const sold_statuses: ReadonlySet<string> = new Set([
  'CONFIRMED',
  'PARTIALLY_REFUNDED',
  'REFUNDED',
]);
/** A Refund's answer once done: the payment's status after it. */
export const refunded_statuses: ReadonlySet<string> = new Set(['PARTIALLY_REFUNDED', 'REFUNDED']);
export const unknown = (c: Call): boolean => c.result === 'unknown';
export const seat_key = (event_id: string, seats: string[]): string =>
  `${event_id}|${[...seats].sort().join(',')}`;

function purchase_for(ix: Index, c: Call): PurchaseIx {
  const key = c.key;
  let p = ix.purchases.get(key);
  if (p === undefined) {
    p = {
      key,
      user: str(c.request, 'user_id'),
      event_id: str(c.request, 'event_id'),
      seats: strs(c.request, 'seat_ids'),
      drafts: [],
      order_ids: new Set(),
      authorizes: [],
      confirms: [],
      captures: [],
      refunds: [],
    };
    ix.purchases.set(key, p);
  }
  return p;
}

function index_first_pass(ix: Index, calls: Call[]): void {
  for (const c of calls) {
    if (c.rpc === 'reserve' && ok(c)) {
      const id = str(c.reply, 'hold_id');
      ix.holds.set(id, { id, reserve: c, releases: [], sales: [] });
    } else if (c.rpc === 'reserve' && unknown(c)) {
      ix.unknown_reserves.push(c);
    } else if (c.rpc === 'create_draft' && c.key !== '') {
      const p = purchase_for(ix, c);
      p.drafts.push(c);
      if (ok(c)) {
        p.order_ids.add(str(c.reply, 'id'));
        ix.purchase_of_order.set(str(c.reply, 'id'), p);
      }
    }
  }
}

export function index_of(calls: Call[]): Index {
  const ix: Index = {
    holds: new Map(),
    purchases: new Map(),
    purchase_of_order: new Map(),
    purchase_of_payment: new Map(),
    unknown_reserves: [],
  };
  index_first_pass(ix, calls);
  for (const c of calls) {
    const hold = ix.holds.get(str(c.request, 'hold_id'));
    if (c.rpc === 'release') hold?.releases.push(c);
    else if (c.rpc === 'confirm_allocation') hold?.sales.push(c);
    const p = ix.purchase_of_order.get(str(c.request, 'order_id'));
    if (c.rpc === 'authorize' && p !== undefined) {
      p.authorizes.push(c);
      if (ok(c)) ix.purchase_of_payment.set(str(c.reply, 'payment_id'), p);
    } else if (c.rpc === 'confirm_order') p?.confirms.push(c);
  }
  for (const c of calls) {
    const p = ix.purchase_of_payment.get(str(c.request, 'payment_id'));
    if (c.rpc === 'capture') p?.captures.push(c);
    else if (c.rpc === 'refund') p?.refunds.push(c);
  }
  return ix;
}

/** The node's clock offset bounds over wall time (steps recorded by the harness). */
export class NodeClock {
  private readonly steps: ClockStep[];

  constructor(
    steps: ClockStep[],
    private readonly end_ms: number,
  ) {
    this.steps = [...steps].sort((a, b) => a.at_ms - b.at_ms);
  }

  /** The earliest wall time >= from_ms at which the node's clock may have read >= node_ms. */
  earliest_reach(from_ms: number, node_ms: number): number {
    const s = this.steps;
    if (s.length === 0) return Math.max(from_ms, node_ms);
    for (let i = 0; i < s.length; i++) {
      const begin = Math.max(i === 0 ? -Infinity : s[i]!.at_ms, from_ms);
      const end = i + 1 < s.length ? s[i + 1]!.at_ms : Infinity;
      if (end <= from_ms) continue;
      // Before the first step the first step's bounds apply (the run starts with one).
      const at = Math.max(begin, node_ms - s[i]!.hi_ms);
      if (at < end) return at;
    }
    return Infinity;
  }

  /** The latest the node's clock may have read at any time up to the end. */
  max_node_ms(): number {
    let max = this.end_ms;
    const s = this.steps;
    for (let i = 0; i < s.length; i++) {
      const end = i + 1 < s.length ? s[i + 1]!.at_ms : this.end_ms;
      max = Math.max(max, end + s[i]!.hi_ms);
    }
    return max;
  }
}

export function hold_expiry_node_ms(h: HoldIx): number {
  return num(h.reserve.reply, 'expires_at_unix') * 1000 - expiry_margin_ms;
}

export function first_ok(calls: Call[]): Call | undefined {
  return calls
    .filter(ok)
    .reduce<Call | undefined>(
      (a, b) => (a === undefined || b.end_ms < a.end_ms ? b : a),
      undefined,
    );
}

export function draft_expiry_node_ms(p: PurchaseIx): number {
  const first = first_ok(p.drafts);
  return num(first?.reply, 'created_at_unix') * 1000 + draft_hold_ttl_ms - expiry_margin_ms;
}

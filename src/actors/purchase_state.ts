// Orders and payments of one partition. They live beside the seat maps of their event, so a
// purchase (hold, price, pay, allocate) is a single-partition state machine with no
// cross-thread transaction. Knows nothing of threads, LMDB, gRPC or gateways.

/** PARTIALLY_RETURNED / RETURNED: some / all of a sold order's seats went back on sale
 *  (ReturnSeats); they stay so whatever refunds follow (the payment's status tells the money). */
export type OrderStatus =
  | 'DRAFT' | 'CONFIRMED' | 'EXPIRED' | 'CANCELLED' | 'REFUNDED' | 'PARTIALLY_REFUNDED'
  | 'PARTIALLY_RETURNED' | 'RETURNED';

/**
 * PENDING: Authorize began, the gateway has not answered yet. CAPTURING / VOIDING: decided and
 * journaled, the gateway call is being made (or retried by the settlement loop). The others are
 * settled. A payment is "open" while PENDING, AUTHORIZED, CAPTURING, VOIDING, or with a refund
 * PENDING: the settlement loop looks only at open payments.
 */
export type PaymentStatus =
  | 'PENDING' | 'AUTHORIZED' | 'DECLINED' | 'CAPTURING' | 'CAPTURED' | 'VOIDING' | 'VOIDED'
  | 'PARTIALLY_REFUNDED' | 'REFUNDED';

export type FraudVerdict = 'APPROVE' | 'REVIEW' | 'DECLINE';

export interface FraudDecision { risk_score: number; decision: FraudVerdict; reasons: string[]; at_ms: number }

export interface Order {
  order_id: string;
  event_id: string;
  user_id: string;
  /** The hold that carries the order's seats (a new one when ConfirmOrder retakes seats). */
  hold_id: string;
  hold_expires_at_ms: number;
  seats: number[];
  subtotal_micros: number;
  total_micros: number;
  currency: string;
  promo_code: string;
  /** user_id \0 event_id \0 idempotency_key of CreateDraft, '' without a key. */
  draft_key: string;
  status: OrderStatus;
  created_ms: number;
  updated_ms: number;
  /** The payment that confirmed the order; '' before. */
  payment_id: string;
  payment_ids: string[];
  fraud: FraudDecision | null;
  /** The promo use this order counts against the code's cap (drafts and sold orders do). */
  promo_counted: boolean;
  trace_id: string;
  /** Seats of `seats` returned to sale (ReturnSeats), in return order; [] in snapshots from
   *  before returns. */
  returned: number[];
}

export interface Refund {
  refund_id: string;
  amount_micros: number;
  status: 'PENDING' | 'SUCCEEDED';
  created_ms: number;
  /** The scoped idempotency key of the Refund call that started it ('' without one): whoever
   *  completes the refund (the call, or the settlement loop after an outage) stores the first
   *  result under it. */
  idempotency_key: string;
}

export interface Payment {
  payment_id: string;
  order_id: string;
  amount_micros: number;
  currency: string;
  status: PaymentStatus;
  /** The gateway's reference for the authorization ('' before it answered). Not a secret. */
  gateway_ref: string;
  decline_reason: string;
  created_ms: number;
  updated_ms: number;
  /** When the gateway approved (0: never). */
  authorized_ms: number;
  captured_micros: number;
  refunded_micros: number;
  refund_pending_micros: number;
  refunds: Refund[];
  trace_id: string;
}

/** A stored answer to a call that carried `idempotency-key` metadata. */
export interface IdempotencyEntry { fingerprint: string; reply: unknown; forget_at_ms: number }

export interface PurchaseState {
  orders: Map<string, Order>;
  payments: Map<string, Payment>;
  order_by_hold: Map<string, string>;
  /** user_id \0 event_id \0 idempotency_key → order_id (CreateDraft). */
  order_by_draft_key: Map<string, string>;
  orders_by_user: Map<string, string[]>;
  payment_by_refund: Map<string, string>;
  open_payments: Set<string>;
  idempotency: Map<string, IdempotencyEntry>;
  /** Idempotency keys in the order they will be forgotten (retention is constant). */
  idempotency_queue: string[];
  /** event_id \0 code → uses counted against the cap. */
  promo_uses: Map<string, number>;
  /** Drafts that ended (expired, cancelled), in end order: forgotten after
   *  ended_order_retention_ms unless sold since (a lapsed draft can still be confirmed). */
  ended_orders: { order_id: string; forget_at_ms: number }[];
}

export function create_purchase_state(): PurchaseState {
  return {
    orders: new Map(), payments: new Map(), order_by_hold: new Map(), order_by_draft_key: new Map(),
    orders_by_user: new Map(), payment_by_refund: new Map(), open_payments: new Set(),
    idempotency: new Map(), idempotency_queue: [], promo_uses: new Map(), ended_orders: [],
  };
}

export function promo_key(event_id: string, code: string): string {
  return `${event_id}\u0000${code}`;
}

export function is_open(payment: Payment): boolean {
  return payment.status === 'PENDING' || payment.status === 'AUTHORIZED' || payment.status === 'CAPTURING'
    || payment.status === 'VOIDING' || payment.refund_pending_micros > 0;
}

/** An order that was sold (confirmed, perhaps refunded or returned since): its seats not in
 *  `returned` are sold to it. */
export function is_sold(order: Order): boolean {
  return order.status === 'CONFIRMED' || order.status === 'REFUNDED'
    || order.status === 'PARTIALLY_REFUNDED' || order.status === 'PARTIALLY_RETURNED'
    || order.status === 'RETURNED';
}

/** Adds an order and its lookups (current hold, draft key, per-user list): what apply() does for
 *  a new order and restore() does for each snapshotted one, so the two cannot drift apart. */
export function index_order(p: PurchaseState, order: Order): void {
  p.orders.set(order.order_id, order);
  p.order_by_hold.set(order.hold_id, order.order_id);
  if (order.draft_key !== '') p.order_by_draft_key.set(order.draft_key, order.order_id);
  let list = p.orders_by_user.get(order.user_id);
  if (list === undefined) p.orders_by_user.set(order.user_id, (list = []));
  list.push(order.order_id);
}

// ticketing.order.v1.OrderService (seed) and OrderQueryService: translate, check transport
// limits, authorize, hand to the purchase flow.
import * as L from '../actors/limits.js';
import { seats_per_hold_exceeded } from '../actors/inventory.js';
import type { OrderDetails, OrderView } from '../actors/orders.js';
import { require_self } from '../auth/policy.js';
import type { Purchases } from '../purchase/purchases.js';
import { id, int64, money_out, optional_id, seat_id, str } from './convert.js';
import { admission_of, caller_of } from './context.js';
import { unary, type EdgeDeps } from './unary.js';

export function order_out(o: OrderView) {
  return {
    id: o.id, status: o.status, created_at_unix: String(o.created_at_unix), updated_at_unix: String(o.updated_at_unix),
    total: money_out(o.total.amount_micros, o.total.currency),
  };
}

export function details_out(d: OrderDetails) {
  return {
    order: order_out(d), event_id: d.event_id, user_id: d.user_id, seat_ids: d.seat_ids, hold_id: d.hold_id,
    hold_expires_at_unix: String(d.hold_expires_at_unix), promo_code: d.promo_code,
    subtotal: money_out(d.subtotal.amount_micros, d.subtotal.currency), payment_id: d.payment_id, payment_status: d.payment_status,
    captured: money_out(d.captured_micros, d.total.currency), refunded: money_out(d.refunded_micros, d.total.currency),
    fraud_decision: d.fraud_decision, risk_score: d.risk_score,
    returned_seat_ids: d.returned_seat_ids, hold_extensions: d.hold_extensions,
    hold_extensions_left: d.hold_extensions_left,
  };
}

interface CreateDraftIn { user_id: unknown; event_id: unknown; seat_ids: unknown; promo_code: unknown; idempotency_key: unknown }

export function order_service(deps: EdgeDeps, purchases: Purchases) {
  const s = 'OrderService';
  return {
    CreateDraft: unary(deps, s, 'CreateDraft', async (req: CreateDraftIn, ctx) => {
      const user_id = id(req.user_id, 'user_id', L.user_id_length_max);
      require_self(ctx.principal, user_id);
      const event_id = id(req.event_id, 'event_id', L.event_id_length_max);
      const raw = Array.isArray(req.seat_ids) ? req.seat_ids : [];
      if (raw.length > L.seats_per_hold_max) throw seats_per_hold_exceeded(raw.length);
      const seat_ids = raw.map((x, i) => seat_id(x, `seat_ids[${i}]`, L.seat_id_length_max));
      const promo_code = str(req.promo_code ?? '', 'promo_code', L.promo_code_length_max);
      const idempotency_key = optional_id(req.idempotency_key, 'idempotency_key', L.idempotency_key_length_max);
      const admission = admission_of(ctx);
      const draft = { event_id, seat_ids, user_id, promo_code, idempotency_key, ...admission };
      return order_out(await purchases.create_draft(draft, ctx.trace_id));
    }, { changes_state: true, retry_note: 'the outcome is unknown: the draft may or may not have been created, and may still be. Retry with the same idempotency_key: it returns the same order and never holds the seats twice' }),
    ConfirmOrder: unary(deps, s, 'ConfirmOrder', async (req: { order_id: unknown; payment_id: unknown }, ctx) => {
      const order_id = id(req.order_id, 'order_id', L.order_id_length_max);
      const payment_id = id(req.payment_id, 'payment_id', 64);
      return order_out(await purchases.confirm_order({ order_id, payment_id }, caller_of(ctx.principal), ctx.trace_id));
    }, { changes_state: true, retry_note: 'the outcome is unknown: the order may or may not have been confirmed, and may still be. Retrying is safe: ConfirmOrder is idempotent (a repeat returns the same order and never captures twice)' }),
  };
}

export function order_query_service(deps: EdgeDeps, purchases: Purchases) {
  const s = 'OrderQueryService';
  return {
    GetOrder: unary(deps, s, 'GetOrder', async (req: { order_id: unknown }, ctx) => {
      const order_id = id(req.order_id, 'order_id', L.order_id_length_max);
      return details_out(await purchases.get_order(order_id, caller_of(ctx.principal)));
    }),
    ListOrders: unary(deps, s, 'ListOrders', async (req: { user_id: unknown; page_size: unknown; page_token: unknown }, ctx) => {
      const user_id = id(req.user_id, 'user_id', L.user_id_length_max);
      require_self(ctx.principal, user_id);
      const page_size = int64(req.page_size ?? 0, 'page_size', 0, L.list_orders_page_max);
      const page_token = str(req.page_token ?? '', 'page_token', 256);
      const page = await purchases.list_orders(user_id, page_size, page_token);
      return { orders: page.orders.map(details_out), next_page_token: page.next_page_token };
    }),
  };
}

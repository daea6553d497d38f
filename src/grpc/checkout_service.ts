// ticketing.order.v1.CheckoutService (CreateDraftFromHold) and OrderAdminService (ReturnSeats):
// translate, check transport limits, authorize, hand to the purchase flow.
import * as L from '../actors/limits.js';
import { InvalidArgumentError } from '../actors/errors.js';
import { require_role } from '../auth/policy.js';
import type { Purchases } from '../purchase/purchases.js';
import { id, int64, money, optional_id, seat_id, str } from './convert.js';
import { caller_of } from './context.js';
import { details_out, order_out } from './order_service.js';
import { unary, type EdgeDeps } from './unary.js';

interface FromHoldIn { hold_id: unknown; promo_code: unknown; idempotency_key: unknown }
interface ReturnSeatsIn {
  order_id: unknown; seat_ids: unknown; refund_amount: unknown; idempotency_key: unknown;
}

const from_hold_retry_note = 'the outcome is unknown: the draft may or may not have been '
  + 'created, and may still be. Retry with the same idempotency_key: it returns the same order';
const return_retry_note = 'the outcome is unknown: the seats may or may not have been returned, '
  + 'and may still be. Retry with the same idempotency_key: it returns the first result and '
  + 'never returns seats or refunds twice';

export function checkout_service(deps: EdgeDeps, purchases: Purchases) {
  const s = 'CheckoutService';
  return {
    CreateDraftFromHold: unary(deps, s, 'CreateDraftFromHold', async (req: FromHoldIn, ctx) => {
      const hold_id = id(req.hold_id, 'hold_id', 64);
      const promo_code = str(req.promo_code ?? '', 'promo_code', L.promo_code_length_max);
      const idempotency_key = optional_id(
        req.idempotency_key, 'idempotency_key', L.idempotency_key_length_max,
      );
      const order = await purchases.create_draft_from_hold(
        { hold_id, promo_code, idempotency_key }, caller_of(ctx.principal), ctx.trace_id,
      );
      return order_out(order);
    }, { changes_state: true, retry_note: from_hold_retry_note }),
  };
}

/** Money that may be absent or zero (no refund): { 0, '' } then. */
function optional_money(
  value: unknown, field: string,
): { amount_micros: number; currency: string } {
  if (value === null || value === undefined) return { amount_micros: 0, currency: '' };
  const m = value as { amount_micros?: unknown; currency?: unknown };
  const amount_micros = int64(m.amount_micros ?? '0', `${field}.amount_micros`, 0);
  if (amount_micros === 0 && (m.currency ?? '') === '') return { amount_micros: 0, currency: '' };
  return money(value, field, 0);
}

export function order_admin_service(deps: EdgeDeps, purchases: Purchases) {
  const s = 'OrderAdminService';
  return {
    ReturnSeats: unary(deps, s, 'ReturnSeats', async (req: ReturnSeatsIn, ctx) => {
      // Seats back on sale and money out: the merchant's decision, never a customer's own.
      require_role(ctx.principal, ['service', 'admin'], 'ReturnSeats');
      const order_id = id(req.order_id, 'order_id', L.order_id_length_max);
      const raw = Array.isArray(req.seat_ids) ? req.seat_ids : [];
      // An order has at most seats_per_hold_max seats: refuse longer lists before a thread hop.
      if (raw.length > L.seats_per_hold_max) {
        throw new InvalidArgumentError(
          `seat_ids lists at most ${L.seats_per_hold_max} seats (an order has no more)`,
        );
      }
      const seat_ids = raw.map((x, i) => seat_id(x, `seat_ids[${i}]`, L.seat_id_length_max));
      const refund = optional_money(req.refund_amount, 'refund_amount');
      const idempotency_key = id(
        req.idempotency_key, 'idempotency_key', L.idempotency_key_length_max,
      );
      const details = await purchases.return_seats({
        order_id, seat_ids, refund_amount_micros: refund.amount_micros, currency: refund.currency,
        idempotency_key,
      }, caller_of(ctx.principal), ctx.trace_id);
      return details_out(details);
    }, { changes_state: true, retry_note: return_retry_note }),
  };
}

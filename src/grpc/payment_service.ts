// ticketing.payment.v1.PaymentService: translate, check transport limits, authorize, hand to
// the purchase flow. The payment token is passed through and never logged or stored.
import * as L from '../actors/limits.js';
import { InvalidArgumentError } from '../actors/errors.js';
import { require_role } from '../auth/policy.js';
import type { Purchases } from '../purchase/purchases.js';
import { id, money, str } from './convert.js';
import { caller_of } from './context.js';
import { unary, type EdgeDeps } from './unary.js';

export function payment_service(deps: EdgeDeps, purchases: Purchases) {
  const s = 'PaymentService';
  return {
    Authorize: unary(deps, s, 'Authorize', async (req: { order_id: unknown; amount: unknown; payment_token: unknown }, ctx) => {
      const order_id = id(req.order_id, 'order_id', L.order_id_length_max);
      // 0 only matches a free order's total (the actor checks amount = total).
      const amount = money(req.amount, 'amount', 0);
      const token = str(req.payment_token, 'payment_token', L.payment_token_length_max);
      // Never echo the token: it is a secret even when malformed.
      if (token === '' || !/^[A-Za-z0-9_]+$/.test(token)) throw new InvalidArgumentError('payment_token is required: a gateway token such as tok_visa');
      const r = await purchases.authorize({ order_id, ...amount, token }, caller_of(ctx.principal), ctx.idempotency_key, ctx.peer_ip, ctx.trace_id);
      return { payment_id: r.payment_id, status: r.status, authorized_at_unix: String(r.authorized_at_unix) };
    }, { changes_state: true, retry_note: 'the outcome is unknown: the payment may or may not have been authorized. Retry with the same idempotency-key metadata: it returns the first result and never authorizes twice' }),
    Capture: unary(deps, s, 'Capture', async (req: { payment_id: unknown }, ctx) => {
      const payment_id = id(req.payment_id, 'payment_id', 64);
      return purchases.capture(payment_id, caller_of(ctx.principal));
    }, { changes_state: true, retry_note: 'the outcome is unknown. Retrying is safe: Capture is idempotent (a repeat answers CAPTURED and never captures twice)' }),
    Refund: unary(deps, s, 'Refund', async (req: { payment_id: unknown; amount: unknown }, ctx) => {
      // Refunds move money out: the merchant's decision (support tools, the order service),
      // never a customer's own.
      require_role(ctx.principal, ['service', 'admin'], 'Refund');
      const payment_id = id(req.payment_id, 'payment_id', 64);
      const amount = money(req.amount, 'amount');
      return purchases.refund({ payment_id, ...amount }, caller_of(ctx.principal), ctx.idempotency_key, ctx.trace_id);
    }, { changes_state: true, retry_note: 'the outcome is unknown: the refund may or may not have been made. Retry with the same idempotency-key metadata: it returns the first result and never refunds twice' }),
  };
}

// ticketing.inventory.v1.InventoryService: translate, check transport limits, route.
import * as L from '../actors/limits.js';
import { seats_per_hold_exceeded } from '../actors/inventory.js';
import { acting_user, require_role, require_self } from '../auth/policy.js';
import { admission_of } from './context.js';
import { id, int64, seat_id } from './convert.js';
import type { Router } from '../route/router.js';
import { unary, type EdgeDeps } from './unary.js';

interface ReserveIn { event_id: unknown; seat_ids: unknown; hold_ttl_seconds: unknown; user_id: unknown }

export function inventory_service(deps: EdgeDeps, router: Router) {
  const s = 'InventoryService';
  return {
    ReserveTickets: unary(deps, s, 'ReserveTickets', async (req: ReserveIn, ctx) => {
      const event_id = id(req.event_id, 'event_id', L.event_id_length_max);
      const user_id = id(req.user_id, 'user_id', L.user_id_length_max);
      require_self(ctx.principal, user_id);
      const raw = Array.isArray(req.seat_ids) ? req.seat_ids : [];
      // Refuse oversized lists here, before they cross to a worker.
      if (raw.length > L.seats_per_hold_max) {
        throw seats_per_hold_exceeded(raw.length);
      }
      const seat_ids = raw.map((x, i) => seat_id(x, `seat_ids[${i}]`, L.seat_id_length_max));
      const hold_ttl_seconds = int64(req.hold_ttl_seconds, 'hold_ttl_seconds');
      const reply = await router.call('reserve', {
        event_id, seat_ids, hold_ttl_seconds, user_id, trace_id: ctx.trace_id, ...admission_of(ctx),
      });
      return { hold_id: reply.hold_id, expires_at_unix: String(Math.floor(reply.expires_at_ms / 1000)) };
    }, { changes_state: true, retry_note: 'the outcome is unknown: the hold may or may not have been made, and may still be made after this answer. Retrying the identical request is safe: it cannot hold the same seats twice (if the first attempt took effect, the retry is refused and that hold lapses at its TTL)' }),
    ReleaseHold: unary(deps, s, 'ReleaseHold', async (req: { hold_id: unknown }, ctx) => {
      const hold_id = id(req.hold_id, 'hold_id', 64);
      return router.call('release', { hold_id, actor_user_id: acting_user(ctx.principal) });
    }, { changes_state: true, retry_note: 'the outcome is unknown: the hold may or may not have been released, and may still be. Retrying is safe: ReleaseHold is idempotent (a repeat answers released=false once it is released)' }),
    ConfirmAllocation: unary(deps, s, 'ConfirmAllocation', async (req: { hold_id: unknown; order_id: unknown }, ctx) => {
      // Allocation turns a hold into a sale: only the order service (or an admin) may do it.
      require_role(ctx.principal, ['service', 'admin'], 'ConfirmAllocation');
      const hold_id = id(req.hold_id, 'hold_id', 64);
      const order_id = id(req.order_id, 'order_id', L.order_id_length_max);
      return router.call('confirm', { hold_id, order_id });
    }, { changes_state: true, retry_note: 'the outcome is unknown: the allocation may or may not have been made, and may still be. Retrying with the same order_id is safe: ConfirmAllocation is idempotent per order (a repeat answers confirmed=true)' }),
  };
}

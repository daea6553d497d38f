// ticketing.inventory.v1.SeatSelectionService: translate, check transport limits, route. The
// partition owning the event chooses the seats (src/actors/selection.ts); ExtendHold, routed by
// the hold's id, has a file of its own (extend_hold.ts).
import * as L from '../actors/limits.js';
import { InvalidArgumentError } from '../actors/errors.js';
import { seats_per_hold_exceeded } from '../actors/inventory.js';
import { require_self } from '../auth/policy.js';
import { admission_of } from './context.js';
import { id, int64, str } from './convert.js';
import { extend_hold_rpc } from './extend_hold.js';
import type { Router } from '../route/router.js';
import { unary, type EdgeDeps } from './unary.js';

interface BestIn {
  event_id: unknown; user_id: unknown; quantity: unknown; tiers: unknown; sections: unknown;
  accessible_quantity: unknown; hold_ttl_seconds: unknown;
}
interface GaIn {
  event_id: unknown; area: unknown; quantity: unknown; user_id: unknown; hold_ttl_seconds: unknown;
}

const retry_note = 'the outcome is unknown: the hold may or may not have been made, and may '
  + 'still be made after this answer. A retry may hold other seats as well: release the first '
  + 'hold if both were made (or let it lapse at its TTL)';

/** A count (int32 on the wire), refused here when over seats_per_hold_max so it never crosses
 *  to a worker; zero and negative counts are refused by the partition, with ReserveTickets'
 *  messages. */
function quantity_of(value: unknown, field: string): number {
  const n = int64(value ?? 0, field, -2_147_483_648, 2_147_483_647);
  if (n > L.seats_per_hold_max) throw seats_per_hold_exceeded(n);
  return n;
}

/** A list of section or tier names: capped, and names of letters, digits and _ only (never
 *  echoed: they may hold control characters). */
function name_list(value: unknown, field: string, max: number): string[] {
  const raw = Array.isArray(value) ? value : [];
  if (raw.length > max) throw new InvalidArgumentError(`${field} must list at most ${max} names`);
  return raw.map((x, i) => {
    const name = str(x, `${field}[${i}]`, L.section_name_length_max);
    if (!/^[A-Za-z0-9_]+$/.test(name)) {
      throw new InvalidArgumentError(`${field}[${i}] must be a name of letters, digits and _`);
    }
    return name;
  });
}

export function seat_selection_service(deps: EdgeDeps, router: Router) {
  const s = 'SeatSelectionService';
  return {
    ReserveBestAvailable: unary(deps, s, 'ReserveBestAvailable', async (req: BestIn, ctx) => {
      const event_id = id(req.event_id, 'event_id', L.event_id_length_max);
      const user_id = id(req.user_id, 'user_id', L.user_id_length_max);
      require_self(ctx.principal, user_id);
      const quantity = quantity_of(req.quantity, 'quantity');
      const accessible_quantity = quantity_of(req.accessible_quantity, 'accessible_quantity');
      const tiers = name_list(req.tiers, 'tiers', L.price_tiers_per_event_max);
      const sections = name_list(req.sections, 'sections', L.sections_per_event_max);
      const hold_ttl_seconds = int64(req.hold_ttl_seconds, 'hold_ttl_seconds');
      const reply = await router.call('reserve_best', {
        event_id, user_id, quantity, tiers, sections, accessible_quantity, hold_ttl_seconds,
        trace_id: ctx.trace_id, ...admission_of(ctx),
      });
      return {
        hold_id: reply.hold_id, expires_at_unix: String(Math.floor(reply.expires_at_ms / 1000)),
        seat_ids: reply.seat_ids,
      };
    }, { changes_state: true, retry_note }),
    ReserveGeneralAdmission: unary(deps, s, 'ReserveGeneralAdmission', async (req: GaIn, ctx) => {
      const event_id = id(req.event_id, 'event_id', L.event_id_length_max);
      const user_id = id(req.user_id, 'user_id', L.user_id_length_max);
      require_self(ctx.principal, user_id);
      const area = str(req.area ?? '', 'area', L.section_name_length_max);
      if (!/^[A-Za-z0-9]+$/.test(area)) {
        throw new InvalidArgumentError('area must be an area name of letters and digits, e.g. FLOOR');
      }
      const quantity = quantity_of(req.quantity, 'quantity');
      const hold_ttl_seconds = int64(req.hold_ttl_seconds, 'hold_ttl_seconds');
      const reply = await router.call('reserve_ga', {
        event_id, area, quantity, user_id, hold_ttl_seconds, trace_id: ctx.trace_id,
        ...admission_of(ctx),
      });
      const expires_at_unix = String(Math.floor(reply.expires_at_ms / 1000));
      return { hold_id: reply.hold_id, expires_at_unix };
    }, { changes_state: true, retry_note }),
    ExtendHold: extend_hold_rpc(deps, router),
  };
}

// ticketing.inventory.v1.SeatSelectionService/ExtendHold: translate, check transport limits,
// route. Part of seat_selection_service.ts's service object.
import * as L from '../actors/limits.js';
import { acting_user } from '../auth/policy.js';
import type { Router } from '../route/router.js';
import { id, int64 } from './convert.js';
import { unary, type EdgeDeps } from './unary.js';

const extend_retry_note = 'the outcome is unknown: the hold may or may not have been extended, '
  + 'and may still be. A retry that is applied too counts as another extension (ExtendHold is '
  + 'not idempotent): read the expiry first (GetOrder for a draft\'s hold) or accept it';

interface ExtendHoldIn { hold_id: unknown; extend_seconds: unknown }

export function extend_hold_rpc(deps: EdgeDeps, router: Router) {
  return unary(deps, 'SeatSelectionService', 'ExtendHold', async (req: ExtendHoldIn, ctx) => {
    const hold_id = id(req.hold_id, 'hold_id', 64);
    // The actor checks the same range again; refused here before it crosses a thread.
    const extend_seconds = int64(
      req.extend_seconds ?? '0', 'extend_seconds', 1, L.hold_ttl_seconds_max,
    );
    const reply = await router.call('extend_hold', {
      hold_id, extend_seconds, actor_user_id: acting_user(ctx.principal), trace_id: ctx.trace_id,
    });
    return {
      expires_at_unix: String(Math.floor(reply.expires_at_ms / 1000)),
      extensions_left: reply.extensions_left,
    };
  }, { changes_state: true, retry_note: extend_retry_note });
}

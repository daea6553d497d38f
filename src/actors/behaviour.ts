// The ticketing partition as a runtime behaviour: dispatches each request kind to the
// inventory's decide functions. Loaded by worker threads by URL (see src/node/pool.ts).
import type { PartitionBehaviour } from '../runtime/behaviour.js';
import { unreachable } from '../runtime/assert.js';
import {
  apply, decide_confirm, decide_create_event, decide_reserve, type InventoryRecord,
} from './inventory.js';
import {
  decide_confirm_order, decide_create_draft, decide_release, decide_score, decide_timers, get_order,
  list_orders, next_deadline_ms,
} from './orders.js';
import { create_state, type InventoryState } from './partition_state.js';
import {
  decide_authorize_begin, decide_authorize_end, decide_begin_void, decide_capture, decide_refund_begin, decide_settle,
  open_settlements,
} from './payments.js';
import { check_invariants } from './invariants.js';
import { get_availability, get_event } from './queries.js';
import type { TicketingRequest } from './requests.js';
import { restore, snapshot } from './snapshot.js';

export const behaviour: PartitionBehaviour<InventoryState, TicketingRequest, InventoryRecord> = {
  create: create_state,
  decide(state, request, ctx) {
    switch (request.k) {
      case 'create_event': return decide_create_event(state, request.spec);
      case 'get_event': return { records: [], outbox: [], reply: get_event(state, request.event_id) };
      case 'availability': return { records: [], outbox: [], reply: get_availability(state, request.event_id, request.section) };
      case 'reserve': return decide_reserve(state, request, ctx);
      case 'release': return decide_release(state, request, ctx);
      case 'confirm': return decide_confirm(state, request, ctx);
      case 'create_draft': return decide_create_draft(state, request, ctx);
      case 'score': return decide_score(state, request, ctx);
      case 'confirm_order': return decide_confirm_order(state, request, ctx);
      case 'get_order': return { records: [], outbox: [], reply: get_order(state, request) };
      case 'list_orders': return { records: [], outbox: [], reply: list_orders(state, request) };
      case 'authorize_begin': return decide_authorize_begin(state, request, ctx);
      case 'authorize_end': return decide_authorize_end(state, request, ctx);
      case 'capture': return decide_capture(state, request);
      case 'refund_begin': return decide_refund_begin(state, request, ctx);
      case 'settle': return decide_settle(state, request, ctx);
      case 'begin_void': return decide_begin_void(state, request, ctx);
      case 'open_settlements': return { records: [], outbox: [], reply: open_settlements(state, ctx.now_ms, request.limit) };
      default: return unreachable(request, 'request kind');
    }
  },
  apply,
  snapshot,
  restore,
  next_deadline_ms,
  fire_timers: decide_timers,
  // After recovery only (the runtime never calls it per request): O(seats + holds × events).
  check: check_invariants,
  gauges(state) {
    let held = 0;
    let sold = 0;
    for (const e of state.events.values()) {
      held += e.held;
      sold += e.sold;
    }
    return {
      seat_holds_active: state.active_holds, seats_held: held, seats_sold: sold, events: state.events.size,
      orders: state.purchase.orders.size, payments_open: state.purchase.open_payments.size,
    };
  },
};

// The ticketing partition as a runtime behaviour: a handler per request kind of the protocol
// (protocol.ts), each typed to return its kind's reply. Loaded by worker threads by URL (see
// src/node/pool.ts).
import { dispatch, read, type Handlers, type PartitionBehaviour } from '../runtime/behaviour.js';
import { apply, decide_confirm, decide_create_event, decide_reserve, type PartitionRecord } from './inventory.js';
import {
  decide_confirm_order, decide_create_draft, decide_release, decide_score, decide_timers, get_order,
  list_orders, next_deadline_ms,
} from './orders.js';
import {
  decide_authorize_begin, decide_authorize_end, decide_begin_void, decide_capture,
  decide_refund_begin, decide_settle, open_settlements,
} from './payments.js';
import { check_invariants } from './invariants.js';
import { is_read_kind } from './request_effects.js';
import { assert } from '../util/assert.js';
import { watch_changes } from './change_log.js';
import { create_state, type PartitionState } from './partition_state.js';
import type { TicketingProtocol, TicketingRequest } from './protocol.js';
import { get_availability, get_event } from './queries.js';
import { restore, snapshot } from './snapshot.js';
import { decide_reserve_best, decide_reserve_ga } from './selection.js';
import { decide_extend_hold } from './inventory.js';
import { decide_create_draft_from_hold } from './orders.js';
import { decide_return_seats } from './returns.js';
import {
  decide_close_queue, decide_configure_queue, decide_join_queue, decide_queue_timers,
  decide_pace_queues, decide_set_admission_rate, queue_fairness, queue_gauges, queue_position,
  queues_deadline_ms,
} from './queue.js';

export const handlers: Handlers<PartitionState, TicketingProtocol, PartitionRecord> = {
  create_event: (state, request) => decide_create_event(state, request.spec),
  get_event: (state, request) => read(get_event(state, request.event_id)),
  availability: (state, request) =>
    read(get_availability(state, request.event_id, request.section)),
  reserve: decide_reserve,
  release: decide_release,
  confirm: decide_confirm,
  create_draft: decide_create_draft,
  score: decide_score,
  confirm_order: decide_confirm_order,
  get_order: (state, request) => read(get_order(state, request)),
  list_orders: (state, request) => read(list_orders(state, request)),
  authorize_begin: decide_authorize_begin,
  authorize_end: decide_authorize_end,
  capture: (state, request) => decide_capture(state, request),
  refund_begin: decide_refund_begin,
  settle: decide_settle,
  begin_void: decide_begin_void,
  open_settlements: (state, request, ctx) =>
    read(open_settlements(state, ctx.now_ms, request.limit)),
  reserve_best: decide_reserve_best,
  reserve_ga: decide_reserve_ga,
  extend_hold: decide_extend_hold,
  create_draft_from_hold: decide_create_draft_from_hold,
  return_seats: decide_return_seats,
  watch_changes: (state, request, ctx) => read(watch_changes(state, request, ctx.random_bytes)),
  configure_queue: decide_configure_queue,
  set_admission_rate: decide_set_admission_rate,
  close_queue: decide_close_queue,
  join_queue: decide_join_queue,
  queue_position: (state, request, ctx) => read(queue_position(state, request, ctx.now_ms)),
  queue_fairness: (state, request) => read(queue_fairness(state, request)),
  pace_queues: decide_pace_queues,
};

export const behaviour: PartitionBehaviour<PartitionState, TicketingRequest, PartitionRecord> = {
  create: create_state,
  decide(state, request, ctx) {
    const decision = dispatch(handlers, state, request, ctx);
    // The cluster answers reads under a lease, unfenced (request_effects.ts): one that journals
    // would be a change nobody fences.
    assert(
      !is_read_kind(request.k) || (decision.records.length === 0 && decision.outbox.length === 0),
      `${request.k} is a read`,
    );
    return decision;
  },
  apply,
  snapshot,
  restore,
  next_deadline_ms(state) {
    const holds = next_deadline_ms(state);
    const queues = queues_deadline_ms(state);
    if (holds === null) return queues;
    return queues === null ? holds : Math.min(holds, queues);
  },
  // The queues' timers decide from the same state as the holds': neither reads what the
  // other changes (a hold's expiry changes no queue, an admission no hold).
  fire_timers(state, ctx) {
    const holds = decide_timers(state, ctx);
    const queues = decide_queue_timers(state, ctx);
    return {
      records: [...holds.records, ...queues.records], outbox: [...holds.outbox, ...queues.outbox],
    };
  },
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
      ...queue_gauges(state),
    };
  },
};

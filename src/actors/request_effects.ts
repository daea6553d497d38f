// What each request kind may do to a partition: 'read' answers from memory and journals nothing;
// 'change' may journal. The cluster answers a read only under its heartbeat lease (a read is not
// fenced by Kafka, a change is), so a read kind missing from this table would be answered by a
// paused owner. Typed over the whole protocol: a new kind fails to compile until it is named
// here, and behaviour.ts asserts that a 'read' decision journals nothing.
import type { TicketingKind } from './protocol.js';

export type RequestEffect = 'read' | 'change';

export const request_effects: { readonly [K in TicketingKind]: RequestEffect } = {
  create_event: 'change',
  get_event: 'read',
  availability: 'read',
  reserve: 'change',
  release: 'change',
  confirm: 'change',
  create_draft: 'change',
  score: 'change',
  confirm_order: 'change',
  get_order: 'read',
  list_orders: 'read',
  authorize_begin: 'change',
  authorize_end: 'change',
  capture: 'change',
  refund_begin: 'change',
  settle: 'change',
  begin_void: 'change',
  open_settlements: 'read',
  reserve_best: 'change',
  reserve_ga: 'change',
  extend_hold: 'change',
  create_draft_from_hold: 'change',
  return_seats: 'change',
  // WatchAvailability's poll: a paused owner must not feed streams a picture it no longer owns.
  watch_changes: 'read',
  configure_queue: 'change',
  set_admission_rate: 'change',
  close_queue: 'change',
  join_queue: 'change',
  // GetPosition, WatchPosition's poll, GetFairness: a paused owner must not hand out a token.
  queue_position: 'read',
  queue_fairness: 'read',
  // Journals queue_paced (and the ticks it folds) when the pace changes.
  pace_queues: 'change',
};

const read_kinds: ReadonlySet<string> = new Set(
  Object.entries(request_effects).filter(([, effect]) => effect === 'read').map(([kind]) => kind),
);

/** Whether `kind` (a request's `k`, from anywhere) is a kind that changes nothing. */
export function is_read_kind(kind: unknown): boolean {
  return typeof kind === 'string' && read_kinds.has(kind);
}

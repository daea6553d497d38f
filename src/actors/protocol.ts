// The requests a partition of the ticketing node understands, and the reply each one gets: one
// map, from which the request union (tagged on `k`), the handler table (behaviour.ts) and the
// typed caller (src/route) are derived, so a reply that drifts from its entry fails to compile.
// Reply types live beside the decide functions that produce them.
import type { RequestOf } from '../runtime/behaviour.js';
import type {
  AvailabilityRequest, ConfirmReply, ConfirmRequest, CreateEventReply, ReleaseReply, ReleaseRequest,
  ReserveReply, ReserveRequest,
} from './inventory.js';
import type {
  ConfirmOrderReply, ConfirmOrderRequest, CreateDraftRequest, GetOrderRequest, ListOrdersRequest,
  OrderDetails, OrderView, ScoreReply, ScoreRequest,
} from './orders.js';
import type {
  AuthorizeBeginRequest, AuthorizeEndRequest, AuthorizeReply, BeginVoidReply, BeginVoidRequest,
  CaptureReply, CaptureRequest, RefundBeginRequest, RefundReply, Settlement, SettleReply,
  SettleRequest,
} from './payments.js';
import type { Availability, EventView } from './queries.js';
import type {
  ReserveBestReply, ReserveBestRequest, ReserveGaReply, ReserveGaRequest,
} from './selection.js';
import type { ExtendHoldReply, ExtendHoldRequest } from './inventory.js';
import type { CreateDraftFromHoldRequest } from './orders.js';
import type { ReturnSeatsReply, ReturnSeatsRequest } from './returns.js';
import type { WatchChangesReply, WatchChangesRequest } from './change_log.js';
import type {
  CloseQueueReply, CloseQueueRequest, ConfigureQueueReply, ConfigureQueueRequest, JoinQueueReply,
  JoinQueueRequest, PaceQueuesReply, PaceQueuesRequest, QueueFairness, QueueFairnessRequest,
  QueuePosition, QueuePositionRequest, SetAdmissionRateReply, SetAdmissionRateRequest,
} from './queue.js';

/** `event_id` routes the request (the spec's own event_id, checked at the edge); the actor
 *  validates `spec` itself and decides from it alone. */
export interface CreateEventRequest { event_id: string; spec: unknown }
export interface GetEventRequest { event_id: string }
export interface OpenSettlementsRequest { limit: number }

export interface TicketingProtocol {
  create_event: { request: CreateEventRequest; reply: CreateEventReply };
  get_event: { request: GetEventRequest; reply: EventView };
  availability: { request: AvailabilityRequest; reply: Availability };
  reserve: { request: ReserveRequest; reply: ReserveReply };
  release: { request: ReleaseRequest; reply: ReleaseReply };
  confirm: { request: ConfirmRequest; reply: ConfirmReply };
  create_draft: { request: CreateDraftRequest; reply: OrderView };
  score: { request: ScoreRequest; reply: ScoreReply };
  confirm_order: { request: ConfirmOrderRequest; reply: ConfirmOrderReply };
  get_order: { request: GetOrderRequest; reply: OrderDetails };
  /** One partition's page: the caller asks every partition and merges. */
  list_orders: { request: ListOrdersRequest; reply: OrderDetails[] };
  authorize_begin: { request: AuthorizeBeginRequest; reply: AuthorizeReply };
  authorize_end: { request: AuthorizeEndRequest; reply: AuthorizeReply };
  capture: { request: CaptureRequest; reply: CaptureReply };
  refund_begin: { request: RefundBeginRequest; reply: RefundReply };
  settle: { request: SettleRequest; reply: SettleReply };
  begin_void: { request: BeginVoidRequest; reply: BeginVoidReply };
  /** One partition's owed gateway calls: the settlement loop asks every partition. */
  open_settlements: { request: OpenSettlementsRequest; reply: Settlement[] };
  reserve_best: { request: ReserveBestRequest; reply: ReserveBestReply };
  reserve_ga: { request: ReserveGaRequest; reply: ReserveGaReply };
  extend_hold: { request: ExtendHoldRequest; reply: ExtendHoldReply };
  create_draft_from_hold: { request: CreateDraftFromHoldRequest; reply: OrderView };
  return_seats: { request: ReturnSeatsRequest; reply: ReturnSeatsReply };
  /** WatchAvailability's poll: what changed since the watcher's version (change_log.ts). */
  watch_changes: { request: WatchChangesRequest; reply: WatchChangesReply };
  // The waiting room (issue 16, queue.ts).
  configure_queue: { request: ConfigureQueueRequest; reply: ConfigureQueueReply };
  set_admission_rate: { request: SetAdmissionRateRequest; reply: SetAdmissionRateReply };
  close_queue: { request: CloseQueueRequest; reply: CloseQueueReply };
  join_queue: { request: JoinQueueRequest; reply: JoinQueueReply };
  queue_position: { request: QueuePositionRequest; reply: QueuePosition };
  queue_fairness: { request: QueueFairnessRequest; reply: QueueFairness };
  /** The admission governor's pace of every queue of one partition: asked of each partition. */
  pace_queues: { request: PaceQueuesRequest; reply: PaceQueuesReply };
}

export type TicketingKind = keyof TicketingProtocol;
export type TicketingRequest = RequestOf<TicketingProtocol>;

// The requests a partition of the ticketing node understands: a tagged union on `k`.
import type { AvailabilityRequest, ConfirmRequest, ReleaseRequest, ReserveRequest } from './inventory.js';
import type { ConfirmOrderRequest, CreateDraftRequest, GetOrderRequest, ListOrdersRequest, ScoreRequest } from './orders.js';
import type { AuthorizeBeginRequest, AuthorizeEndRequest, BeginVoidRequest, CaptureRequest, RefundBeginRequest, SettleRequest } from './payments.js';

export type TicketingRequest =
  | { k: 'create_event'; spec: unknown }
  | { k: 'get_event'; event_id: string }
  | { k: 'availability' } & AvailabilityRequest
  | { k: 'reserve' } & ReserveRequest
  | { k: 'release' } & ReleaseRequest
  | { k: 'confirm' } & ConfirmRequest
  | { k: 'create_draft' } & CreateDraftRequest
  | { k: 'score' } & ScoreRequest
  | { k: 'confirm_order' } & ConfirmOrderRequest
  | { k: 'get_order' } & GetOrderRequest
  | { k: 'list_orders' } & ListOrdersRequest
  | { k: 'authorize_begin' } & AuthorizeBeginRequest
  | { k: 'authorize_end' } & AuthorizeEndRequest
  | { k: 'capture' } & CaptureRequest
  | { k: 'refund_begin' } & RefundBeginRequest
  | { k: 'settle' } & SettleRequest
  | { k: 'begin_void' } & BeginVoidRequest
  | { k: 'open_settlements'; limit: number };

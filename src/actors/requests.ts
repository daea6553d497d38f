// The requests a partition of the ticketing node understands: a tagged union on `k`.
import type { AvailabilityRequest, ConfirmRequest, ReleaseRequest, ReserveRequest } from './inventory.js';

export type TicketingRequest =
  | { k: 'create_event'; spec: unknown }
  | { k: 'get_event'; event_id: string }
  | { k: 'availability' } & AvailabilityRequest
  | { k: 'reserve' } & ReserveRequest
  | { k: 'release' } & ReleaseRequest
  | { k: 'confirm' } & ConfirmRequest;

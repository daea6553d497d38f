// Failure modes of forwarding a call to the node that owns its partition (one hop, peer gRPC).
// One class per mode, each a RuntimeError: they carry no ticket meaning. src/grpc/status.ts maps
// them to status codes; the ones a peer sends back travel as a WireError and are revived by
// revive_forward_error, so the first node answers with the owner's exact refusal.
import { reviver, RuntimeError } from '../runtime/errors.js';

/** The node this call reached does not serve the partition (it moved, or never was here): the
 *  one hop is spent, so it refuses rather than forwarding again. Retriable: UNAVAILABLE. */
export class NotOwnerError extends RuntimeError {
  override readonly name = 'NotOwnerError';
}

/** No node is known to serve the partition right now (a rebalance is moving it). UNAVAILABLE. */
export class PartitionMovingError extends RuntimeError {
  override readonly name = 'PartitionMovingError';
}

/** The owner could not be reached (connection refused, reset, peer shutting down): the call
 *  was not answered; retry shortly. UNAVAILABLE. */
export class PeerUnavailableError extends RuntimeError {
  override readonly name = 'PeerUnavailableError';
}

/** The owner refused this node's peer credentials (TICKETING_AUTH_SECRET differs between the
 *  nodes, or the clocks are further apart than clock_skew_ms_max). Never served. UNAVAILABLE:
 *  the client's own token was fine, and the call was not applied. */
export class PeerAuthError extends RuntimeError {
  override readonly name = 'PeerAuthError';
}

/** The caller's deadline passed before the owner answered (the owner may still apply the call,
 *  as with any deadline). DEADLINE_EXCEEDED. */
export class ForwardDeadlineExceededError extends RuntimeError {
  override readonly name = 'ForwardDeadlineExceededError';
}

/** forwards_in_flight_per_peer_max forwards to (or from) one peer are already outstanding:
 *  back-pressure, retry later. RESOURCE_EXHAUSTED. */
export class ForwardsInFlightExceededError extends RuntimeError {
  override readonly name = 'ForwardsInFlightExceededError';
}

/** A forwarded request or its reply is larger than message_bytes_max. RESOURCE_EXHAUSTED. */
export class ForwardMessageTooLargeError extends RuntimeError {
  override readonly name = 'ForwardMessageTooLargeError';
}

/** The classes an owner sends back inside a reply (the others are made by the first node). */
export const revive_forward_error = reviver<RuntimeError>([
  NotOwnerError, ForwardsInFlightExceededError, ForwardMessageTooLargeError,
  ForwardDeadlineExceededError,
]);

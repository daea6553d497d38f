// The one table from typed error to gRPC status code. Any error not in it is a bug: the client
// gets INTERNAL with a fixed message, and the details go only to the log. The tables are keyed
// by the classes themselves, so the compiler checks that every key is a real class, and a
// renamed one cannot silently fall to INTERNAL (test/grpc/status.test.ts covers every class).
import { status } from '@grpc/grpc-js';
import {
  EventExistsError, EventNotFoundError, FieldTooLongError, HoldConfirmedError, HoldNotActiveError, HoldNotFoundError,
  HoldsPerUserExceededError, IdempotencyKeyReusedError, InvalidArgumentError, OrderExpiredError, OrderNotFoundError,
  OrderStateError, PaymentNotFoundError, PaymentsPerOrderExceededError, PaymentStateError, PermissionDeniedError,
  PromoUnavailableError, RefundExceedsCapturedError, RefundsPerPaymentExceededError, SeatsPerHoldExceededError,
  SeatsPerUserExceededError, SeatsUnavailableError,
  HoldExtensionRefusedError,
  AdmissionTokenExpiredError, AdmissionTokenInvalidError, AdmissionTokenUsedError,
  QueueAdmissionRequiredError, QueueConfigConflictError, QueueFullError, QueueNotFoundError,
  QueueNotOpenError,
} from '../actors/errors.js';
import { ForbiddenError, UnauthenticatedError } from '../auth/errors.js';
import {
  ForwardDeadlineExceededError, ForwardMessageTooLargeError, ForwardsInFlightExceededError,
  NotOwnerError, PartitionMovingError, PeerAuthError, PeerUnavailableError,
} from '../cluster/forward_errors.js';
import { JournalWriteError, PartitionFencedError, PartitionMovedError } from '../cluster/errors.js';
import { GatewayUnavailableError } from '../purchase/errors.js';
import { assert } from '../util/assert.js';
import {
  MailboxFullError, PartitionNotServedError, ShuttingDownError, WorkerUnavailableError,
} from '../runtime/errors.js';
import { StorageFullError } from '../runtime/storage.js';
import {
  DeadlineCappedError, RateLimitedError, WatchReaderTooSlowError, WatchStreamsExceededError,
  QueueWatchStreamsExceededError,
} from './errors.js';

/** Any error class, whatever its constructor takes. */
export type ErrorClass = abstract new (...args: never[]) => Error;

/** A table keyed by class. No key is a subclass of another, so the order of lookup is moot. */
function by_class<T>(entries: readonly (readonly [ErrorClass, T])[]): ReadonlyMap<ErrorClass, T> {
  const table = new Map(entries);
  assert(table.size === entries.length, 'each class is listed once');
  for (const [a] of entries) {
    for (const [b] of entries) assert(a === b || !(a.prototype instanceof b), `${a.name} not listed with its base ${b.name}`);
  }
  return table;
}

/** The entry of the error's class (or of a class it extends); undefined for anything else. */
function lookup<T>(table: ReadonlyMap<ErrorClass, T>, error: unknown): T | undefined {
  if (!(error instanceof Error)) return undefined;
  // Nearly every error is an instance of a listed class itself: one map probe per refused call
  // (a sold-out on-sale refuses most calls); the scan only for subclasses of a listed class.
  const direct = table.get(error.constructor as ErrorClass);
  if (direct !== undefined) return direct;
  for (const [Class, value] of table) if (error instanceof Class) return value;
  return undefined;
}

export const status_of_error: ReadonlyMap<ErrorClass, status> = by_class<status>([
  // src/actors/errors.ts
  [InvalidArgumentError, status.INVALID_ARGUMENT],
  [EventNotFoundError, status.NOT_FOUND],
  [EventExistsError, status.ALREADY_EXISTS],
  [HoldNotFoundError, status.NOT_FOUND],
  [SeatsUnavailableError, status.FAILED_PRECONDITION],
  [HoldNotActiveError, status.FAILED_PRECONDITION],
  [HoldConfirmedError, status.FAILED_PRECONDITION],
  [SeatsPerHoldExceededError, status.RESOURCE_EXHAUSTED],
  [SeatsPerUserExceededError, status.RESOURCE_EXHAUSTED],
  [HoldsPerUserExceededError, status.RESOURCE_EXHAUSTED],
  [PaymentsPerOrderExceededError, status.RESOURCE_EXHAUSTED],
  [RefundsPerPaymentExceededError, status.RESOURCE_EXHAUSTED],
  [FieldTooLongError, status.INVALID_ARGUMENT],
  [PermissionDeniedError, status.PERMISSION_DENIED],
  [OrderNotFoundError, status.NOT_FOUND],
  [PaymentNotFoundError, status.NOT_FOUND],
  [PromoUnavailableError, status.FAILED_PRECONDITION],
  [OrderStateError, status.FAILED_PRECONDITION],
  [PaymentStateError, status.FAILED_PRECONDITION],
  [RefundExceedsCapturedError, status.FAILED_PRECONDITION],
  [OrderExpiredError, status.FAILED_PRECONDITION],
  [IdempotencyKeyReusedError, status.ALREADY_EXISTS],
  // src/purchase/errors.ts
  [GatewayUnavailableError, status.UNAVAILABLE],
  // src/auth/errors.ts
  [UnauthenticatedError, status.UNAUTHENTICATED],
  [ForbiddenError, status.PERMISSION_DENIED],
  // src/runtime/errors.ts
  [WorkerUnavailableError, status.UNAVAILABLE],
  [MailboxFullError, status.RESOURCE_EXHAUSTED],
  [ShuttingDownError, status.UNAVAILABLE],
  // cluster mode: the partition is not (or no longer) served here; nothing applied, retry
  [PartitionNotServedError, status.UNAVAILABLE],
  // src/runtime/storage.ts: not applied, nothing changed; retry with backoff (README: full disk)
  [StorageFullError, status.UNAVAILABLE],
  // src/cluster/errors.ts: the partition is moving (or its journal write failed): retry, on any
  // node. ClusterConfigError only refuses a start: never answered.
  [PartitionFencedError, status.UNAVAILABLE],
  [JournalWriteError, status.UNAVAILABLE],
  [PartitionMovedError, status.UNAVAILABLE],
  // src/grpc/errors.ts
  [RateLimitedError, status.RESOURCE_EXHAUSTED],
  [DeadlineCappedError, status.DEADLINE_EXCEEDED],
  // src/cluster/forward_errors.ts: not applied, retry (any node) unless said otherwise
  [NotOwnerError, status.UNAVAILABLE],
  [PartitionMovingError, status.UNAVAILABLE],
  [PeerUnavailableError, status.UNAVAILABLE],
  // The client's token was fine; the nodes disagree on the secret or the time: not applied.
  [PeerAuthError, status.UNAVAILABLE],
  [ForwardDeadlineExceededError, status.DEADLINE_EXCEEDED],
  [ForwardsInFlightExceededError, status.RESOURCE_EXHAUSTED],
  [ForwardMessageTooLargeError, status.RESOURCE_EXHAUSTED],
  // src/actors/errors.ts, issue 14 (hold lifecycle)
  [HoldExtensionRefusedError, status.FAILED_PRECONDITION],
  // src/grpc/errors.ts: WatchAvailability's limits (src/grpc/watch_hub.ts)
  [WatchStreamsExceededError, status.RESOURCE_EXHAUSTED],
  [WatchReaderTooSlowError, status.RESOURCE_EXHAUSTED],
  // src/actors/errors.ts, issue 16 (the waiting room)
  [QueueNotFoundError, status.NOT_FOUND],
  [QueueNotOpenError, status.FAILED_PRECONDITION],
  [QueueFullError, status.RESOURCE_EXHAUSTED],
  [QueueConfigConflictError, status.FAILED_PRECONDITION],
  [QueueAdmissionRequiredError, status.FAILED_PRECONDITION],
  [AdmissionTokenInvalidError, status.PERMISSION_DENIED],
  [AdmissionTokenUsedError, status.FAILED_PRECONDITION],
  [AdmissionTokenExpiredError, status.FAILED_PRECONDITION],
  // src/grpc/errors.ts: WatchPosition's stream cap (src/grpc/queue_watch.ts)
  [QueueWatchStreamsExceededError, status.RESOURCE_EXHAUSTED],
]);

/** Refusals that enforce a named limit, by class → the `limit` label of
 *  ticketing_limit_refusals_total (rate limits are labelled by scope: see limit_of). */
export const limit_of_error: ReadonlyMap<ErrorClass, string> = by_class<string>([
  [SeatsPerHoldExceededError, 'seats_per_hold'],
  [SeatsPerUserExceededError, 'max_seats_per_user'],
  [HoldsPerUserExceededError, 'holds_per_user'],
  [PaymentsPerOrderExceededError, 'payments_per_order'],
  [RefundsPerPaymentExceededError, 'refunds_per_payment'],
  [FieldTooLongError, 'string_length'],
  [MailboxFullError, 'mailbox_depth'],
  [DeadlineCappedError, 'deadline'],
  [ForwardsInFlightExceededError, 'forwards_in_flight_per_peer'],
  [ForwardMessageTooLargeError, 'forward_message_bytes'],
  [WatchStreamsExceededError, 'watch_streams_max'],
  [WatchReaderTooSlowError, 'watch_stream_backlog_max'],
  [HoldExtensionRefusedError, 'hold_extensions'],
  [QueueFullError, 'queue_entries'],
  [QueueWatchStreamsExceededError, 'queue_watch_streams_max'],
]);

/** The `limit` label of a refusal that enforces a named limit; undefined for any other error. */
export function limit_of(error: unknown): string | undefined {
  // A rate limit is labelled by the scope of the bucket that refused.
  if (error instanceof RateLimitedError) return `rate_${error.scope}`;
  return lookup(limit_of_error, error);
}

export const internal_error_message = 'internal error; it has been logged';

export interface MappedStatus { code: status; details: string; internal: boolean }

export function map_error(error: unknown): MappedStatus {
  const code = lookup(status_of_error, error);
  if (code !== undefined && error instanceof Error) return { code, details: error.message, internal: false };
  return { code: status.INTERNAL, details: internal_error_message, internal: true };
}

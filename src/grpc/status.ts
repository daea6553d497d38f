// The one table from typed error to gRPC status code. Any error not in it is a bug: the client
// gets INTERNAL with a fixed message, and the details go only to the log.
import { status } from '@grpc/grpc-js';

export const status_of_error: Readonly<Record<string, status>> = {
  // src/actors/errors.ts
  InvalidArgumentError: status.INVALID_ARGUMENT,
  EventNotFoundError: status.NOT_FOUND,
  EventExistsError: status.ALREADY_EXISTS,
  HoldNotFoundError: status.NOT_FOUND,
  SeatsUnavailableError: status.FAILED_PRECONDITION,
  HoldNotActiveError: status.FAILED_PRECONDITION,
  HoldConfirmedError: status.FAILED_PRECONDITION,
  SeatsPerHoldExceededError: status.RESOURCE_EXHAUSTED,
  SeatsPerUserExceededError: status.RESOURCE_EXHAUSTED,
  HoldsPerUserExceededError: status.RESOURCE_EXHAUSTED,
  PaymentsPerOrderExceededError: status.RESOURCE_EXHAUSTED,
  RefundsPerPaymentExceededError: status.RESOURCE_EXHAUSTED,
  FieldTooLongError: status.INVALID_ARGUMENT,
  PermissionDeniedError: status.PERMISSION_DENIED,
  OrderNotFoundError: status.NOT_FOUND,
  PaymentNotFoundError: status.NOT_FOUND,
  PromoUnavailableError: status.FAILED_PRECONDITION,
  OrderStateError: status.FAILED_PRECONDITION,
  PaymentStateError: status.FAILED_PRECONDITION,
  RefundExceedsCapturedError: status.FAILED_PRECONDITION,
  OrderExpiredError: status.FAILED_PRECONDITION,
  IdempotencyKeyReusedError: status.ALREADY_EXISTS,
  // src/purchase/errors.ts
  GatewayUnavailableError: status.UNAVAILABLE,
  // src/auth/errors.ts
  UnauthenticatedError: status.UNAUTHENTICATED,
  ForbiddenError: status.PERMISSION_DENIED,
  // src/runtime/errors.ts
  WorkerUnavailableError: status.UNAVAILABLE,
  MailboxFullError: status.RESOURCE_EXHAUSTED,
  ShuttingDownError: status.UNAVAILABLE,
  // src/runtime/storage.ts: not applied, nothing changed; retry with backoff (README: full disk)
  StorageFullError: status.UNAVAILABLE,
  // src/grpc/errors.ts
  RateLimitedError: status.RESOURCE_EXHAUSTED,
  DeadlineCappedError: status.DEADLINE_EXCEEDED,
};

/** Refusals that enforce a named limit, by error name → the `limit` label of
 *  ticketing_limit_refusals_total (rate limits are labelled by scope where they are refused). */
export const limit_of_error: Readonly<Record<string, string>> = {
  SeatsPerHoldExceededError: 'seats_per_hold',
  SeatsPerUserExceededError: 'max_seats_per_user',
  HoldsPerUserExceededError: 'holds_per_user',
  PaymentsPerOrderExceededError: 'payments_per_order',
  RefundsPerPaymentExceededError: 'refunds_per_payment',
  FieldTooLongError: 'string_length',
  MailboxFullError: 'mailbox_depth',
  DeadlineCappedError: 'deadline',
};

export const internal_error_message = 'internal error; it has been logged';

export interface MappedStatus { code: status; details: string; internal: boolean }

export function map_error(error: unknown): MappedStatus {
  if (error instanceof Error) {
    const code = status_of_error[error.name];
    if (code !== undefined) return { code, details: error.message, internal: false };
  }
  return { code: status.INTERNAL, details: internal_error_message, internal: true };
}

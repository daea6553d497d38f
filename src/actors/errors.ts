// Every way a ticketing request can be refused, one class per failure mode with a fixed name
// (nats.js style). These are rejections: expected, typed, and never a reason to crash. The
// gRPC layer maps the classes to status codes in one table (src/grpc/status.ts).
import { reviver } from '../runtime/errors.js';

export abstract class DomainError extends Error {
  readonly rejection = true as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class InvalidArgumentError extends DomainError {
  override readonly name = 'InvalidArgumentError';
}
export class EventNotFoundError extends DomainError {
  override readonly name = 'EventNotFoundError';
}
export class EventExistsError extends DomainError {
  override readonly name = 'EventExistsError';
}
export class HoldNotFoundError extends DomainError {
  override readonly name = 'HoldNotFoundError';
}
/** One or more requested seats are held or sold by someone else. */
export class SeatsUnavailableError extends DomainError {
  override readonly name = 'SeatsUnavailableError';
}
/** The hold was released, expired, or confirmed for another order. */
export class HoldNotActiveError extends DomainError {
  override readonly name = 'HoldNotActiveError';
}
/** The hold is confirmed; it can no longer be released. */
export class HoldConfirmedError extends DomainError {
  override readonly name = 'HoldConfirmedError';
}
/** A named limit would be exceeded (RESOURCE_EXHAUSTED); one subclass per limit, so the refusal
 *  is counted by limit (ticketing_limit_refusals_total{limit}). */
export abstract class LimitExceededError extends DomainError {}
export class SeatsPerHoldExceededError extends LimitExceededError {
  override readonly name = 'SeatsPerHoldExceededError';
}
/** The event's max_seats_per_user (held + sold). */
export class SeatsPerUserExceededError extends LimitExceededError {
  override readonly name = 'SeatsPerUserExceededError';
}
export class HoldsPerUserExceededError extends LimitExceededError {
  override readonly name = 'HoldsPerUserExceededError';
}
export class PaymentsPerOrderExceededError extends LimitExceededError {
  override readonly name = 'PaymentsPerOrderExceededError';
}
export class RefundsPerPaymentExceededError extends LimitExceededError {
  override readonly name = 'RefundsPerPaymentExceededError';
}
/** A string field is longer than its named maximum (INVALID_ARGUMENT). */
export class FieldTooLongError extends DomainError {
  override readonly name = 'FieldTooLongError';
}
/** The caller's role or identity does not allow this request. */
export class PermissionDeniedError extends DomainError {
  override readonly name = 'PermissionDeniedError';
}

export class OrderNotFoundError extends DomainError {
  override readonly name = 'OrderNotFoundError';
}
export class PaymentNotFoundError extends DomainError {
  override readonly name = 'PaymentNotFoundError';
}
/** The promo code is unknown, past its valid_until, or used up. */
export class PromoUnavailableError extends DomainError {
  override readonly name = 'PromoUnavailableError';
}
/** The order is not in a status that allows this step (e.g. Authorize on a CONFIRMED order). */
export class OrderStateError extends DomainError {
  override readonly name = 'OrderStateError';
}
/** The payment is not in a status that allows this step (e.g. Capture of a DECLINED payment). */
export class PaymentStateError extends DomainError {
  override readonly name = 'PaymentStateError';
}
/** The refund would make the total refunded exceed the amount captured. */
export class RefundExceedsCapturedError extends DomainError {
  override readonly name = 'RefundExceedsCapturedError';
}
/** The hold of the order expired and its seats are gone: the authorization was voided. */
export class OrderExpiredError extends DomainError {
  override readonly name = 'OrderExpiredError';
}
/** An idempotency key was reused with a different request. */
export class IdempotencyKeyReusedError extends DomainError {
  override readonly name = 'IdempotencyKeyReusedError';
}
/** ExtendHold would not extend the hold: its extensions are used up (hold_extensions_max) or its
 *  life is at its cap (hold_life_seconds_max). The message says which. */
export class HoldExtensionRefusedError extends DomainError {
  override readonly name = 'HoldExtensionRefusedError';
}

// The waiting room (issue 16, queue.ts).
export class QueueNotFoundError extends DomainError {
  override readonly name = 'QueueNotFoundError';
}
/** Joining before the queue's opens_at. */
export class QueueNotOpenError extends DomainError {
  override readonly name = 'QueueNotOpenError';
}
/** The event's queue has queue_entries_per_event_max entries. */
export class QueueFullError extends LimitExceededError {
  override readonly name = 'QueueFullError';
}
/** ConfigureQueue with other settings once the queue has opened (or on a closed queue). */
export class QueueConfigConflictError extends DomainError {
  override readonly name = 'QueueConfigConflictError';
}
/** A hold on an event whose queue is active, without an admission token. */
export class QueueAdmissionRequiredError extends DomainError {
  override readonly name = 'QueueAdmissionRequiredError';
}
/** The admission token is malformed, forged, or someone else's (another user or event). */
export class AdmissionTokenInvalidError extends DomainError {
  override readonly name = 'AdmissionTokenInvalidError';
}
/** The admission token already made a hold. */
export class AdmissionTokenUsedError extends DomainError {
  override readonly name = 'AdmissionTokenUsedError';
}
/** The admission token is past its admission_ttl_seconds. */
export class AdmissionTokenExpiredError extends DomainError {
  override readonly name = 'AdmissionTokenExpiredError';
}

const classes = [
  InvalidArgumentError, EventNotFoundError, EventExistsError, HoldNotFoundError, SeatsUnavailableError,
  HoldNotActiveError, HoldConfirmedError, SeatsPerHoldExceededError, SeatsPerUserExceededError, HoldsPerUserExceededError,
  PaymentsPerOrderExceededError, RefundsPerPaymentExceededError, FieldTooLongError, PermissionDeniedError, OrderNotFoundError,
  PaymentNotFoundError, PromoUnavailableError, OrderStateError, PaymentStateError, RefundExceedsCapturedError,
  OrderExpiredError, IdempotencyKeyReusedError,
  HoldExtensionRefusedError,
  QueueNotFoundError, QueueNotOpenError, QueueFullError, QueueConfigConflictError,
  QueueAdmissionRequiredError, AdmissionTokenInvalidError, AdmissionTokenUsedError,
  AdmissionTokenExpiredError,
];

const revive = reviver<DomainError>(classes);

/** Rebuilds a rejection that crossed a thread boundary as { name, message }. */
export function revive_domain_error(name: string, message: string): DomainError | undefined {
  return revive({ name, message });
}

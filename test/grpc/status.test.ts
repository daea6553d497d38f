// Every error class the node exports, and what becomes of it: the status code a client gets,
// the limit label it is counted under, and whether it comes back from a worker thread as itself.
// The classes are found by enumerating the modules' exports, so a new class fails here until it
// is given a fate below; a removed table entry fails as INTERNAL; a renamed class fails to
// compile (or, if only its name string changes, fails the name check).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { status } from '@grpc/grpc-js';
import * as actors_errors from '../../src/actors/errors.js';
import {
  DomainError, EventExistsError, HoldExtensionRefusedError, EventNotFoundError, FieldTooLongError, HoldConfirmedError,
  HoldNotActiveError, HoldNotFoundError, HoldsPerUserExceededError, IdempotencyKeyReusedError,
  InvalidArgumentError, LimitExceededError, OrderExpiredError, OrderNotFoundError, OrderStateError,
  PaymentNotFoundError, PaymentsPerOrderExceededError, PaymentStateError, PermissionDeniedError,
  PromoUnavailableError, RefundExceedsCapturedError, RefundsPerPaymentExceededError,
  revive_domain_error, SeatsPerHoldExceededError, SeatsPerUserExceededError, SeatsUnavailableError,
  AdmissionTokenExpiredError, AdmissionTokenInvalidError, AdmissionTokenUsedError,
  QueueAdmissionRequiredError, QueueConfigConflictError, QueueFullError, QueueNotFoundError,
  QueueNotOpenError,
} from '../../src/actors/errors.js';
import * as auth_errors from '../../src/auth/errors.js';
import { ForbiddenError, UnauthenticatedError } from '../../src/auth/errors.js';
import * as forward_errors from '../../src/cluster/forward_errors.js';
import {
  ForwardDeadlineExceededError, ForwardMessageTooLargeError, ForwardsInFlightExceededError,
  NotOwnerError, PartitionMovingError, PeerAuthError, PeerUnavailableError,
} from '../../src/cluster/forward_errors.js';
import { revive_forwarded } from '../../src/cluster/peer_clients.js';
import * as cluster_errors from '../../src/cluster/errors.js';
import {
  ClusterConfigError, JournalWriteError, PartitionFencedError, PartitionMovedError,
} from '../../src/cluster/errors.js';
import * as grpc_errors from '../../src/grpc/errors.js';
import { revive_node_error } from '../../src/node/pool.js';
import {
  DeadlineCappedError, RateLimitedError, WatchReaderTooSlowError, WatchStreamsExceededError,
  QueueWatchStreamsExceededError,
} from '../../src/grpc/errors.js';
import {
  internal_error_message, limit_of, map_error, type ErrorClass,
} from '../../src/grpc/status.js';
import * as kafka_errors from '../../src/kafka/errors.js';
import {
  InvalidBrokerListError, InvalidEventPayloadError, InvalidTopicPrefixError, KafkaError,
  UnknownEventTypeError,
} from '../../src/kafka/errors.js';
import * as purchase_errors from '../../src/purchase/errors.js';
import { GatewayUnavailableError } from '../../src/purchase/errors.js';
import * as runtime_errors from '../../src/runtime/errors.js';
import {
  error_to_wire, MailboxFullError, PartitionNotServedError, RuntimeError, ShuttingDownError,
  WorkerUnavailableError, type WireError,
} from '../../src/runtime/errors.js';
import { revive_wire_error } from '../../src/runtime/pool.js';
import * as storage from '../../src/runtime/storage.js';
import { StorageFullError, StoreCommitError } from '../../src/runtime/storage.js';

const modules: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  'src/actors/errors.ts': actors_errors,
  'src/runtime/errors.ts': runtime_errors,
  'src/runtime/storage.ts': storage,
  'src/auth/errors.ts': auth_errors,
  'src/purchase/errors.ts': purchase_errors,
  'src/grpc/errors.ts': grpc_errors,
  'src/kafka/errors.ts': kafka_errors,
  'src/cluster/forward_errors.ts': forward_errors,
  'src/cluster/errors.ts': cluster_errors,
};

/** Builds an error of the class with the given message. */
type Make = (message: string) => Error;
/** What becomes of an error of one class. */
type Fate =
  /** Answered to the client with `code` (never INTERNAL), counted under `limit` if it has one;
   *  `crosses`: made on a worker (or revivable from one), so it must come back as itself. */
  | { kind: 'answered'; code: status; limit?: string; crosses: boolean; make: Make }
  /** Never reaches a client; if one ever did, it would be a bug: INTERNAL. */
  | { kind: 'never answered'; why: string; make: Make }
  /** A base class, never thrown itself; `make` builds an instance of an unlisted subclass. */
  | { kind: 'base'; make: Make };

type Simple = new (message: string) => Error;
type Entry = [ErrorClass, Fate];
/** Made on a worker (or revivable from one), answered with `code`. */
const worker = (Class: Simple, code: status, limit?: string): Entry =>
  [Class, { kind: 'answered', code, limit, crosses: true, make: (m) => new Class(m) }];
/** Made on the main thread, answered with `code`. */
const main_thread = (Class: Simple, code: status, limit?: string): Entry =>
  [Class, { kind: 'answered', code, limit, crosses: false, make: (m) => new Class(m) }];
const kafka_side = (Class: Simple): Entry => [Class, {
  kind: 'never answered', make: (m) => new Class(m),
  why: 'the Kafka emitter runs beside the request path: it counts, logs, parks or refuses to start',
}];

const fate_entries: Entry[] = [
  // src/actors/errors.ts: decided on a worker, revived by the behaviour's revive option.
  [DomainError, { kind: 'base', make: (m) => new (class extends DomainError {})(m) }],
  [LimitExceededError, { kind: 'base', make: (m) => new (class extends LimitExceededError {})(m) }],
  worker(InvalidArgumentError, status.INVALID_ARGUMENT),
  worker(EventNotFoundError, status.NOT_FOUND),
  worker(EventExistsError, status.ALREADY_EXISTS),
  worker(HoldNotFoundError, status.NOT_FOUND),
  worker(SeatsUnavailableError, status.FAILED_PRECONDITION),
  worker(HoldNotActiveError, status.FAILED_PRECONDITION),
  worker(HoldConfirmedError, status.FAILED_PRECONDITION),
  worker(SeatsPerHoldExceededError, status.RESOURCE_EXHAUSTED, 'seats_per_hold'),
  worker(SeatsPerUserExceededError, status.RESOURCE_EXHAUSTED, 'max_seats_per_user'),
  worker(HoldsPerUserExceededError, status.RESOURCE_EXHAUSTED, 'holds_per_user'),
  worker(PaymentsPerOrderExceededError, status.RESOURCE_EXHAUSTED, 'payments_per_order'),
  worker(RefundsPerPaymentExceededError, status.RESOURCE_EXHAUSTED, 'refunds_per_payment'),
  worker(FieldTooLongError, status.INVALID_ARGUMENT, 'string_length'),
  worker(PermissionDeniedError, status.PERMISSION_DENIED),
  worker(OrderNotFoundError, status.NOT_FOUND),
  worker(PaymentNotFoundError, status.NOT_FOUND),
  worker(PromoUnavailableError, status.FAILED_PRECONDITION),
  worker(OrderStateError, status.FAILED_PRECONDITION),
  worker(PaymentStateError, status.FAILED_PRECONDITION),
  worker(RefundExceedsCapturedError, status.FAILED_PRECONDITION),
  worker(OrderExpiredError, status.FAILED_PRECONDITION),
  worker(IdempotencyKeyReusedError, status.ALREADY_EXISTS),
  worker(HoldExtensionRefusedError, status.FAILED_PRECONDITION, 'hold_extensions'),
  // src/runtime/errors.ts and storage.ts: revived by the pool itself.
  [RuntimeError, { kind: 'base', make: (m) => new (class extends RuntimeError {})(m) }],
  worker(WorkerUnavailableError, status.UNAVAILABLE),
  worker(MailboxFullError, status.RESOURCE_EXHAUSTED, 'mailbox_depth'),
  worker(ShuttingDownError, status.UNAVAILABLE),
  worker(PartitionNotServedError, status.UNAVAILABLE),
  worker(StorageFullError, status.UNAVAILABLE),
  [StoreCommitError, {
    kind: 'never answered', make: (m) => new StoreCommitError('EIO', '/data/store-0', m),
    why: 'a worker meets it on a commit: storage full becomes StorageFullError, any other is fatal',
  }],
  // src/auth, src/purchase, src/grpc: made on the main thread, never sent by a worker.
  [UnauthenticatedError, {
    kind: 'answered', code: status.UNAUTHENTICATED, crosses: false,
    make: (m) => new UnauthenticatedError(m, 'expired'),
  }],
  main_thread(ForbiddenError, status.PERMISSION_DENIED),
  main_thread(GatewayUnavailableError, status.UNAVAILABLE),
  [RateLimitedError, {
    kind: 'answered', code: status.RESOURCE_EXHAUSTED, limit: 'rate_user', crosses: false,
    make: (m) => new RateLimitedError('user', 250, m),
  }],
  main_thread(DeadlineCappedError, status.DEADLINE_EXCEEDED, 'deadline'),
  // src/cluster/errors.ts: made on the main thread (the journal writer, take), UNAVAILABLE. A
  // writer's refusal of a commit goes to the worker as that commit's outcome and comes back as
  // the reply of each of its requests: revived by the node's revive (src/node/pool.ts).
  worker(PartitionFencedError, status.UNAVAILABLE),
  worker(JournalWriteError, status.UNAVAILABLE),
  main_thread(PartitionMovedError, status.UNAVAILABLE),
  [ClusterConfigError, {
    kind: 'never answered', make: (m) => new ClusterConfigError(m),
    why: 'it refuses the start of a cluster node (topics or options that do not match)',
  }],
  // src/kafka/errors.ts: none reaches a gRPC client.
  [KafkaError, { kind: 'base', make: (m) => new (class extends KafkaError {})(m) }],
  kafka_side(UnknownEventTypeError),
  kafka_side(InvalidEventPayloadError),
  kafka_side(InvalidTopicPrefixError),
  kafka_side(InvalidBrokerListError),
  // src/cluster/forward_errors.ts: made on the main thread of the first node or of the owner
  // (those the owner sends back are revived by revive_forwarded: see the test below).
  main_thread(NotOwnerError, status.UNAVAILABLE),
  main_thread(PartitionMovingError, status.UNAVAILABLE),
  main_thread(PeerUnavailableError, status.UNAVAILABLE),
  main_thread(PeerAuthError, status.UNAVAILABLE),
  main_thread(ForwardDeadlineExceededError, status.DEADLINE_EXCEEDED),
  main_thread(ForwardsInFlightExceededError, status.RESOURCE_EXHAUSTED,
    'forwards_in_flight_per_peer'),
  main_thread(ForwardMessageTooLargeError, status.RESOURCE_EXHAUSTED, 'forward_message_bytes'),
  // src/grpc/errors.ts: WatchAvailability's limits, made by the hub on the main thread.
  main_thread(WatchStreamsExceededError, status.RESOURCE_EXHAUSTED, 'watch_streams_max'),
  main_thread(WatchReaderTooSlowError, status.RESOURCE_EXHAUSTED, 'watch_stream_backlog_max'),
  // src/actors/errors.ts, issue 16: the waiting room's refusals, decided by the partition.
  worker(QueueNotFoundError, status.NOT_FOUND),
  worker(QueueNotOpenError, status.FAILED_PRECONDITION),
  worker(QueueFullError, status.RESOURCE_EXHAUSTED, 'queue_entries'),
  worker(QueueConfigConflictError, status.FAILED_PRECONDITION),
  worker(QueueAdmissionRequiredError, status.FAILED_PRECONDITION),
  worker(AdmissionTokenInvalidError, status.PERMISSION_DENIED),
  worker(AdmissionTokenUsedError, status.FAILED_PRECONDITION),
  worker(AdmissionTokenExpiredError, status.FAILED_PRECONDITION),
  // src/grpc/errors.ts: WatchPosition's stream cap, made on the main thread.
  main_thread(QueueWatchStreamsExceededError, status.RESOURCE_EXHAUSTED,
    'queue_watch_streams_max'),
];
/** Made on the owner node and sent back in a forward's reply (besides every class that crosses
 *  from a worker, which the owner's pool revived and sends on). */
const from_owner: readonly ErrorClass[] = [
  NotOwnerError, ForwardsInFlightExceededError, ForwardMessageTooLargeError,
  ForwardDeadlineExceededError,
];
const fates = new Map<ErrorClass, Fate>(fate_entries);

function is_error_class(value: unknown): value is ErrorClass {
  return typeof value === 'function' && value.prototype instanceof Error;
}

/** Every exported subclass of Error of the modules above, with where it is exported. */
function exported_error_classes(): { where: string; name: string; Class: ErrorClass }[] {
  const found: { where: string; name: string; Class: ErrorClass }[] = [];
  for (const [where, module] of Object.entries(modules)) {
    for (const [name, value] of Object.entries(module)) {
      if (is_error_class(value)) found.push({ where, name, Class: value });
    }
  }
  return found;
}

/** The pool's revival, with the revive option exactly as the node passes it. */
function revive(wire: WireError): Error {
  return revive_wire_error(wire, revive_node_error);
}

test('every exported error class has a fate, and every fate is of an exported class', () => {
  const found = exported_error_classes();
  assert.ok(found.length >= fates.size, 'the enumeration finds the classes');
  for (const { where, name, Class } of found) {
    assert.ok(fates.has(Class), `${name} (${where}) has no fate in test/grpc/status.test.ts`);
    assert.is(Class.name, name, `${where} exports ${Class.name} as ${name}`);
  }
  const exported = new Set(found.map((f) => f.Class));
  for (const Class of fates.keys()) assert.ok(exported.has(Class), `${Class.name} is exported`);
  assert.is(exported.size, fates.size, 'one fate per exported class');
  assert.is(fate_entries.length, fates.size, 'no class given two fates');
});

test('every answered class maps to its code (never INTERNAL), with its message', () => {
  for (const [Class, fate] of fates) {
    if (fate.kind !== 'answered') continue;
    const error = fate.make(`a ${Class.name}`);
    assert.ok(error instanceof Class, `${Class.name}: make builds one`);
    assert.is(error.name, Class.name, `${Class.name}: the name on the wire and in logs`);
    assert.is.not(fate.code, status.INTERNAL, `${Class.name}: an expected refusal`);
    const answer = { code: fate.code, details: `a ${Class.name}`, internal: false };
    assert.equal(map_error(error), answer, Class.name);
  }
});

test('limit refusals map to their limit label, and no other class has one', () => {
  let limits = 0;
  for (const [Class, fate] of fates) {
    const error = fate.make('refused');
    const limit = fate.kind === 'answered' ? fate.limit : undefined;
    assert.is(limit_of(error), limit, Class.name);
    if (limit !== undefined) limits++;
  }
  assert.is(limits, 16,
    'six domain limits, the mailbox, the deadline, the rate limit, two forwarding limits, '
    + 'two watch limits, the hold extension caps, the queue entries, the queue watch streams');
  assert.is(limit_of(new RateLimitedError('ip', 250, 'slow down')), 'rate_ip', 'labelled by scope');
  assert.is(limit_of('not an error'), undefined);
});

const internal = { code: status.INTERNAL, details: internal_error_message, internal: true };

test('classes that never reach a client, and bases, are INTERNAL if they ever do', () => {
  for (const [Class, fate] of fates) {
    if (fate.kind === 'answered') continue;
    const error = fate.make('leaked');
    assert.ok(error instanceof Class, `${Class.name}: make builds one`);
    const why = fate.kind === 'base' ? 'a subclass without an entry of its own' : fate.why;
    assert.equal(map_error(error), internal, `${Class.name}: ${why}`);
  }
});

test('errors from a worker come back as their own class, with their message', () => {
  let crossing = 0;
  for (const [Class, fate] of fates) {
    if (fate.kind !== 'answered' || !fate.crosses) continue;
    crossing++;
    const revived = revive(error_to_wire(fate.make(`a ${Class.name} from a worker`)));
    assert.is(revived.constructor, Class, `${Class.name} revived as itself`);
    assert.is(revived.message, `a ${Class.name} from a worker`, Class.name);
    assert.is(map_error(revived).code, fate.code, Class.name);
    assert.is(limit_of(revived), fate.limit, Class.name);
  }
  assert.is(crossing, 38,
    'the 31 domain refusals (8 of the waiting room), the 5 runtime ones, the 2 of the journal writer');
});

test('errors from the owner node come back through a forward as their own class', () => {
  let crossing = 0;
  for (const [Class, fate] of fates) {
    if (fate.kind !== 'answered') continue;
    if (!fate.crosses && !from_owner.includes(Class)) continue;
    crossing++;
    const wire = error_to_wire(fate.make(`a ${Class.name} from the owner`));
    const revived = revive_forwarded(wire, revive_node_error);
    assert.is(revived.constructor, Class, `${Class.name} revived as itself`);
    assert.is(revived.message, `a ${Class.name} from the owner`, Class.name);
    assert.is(map_error(revived).code, fate.code, Class.name);
  }
  assert.is(crossing, 42, 'the 38 that cross from a worker, the 4 the owner makes');
  const made_here = revive_forwarded(error_to_wire(new PartitionMovingError('x')), () => undefined);
  assert.is(map_error(made_here).code, status.INTERNAL, 'the first node makes its own');
});

test('a name no one revives stays a bug: a plain Error with that name, INTERNAL', () => {
  for (const [Class, fate] of fates) {
    if (fate.kind === 'answered' && fate.crosses) continue;
    const revived = revive(error_to_wire(fate.make('from a worker')));
    assert.not.ok(revived instanceof Class, `${Class.name}: not made on a worker, not revived`);
    assert.is(map_error(revived).code, status.INTERNAL, Class.name);
  }
  const unknown = revive({ name: 'NoSuchError', message: 'what' });
  assert.is(unknown.constructor, Error);
  assert.equal([unknown.name, unknown.message], ['NoSuchError', 'what'], 'kept for the log');
  assert.equal(map_error(unknown), internal);
  const runtime_name = revive_domain_error('WorkerUnavailableError', 'x');
  assert.is(runtime_name, undefined, 'the pool revives its own');
});

test('map_error: a non-Error and a plain Error are INTERNAL with the fixed message', () => {
  assert.equal(map_error('boom'), internal);
  assert.equal(map_error(undefined), internal);
  const named = Object.assign(new Error('named like one'), { name: 'InvalidArgumentError' });
  assert.equal(map_error(named), internal, 'a name alone is not the class');
});

test.run();

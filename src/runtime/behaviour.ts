// The contract between the runtime and whatever state machine it hosts. The runtime owns
// threads, mailboxes, durability and timers; a behaviour owns meaning. A behaviour's decide()
// must not mutate state: every change is a record passed to apply(), so replaying the journal
// after a crash runs exactly the code that ran the first time.
import { assert } from '../util/assert.js';
import type { Rejection } from './errors.js';

export interface DecideContext {
  readonly partition: number;
  readonly now_ms: number;
  random_bytes(count: number): Uint8Array;
}

export interface OutboxEntry {
  /** Event type, e.g. the message's short name. */
  type: string;
  /** Ordering key on the bus (entity id). */
  key: string;
  payload: Record<string, unknown>;
}

/** What a decision changes: records to journal and apply, entries for the outbox. */
export interface Effects<Rec> {
  records: Rec[];
  outbox: OutboxEntry[];
}

/**
 * A decided request: its effects, and either a reply or a refusal. A refusal here is for a
 * request refused *with* records (e.g. an authorization voided because its order was cancelled
 * meanwhile): the host journals the records, then answers with the refusal exactly as it
 * answers a thrown rejection. A refusal without records is simply thrown.
 */
export type Decision<Rec, Reply = unknown> =
  | (Effects<Rec> & { reply: Reply; refusal?: never })
  | (Effects<Rec> & { refusal: Rejection; reply?: never });

/** A request protocol: for each request kind, the body it carries and the reply it gets. */
export interface Exchange {
  request: object;
  reply: unknown;
}
export type Protocol<P> = { [K in keyof P]: Exchange };

/** The message of kind K as it crosses to a worker: the body tagged with its kind. */
export type RequestFor<P extends Protocol<P>, K extends keyof P> =
  { [J in keyof P]: { k: J } & P[J]['request'] }[K];
/** Every message of the protocol: a tagged union on `k`. */
export type RequestOf<P extends Protocol<P>> = RequestFor<P, keyof P>;
export type ReplyOf<P extends Protocol<P>, K extends keyof P> = P[K]['reply'];

/** One decide function per request kind. Each must return its kind's reply type, so a reply
 *  that drifts from the protocol map fails to compile where the table is written. */
export type Handlers<S, P extends Protocol<P>, Rec> = {
  [K in keyof P]: (
    state: S, request: RequestFor<P, K>, ctx: DecideContext,
  ) => Decision<Rec, P[K]['reply']>;
};

/** The decision of a request that changes nothing. */
export function read<Reply>(reply: Reply): Decision<never, Reply> {
  return { records: [], outbox: [], reply };
}

/** A decision that journals `records` (and `outbox`) and still refuses the request. */
export function refuse<Rec>(
  refusal: Rejection, records: Rec[], outbox: OutboxEntry[] = [],
): Decision<Rec, never> {
  assert(refusal.rejection, 'a refusal is a rejection');
  return { records, outbox, refusal };
}

/** Runs the handler of the request's kind. An unknown kind is a bug of the sender (an
 *  AssertionError: the worker dies, as for any bug). */
export function dispatch<S, P extends Protocol<P>, Rec, K extends keyof P>(
  handlers: Handlers<S, P, Rec>, state: S, request: RequestFor<P, K>, ctx: DecideContext,
): Decision<Rec, P[K]['reply']> {
  const kind = request.k;
  // Own keys only: a kind such as 'toString' must not reach Object.prototype.
  assert(Object.hasOwn(handlers, kind), `unreachable request kind: ${JSON.stringify(kind)}`);
  return handlers[kind](state, request, ctx);
}

export interface PartitionBehaviour<State, Req, Rec> {
  create(partition: number): State;
  /** Throws a Rejection for a request refused without records; one refused with records
   *  returns a refusal decision (see Decision). Must not mutate state. */
  decide(state: State, request: Req, ctx: DecideContext): Decision<Rec>;
  apply(state: State, record: Rec): void;
  snapshot(state: State): unknown;
  restore(partition: number, snapshot: unknown): State;
  /** Earliest time at which fire_timers has work, or null. */
  next_deadline_ms(state: State): number | null;
  /** Timers answer nobody: their decision has effects only. */
  fire_timers(state: State, ctx: DecideContext): Effects<Rec>;
  /** Gauges the runtime reports upward (e.g. active holds). Names are the behaviour's. */
  gauges(state: State): Record<string, number>;
  /** Optional whole-state consistency check: throws if the state breaks the behaviour's own
   *  invariants. Called once per load of a partition (snapshot restore + journal replay), never
   *  per request, so it may cost O(state). A throw stops the worker: a journal that replays
   *  into a wrong state is never served. */
  check?(state: State): void;
}

export interface BehaviourModule {
  behaviour: PartitionBehaviour<unknown, unknown, unknown>;
}

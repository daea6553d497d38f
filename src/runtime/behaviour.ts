// The contract between the runtime and whatever state machine it hosts. The runtime owns
// threads, mailboxes, durability and timers; a behaviour owns meaning. A behaviour's decide()
// must not mutate state: every change is a record passed to apply(), so replaying the journal
// after a crash runs exactly the code that ran the first time.

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

export interface Decision<Rec> {
  records: Rec[];
  outbox: OutboxEntry[];
  reply: unknown;
}

export interface PartitionBehaviour<State, Req, Rec> {
  create(partition: number): State;
  /** Throws a Rejection for refused requests. Must not mutate state. */
  decide(state: State, request: Req, ctx: DecideContext): Decision<Rec>;
  apply(state: State, record: Rec): void;
  snapshot(state: State): unknown;
  restore(partition: number, snapshot: unknown): State;
  /** Earliest time at which fire_timers has work, or null. */
  next_deadline_ms(state: State): number | null;
  fire_timers(state: State, ctx: DecideContext): Decision<Rec>;
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

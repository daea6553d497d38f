// Which partition owns a ticketing request, by kind: an event's requests go to the partition its
// id hashes to; a request naming an issued id (hold, order, payment) goes to the partition the id
// encodes. Callers name the kind and the request, never the routing field:
// `router.call('authorize_end', { payment_id, outcome })`. Broadcast kinds (every partition
// answers for its own part) are asked one partition at a time with call_partition.
// May import src/actors and src/runtime only: the edge (src/grpc) and the purchase flow
// (src/purchase) both drive it.
import { partition_of_id } from '../actors/ids.js';
import type { TicketingProtocol, TicketingRequest } from '../actors/protocol.js';
import { assert } from '../util/assert.js';
import { ProtocolClient, type RequestSink } from '../runtime/client.js';
import { partition_of } from '../runtime/partition.js';

type P = TicketingProtocol;
/** Kinds every partition answers for its own part: the caller merges. */
export type BroadcastKind = 'list_orders' | 'open_settlements' | 'pace_queues';
export type RoutedKind = Exclude<keyof P, BroadcastKind>;

/** Fields of R holding a string: the only ones a request can be routed by. */
type StringField<R> = { [F in keyof R]: R[F] extends string ? F : never }[keyof R] & string;

/** `event`: hash of the event id in that field. `id`: the partition encoded in an issued id of
 *  that kind (ids.ts), refused as InvalidArgumentError naming the field when it is not one. */
type Owner<R> =
  | { event: StringField<R> } | { id: 'hold' | 'order' | 'pay' | 'ticket'; field: StringField<R> };

const owners: { [K in RoutedKind]: Owner<P[K]['request']> } = {
  create_event: { event: 'event_id' },
  get_event: { event: 'event_id' },
  availability: { event: 'event_id' },
  reserve: { event: 'event_id' },
  create_draft: { event: 'event_id' },
  release: { id: 'hold', field: 'hold_id' },
  confirm: { id: 'hold', field: 'hold_id' },
  score: { id: 'order', field: 'order_id' },
  confirm_order: { id: 'order', field: 'order_id' },
  get_order: { id: 'order', field: 'order_id' },
  authorize_begin: { id: 'order', field: 'order_id' },
  authorize_end: { id: 'pay', field: 'payment_id' },
  capture: { id: 'pay', field: 'payment_id' },
  refund_begin: { id: 'pay', field: 'payment_id' },
  settle: { id: 'pay', field: 'payment_id' },
  begin_void: { id: 'pay', field: 'payment_id' },
  reserve_best: { event: 'event_id' },
  reserve_ga: { event: 'event_id' },
  extend_hold: { id: 'hold', field: 'hold_id' },
  create_draft_from_hold: { id: 'hold', field: 'hold_id' },
  return_seats: { id: 'order', field: 'order_id' },
  watch_changes: { event: 'event_id' },
  configure_queue: { event: 'event_id' },
  set_admission_rate: { event: 'event_id' },
  close_queue: { event: 'event_id' },
  join_queue: { event: 'event_id' },
  queue_position: { id: 'ticket', field: 'ticket_id' },
  queue_fairness: { event: 'event_id' },
};

export class Router {
  private readonly client: ProtocolClient<P>;

  constructor(sink: RequestSink<TicketingRequest>, readonly partition_count: number) {
    assert(Number.isInteger(partition_count) && partition_count >= 1, 'partition_count positive');
    this.client = new ProtocolClient<P>(sink);
  }

  /** Sends the request to the partition that owns it. Throws InvalidArgumentError at once (not
   *  as a rejected promise) when an issued id is malformed or names no partition of this node. */
  call<K extends RoutedKind>(kind: K, request: P[K]['request']): Promise<P[K]['reply']> {
    return this.client.call(this.owner_of(kind, request), kind, request);
  }

  /** A broadcast kind, asked of one partition. */
  call_partition<K extends BroadcastKind>(
    partition: number, kind: K, request: P[K]['request'],
  ): Promise<P[K]['reply']> {
    assert(partition < this.partition_count, 'partition of this node');
    return this.client.call(partition, kind, request);
  }

  /** The partition owning a request of `kind`. */
  owner_of<K extends RoutedKind>(kind: K, request: P[K]['request']): number {
    const owner: Owner<P[K]['request']> = owners[kind];
    const key: unknown = request['event' in owner ? owner.event : owner.field];
    // The table names string fields only; a non-string here is a caller's typing hole.
    assert(typeof key === 'string', `${kind} is routed by a string field`);
    const partition = 'event' in owner
      ? partition_of(key, this.partition_count)
      : partition_of_id(owner.id, key, this.partition_count, owner.field);
    assert(partition >= 0 && partition < this.partition_count, 'owner is a partition of this node');
    return partition;
  }
}

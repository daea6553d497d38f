// The outbox as seen from outside the worker that owns it: what the main thread sends to read a
// bounded batch of a worker's outbox entries, to acknowledge (delete) or park them, and the cap a
// worker enforces on its own outbox. Ticket-agnostic: type, key and payload mean nothing here.
import { assert } from '../util/assert.js';
import type { OutboxEntry } from './behaviour.js';

/** An outbox entry as stored (store_outbox.ts) and read back (store_reader.ts, the emitter). */
export interface OutboxRecord extends OutboxEntry {
  /** Unique and stable across retries: consumers deduplicate on it. */
  event_id: string;
  created_ms: number;
}

/** Entries one outbox_read returns at most, all partitions of the read together. */
export const outbox_read_batch_max = 2_000;
/** Sequence numbers one outbox_ack names at most (acknowledged plus parked, all partitions). */
export const outbox_ack_seqs_max = outbox_read_batch_max;
/** Entries one cap pass deletes per partition at most: a pass is one bounded transaction, and
 *  the next pass (outbox_trim_interval_ms later) continues where it stopped. */
export const outbox_trim_batch_max = 10_000;
export const outbox_trim_interval_ms = 1_000;
/** Delivered entries are deleted with their store's next commit, or after this long by a
 *  transaction of their own when no commit comes (an idle node). */
export const outbox_delivered_flush_ms = 200;

/** Read a partition's entries with seq > after_seq (0: from the oldest). */
export interface OutboxCursor {
  partition: number;
  after_seq: number;
}

export interface OutboxReadRequest {
  /** Partitions owned by the worker, read in this order (the reader rotates it, for fairness). */
  cursors: OutboxCursor[];
  /** Entries in the whole reply, 1..outbox_read_batch_max. */
  limit: number;
  /** Entries from one partition, 1..limit: a backlog in one partition cannot starve the rest. */
  limit_per_partition: number;
  /** Move parked entries of these partitions back into the outbox first (a reader that may now
   *  know their type gets them again). */
  requeue_parked: boolean;
}

/** As it crosses the thread boundary: the record still packed, as it is stored. */
export interface OutboxEntryWire {
  partition: number;
  seq: number;
  value: Uint8Array;
}

export interface OutboxReadWire {
  entries: OutboxEntryWire[];
  requeued: number;
}

/** One stored outbox record and where it lives. */
export interface OutboxItem {
  partition: number;
  seq: number;
  record: OutboxRecord;
}

export interface OutboxReadReply {
  /** Per partition in seq order; partitions in the order of the request's cursors. */
  entries: OutboxItem[];
  /** Parked entries moved back by requeue_parked. */
  requeued: number;
}

/** Delete `seqs` (delivered) and move `park` (undeliverable) aside, for one partition. */
export interface OutboxAck {
  partition: number;
  seqs: number[];
  park: number[];
}

export interface OutboxAckReply {
  /** Entries marked delivered (an entry already gone, e.g. trimmed at the cap, is not counted).
   *  They are deleted on disk with the store's next transaction: a crash before it only means
   *  they are read, and delivered, again. */
  removed: number;
  /** Entries moved aside, durably, before the reply. */
  parked: number;
}

/**
 * What the node keeps at most. Entries beyond either bound are deleted oldest first and
 * counted; the owner of the runtime decides when a cap applies (see src/kafka/start.ts).
 *
 * entries_max is node-wide. Each worker keeps its share, entries_max × (its partitions /
 * partition_count), and deletes oldest first across all of its partitions (worker_share()):
 * one busy partition may hold its worker's whole share. The node total never exceeds
 * entries_max by more than what arrives between two trim passes (outbox_trim_interval_ms) plus
 * what a pass cannot delete (outbox_trim_batch_max per worker per pass). With one worker (the
 * default on 2 cores) that is exactly node-wide oldest first; with W workers, oldest first holds
 * within each worker, and a single busy partition keeps at most ≈ entries_max / W.
 */
export interface OutboxCap {
  entries_max: number;
  /** null: no age bound. */
  age_ms: number | null;
}

/** One partition's bounds, as PartitionStore.trim_outbox (store_outbox.ts) applies them. */
export interface PartitionOutboxCap {
  entries_per_partition: number;
  age_ms: number | null;
}

/** A worker's part of the node-wide entries_max (at least 1). */
export function worker_share(entries_max: number, partitions_owned: number, partition_count: number): number {
  assert(partitions_owned >= 1 && partitions_owned <= partition_count, 'a worker owns some of the partitions');
  return Math.max(1, Math.floor((entries_max * partitions_owned) / partition_count));
}

export interface OutboxTrimmed {
  count: number;
  age: number;
}

export function check_read_request(request: OutboxReadRequest): void {
  assert(request.cursors.length > 0, 'outbox_read names a partition');
  assert(Number.isInteger(request.limit) && request.limit >= 1 && request.limit <= outbox_read_batch_max, 'outbox_read limit within outbox_read_batch_max');
  assert(Number.isInteger(request.limit_per_partition) && request.limit_per_partition >= 1 && request.limit_per_partition <= request.limit, 'outbox_read limit_per_partition within limit');
  const seen = new Set<number>();
  for (const cursor of request.cursors) {
    assert(Number.isInteger(cursor.after_seq) && cursor.after_seq >= 0, 'outbox cursor after_seq non-negative');
    assert(!seen.has(cursor.partition), 'outbox_read names each partition once');
    seen.add(cursor.partition);
  }
}

export function check_acks(acks: OutboxAck[]): void {
  let seqs = 0;
  const seen = new Set<number>();
  for (const ack of acks) {
    assert(!seen.has(ack.partition), 'outbox_ack names each partition once');
    seen.add(ack.partition);
    for (const seq of [...ack.seqs, ...ack.park]) assert(Number.isInteger(seq) && seq >= 1, 'outbox seq positive');
    seqs += ack.seqs.length + ack.park.length;
  }
  assert(seqs <= outbox_ack_seqs_max, 'outbox_ack within outbox_ack_seqs_max');
}

export function check_cap(cap: OutboxCap): void {
  assert(Number.isInteger(cap.entries_max) && cap.entries_max >= 1, 'outbox cap entries positive');
  assert(cap.age_ms === null || (Number.isInteger(cap.age_ms) && cap.age_ms >= 1), 'outbox cap age positive or none');
}

// Messages between the main thread and a worker: a tagged union, every request with an id.
// Batches travel msgpackr-encoded in a transferred buffer, so one postMessage carries many.
import type { OutboxEntry } from './behaviour.js';
import { packr } from './codec.js';
import type { WireError } from './errors.js';
import type { OutboxAck, OutboxAckReply, OutboxCap, OutboxReadRequest } from './outbox.js';

/** Where a worker's commits go: its LMDB stores (single node), or the main thread (cluster). */
export type JournalMode = 'local' | 'remote';

/** One commit of one partition, worker → main (remote journal). */
export interface JournalWire {
  partition: number;
  /** packr.pack(records: Rec[]) of this commit, or null when it carries none. */
  records: Uint8Array | null;
  /** The commit's outbox entries, in decision order (event ids are given by the writer). */
  outbox: OutboxEntry[];
  /** The worker clock at commit (created_ms of the events). */
  now_ms: number;
  /** packr.pack(behaviour.snapshot(state)) taken AFTER applying `records`, or null. */
  snapshot: Uint8Array | null;
}

/** What a partition is restored from, main → worker (remote journal). */
export interface AdoptWire {
  partition: number;
  /** A `snapshot` buffer as once sent in a JournalWire, or null: start from create(). */
  snapshot: Uint8Array | null;
  /** `records` buffers as once sent in JournalWires after that snapshot, in journal order. */
  segments: Uint8Array[];
}

export interface WorkerConfig {
  worker_index: number;
  /** Local: the partitions the worker recovers from disk. Remote: [] (partitions are adopted). */
  partitions: number[];
  journal: JournalMode;
  partition_count: number;
  data_dir: string;
  behaviour_url: string;
  clock_offset_ms: number;
  snapshot_every_records: number;
  store_count: number;
  node_id: string;
  /** Bounds the worker keeps its outbox within (null: unbounded). */
  outbox_cap: OutboxCap | null;
  /** The most live data one store may hold (--store-map-bytes). */
  store_map_bytes: number;
  /** How often a store that refuses writes for want of space is checked again. */
  storage_probe_interval_ms: number;
  /** Tests only: deterministic randomness. */
  random_seed?: number;
}

export interface WireRequest {
  id: number;
  partition: number;
  body: unknown;
}

export type WireReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: WireError };

export interface WorkerStats {
  commit_durations_s: number[];
  batch_records: number[];
  gauges: Record<string, number>;
  /** Increments since the previous report. */
  counters: Record<string, number>;
  /** Why writes are refused (storage-full mode), one sentence per store; empty: writes go. */
  storage: string[];
}

// Outbox messages (outbox_read, outbox_ack) carry their own ids, answered by the reply of the
// same id; they bypass the mailbox (they are the main thread's reader, not client requests).
export type ToWorker =
  | { tag: 'batch'; bytes: Uint8Array }
  | { tag: 'clock'; offset_ms: number }
  | { tag: 'outbox_read'; id: number; request: OutboxReadRequest }
  | { tag: 'outbox_ack'; id: number; acks: OutboxAck[] }
  /** Remote journal: restore encode(AdoptWire)'s partition and serve it; answered 'adopted'. */
  | { tag: 'adopt'; id: number; bytes: Uint8Array }
  /** Remote journal: forget the partition at once; answered 'released'. */
  | { tag: 'release'; id: number; partition: number }
  /** Remote journal: the outcome of the worker's 'journal' message of the same id. */
  | { tag: 'journaled'; id: number; ok: true }
  | { tag: 'journaled'; id: number; ok: false; error: WireError }
  | { tag: 'close' };

export type FromWorker =
  | { tag: 'ready'; recovered_partitions: number; replayed_records: number }
  | { tag: 'replies'; bytes: Uint8Array }
  | { tag: 'stats'; stats: WorkerStats }
  /** encode(OutboxReadWire): records stay packed as stored, decoded by the pool. */
  | { tag: 'outbox_entries'; id: number; bytes: Uint8Array }
  | { tag: 'outbox_acked'; id: number; reply: OutboxAckReply }
  /** An outbox entry became durable after a read had found the outbox empty. */
  | { tag: 'outbox_ready' }
  | { tag: 'adopted'; id: number; partition: number; ok: true; replayed_records: number }
  | { tag: 'adopted'; id: number; partition: number; ok: false; error: WireError }
  | { tag: 'released'; id: number }
  /** Remote journal: encode(JournalWire), one commit of one partition; answered 'journaled'. */
  | { tag: 'journal'; id: number; bytes: Uint8Array }
  | { tag: 'closed' };

export function encode(value: unknown): Uint8Array {
  // pack() returns a view into a shared buffer; copy so the transfer owns its memory.
  return new Uint8Array(packr.pack(value));
}

export function decode<T>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}

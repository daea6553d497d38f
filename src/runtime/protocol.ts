// Messages between the main thread and a worker: a tagged union, every request with an id.
// Batches travel msgpackr-encoded in a transferred buffer, so one postMessage carries many.
import { packr } from './codec.js';
import type { WireError } from './errors.js';
import type { OutboxAck, OutboxAckReply, OutboxCap, OutboxReadRequest } from './outbox.js';

export interface WorkerConfig {
  worker_index: number;
  partitions: number[];
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
  | { tag: 'closed' };

export function encode(value: unknown): Uint8Array {
  // pack() returns a view into a shared buffer; copy so the transfer owns its memory.
  return new Uint8Array(packr.pack(value));
}

export function decode<T>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}

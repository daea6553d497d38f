// Messages between the main thread and a worker: a tagged union, every request with an id.
// Batches travel msgpackr-encoded in a transferred buffer, so one postMessage carries many.
import { Packr } from 'msgpackr';
import type { WireError } from './errors.js';

export const packr = new Packr({ moreTypes: true, structuredClone: false });

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
  counters: Record<string, number>;
}

export type ToWorker =
  | { tag: 'batch'; bytes: Uint8Array }
  | { tag: 'clock'; offset_ms: number }
  | { tag: 'close' };

export type FromWorker =
  | { tag: 'ready'; recovered_partitions: number; replayed_records: number }
  | { tag: 'replies'; bytes: Uint8Array }
  | { tag: 'stats'; stats: WorkerStats }
  | { tag: 'closed' };

export function encode(value: unknown): Uint8Array {
  // pack() returns a view into a shared buffer; copy so the transfer owns its memory.
  return new Uint8Array(packr.pack(value));
}

export function decode<T>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}

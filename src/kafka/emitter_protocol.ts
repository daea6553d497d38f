// Messages between the main thread (emitter_host.ts) and the emitter's own thread
// (emitter_thread.ts). Per round a few control calls and metric reports cross; no event does.
import type { OutboxAck, OutboxReadRequest } from '../runtime/outbox.js';
import type { OutboxStoresConfig } from '../runtime/outbox_reader.js';
import type { EmitterStatus } from './emitter.js';

export interface EmitterThreadConfig {
  stores: OutboxStoresConfig;
  brokers: string[];
  client_id: string;
  topic_prefix: string;
  request_timeout_ms: number;
  ack_timeout_ms: number;
  send_unanswered_ms_max: number;
  /** The main logger's level: lines below it are not sent across at all. */
  log_level: string;
  /** Tests only (the defaults are emitter.ts's). */
  send_records_max?: number;
  retry_delay_ms?: number;
  retry_delay_ms_max?: number;
  idle_poll_ms?: number;
  stop_wait_ms?: number;
  topic_partitions?: number;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** The metrics the emitter reports (emitter.ts EmitterMetrics), by name. */
export type MetricReport =
  | { name: 'kafka_errors' | 'kafka_sends_unanswered' }
  | { name: 'kafka_sent' | 'kafka_send_records' | 'kafka_send_duration'; value: number }
  | { name: 'outbox_parked'; reason: string };

export type ToEmitterThread =
  | { tag: 'worker_ready' | 'outbox_ready'; worker: number }
  | { tag: 'reply'; id: number; ok: true; value: unknown }
  | { tag: 'reply'; id: number; ok: false; error: string }
  | { tag: 'stop' };

export type FromEmitterThread =
  | { tag: 'call'; id: number; op: 'read'; worker: number; request: OutboxReadRequest }
  | { tag: 'call'; id: number; op: 'ack'; worker: number; acks: OutboxAck[] }
  | { tag: 'log'; level: LogLevel; fields: Record<string, unknown> | undefined; msg: string | undefined }
  | { tag: 'metric'; report: MetricReport }
  | { tag: 'status'; status: EmitterStatus }
  | { tag: 'started'; event_types: string[] }
  | { tag: 'stopped' };

/** pino's numeric levels, for filtering in the thread. */
export const log_level_values: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

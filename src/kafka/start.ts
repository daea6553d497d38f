// The node's outbox policy and its Kafka emitter, as src/node/serve.ts wires them in (their
// defaults: serve_defaults in src/node/config.ts).
//
// Outbox cap (what a worker keeps at most, oldest deleted first, counted in
// ticketing_outbox_dropped_total{reason} and logged at warn):
// - no broker (--kafka unset): nobody will ever read the outbox, so it is bounded like a log:
//   --outbox-max-entries across the node (oldest first across partitions; see OutboxCap for
//   how workers share it and the bound on overshoot) and
//   --outbox-max-age. `ticketing outbox tail` shows what is there.
// - with a broker: nothing is dropped by age, and by count only at outbox_entries_hard_max, a
//   safety bound far above any outage the node is sized for (it keeps the LMDB map from filling
//   up, which would stop every commit); an outage never drops events short of it.
// A client request never fails because of the outbox: the cap deletes, it never refuses.
import type { Logger } from 'pino';
import type { Metrics } from '../ops/metrics.js';
import type { OutboxCap } from '../runtime/outbox.js';
import type { WorkerPool } from '../runtime/pool.js';
import { kafka_send_unanswered_ms_limit, kafka_send_unanswered_ms_min, type EmitterStatus } from './emitter.js';
import { EmitterThread } from './emitter_host.js';
import type { EmitterThreadConfig } from './emitter_protocol.js';
import { check_kafka_timeouts } from './sink.js';
import { check_topic_prefix, parse_brokers } from './topics.js';

export interface OutboxConfig {
  /** Comma-separated HOST:PORT list; undefined: events stay in the outbox (capped). */
  kafka_brokers: string | undefined;
  kafka_topic_prefix: string;
  /** Without a broker: entries kept across the node, oldest first across partitions. */
  outbox_max_entries: number;
  /** Without a broker: entries older than this are deleted. */
  outbox_max_age_s: number;
  /** With a broker: /readyz reports degraded while the oldest entry is older than this. */
  outbox_degraded_after_s: number;
  /** kafkajs's wait for the answer to one request (sink.ts). */
  kafka_request_timeout_ms: number;
  /** The broker's wait for the in-sync replicas' acknowledgements (sink.ts). */
  kafka_ack_timeout_ms: number;
  /** A send unanswered this long counts as failing (emitter.ts). */
  kafka_send_unanswered_ms_max: number;
}

/** With a broker, the only count bound: about 5 GB of outbox at ~250 bytes an event, hours of
 *  the node's peak event rate. */
export const outbox_entries_hard_max = 20_000_000;

export function outbox_cap_of(config: OutboxConfig, _partition_count: number): OutboxCap {
  return {
    entries_max: config.kafka_brokers === undefined ? config.outbox_max_entries : outbox_entries_hard_max,
    age_ms: config.kafka_brokers === undefined ? config.outbox_max_age_s * 1000 : null,
  };
}

/** Refuses bad Kafka settings before anything starts. */
export function check_outbox_config(config: OutboxConfig): void {
  if (config.kafka_brokers !== undefined) parse_brokers(config.kafka_brokers);
  check_topic_prefix(config.kafka_topic_prefix);
  for (const [name, value] of [['outbox-max-entries', config.outbox_max_entries], ['outbox-max-age', config.outbox_max_age_s], ['outbox-degraded-after', config.outbox_degraded_after_s]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive whole number, got ${value}`);
  }
  check_kafka_timeouts(config.kafka_request_timeout_ms, config.kafka_ack_timeout_ms);
  const unanswered = config.kafka_send_unanswered_ms_max;
  if (!Number.isInteger(unanswered) || unanswered < kafka_send_unanswered_ms_min || unanswered > kafka_send_unanswered_ms_limit) {
    throw new Error(`--kafka-send-unanswered-max-ms must be a whole number of ms from ${kafka_send_unanswered_ms_min} to ${kafka_send_unanswered_ms_limit}, got ${unanswered}`);
  }
}

/** Tests only: shorter delays for the emitter's thread (emitter.ts has the defaults). */
export type EmitterTestOverrides = Pick<EmitterThreadConfig, 'send_records_max' | 'retry_delay_ms' | 'retry_delay_ms_max' | 'idle_poll_ms' | 'stop_wait_ms' | 'topic_partitions'>;

export interface RunningOutbox {
  /** Reasons /readyz reports the node degraded (empty: fine). */
  degraded(): string[];
  emitter: { status(): EmitterStatus } | undefined;
  /** Finishes or abandons the send in flight; call before the pool closes. */
  stop(): Promise<void>;
}

export function start_outbox(
  config: OutboxConfig, pool: WorkerPool, metrics: Metrics, log: Logger, node_id: string,
  overrides: EmitterTestOverrides = {},
): RunningOutbox {
  pool.on('stats', (worker, stats) => {
    const count = stats.counters['outbox_trimmed_count'] ?? 0;
    const age = stats.counters['outbox_trimmed_age'] ?? 0;
    if (count + age === 0) return;
    const fields = { worker, dropped_by_count: count, dropped_by_age: age };
    if (config.kafka_brokers === undefined) log.warn(fields, 'outbox entries dropped at the cap (no --kafka broker: events are kept up to --outbox-max-entries / --outbox-max-age)');
    else log.error({ ...fields, outbox_entries_hard_max }, 'outbox entries dropped unsent at the hard cap: the broker has been unreachable for very long');
  });
  if (config.kafka_brokers === undefined) {
    return { degraded: () => [], emitter: undefined, stop: async () => undefined };
  }
  // The emitter runs in a thread of its own (emitter_thread.ts): reading, encoding and sending
  // cost the main thread, which serves gRPC, a few messages per round instead of ~125 µs per event.
  const emitter = new EmitterThread(pool, {
    brokers: parse_brokers(config.kafka_brokers), client_id: `ticketing-${node_id}`, topic_prefix: config.kafka_topic_prefix,
    request_timeout_ms: config.kafka_request_timeout_ms, ack_timeout_ms: config.kafka_ack_timeout_ms,
    send_unanswered_ms_max: config.kafka_send_unanswered_ms_max, ...overrides,
  }, metrics, log);
  emitter.start();
  return {
    emitter,
    degraded: () => {
      const lag_s = metrics.outbox_lag_s;
      if (lag_s <= config.outbox_degraded_after_s) return [];
      const status = emitter.status();
      const why = status.failing ? `kafka sends failing: ${status.last_error ?? 'unknown error'}` : 'kafka sends are behind';
      return [`oldest outbox event is ${Math.round(lag_s)} s old (over --outbox-degraded-after ${config.outbox_degraded_after_s} s); ${why}`];
    },
    stop: () => emitter.stop(),
  };
}

// `ticketing serve` flags of the outbox and its Kafka emitter (README "Kafka"). What is not
// given keeps serve_defaults (src/node/config.ts).
import { parse_duration_seconds } from '../util/duration.js';
import { kafka_send_unanswered_ms_limit, kafka_send_unanswered_ms_min } from '../kafka/emitter.js';
import { kafka_timeout_ms_max, kafka_timeout_ms_min } from '../kafka/sink.js';
import type { OutboxConfig } from '../kafka/start.js';
import { check_topic_prefix, parse_brokers } from '../kafka/topics.js';
import { flag, int_flag, type Parsed } from './args.js';

export const outbox_flag_names = [
  'kafka', 'kafka-topic-prefix', 'outbox-max-entries', 'outbox-max-age', 'outbox-degraded-after',
  'kafka-request-timeout-ms', 'kafka-ack-timeout-ms', 'kafka-send-unanswered-max-ms',
];

function duration_flag(args: Parsed, name: string, env: string): number | undefined {
  const text = flag(args, name, env, undefined);
  if (text === undefined) return undefined;
  const seconds = parse_duration_seconds(text);
  if (seconds < 1) throw new Error(`--${name} must be at least 1 s`);
  return seconds;
}

export function outbox_flags(args: Parsed): Partial<OutboxConfig> & Pick<OutboxConfig, 'kafka_brokers'> {
  const kafka_brokers = flag(args, 'kafka', 'TICKETING_KAFKA_BROKERS', undefined);
  if (kafka_brokers !== undefined) parse_brokers(kafka_brokers);
  const prefix = flag(args, 'kafka-topic-prefix', 'TICKETING_KAFKA_TOPIC_PREFIX', undefined);
  if (prefix !== undefined) check_topic_prefix(prefix);
  const max_entries = int_flag(flag(args, 'outbox-max-entries', 'TICKETING_OUTBOX_MAX_ENTRIES', undefined), 'outbox-max-entries', 1, 1_000_000_000);
  const max_age_s = duration_flag(args, 'outbox-max-age', 'TICKETING_OUTBOX_MAX_AGE');
  const degraded_s = duration_flag(args, 'outbox-degraded-after', 'TICKETING_OUTBOX_DEGRADED_AFTER');
  // The ack <= request rule is checked with the rest by check_outbox_config.
  const request_timeout_ms = int_flag(flag(args, 'kafka-request-timeout-ms', 'TICKETING_KAFKA_REQUEST_TIMEOUT_MS', undefined), 'kafka-request-timeout-ms', kafka_timeout_ms_min, kafka_timeout_ms_max);
  const ack_timeout_ms = int_flag(flag(args, 'kafka-ack-timeout-ms', 'TICKETING_KAFKA_ACK_TIMEOUT_MS', undefined), 'kafka-ack-timeout-ms', kafka_timeout_ms_min, kafka_timeout_ms_max);
  const unanswered_ms = int_flag(flag(args, 'kafka-send-unanswered-max-ms', 'TICKETING_KAFKA_SEND_UNANSWERED_MAX_MS', undefined), 'kafka-send-unanswered-max-ms', kafka_send_unanswered_ms_min, kafka_send_unanswered_ms_limit);
  return {
    kafka_brokers,
    ...(prefix === undefined ? {} : { kafka_topic_prefix: prefix }),
    ...(max_entries === undefined ? {} : { outbox_max_entries: max_entries }),
    ...(max_age_s === undefined ? {} : { outbox_max_age_s: max_age_s }),
    ...(degraded_s === undefined ? {} : { outbox_degraded_after_s: degraded_s }),
    ...(request_timeout_ms === undefined ? {} : { kafka_request_timeout_ms: request_timeout_ms }),
    ...(ack_timeout_ms === undefined ? {} : { kafka_ack_timeout_ms: ack_timeout_ms }),
    ...(unanswered_ms === undefined ? {} : { kafka_send_unanswered_ms_max: unanswered_ms }),
  };
}

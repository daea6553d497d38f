// `ticketing serve` flags of the outbox and its Kafka emitter (README "Kafka"). What is not
// given keeps outbox_defaults (src/kafka/start.ts).
import { parse_duration_seconds } from '../auth/token.js';
import type { OutboxConfig } from '../kafka/start.js';
import { check_topic_prefix, parse_brokers } from '../kafka/topics.js';
import { flag, int_flag, type Parsed } from './args.js';

export const outbox_flag_names = ['kafka', 'kafka-topic-prefix', 'outbox-max-entries', 'outbox-max-age', 'outbox-degraded-after'];

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
  return {
    kafka_brokers,
    ...(prefix === undefined ? {} : { kafka_topic_prefix: prefix }),
    ...(max_entries === undefined ? {} : { outbox_max_entries: max_entries }),
    ...(max_age_s === undefined ? {} : { outbox_max_age_s: max_age_s }),
    ...(degraded_s === undefined ? {} : { outbox_degraded_after_s: degraded_s }),
  };
}

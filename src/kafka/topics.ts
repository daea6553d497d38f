// Topic names (docs/contracts.md "Kafka"): the configurable prefix followed by the event
// message's full name, e.g. "" + "ticketing.events.v1.OrderConfirmed". One topic per event type.
import { InvalidBrokerListError, InvalidTopicPrefixError } from './errors.js';

/** The protobuf package every outbox event type lives in; records carry the short name. */
export const events_package = 'ticketing.events.v1';
/** Kafka's limit on a topic name. */
export const topic_name_length_max = 249;
/** Longest event message name we allow for; the prefix must leave room for it. */
export const event_type_length_max = 64;
const topic_chars = /^[A-Za-z0-9._-]*$/;

export function full_name_of(type: string): string {
  return `${events_package}.${type}`;
}

export function topic_of(prefix: string, type: string): string {
  return `${prefix}${full_name_of(type)}`;
}

/** Refuses a prefix that would make a topic name Kafka rejects. */
export function check_topic_prefix(prefix: string): string {
  if (!topic_chars.test(prefix)) {
    throw new InvalidTopicPrefixError(`--kafka-topic-prefix may contain only letters, digits, '.', '_' and '-', got ${JSON.stringify(prefix)}`);
  }
  const room = topic_name_length_max - full_name_of('').length - event_type_length_max;
  if (prefix.length > room) throw new InvalidTopicPrefixError(`--kafka-topic-prefix is at most ${room} characters, got ${prefix.length}`);
  return prefix;
}

/** "host:9092,host2:9092" -> ["host:9092", "host2:9092"]; refuses anything else. */
export function parse_brokers(list: string): string[] {
  const brokers = list.split(',').map((b) => b.trim()).filter((b) => b !== '');
  if (brokers.length === 0) throw new InvalidBrokerListError('--kafka needs at least one HOST:PORT');
  for (const broker of brokers) {
    const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})$/.exec(broker);
    if (match === null || Number(match[2]) < 1 || Number(match[2]) > 65535) {
      throw new InvalidBrokerListError(`--kafka takes HOST:PORT[,HOST:PORT...], got ${JSON.stringify(broker)}`);
    }
  }
  return brokers;
}

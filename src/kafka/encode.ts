// Outbox record -> Kafka message (docs/contracts.md "Kafka"). Value: the protobuf binary of the
// event message named by the record's type (short name, package ticketing.events.v1), encoded with
// protobufjs from the .proto files in proto/ticketing/events/v1/ (every file there: a new event
// file needs no code change here). Key: the record's key. Headers: event-id (stable across retries,
// so consumers deduplicate on it), trace-id, content-type.
import protobuf from 'protobufjs';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { proto_root } from '../util/paths.js';
import type { OutboxRecord } from '../runtime/outbox.js';
import { InvalidEventPayloadError, UnknownEventTypeError } from './errors.js';
import { event_type_length_max, events_package, full_name_of, topic_of } from './topics.js';

export const content_type = 'application/x-protobuf';
const events_dir = 'ticketing/events/v1';
const type_pattern = new RegExp(`^[A-Z][A-Za-z0-9]{0,${event_type_length_max - 1}}$`);

export interface KafkaMessage {
  topic: string;
  key: string;
  value: Buffer;
  headers: { 'event-id': string; 'trace-id': string; 'content-type': string };
}

export class EventCodec {
  private readonly types = new Map<string, protobuf.Type>();

  constructor(root_dir: string = proto_root) {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => join(root_dir, target);
    const files = readdirSync(join(root_dir, events_dir)).filter((f) => f.endsWith('.proto')).sort();
    root.loadSync(files.map((f) => `${events_dir}/${f}`), { keepCase: true });
    root.resolveAll();
    const pkg = root.lookup(events_package);
    if (!(pkg instanceof protobuf.Namespace)) throw new Error(`package ${events_package} not found under ${root_dir}`);
    for (const nested of pkg.nestedArray) {
      if (nested instanceof protobuf.Type && type_pattern.test(nested.name)) this.types.set(nested.name, nested);
    }
  }

  /** Short names of every event message (one topic each). */
  known_types(): string[] {
    return [...this.types.keys()].sort();
  }

  private type_of(type: string): protobuf.Type {
    const found = typeof type === 'string' ? this.types.get(type) : undefined;
    if (found === undefined) {
      throw new UnknownEventTypeError(`no message ${full_name_of(String(type))} in proto/${events_dir}/*.proto`);
    }
    return found;
  }

  /** Protobuf binary of a record's payload; throws typed if its type or payload does not fit. */
  encode(type: string, payload: Record<string, unknown>): Buffer {
    const message_type = this.type_of(type);
    const problem = message_type.verify(payload);
    if (problem !== null) throw new InvalidEventPayloadError(`${full_name_of(type)} payload: ${problem}`);
    return Buffer.from(message_type.encode(message_type.fromObject(payload)).finish());
  }

  /** Decoded message as plain JSON-safe values (int64 as decimal strings, like proto3 JSON). */
  decode(type: string, bytes: Uint8Array): Record<string, unknown> {
    const message_type = this.type_of(type);
    return message_type.toObject(message_type.decode(bytes), { longs: String, enums: String, defaults: true, arrays: true });
  }

  /** The Kafka message for an outbox record. */
  to_message(record: OutboxRecord, topic_prefix: string): KafkaMessage {
    const trace_id = record.payload['trace_id'];
    return {
      topic: topic_of(topic_prefix, record.type),
      key: record.key,
      value: this.encode(record.type, record.payload),
      headers: { 'event-id': record.event_id, 'trace-id': typeof trace_id === 'string' ? trace_id : '', 'content-type': content_type },
    };
  }
}

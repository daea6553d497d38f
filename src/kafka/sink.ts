// The broker side of the emitter, with kafkajs: an idempotent producer (acks from all in-sync
// replicas, one request in flight per broker, so a retried batch cannot overtake the next and
// the broker drops its duplicate by sequence number), and the event topics created when missing.
// Connects lazily on the first send; a send that fails drops its producer (below), reset()
// drops it on request, and the next send starts a fresh one.
//
// Why a producer whose send failed is never used again (this lost acknowledged events):
// kafkajs numbers each partition's records itself (eosManager.getSequence/updateSequence) and,
// when a produce request fails, even by a client-side request timeout, it rewinds those numbers
// (src/producer/sendMessages.js: updateSequence(-n)). A timed-out request may still be written:
// a broker frozen (SIGSTOP, a long GC pause, a stalled disk) reads it and appends it when it
// resumes. If the same producer then sends *different* records with the rewound numbers (the
// emitter's next round reads other partitions first, and always at most send_records_max), the
// broker sees the same producer id, epoch and sequence range as a batch it already has, takes
// the new batch for a retry, writes nothing and answers success: the emitter deletes events that
// are on no topic. Kafka's duplicate detection is only right when a retry carries exactly the
// same records. So:
// - Across sends: after ANY failed send (timeout, error response, connection loss, even a
//   failure before any request went out) the producer is dropped. The next send creates a new
//   kafkajs producer: a new eosManager whose connect() calls InitProducerId (no transactional
//   id, so the broker allocates a new producer id) and whose sequences start at 0, so nothing
//   it sends can be taken for a duplicate of what the old one may still have written. The cost
//   is what at-least-once allows: a frozen batch that did land is written again by the fresh
//   producer, with the same event-id headers. (Reconnecting the old producer object would not
//   do: kafkajs keeps its producer id and sequences across disconnect/connect.)
// - Within one send, kafkajs retries (kafka_client_retries) re-send only what is unanswered,
//   regrouped from the same records by the partitioner, with the rewound numbers. That is a true
//   retry (same records, same order per partition: every event has a key, so the partition is
//   murmur2(key) % partition count) as long as the partition count stays the same; kafkajs
//   refreshes metadata between attempts, and a topic grown meanwhile would move keys and put
//   other records under the old numbers. pinned_partitioner() refuses that: a producer keeps
//   the partition count it first saw per topic and a changed count fails the send (not
//   retriable, kafkajs bails at once), so the next send uses a fresh producer.
// - acks=-1, so no request goes unanswered by design, and one request in flight per broker
//   (maxInFlightRequests 1; kafkajs also takes a per-broker lock around numbering and sending).
import { Kafka, logLevel, Partitioners, type ICustomPartitioner, type LogEntry, type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { KafkaMessage } from './encode.js';
import { KafkaError } from './errors.js';
import { topic_of } from './topics.js';

/** kafkajs' own retries inside one send are kept short: the emitter retries with backoff
 *  around them and counts every failed send, so an outage shows at once in the metrics. */
export const kafka_client_retries = 2;
export const kafka_connection_timeout_ms = 3_000;
/** Broker-side wait for the in-sync replicas' acknowledgements of one produce request
 *  (--kafka-ack-timeout-ms; at most the request timeout). */
export const kafka_ack_timeout_ms = 10_000;
/** Client-side wait for the answer to one request, before kafkajs retries it
 *  (--kafka-request-timeout-ms). A hung broker fails a send after about
 *  (kafka_client_retries + 1) × this; the emitter reports it failing sooner (emitter.ts). */
export const kafka_request_timeout_ms = 15_000;
/** Bounds of both flags: below 1 s a busy broker's normal answer would time out. */
export const kafka_timeout_ms_min = 1_000;
export const kafka_timeout_ms_max = 300_000;
/** Partitions of a topic the emitter creates (records of one key always share a partition). */
export const kafka_topic_partitions_default = 6;
/** Replication of a created topic: this many, or the number of brokers if fewer. */
export const kafka_replication_factor_max = 3;

export interface EventSink {
  /** Resolves once the broker acknowledged every message; rejects if any may not have landed.
   *  After a rejection, nothing is sent with that producer's sequence state again. */
  send(events: KafkaMessage[]): Promise<void>;
  /** Forgets the producer (the emitter calls it after every failed send): the next send
   *  connects afresh with a new producer id. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

export interface KafkaSinkOptions {
  brokers: string[];
  client_id: string;
  topic_prefix: string;
  /** Short names of the event types whose topics must exist. */
  event_types: string[];
  topic_partitions?: number;
  request_timeout_ms?: number;
  ack_timeout_ms?: number;
  log: Pick<Logger, 'debug' | 'info'>;
}

/** Refuses timeouts out of bounds or an ack timeout the client would never wait for. */
export function check_kafka_timeouts(request_timeout_ms: number, ack_timeout_ms: number): void {
  for (const [name, value] of [['kafka-request-timeout-ms', request_timeout_ms], ['kafka-ack-timeout-ms', ack_timeout_ms]] as const) {
    if (!Number.isInteger(value) || value < kafka_timeout_ms_min || value > kafka_timeout_ms_max) {
      throw new Error(`--${name} must be a whole number of ms from ${kafka_timeout_ms_min} to ${kafka_timeout_ms_max}, got ${value}`);
    }
  }
  if (ack_timeout_ms > request_timeout_ms) {
    throw new Error(`--kafka-ack-timeout-ms (${ack_timeout_ms}) must not exceed --kafka-request-timeout-ms (${request_timeout_ms}): the client would give up before the broker answers`);
  }
}

/** A topic's partition count changed under a producer (its send fails; the next producer is fresh). */
export class PartitionCountChangedError extends KafkaError {
  override readonly name = 'PartitionCountChangedError';
  readonly retriable = false;
}

/**
 * kafkajs's default partitioner (murmur2 of the key), but a producer keeps the partition count
 * it first saw per topic: a kafkajs retry inside one send then regroups the same records into
 * the same partitions, so its rewound sequence numbers describe the same batch (see the top).
 */
export function pinned_partitioner(): ICustomPartitioner {
  return () => {
    const partition = Partitioners.DefaultPartitioner();
    const counts = new Map<string, number>();
    return (args) => {
      const count = args.partitionMetadata.length;
      const pinned = counts.get(args.topic);
      if (pinned === undefined) counts.set(args.topic, count);
      else if (pinned !== count) throw new PartitionCountChangedError(`topic ${args.topic} went from ${pinned} to ${count} partitions during a send`);
      return partition(args);
    };
  };
}

/** kafkajs log lines go to the node's log at debug: the emitter logs outages itself, once. */
function log_creator(log: Pick<Logger, 'debug'>) {
  return () => ({ namespace, label, log: entry }: LogEntry) => {
    const { message, timestamp: _timestamp, logger: _logger, ...rest } = entry;
    log.debug({ kafkajs: namespace, kafkajs_level: label, ...rest }, message);
  };
}

export class KafkaSink implements EventSink {
  private readonly kafka: Kafka;
  private producer: Producer | undefined;
  private topics_ready = false;
  private readonly ack_timeout_ms: number;

  constructor(private readonly options: KafkaSinkOptions) {
    const request_timeout_ms = options.request_timeout_ms ?? kafka_request_timeout_ms;
    this.ack_timeout_ms = options.ack_timeout_ms ?? kafka_ack_timeout_ms;
    check_kafka_timeouts(request_timeout_ms, this.ack_timeout_ms);
    this.kafka = new Kafka({
      clientId: options.client_id,
      brokers: options.brokers,
      connectionTimeout: kafka_connection_timeout_ms,
      requestTimeout: request_timeout_ms,
      retry: { retries: kafka_client_retries, initialRetryTime: 100, maxRetryTime: 1_000 },
      logLevel: logLevel.INFO,
      logCreator: log_creator(options.log),
    });
  }

  private async connected(): Promise<Producer> {
    if (this.producer !== undefined) return this.producer;
    const producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: pinned_partitioner(),
      retry: { retries: kafka_client_retries, initialRetryTime: 100, maxRetryTime: 1_000 },
    });
    try {
      await producer.connect();
    } catch (error) {
      await producer.disconnect().catch(() => undefined);
      throw error;
    }
    this.producer = producer;
    return producer;
  }

  /** Creates the topics of every event type that do not exist yet. */
  private async ensure_topics(): Promise<void> {
    if (this.topics_ready) return;
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const missing = this.options.event_types.map((t) => topic_of(this.options.topic_prefix, t)).filter((t) => !existing.has(t));
      if (missing.length > 0) {
        const brokers = (await admin.describeCluster()).brokers.length;
        await admin.createTopics({
          waitForLeaders: true,
          topics: missing.map((topic) => ({
            topic,
            numPartitions: this.options.topic_partitions ?? kafka_topic_partitions_default,
            replicationFactor: Math.max(1, Math.min(kafka_replication_factor_max, brokers)),
          })),
        });
        this.options.log.info({ topics: missing }, 'kafka topics created');
      }
      this.topics_ready = true;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  async send(events: KafkaMessage[]): Promise<void> {
    try {
      await this.send_once(events);
    } catch (error) {
      // Its sequence numbers can no longer be trusted (see the top): never send with it again.
      await this.reset();
      throw error;
    }
  }

  private async send_once(events: KafkaMessage[]): Promise<void> {
    const producer = await this.connected();
    await this.ensure_topics();
    const by_topic = new Map<string, { key: string; value: Buffer; headers: KafkaMessage['headers'] }[]>();
    for (const event of events) {
      let messages = by_topic.get(event.topic);
      if (messages === undefined) {
        messages = [];
        by_topic.set(event.topic, messages);
      }
      messages.push({ key: event.key, value: event.value, headers: event.headers });
    }
    await producer.sendBatch({
      acks: -1,
      timeout: this.ack_timeout_ms,
      topicMessages: [...by_topic].map(([topic, messages]) => ({ topic, messages })),
    });
  }

  async reset(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    this.topics_ready = false; // a topic deleted meanwhile is created again
    await producer?.disconnect().catch(() => undefined);
  }

  close(): Promise<void> {
    return this.reset();
  }
}

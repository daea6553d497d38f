// The broker side of the emitter, with kafkajs: an idempotent producer (acks from all in-sync
// replicas, one request in flight per broker, so a retried batch cannot overtake the next and
// the broker drops its duplicate by sequence number), and the event topics created when missing.
// Connects lazily on the first send; reset() drops the producer so the next send starts fresh.
import { Kafka, logLevel, Partitioners, type LogEntry, type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { EncodedEvent } from './encode.js';
import { topic_of } from './topics.js';

/** kafkajs' own retries inside one send are kept short: the emitter retries with backoff
 *  around them and counts every failed send, so an outage shows at once in the metrics. */
export const kafka_client_retries = 2;
export const kafka_connection_timeout_ms = 3_000;
/** Broker-side wait for the in-sync replicas' acknowledgements of one produce request. */
export const kafka_ack_timeout_ms = 10_000;
export const kafka_request_timeout_ms = 15_000;
/** Partitions of a topic the emitter creates (records of one key always share a partition). */
export const kafka_topic_partitions_default = 6;
/** Replication of a created topic: this many, or the number of brokers if fewer. */
export const kafka_replication_factor_max = 3;

export interface EventSink {
  /** Resolves once the broker acknowledged every message; rejects if any may not have landed. */
  send(events: EncodedEvent[]): Promise<void>;
  /** Forgets the producer (after repeated failures): the next send connects afresh. */
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
  log: Logger;
}

/** kafkajs log lines go to the node's log at debug: the emitter logs outages itself, once. */
function log_creator(log: Logger) {
  return () => ({ namespace, label, log: entry }: LogEntry) => {
    const { message, timestamp: _timestamp, logger: _logger, ...rest } = entry;
    log.debug({ kafkajs: namespace, kafkajs_level: label, ...rest }, message);
  };
}

export class KafkaSink implements EventSink {
  private readonly kafka: Kafka;
  private producer: Producer | undefined;
  private topics_ready = false;

  constructor(private readonly options: KafkaSinkOptions) {
    this.kafka = new Kafka({
      clientId: options.client_id,
      brokers: options.brokers,
      connectionTimeout: kafka_connection_timeout_ms,
      requestTimeout: kafka_request_timeout_ms,
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
      createPartitioner: Partitioners.DefaultPartitioner,
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

  async send(events: EncodedEvent[]): Promise<void> {
    const producer = await this.connected();
    await this.ensure_topics();
    const by_topic = new Map<string, { key: string; value: Buffer; headers: EncodedEvent['headers'] }[]>();
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
      timeout: kafka_ack_timeout_ms,
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

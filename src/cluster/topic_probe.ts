// Before a node opens its data directory it must know the cluster's partition count, which is
// the journal topic's once the cluster exists: one metadata request, no group join.
import { Kafka, logLevel } from 'kafkajs';
import { journal_topic_of } from './cluster_kafka.js';

/** Bound on the probe: a broker that does not answer fails the start rather than hanging it. */
export const topic_probe_timeout_ms = 30_000;

/** Partitions of cluster `name`'s journal topic, or undefined when it does not exist yet. */
export async function journal_partition_count(brokers: string[], name: string): Promise<number | undefined> {
  const topic = journal_topic_of(name);
  const kafka = new Kafka({
    clientId: `ticketing-probe-${name}`, brokers, logLevel: logLevel.NOTHING,
    connectionTimeout: 3_000, requestTimeout: topic_probe_timeout_ms,
    retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 2_000 },
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topics = await admin.listTopics();
    if (!topics.includes(topic)) return undefined;
    const { topics: [meta] } = await admin.fetchTopicMetadata({ topics: [topic] });
    return meta?.partitions.length;
  } finally {
    await admin.disconnect();
  }
}

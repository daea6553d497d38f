import { Kafka, logLevel } from 'kafkajs';
export const BROKERS = (process.env.BROKERS ?? '127.0.0.1:19092').split(',');
export function kafka(clientId = 'spike') {
  return new Kafka({ clientId, brokers: BROKERS, logLevel: logLevel[process.env.KLOG ?? 'NOTHING'], retry: { retries: Number(process.env.RETRIES ?? 5), initialRetryTime: Number(process.env.IRT ?? 100), maxRetryTime: Number(process.env.MAXRT ?? 30000) } });
}
export function tproducer(k, transactionalId, extra = {}) {
  return k.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1, ...extra });
}
export async function ensureTopics(k, topics, numPartitions = 3, replicationFactor = 1, configEntries = []) {
  const admin = k.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: false, topics: topics.map((topic) => ({ topic, numPartitions, replicationFactor, configEntries })) });
  // kafkajs' waitForLeaders can throw UNKNOWN_TOPIC_OR_PARTITION on a multi-broker cluster (metadata not yet on
  // every broker): poll metadata ourselves until every partition has a leader and a full ISR.
  for (let i = 0; ; i++) {
    try {
      const { topics: md } = await admin.fetchTopicMetadata({ topics });
      if (md.every((t) => t.partitions.length === numPartitions && t.partitions.every((q) => q.leader >= 0 && q.isr.length === replicationFactor))) break;
    } catch (e) { if (i > 100) throw e; }
    await sleep(100);
  }
  await admin.disconnect();
}
export function describeError(e) {
  if (!e) return String(e);
  const chain = [];
  for (let x = e; x; x = x.cause ?? x.originalError) chain.push(`${x.name}${x.type ? `(type=${x.type}, code=${x.code}, retriable=${x.retriable})` : ''}: ${x.message}`);
  return chain.join(' <- ');
}
/** Reads a topic from the beginning with a throwaway group until idleMs passes without messages. */
export async function readAll(k, topics, { isolation = 'read_committed', idleMs = 3000 } = {}) {
  const consumer = k.consumer({ groupId: `reader-${process.pid}-${Date.now()}-${Math.random()}`, readUncommitted: isolation !== 'read_committed', maxWaitTimeInMs: 500 });
  await consumer.connect();
  for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true });
  const out = [];
  let last = Date.now();
  await consumer.run({ eachMessage: async ({ topic, partition, message }) => { out.push({ topic, partition, offset: message.offset, value: message.value.toString() }); last = Date.now(); } });
  while (Date.now() - last < idleMs) await new Promise((r) => setTimeout(r, 200));
  await consumer.disconnect();
  return out;
}
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Creates or checks the cluster's topics at start. The journal topic is the source of truth of
// every partition, so anything that could lose or misroute it is refused, never adapted:
// another partition count (actor partition p = journal partition p), another replication
// factor or min.insync.replicas, a retention or cleanup policy that deletes records. Event
// topics are created with the same replication; an existing one must match it too.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, ConfigResourceTypes } from 'kafkajs';
import { ClusterConfigError } from './errors.js';
import { journal_message_bytes_max } from './journal_format.js';

/** Polls of the metadata until a created topic has leaders and full ISRs (kafkajs'
 *  createTopics waitForLeaders threw UNKNOWN_TOPIC_OR_PARTITION on 3 brokers: FINDINGS §5). */
export const topic_ready_polls_max = 300;
export const topic_ready_poll_ms = 100;
/** ConfigResourceTypes.TOPIC (kafkajs' enum is not a named export of its CommonJS module). */
const topic_resource: ConfigResourceTypes.TOPIC = 2;

export interface TopicSpec {
  topic: string;
  partitions: number;
  replication_factor: number;
  min_insync_replicas: number;
  /** Journal only: retention -1, cleanup delete, max.message.bytes. */
  journal: boolean;
}

function config_entries(spec: TopicSpec): { name: string; value: string }[] {
  const entries = [{ name: 'min.insync.replicas', value: String(spec.min_insync_replicas) }];
  if (!spec.journal) return entries;
  return [
    ...entries,
    { name: 'retention.ms', value: '-1' },
    { name: 'retention.bytes', value: '-1' },
    { name: 'cleanup.policy', value: 'delete' },
    { name: 'max.message.bytes', value: String(journal_message_bytes_max) },
  ];
}

/** Creates the missing topics, waits until they are ready, checks all; returns topic → its
 *  partition count (event topics keep whatever count they have). */
export async function ensure_topics(admin: Admin, specs: TopicSpec[]): Promise<Map<string, number>> {
  const brokers = (await admin.describeCluster()).brokers.length;
  const rf_max = Math.max(...specs.map((s) => s.replication_factor));
  if (rf_max > brokers) {
    throw new ClusterConfigError(`replication factor ${rf_max} needs at least ${rf_max} brokers; the cluster has ${brokers}`);
  }
  await create_missing(admin, specs);
  const counts = await wait_ready(admin, specs);
  await retried('topic configurations readable', () => check_configs(admin, specs));
  return counts;
}

/** createTopics itself can throw UNKNOWN_TOPIC_OR_PARTITION on several brokers while the new
 *  topic spreads (it exists by then), and returns false when another node created them: so
 *  list, create what is missing, and again until nothing is. */
async function create_missing(admin: Admin, specs: TopicSpec[]): Promise<void> {
  await retried('topics created', async () => {
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((s) => !existing.has(s.topic));
    if (missing.length === 0) return;
    await admin.createTopics({
      waitForLeaders: false,
      topics: missing.map((s) => ({
        topic: s.topic, numPartitions: s.partitions, replicationFactor: s.replication_factor,
        configEntries: config_entries(s),
      })),
    });
    throw new Error('created: list again');
  });
}

/** Runs `step` until it returns; a ClusterConfigError (a mismatch) is final, any other error
 *  (metadata still spreading) is tried again, topic_ready_polls_max times at most. */
async function retried(what: string, step: () => Promise<void>): Promise<void> {
  let last: unknown;
  for (let i = 0; i < topic_ready_polls_max; i++) {
    try {
      return await step();
    } catch (error) {
      if (error instanceof ClusterConfigError) throw error;
      last = error;
    }
    await sleep(topic_ready_poll_ms);
  }
  throw new ClusterConfigError(`${what}: gave up after ${topic_ready_polls_max} tries`, { cause: last });
}

async function wait_ready(admin: Admin, specs: TopicSpec[]): Promise<Map<string, number>> {
  const topics = specs.map((s) => s.topic);
  let last: unknown;
  for (let i = 0; i < topic_ready_polls_max; i++) {
    try {
      const { topics: found } = await admin.fetchTopicMetadata({ topics });
      const ready = found.length === specs.length && found.every((t) => t.partitions.length > 0
        && t.partitions.every((q) => q.leader >= 0 && q.isr.length === q.replicas.length));
      if (ready) return check_layout(specs, found);
    } catch (error) {
      last = error; // UNKNOWN_TOPIC_OR_PARTITION while metadata spreads: poll again
    }
    await sleep(topic_ready_poll_ms);
  }
  throw new ClusterConfigError(`topics not ready after ${topic_ready_polls_max} polls: ${topics.join(', ')}`, { cause: last });
}

type Metadata = Awaited<ReturnType<Admin['fetchTopicMetadata']>>['topics'];

function check_layout(specs: TopicSpec[], found: Metadata): Map<string, number> {
  const counts = new Map<string, number>();
  for (const spec of specs) {
    const t = found.find((x) => x.name === spec.topic);
    if (t === undefined) throw new ClusterConfigError(`topic ${spec.topic} missing from the metadata`);
    if (spec.journal && t.partitions.length !== spec.partitions) {
      throw new ClusterConfigError(`journal topic ${spec.topic} has ${t.partitions.length} partitions; this node was started with ${spec.partitions} (the journal's count is the cluster's: start with --partitions ${t.partitions.length})`);
    }
    const rf = new Set(t.partitions.map((q) => q.replicas.length));
    if (rf.size !== 1 || !rf.has(spec.replication_factor)) {
      throw new ClusterConfigError(`topic ${spec.topic} has replication factor ${[...rf].join('/')}; this node was started with ${spec.replication_factor}`);
    }
    counts.set(spec.topic, t.partitions.length);
  }
  return counts;
}

async function check_configs(admin: Admin, specs: TopicSpec[]): Promise<void> {
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: specs.map((s) => ({ type: topic_resource, name: s.topic })),
  });
  for (const spec of specs) {
    const resource = described.resources.find((r) => r.resourceName === spec.topic);
    if (resource === undefined) throw new ClusterConfigError(`no configuration of topic ${spec.topic}`);
    const value = (name: string): string | undefined => resource.configEntries.find((e) => e.configName === name)?.configValue;
    for (const want of config_entries(spec)) {
      if (want.name === 'max.message.bytes') {
        const bytes = Number(value(want.name));
        if (bytes >= journal_message_bytes_max) continue;
        throw new ClusterConfigError(`journal topic ${spec.topic} has max.message.bytes ${bytes}; the journal needs at least ${journal_message_bytes_max}`);
      }
      if (value(want.name) !== want.value) {
        throw new ClusterConfigError(`topic ${spec.topic} has ${want.name}=${String(value(want.name))}; the cluster needs ${want.value}`);
      }
    }
  }
}

// Members of a cluster for tests: ClusterKafka instances with handlers that record what they
// are told, on real brokers (one cluster of three per test file), each test its own cluster
// NAME (its own journal topic and group) so tests do not see each other's partitions.
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { pino } from 'pino';
import { ClusterKafka, journal_topic_of, type Assignment, type ClusterKafkaOptions } from '../../src/cluster/cluster_kafka.js';
import { packr } from '../../src/runtime/codec.js';
import type { JournalWire } from '../../src/cluster/wire.js';

/** Polls of a condition (only a safety net: a broken cluster fails instead of hanging). */
export const wait_tries = 600;
export const wait_poll_ms = 100;

export async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  let last: unknown;
  for (let i = 0; i < wait_tries; i++) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await sleep(wait_poll_ms);
  }
  throw new Error(`gave up waiting: ${what}${last === undefined ? '' : ` (last: ${String(last)})`}`);
}

export const log = pino({ level: process.env['TICKETING_LOG_LEVEL'] ?? 'silent' });
export const topic_prefix = 'ctest.';

export interface Member {
  kafka: ClusterKafka;
  node_id: string;
  assignments: Assignment[];
  revocations: string[];
  /** The latest assignment, if it came after the latest revocation. */
  current(): Assignment | undefined;
}

let run = 0;
/** A cluster name no other test of this run uses. */
export function fresh_name(what: string): string {
  return `${what}-${process.pid}-${Date.now().toString(36)}-${run++}`;
}

export function options_of(cluster: string, brokers: string, node_id: string, over: Partial<ClusterKafkaOptions> = {}): ClusterKafkaOptions {
  return {
    cluster, brokers: brokers.split(','), node_id, advertise: `127.0.0.1:${node_id.length + 40000}`,
    partition_count: 6, replication_factor: 3, min_insync_replicas: 2, topic_prefix,
    session_timeout_ms: 6000, heartbeat_interval_ms: 1000, max_wait_ms: 250,
    transaction_timeout_ms: 15_000, log, ...over,
  };
}

export function member(cluster: string, brokers: string, node_id: string, over: Partial<ClusterKafkaOptions> = {}): Member {
  const assignments: Assignment[] = [];
  const revocations: string[] = [];
  let live = false;
  const kafka = new ClusterKafka(options_of(cluster, brokers, node_id, over), {
    revoke_all: (reason) => { revocations.push(reason); live = false; },
    assigned: (a) => { assignments.push(a); live = true; },
  });
  return {
    kafka, node_id, assignments, revocations,
    current: () => (live ? assignments[assignments.length - 1] : undefined),
  };
}

/** A commit as a worker would send it: `records` packed as an array, like packr.pack(Rec[]). */
export function wire(partition: number, records: unknown[] | null, o: Partial<JournalWire> = {}): JournalWire {
  return {
    partition, records: records === null ? null : packr.pack(records), outbox: [], now_ms: 1_700_000_000_000,
    snapshot: null, ...o,
  };
}

export function client(brokers: string): Kafka {
  return new Kafka({
    clientId: 'cluster-test', brokers: brokers.split(','), logLevel: logLevel.NOTHING,
    retry: { initialRetryTime: 100, maxRetryTime: 1_000, retries: 30 },
  });
}

/** Every message of journal partition p as a read_committed reader sees it (a fresh group). */
export async function read_journal(brokers: string, cluster: string, p: number): Promise<{ kind: string; value: Buffer }[]> {
  const k = client(brokers);
  const admin = k.admin();
  await admin.connect();
  const topic = journal_topic_of(cluster);
  const high = BigInt((await admin.fetchTopicOffsets(topic)).find((o) => o.partition === p)?.high ?? '0');
  await admin.disconnect();
  const out: { kind: string; value: Buffer }[] = [];
  if (high === 0n) return out;
  const consumer = k.consumer({ groupId: fresh_name('reader'), maxWaitTimeInMs: 100, readUncommitted: false });
  let done = false;
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
    if (e.payload.partition === p && BigInt(e.payload.lastOffset) + 1n >= high) done = true;
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      if (partition !== p) return;
      out.push({ kind: String(message.headers?.['kind'] ?? ''), value: message.value ?? Buffer.alloc(0) });
    },
  });
  await until(`journal p${p} read to ${high}`, () => (done ? true : undefined));
  await consumer.disconnect();
  return out;
}

/** The records of each segment message, unpacked: what the journal holds, commit by commit. */
export function segments_of(messages: { kind: string; value: Buffer }[]): unknown[][] {
  return messages.filter((m) => m.kind === 'segment')
    .flatMap((m) => (packr.unpack(m.value) as Uint8Array[]).map((r) => packr.unpack(r) as unknown[]));
}

export function unpack_all(segments: Uint8Array[]): unknown[][] {
  return segments.map((s) => packr.unpack(s) as unknown[]);
}

// Three real Kafka brokers as one KRaft cluster (scripts/kafka/broker.mjs start_cluster, what
// `npm run kafka -- --brokers 3` starts): topics replicated three times with two in sync, a
// write acknowledged by all in-sync replicas survives `kill -9` of its partition's leader, and
// the killed broker rejoins. The ground the cluster mode stands on.
//
// Started inside the first test (a throwing `before` hook makes uvu exit 0 without running).
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync } from 'node:fs';
import { start_cluster, type Cluster } from './broker.js';
import { start_consumer, type Consumed } from './consume.js';
import { guarded_after } from '../guard.js';

interface Context { cluster?: Cluster; sent: string[] }

const t = suite<Context>('kafka cluster of three', { sent: [] });
const topic = 'ticketing.cluster-test';
// Generous bounds: only there so a broken cluster fails the test instead of hanging it.
const wait_tries = 600;

function cluster_of(ctx: Context): Cluster {
  if (ctx.cluster === undefined) throw new Error('no cluster: the "starts" test failed (see above)');
  return ctx.cluster;
}

/** `brokers`: the bootstrap list, by default every broker of the cluster. */
function client(cluster: Cluster, brokers = cluster.brokers): Kafka {
  return new Kafka({
    clientId: 'cluster-test', brokers: brokers.split(','), logLevel: logLevel.NOTHING,
    retry: { initialRetryTime: 100, maxRetryTime: 1_000, retries: 30 },
  });
}

async function with_admin<T>(
  cluster: Cluster, use: (admin: Admin) => Promise<T>, brokers = cluster.brokers,
): Promise<T> {
  const admin = client(cluster, brokers).admin();
  await admin.connect();
  try {
    return await use(admin);
  } finally {
    await admin.disconnect();
  }
}

/** Runs one step of a test; a failure names the step (CI shows only the error's first line). */
async function step<T>(name: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`step "${name}": ${message}`, { cause: error });
  }
}

/** A kafkajs connection error: a client that met a broker that is down (its seed, or one its
 *  metadata still named). kafkajs gives up on some of these at once instead of trying another
 *  broker (initProducerId and Cluster.metadata bail on them: kafkajs 2.2.4), so a step that
 *  meets one while a broker is dead is run again, as any client would. */
function is_connection_error(error: unknown): boolean {
  // KafkaJSNumberOfRetriesExceeded carries the last attempt's error as its cause.
  for (let e = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e.name === 'KafkaJSConnectionError') return true;
  }
  return false;
}

const connection_retries_max = 10;

/** Runs `run` again after a connection error, a bounded number of times, saying so. */
async function retrying<T>(what: string, run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (!is_connection_error(error) || attempt >= connection_retries_max) throw error;
      console.error(`  ${what}: ${(error as Error).message}; again (attempt ${attempt + 1})`);
      await sleep(1_000);
    }
  }
}

/** Polls until `probe` returns a value; bounded tries only as a safety net. */
async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < wait_tries; i++) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await sleep(100);
  }
  throw new Error(`gave up waiting: ${what}`);
}

async function produce(cluster: Cluster, values: string[], brokers = cluster.brokers): Promise<void> {
  const producer = client(cluster, brokers).producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: values.map((value) => ({ key: value, value })) });
  } finally {
    await producer.disconnect();
  }
}

/** Reads the topic from the beginning with a fresh group until `count` messages arrived. */
async function consume(cluster: Cluster, count: number, brokers = cluster.brokers): Promise<string[]> {
  const consumer = await start_consumer(brokers, [topic]);
  try {
    const distinct = (m: Consumed[]) => new Set(m.map((x) => x.value.toString()));
    return [...distinct(await consumer.until((m) => distinct(m).size >= count))].sort();
  } finally {
    await consumer.stop();
  }
}

guarded_after(t, async (ctx) => {
  if (ctx.cluster === undefined) return;
  await ctx.cluster.stop().catch(() => ctx.cluster?.kill());
  rmSync(ctx.cluster.work_dir, { recursive: true, force: true });
});

t('starts three brokers; a topic gets three replicas, all in sync, and needs two', async (ctx) => {
  ctx.cluster = await start_cluster(3);
  const cluster = ctx.cluster;
  assert.is(cluster.brokers.split(',').length, 3);
  assert.equal(cluster.replicas, { factor: 3, min_insync: 2 });
  await with_admin(cluster, async (admin) => {
    // A broker that answers is not yet in every broker's metadata: on a loaded machine one
    // describeCluster right after start listed two of the three (a fresh clone's npm test).
    const ids = await until('every broker in the cluster metadata', async () => {
      const brokers = (await admin.describeCluster()).brokers.map((b) => b.nodeId).sort();
      return brokers.length === 3 ? brokers : undefined;
    });
    assert.equal(ids, [1, 2, 3]);
    // waitForLeaders is unreliable with several brokers (UNKNOWN_TOPIC_OR_PARTITION): poll.
    // createTopics' own metadata check can fail with UNKNOWN_TOPIC_OR_PARTITION while the new
    // topic reaches the other brokers; the topic exists by then (a second call returns false).
    await until('the topic created', async () => {
      await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 3 }] });
      return true;
    });
    const partitions = await until('every partition has a leader and three in sync', async () => {
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      const parts = meta.topics[0]?.partitions ?? [];
      const ready = parts.length === 3 && parts.every((p) => p.leader >= 1 && p.isr.length === 3);
      return ready ? parts : undefined;
    });
    for (const p of partitions) assert.equal([...p.replicas].sort(), [1, 2, 3]);
    // Asked of any broker; one that has not learnt of the topic yet answers UNKNOWN_TOPIC.
    const min_insync = await until('the topic\'s min.insync.replicas', async () => {
      const configs = await admin.describeConfigs({
        resources: [{ type: 2 /* TOPIC */, name: topic, configNames: ['min.insync.replicas'] }],
        includeSynonyms: false,
      });
      return configs.resources[0]?.configEntries[0]?.configValue;
    });
    assert.is(min_insync, '2');
  });
});

t('a write acknowledged by all in-sync replicas survives kill -9 of its leader', async (ctx) => {
  const cluster = cluster_of(ctx);
  const before = ['b1', 'b2', 'b3', 'b4', 'b5', 'b6'];
  await step('produce with all three up', () => produce(cluster, before));
  ctx.sent.push(...before);
  // Read once with all three up: the first group creates __consumer_offsets, which needs its
  // three replicas (offsets.topic.replication.factor) to be created at all.
  assert.equal(await step('consume with all three up', () => consume(cluster, ctx.sent.length)), [...ctx.sent].sort());
  const leader = await step('find the leader', () => with_admin(cluster, async (admin) => {
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    return meta.topics[0]!.partitions.find((p) => p.partitionId === 0)!.leader;
  }));
  await cluster.nodes[leader - 1]!.kill();
  // While it is dead, clients bootstrap from the two live brokers: a client given the dead one
  // too may pick it as its seed and fail ECONNREFUSED (a fresh clone's .ci/run saw it).
  const live = cluster.brokers.split(',').filter((_, i) => i !== leader - 1).join(',');
  // The controller fences the dead broker after its session (broker.session.timeout.ms, 5 s)
  // and moves its leaderships; clients see connection errors until then (our node answers
  // UNAVAILABLE meanwhile). Wait for that, for this topic and for the group coordinators.
  await step('wait for leaders to move', () => with_admin(cluster, (admin) => until('leaders moved off the killed broker', async () => {
    const meta = await admin.fetchTopicMetadata({ topics: [topic, '__consumer_offsets'] });
    const parts = meta.topics.flatMap((m) => m.partitions);
    const moved = parts.every((p) => p.leader !== leader && p.leader >= 1 && !p.isr.includes(leader));
    return parts.length > 0 && moved ? true : undefined;
  }), live));
  // Two of three in sync is enough for acks=-1: writes go on while the broker is dead.
  const after = ['a1', 'a2', 'a3'];
  // A retried send may have reached the broker the first time: duplicates are allowed (at
  // least once), loss is not, so what is read is compared as a set.
  await step('produce with one dead', () => retrying('produce', () => produce(cluster, after, live)));
  ctx.sent.push(...after);
  assert.equal(await step('consume with one dead', () => retrying('consume', () => consume(cluster, ctx.sent.length, live))), [...ctx.sent].sort());
  // The killed broker comes back on the same ports and log and is in sync again.
  await step('restart the killed broker', () => cluster.nodes[leader - 1]!.restart());
  await step('wait for the restarted broker in every ISR', () => with_admin(cluster, (admin) => until('the restarted broker back in every ISR', async () => {
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    return meta.topics[0]!.partitions.every((p) => p.isr.includes(leader)) ? true : undefined;
  })));
  assert.equal(await step('consume after the restart', () => retrying('consume', () => consume(cluster, ctx.sent.length))), [...ctx.sent].sort());
});

t('stop() ends every broker', async (ctx) => {
  const cluster = cluster_of(ctx);
  await cluster.stop();
  for (const node of cluster.nodes) assert.not.ok(node.running());
});

t.run();

// A real Kafka broker (scripts/kafka/broker.mjs): topics, an idempotent producer and a consumer
// through kafkajs, and a log that survives a clean stop and a crash.
//
// The broker is started inside the first test, not in a `before` hook: a throwing hook makes uvu
// exit 0 without running anything, and a broker that cannot be provisioned must fail the run.
// Later tests share it and fail with a clear message if it never started.
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { dispose_broker, start_broker, type Broker } from './broker.js';
import { guarded_after } from '../guard.js';

interface Context {
  broker?: Broker;
  sent: string[];
}

const t = suite<Context>('kafka broker', { sent: [] });
const topic = 'ticketing.broker-test';

// Generous bounds: only there so a broken broker fails the test instead of hanging it.
const consume_timeout_ms = 60_000;

function broker_of(ctx: Context): Broker {
  if (ctx.broker === undefined) throw new Error('no broker: the "starts" test failed (see above)');
  return ctx.broker;
}

function client(broker: Broker): Kafka {
  return new Kafka({ clientId: 'broker-test', brokers: [broker.brokers], logLevel: logLevel.NOTHING });
}

async function produce(broker: Broker, values: string[]): Promise<void> {
  const producer: Producer = client(broker).producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: values.map((value) => ({ key: value, value })) });
  } finally {
    await producer.disconnect();
  }
}

/** Reads the topic from the beginning with a fresh group until `count` messages arrived. */
async function consume(broker: Broker, count: number): Promise<string[]> {
  // A short fetch long-poll: disconnect() waits for the fetch in flight (default up to 5 s).
  const consumer = client(broker).consumer({ groupId: `broker-test-${process.pid}-${Date.now()}`, maxWaitTimeInMs: 100 });
  const received: string[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void received.push(message.value!.toString()) });
    const deadline = Date.now() + consume_timeout_ms;
    while (received.length < count && Date.now() < deadline) await sleep(100);
  } finally {
    await consumer.disconnect();
  }
  return received;
}

function same_messages(actual: string[], expected: string[]): void {
  assert.equal([...actual].sort(), [...expected].sort());
}

guarded_after(t, async (ctx) => {
  await dispose_broker(ctx.broker);
  ctx.broker = undefined;
});

t('starts a broker that answers an admin client', async (ctx) => {
  ctx.broker = await start_broker();
  assert.match(ctx.broker.brokers, /^127\.0\.0\.1:\d+$/);
  const admin = client(ctx.broker).admin();
  await admin.connect();
  try {
    const cluster = await admin.describeCluster();
    assert.equal(cluster.brokers.map((b) => b.nodeId), [1]);
    assert.ok(await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true }));
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
    assert.equal(metadata.topics[0]?.partitions.length, 3);
  } finally {
    await admin.disconnect();
  }
});

t('an idempotent producer writes messages that a consumer reads back', async (ctx) => {
  const broker = broker_of(ctx);
  const values = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'];
  await produce(broker, values);
  ctx.sent.push(...values);
  same_messages(await consume(broker, ctx.sent.length), ctx.sent);
});

t('the log survives stop() + restart() on the same port, and new writes work', async (ctx) => {
  const broker = broker_of(ctx);
  const { port, log_dir } = broker;
  await broker.stop();
  assert.not.ok(broker.running());
  await broker.restart();
  assert.ok(broker.running());
  assert.is(broker.port, port);
  assert.is(broker.log_dir, log_dir);
  same_messages(await consume(broker, ctx.sent.length), ctx.sent);

  await produce(broker, ['after-restart-1', 'after-restart-2']);
  ctx.sent.push('after-restart-1', 'after-restart-2');
  same_messages(await consume(broker, ctx.sent.length), ctx.sent);
});

t('acknowledged messages survive kill() (SIGKILL) + restart()', async (ctx) => {
  const broker = broker_of(ctx);
  await produce(broker, ['before-crash']);
  ctx.sent.push('before-crash');
  await broker.kill();
  assert.not.ok(broker.running());
  await broker.restart();
  same_messages(await consume(broker, ctx.sent.length), ctx.sent);
  await produce(broker, ['after-crash']);
  ctx.sent.push('after-crash');
  same_messages(await consume(broker, ctx.sent.length), ctx.sent);
});

t('stop() ends the broker process', async (ctx) => {
  const broker = broker_of(ctx);
  await broker.stop();
  assert.not.ok(broker.running());
});

t.run();

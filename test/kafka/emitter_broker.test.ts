// The emitter (real worker threads, real KafkaSink) against a real broker frozen with SIGSTOP
// while a send is in flight, then resumed: every outbox entry the emitter deleted must be on its
// topic, counted by the consumer by `event-id` header.
//
// The loss this guards against (sink.ts, top): a produce request times out on the frozen broker,
// kafkajs rewinds its sequence numbers, the broker appends the frozen request when it resumes;
// the emitter's next round carries other entries (its read rotates over partitions and stops at
// send_records_max) numbered the same, the broker takes them for a duplicate, writes nothing and
// answers success, and the emitter deletes them. Setup that makes every round a candidate: one
// worker, two outbox partitions with a backlog each, both keys on one Kafka partition, so round
// after round alternates partitions with the same record count.
//
// The broker starts inside the test (a throwing `before` hook would make uvu pass silently).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OutboxEmitter } from '../../src/kafka/emitter.js';
import { EventCodec, type KafkaMessage } from '../../src/kafka/encode.js';
import { KafkaSink, kafka_topic_partitions_default, type EventSink } from '../../src/kafka/sink.js';
import { topic_of } from '../../src/kafka/topics.js';
import { create_logger } from '../../src/ops/log.js';
import { Metrics } from '../../src/ops/metrics.js';
import { WorkerPool } from '../../src/runtime/pool.js';
import { revive, type CounterRequest } from '../runtime/fixtures/counter_behaviour.js';
import { dispose_broker, start_broker, type Broker } from './broker.js';
import { start_consumer, type Consumer } from './consume.js';

const behaviour_url = new URL('../runtime/fixtures/counter_behaviour.js', import.meta.url).href;
const codec = new EventCodec();
const log = create_logger('silent');
const prefix = 'frozen.';
const topic = topic_of(prefix, 'HoldReleased');
/** Per outbox partition; rounds of round_records, so both partitions feed several rounds. */
const backlog = 1_500;
const round_records = 500;
/** Short, so the frozen round fails (3 attempts, kafkajs retries 2) within seconds. */
const request_timeout_ms = 1_500;

/** Two keys kafkajs's default partitioner puts on one partition of a topic of the default size. */
function colliding_keys(): [string, string] {
  const partition = Partitioners.DefaultPartitioner();
  const metadata = Array.from({ length: kafka_topic_partitions_default }, (_, i) => ({ partitionId: i, leader: 1 }) as PartitionMetadata);
  const of = (key: string) => partition({ topic, partitionMetadata: metadata, message: { key, value: null } });
  for (let i = 0; ; i++) if (of(`evt-b${i}`) === of('evt-a')) return ['evt-a', `evt-b${i}`];
}

async function until(check: () => boolean | Promise<boolean>, tries = 12_000, pause_ms = 10): Promise<void> {
  for (let i = 0; i < tries && !(await check()); i++) await sleep(pause_ms);
}

/** Entries left in both outbox partitions (each read alone: one read returns at most 2,000). */
async function outbox_size(pool: WorkerPool): Promise<number> {
  let total = 0;
  for (const partition of [0, 1]) {
    const reply = await pool.outbox_read(0, { cursors: [{ partition, after_seq: 0 }], limit: 2000, limit_per_partition: 2000, requeue_parked: false });
    total += reply.entries.length;
  }
  return total;
}

test('broker frozen mid-send, then resumed: every entry the emitter deleted is on its topic', async () => {
  let broker: Broker | undefined;
  let consumer: Consumer | undefined;
  let pool: WorkerPool | undefined;
  let emitter: OutboxEmitter | undefined;
  let frozen = false;
  const dir = mkdtempSync(join(tmpdir(), 'emitter-broker-test-'));
  try {
    broker = await start_broker();
    const b = broker;
    pool = new WorkerPool({
      worker_count: 1, partition_count: 2, data_dir: dir, node_id: 'n', behaviour_url,
      mailbox_depth_max: 10_000, mailbox_batch_size_max: 64, snapshot_every_records: 1_000_000, revive,
    });
    await pool.start();
    const [key_a, key_b] = colliding_keys();
    for (const [partition, key] of [[0, key_a], [1, key_b]] as const) {
      await pool.request(partition, {
        k: 'emit', key, count: backlog, type: 'HoldReleased', payload: { hold_id: `${key}-{i}`, event_id: key, released_at_unix: 1, trace_id: `trace-${key}-{i}` },
      } satisfies CounterRequest);
    }
    assert.is(await outbox_size(pool), 2 * backlog);

    // Freeze the broker the moment the first round is acknowledged, before the next is read.
    const kafka = new KafkaSink({ brokers: [b.brokers], client_id: 'frozen-test', topic_prefix: prefix, event_types: ['HoldReleased'], log, request_timeout_ms, ack_timeout_ms: 1_000 });
    let acknowledged_sends = 0;
    const sink: EventSink = {
      async send(events: KafkaMessage[]) {
        await kafka.send(events);
        if (acknowledged_sends++ === 0) {
          process.kill(b.pid!, 'SIGSTOP');
          frozen = true;
        }
      },
      reset: () => kafka.reset(),
      close: () => kafka.close(),
    };
    const metrics = new Metrics();
    emitter = new OutboxEmitter({ source: pool, sink, codec, topic_prefix: prefix, metrics, log, send_records_max: round_records, idle_poll_ms: 50 });
    emitter.start();
    const e = emitter;

    // The next round's send fails on the frozen broker (its requests timed out); resume at once.
    await until(() => e.status().consecutive_failures >= 1);
    assert.ok(frozen, 'the broker was frozen after the first acknowledged send');
    assert.ok(e.status().consecutive_failures >= 1, 'a send failed while the broker was frozen');
    process.kill(b.pid!, 'SIGCONT');
    frozen = false;

    const p = pool;
    await until(async () => (await outbox_size(p)) === 0);
    assert.is(await outbox_size(pool), 0, 'the emitter deleted every entry (so the broker acknowledged each)');
    assert.ok(e.status().sent >= 2 * backlog);

    consumer = await start_consumer(b.brokers, [topic]);
    const expected = [0, 1].flatMap((partition) => Array.from({ length: backlog }, (_, i) => `n-p${partition}-${i + 1}`));
    const ids = () => new Set(consumer!.messages.map((m) => m.headers['event-id']));
    await consumer.until(() => expected.every((id) => ids().has(id)));
    const seen = ids();
    const missing = expected.filter((id) => !seen.has(id));
    assert.equal(missing.length, 0, `${missing.length} deleted entries are on no topic, e.g. ${missing.slice(0, 3).join(', ')}`);
    // Repeats are allowed (the frozen batch landed and was sent again), each with its content.
    for (const m of consumer.messages) {
      const [, partition, seq] = /^n-p([01])-([0-9]+)$/.exec(m.headers['event-id'] ?? '')!;
      const key = partition === '0' ? key_a : key_b;
      assert.is(m.key, key);
      assert.is(codec.decode('HoldReleased', m.value)['hold_id'], `${key}-${Number(seq) - 1}`);
    }
  } finally {
    if (frozen && broker?.pid !== undefined) process.kill(broker.pid, 'SIGCONT');
    await emitter?.stop();
    await consumer?.stop().catch(() => undefined);
    await pool?.close();
    await dispose_broker(broker);
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();

// The emitter in its own thread (emitter_host.ts + emitter_thread.ts, reading the stores itself
// through cursor_source.ts) with real worker threads and a real broker: start, wake-up after
// idle, parking, a worker killed mid-run, the broker frozen and back, stop() with a send in
// flight. Every check is on what a consumer reads from the topic (by event-id) and on what is
// left in the outbox as its owning worker sees it.
//
// The broker starts inside the first test that needs it (a throwing `before` hook would make
// uvu pass silently) and is disposed by the last one.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EmitterThread } from '../../src/kafka/emitter_host.js';
import { EventCodec } from '../../src/kafka/encode.js';
import { topic_of } from '../../src/kafka/topics.js';
import { create_logger } from '../../src/ops/log.js';
import { Metrics } from '../../src/ops/metrics.js';
import { WorkerPool } from '../../src/runtime/pool.js';
import { revive, type CounterRequest } from '../runtime/fixtures/counter_behaviour.js';
import { dispose_broker, start_broker, type Broker } from './broker.js';
import { start_consumer, type Consumer } from './consume.js';

const behaviour_url = new URL('../runtime/fixtures/counter_behaviour.js', import.meta.url).href;
const log = create_logger('silent');
const codec = new EventCodec();
const partition_count = 4;

let broker: Broker | undefined;
async function the_broker(): Promise<Broker> {
  broker ??= await start_broker();
  return broker;
}

async function until(check: () => boolean | Promise<boolean>, tries = 12_000, pause_ms = 10): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return true;
    await sleep(pause_ms);
  }
  return false;
}

interface Rig {
  dir: string;
  pool: WorkerPool;
  prefix: string;
  metrics: Metrics;
}

async function rig(name: string): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), `emitter-thread-${name}-`));
  const pool = new WorkerPool({
    worker_count: 2, partition_count, data_dir: dir, node_id: 'n', behaviour_url,
    mailbox_depth_max: 10_000, mailbox_batch_size_max: 64, snapshot_every_records: 1_000_000, revive,
    restart_delay_ms: 50,
  });
  await pool.start();
  return { dir, pool, prefix: `${name}.`, metrics: new Metrics() };
}

function emitter_of(r: Rig, b: Broker, overrides: Partial<ConstructorParameters<typeof EmitterThread>[1]> = {}): EmitterThread {
  return new EmitterThread(r.pool, {
    brokers: [b.brokers], client_id: `test-${r.prefix}`, topic_prefix: r.prefix,
    request_timeout_ms: 1_500, ack_timeout_ms: 1_000, send_unanswered_ms_max: 5_000,
    send_records_max: 200, idle_poll_ms: 50, retry_delay_ms: 50, retry_delay_ms_max: 200, ...overrides,
  }, r.metrics, log);
}

/** `count` HoldReleased entries in `partition`'s outbox; their hold ids (unique per tag). */
async function emit(pool: WorkerPool, partition: number, count: number, tag: string): Promise<string[]> {
  const key = `${tag}-p${partition}`;
  await pool.request(partition, {
    k: 'emit', key, count, type: 'HoldReleased', payload: { hold_id: `${key}-{i}`, event_id: key, released_at_unix: 1, trace_id: `t-${key}-{i}` },
  } satisfies CounterRequest);
  return Array.from({ length: count }, (_, i) => `${key}-${i}`);
}

/** What the owning worker still holds for `partition` (up to 2,000: enough here). */
async function outbox_of(pool: WorkerPool, partition: number) {
  const worker = partition % 2;
  const reply = await pool.outbox_read(worker, { cursors: [{ partition, after_seq: 0 }], limit: 2000, limit_per_partition: 2000, requeue_parked: false });
  return reply.entries;
}

async function outbox_size(pool: WorkerPool): Promise<number> {
  let total = 0;
  for (let p = 0; p < partition_count; p++) {
    try {
      total += (await outbox_of(pool, p)).length;
    } catch {
      return -1; // its worker is restarting
    }
  }
  return total;
}

async function counter(metric: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> }, labels: Record<string, string> = {}): Promise<number> {
  const values = (await metric.get()).values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x));
  return values.reduce((sum, v) => sum + v.value, 0);
}

function missing_from(consumer: Consumer, expected: string[]): string[] {
  const seen = new Set(consumer.messages.map((m) => String(codec.decode('HoldReleased', m.value)['hold_id'])));
  return expected.filter((id) => !seen.has(id));
}

async function cleanup(r: Rig | undefined, emitter: EmitterThread | undefined, consumer: Consumer | undefined): Promise<void> {
  await emitter?.stop();
  await consumer?.stop().catch(() => undefined);
  await r?.pool.close();
  if (r !== undefined) rmSync(r.dir, { recursive: true, force: true });
}

test('start: a backlog on two workers is delivered from the thread, counted on the main thread; idle, then woken', async () => {
  const b = await the_broker();
  let r: Rig | undefined;
  let emitter: EmitterThread | undefined;
  let consumer: Consumer | undefined;
  try {
    r = await rig('start');
    const expected: string[] = [];
    for (let p = 0; p < partition_count; p++) expected.push(...await emit(r.pool, p, 300, 'a'));
    // One the codec cannot encode: parked by the thread, counted here.
    await r.pool.request(1, { k: 'emit', key: 'odd', count: 1, type: 'NoSuchEvent' } satisfies CounterRequest);
    emitter = emitter_of(r, b);
    emitter.start();
    const pool = r.pool;
    assert.ok(await until(async () => (await outbox_size(pool)) === 0), 'the outbox drained');
    assert.ok(await until(() => emitter!.status().sent >= expected.length), 'the thread reports what was sent');
    assert.ok((await counter(r.metrics.kafka_sent)) >= expected.length, 'ticketing_kafka_records_sent_total counts every record');
    assert.is(await counter(r.metrics.outbox_parked, { reason: 'unknown_type' }), 1, 'the unknown type was parked and counted');
    // (No check of publish errors here: a broker that just started may refuse the first
    // producer ids for a moment, a failed send the emitter retries.)

    consumer = await start_consumer(b.brokers, [topic_of(r.prefix, 'HoldReleased')]);
    await consumer.until((m) => m.length >= expected.length && missing_from(consumer!, expected).length === 0);
    assert.equal(missing_from(consumer, expected), [], 'every entry deleted is on the topic');

    // Idle now (its worker armed outbox_ready): new entries are sent without a restart.
    await sleep(200);
    const later = await emit(r.pool, 2, 50, 'later');
    assert.ok(await until(async () => (await outbox_size(pool)) === 0), 'entries after idle drained');
    await consumer.until(() => missing_from(consumer!, later).length === 0);
    assert.equal(missing_from(consumer, later), []);
    assert.is(emitter.status().failing, false);
  } finally {
    await cleanup(r, emitter, consumer);
  }
});

test('a worker killed mid-run: nothing skipped, nothing left behind in its outbox', async () => {
  const b = await the_broker();
  let r: Rig | undefined;
  let emitter: EmitterThread | undefined;
  let consumer: Consumer | undefined;
  try {
    r = await rig('restart');
    const pool = r.pool;
    const expected: string[] = [];
    for (let p = 0; p < partition_count; p++) expected.push(...await emit(pool, p, 400, 'b'));
    emitter = emitter_of(r, b, { send_records_max: 50 });
    emitter.start();
    const e = emitter;
    // Kill worker 0 while rounds are going: its in-memory marks of delivered entries die with it.
    assert.ok(await until(() => e.status().sent >= 100), 'rounds under way');
    await pool.request(0, { k: 'crash' } satisfies CounterRequest).catch(() => undefined);
    assert.ok(await until(async () => (await outbox_size(pool)) >= 0), 'the worker is back');
    for (let p = 0; p < partition_count; p++) expected.push(...await emit(pool, p, 100, 'c'));
    // Entries delivered before the kill but not yet deleted are on disk again for the new
    // worker: they must be sent again and deleted, not skipped by a stale cursor.
    assert.ok(await until(async () => (await outbox_size(pool)) === 0), 'the outbox drained after the restart');
    consumer = await start_consumer(b.brokers, [topic_of(r.prefix, 'HoldReleased')]);
    await consumer.until(() => missing_from(consumer!, expected).length === 0);
    assert.equal(missing_from(consumer, expected), [], 'no entry lost across the restart');
  } finally {
    await cleanup(r, emitter, consumer);
  }
});

test('broker frozen and back: failing, counted, then drained; stop() mid-send keeps the entries', async () => {
  const b = await the_broker();
  let r: Rig | undefined;
  let emitter: EmitterThread | undefined;
  let consumer: Consumer | undefined;
  let frozen = false;
  try {
    r = await rig('frozen');
    const pool = r.pool;
    const expected = await emit(pool, 0, 100, 'd');
    emitter = emitter_of(r, b, { send_unanswered_ms_max: 300 });
    emitter.start();
    assert.ok(await until(async () => (await outbox_size(pool)) === 0), 'first batch drained');

    process.kill(b.pid!, 'SIGSTOP');
    frozen = true;
    expected.push(...await emit(pool, 1, 100, 'e'));
    const e = emitter;
    assert.ok(await until(() => e.status().failing), 'the thread reports failing while the broker is frozen');
    assert.ok((await counter(r.metrics.kafka_errors)) >= 1, 'ticketing_kafka_publish_errors_total counted');
    assert.ok((await counter(r.metrics.kafka_sends_unanswered)) >= 1, 'ticketing_kafka_sends_unanswered_total counted');
    assert.is((await outbox_of(pool, 1)).length, 100, 'nothing deleted while unacknowledged');
    process.kill(b.pid!, 'SIGCONT');
    frozen = false;
    assert.ok(await until(async () => (await outbox_size(pool)) === 0), 'drained once the broker is back');
    assert.ok(await until(() => !e.status().failing), 'no longer failing');

    // Frozen again, a send in flight, stop(): it returns (abandoning the send), entries stay.
    process.kill(b.pid!, 'SIGSTOP');
    frozen = true;
    const kept = await emit(pool, 2, 50, 'f');
    assert.ok(await until(() => e.status().failing), 'the send is in flight and unanswered');
    await emitter.stop();
    emitter = undefined;
    assert.is((await outbox_of(pool, 2)).length, 50, 'stop() deleted nothing unacknowledged');
    process.kill(b.pid!, 'SIGCONT');
    frozen = false;
    expected.push(...kept);
    // The next emitter sends them.
    emitter = emitter_of(r, b);
    emitter.start();
    assert.ok(await until(async () => (await outbox_size(pool)) === 0), 'a new emitter drains what the stopped one left');
    consumer = await start_consumer(b.brokers, [topic_of(r.prefix, 'HoldReleased')]);
    await consumer.until(() => missing_from(consumer!, expected).length === 0);
    assert.equal(missing_from(consumer, expected), []);
  } finally {
    if (frozen && broker?.pid !== undefined) process.kill(broker.pid, 'SIGCONT');
    await cleanup(r, emitter, consumer);
  }
});

test('dispose the broker', async () => {
  await dispose_broker(broker);
  broker = undefined;
});

test.run();

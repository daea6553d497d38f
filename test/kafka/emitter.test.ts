// The emitter against real worker threads and a fake broker (EventSink): order, deletion only
// after the broker acknowledged, retries with every failure counted, parking of records that
// cannot be encoded, and stop() that never deletes what was not acknowledged.
// (test/e2e/kafka*.e2e.test.ts run the same code against a real broker.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { OutboxEmitter } from '../../src/kafka/emitter.js';
import { EventCodec, type KafkaMessage } from '../../src/kafka/encode.js';
import type { EventSink } from '../../src/kafka/sink.js';
import { create_logger } from '../../src/ops/log.js';
import { Metrics } from '../../src/ops/metrics.js';
import { WorkerPool } from '../../src/runtime/pool.js';
import { revive, type CounterRequest } from '../runtime/fixtures/counter_behaviour.js';
import { guarded_after, guarded_after_each } from '../guard.js';

const behaviour_url = new URL('../runtime/fixtures/counter_behaviour.js', import.meta.url).href;
const codec = new EventCodec();
const log = create_logger('silent');
const dirs: string[] = [];
const cleanups: (() => Promise<void>)[] = [];

guarded_after_each(test, async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
guarded_after(test, () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

class FakeSink implements EventSink {
  batches: KafkaMessage[][] = [];
  fail_next = 0;
  hang = false;
  resets = 0;
  closed = false;
  started = 0;
  /** When set, sends after the planned failures wait here, so a test can look in between. */
  gate: Promise<void> | null = null;
  async send(events: KafkaMessage[]): Promise<void> {
    this.started++;
    await sleep(1);
    if (this.hang) await new Promise(() => undefined);
    if (this.fail_next > 0) {
      this.fail_next--;
      throw new Error('broker unreachable');
    }
    if (this.gate !== null) await this.gate;
    this.batches.push(events);
  }
  async reset(): Promise<void> {
    this.resets++;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  delivered(): KafkaMessage[] {
    return this.batches.flat();
  }
}

async function setup(dir = mkdtempSync(join(tmpdir(), 'emitter-test-'))) {
  dirs.push(dir);
  const pool = new WorkerPool({
    worker_count: 2, partition_count: 4, data_dir: dir, node_id: 'n', behaviour_url,
    mailbox_depth_max: 10_000, mailbox_batch_size_max: 64, snapshot_every_records: 1_000_000, revive,
  });
  await pool.start();
  cleanups.push(() => pool.close());
  return { pool, dir };
}

function start_emitter(pool: WorkerPool, sink: EventSink, overrides: Partial<ConstructorParameters<typeof OutboxEmitter>[0]> = {}) {
  const metrics = new Metrics();
  const emitter = new OutboxEmitter({
    source: pool, sink, codec, topic_prefix: 't.', metrics, log, retry_delay_ms: 5, retry_delay_ms_max: 20, idle_poll_ms: 50, ...overrides,
  });
  emitter.start();
  cleanups.push(() => emitter.stop());
  return { emitter, metrics };
}

function released(pool: WorkerPool, partition: number, key: string, count: number): Promise<unknown> {
  return pool.request(partition, {
    k: 'emit', key, count, type: 'HoldReleased', payload: { hold_id: `${key}-{i}`, event_id: key, released_at_unix: 1, trace_id: `trace-${key}-{i}` },
  } satisfies CounterRequest);
}

async function outbox_size(pool: WorkerPool): Promise<number> {
  let total = 0;
  for (const [worker, partitions] of pool.partitions_by_worker().entries()) {
    const reply = await pool.outbox_read(worker, { cursors: partitions.map((partition) => ({ partition, after_seq: 0 })), limit: 2000, limit_per_partition: 2000, requeue_parked: false });
    total += reply.entries.length;
  }
  return total;
}

async function until(check: () => boolean | Promise<boolean>, tries = 1000): Promise<void> {
  for (let i = 0; i < tries && !(await check()); i++) await sleep(10);
}

async function value_of(metric: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> }, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await metric.get();
  return values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
}

test('delivers every entry, per partition in seq order, and deletes it only after the acknowledgement', async () => {
  const { pool } = await setup();
  const sink = new FakeSink();
  const { metrics } = start_emitter(pool, sink);
  await Promise.all([released(pool, 0, 'evt-a', 30), released(pool, 1, 'evt-b', 20), released(pool, 2, 'evt-c', 5)]);
  for (let i = 0; i < 10; i++) await released(pool, 3, 'evt-d', 1); // trickle: woken per entry
  await until(() => sink.delivered().length >= 65);
  await until(async () => (await outbox_size(pool)) === 0);
  const delivered = sink.delivered();
  assert.is(delivered.length, 65, 'each exactly once when nothing fails');
  assert.is(new Set(delivered.map((e) => e.headers['event-id'])).size, 65);
  for (const key of ['evt-a', 'evt-b', 'evt-c']) {
    const holds = delivered.filter((e) => e.key === key).map((e) => String(codec.decode('HoldReleased', e.value)['hold_id']));
    assert.equal(holds, holds.map((_, i) => `${key}-${i}`), `${key} in order`);
  }
  const first = delivered.find((e) => e.key === 'evt-a')!;
  assert.is(first.topic, 't.ticketing.events.v1.HoldReleased');
  assert.equal(first.headers, { 'event-id': 'n-p0-1', 'trace-id': 'trace-evt-a-0', 'content-type': 'application/x-protobuf' });
  assert.is(await outbox_size(pool), 0);
  assert.is(await value_of(metrics.kafka_sent), 65);
  assert.ok(sink.batches.some((b) => b.length > 1), 'many records per send');
  assert.is(await value_of(metrics.kafka_errors), 0);
});

test('a failing broker: every failed send counted, entries kept, the producer reset, then all delivered', async () => {
  const { pool } = await setup();
  const sink = new FakeSink();
  sink.fail_next = 7;
  let open = (): void => undefined;
  sink.gate = new Promise((resolve) => (open = resolve));
  const { emitter, metrics } = start_emitter(pool, sink);
  await released(pool, 0, 'evt-a', 10);
  // The 8th send waits at the gate: after 7 failures nothing was delivered and nothing deleted.
  await until(() => sink.fail_next === 0 && sink.started >= 8);
  assert.is(sink.batches.length, 0, 'nothing delivered while the broker failed');
  assert.is(await outbox_size(pool), 10, 'every entry kept while its sends failed');
  sink.gate = null;
  open();
  await until(() => sink.delivered().length >= 10);
  await until(async () => (await outbox_size(pool)) === 0);
  assert.is(await value_of(metrics.kafka_errors), 7);
  assert.is(sink.resets, 7, 'a fresh producer after every failed send');
  assert.equal(sink.delivered().map((e) => e.headers['event-id']), Array.from({ length: 10 }, (_, i) => `n-p0-${i + 1}`));
  assert.equal(emitter.status(), { failing: false, consecutive_failures: 0, last_error: undefined, sent: 10 });
});

test('while sends fail nothing is deleted; the status says why', async () => {
  const { pool } = await setup();
  const sink = new FakeSink();
  sink.fail_next = Number.MAX_SAFE_INTEGER;
  const { emitter } = start_emitter(pool, sink);
  await released(pool, 2, 'evt-c', 3);
  await until(() => emitter.status().consecutive_failures >= 3);
  assert.is(await outbox_size(pool), 3);
  assert.equal({ ...emitter.status(), consecutive_failures: 0 }, { failing: true, consecutive_failures: 0, last_error: 'broker unreachable', sent: 0 });
});

test('unknown type and bad payload: parked and counted, the rest still delivered; requeued when an emitter starts', async () => {
  const { pool } = await setup();
  const sink = new FakeSink();
  const first = start_emitter(pool, sink);
  await pool.request(0, { k: 'emit', key: 'x', count: 2, type: 'FromTheFuture' } satisfies CounterRequest);
  await pool.request(0, { k: 'emit', key: 'y', count: 1, type: 'HoldCreated', payload: { seat_ids: 'not-a-list' } } satisfies CounterRequest);
  await released(pool, 0, 'evt-a', 3);
  await until(() => sink.delivered().length >= 3);
  await until(async () => (await outbox_size(pool)) === 0);
  assert.equal(sink.delivered().map((e) => e.headers['event-id']), ['n-p0-4', 'n-p0-5', 'n-p0-6'], 'later entries are not held back');
  assert.is(await value_of(first.metrics.outbox_parked, { reason: 'unknown_type' }), 2);
  assert.is(await value_of(first.metrics.outbox_parked, { reason: 'invalid_payload' }), 1);
  await first.emitter.stop();

  // A new emitter (e.g. after an upgrade) gets them back; still unknown here, so parked again.
  const second = start_emitter(pool, sink);
  await until(async () => (await value_of(second.metrics.outbox_parked, { reason: 'unknown_type' })) === 2);
  assert.is(await value_of(second.metrics.outbox_parked, { reason: 'unknown_type' }), 2);
  await until(async () => (await outbox_size(pool)) === 0);
  assert.is(sink.delivered().length, 3);
});

test('stop(): a send that never completes is abandoned and its entries stay; the producer is closed', async () => {
  const { pool } = await setup();
  const sink = new FakeSink();
  sink.hang = true;
  const { emitter } = start_emitter(pool, sink, { stop_wait_ms: 100 });
  await released(pool, 1, 'evt-b', 4);
  await until(() => sink.started > 0);
  await emitter.stop();
  assert.ok(sink.closed);
  assert.is(await outbox_size(pool), 4, 'nothing deleted without an acknowledgement');
});

test('stop(): a send in flight that completes is acknowledged before stop resolves', async () => {
  const { pool } = await setup();
  let release_send: () => void = () => undefined;
  const sink = new FakeSink();
  const gate = new Promise<void>((resolve) => (release_send = resolve));
  let waiting = 0;
  const slow: EventSink = {
    send: async (events) => {
      waiting++;
      await gate;
      await sink.send(events);
    },
    reset: () => sink.reset(),
    close: () => sink.close(),
  };
  const { emitter } = start_emitter(pool, slow);
  await released(pool, 3, 'evt-d', 2);
  await until(() => waiting > 0);
  const stopped = emitter.stop();
  release_send();
  await stopped;
  assert.is(sink.delivered().length, 2);
  assert.is(await outbox_size(pool), 0);
});

test.run();

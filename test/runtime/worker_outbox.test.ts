// The outbox across threads: the main thread reads bounded batches of a worker's outbox in seq
// order and acknowledges (deletes) or parks them through the pool; a reader that found nothing
// is woken by the next durable entry; a dead worker fails what was in flight, typed; the cap
// trims oldest first inside the worker.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AssertionError } from '../../src/util/assert.js';
import { ShuttingDownError, WorkerUnavailableError } from '../../src/runtime/errors.js';
import { outbox_read_batch_max, type OutboxReadRequest } from '../../src/runtime/outbox.js';
import { WorkerPool, type PoolOptions } from '../../src/runtime/pool.js';
import { outbox_cap_of } from '../../src/kafka/start.js';
import { serve_defaults } from '../../src/node/config.js';
import { PartitionStore } from '../../src/runtime/store.js';
import { store_dir } from '../../src/runtime/store_env.js';
import { StoreReader } from '../../src/runtime/store_reader.js';
import { outbox_entries, parked_entries } from './store_helpers.js';
import { revive, type CounterRequest } from './fixtures/counter_behaviour.js';
import { guarded_after, guarded_after_each } from '../guard.js';

const behaviour_url = new URL('./fixtures/counter_behaviour.js', import.meta.url).href;
const dirs: string[] = [];
const pools = new Set<WorkerPool>();

function temp_dir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'outbox-test-'));
  dirs.push(dir);
  return dir;
}

async function start_pool(dir: string, overrides: Partial<PoolOptions> = {}): Promise<WorkerPool> {
  const pool = new WorkerPool({
    worker_count: 2, partition_count: 4, data_dir: dir, node_id: 'n', behaviour_url,
    mailbox_depth_max: 10_000, mailbox_batch_size_max: 64, snapshot_every_records: 1_000_000,
    restart_delay_ms: 10, restart_delay_ms_max: 100, revive, ...overrides,
  });
  pools.add(pool);
  await pool.start();
  return pool;
}

guarded_after_each(test, async () => {
  for (const pool of [...pools]) {
    await pool.close();
    pools.delete(pool);
  }
});
guarded_after(test, () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function emit(pool: WorkerPool, partition: number, key: string, count: number, type?: string): Promise<unknown> {
  return pool.request(partition, { k: 'emit', key, count, type } satisfies CounterRequest);
}

function read_all(after: Record<number, number> = {}, limit = 100, limit_per_partition = limit): (partitions: number[]) => OutboxReadRequest {
  return (partitions) => ({
    cursors: partitions.map((partition) => ({ partition, after_seq: after[partition] ?? 0 })),
    limit, limit_per_partition, requeue_parked: false,
  });
}

async function poll<T>(probe: () => Promise<T> | T, done: (value: T) => boolean, tries = 500): Promise<T> {
  let value = await probe();
  for (let i = 0; i < tries && !done(value); i++) {
    await sleep(10);
    value = await probe();
  }
  return value;
}

test('outbox_read: per partition in seq order, after the cursor, within both limits', async () => {
  const pool = await start_pool(temp_dir());
  assert.equal(pool.partitions_by_worker(), [[0, 2], [1, 3]]);
  await emit(pool, 0, 'a', 5);
  await emit(pool, 2, 'b', 3);
  await emit(pool, 1, 'c', 2);
  const worker0 = await pool.outbox_read(0, read_all()([0, 2]));
  assert.equal(worker0.entries.map((e) => [e.partition, e.seq]), [[0, 1], [0, 2], [0, 3], [0, 4], [0, 5], [2, 1], [2, 2], [2, 3]]);
  const first = worker0.entries[0]!.record;
  assert.equal({ ...first, created_ms: 0 }, { type: 'Emitted', key: 'a', payload: { key: 'a', i: 0 }, event_id: 'n-p0-1', created_ms: 0 });
  assert.ok(first.created_ms > 0);
  assert.equal((await pool.outbox_read(1, read_all()([1, 3]))).entries.map((e) => e.record.event_id), ['n-p1-1', 'n-p1-2']);
  // limit_per_partition keeps a backlog in one partition from starving the next.
  const fair = await pool.outbox_read(0, read_all({}, 4, 2)([0, 2]));
  assert.equal(fair.entries.map((e) => [e.partition, e.seq]), [[0, 1], [0, 2], [2, 1], [2, 2]]);
  // The cursor order is the reading order: rotated, partition 2 goes first.
  const rotated = await pool.outbox_read(0, read_all({ 0: 3 }, 3)([2, 0]));
  assert.equal(rotated.entries.map((e) => [e.partition, e.seq]), [[2, 1], [2, 2], [2, 3]]);
  const after = await pool.outbox_read(0, read_all({ 0: 3, 2: 3 })([0, 2]));
  assert.equal(after.entries.map((e) => [e.partition, e.seq]), [[0, 4], [0, 5]]);
});

test('outbox_ack: deletes only what it names, durably; park moves aside and requeue brings back', async () => {
  const dir = temp_dir();
  let pool = await start_pool(dir);
  await emit(pool, 0, 'a', 4);
  await emit(pool, 2, 'b', 2);
  const reply = await pool.outbox_ack(0, [{ partition: 0, seqs: [1, 2], park: [3] }, { partition: 2, seqs: [1], park: [] }]);
  assert.equal(reply, { removed: 3, parked: 1 });
  assert.equal((await pool.outbox_ack(0, [{ partition: 0, seqs: [1, 2], park: [] }])), { removed: 0, parked: 0 }, 'repeat is harmless');
  const left = await pool.outbox_read(0, read_all()([0, 2]));
  assert.equal(left.entries.map((e) => [e.partition, e.seq]), [[0, 4], [2, 2]]);
  await pool.close();
  pools.delete(pool);

  const store = new PartitionStore(0, dir, 'n');
  store.recover();
  assert.equal(outbox_entries(store).map((e) => e.seq), [4], 'acknowledged entries are gone from disk');
  assert.equal(parked_entries(store).map((e) => e.seq), [3]);
  await store.close();

  pool = await start_pool(dir);
  const requeued = await pool.outbox_read(0, { ...read_all()([0, 2]), requeue_parked: true });
  assert.is(requeued.requeued, 1);
  assert.equal(requeued.entries.map((e) => [e.partition, e.seq]), [[0, 3], [0, 4], [2, 2]]);
});

test('outbox_ready: a read that found nothing is woken once by the next durable entry', async () => {
  const pool = await start_pool(temp_dir());
  const ready: number[] = [];
  pool.on('outbox_ready', (w) => ready.push(w));
  await emit(pool, 1, 'x', 1);
  // A round trip to the same worker instead of a sleep: a wake-up posted after the commit
  // would arrive before this reply (one port, in order).
  await pool.request(1, { k: 'get', key: 'x' } satisfies CounterRequest);
  assert.equal(ready, [], 'nobody asked: no wake-up');
  assert.is((await pool.outbox_read(0, read_all()([0, 2]))).entries.length, 0);
  await emit(pool, 2, 'y', 1);
  await poll(() => ready.length, (n) => n > 0);
  assert.equal(ready, [0]);
  await emit(pool, 2, 'y', 1);
  await pool.request(2, { k: 'get', key: 'y' } satisfies CounterRequest);
  assert.equal(ready, [0], 'once per empty read');
});

test('worker exit: outbox reads and acks in flight fail with WorkerUnavailableError; recovering and closing refuse typed', async () => {
  const pool = await start_pool(temp_dir(), { restart_delay_ms: 200, restart_delay_ms_max: 200 });
  await emit(pool, 0, 'a', 2);
  // The worker is busy far longer than any stall of this machine (it is terminated, not waited
  // for), and the read and ack are posted after the busy request on the same port: they are
  // queued behind it at the exit whatever the timing.
  const busy = pool.request(0, { k: 'sleep', ms: 600_000 } satisfies CounterRequest).catch((e: unknown) => e);
  const read = pool.outbox_read(0, read_all()([0, 2])).then(() => 'resolved', (e: unknown) => e);
  const ack = pool.outbox_ack(0, [{ partition: 0, seqs: [1], park: [] }]).then(() => 'resolved', (e: unknown) => e);
  await pool.terminate_worker(0);
  assert.instance(await read, WorkerUnavailableError);
  assert.instance(await ack, WorkerUnavailableError);
  assert.instance(await busy, WorkerUnavailableError);
  const while_down = await pool.outbox_read(0, read_all()([0, 2])).catch((e: unknown) => e);
  assert.instance(while_down, WorkerUnavailableError);
  await pool.until_ready(0);
  assert.equal((await pool.outbox_read(0, read_all()([0, 2]))).entries.map((e) => e.seq), [1, 2], 'nothing was deleted');
  await pool.close();
  assert.instance(await pool.outbox_read(1, read_all()([1, 3])).catch((e: unknown) => e), ShuttingDownError);
});

test('bad outbox requests are caught before they reach a worker', async () => {
  const pool = await start_pool(temp_dir());
  assert.throws(() => pool.outbox_read(0, read_all()([1])), (e: unknown) => e instanceof AssertionError, 'partition of another worker');
  assert.throws(() => pool.outbox_ack(1, [{ partition: 0, seqs: [1], park: [] }]), (e: unknown) => e instanceof AssertionError);
  assert.is(outbox_read_batch_max, 2_000);
});

test('cap: each worker trims its partitions to its share of the node cap, oldest first, and reports what it dropped', async () => {
  // 2 workers × 2 of 4 partitions: each keeps 6 × 2/4 = 3.
  const pool = await start_pool(temp_dir(), { outbox_cap: { entries_max: 6, age_ms: null } });
  let trimmed = 0;
  pool.on('stats', (_w, stats) => (trimmed += stats.counters['outbox_trimmed_count'] ?? 0));
  await emit(pool, 0, 'a', 10);
  await emit(pool, 1, 'b', 2);
  const left = await poll(() => pool.outbox_read(0, read_all()([0, 2])), (r) => r.entries.length === 3);
  assert.equal(left.entries.map((e) => e.seq), [8, 9, 10], 'the newest stay');
  assert.is((await pool.outbox_read(1, read_all()([1, 3]))).entries.length, 2, 'under the cap: untouched');
  await poll(() => trimmed, (n) => n >= 7);
  assert.is(trimmed, 7);
});

test('cap by age: entries older than age_ms by the worker clock are trimmed', async () => {
  const pool = await start_pool(temp_dir(), { outbox_cap: { entries_max: 1_000, age_ms: 60_000 } });
  await emit(pool, 0, 'old', 2);
  pool.advance_clock(61_000);
  await emit(pool, 0, 'new', 1);
  const left = await poll(() => pool.outbox_read(0, read_all()([0, 2])), (r) => r.entries.length === 1);
  assert.equal(left.entries.map((e) => e.record.key), ['new']);
});

test('node-wide cap (--outbox-max-entries 8, 4 partitions): one partition keeps more than 8/4 while the node is under 8; over it, the oldest across partitions go first', async () => {
  const cap = outbox_cap_of({ ...serve_defaults, kafka_brokers: undefined, outbox_max_entries: 8, outbox_max_age_s: 86_400 }, 4);
  const pool = await start_pool(temp_dir(), { worker_count: 1, outbox_cap: cap });
  let trimmed = 0;
  let reports = 0;
  pool.on('stats', (_w, stats) => {
    trimmed += stats.counters['outbox_trimmed_count'] ?? 0;
    reports++;
  });
  const seqs = async (partition: number): Promise<number[]> => (await pool.outbox_read(0, read_all()([partition]))).entries.map((e) => e.seq);
  await emit(pool, 3, 'busy', 6);
  // Trim passes run every second as the stats reports do: after three reports, some passes ran.
  const seen = reports;
  await poll(() => reports, (n) => n >= seen + 3);
  assert.equal(await seqs(3), [1, 2, 3, 4, 5, 6], 'one busy partition keeps all 6 (the node holds 6 of 8)');
  assert.is(trimmed, 0);
  // Later entries elsewhere (the worker clock moves on, so creation times are ordered).
  pool.advance_clock(1_000);
  await emit(pool, 1, 'b', 2);
  pool.advance_clock(1_000);
  await emit(pool, 0, 'c', 3);
  // 11 > 8: the 3 oldest of the node go, all of them partition 3's (by creation time, not by
  // partition number: the lower partitions hold the younger entries).
  await poll(() => trimmed, (n) => n >= 3);
  assert.equal(await seqs(3), [4, 5, 6]);
  assert.equal(await seqs(1), [1, 2]);
  assert.equal(await seqs(0), [1, 2, 3]);
  pool.advance_clock(1_000);
  await emit(pool, 2, 'd', 3);
  // 11 again: partition 3's 4, 5, 6 are still the oldest.
  await poll(() => trimmed, (n) => n >= 6);
  assert.equal(await seqs(3), []);
  assert.equal(await seqs(1), [1, 2]);
  assert.equal(await seqs(0), [1, 2, 3]);
  assert.equal(await seqs(2), [1, 2, 3]);
  assert.is(trimmed, 6);
});

test('outbox_ack on an idle node: acknowledged entries are deleted on disk soon without any other commit', async () => {
  const dir = temp_dir();
  const pool = await start_pool(dir);
  await emit(pool, 0, 'a', 3);
  assert.equal(await pool.outbox_ack(0, [{ partition: 0, seqs: [1, 2], park: [] }]), { removed: 2, parked: 0 });
  assert.equal((await pool.outbox_read(0, read_all()([0, 2]))).entries.map((e) => e.seq), [3], 'gone for readers at once');
  const reader = new StoreReader(store_dir(dir, 0));
  try {
    const on_disk = await poll(async () => reader.outbox_after(0, 0, 10).map((e) => e.seq), (seqs) => seqs.length === 1);
    assert.equal(on_disk, [3]);
  } finally {
    await reader.close();
  }
});

test.run();

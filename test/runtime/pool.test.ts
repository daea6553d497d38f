import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MailboxFullError, ShuttingDownError, WorkerUnavailableError } from '../../src/runtime/errors.js';
import { partition_of, worker_of } from '../../src/runtime/partition.js';
import { WorkerPool, type PoolOptions } from '../../src/runtime/pool.js';
import { packr } from '../../src/runtime/codec.js';
import type { OutboxRecord } from '../../src/runtime/outbox.js';
import { PartitionStore } from '../../src/runtime/store.js';
import { outbox_entries } from './store_helpers.js';
import { NegativeError, revive, type CounterRequest, type CounterSnapshot } from './fixtures/counter_behaviour.js';
import { guarded_after, guarded_after_each } from '../guard.js';

const behaviour_url = new URL('./fixtures/counter_behaviour.js', import.meta.url).href;
const checked_behaviour_url = new URL('./fixtures/checked_counter_behaviour.js', import.meta.url)
  .href;

const dirs: string[] = [];
function temp_dir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pool-test-'));
  dirs.push(dir);
  return dir;
}

const open_pools = new Set<WorkerPool>();

async function start_pool(data_dir: string, overrides: Partial<PoolOptions> = {}): Promise<WorkerPool> {
  const pool = new WorkerPool({
    worker_count: 2,
    partition_count: 8,
    data_dir,
    node_id: 'test-node',
    behaviour_url,
    mailbox_depth_max: 10_000,
    mailbox_batch_size_max: 64,
    snapshot_every_records: 1_000_000,
    restart_delay_ms: 10,
    restart_delay_ms_max: 100,
    revive,
    ...overrides,
  });
  open_pools.add(pool);
  await pool.start();
  return pool;
}

async function close_pool(pool: WorkerPool): Promise<void> {
  await pool.close();
  open_pools.delete(pool);
}

// Safety net: a failed assertion must not leave worker threads keeping the process alive.
guarded_after_each(test, async () => {
  for (const pool of [...open_pools]) await close_pool(pool);
});

guarded_after(test, () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function req(pool: WorkerPool, partition: number, body: CounterRequest): Promise<unknown> {
  return pool.request(partition, body);
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

function outcome(promise: Promise<unknown>): Promise<Outcome> {
  return promise.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }));
}

function is_named(error: unknown, name: string): boolean {
  return error instanceof Error && error.name === name;
}

/** Repeats `probe` (with a short pause between tries) until `done` holds; bounded tries. */
async function poll<T>(probe: () => Promise<T>, done: (value: T) => boolean, tries = 500): Promise<T> {
  let value = await probe();
  for (let i = 0; i < tries && !done(value); i++) {
    await sleep(10);
    value = await probe();
  }
  return value;
}

async function store_recover(dir: string, partition: number): Promise<{ counters: Map<string, number>; snapshot: unknown; tail_batches: number; outbox: OutboxRecord[] }> {
  // Replays a partition's disk state with the counter behaviour's own semantics.
  const store = new PartitionStore<{ r: string; key?: string; n?: number }>(partition, dir, 'test-node');
  try {
    const r = store.recover();
    const counters = new Map<string, number>(r.snapshot === undefined ? [] : (r.snapshot as CounterSnapshot).counters);
    for (const batch of r.tail) {
      for (const record of batch) {
        if (record.r === 'add') counters.set(record.key!, (counters.get(record.key!) ?? 0) + record.n!);
      }
    }
    const outbox = outbox_entries(store).map(({ record }) => record);
    return { counters, snapshot: r.snapshot, tail_batches: r.tail.length, outbox };
  } finally {
    await store.close();
  }
}

test('requests route to the partition that owns them and replies come back', async () => {
  const dir = temp_dir();
  const pool = await start_pool(dir, { worker_count: 3, partition_count: 8 });
  for (let p = 0; p < 8; p++) assert.is(await req(pool, p, { k: 'where' }), p);
  // Same key in different partitions: independent counters.
  for (let p = 0; p < 8; p++) assert.is(await req(pool, p, { k: 'add', key: 'x', n: p + 1 }), p + 1);
  for (let p = 0; p < 8; p++) assert.is(await req(pool, p, { k: 'get', key: 'x' }), p + 1);
  // Routing by key: each key lands in partition_of(key).
  const keys = ['alpha', 'beta', 'gamma', 'delta', 'epsilon'];
  for (const key of keys) await req(pool, partition_of(key, 8), { k: 'add', key, n: 100 });
  await close_pool(pool);
  for (let p = 0; p < 8; p++) {
    const { counters } = await store_recover(dir, p);
    assert.is(counters.get('x'), p + 1);
    for (const key of keys) assert.is(counters.get(key), partition_of(key, 8) === p ? 100 : undefined, `${key} in p${p}`);
  }
});

test('2000 concurrent requests are batched and all resolve correctly', async () => {
  const dir = temp_dir();
  const pool = await start_pool(dir, { worker_count: 2, partition_count: 8, mailbox_batch_size_max: 32 });
  const committed_records: number[] = [];
  const stats_seen = new Set<number>();
  pool.on('stats', (w, stats) => {
    committed_records.push(...stats.batch_records);
    stats_seen.add(w);
  });
  const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
  const promises: Promise<unknown>[] = [];
  const expected = new Map<string, number>();
  const replies_per_key = new Map<string, number[]>();
  for (let i = 0; i < 2000; i++) {
    const key = keys[i % keys.length]!;
    const n = (i % 7) + 1;
    expected.set(key, (expected.get(key) ?? 0) + n);
    const p = req(pool, partition_of(key, 8), { k: 'add', key, n }).then((value) => {
      const list = replies_per_key.get(key) ?? [];
      list.push(value as number);
      replies_per_key.set(key, list);
      return value;
    });
    promises.push(p);
  }
  const values = await Promise.all(promises);
  assert.is(values.length, 2000);
  // Per key, replies are the running totals in send order: 1..n of them, strictly increasing.
  for (const key of keys) {
    const list = replies_per_key.get(key)!;
    assert.is(list.length, 100);
    for (let i = 1; i < list.length; i++) assert.ok(list[i]! > list[i - 1]!, `${key} replies increase`);
    assert.is(list[list.length - 1], expected.get(key));
  }
  for (const key of keys) assert.is(await req(pool, partition_of(key, 8), { k: 'get', key }), expected.get(key));
  assert.equal(pool.mailbox_depths(), [0, 0]);
  // Group commit: the workers report every commit (one per partition per batch) in their next
  // stats message. Wait for one from each worker issued after all replies, then check that the
  // 2000 records went to disk in fewer, fuller commits.
  stats_seen.clear();
  await poll(async () => stats_seen.size, (n) => n === 2, 1000);
  assert.is(stats_seen.size, 2, 'both workers reported stats');
  assert.is(committed_records.reduce((a, b) => a + b, 0), 2000, 'every record committed exactly once');
  assert.ok(committed_records.length < 2000, `batched: ${committed_records.length} commits for 2000 records`);
  assert.ok(Math.max(...committed_records) > 1, 'some commit carried several records');
  await close_pool(pool);
  // And the final counters are on disk.
  for (const key of keys) assert.is((await store_recover(dir, partition_of(key, 8))).counters.get(key), expected.get(key));
});

test('a rejection arrives as a typed error and changes nothing', async () => {
  const dir = temp_dir();
  let pool = await start_pool(dir);
  assert.is(await req(pool, 1, { k: 'add', key: 'a', n: 5 }), 5);
  const o = await outcome(req(pool, 1, { k: 'add', key: 'a', n: -10 }));
  assert.not.ok(o.ok);
  if (!o.ok) {
    assert.instance(o.error, NegativeError);
    assert.is((o.error as Error).name, 'NegativeError');
    assert.match((o.error as Error).message, 'would become -5');
  }
  // A rejection in the middle of a batch does not disturb its neighbours.
  const mixed = await Promise.all([
    outcome(req(pool, 1, { k: 'add', key: 'a', n: 1 })),
    outcome(req(pool, 1, { k: 'add', key: 'a', n: -100 })),
    outcome(req(pool, 1, { k: 'add', key: 'a', n: 1 })),
  ]);
  assert.equal(mixed.map((m) => m.ok), [true, false, true]);
  assert.is(mixed[2]!.ok && mixed[2]!.value, 7);
  assert.is(await req(pool, 1, { k: 'get', key: 'a' }), 7);
  assert.ok(pool.ready(), 'a rejection does not kill the worker');
  assert.is(pool.restarts(), 0);
  await close_pool(pool);
  pool = await start_pool(dir);
  assert.is(await req(pool, 1, { k: 'get', key: 'a' }), 7, 'nothing of the rejected requests was journaled');
  await close_pool(pool);
});

test('a refusal decided with records arrives as the same revived class as a thrown one; its records are durable', async () => {
  const dir = temp_dir();
  let pool = await start_pool(dir);
  const refused = await outcome(req(pool, 1, { k: 'add_refused', key: 'a', n: 4 }));
  const thrown = await outcome(req(pool, 1, { k: 'add', key: 'a', n: -10 }));
  assert.ok(!refused.ok && !thrown.ok, 'both refused');
  if (!refused.ok && !thrown.ok) {
    assert.instance(refused.error, NegativeError);
    assert.is((refused.error as Error).constructor, (thrown.error as Error).constructor, 'one class either way');
    assert.is((refused.error as Error).message, 'a became 4, refused all the same');
  }
  assert.is(await req(pool, 1, { k: 'get', key: 'a' }), 4, 'the refused decision\'s add was applied');
  await close_pool(pool);
  pool = await start_pool(dir);
  assert.is(await req(pool, 1, { k: 'get', key: 'a' }), 4, 'and journaled');
  await close_pool(pool);
});

test('mailbox_depth_max: requests beyond the limit are refused at once, admitted ones complete', async () => {
  const dir = temp_dir();
  const pool = await start_pool(dir, { worker_count: 1, partition_count: 2, mailbox_depth_max: 4 });
  const settled: (Outcome | undefined)[] = [];
  const track = (i: number, p: Promise<unknown>): Promise<Outcome> => outcome(p).then((o) => (settled[i] = o));
  const all: Promise<Outcome>[] = [];
  all.push(track(0, req(pool, 0, { k: 'sleep', ms: 300 })));
  for (let i = 1; i < 10; i++) all.push(track(i, req(pool, i % 2, { k: 'add', key: 'm', n: 1 })));
  assert.equal(pool.mailbox_depths(), [4]);
  // Refusals are already settled after a couple of microtask turns; nothing admitted is.
  for (let i = 0; i < 5; i++) await Promise.resolve();
  for (let i = 4; i < 10; i++) {
    const o = settled[i];
    assert.ok(o !== undefined && !o.ok, `request ${i} refused immediately`);
    if (o !== undefined && !o.ok) {
      assert.instance(o.error, MailboxFullError);
      assert.is((o.error as Error).name, 'MailboxFullError');
    }
  }
  for (let i = 0; i < 4; i++) assert.is(settled[i], undefined, `request ${i} admitted and still pending`);
  const outcomes = await Promise.all(all);
  assert.ok(outcomes.slice(0, 4).every((o) => o.ok), 'admitted requests complete');
  assert.equal(pool.mailbox_depths(), [0]);
  // Requests 1 and 3 went to partition 1, request 2 to partition 0.
  assert.is(await req(pool, 0, { k: 'get', key: 'm' }), 1);
  assert.is(await req(pool, 1, { k: 'get', key: 'm' }), 2);
  // Room again once drained.
  assert.is(await req(pool, 0, { k: 'add', key: 'm', n: 1 }), 2);
  await close_pool(pool);
});

test('worker crash: in-flight requests fail typed, the worker restarts, acknowledged writes survive', async () => {
  const dir = temp_dir();
  // Worker 0 owns partitions 0, 2; worker 1 owns 1, 3. Small batches: several messages in flight.
  const pool = await start_pool(dir, { worker_count: 2, partition_count: 4, mailbox_batch_size_max: 2 });
  const exits: [number, number][] = [];
  pool.on('worker_exit', (w, code) => exits.push([w, code]));
  for (let i = 0; i < 5; i++) await req(pool, 0, { k: 'add', key: 'c', n: 10 });
  await req(pool, 2, { k: 'add', key: 'c', n: 3 });
  await req(pool, 1, { k: 'add', key: 'c', n: 7 });

  const in_flight = [
    req(pool, 0, { k: 'sleep', ms: 50 }),
    req(pool, 0, { k: 'add', key: 'c', n: 1 }),
    req(pool, 2, { k: 'crash' }),
    req(pool, 0, { k: 'add', key: 'c', n: 1 }),
    req(pool, 2, { k: 'add', key: 'c', n: 1 }),
    req(pool, 0, { k: 'get', key: 'c' }),
  ].map(outcome);
  const other_worker = req(pool, 1, { k: 'add', key: 'c', n: 1 });
  const outcomes = await Promise.all(in_flight);
  for (const [i, o] of outcomes.entries()) {
    if (i === 0 && o.ok) continue; // the sleep before the crash may have been answered
    if (i === 1 && o.ok) { assert.is(o.value, 51); continue; } // batch [sleep, add] may have committed
    assert.not.ok(o.ok, `request ${i} did not survive the crash`);
    if (!o.ok) {
      assert.instance(o.error, WorkerUnavailableError, `request ${i}`);
      assert.is((o.error as Error).name, 'WorkerUnavailableError');
    }
  }
  assert.is(await other_worker, 8, 'the other worker is unaffected');
  assert.equal(exits.map(([w]) => w), [0]);
  assert.is(exits[0]![1], 70, 'fatal() exit code');

  // While it restarts, requests to it are refused typed (or it is already back).
  const during = await outcome(req(pool, 0, { k: 'get', key: 'c' }));
  if (!during.ok) assert.instance(during.error, WorkerUnavailableError);
  await pool.until_ready(0);
  assert.ok(pool.ready());
  assert.is(pool.restarts(), 1);
  // Acknowledged writes are all there. Request 1 sat in a batch [sleep, add] ahead of the crash:
  // if it was acknowledged it must be there; if it was refused it may or may not have been
  // applied (WorkerUnavailableError says so), but nothing from the crash's own batch is.
  const recovered_p0 = await req(pool, 0, { k: 'get', key: 'c' });
  if (outcomes[1]!.ok) assert.is(recovered_p0, 51, 'partition 0 recovered from LMDB');
  else assert.ok(recovered_p0 === 50 || recovered_p0 === 51, `partition 0 recovered from LMDB (${String(recovered_p0)})`);
  assert.is(await req(pool, 2, { k: 'get', key: 'c' }), 3, 'partition 2 recovered from LMDB');
  assert.is(await req(pool, 1, { k: 'get', key: 'c' }), 8);
  // And it serves writes again.
  assert.is(await req(pool, 2, { k: 'add', key: 'c', n: 1 }), 4);
  await close_pool(pool);
});

test('crash in a batch: every request of that batch fails, none of its writes are kept', async () => {
  const dir = temp_dir();
  const pool = await start_pool(dir, { worker_count: 1, partition_count: 2, mailbox_batch_size_max: 64 });
  assert.is(await req(pool, 0, { k: 'add', key: 'z', n: 4 }), 4);
  // One batch: adds decided (applied in memory) before the crash must not become durable.
  const batch = [
    req(pool, 0, { k: 'add', key: 'z', n: 100 }),
    req(pool, 1, { k: 'add', key: 'z', n: 100 }),
    req(pool, 0, { k: 'crash' }),
    req(pool, 0, { k: 'add', key: 'z', n: 100 }),
  ].map(outcome);
  for (const o of await Promise.all(batch)) {
    assert.not.ok(o.ok);
    if (!o.ok) assert.instance(o.error, WorkerUnavailableError);
  }
  await pool.until_ready(0);
  assert.is(await req(pool, 0, { k: 'get', key: 'z' }), 4);
  assert.is(await req(pool, 1, { k: 'get', key: 'z' }), 0);
  await close_pool(pool);
});

test('terminate_worker with requests in flight: they fail typed; state equals the acknowledged writes', async () => {
  const dir = temp_dir();
  const pool = await start_pool(dir, { worker_count: 2, partition_count: 4, mailbox_batch_size_max: 3 });
  let acked = 0;
  for (let i = 1; i <= 4; i++) {
    acked += i;
    assert.is(await req(pool, 0, { k: 'add', key: 't', n: i }), acked);
  }
  // The sleep keeps worker 0 busy long past the terminate (terminate interrupts the busy-wait).
  const in_flight = [
    req(pool, 0, { k: 'sleep', ms: 20_000 }),
    ...Array.from({ length: 8 }, (_, i) => req(pool, i % 2 === 0 ? 0 : 2, { k: 'add', key: 't', n: 1000 })),
  ].map(outcome);
  await sleep(20); // let the batches be posted (not required for correctness)
  await pool.terminate_worker(0);
  const outcomes = await Promise.all(in_flight);
  for (const [i, o] of outcomes.entries()) {
    assert.not.ok(o.ok, `request ${i} in flight`);
    if (!o.ok) assert.instance(o.error, WorkerUnavailableError, `request ${i}`);
  }
  assert.equal(pool.mailbox_depths(), [0, 0]);
  await pool.until_ready(0);
  assert.is(await req(pool, 0, { k: 'get', key: 't' }), acked);
  assert.is(await req(pool, 2, { k: 'get', key: 't' }), 0);
  assert.is(pool.restarts(), 1);
  await close_pool(pool);
});

test('durability across pools: journal replay', async () => {
  const dir = temp_dir();
  let pool = await start_pool(dir);
  const expected = new Map<string, number>();
  const writes: Promise<unknown>[] = [];
  for (let i = 0; i < 40; i++) {
    const key = `d${i % 6}`;
    expected.set(key, (expected.get(key) ?? 0) + i);
    writes.push(req(pool, partition_of(key, 8), { k: 'add', key, n: i }));
  }
  await Promise.all(writes);
  await close_pool(pool);

  pool = await start_pool(dir);
  for (const [key, value] of expected) assert.is(await req(pool, partition_of(key, 8), { k: 'get', key }), value);
  await close_pool(pool);
  for (const key of expected.keys()) assert.is((await store_recover(dir, partition_of(key, 8))).snapshot, undefined);
});

test('durability across pools: snapshot + journal tail replay gives the same values', async () => {
  const dir = temp_dir();
  let pool = await start_pool(dir, { worker_count: 1, partition_count: 2, snapshot_every_records: 3 });
  let value = 0;
  // Sequential single-record commits: a snapshot every 3rd, leaving a tail of 1 after 10.
  for (let i = 1; i <= 10; i++) {
    value += i;
    assert.is(await req(pool, 0, { k: 'add', key: 's', n: i }), value);
  }
  // And a concurrent burst on top (multi-record commits).
  const burst = await Promise.all(Array.from({ length: 25 }, () => req(pool, 0, { k: 'add', key: 's', n: 2 })));
  value += 50;
  assert.is(Math.max(...(burst as number[])), value);
  await close_pool(pool);

  const disk = await store_recover(dir, 0);
  assert.ok(disk.snapshot !== undefined, 'a snapshot was written');
  assert.is(disk.counters.get('s'), value, 'snapshot + tail on disk');

  pool = await start_pool(dir, { worker_count: 1, partition_count: 2, snapshot_every_records: 3 });
  assert.is(await req(pool, 0, { k: 'get', key: 's' }), value);
  assert.is(await req(pool, 0, { k: 'add', key: 's', n: 1 }), value + 1);
  await close_pool(pool);
  // Recovery with a different snapshot interval reads the same data.
  pool = await start_pool(dir, { worker_count: 1, partition_count: 2, snapshot_every_records: 1000 });
  assert.is(await req(pool, 0, { k: 'get', key: 's' }), value + 1);
  await close_pool(pool);
});

test('snapshot + tail: a snapshot whose tail is non-empty replays the tail', async () => {
  const dir = temp_dir();
  let pool = await start_pool(dir, { worker_count: 1, partition_count: 1, snapshot_every_records: 3 });
  for (let i = 0; i < 4; i++) await req(pool, 0, { k: 'add', key: 'q', n: 1 });
  await close_pool(pool);
  const disk = await store_recover(dir, 0);
  assert.ok(disk.snapshot !== undefined);
  assert.is(disk.tail_batches, 1, 'commit 4 is in the journal tail');
  pool = await start_pool(dir, { worker_count: 1, partition_count: 1, snapshot_every_records: 3 });
  assert.is(await req(pool, 0, { k: 'get', key: 'q' }), 4);
  await close_pool(pool);
});

test('timers: fire only once the worker clock passes the deadline; outbox entry is durable', async () => {
  const dir = temp_dir();
  const pool = await start_pool(dir, { worker_count: 2, partition_count: 4 });
  const p = 3;
  const before = (await req(pool, p, { k: 'now' })) as number;
  await req(pool, p, { k: 'add', key: 'tick', n: 5 });
  const at_ms = Date.now() + 10_000; // offset is 0: the worker clock is the wall clock
  assert.is(await req(pool, p, { k: 'timer', key: 'tick', at_ms }), at_ms);
  // Not yet due: a few polls see nothing fire.
  for (let i = 0; i < 5; i++) {
    await sleep(10);
    assert.is(await req(pool, p, { k: 'get', key: 'tick' }), 5);
  }
  assert.is(pool.advance_clock(10_000), 10_000);
  const after = await poll(() => req(pool, p, { k: 'get', key: 'tick' }), (v) => v !== 5);
  assert.is(after, 6, 'the timer fired exactly once');
  const now = (await req(pool, p, { k: 'now' })) as number;
  assert.ok(now >= before + 10_000, 'the worker clock moved forward by the offset');
  // Still exactly once after more clock movement.
  // No sleep: the worker runs its timers when the clock message arrives, and this request,
  // posted after it on the same port, is answered only after that run's commit.
  pool.advance_clock(60_000);
  assert.is(await req(pool, p, { k: 'get', key: 'tick' }), 6);
  await close_pool(pool);

  const disk = await store_recover(dir, p);
  assert.is(disk.counters.get('tick'), 6);
  assert.is(disk.outbox.length, 1);
  const entry = disk.outbox[0]!;
  assert.is(entry.type, 'Fired');
  assert.is(entry.key, 'tick');
  assert.equal(entry.payload, { key: 'tick' });
  assert.is(entry.event_id, `test-node-p${p}-1`);
  assert.ok(entry.created_ms >= at_ms, 'created at the moved clock');
});

test('timers: a timer due while the pool was down fires on recovery', async () => {
  const dir = temp_dir();
  let pool = await start_pool(dir, { worker_count: 1, partition_count: 1 });
  await req(pool, 0, { k: 'timer', key: 'late', at_ms: Date.now() + 5_000 });
  await close_pool(pool);
  // A new pool whose clock already sits past the deadline: recovery fires it.
  pool = await start_pool(dir, { worker_count: 1, partition_count: 1, clock_offset_ms: 5_000 });
  const value = await poll(() => req(pool, 0, { k: 'get', key: 'late' }), (v) => v !== 0);
  assert.is(value, 1);
  await close_pool(pool);
  assert.is((await store_recover(dir, 0)).outbox.length, 1);
});

test('close(): pending requests complete first; later requests are refused with ShuttingDownError', async () => {
  const dir = temp_dir();
  let pool = await start_pool(dir, { mailbox_batch_size_max: 8 });
  const settled: Outcome[] = [];
  const pending: Promise<unknown>[] = [];
  pending.push(req(pool, 0, { k: 'sleep', ms: 100 }));
  for (let i = 0; i < 50; i++) pending.push(req(pool, i % 8, { k: 'add', key: 'w', n: 1 }));
  for (const p of pending) void outcome(p).then((o) => settled.push(o));
  const closing = pool.close();
  const during = await outcome(req(pool, 0, { k: 'get', key: 'w' }));
  await closing;
  open_pools.delete(pool);
  assert.is(settled.length, pending.length, 'every pending request settled before close resolved');
  assert.ok(settled.every((o) => o.ok), 'and every one succeeded');
  assert.not.ok(during.ok);
  if (!during.ok) assert.instance(during.error, ShuttingDownError);
  const after = await outcome(req(pool, 1, { k: 'add', key: 'w', n: 1 }));
  assert.not.ok(after.ok);
  if (!after.ok) {
    assert.instance(after.error, ShuttingDownError);
    assert.ok(is_named(after.error, 'ShuttingDownError'));
  }
  await pool.close(); // idempotent

  pool = await start_pool(dir, { mailbox_batch_size_max: 8 });
  let total = 0;
  for (let p = 0; p < 8; p++) total += (await req(pool, p, { k: 'get', key: 'w' })) as number;
  assert.is(total, 50);
  await close_pool(pool);
});

/** Turns a hang into a failure (a watchdog, not a timing assertion). */
async function within<T>(promise: Promise<T>, what: string, limit_ms = 30_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const watchdog = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish`)), limit_ms);
  });
  try {
    return await Promise.race([promise, watchdog]);
  } finally {
    clearTimeout(timer);
  }
}

/** Test-only peek at a slot's private state. */
function slot_of(pool: WorkerPool, index: number): { status: string; worker: unknown } {
  return (pool as unknown as { slots: { status: string; worker: unknown }[] }).slots[index]!;
}

test('close() while a dead worker waits for its restart', async () => {
  const dir = temp_dir();
  const pool = await start_pool(dir, { worker_count: 2, partition_count: 4, restart_delay_ms: 60_000, restart_delay_ms_max: 60_000 });
  await req(pool, 0, { k: 'add', key: 'r', n: 1 });
  await pool.terminate_worker(0);
  assert.not.ok(pool.ready());
  const o = await outcome(req(pool, 0, { k: 'get', key: 'r' }));
  assert.not.ok(o.ok);
  if (!o.ok) assert.instance(o.error, WorkerUnavailableError);
  await within(close_pool(pool), 'close');
  assert.is(slot_of(pool, 0).worker, undefined, 'no replacement started after close');
});

test('close() while a replacement worker is still recovering', async () => {
  const dir = temp_dir();
  const pool = await start_pool(dir, { worker_count: 1, partition_count: 2, restart_delay_ms: 1, restart_delay_ms_max: 1 });
  assert.is(await req(pool, 1, { k: 'add', key: 'r', n: 2 }), 2);
  await pool.terminate_worker(0);
  await poll(async () => slot_of(pool, 0).status, (s) => s === 'starting', 1000);
  assert.is(slot_of(pool, 0).status, 'starting');
  await within(close_pool(pool), 'close during recovery');
  assert.ok(['closed', 'dead'].includes(slot_of(pool, 0).status));
  const again = await start_pool(dir, { worker_count: 1, partition_count: 2 });
  assert.is(await req(again, 1, { k: 'get', key: 'r' }), 2);
  await close_pool(again);
});

test('start() rejects typed when the behaviour cannot be loaded; close() still returns', async () => {
  const dir = temp_dir();
  const pool = new WorkerPool({
    worker_count: 1,
    partition_count: 1,
    data_dir: dir,
    node_id: 'test-node',
    behaviour_url: new URL('./fixtures/does_not_exist.js', import.meta.url).href,
    mailbox_depth_max: 10,
    mailbox_batch_size_max: 10,
    snapshot_every_records: 10,
    restart_delay_ms: 5,
    restart_delay_ms_max: 5,
    revive,
  });
  open_pools.add(pool);
  const o = await outcome(within(pool.start(), 'start'));
  assert.not.ok(o.ok);
  if (!o.ok) assert.instance(o.error, WorkerUnavailableError);
  const r = await outcome(req(pool, 0, { k: 'get', key: 'x' }));
  assert.not.ok(r.ok);
  await within(close_pool(pool), 'close');
});

test('close: stopping the workers is not reported as a crash', async () => {
  const dir = temp_dir();
  const pool = await start_pool(dir, { worker_count: 2, partition_count: 4 });
  const exits: number[] = [];
  pool.on('worker_exit', (w) => exits.push(w));
  await req(pool, 1, { k: 'add', key: 'z', n: 1 });
  await pool.close();
  assert.equal(exits, [], 'no worker_exit event for a clean close');
  assert.is(pool.restarts(), 0);
});

test('a recovered state failing the check stops its worker: reported, not served', async () => {
  const dir = temp_dir();
  const pool = await start_pool(dir);
  await req(pool, 3, { k: 'add', key: 'poison', n: 1 });
  await req(pool, 0, { k: 'add', key: 'a', n: 2 });
  await close_pool(pool);
  const checked = new WorkerPool({
    worker_count: 2, partition_count: 8, data_dir: dir, node_id: 'test-node',
    behaviour_url: checked_behaviour_url, mailbox_depth_max: 10_000, mailbox_batch_size_max: 64,
    snapshot_every_records: 1_000_000, restart_delay_ms: 10, restart_delay_ms_max: 100, revive,
  });
  open_pools.add(checked);
  const exits: [number, number][] = [];
  checked.on('worker_exit', (worker_index, code) => exits.push([worker_index, code]));
  const started = await outcome(checked.start());
  assert.not.ok(started.ok, 'start fails: a worker did not recover');
  if (!started.ok) {
    assert.instance(started.error, WorkerUnavailableError);
    assert.match((started.error as Error).message, 'exited with code 70 during recovery');
  }
  const owner = worker_of(3, 2);
  assert.equal(exits[0], [owner, 70], 'the pool reports the worker exit (fatal code 70)');
  const refused = await outcome(req(checked, 3, { k: 'get', key: 'poison' }));
  assert.not.ok(refused.ok, 'the partition is not served');
  if (!refused.ok) assert.instance(refused.error, WorkerUnavailableError);
  const other = await poll(() => outcome(req(checked, 0, { k: 'get', key: 'a' })), (o) => o.ok);
  assert.equal(other, { ok: true, value: 2 }, 'the other worker serves its partitions');
  const owner_only = exits.every(([w, code]) => w === owner && code === 70);
  assert.ok(owner_only, 'only the owner exits, on each restart again');
  await close_pool(checked);
});

test.run();

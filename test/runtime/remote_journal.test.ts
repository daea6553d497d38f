// A worker pool whose journal is remote (cluster mode), against a fake journal: on_journal keeps
// every commit in an array and resolves or rejects it when the test says so. Real worker
// threads, the counter behaviour of test/runtime/fixtures.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { packr } from '../../src/runtime/codec.js';
import {
  PartitionNotServedError, reviver, WorkerUnavailableError, type WireError,
} from '../../src/runtime/errors.js';
import { WorkerPool, type PoolOptions } from '../../src/runtime/pool.js';
import type { AdoptWire, JournalWire } from '../../src/runtime/protocol.js';
import { guarded_after, guarded_after_each } from '../guard.js';
import {
  revive as revive_counter, type CounterRecord, type CounterRequest, type CounterSnapshot,
} from './fixtures/counter_behaviour.js';

const behaviour_url = new URL('./fixtures/counter_behaviour.js', import.meta.url).href;
const checked_behaviour_url = new URL('./fixtures/checked_counter_behaviour.js', import.meta.url)
  .href;

/** Stands for the cluster's own errors (a fenced writer): revived through options.revive. */
class FakeFencedError extends Error {
  override readonly name = 'FakeFencedError';
}
const revive_cluster = reviver([FakeFencedError]);
function revive(wire: WireError): Error | undefined {
  return revive_counter(wire) ?? revive_cluster(wire);
}

interface Held {
  wire: JournalWire;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** The fake journal: every commit in arrival order; `auto` resolves each at once. */
class FakeJournal {
  readonly received: JournalWire[] = [];
  readonly durable: JournalWire[] = [];
  held: Held[] = [];
  auto = true;

  readonly on_journal = (wire: JournalWire): Promise<void> => new Promise((resolve, reject) => {
    this.received.push(wire);
    const held: Held = {
      wire,
      resolve: () => {
        this.durable.push(wire);
        resolve();
      },
      reject,
    };
    if (this.auto) held.resolve();
    else this.held.push(held);
  });

  /** Settles the oldest held commit of `partition` (resolve, or reject with `error`). */
  settle(partition: number, error?: Error): JournalWire {
    const i = this.held.findIndex((h) => h.wire.partition === partition);
    assert.ok(i >= 0, `a commit of partition ${partition} is held`);
    const [held] = this.held.splice(i, 1);
    if (error === undefined) held!.resolve();
    else held!.reject(error);
    return held!.wire;
  }

  held_of(partition: number): number {
    return this.held.filter((h) => h.wire.partition === partition).length;
  }

  /** What a partition is restored from: its latest durable snapshot and the records after. */
  restore(partition: number): AdoptWire {
    const commits = this.durable.filter((w) => w.partition === partition);
    let snapshot: Uint8Array | null = null;
    let segments: Uint8Array[] = [];
    for (const wire of commits) {
      if (wire.snapshot !== null) {
        snapshot = wire.snapshot;
        segments = []; // the snapshot was taken after applying this commit's records
      } else if (wire.records !== null) {
        segments.push(wire.records);
      }
    }
    return { partition, snapshot, segments };
  }
}

const dirs: string[] = [];
const open_pools = new Set<WorkerPool>();

async function start_pool(
  journal: FakeJournal, overrides: Partial<PoolOptions> = {},
): Promise<WorkerPool> {
  const data_dir = mkdtempSync(join(tmpdir(), 'remote-journal-test-'));
  dirs.push(data_dir);
  const pool = new WorkerPool({
    worker_count: 2,
    partition_count: 4,
    data_dir,
    node_id: 'test-node',
    behaviour_url,
    mailbox_depth_max: 10_000,
    mailbox_batch_size_max: 64,
    snapshot_every_records: 1_000_000,
    restart_delay_ms: 10,
    restart_delay_ms_max: 100,
    revive,
    journal: 'remote',
    on_journal: journal.on_journal,
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

/** Settles into an Outcome; `settled` shows whether that happened yet. */
function track(promise: Promise<unknown>): { outcome: Promise<Outcome>; settled: () => boolean } {
  let done = false;
  const outcome = promise.then(
    (value): Outcome => ({ ok: true, value }),
    (error: unknown): Outcome => ({ ok: false, error }),
  ).finally(() => {
    done = true;
  });
  return { outcome, settled: () => done };
}

/** Waits (bounded tries, short pauses) until `done` holds. */
async function until(done: () => boolean, what: string, tries = 500): Promise<void> {
  for (let i = 0; i < tries && !done(); i++) await sleep(10);
  assert.ok(done(), what);
}

function empty(partition: number): AdoptWire {
  return { partition, snapshot: null, segments: [] };
}

function records_of(wire: JournalWire): CounterRecord[] {
  return wire.records === null ? [] : (packr.unpack(wire.records) as CounterRecord[]);
}

async function refused_not_served(promise: Promise<unknown>, what: string): Promise<void> {
  const o = await track(promise).outcome;
  const refused = !o.ok && o.error instanceof PartitionNotServedError;
  assert.ok(refused, `${what}: PartitionNotServedError`);
}

test('a worker starts serving nothing; a request for a partition not adopted is refused', async () => {
  const journal = new FakeJournal();
  const pool = await start_pool(journal);
  assert.equal(pool.served(), []);
  await refused_not_served(req(pool, 0, { k: 'get', key: 'a' }), 'before adopt');
  assert.equal(await pool.adopt(empty(0)), { replayed_records: 0 });
  assert.equal(pool.served(), [0]);
  assert.is(await req(pool, 0, { k: 'get', key: 'a' }), 0);
  await refused_not_served(req(pool, 1, { k: 'get', key: 'a' }), 'another partition');
  assert.is(journal.received.length, 0, 'a read commits nothing');
  await close_pool(pool);
  assert.equal(readdirSync(dirs[dirs.length - 1]!), [], 'a remote worker opens no store');
});

test('replies wait for on_journal; the commit carries the records, outbox and clock', async () => {
  const journal = new FakeJournal();
  const pool = await start_pool(journal);
  await pool.adopt(empty(1));
  journal.auto = false;
  const add = track(req(pool, 1, { k: 'add', key: 'a', n: 5 }));
  const emit = track(req(pool, 1, { k: 'emit', key: 'e', count: 2 }));
  await until(() => journal.held_of(1) === 1, 'the batch reached on_journal as one commit');
  await sleep(30); // the worker could answer now if it did not wait
  assert.not.ok(add.settled() || emit.settled(), 'no reply before the commit is durable');
  const wire = journal.settle(1);
  assert.equal(await add.outcome, { ok: true, value: 5 });
  assert.equal(await emit.outcome, { ok: true, value: 2 });
  assert.is(wire.partition, 1);
  assert.equal(records_of(wire), [
    { r: 'add', key: 'a', n: 5 }, { r: 'add', key: 'emitted:e', n: 2 },
  ]);
  assert.equal(wire.outbox.map((e) => [e.type, e.key, e.payload]), [
    ['Emitted', 'e', { key: 'e', i: 0 }], ['Emitted', 'e', { key: 'e', i: 1 }],
  ]);
  assert.is(wire.snapshot, null);
  const now = await req(pool, 1, { k: 'now' });
  assert.ok(typeof now === 'number' && wire.now_ms <= now && wire.now_ms > 0, 'the worker clock');
  // A read after an unsettled write waits for it too (it saw the write's state).
  const write = track(req(pool, 1, { k: 'add', key: 'a', n: 1 }));
  await until(() => journal.held_of(1) === 1, 'second commit held');
  const read = track(req(pool, 1, { k: 'get', key: 'a' }));
  await sleep(30);
  assert.not.ok(write.settled() || read.settled(), 'the read waits for the write it saw');
  journal.settle(1);
  assert.equal(await write.outcome, { ok: true, value: 6 });
  assert.equal(await read.outcome, { ok: true, value: 6 });
  await close_pool(pool);
});

test('a rejected commit fails exactly its requests and the later ones of p; p is lost, others serve', async () => {
  const journal = new FakeJournal();
  const pool = await start_pool(journal);
  const lost: number[][] = [];
  pool.on('partitions_lost', (partitions) => lost.push(partitions));
  await pool.adopt(empty(0));
  await pool.adopt(empty(2)); // same worker as 0
  await pool.adopt(empty(1));
  assert.is(await req(pool, 0, { k: 'add', key: 'a', n: 10 }), 10);
  journal.auto = false;
  // One batch: a read before the write (rests on the durable 10), the write, a read after it.
  const before = track(req(pool, 0, { k: 'get', key: 'a' }));
  const doomed = track(req(pool, 0, { k: 'add', key: 'a', n: 1 }));
  const after = track(req(pool, 0, { k: 'get', key: 'a' }));
  const neighbour = track(req(pool, 2, { k: 'add', key: 'a', n: 7 }));
  await until(() => journal.held_of(0) === 1 && journal.held_of(2) === 1, 'first batch held');
  const later = track(req(pool, 0, { k: 'add', key: 'a', n: 2 }));
  await until(() => journal.held_of(0) === 2, 'a later commit of p0 held behind it');
  journal.settle(2);
  journal.settle(0, new FakeFencedError('fenced at the first'));
  // The writer fails what it queued behind a failure; the worker answers with the first error.
  journal.settle(0, new FakeFencedError('fenced at the second'));
  assert.equal(await before.outcome, { ok: true, value: 10 }, 'rests only on the durable state');
  assert.equal(await neighbour.outcome, { ok: true, value: 7 });
  for (const [name, t] of [['doomed', doomed], ['after', after], ['later', later]] as const) {
    const o = await t.outcome;
    const typed = !o.ok && o.error instanceof FakeFencedError;
    assert.ok(typed, `${name}: revived as the cluster's class`);
    if (!o.ok) assert.is((o.error as Error).message, 'fenced at the first', name);
  }
  assert.equal(lost, [[0]], 'partitions_lost once');
  assert.equal(pool.served(), [1, 2]);
  await refused_not_served(req(pool, 0, { k: 'get', key: 'a' }), 'the lost partition');
  journal.auto = true;
  assert.is(await req(pool, 2, { k: 'add', key: 'a', n: 1 }), 8, 'the same worker serves p2');
  assert.is(await req(pool, 1, { k: 'add', key: 'a', n: 1 }), 1, 'the other worker serves p1');
  // Adopted again from what the journal made durable: the failed commits never happened.
  assert.equal(await pool.adopt(journal.restore(0)), { replayed_records: 1 });
  assert.is(await req(pool, 0, { k: 'get', key: 'a' }), 10);
  assert.is(pool.restarts(), 0, 'no worker died');
  await close_pool(pool);
});

test('adopt(segments) in a fresh pool restores the same state; timers due at adopt fire', async () => {
  const journal = new FakeJournal();
  let pool = await start_pool(journal);
  await pool.adopt(empty(3));
  const keys = ['a', 'b', 'c'];
  for (let i = 0; i < 12; i++) await req(pool, 3, { k: 'add', key: keys[i % 3]!, n: i });
  await Promise.all([1, 2, 3].map((n) => req(pool, 3, { k: 'add', key: 'burst', n })));
  const now = (await req(pool, 3, { k: 'now' })) as number;
  await req(pool, 3, { k: 'timer', key: 'due', at_ms: now + 60_000 });
  const read_all = (): Promise<unknown[]> =>
    Promise.all([...keys, 'burst'].map((key) => req(pool, 3, { k: 'get', key })));
  const before = await read_all();
  await close_pool(pool);
  const wire = journal.restore(3);
  assert.is(wire.snapshot, null);
  assert.ok(wire.segments.length >= 3, 'one segment per commit');

  const fresh = new FakeJournal();
  // The fresh pool's clock is past the timer: adopt arms it and it commits remotely.
  pool = await start_pool(fresh, { clock_offset_ms: 120_000 });
  const replayed = 12 + 3 + 1;
  assert.equal(await pool.adopt(wire), { replayed_records: replayed });
  // Before any request (a request would arm timers itself): adopt armed it.
  const fired_yet = (): boolean => fresh.durable.some((w) => w.outbox.some((e) => e.type === 'Fired'));
  await until(fired_yet, 'timer fired');
  const after = await read_all();
  assert.equal(after, before, 'the same reads');
  const fired = fresh.durable.find((w) => w.outbox.length > 0)!;
  assert.equal(fired.outbox.map((e) => [e.type, e.key]), [['Fired', 'due']]);
  assert.equal(records_of(fired)[0], { r: 'add', key: 'due', n: 1 });
  assert.is(await req(pool, 3, { k: 'get', key: 'due' }), 1);
  await close_pool(pool);
});

test('timers commit remotely, and wait for on_journal like any write', async () => {
  const journal = new FakeJournal();
  const pool = await start_pool(journal);
  await pool.adopt(empty(0));
  const now = (await req(pool, 0, { k: 'now' })) as number;
  await req(pool, 0, { k: 'timer', key: 't', at_ms: now + 1000 });
  journal.auto = false;
  pool.advance_clock(5000);
  await until(() => journal.held_of(0) === 1, 'the timer run reached on_journal');
  const wire = journal.held.find((h) => h.wire.partition === 0)!.wire;
  assert.equal(wire.outbox.map((e) => [e.type, e.key]), [['Fired', 't']]);
  assert.equal(records_of(wire).map((r) => r.r), ['add', 'fired']);
  const read = track(req(pool, 0, { k: 'get', key: 't' }));
  await sleep(30);
  assert.not.ok(read.settled(), 'a read of the fired state waits for its commit');
  journal.settle(0);
  assert.equal(await read.outcome, { ok: true, value: 1 });
  await close_pool(pool);
});

test('a snapshot rides in the JournalWire at snapshot_every_records; restoring from it gives the same state', async () => {
  const journal = new FakeJournal();
  let pool = await start_pool(journal, { snapshot_every_records: 3 });
  await pool.adopt(empty(2));
  let value = 0;
  for (let i = 1; i <= 7; i++) {
    value += i;
    assert.is(await req(pool, 2, { k: 'add', key: 's', n: i }), value);
  }
  const snapshots = journal.received.map((w) => w.snapshot !== null);
  // The first after snapshot_every_records; later ones no sooner (the interval adapts to what a
  // snapshot costs: host.ts snapshot_records_per_ms).
  assert.equal(snapshots.slice(0, 5), [false, false, true, false, false], 'at the 3rd record');
  const third = journal.received[2]!;
  assert.equal(records_of(third), [{ r: 'add', key: 's', n: 3 }], 'its records still travel');
  const snap = packr.unpack(third.snapshot!) as CounterSnapshot;
  assert.equal(snap.counters, [['s', 6]], 'taken after applying the commit\'s records');
  await close_pool(pool);

  const restore = journal.restore(2);
  const last = snapshots.lastIndexOf(true);
  assert.is(restore.snapshot, journal.received[last]!.snapshot);
  assert.is(restore.segments.length, 7 - 1 - last, 'the commits after the latest snapshot');
  pool = await start_pool(new FakeJournal(), { snapshot_every_records: 3 });
  assert.equal(await pool.adopt(restore), { replayed_records: 7 - 1 - last });
  assert.is(await req(pool, 2, { k: 'get', key: 's' }), value);
  assert.is(await pool.release(2), undefined);
  // The snapshot alone is the state as of its commit.
  const alone: AdoptWire = { partition: 2, snapshot: third.snapshot, segments: [] };
  assert.equal(await pool.adopt(alone), { replayed_records: 0 });
  assert.is(await req(pool, 2, { k: 'get', key: 's' }), 6);
  await close_pool(pool);
});

test('release: refused from then on; a commit in flight still follows on_journal; adopt again', async () => {
  const journal = new FakeJournal();
  const pool = await start_pool(journal);
  const lost: number[][] = [];
  pool.on('partitions_lost', (partitions) => lost.push(partitions));
  await pool.adopt(empty(1));
  await pool.adopt(empty(3));
  assert.is(await req(pool, 1, { k: 'add', key: 'r', n: 4 }), 4);
  journal.auto = false;
  const in_flight = track(req(pool, 1, { k: 'add', key: 'r', n: 1 }));
  await until(() => journal.held_of(1) === 1, 'commit held');
  await pool.release(1);
  assert.equal(pool.served(), [3]);
  await refused_not_served(req(pool, 1, { k: 'get', key: 'r' }), 'after release');
  journal.settle(1);
  assert.equal(await in_flight.outcome, { ok: true, value: 5 }, 'made durable: acknowledged');
  await pool.release(1); // not served: nothing to do
  journal.auto = true;
  assert.is(await req(pool, 3, { k: 'add', key: 'r', n: 1 }), 1, 'p3 on the same worker serves');
  await pool.adopt(journal.restore(1));
  assert.is(await req(pool, 1, { k: 'get', key: 'r' }), 5);
  assert.equal(lost, [], 'a release is not a loss');
  await close_pool(pool);
});

test('a commit reaching the pool after its partition was released never reaches on_journal', async () => {
  const journal = new FakeJournal();
  const pool = await start_pool(journal);
  await pool.adopt(empty(0));
  await pool.adopt(empty(2)); // same worker
  // One batch: the sleep holds the worker, so p0's commit leaves it only after release() ran
  // here (messages to the worker keep their order: the write is decided before the release).
  const busy = track(req(pool, 2, { k: 'sleep', ms: 300 }));
  const write = track(req(pool, 0, { k: 'add', key: 'w', n: 1 }));
  await sleep(20); // the batch is posted (setImmediate)
  await pool.release(0);
  const o = await write.outcome;
  assert.ok(!o.ok && o.error instanceof PartitionNotServedError, 'refused, never journaled');
  assert.equal(await busy.outcome, { ok: true, value: null });
  assert.equal(journal.received.map((w) => w.partition), [], 'nothing of p0 reached on_journal');
  await pool.adopt(empty(0));
  assert.is(await req(pool, 0, { k: 'get', key: 'w' }), 0);
  await close_pool(pool);
});

test('a worker crash loses its partitions: partitions_lost, refused until adopted again', async () => {
  const journal = new FakeJournal();
  const pool = await start_pool(journal);
  const lost: number[][] = [];
  pool.on('partitions_lost', (partitions) => lost.push(partitions));
  for (const p of [0, 1, 2]) await pool.adopt(empty(p));
  assert.is(await req(pool, 0, { k: 'add', key: 'k', n: 3 }), 3);
  assert.is(await req(pool, 2, { k: 'add', key: 'k', n: 4 }), 4);
  journal.auto = false;
  const in_flight = track(req(pool, 0, { k: 'add', key: 'k', n: 100 }));
  await until(() => journal.held_of(0) === 1, 'commit held');
  await pool.terminate_worker(0);
  const o = await in_flight.outcome;
  assert.ok(!o.ok && o.error instanceof WorkerUnavailableError, 'in flight: WorkerUnavailable');
  assert.equal(lost, [[0, 2]]);
  assert.equal(pool.served(), [1]);
  await refused_not_served(req(pool, 2, { k: 'get', key: 'k' }), 'lost with its worker');
  // The writer made it durable after all (WorkerUnavailableError says "may have been applied");
  // its answer goes nowhere, and the next adoption replays it.
  journal.settle(0);
  journal.auto = true;
  assert.is(await req(pool, 1, { k: 'add', key: 'k', n: 1 }), 1, 'the other worker serves');
  // adopt waits for the replacement worker, which starts with nothing.
  assert.equal(await pool.adopt(journal.restore(0)), { replayed_records: 2 });
  await pool.adopt(journal.restore(2));
  assert.equal(pool.served(), [0, 1, 2]);
  assert.is(await req(pool, 0, { k: 'get', key: 'k' }), 103);
  assert.is(await req(pool, 2, { k: 'get', key: 'k' }), 4);
  assert.is(pool.restarts(), 1);
  await close_pool(pool);
});

test('adopt of a state failing the behaviour\'s check is refused; the worker serves on', async () => {
  const journal = new FakeJournal();
  const pool = await start_pool(journal, { behaviour_url: checked_behaviour_url });
  await pool.adopt(empty(0));
  const poison = packr.pack([{ r: 'add', key: 'poison', n: 1 }] satisfies CounterRecord[]);
  const o = await track(pool.adopt({ partition: 2, snapshot: null, segments: [poison] })).outcome;
  assert.ok(!o.ok && o.error instanceof Error, 'refused');
  if (!o.ok) assert.match((o.error as Error).message, 'fails the behaviour\'s check');
  assert.equal(pool.served(), [0]);
  await refused_not_served(req(pool, 2, { k: 'get', key: 'poison' }), 'never served');
  assert.is(await req(pool, 0, { k: 'add', key: 'x', n: 2 }), 2);
  assert.is(pool.restarts(), 0);
  await close_pool(pool);
});

test('gauges of a remote worker: the behaviour\'s, and an empty outbox', async () => {
  const journal = new FakeJournal();
  const pool = await start_pool(journal, { worker_count: 1, partition_count: 2 });
  const gauges: Record<string, number>[] = [];
  pool.on('stats', (_w, stats) => gauges.push(stats.gauges));
  await pool.adopt(empty(0));
  await req(pool, 0, { k: 'emit', key: 'g', count: 3 });
  gauges.length = 0;
  await until(() => gauges.length > 0, 'a stats report');
  assert.is(gauges[0]!['outbox_pending'], 0);
  assert.is(gauges[0]!['counters'], 1);
  await close_pool(pool);
});

test.run();

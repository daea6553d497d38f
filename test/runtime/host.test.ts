import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../../src/runtime/clock.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { PartitionHost, snapshot_records_per_ms } from '../../src/runtime/host.js';
import { packr } from '../../src/runtime/codec.js';
import type { OutboxRecord } from '../../src/runtime/outbox.js';
import type { WireReply, WireRequest } from '../../src/runtime/protocol.js';
import { PartitionStore } from '../../src/runtime/store.js';
import { store_dir } from '../../src/runtime/store_env.js';
import { StoreReader } from '../../src/runtime/store_reader.js';
import { outbox_entries } from './store_helpers.js';
import { behaviour, NegativeError, type CounterRecord, type CounterRequest, type CounterState } from './fixtures/counter_behaviour.js';
import { behaviour as checked, checks } from './fixtures/checked_counter_behaviour.js';
import { guarded_after } from '../guard.js';

const dirs: string[] = [];
function temp_dir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'host-test-'));
  dirs.push(dir);
  return dir;
}
guarded_after(test, () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

type Host = PartitionHost<CounterState, CounterRequest, CounterRecord>;

const fatals: unknown[] = [];
function new_host(dir: string, clock: Clock, snapshot_every_records: number, partitions: number[],
  with_behaviour: typeof behaviour): Host {
  const options = { partitions, data_dir: dir, node_id: 'h', clock, snapshot_every_records };
  return new PartitionHost(with_behaviour, options, (e) => fatals.push(e));
}

async function make_host(dir: string, clock: Clock, snapshot_every_records = 1000,
  partitions = [0, 1], with_behaviour = behaviour): Promise<Host> {
  const host = new_host(dir, clock, snapshot_every_records, partitions, with_behaviour);
  await host.recover();
  return host;
}

let next_id = 1;
function batch(...items: [number, CounterRequest][]): WireRequest[] {
  return items.map(([partition, body]) => ({ id: next_id++, partition, body }));
}

test.before.each(() => {
  fatals.length = 0;
});

test('run_batch: one reply per request, in order; a rejection is a wire error and changes nothing', async () => {
  const dir = temp_dir();
  const host = await make_host(dir, new ManualClock(1000));
  const requests = batch(
    [0, { k: 'add', key: 'a', n: 2 }],
    [1, { k: 'add', key: 'a', n: 5 }],
    [0, { k: 'add', key: 'a', n: -3 }],
    [0, { k: 'add', key: 'a', n: 1 }],
    [0, { k: 'get', key: 'a' }],
  );
  const replies = await host.run_batch(requests);
  assert.equal(replies.map((r) => r.id), requests.map((r) => r.id));
  assert.equal(replies[0], { id: requests[0]!.id, ok: true, value: 2 });
  assert.equal(replies[1], { id: requests[1]!.id, ok: true, value: 5 });
  const rejected = replies[2]!;
  assert.not.ok(rejected.ok);
  if (!rejected.ok) assert.equal(rejected.error, { name: 'NegativeError', message: 'a would become -1' });
  assert.equal(replies[3], { id: requests[3]!.id, ok: true, value: 3 });
  assert.equal(replies[4], { id: requests[4]!.id, ok: true, value: 3 });
  assert.is(host.state_of(0).counters.get('a'), 3);
  await host.close();
  assert.equal(fatals, []);

  const again = await make_host(dir, new ManualClock(1000));
  assert.is(again.state_of(0).counters.get('a'), 3);
  assert.is(again.state_of(1).counters.get('a'), 5);
  assert.is(again.recovered_records, 3, 'one record per accepted add, none for the rejection');
  await again.close();
});

test('run_batch: a refusal decided with records journals them, then answers as a thrown rejection does', async () => {
  const dir = temp_dir();
  const host = await make_host(dir, new ManualClock(1000));
  const requests = batch(
    [0, { k: 'add', key: 'a', n: 1 }],
    [0, { k: 'add_refused', key: 'a', n: 2 }],
    [0, { k: 'add', key: 'a', n: -9 }],
    [0, { k: 'get', key: 'a' }],
  );
  const replies = await host.run_batch(requests);
  assert.equal(replies[1], { id: requests[1]!.id, ok: false, error: { name: 'NegativeError', message: 'a became 3, refused all the same' } });
  const thrown = replies[2]!;
  assert.ok(!thrown.ok && !replies[1]!.ok && Object.keys(thrown.error).join() === Object.keys(replies[1]!.error).join(), 'one wire shape for both refusals');
  assert.equal(replies[3], { id: requests[3]!.id, ok: true, value: 3 }, 'the refused decision\'s records were applied');
  await host.close();
  assert.equal(fatals, []);
  const again = await make_host(dir, new ManualClock(1000));
  assert.is(again.state_of(0).counters.get('a'), 3, 'and journaled: recovery replays them');
  assert.is(again.recovered_records, 2);
  await again.close();
});

test('run_batch: a decision with both a reply and a refusal is a bug (AssertionError, the worker dies)', async () => {
  const dir = temp_dir();
  const both = {
    ...behaviour,
    decide(state: CounterState, request: CounterRequest, ctx: Parameters<typeof behaviour.decide>[2]) {
      const decision = behaviour.decide(state, request, ctx);
      // The type forbids this shape; a behaviour written in plain JavaScript could still return it.
      Reflect.set(decision, 'refusal', new NegativeError('and refused'));
      return decision;
    },
  };
  const host = new PartitionHost(both, { partitions: [0], data_dir: dir, node_id: 'h', clock: new ManualClock(0), snapshot_every_records: 1000 }, (e) => fatals.push(e));
  await host.recover();
  assert.throws(() => host.run_batch(batch([0, { k: 'get', key: 'a' }])), /exactly one of reply and refusal/);
  await host.close();
});

test('run_batch: a non-rejection error escapes synchronously (the worker dies on it)', async () => {
  const dir = temp_dir();
  const host = await make_host(dir, new ManualClock(1000));
  assert.throws(() => host.run_batch(batch([0, { k: 'add', key: 'a', n: 1 }], [0, { k: 'crash' }])), /crash requested/);
  await host.close();
  const again = await make_host(dir, new ManualClock(1000));
  assert.is(again.state_of(0).counters.get('a'), undefined, 'the batch never reached the disk');
  await again.close();
});

test('a reply leaves only once its commit is on disk: a second, read-only handle sees it at once', async () => {
  const dir = temp_dir();
  const host = await make_host(dir, new ManualClock(1000), 1000, [0]);
  const reader = new StoreReader(store_dir(dir, 0));
  try {
    for (let i = 1; i <= 20; i++) {
      const [reply] = await host.run_batch(batch([0, { k: 'emit', key: `k${i}`, count: 1 }]));
      assert.equal(reply, { id: reply!.id, ok: true, value: 1 });
      // No polling, no waiting: a fresh read snapshot (lmdb-js would renew it only on a later
      // timer tick) must already hold the entry the moment the reply is out.
      (reader as unknown as { root: { resetReadTxn(): void } }).root.resetReadTxn();
      assert.is(reader.outbox_after(0, 0, 100).length, i, `reply ${i} was released after its commit`);
    }
  } finally {
    await reader.close();
    await host.close();
  }
});

test('replies leave in batch order even when a later batch has nothing to commit', async () => {
  const dir = temp_dir();
  const host = await make_host(dir, new ManualClock(1000));
  const order: string[] = [];
  const first = host.run_batch(batch([0, { k: 'add', key: 'a', n: 1 }])).then((r) => { order.push('write'); return r; });
  const second = host.run_batch(batch([0, { k: 'get', key: 'a' }])).then((r) => { order.push('read'); return r; });
  const [, read] = await Promise.all([first, second]);
  assert.equal(order, ['write', 'read']);
  assert.equal((read[0] as WireReply & { ok: true }).value, 1, 'the read saw the write decided before it');
  await host.close();
});

test('snapshots every N records; recovery from snapshot + tail gives the same state', async () => {
  const dir = temp_dir();
  const host = await make_host(dir, new ManualClock(1000), 4, [0]);
  for (let i = 1; i <= 10; i++) await host.run_batch(batch([0, { k: 'add', key: 's', n: i }]));
  await host.run_batch(batch(...Array.from({ length: 5 }, (): [number, CounterRequest] => [0, { k: 'add', key: 't', n: 1 }])));
  await host.close();
  const store = new PartitionStore<CounterRecord>(0, dir, 'h');
  const r = store.recover();
  await store.close();
  assert.ok(r.snapshot !== undefined);
  const again = await make_host(dir, new ManualClock(1000), 4, [0]);
  assert.is(again.state_of(0).counters.get('s'), 55);
  assert.is(again.state_of(0).counters.get('t'), 5);
  await again.close();
});

test('a slow snapshot spaces the next one out (cost × snapshot_records_per_ms records), never below the configured interval', async () => {
  // The counter behaviour with a snapshot that takes 20 ms, as a big partition's would.
  const slow = {
    ...behaviour,
    snapshot(state: CounterState) {
      const until = performance.now() + 20;
      while (performance.now() < until) { /* the encode a big state would cost */ }
      return behaviour.snapshot(state);
    },
  };
  const dir = temp_dir();
  const host = new PartitionHost(slow, { partitions: [0, 1], data_dir: dir, node_id: 'h', clock: new ManualClock(0), snapshot_every_records: 4 }, (e) => fatals.push(e));
  await host.recover();
  assert.is(host.snapshot_interval_of(0), 4, 'the configured interval until a snapshot was measured');
  for (let i = 0; i < 4; i++) await host.run_batch(batch([0, { k: 'add', key: 'a', n: 1 }]));
  assert.ok(host.snapshot_interval_of(0) >= 20 * snapshot_records_per_ms, `spaced out: ${host.snapshot_interval_of(0)}`);
  assert.is(host.snapshot_interval_of(1), 4, 'per partition: the other one is unaffected');
  // Recovery still restores everything (snapshot + tail).
  for (let i = 0; i < 10; i++) await host.run_batch(batch([0, { k: 'add', key: 'a', n: 1 }]));
  await host.close();
  const again = await make_host(dir, new ManualClock(0), 4, [0, 1]);
  assert.is(again.state_of(0).counters.get('a'), 14);
  await again.close();
  assert.equal(fatals, []);
});

test('timers: due only once the clock reaches them; firing writes records and an outbox entry', async () => {
  const dir = temp_dir();
  const clock = new ManualClock(10_000);
  const host = await make_host(dir, clock, 1000, [0, 1]);
  await host.run_batch(batch([1, { k: 'timer', key: 'x', at_ms: 10_500 }], [1, { k: 'timer', key: 'y', at_ms: 11_000 }]));
  await host.run_timers();
  assert.is(host.state_of(1).counters.get('x'), undefined);
  clock.advance(500);
  await host.run_timers();
  assert.is(host.state_of(1).counters.get('x'), 1);
  assert.is(host.state_of(1).counters.get('y'), undefined);
  assert.is(host.gauges()['timers'], 1);
  assert.is(host.gauges()['outbox_pending'], 1);
  clock.advance(10_000);
  await host.run_timers();
  await host.run_timers();
  assert.is(host.state_of(1).counters.get('y'), 1);
  assert.is(host.state_of(1).counters.get('x'), 1, 'a timer fires once');
  await host.close();
  assert.equal(fatals, []);

  const store = new PartitionStore<CounterRecord>(1, dir, 'h');
  store.recover();
  const outbox = outbox_entries(store).map(({ record }) => record);
  await store.close();
  assert.equal(outbox.map((o) => [o.type, o.key, o.event_id, o.created_ms]), [
    ['Fired', 'x', 'h-p1-1', 10_500],
    ['Fired', 'y', 'h-p1-2', 20_500],
  ]);
});

test('timers: a wall clock that steps back between the due check and firing does not kill the worker', async () => {
  // OffsetClock is Date.now() based, and the system clock can be stepped back (NTP, VM resume).
  // run_timers reads the clock once for "is it due?" and again for the decide context; a 1 ms
  // step back in between makes fire_timers see nothing due and trips 'fire_timers leaves
  // nothing due', a fatal AssertionError in the worker.
  const dir = temp_dir();
  let current = 4_000;
  const script: number[] = [];
  const stepping: Clock = { now_ms: () => script.shift() ?? current };
  const host = await make_host(dir, stepping, 1000, [0]);
  await host.run_batch(batch([0, { k: 'timer', key: 'z', at_ms: 5_000 }]));
  current = 5_000;
  script.push(5_000, 4_999); // the due check reads 5000, the decide context then reads 4999
  let error: unknown;
  try {
    await host.run_timers();
  } catch (e) {
    error = e;
  }
  assert.equal(script, [], 'both scripted readings were taken by run_timers');
  await host.close();
  assert.is(error, undefined, `run_timers threw: ${String(error)}`);
});


test('timers: a behaviour that bounds each run still gets everything due fired (host re-arms at once)', async () => {
  // Fires at most one timer per run, like the inventory's expiries_per_timer_run_max.
  const bounded = {
    ...behaviour,
    fire_timers(state: CounterState, ctx: Parameters<typeof behaviour.fire_timers>[1]) {
      const first = state.timers.find((t) => t.at_ms <= ctx.now_ms);
      if (first === undefined) return { records: [], outbox: [], reply: undefined };
      return {
        records: [{ r: 'add', key: first.key, n: 1 }, { r: 'fired', upto_ms: first.at_ms }] as CounterRecord[],
        outbox: [],
        reply: undefined,
      };
    },
  };
  const dir = temp_dir();
  const clock = new ManualClock(0);
  const host = new PartitionHost(bounded, { partitions: [0], data_dir: dir, node_id: 'h', clock, snapshot_every_records: 1000 }, (e) => fatals.push(e));
  await host.recover();
  await host.run_batch(batch([0, { k: 'timer', key: 't', at_ms: 100 }], [0, { k: 'timer', key: 't', at_ms: 200 }], [0, { k: 'timer', key: 't', at_ms: 300 }]));
  clock.advance(1000);
  await host.run_timers();
  assert.ok((host.state_of(0).counters.get('t') ?? 0) >= 1, 'a run fired a timer (a re-armed run may already have fired another)');
  // The host armed the next run with no delay; wait (bounded polls, no time assertion).
  for (let i = 0; i < 500 && host.state_of(0).counters.get('t') !== 3; i++) await new Promise((r) => setTimeout(r, 2));
  assert.is(host.state_of(0).counters.get('t'), 3, 'the remaining due timers fired on re-armed runs');
  assert.equal(fatals, []);
  await host.close();
});

const add = (key: string, n: number): CounterRequest => ({ k: 'add', key, n });

test('check: once per partition after snapshot restore + replay, not per request', async () => {
  const dir = temp_dir();
  const first = await make_host(dir, new ManualClock(1000), 2);
  // Three adds on partition 0 with a snapshot every 2 records: snapshot, then a journal tail.
  await first.run_batch(batch([0, add('a', 1)], [0, add('a', 2)]));
  await first.run_batch(batch([0, add('a', 4)], [1, add('b', 8)]));
  await first.close();
  checks.length = 0;
  const host = await make_host(dir, new ManualClock(1000), 2, [0, 1], checked);
  assert.is(checks.length, 2, 'one check per recovered partition');
  assert.is(checks[0]!.partition, 0);
  assert.is(checks[0]!.counters.get('a'), 7, 'checked once the tail was replayed');
  assert.is(checks[1]!.counters.get('b'), 8);
  const replies = await host.run_batch(batch([0, add('a', 1)], [0, { k: 'get', key: 'a' }]));
  assert.ok(replies.every((r) => r.ok));
  assert.is(checks.length, 2, 'requests are not checked');
  await host.close();
  assert.equal(fatals, []);
});

test('check: a partition whose replayed state fails it is refused, and named', async () => {
  // Snapshot every 1000 records: the poison is in the journal; every record: in the snapshot.
  for (const snapshot_every_records of [1000, 1]) {
    const dir = temp_dir();
    const first = await make_host(dir, new ManualClock(1000), snapshot_every_records);
    await first.run_batch(batch([1, add('a', 1)], [1, add('poison', 3)]));
    await first.close();
    checks.length = 0;
    const refused = new_host(dir, new ManualClock(1000), snapshot_every_records, [0, 1], checked);
    const error = await refused.recover().then(() => undefined, (e: unknown) => e);
    assert.instance(error, Error, `snapshot every ${snapshot_every_records}: recovery refused`);
    const message = /^partition 1: .* fails the behaviour's check \(counter poison is 3\); not/;
    assert.match((error as Error).message, message);
    assert.match(String((error as Error).cause), 'counter poison is 3', 'the check\'s error');
    assert.is(checks.length, 2, 'partition 0 passed, partition 1 failed');
    assert.throws(() => refused.state_of(1), /partition 1 is owned by this worker/, 'not served');
    await refused.close();
    // The same data with a behaviour that has no check recovers as before: the check only refuses.
    const plain = await make_host(dir, new ManualClock(1000), snapshot_every_records);
    assert.is(plain.state_of(1).counters.get('poison'), 3);
    await plain.close();
  }
  assert.equal(fatals, []);
});

test.run();

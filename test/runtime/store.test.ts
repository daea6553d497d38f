import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { open } from 'lmdb';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AssertionError } from '../../src/util/assert.js';
import { packr } from '../../src/runtime/codec.js';
import { outbox_trim_batch_max, type OutboxRecord } from '../../src/runtime/outbox.js';
import { commit_together, PartitionStore } from '../../src/runtime/store.js';
import { store_dir } from '../../src/runtime/store_env.js';
import {
  commit, delivered_pending, journal_seqs, outbox_entries, parked_entries, remove_outbox,
} from './store_helpers.js';
import { guarded_after } from '../guard.js';

type Rec = { key: string; n: number };

const dirs: string[] = [];
function temp_dir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'store-test-'));
  dirs.push(dir);
  return dir;
}

guarded_after(test, () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function rec(key: string, n: number): Rec {
  return { key, n };
}

function journal_keys(store: PartitionStore<Rec>): number[] {
  return journal_seqs(store);
}

function outbox_records(store: PartitionStore<Rec>): { key: number; record: OutboxRecord }[] {
  return outbox_entries(store).map(({ seq, record }) => ({ key: seq, record }));
}

test('fresh store recovers empty', async () => {
  const dir = temp_dir();
  const store = new PartitionStore<Rec>(3, dir, 'n1');
  const r = store.recover();
  assert.is(r.snapshot, undefined);
  assert.is(r.snapshot_seq, 0);
  assert.equal(r.tail, []);
  assert.is(r.next_seq, 1);
  assert.is(r.next_outbox_seq, 1);
  assert.is(store.outbox_count(), 0);
  await store.close();
  assert.ok(store_dir(dir, 3).endsWith(join('stores', 's003')));
  assert.is(store.env_path(), store_dir(dir, 0), 'with one store every partition lives in s000');
});

test('journal: commits get contiguous sequences and are replayed in order across reopen', async () => {
  const dir = temp_dir();
  let store = new PartitionStore<Rec>(0, dir, 'n1');
  store.recover();
  assert.is(await commit(store, { records: [rec('a', 1)], outbox: [], now_ms: 1 }), 1);
  assert.is(await commit(store, { records: [rec('a', 2), rec('b', 3)], outbox: [], now_ms: 2 }), 2);
  // Concurrent (not awaited one by one) commits still take consecutive sequences.
  const seqs = await Promise.all([
    commit(store, { records: [rec('c', 4)], outbox: [], now_ms: 3 }),
    commit(store, { records: [rec('d', 5)], outbox: [], now_ms: 3 }),
  ]);
  assert.equal(seqs, [3, 4]);
  assert.equal(journal_keys(store), [1, 2, 3, 4]);
  await store.close();

  store = new PartitionStore<Rec>(0, dir, 'n1');
  const r = store.recover();
  assert.is(r.snapshot, undefined);
  assert.is(r.snapshot_seq, 0);
  assert.equal(r.tail, [[rec('a', 1)], [rec('a', 2), rec('b', 3)], [rec('c', 4)], [rec('d', 5)]]);
  assert.is(r.next_seq, 5);
  assert.is(await commit(store, { records: [rec('e', 6)], outbox: [], now_ms: 4 }), 5);
  await store.close();

  store = new PartitionStore<Rec>(0, dir, 'n1');
  assert.is(store.recover().tail.length, 5);
  await store.close();
});

test('journal: a gap in the journal is detected on recovery', async () => {
  const dir = temp_dir();
  let store = new PartitionStore<Rec>(1, dir, 'n1');
  store.recover();
  for (let i = 1; i <= 3; i++) await commit(store, { records: [rec('a', i)], outbox: [], now_ms: i });
  await store.close();

  const env = open({ path: store_dir(dir, 0), maxDbs: 4 });
  const journal = env.openDB<Buffer, [number, number]>({ name: 'journal', encoding: 'binary' });
  await journal.remove([1, 2]);
  await env.close();

  store = new PartitionStore<Rec>(1, dir, 'n1');
  assert.throws(() => store.recover(), (e: unknown) => e instanceof AssertionError && /contiguous/.test(e.message));
  await store.close();
});

test('a commit needs records, outbox entries or a snapshot', async () => {
  const dir = temp_dir();
  const store = new PartitionStore<Rec>(0, dir, 'n1');
  store.recover();
  try {
    await commit(store, { records: [], outbox: [], now_ms: 0 });
    assert.unreachable('empty commit accepted');
  } catch (e) {
    assert.instance(e, AssertionError);
  }
  await store.close();
});

test('snapshot: replaces the journal it covers; recovery = snapshot + tail', async () => {
  const dir = temp_dir();
  let store = new PartitionStore<Rec>(2, dir, 'n1');
  store.recover();
  await commit(store, { records: [rec('a', 1)], outbox: [], now_ms: 1 });
  await commit(store, { records: [rec('a', 2)], outbox: [], now_ms: 2 });
  assert.equal(journal_keys(store), [1, 2]);
  // Commit 3 carries a snapshot of the state after its own records.
  assert.is(await commit(store, { records: [rec('a', 3)], outbox: [], now_ms: 3, snapshot: { a: 6 } }), 3);
  assert.equal(journal_keys(store), [], 'journal entries covered by the snapshot are gone');
  await commit(store, { records: [rec('a', 4)], outbox: [], now_ms: 4 });
  await commit(store, { records: [rec('b', 5)], outbox: [], now_ms: 5 });
  assert.equal(journal_keys(store), [4, 5]);
  await store.close();

  store = new PartitionStore<Rec>(2, dir, 'n1');
  let r = store.recover();
  assert.equal(r.snapshot, { a: 6 });
  assert.is(r.snapshot_seq, 3);
  assert.equal(r.tail, [[rec('a', 4)], [rec('b', 5)]]);
  assert.is(r.next_seq, 6);
  // A second snapshot supersedes the first and drops the tail it covers.
  assert.is(await commit(store, { records: [rec('b', 6)], outbox: [], now_ms: 6, snapshot: { a: 10, b: 11 } }), 6);
  assert.equal(journal_keys(store), []);
  await store.close();

  store = new PartitionStore<Rec>(2, dir, 'n1');
  r = store.recover();
  assert.equal(r.snapshot, { a: 10, b: 11 });
  assert.is(r.snapshot_seq, 6);
  assert.equal(r.tail, []);
  assert.is(r.next_seq, 7, 'sequence continues after a snapshot with no tail');
  assert.is(await commit(store, { records: [rec('c', 1)], outbox: [], now_ms: 7 }), 7);
  await store.close();
});

test('snapshot: drops journal entries of earlier commits still in flight', async () => {
  // The host group-commits batch after batch without waiting for the previous one to be
  // durable, so a snapshot commit can be issued while an earlier journal commit is pending.
  const dir = temp_dir();
  let store = new PartitionStore<Rec>(4, dir, 'n1');
  store.recover();
  await commit(store, { records: [rec('a', 1)], outbox: [], now_ms: 1 });
  const in_flight = [2, 3, 4].map((n) => commit(store, { records: [rec('a', n)], outbox: [], now_ms: n }));
  in_flight.push(commit(store, { records: [rec('a', 5)], outbox: [], now_ms: 5, snapshot: { a: 15 } }));
  in_flight.push(commit(store, { records: [rec('a', 6)], outbox: [], now_ms: 6 }));
  assert.equal(await Promise.all(in_flight), [2, 3, 4, 5, 6]);
  const left = journal_keys(store);
  await store.close();

  store = new PartitionStore<Rec>(4, dir, 'n1');
  const r = store.recover();
  // Recovery itself stays correct either way (it reads only keys after the snapshot).
  assert.equal(r.snapshot, { a: 15 });
  assert.is(r.snapshot_seq, 5);
  assert.equal(r.tail, [[rec('a', 6)]]);
  assert.is(r.next_seq, 7);
  await store.close();
  assert.equal(left, [6], 'every journal entry at or below the snapshot seq is deleted');
});

test('outbox: event ids are unique, sequential, and carry node, partition and time', async () => {
  const dir = temp_dir();
  const store = new PartitionStore<Rec>(5, dir, 'node-a');
  store.recover();
  await commit(store, {
    records: [rec('a', 1)],
    outbox: [{ type: 'T', key: 'k1', payload: { x: 1 } }, { type: 'T', key: 'k2', payload: { x: 2 } }],
    now_ms: 1000,
  });
  // Outbox-only commit (no records) is allowed.
  await commit(store, { records: [], outbox: [{ type: 'U', key: 'k3', payload: {} }], now_ms: 2000 });
  const entries = outbox_records(store);
  assert.equal(entries.map((e) => e.key), [1, 2, 3]);
  assert.equal(entries.map((e) => e.record.event_id), ['node-a-p5-1', 'node-a-p5-2', 'node-a-p5-3']);
  assert.equal(entries[0]!.record, { type: 'T', key: 'k1', payload: { x: 1 }, event_id: 'node-a-p5-1', created_ms: 1000 });
  assert.is(entries[2]!.record.created_ms, 2000);
  assert.is(store.outbox_count(), 3);
  await store.close();
});

test('outbox: ids are never reused across reopen, even after every entry was deleted', async () => {
  const dir = temp_dir();
  const all_ids = new Set<string>();
  let store = new PartitionStore<Rec>(6, dir, 'n1');
  let r = store.recover();
  assert.is(r.next_outbox_seq, 1);
  await commit(store, { records: [rec('a', 1)], outbox: [{ type: 'T', key: 'a', payload: {} }, { type: 'T', key: 'b', payload: {} }], now_ms: 1 });
  for (const e of outbox_records(store)) all_ids.add(e.record.event_id);
  await store.close();

  // Reopen with entries still present: continues after the last key.
  store = new PartitionStore<Rec>(6, dir, 'n1');
  r = store.recover();
  assert.is(r.next_outbox_seq, 3);
  await commit(store, { records: [rec('a', 1)], outbox: [{ type: 'T', key: 'c', payload: {} }], now_ms: 2 });
  // A later commit without outbox entries must not lower the floor.
  await commit(store, { records: [rec('a', 1)], outbox: [], now_ms: 3 });
  // Drain the outbox completely (what a relay does once the bus acknowledged).
  for (const e of outbox_records(store)) {
    all_ids.add(e.record.event_id);
    await remove_outbox(store, [e.key]);
  }
  assert.is(store.outbox_count(), 0);
  assert.is(all_ids.size, 3);
  await store.close();

  store = new PartitionStore<Rec>(6, dir, 'n1');
  r = store.recover();
  assert.is(r.next_outbox_seq, 4, 'the sequence does not restart at 1 after a drain');
  await commit(store, { records: [], outbox: [{ type: 'T', key: 'd', payload: {} }], now_ms: 4 });
  // Also across a snapshot commit.
  await commit(store, { records: [rec('a', 1)], outbox: [{ type: 'T', key: 'e', payload: {} }], now_ms: 5, snapshot: { any: 1 } });
  const fresh = outbox_records(store);
  assert.equal(fresh.map((e) => e.key), [4, 5]);
  for (const e of fresh) {
    assert.not.ok(all_ids.has(e.record.event_id), `${e.record.event_id} reused`);
    all_ids.add(e.record.event_id);
    await remove_outbox(store, [e.key]);
  }
  await store.close();

  store = new PartitionStore<Rec>(6, dir, 'n1');
  r = store.recover();
  assert.is(r.next_outbox_seq, 6);
  assert.equal(r.snapshot, { any: 1 });
  await store.close();
  assert.is(all_ids.size, 5);
});

test('outbox_oldest_ms: 0 when empty, else created_ms of the oldest entry', async () => {
  const dir = temp_dir();
  const store = new PartitionStore<Rec>(7, dir, 'n1');
  store.recover();
  assert.is(store.outbox_oldest_ms(), 0);
  await commit(store, { records: [], outbox: [{ type: 'T', key: 'a', payload: {} }], now_ms: 500 });
  await commit(store, { records: [], outbox: [{ type: 'T', key: 'b', payload: {} }], now_ms: 900 });
  assert.is(store.outbox_oldest_ms(), 500);
  await remove_outbox(store, [1]);
  assert.is(store.outbox_oldest_ms(), 900);
  await remove_outbox(store, [2]);
  assert.is(store.outbox_oldest_ms(), 0);
  await store.close();
});

async function emit(store: PartitionStore<Rec>, n: number, now_ms: number, type = 'T'): Promise<void> {
  const outbox = Array.from({ length: n }, (_, i) => ({ type, key: `k${i}`, payload: { i } }));
  await commit(store, { records: [], outbox, now_ms });
}

test('read_outbox: bounded batches after a cursor, in seq order, values as stored', async () => {
  const dir = temp_dir();
  const store = new PartitionStore<Rec>(1, dir, 'n1', 2);
  const other = new PartitionStore<Rec>(3, dir, 'n1', 2); // same environment, own key range
  store.recover();
  other.recover();
  await emit(store, 5, 10);
  await emit(other, 2, 10);
  const first = store.read_outbox(0, 3);
  assert.equal(first.map((e) => e.seq), [1, 2, 3]);
  assert.equal((packr.unpack(first[0]!.value) as OutboxRecord).event_id, 'n1-p1-1');
  assert.equal(store.read_outbox(3, 10).map((e) => e.seq), [4, 5], 'never reads into the next partition');
  assert.equal(store.read_outbox(5, 10), []);
  assert.equal(other.read_outbox(0, 10).map((e) => e.seq), [1, 2]);
  await store.close();
  await other.close();
});

test('prepare_settle: deletes and parks in one transaction; gone entries are not counted; requeue restores them', async () => {
  const dir = temp_dir();
  let store = new PartitionStore<Rec>(2, dir, 'n1');
  store.recover();
  await emit(store, 6, 10);
  const [settled] = await commit_together([store], [store.prepare_settle([1, 2, 99], [4])]);
  assert.equal(settled, { removed: 2, parked: 1 });
  assert.is(store.outbox_count(), 3);
  assert.equal(outbox_records(store).map((e) => e.key), [3, 5, 6]);
  assert.equal(parked_entries(store).map((e) => [e.seq, e.record.event_id]), [[4, 'n1-p2-4']]);
  const [again] = await commit_together([store], [store.prepare_settle([1], [4])]);
  assert.equal(again, { removed: 0, parked: 0 }, 'a repeated acknowledgement changes nothing');
  await store.close();

  store = new PartitionStore<Rec>(2, dir, 'n1');
  const r = store.recover();
  assert.is(r.next_outbox_seq, 7, 'parking never lets a seq be issued again');
  assert.is(store.outbox_count(), 3, 'parked entries are not in the outbox');
  assert.is(await store.requeue_parked(), 1);
  assert.is(store.outbox_count(), 4);
  assert.equal(parked_entries(store), []);
  const back = outbox_records(store);
  assert.equal(back.map((e) => e.key), [3, 4, 5, 6], 'back under its own seq');
  assert.is(back[1]!.record.event_id, 'n1-p2-4', 'and its own event id');
  assert.is(await store.requeue_parked(), 0);
  await store.close();
});

test('trim_outbox: oldest first beyond the count, then beyond the age; a pass is bounded', async () => {
  const dir = temp_dir();
  const store = new PartitionStore<Rec>(0, dir, 'n1');
  store.recover();
  await emit(store, 4, 1_000);
  await emit(store, 4, 5_000);
  await emit(store, 4, 9_000);
  assert.equal(await store.trim_outbox({ entries_per_partition: 100, age_ms: null }, 10_000), { count: 0, age: 0 });
  assert.equal(await store.trim_outbox({ entries_per_partition: 10, age_ms: null }, 10_000), { count: 2, age: 0 });
  assert.equal(outbox_records(store).map((e) => e.key)[0], 3, 'the oldest went first');
  // Age: entries created before now - age_ms (1,000 ms ones are; 5,000 ms ones are not).
  assert.equal(await store.trim_outbox({ entries_per_partition: 10, age_ms: 6_000 }, 10_000), { count: 0, age: 2 });
  assert.equal(await store.trim_outbox({ entries_per_partition: 6, age_ms: 4_000 }, 10_000), { count: 2, age: 2 });
  assert.equal(outbox_records(store).map((e) => e.key), [9, 10, 11, 12]);
  assert.is(store.outbox_count(), 4);
  // More than outbox_trim_batch_max over: one pass removes at most that many.
  const many = outbox_trim_batch_max + 5;
  for (let i = 0; i < many; i += 2_000) await emit(store, Math.min(2_000, many - i), 20_000);
  assert.equal(await store.trim_outbox({ entries_per_partition: 4, age_ms: null }, 20_000), { count: outbox_trim_batch_max, age: 0 });
  assert.equal(await store.trim_outbox({ entries_per_partition: 4, age_ms: null }, 20_000), { count: 5, age: 0 });
  assert.is(store.outbox_count(), 4);
  await store.close();
});

test('mark_delivered: gone at once for reads, counts, lag and the cap; deleted on disk by the next commit of the store', async () => {
  const dir = temp_dir();
  const a = new PartitionStore<Rec>(0, dir, 'n1', 2);
  const b = new PartitionStore<Rec>(2, dir, 'n1', 2); // same environment (store 0)
  a.recover();
  b.recover();
  await emit(a, 4, 1_000);
  await emit(a, 1, 2_000);
  assert.is(a.mark_delivered([1, 2, 3, 4, 99]), 4, 'an entry that does not exist is not counted');
  assert.is(a.mark_delivered([1]), 0, 'marking twice counts once');
  assert.is(a.outbox_count(), 1);
  assert.equal(a.read_outbox(0, 10).map((e) => e.seq), [5]);
  assert.is(a.outbox_oldest_ms(), 2_000, 'lag ignores delivered entries');
  assert.equal(await a.trim_outbox({ entries_per_partition: 1, age_ms: 500 }, 2_000), { count: 0, age: 0 }, 'delivered is not dropped');
  assert.equal(outbox_records(a).map((e) => e.key), [1, 2, 3, 4, 5], 'still on disk: no transaction of its own');
  assert.is(delivered_pending(a), 4);
  await commit(b, { records: [rec('x', 1)], outbox: [], now_ms: 3_000 }); // another partition's commit
  assert.equal(outbox_records(a).map((e) => e.key), [5], 'deleted by that commit');
  assert.is(delivered_pending(a), 0);
  a.mark_delivered([5]);
  await a.flush_delivered();
  assert.equal(outbox_records(a), []);
  await a.flush_delivered(); // nothing pending: no transaction
  await emit(a, 2, 4_000);
  a.mark_delivered([6]);
  await a.close(); // closing deletes what is still marked
  await b.close();
  const again = new PartitionStore<Rec>(0, dir, 'n1', 2);
  again.recover();
  assert.equal(outbox_records(again).map((e) => e.key), [7]);
  assert.is(again.outbox_count(), 1);
  await again.close();
});

test.run();

// Background snapshots (compactor.ts, compaction_task.ts): the snapshot a piscina thread builds
// at seq S from the durable journal is the one behaviour.snapshot() gives of the state at S,
// recovery from it gives the same state, and a close or kill -9 mid-compaction loses nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/runtime/clock.js';
import { packr } from '../../src/runtime/codec.js';
import { PartitionHost } from '../../src/runtime/host.js';
import type { WireRequest } from '../../src/runtime/protocol.js';
import { PartitionStore } from '../../src/runtime/store.js';
import { behaviour, type CounterRecord, type CounterRequest, type CounterState } from './fixtures/counter_behaviour.js';
import { guarded_after } from '../guard.js';

const counter_url = new URL('./fixtures/counter_behaviour.js', import.meta.url).href;
const held_url = new URL('./fixtures/held_snapshot_behaviour.js', import.meta.url).href;

const dirs: string[] = [];
function temp_dir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'compaction-test-'));
  dirs.push(dir);
  return dir;
}
guarded_after(test, () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

type Host = PartitionHost<CounterState, CounterRequest, CounterRecord>;
const fatals: unknown[] = [];
const compaction_errors: unknown[] = [];
test.before.each(() => {
  fatals.length = 0;
  compaction_errors.length = 0;
});

async function background_host(dir: string, every: number, partitions: number[], url = counter_url): Promise<Host> {
  const host = new PartitionHost(behaviour, {
    partitions, data_dir: dir, node_id: 'h', clock: new ManualClock(1000), snapshot_every_records: every,
    snapshot_behaviour_url: url, on_compaction_error: (_, error) => compaction_errors.push(error),
  }, (e) => fatals.push(e));
  await host.recover();
  return host;
}

async function inline_host(dir: string, partitions: number[]): Promise<Host> {
  const host = new PartitionHost(behaviour, {
    partitions, data_dir: dir, node_id: 'h', clock: new ManualClock(1000), snapshot_every_records: 1_000_000,
  }, (e) => fatals.push(e));
  await host.recover();
  return host;
}

/** The stored snapshot of a partition, decoded ({ seq, state }), or undefined. */
async function stored_snapshot(dir: string, partition: number): Promise<{ seq: number; state: unknown; tail: number } | undefined> {
  const store = new PartitionStore<CounterRecord>(partition, dir, 'h');
  try {
    const r = store.recover();
    return r.snapshot === undefined ? undefined : { seq: r.snapshot_seq, state: r.snapshot, tail: r.tail.length };
  } finally {
    await store.close();
  }
}

/** A small deterministic generator (xorshift32): the fuzz is reproducible from its seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

function random_request(next: () => number): CounterRequest {
  const key = `k${Math.floor(next() * 6)}`;
  if (next() < 0.2) return { k: 'timer', key, at_ms: 5000 + Math.floor(next() * 1000) };
  return { k: 'add', key, n: 1 + Math.floor(next() * 9) };
}

test('fuzz: the background snapshot at seq S equals behaviour.snapshot() of the state at S, and recovery from it gives the same state', async () => {
  for (const seed of [1, 7, 42, 1234]) {
    const next = rng(seed);
    const dir = temp_dir();
    const partitions = [0, 1, 2];
    const host = await background_host(dir, 1 + Math.floor(next() * 5), partitions);
    // The inline snapshot of every partition after each of its commits, by seq.
    const inline = partitions.map(() => new Map<number, unknown>());
    const seqs = partitions.map(() => 0);
    let id = 1;
    for (let round = 0; round < 60; round++) {
      const requests: WireRequest[] = [];
      const touched = new Set<number>();
      for (let i = 0, n = 1 + Math.floor(next() * 4); i < n; i++) {
        const partition = Math.floor(next() * partitions.length);
        touched.add(partition);
        requests.push({ id: id++, partition, body: random_request(next) });
      }
      await host.run_batch(requests);
      for (const p of touched) {
        seqs[p]! += 1; // one commit per partition touched by a batch
        inline[p]!.set(seqs[p]!, packr.unpack(packr.pack(behaviour.snapshot(host.state_of(p)))));
      }
      if (next() < 0.3) await host.compactions_settled(); // otherwise overlap the next batches
    }
    await host.compactions_settled();
    const live = partitions.map((p) => behaviour.snapshot(host.state_of(p)));
    await host.close();
    let compared = 0;
    for (const p of partitions) {
      const stored = await stored_snapshot(dir, p);
      if (stored === undefined) continue;
      assert.ok(inline[p]!.has(stored.seq), `seed ${seed}: snapshot of partition ${p} at a committed seq (${stored.seq})`);
      assert.equal(stored.state, inline[p]!.get(stored.seq), `seed ${seed}: partition ${p} at seq ${stored.seq}`);
      assert.is(stored.tail, seqs[p]! - stored.seq, `seed ${seed}: the journal after the snapshot is kept, the rest dropped`);
      compared++;
    }
    assert.ok(compared > 0, `seed ${seed}: some partition was snapshotted`);
    const again = await inline_host(dir, partitions);
    for (const p of partitions) {
      assert.equal(behaviour.snapshot(again.state_of(p)), live[p], `seed ${seed}: partition ${p} recovers the same state`);
    }
    await again.close();
  }
  assert.equal(compaction_errors, []);
  assert.equal(fatals, []);
});

test('a background snapshot is taken off the partition thread, after the commit at its seq is durable', async () => {
  const dir = temp_dir();
  const host = await background_host(dir, 4, [0]);
  for (let i = 1; i <= 4; i++) await host.run_batch([{ id: i, partition: 0, body: { k: 'add', key: 'a', n: i } }]);
  await host.compactions_settled();
  const first = await stored_snapshot(dir, 0);
  assert.ok(first !== undefined, 'a snapshot was written');
  assert.is(first.seq, 4);
  assert.equal(first.state, { counters: [['a', 10]], timers: [] });
  const counters = host.drain_snapshot_counters();
  assert.is(counters.snapshot_compactions, 1);
  assert.is(counters.snapshot_compaction_failures, 0);
  await host.close();
});

test('a failed compaction is counted and reported, never fatal; serving goes on and the next one succeeds', async () => {
  const dir = temp_dir();
  const host = await background_host(dir, 2, [0], new URL('./fixtures/no_such_behaviour.js', import.meta.url).href);
  for (let i = 1; i <= 4; i++) await host.run_batch([{ id: i, partition: 0, body: { k: 'add', key: 'a', n: 1 } }]);
  await host.compactions_settled();
  assert.ok(compaction_errors.length >= 1, 'the failure was reported');
  assert.is(host.drain_snapshot_counters().snapshot_compaction_failures, compaction_errors.length);
  assert.is(await stored_snapshot(dir, 0), undefined, 'no snapshot written');
  assert.is(host.state_of(0).counters.get('a'), 4, 'still serving');
  await host.close();
  assert.equal(fatals, []);
  const again = await inline_host(dir, [0]);
  assert.is(again.state_of(0).counters.get('a'), 4, 'the journal recovers everything');
  await again.close();
});

test('close during a compaction waits for it and installs it; the state recovers the same', async () => {
  const dir = temp_dir();
  const marker = join(dir, 'held');
  const release = join(dir, 'release');
  process.env['HELD_SNAPSHOT_MARKER'] = marker;
  process.env['HELD_SNAPSHOT_RELEASE'] = release;
  try {
    const host = await background_host(dir, 3, [0], held_url);
    for (let i = 1; i <= 3; i++) await host.run_batch([{ id: i, partition: 0, body: { k: 'add', key: 'a', n: 1 } }]);
    while (!existsSync(marker)) await new Promise((resolve) => setTimeout(resolve, 5));
    for (let i = 4; i <= 9; i++) await host.run_batch([{ id: i, partition: 0, body: { k: 'add', key: 'a', n: 1 } }]);
    let closed = false;
    const closing = host.close().then(() => {
      closed = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.is(closed, false, 'close waits for the compaction in flight');
    writeFileSync(release, 'go');
    await closing;
  } finally {
    delete process.env['HELD_SNAPSHOT_MARKER'];
    delete process.env['HELD_SNAPSHOT_RELEASE'];
  }
  const stored = await stored_snapshot(dir, 0);
  assert.ok(stored !== undefined, 'the compaction was installed before the store closed');
  assert.is(stored.seq, 3);
  assert.is(stored.tail, 6, 'the commits after it stay in the journal');
  assert.equal(compaction_errors, []);
  const again = await inline_host(dir, [0]);
  assert.is(again.state_of(0).counters.get('a'), 9);
  await again.close();
  assert.equal(fatals, []);
});

/** Runs compaction_child.js until `ready(acknowledged)` says so, then kills it with SIGKILL;
 *  resolves with the last value it acknowledged. */
/** Kills the child once `ready` holds for what it printed last: the acknowledged value and the
 *  snapshots it had installed (durable) by then. */
function run_child_then_kill(dir: string, env: NodeJS.ProcessEnv, ready: (acknowledged: number, installed: number) => boolean): Promise<number> {
  const script = new URL('./fixtures/compaction_child.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [script, dir], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  let acknowledged = 0;
  let installed = 0;
  let buffered = '';
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) [acknowledged, installed] = line.split(' ').map(Number) as [number, number];
      if (ready(acknowledged, installed) && child.exitCode === null) child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(acknowledged);
      else reject(new Error(`child exited ${code} before the kill`));
    });
  });
}

test('kill -9 during a compaction, and again right after one is released: nothing acknowledged is lost', async () => {
  const dir = temp_dir();
  const marker = join(dir, 'held');
  const release = join(dir, 'release');
  const env = { HELD_SNAPSHOT_MARKER: marker, HELD_SNAPSHOT_RELEASE: release };
  // Held: killed while the compaction thread is inside snapshot().
  const first = await run_child_then_kill(dir, env, (acked) => existsSync(marker) && acked >= 10);
  assert.is(await stored_snapshot(dir, 0), undefined, 'the killed compaction wrote nothing');
  const after_first = await inline_host(dir, [0]);
  const recovered = after_first.state_of(0).counters.get('c') ?? 0;
  await after_first.close();
  assert.ok(recovered >= first, `recovered ${recovered} >= acknowledged ${first}`);
  // Released: compactions complete while it runs; killed at some point among them, once at
  // least one was installed (how soon one is depends on the machine's load, not on a count of
  // commits: a piscina thread starts and rebuilds the partition meanwhile).
  writeFileSync(release, 'go');
  rmSync(marker);
  const second = await run_child_then_kill(dir, env, (acked, installed) => installed >= 1 && acked >= recovered + 40);
  const stored = await stored_snapshot(dir, 0);
  assert.ok(stored !== undefined, 'released compactions wrote a snapshot');
  const again = await inline_host(dir, [0]);
  const value = again.state_of(0).counters.get('c') ?? 0;
  await again.close();
  assert.ok(value >= second, `recovered ${value} >= acknowledged ${second}`);
  assert.ok(value <= second + 1, 'at most the one commit in flight at the kill is beyond the acknowledged');
  assert.equal(fatals, []);
});

test.run();

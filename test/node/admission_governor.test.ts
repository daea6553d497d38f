// The admission governor (issue 16 §1): decide_pace on fake signals (no timers), and one
// governor whose pace_queues calls go through a Router to partitions run by the behaviour.
import { EventEmitter } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pino from 'pino';
import { behaviour } from '../../src/actors/behaviour.js';
import type { PartitionState } from '../../src/actors/partition_state.js';
import type { TicketingRequest } from '../../src/actors/protocol.js';
import { fairness_out } from '../../src/grpc/queue_service.js';
import {
  create_governor, decide_pace, p99_ms, pace_initial, type PaceState,
} from '../../src/node/admission_governor.js';
import { Router } from '../../src/route/router.js';
import type { WorkerStats } from '../../src/runtime/protocol.js';
import { seeded_random_bytes } from '../../src/runtime/random.js';
import { T0 } from '../actors/helpers.js';

const thresholds = { mailbox_depth_high: 5_000, commit_ms_high: 50, healthy_s: 5 };
const healthy = { mailbox_depth: 10, commit_p99_ms: 3 };

function run(signals: { mailbox_depth: number; commit_p99_ms: number }[]): number[] {
  let state: PaceState = pace_initial;
  return signals.map((s) => (state = decide_pace(state, s, thresholds)).pace_pct);
}

test('decide_pace: half while a mailbox or the commits are high, full after 5 healthy seconds', () => {
  assert.equal(run([healthy, healthy]), [100, 100]);
  assert.equal(run([{ mailbox_depth: 5_001, commit_p99_ms: 0 }, healthy]), [50, 50]);
  assert.equal(run([{ mailbox_depth: 5_000, commit_p99_ms: 50 }]), [100], 'at the threshold: fine');
  assert.equal(run([{ mailbox_depth: 0, commit_p99_ms: 51 }, healthy, healthy, healthy, healthy,
    healthy, healthy]), [50, 50, 50, 50, 50, 100, 100]);
  // A relapse restarts the count of healthy seconds.
  const slow = { mailbox_depth: 0, commit_p99_ms: 80 };
  assert.equal(run([slow, healthy, healthy, healthy, slow, healthy, healthy, healthy, healthy,
    healthy]), [50, 50, 50, 50, 50, 50, 50, 50, 50, 100]);
});

test('p99_ms: of a second\'s commits in ms; none is 0', () => {
  assert.is(p99_ms([]), 0);
  const d = Array.from({ length: 100 }, (_, i) => (i + 1) / 1000); // 1..100 ms
  assert.is(Math.round(p99_ms(d)), 99);
  assert.is(p99_ms([0.2]), 200);
});

test('the governor\'s pace reaches every partition, and the edge shows it', async () => {
  const partitions = 3;
  const states: PartitionState[] = Array.from({ length: partitions }, (_, p) => behaviour.create(p));
  const random = seeded_random_bytes(3);
  const sink = {
    request(partition: number, body: TicketingRequest): Promise<unknown> {
      const state = states[partition]!;
      const ctx = { partition, now_ms: T0, random_bytes: random };
      const decision = behaviour.decide(state, body, ctx);
      for (const record of decision.records) behaviour.apply(state, record);
      return decision.refusal === undefined ? Promise.resolve(decision.reply)
        : Promise.reject(decision.refusal);
    },
  };
  const pool = Object.assign(new EventEmitter(), { depths: [0, 0], mailbox_depths() { return this.depths; } });
  const ratios: number[] = [];
  const governor = create_governor({
    pool, router: new Router(sink, partitions), partitions: () => [0, 1, 2], thresholds,
    on_pace: (r) => ratios.push(r), log: pino({ level: 'silent' }),
  });
  await governor.tick();
  assert.equal(states.map((s) => s.queues.pace_pct), [100, 100, 100]);
  const slow: WorkerStats = {
    commit_durations_s: [0.2], batch_records: [], gauges: {}, counters: {}, storage: [],
  };
  pool.emit('stats', 0, slow);
  await governor.tick();
  assert.equal(states.map((s) => s.queues.pace_pct), [50, 50, 50], 'slow commits: half');
  for (let i = 0; i < 4; i++) await governor.tick();
  assert.equal(states.map((s) => s.queues.pace_pct), [50, 50, 50], '4 healthy seconds: still half');
  pool.depths = [6_000, 0];
  await governor.tick();
  pool.depths = [0, 0];
  for (let i = 0; i < 4; i++) await governor.tick();
  assert.is(governor.pace_pct(), 50, 'the deep mailbox restarted the count');
  await governor.tick();
  assert.equal(states.map((s) => s.queues.pace_pct), [100, 100, 100], '5 healthy seconds: full');
  assert.equal(ratios, [1, 0.5, 1]);
  governor.stop();
  assert.is(pool.listenerCount('stats'), 0);
  // The converter the edge answers GetFairness with carries the pace.
  const fair = fairness_out({
    event_id: 'e', seed_commitment: '', seed: '', drawn: false, early_count: 0,
    early_chain_head: '', receipt_public_key: '', opens_at_ms: 0, sale_starts_at_ms: 0,
    admit_per_minute: 60, joined: 0, admitted: 0, scheme: '', pace_pct: 50,
  });
  assert.is(fair.pace_pct, 50);
  assert.is(fair.admit_per_minute, 60);
});

test.run();

// The nemesis schedule is a function of the seed: the same seed replays the same faults, a
// different one draws others, every kind appears per_kind times (a 10-minute run: three of
// each), faults never overlap, and the PRNG is the same everywhere (a pinned first draw).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Prng } from '../../chaos/prng.js';
import {
  cluster_kinds,
  count_kinds,
  per_kind,
  schedule,
  single_kinds,
} from '../../chaos/schedule.js';

test('the same seed gives the same schedule; another seed another one', () => {
  assert.equal(schedule(42, 10, false), schedule(42, 10, false));
  assert.not.equal(schedule(42, 10, false), schedule(43, 10, false));
});

test('every kind per_kind times: 3 minutes once each, 10 minutes three times each', () => {
  assert.is(per_kind(3), 1);
  assert.is(per_kind(10), 3);
  for (const [minutes, cluster] of [
    [3, false],
    [10, false],
    [10, true],
  ] as const) {
    const counts = count_kinds(schedule(7, minutes, cluster));
    for (const kind of cluster ? cluster_kinds : single_kinds)
      assert.is(counts.get(kind), per_kind(minutes), `${kind} in ${minutes} min`);
  }
});

test('faults are in order, inside the run, one slot each (no two overlap)', () => {
  for (const seed of [1, 2, 3, 99, 123456]) {
    const s = schedule(seed, 10, false);
    for (let i = 1; i < s.length; i++) {
      assert.ok(
        s[i]!.at_ms >= s[i - 1]!.at_ms + s[i - 1]!.duration_ms,
        `seed ${seed}: #${i} after #${i - 1} ended`,
      );
    }
    assert.ok(s.at(-1)!.at_ms + s.at(-1)!.duration_ms < 10 * 60_000);
  }
});

test('the PRNG is pinned: the same first draws on every platform (mulberry32(1) starts 0.627…)', () => {
  const p = new Prng(1);
  assert.equal([p.int(0, 1000), p.int(0, 1000), p.int(0, 1000)], [627, 2, 527]);
});

test.run();

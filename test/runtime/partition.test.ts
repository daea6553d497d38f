import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AssertionError } from '../../src/util/assert.js';
import { hash32, partition_count_default, partition_count_max, partition_of, worker_of } from '../../src/runtime/partition.js';

test('hash32 is FNV-1a 32-bit (known vectors)', () => {
  assert.is(hash32(''), 0x811c9dc5);
  assert.is(hash32('a'), 0xe40c292c);
  assert.is(hash32('foobar'), 0xbf9cf968);
});

test('partition_of is stable and in range', () => {
  for (const count of [1, 2, 7, partition_count_default, 1000, partition_count_max]) {
    for (let i = 0; i < 500; i++) {
      const key = `event-${i}-${'x'.repeat(i % 13)}`;
      const p = partition_of(key, count);
      assert.ok(Number.isInteger(p) && p >= 0 && p < count, `${key} -> ${p} within ${count}`);
      assert.is(partition_of(key, count), p, 'same key, same partition');
    }
  }
  // Pinned values: a key must map to the same partition across processes and versions.
  assert.is(partition_of('a', 64), 0xe40c292c % 64);
  assert.is(partition_of('foobar', 64), 0xbf9cf968 % 64);
});

test('partition_of spreads keys over every partition', () => {
  const seen = new Set<number>();
  for (let i = 0; i < 5000; i++) seen.add(partition_of(`k${i}`, partition_count_default));
  assert.is(seen.size, partition_count_default);
});

test('partition_of refuses a bad partition_count', () => {
  assert.throws(() => partition_of('a', 0), (e: unknown) => e instanceof AssertionError);
  assert.throws(() => partition_of('a', 1.5), (e: unknown) => e instanceof AssertionError);
  assert.throws(() => partition_of('a', partition_count_max + 1), (e: unknown) => e instanceof AssertionError);
});

test('worker_of: partition modulo worker count; every worker owns partitions', () => {
  assert.is(worker_of(0, 4), 0);
  assert.is(worker_of(5, 4), 1);
  assert.is(worker_of(7, 1), 0);
  const owned = new Map<number, number>();
  for (let p = 0; p < 64; p++) {
    const w = worker_of(p, 6);
    assert.ok(w >= 0 && w < 6);
    owned.set(w, (owned.get(w) ?? 0) + 1);
  }
  assert.is(owned.size, 6);
  assert.throws(() => worker_of(1, 0), (e: unknown) => e instanceof AssertionError);
  assert.throws(() => worker_of(-1, 2), (e: unknown) => e instanceof AssertionError);
  assert.throws(() => worker_of(1.5, 2), (e: unknown) => e instanceof AssertionError);
});

test.run();

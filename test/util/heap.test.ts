import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MinHeap } from '../../src/util/heap.js';

function drain<T>(heap: MinHeap<T>): T[] {
  const out: T[] = [];
  while (heap.size > 0) out.push(heap.pop()!);
  return out;
}

test('empty heap: size 0, peek_key null, pop undefined', () => {
  const heap = new MinHeap<string>();
  assert.is(heap.size, 0);
  assert.is(heap.peek_key(), null);
  assert.is(heap.pop(), undefined);
});

test('pops in ascending key order', () => {
  const heap = new MinHeap<number>();
  const keys = [50, 3, 17, 99, -4, 0, 3.5, 1e9, 42, 8];
  for (const k of keys) heap.push(k, '', k);
  assert.is(heap.size, keys.length);
  assert.is(heap.peek_key(), -4);
  assert.equal(drain(heap), [...keys].sort((a, b) => a - b));
  assert.is(heap.size, 0);
});

test('equal keys are ordered by tie string, regardless of insertion order', () => {
  const ties = ['m', 'b', 'z', 'a', 'q', 'c'];
  for (const order of [ties, [...ties].reverse(), ['q', 'a', 'z', 'c', 'm', 'b']]) {
    const heap = new MinHeap<string>();
    for (const t of order) heap.push(7, t, t);
    assert.equal(drain(heap), [...ties].sort());
  }
});

test('key dominates tie; ties only break equal keys', () => {
  const heap = new MinHeap<string>();
  heap.push(2, 'a', '2a');
  heap.push(1, 'z', '1z');
  heap.push(2, '0', '20');
  heap.push(1, 'b', '1b');
  heap.push(3, '', '3');
  assert.equal(drain(heap), ['1b', '1z', '20', '2a', '3']);
});

test('interleaved push/pop matches a sorted reference (deterministic pseudo-random)', () => {
  let x = 12345;
  const rand = (n: number): number => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x % n;
  };
  const heap = new MinHeap<string>();
  const reference: { key: number; tie: string }[] = [];
  const cmp = (a: { key: number; tie: string }, b: { key: number; tie: string }): number =>
    a.key - b.key || (a.tie < b.tie ? -1 : a.tie > b.tie ? 1 : 0);
  for (let step = 0; step < 5000; step++) {
    if (reference.length === 0 || rand(3) !== 0) {
      const key = rand(20); // many duplicate keys
      const tie = `t${rand(1000)}-${step}`;
      heap.push(key, tie, `${key}/${tie}`);
      reference.push({ key, tie });
    } else {
      reference.sort(cmp);
      const expected = reference.shift()!;
      assert.is(heap.peek_key(), expected.key);
      assert.is(heap.pop(), `${expected.key}/${expected.tie}`);
    }
    assert.is(heap.size, reference.length);
  }
  reference.sort(cmp);
  assert.equal(drain(heap), reference.map((r) => `${r.key}/${r.tie}`));
});

test.run();

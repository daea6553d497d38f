// pooled_random_bytes: every byte handed out once, in the order the fills drew them; what a
// caller keeps is never overwritten by a later fill; requests beyond the pool go to the source.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pooled_random_bytes, random_pool_bytes, seeded_random_bytes } from '../../src/runtime/random.js';

test('hands out the source\'s bytes in order, each once, refilling a whole pool at a time', () => {
  const fills: number[] = [];
  const source = seeded_random_bytes(7);
  const reference = seeded_random_bytes(7);
  const pooled = pooled_random_bytes((n) => {
    fills.push(n);
    return source(n);
  });
  const expected = reference(random_pool_bytes * 2);
  const got: number[] = [];
  const kept: Uint8Array[] = [];
  // 16-byte ids until the first pool is spent and the second begun.
  for (let i = 0; i < random_pool_bytes / 16 + 3; i++) {
    const bytes = pooled(16);
    assert.is(bytes.length, 16);
    kept.push(bytes);
    got.push(...bytes);
  }
  assert.equal(fills, [random_pool_bytes, random_pool_bytes]);
  assert.equal(got, [...expected.subarray(0, got.length)]);
  // Bytes kept from the first pool are unchanged after the second fill.
  assert.equal([...kept[0]!], [...expected.subarray(0, 16)]);
});

test('a request that does not fit what is left starts a new pool; an oversized one bypasses it', () => {
  const fills: number[] = [];
  const pooled = pooled_random_bytes((n) => {
    fills.push(n);
    return new Uint8Array(n).fill(fills.length);
  });
  pooled(random_pool_bytes - 8);
  const straddling = pooled(16);
  assert.equal(fills, [random_pool_bytes, random_pool_bytes]);
  assert.ok(straddling.every((b) => b === 2), 'taken whole from the new pool');
  const big = pooled(random_pool_bytes + 1);
  assert.is(big.length, random_pool_bytes + 1);
  assert.equal(fills, [random_pool_bytes, random_pool_bytes, random_pool_bytes + 1]);
});

test.run();

// Token buckets on a hand-driven clock: burst, refill, the exact retry time, the key bound.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TokenBucket } from '../../src/grpc/rate_limit.js';
import { edge_limits, ip_of_peer } from '../../src/grpc/unary.js';

function manual(options: { rate_per_s: number; burst: number; keys_max?: number }) {
  const clock = { ms: 1_000 };
  const bucket = new TokenBucket({ keys_max: 100, ...options, now_ms: () => clock.ms });
  return { clock, bucket };
}

function take_all(bucket: TokenBucket, key: string, n: number): number {
  let ok = 0;
  for (let i = 0; i < n; i++) if (bucket.take(key).ok) ok++;
  return ok;
}

test('a new key gets the whole burst at once, then is refused with the time to the next token', () => {
  const { bucket } = manual({ rate_per_s: 5, burst: 10 });
  assert.is(take_all(bucket, 'alice', 10), 10);
  assert.equal(bucket.take('alice'), { ok: false, retry_after_ms: 200 }, '1 token at 5/s: 200 ms');
  assert.equal(bucket.take('alice'), { ok: false, retry_after_ms: 200 }, 'a refusal costs nothing');
});

test('refill: retry_after_ms is exact, and taking at that moment succeeds', () => {
  const { clock, bucket } = manual({ rate_per_s: 5, burst: 10 });
  take_all(bucket, 'alice', 10);
  clock.ms += 120; // 0.6 of a token
  assert.equal(bucket.take('alice'), { ok: false, retry_after_ms: 80 });
  clock.ms += 79;
  assert.equal(bucket.take('alice'), { ok: false, retry_after_ms: 1 });
  clock.ms += 1;
  assert.equal(bucket.take('alice'), { ok: true });
  assert.equal(bucket.take('alice'), { ok: false, retry_after_ms: 200 });
  // Odd rates: 3/s → a token every 333.3 ms, so 334 ms is the first whole millisecond with one.
  const odd = manual({ rate_per_s: 3, burst: 1 });
  assert.ok(odd.bucket.take('k').ok);
  assert.equal(odd.bucket.take('k'), { ok: false, retry_after_ms: 334 });
  odd.clock.ms += 333;
  assert.equal(odd.bucket.take('k'), { ok: false, retry_after_ms: 1 });
  odd.clock.ms += 1;
  assert.ok(odd.bucket.take('k').ok);
});

test('sustained rate: over 10 s at 5/s, exactly burst + 50 calls pass', () => {
  const { clock, bucket } = manual({ rate_per_s: 5, burst: 10 });
  let ok = 0;
  for (let ms = 0; ms <= 10_000; ms++) {
    clock.ms = 1_000 + ms;
    ok += take_all(bucket, 'alice', 3);
  }
  assert.is(ok, 10 + 50);
});

test('refill stops at the burst; a clock stepping back refills nothing', () => {
  const { clock, bucket } = manual({ rate_per_s: 5, burst: 10 });
  take_all(bucket, 'alice', 10);
  clock.ms += 3_600_000;
  assert.is(take_all(bucket, 'alice', 50), 10, 'an hour idle is still one burst');
  clock.ms -= 10_000;
  assert.equal(bucket.take('alice'), { ok: false, retry_after_ms: 200 });
  clock.ms += 10_000 + 200;
  assert.ok(bucket.take('alice').ok, 'time is measured from the latest reading, not the earlier one');
});

test('keys are independent', () => {
  const { bucket } = manual({ rate_per_s: 1, burst: 2 });
  assert.is(take_all(bucket, 'alice', 5), 2);
  assert.is(take_all(bucket, 'bob', 5), 2);
  assert.is(bucket.take('alice').ok, false);
});

test('at most keys_max keys: the least recently used is forgotten, and comes back with a full bucket', () => {
  const { clock, bucket } = manual({ rate_per_s: 1, burst: 2, keys_max: 3 });
  take_all(bucket, 'a', 2);
  clock.ms += 1;
  take_all(bucket, 'b', 2);
  clock.ms += 1;
  take_all(bucket, 'c', 2);
  clock.ms += 1;
  assert.is(bucket.take('a').ok, false, 'a is used again: b is now the least recently used');
  bucket.take('d');
  assert.is(bucket.size(), 3);
  assert.ok(bucket.has('a') && bucket.has('c') && bucket.has('d'));
  assert.not.ok(bucket.has('b'), 'b was evicted');
  assert.is(take_all(bucket, 'b', 5), 2, 'an evicted key starts again with a full bucket');
  assert.not.ok(bucket.has('c'), 'and pushed out the next least recently used');
  for (let i = 0; i < 10_000; i++) bucket.take(`k${i}`);
  assert.is(bucket.size(), 3, 'memory stays bounded by keys_max');
});

test('invalid options are refused', () => {
  assert.throws(() => new TokenBucket({ rate_per_s: 0, burst: 1, keys_max: 1 }), /rate_per_s/);
  assert.throws(() => new TokenBucket({ rate_per_s: 1, burst: 0, keys_max: 1 }), /burst/);
  assert.throws(() => new TokenBucket({ rate_per_s: 1, burst: 1, keys_max: 0 }), /keys_max/);
});

test('ip_of_peer strips the port and unwraps IPv4-mapped addresses', () => {
  assert.is(ip_of_peer('127.0.0.1:50123'), '127.0.0.1');
  assert.is(ip_of_peer('::1:50123'), '::1');
  assert.is(ip_of_peer('[2001:db8::7]:443'), '2001:db8::7');
  assert.is(ip_of_peer('::ffff:10.1.2.3:8080'), '10.1.2.3');
  assert.is(ip_of_peer('10.1.2.3'), '10.1.2.3');
  assert.is(ip_of_peer('unknown'), 'unknown');
});

test('edge_limits: rate 0 turns a bucket off; bursts and the key bound are passed on', () => {
  const limits = edge_limits({ rate_user_per_s: 0, rate_user_burst: 0, rate_ip_per_s: 7, rate_ip_burst: 14, rate_keys_max: 9, deadline_ms_max: 5 });
  assert.is(limits.user, undefined);
  assert.is(limits.ip?.rate_per_s, 7);
  assert.is(limits.ip?.burst, 14);
  assert.is(limits.ip?.keys_max, 9);
  assert.is(limits.deadline_ms_max, 5);
});

test.run();

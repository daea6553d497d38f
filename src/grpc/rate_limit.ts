// Token buckets keyed by string (a user id, an ip address), for the edge's abuse limits.
//
// Each key has a bucket of at most `burst` tokens that refills at `rate_per_s`; a call takes one
// token or is refused with the exact time until one is there. Tokens are kept as integers in
// thousandths (milli-tokens) and time in whole milliseconds, so refill and retry_after_ms are
// exact (no float drift) whatever the clock.
//
// Memory stays bounded: at most `keys_max` keys are tracked. The Map is kept in order of last
// use (a key is moved to the end on every take), so when a new key arrives at the bound the
// first entry, the least recently used, is dropped. That costs nothing in fairness when the
// dropped key has been idle for burst/rate seconds (its bucket was full again, exactly what a
// new key gets); a key evicted sooner comes back with a full bucket, which is at most one extra
// burst for a caller able to make keys_max other keys active in between. With keys_max
// 100,000 a bucket costs ~100-150 bytes (key string, entry, Map slot): ~15 MB at worst.
import { assert } from '../util/assert.js';

export interface TokenBucketOptions {
  /** Tokens added per second (> 0). */
  rate_per_s: number;
  /** Bucket size: the most calls allowed at once after a quiet period (≥ 1). */
  burst: number;
  /** Most keys remembered; beyond, the least recently used is forgotten. */
  keys_max: number;
  /** Monotonic milliseconds; injected so tests drive time by hand. */
  now_ms?: () => number;
}

export type TakeResult = { ok: true } | { ok: false; retry_after_ms: number };

interface Bucket {
  milli_tokens: number;
  last_ms: number;
}

const milli = 1000;

export class TokenBucket {
  readonly rate_per_s: number;
  readonly burst: number;
  readonly keys_max: number;
  private readonly now_ms: () => number;
  private readonly buckets = new Map<string, Bucket>();
  private readonly capacity: number;

  constructor(options: TokenBucketOptions) {
    assert(Number.isFinite(options.rate_per_s) && options.rate_per_s > 0, 'rate_per_s > 0');
    assert(Number.isInteger(options.burst) && options.burst >= 1, 'burst is an integer ≥ 1');
    assert(Number.isInteger(options.keys_max) && options.keys_max >= 1, 'keys_max is an integer ≥ 1');
    this.rate_per_s = options.rate_per_s;
    this.burst = options.burst;
    this.keys_max = options.keys_max;
    this.now_ms = options.now_ms ?? (() => performance.now());
    this.capacity = options.burst * milli;
  }

  /** Takes one token for `key`, or says how long until one is available. */
  take(key: string): TakeResult {
    const now = Math.floor(this.now_ms());
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= this.keys_max) {
        const oldest = this.buckets.keys().next().value as string;
        this.buckets.delete(oldest);
      }
      bucket = { milli_tokens: this.capacity, last_ms: now };
    } else {
      this.buckets.delete(key); // re-inserted below: the Map stays in order of last use
      // A clock that steps back refills nothing (and does not move last_ms back).
      const elapsed = Math.max(0, now - bucket.last_ms);
      // rate_per_s tokens per second = rate_per_s milli-tokens per millisecond.
      bucket.milli_tokens = Math.min(this.capacity, bucket.milli_tokens + elapsed * this.rate_per_s);
      bucket.last_ms = Math.max(bucket.last_ms, now);
    }
    this.buckets.set(key, bucket);
    if (bucket.milli_tokens >= milli) {
      bucket.milli_tokens -= milli;
      return { ok: true };
    }
    return { ok: false, retry_after_ms: Math.max(1, Math.ceil((milli - bucket.milli_tokens) / this.rate_per_s)) };
  }

  /** Keys currently tracked (≤ keys_max). */
  size(): number {
    return this.buckets.size;
  }

  /** Whether `key` is tracked (tests). */
  has(key: string): boolean {
    return this.buckets.has(key);
  }
}

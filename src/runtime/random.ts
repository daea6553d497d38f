// Deterministic bytes for tests that replay a seed (xorshift32; not for production ids).
export function seeded_random_bytes(seed: number): (count: number) => Uint8Array {
  let x = (seed >>> 0) || 0x9e3779b9;
  return (count: number) => {
    const out = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      out[i] = x & 0xff;
    }
    return out;
  };
}

/** Bytes drawn from the system's CSPRNG per fill of pooled_random_bytes' pool. */
export const random_pool_bytes = 4096;

/**
 * Crypto-strength random bytes (as randomBytes), drawn from a pool refilled random_pool_bytes
 * at a time: randomBytes(16) per hold id was 4 % of the worker's busy time under ghz
 * ReserveTickets (issue 13), nearly all of it the fixed cost of one fill. Each fill is a new
 * buffer and no byte is handed out twice, so what a caller keeps is never overwritten.
 */
export function pooled_random_bytes(
  fill: (count: number) => Uint8Array,
): (count: number) => Uint8Array {
  let pool: Uint8Array = new Uint8Array(0);
  let offset = 0;
  return (count: number) => {
    if (count > random_pool_bytes) return fill(count);
    if (offset + count > pool.length) {
      pool = fill(random_pool_bytes);
      offset = 0;
    }
    const out = pool.subarray(offset, offset + count);
    offset += count;
    return out;
  };
}

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

import { assert } from '../util/assert.js';

export const partition_count_default = 64;
export const partition_count_max = 4096;

/** FNV-1a 32-bit: stable across processes and versions, so a key always maps to one partition. */
export function hash32(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function partition_of(key: string, partition_count: number): number {
  assert(Number.isInteger(partition_count) && partition_count >= 1, 'partition_count positive');
  assert(partition_count <= partition_count_max, 'partition_count within max');
  const p = hash32(key) % partition_count;
  assert(p >= 0 && p < partition_count, 'partition in range');
  return p;
}

export function worker_of(partition: number, worker_count: number): number {
  assert(worker_count >= 1, 'worker_count positive');
  assert(Number.isInteger(partition) && partition >= 0, 'partition non-negative');
  return partition % worker_count;
}

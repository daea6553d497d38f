// Ids issued by the node: `<kind>_<partition>_<random>`. The partition lets any later request
// route without a lookup; 16 random bytes (128 bits) make ids unguessable.
import { InvalidArgumentError } from './errors.js';

export const id_random_bytes = 16;
const id_shape = /^([a-z]{1,8})_([0-9]{1,4})_([A-Za-z0-9_-]{22})$/;

export function make_id(kind: string, partition: number, random: Uint8Array): string {
  if (random.length !== id_random_bytes) throw new RangeError('id needs 16 random bytes');
  if (!/^[a-z]{1,8}$/.test(kind) || !Number.isInteger(partition) || partition < 0 || partition > 9999) {
    throw new RangeError(`bad id kind/partition ${kind}/${partition}`);
  }
  const id = `${kind}_${partition}_${Buffer.from(random).toString('base64url')}`;
  return id;
}

/** The partition encoded in an id of `kind`; InvalidArgumentError when it is not one. */
export function partition_of_id(kind: string, id: string, partition_count: number, field: string): number {
  const match = id_shape.exec(id);
  if (match === null || match[1] !== kind) {
    throw new InvalidArgumentError(`${field} is not a valid ${kind} id (expected ${kind}_<partition>_<22 chars>)`);
  }
  const partition = Number(match[2]);
  if (partition >= partition_count) throw new InvalidArgumentError(`${field} names a partition this node does not have`);
  return partition;
}

// The data directory's identity, recorded in node.json at creation: partition count, store
// count (LMDB environments; default the worker count then, so each worker's batch is one
// transaction) and node id (prefix of every outbox event id). None of them changes later.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { partition_count_default, partition_count_max } from '../runtime/partition.js';

export interface NodeMeta {
  format: 2; partition_count: number; store_count: number; node_id: string; created_at: string;
  /** Set when the directory belongs to a node of that cluster (no stores: state is in Kafka). */
  cluster?: string;
}

/** `cluster`: the --cluster name the node runs with (undefined: a single node). A directory is
 *  one or the other for life: a single node's stores are not imported into a cluster, and a
 *  cluster node's directory has no stores a single node could serve. */
export function open_data_dir(
  dir: string, partitions_requested: number | undefined, workers: number, cluster?: string,
): NodeMeta {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'node.json');
  if (existsSync(path)) {
    const meta = JSON.parse(readFileSync(path, 'utf8')) as NodeMeta;
    if (meta.format !== 2) throw new Error(`${path}: unknown format ${String(meta.format)}`);
    if (meta.cluster !== cluster) {
      const was = meta.cluster === undefined ? 'a single node (its partitions are in its LMDB stores)' : `a node of cluster ${meta.cluster}`;
      const now = cluster === undefined ? 'a single node' : `a node of cluster ${cluster}`;
      throw new Error(`${dir} was created for ${was}; it cannot serve as ${now}: use another --data directory`);
    }
    if (partitions_requested !== undefined && partitions_requested !== meta.partition_count) {
      throw new Error(`--partitions ${partitions_requested} differs from the ${meta.partition_count} this data directory was created with; partitions are fixed at creation`);
    }
    return meta;
  }
  const partition_count = partitions_requested ?? partition_count_default;
  if (!Number.isInteger(partition_count) || partition_count < 1 || partition_count > partition_count_max) {
    throw new Error(`--partitions must be 1..${partition_count_max}`);
  }
  const store_count = Math.max(1, Math.min(workers, partition_count));
  const meta: NodeMeta = {
    format: 2, partition_count, store_count, node_id: randomBytes(6).toString('hex'), created_at: new Date().toISOString(),
    ...(cluster === undefined ? {} : { cluster }),
  };
  writeFileSync(path, JSON.stringify(meta, null, 2) + '\n', { flag: 'wx' });
  return meta;
}

/** node.json of an existing data directory, never creating anything (backup, outbox tail). */
export function read_node_meta(data_dir: string): NodeMeta {
  const path = join(data_dir, 'node.json');
  if (!existsSync(path)) throw new Error(`${data_dir} is not a ticketing data directory: ${path} does not exist`);
  let meta: NodeMeta;
  try {
    meta = JSON.parse(readFileSync(path, 'utf8')) as NodeMeta;
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message}`);
  }
  if (meta.format !== 2) throw new Error(`${path}: unknown format ${String(meta.format)}`);
  if (!Number.isInteger(meta.store_count) || meta.store_count < 1) throw new Error(`${path}: store_count must be a positive integer`);
  if (!Number.isInteger(meta.partition_count) || meta.partition_count < 1) throw new Error(`${path}: partition_count must be a positive integer`);
  return meta;
}

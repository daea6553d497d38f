// The node's worker pool: the threads that own the partitions, started and recovered before
// anything is served. Its figures go to the metrics, its restarts to the log.
import type { Logger } from 'pino';
import { revive_domain_error } from '../actors/errors.js';
import { outbox_cap_of } from '../kafka/start.js';
import type { NodeMeta } from '../ops/data_dir.js';
import type { Metrics } from '../ops/metrics.js';
import { WorkerPool } from '../runtime/pool.js';
import type { ServeConfig } from './config.js';
import type { JournalHook } from './cluster.js';
import { JournalWriteError, PartitionFencedError, PartitionMovedError } from '../cluster/errors.js';
import { PartitionNotServedError, reviver, type RuntimeError, type WireError } from '../runtime/errors.js';

/** The cluster writer's refusals (a commit Kafka did not take comes back through the worker). */
const revive_cluster_error = reviver<RuntimeError>([PartitionFencedError, JournalWriteError, PartitionMovedError]);

/** The node's errors that cross a thread or a peer hop as their class: the behaviour's, and
 *  the cluster writer's (a commit refused by Kafka comes back through the worker). */
export function revive_node_error(wire: WireError): Error | undefined {
  return revive_domain_error(wire.name, wire.message) ?? revive_cluster_error(wire);
}

/** Starts the workers; resolves once every partition is recovered. */
export async function start_pool(
  config: ServeConfig, meta: NodeMeta, metrics: Metrics, log: Logger, journal_hook: JournalHook,
): Promise<WorkerPool> {
  // Cluster mode: the workers start with no partition (the group assigns them) and send each
  // commit here, to the partition's fenced Kafka writer (src/node/cluster.ts).
  const remote = config.cluster !== undefined;
  const pool = new WorkerPool({
    worker_count: Math.min(config.workers, meta.partition_count),
    partition_count: meta.partition_count,
    data_dir: config.data_dir,
    node_id: meta.node_id,
    behaviour_url: new URL('../actors/behaviour.js', import.meta.url).href,
    mailbox_depth_max: config.mailbox_depth_max,
    mailbox_batch_size_max: config.mailbox_batch_size_max,
    snapshot_every_records: config.snapshot_every_records,
    store_count: meta.store_count,
    clock_offset_ms: config.test_clock ? config.clock_offset_ms : 0,
    outbox_cap: outbox_cap_of(config, meta.partition_count),
    store_map_bytes: config.store_map_bytes,
    storage_probe_interval_ms: config.storage_probe_interval_ms,
    revive: revive_node_error,
    journal: remote ? 'remote' : 'local',
    ...(remote ? {
      on_journal: (commit) => journal_hook.handler?.(commit) ?? Promise.reject(new PartitionNotServedError(
        `partition ${commit.partition} is not served yet; retry`)),
    } : {}),
  });
  metrics.attach(pool);
  pool.on('worker_exit', (worker, code) => {
    const message = 'worker stopped; in-flight requests failed with UNAVAILABLE; restarting';
    log.warn({ worker, code }, message);
  });
  pool.on('worker_ready', (worker) => log.info({ worker }, 'worker ready'));
  const started = performance.now();
  await pool.start();
  log.info({
    partitions: meta.partition_count, stores: meta.store_count, workers: config.workers,
    recovery_ms: Math.round(performance.now() - started),
  }, 'partitions recovered');
  return pool;
}

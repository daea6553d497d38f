// The composition root: assembles one node (data lock, data dir, worker pool, outbox and Kafka,
// purchases, settlement loop, metrics, gRPC edge, HTTP endpoint) and owns the order in which the
// parts start and stop. Graceful stop (SIGTERM/SIGINT in src/cli/main.ts): stop accepting, drain
// in-flight calls (bounded), close workers and LMDB.
import type { Logger } from 'pino';
import { load_public_keys, load_secret, type VerificationKeys } from '../auth/token.js';
import { start_edge, type Edge } from '../grpc/edge.js';
import {
  check_web_config, start_web, type OpsFigures, type WebServer,
} from '../grpc/web_server.js';
import { web_registry } from '../grpc/web_descriptors.js';
import { Router } from '../route/router.js';
import { check_outbox_config, start_outbox, type RunningOutbox } from '../kafka/start.js';
import { lock_data_dir } from '../ops/data_lock.js';
import { open_data_dir } from '../ops/data_dir.js';
import { start_http } from '../ops/http.js';
import { create_logger } from '../ops/log.js';
import { Metrics } from '../ops/metrics.js';
import { FraudSignalTracker } from '../purchase/fraud_signals.js';
import { load_ip_blocklist } from '../purchase/ip_blocklist.js';
import { Purchases } from '../purchase/purchases.js';
import { SandboxGateway } from '../purchase/sandbox_gateway.js';
import { start_settlement_loop } from '../purchase/settlement_loop.js';
import type { WorkerPool } from '../runtime/pool.js';
import { split_addr } from './addr.js';
import { start_admission_governor, type Governor } from './admission_governor.js';
import type { ServeConfig } from './config.js';
import { start_cluster, resolve_partition_count, check_cluster_config, type JournalHook, type RunningCluster } from './cluster.js';
import { revive_node_error, start_pool } from './pool.js';

export interface RunningNode {
  grpc_port: number;
  http_port: number;
  /** The web listener's port (--web); undefined without one. */
  web_port: number | undefined;
  pool: WorkerPool;
  log: Logger;
  stop(): Promise<void>;
}

export async function serve(config: ServeConfig, log = create_logger()): Promise<RunningNode> {
  // Everything that can be refused from the configuration alone, before anything starts.
  const blocklist = load_ip_blocklist(config.fraud_ip_blocklist_file);
  const public_keys = load_public_keys(config.auth_public_keys_file);
  check_outbox_config(config);
  // Cluster mode: refused before anything starts when a flag or the shared secret is missing.
  if (config.cluster !== undefined) check_cluster_config(config);
  const g = split_addr(config.grpc_addr, '--grpc');
  const h = split_addr(config.http_addr, '--http');
  const w = config.web_addr === undefined ? undefined : split_addr(config.web_addr, '--web');
  check_web_config(config, w?.host);
  // Before anything in the directory is read or written, and held until LMDB is closed: a
  // second node on the same directory would sell the same seats (src/ops/data_lock.ts).
  const lock = await lock_data_dir(config.data_dir, { command: 'serve' }); // addresses once bound
  // What has started, newest first: a start that fails (a port taken, a directory refused)
  // stops it all again, so an in-process caller is never left with threads and the lock.
  const started: (() => Promise<void>)[] = [() => lock.release()];
  try {
    // A cluster's partition count is its journal topic's (or, for a new cluster, --partitions).
    const partitions = config.cluster === undefined ? config.partitions : await resolve_partition_count(config);
    const meta = open_data_dir(config.data_dir, partitions, config.workers, config.cluster);
    const secret = load_secret(config.data_dir);
    const metrics = new Metrics();
    const journal_hook: JournalHook = { handler: undefined };
    const pool = await start_pool(config, meta, metrics, log, journal_hook);
    started.unshift(() => pool.close());
    // Single node: beside the request path (a broker outage never fails or slows a call, the
    // outbox grows). Cluster: events go in the journal's own transactions, no outbox.
    const outbox = config.cluster === undefined ? start_outbox(config, pool, metrics, log, meta.node_id) : no_outbox;
    started.unshift(() => outbox.stop());
    let cluster: RunningCluster | undefined;
    if (config.cluster !== undefined) {
      const running = await start_cluster({
        config, node_id: meta.node_id, partition_count: meta.partition_count, secret, pool,
        revive: revive_node_error, journal_hook, metrics, log,
      });
      cluster = running;
      started.unshift(() => running.stop());
    }
    const router = new Router(cluster?.sink ?? pool, meta.partition_count);
    const gateway = new SandboxGateway();
    const purchases = new Purchases(router, gateway, new FraudSignalTracker(blocklist), log);
    const settlement = start_settlement(config, purchases, metrics, log, cluster);
    started.unshift(() => settlement.stop());
    const keys = { secret, public_keys, lifetime_seconds_max: config.token_lifetime_seconds_max };
    const parts = { config, keys, metrics, log, pool, router, purchases };
    const edge = await start_edge(parts, g.host, g.port);
    started.unshift(() => edge.close_now());
    const governor = start_governor(config, pool, router, metrics, log, cluster);
    started.unshift(async () => governor?.stop());
    const ops_figures = () => ({
      pending: metrics.gauge_total('outbox_pending'), lag_seconds: metrics.outbox_lag_s,
      // ticketing_queue_length's source: buyers waiting over every waiting room.
      queue_length: metrics.gauge_total('queue_waiting'),
    });
    const web = await start_web_edge(config, edge, { ...keys, figures: ops_figures }, log);
    if (web !== undefined) started.unshift(() => web.close(0));
    const http = await start_http(h.host, h.port, metrics, readiness(pool, metrics, outbox, cluster));
    const http_port = (http.address() as { port: number }).port;
    lock.update({ grpc_addr: `${g.host}:${edge.port}`, http_addr: `${h.host}:${http_port}` });
    const web_addr = web === undefined ? {} : { web: web_address(config, web.port) };
    edge.set_health('SERVING');
    log.info({
      grpc: `${g.host}:${edge.port}`, http: `${h.host}:${http_port}`, ...web_addr,
      data_dir: config.data_dir,
      ...(config.cluster === undefined ? {} : { cluster: config.cluster, advertise: config.advertise_addr, node_id: meta.node_id }),
    }, 'serving');
    let stopping: Promise<void> | undefined;
    // The stop order: drain the calls in flight, then the listener; then the settlement loop,
    // the outbox before the pool, the pool, the HTTP endpoint, and the lock last.
    const stop = (): Promise<void> => {
      stopping ??= (async () => {
        await Promise.all([edge.drain(config.drain_ms_max), web?.close(config.drain_ms_max)]);
        governor?.stop();
        await settlement.stop();
        // Before the pool: leaving the group hands the partitions over at once, and nothing
        // of this node is written after it.
        await cluster?.stop();
        // Before the pool: the emitter deletes what the broker acknowledged through the workers.
        await outbox.stop();
        await pool.close();
        await new Promise<void>((resolve) => http.close(() => resolve()));
        await lock.release();
        log.info('stopped');
      })();
      return stopping;
    };
    return { grpc_port: edge.port, http_port, web_port: web?.port, pool, log, stop };
  } catch (error) {
    for (const stop_part of started) await stop_part();
    throw error;
  }
}

/** The web listener (--web): the edge's own handlers over Connect/gRPC-Web, and the page. */
async function start_web_edge(
  config: ServeConfig, edge: Edge,
  ops: VerificationKeys & { figures: () => OpsFigures }, log: Logger,
): Promise<WebServer | undefined> {
  if (config.web_addr === undefined) return undefined;
  const w = split_addr(config.web_addr, '--web');
  const registry = web_registry(edge.web.definition);
  const { figures, ...keys } = ops;
  return start_web({ ...edge.web, config, registry, keys, figures, log }, w.host, w.port);
}

function web_address(config: ServeConfig, port: number): string {
  const w = split_addr(config.web_addr ?? '', '--web');
  return `${w.host.includes(':') ? `[${w.host}]` : w.host}:${port}`;
}

/** The admission governor (--queue-pace): each node paces the partitions it serves. */
function start_governor(
  config: ServeConfig, pool: WorkerPool, router: Router, metrics: Metrics, log: Logger,
  cluster: RunningCluster | undefined,
): Governor | undefined {
  if (!(config.queue_pace ?? !config.test_clock)) return undefined;
  const all = Array.from({ length: router.partition_count }, (_, p) => p);
  return start_admission_governor({
    pool, router, log,
    partitions: () => (cluster === undefined ? all : cluster.served()),
    thresholds: {
      mailbox_depth_high: config.queue_pace_mailbox_depth_high
        ?? Math.max(1, Math.floor(config.mailbox_depth_max / 2)),
      commit_ms_high: config.queue_pace_commit_ms_high, healthy_s: config.queue_pace_healthy_s,
    },
    on_pace: (ratio) => metrics.queue_pace_ratio.set(ratio),
  });
}

/** Settles what crashes and gateway outages leave open, counting every pass. */
function start_settlement(
  config: ServeConfig, purchases: Purchases, metrics: Metrics, log: Logger, cluster: RunningCluster | undefined,
): { stop(): Promise<void> } {
  return start_settlement_loop({
    purchases, interval_ms: config.settle_interval_ms, log,
    // In a cluster each node settles the partitions it serves (the owner's gateway calls and
    // journal writes stay on one node); a single node settles all.
    ...(cluster === undefined ? {} : { partitions: () => cluster.served() }),
    // While a store refuses writes, a pass could call the gateway but not record the outcome.
    open_payments: () => (metrics.storage_messages().length > 0
      ? 0
      : metrics.gauge_total('payments_open')),
    on_pass: (r) => {
      metrics.settlements.inc({ outcome: 'settled' }, r.settled);
      metrics.settlements.inc({ outcome: 'deferred' }, r.due - r.settled);
    },
  });
}

const no_outbox: RunningOutbox = { degraded: () => [], emitter: undefined, stop: async () => undefined };

/** /readyz: ready while every worker serves and storage takes writes; degraded names why. In
 *  a cluster: also in the group and recovering nothing; the JSON form names the partitions. */
function readiness(pool: WorkerPool, metrics: Metrics, outbox: RunningOutbox, cluster: RunningCluster | undefined) {
  return {
    // Storage full: not ready (writes are refused), though reads are still answered.
    ready: () => pool.ready() && metrics.storage_messages().length === 0 && (cluster?.ready() ?? true),
    degraded: () => [
      ...(pool.ready() ? [] : ['a worker is recovering its partitions']),
      ...metrics.storage_messages(),
      ...outbox.degraded(),
      ...(cluster?.degraded() ?? []),
    ],
    ...(cluster === undefined ? {} : { cluster: () => cluster.status() }),
  };
}

// The bench's sizes and targets, read once from the environment; every section takes its sizes
// from here, and bench/results.json records both objects (`config`, `targets`).
//
// Knobs (environment): BENCH_QUICK=1 (short phases, for trying the bench out),
// BENCH_CONCURRENCY (closed-loop calls in flight, default 64),
// BENCH_WORKERS (server --workers, default 1),
// BENCH_RESTART_BIG=1 (section "restart" on 200 x 50,000 = 10,000,000 seats and 1,000,000 holds,
// issue 13's restart case, instead of 20 x 50,000 and 100,000),
// BENCH_ONLY=memory,load,restart,kafka,purchase,cluster,selection,watch,ghz (run some sections
// only).
import type { Layout } from './common.js';

export const quick = process.env['BENCH_QUICK'] === '1';
const restart_big = process.env['BENCH_RESTART_BIG'] === '1';

export const cfg = {
  workers: Number(process.env['BENCH_WORKERS'] ?? 1),
  concurrency: Number(process.env['BENCH_CONCURRENCY'] ?? 64),
  warmup_s: 1,
  phase_s: quick ? 1.5 : 3,
  rounds: quick ? 1 : 3,
  open_s: quick ? 2 : 6,
  events: 100,
  small_layout: { sections: 2, rows: 10, seats_per_row: 100 } satisfies Layout, // 2,000 seats
  big_events: 20,
  big_layout: { sections: 5, rows: 10, seats_per_row: 1000 } satisfies Layout, // 50,000 seats
  fill_holds: quick ? 20_000 : 100_000,
  fill_users: 10_007,
  restart_events: restart_big ? 200 : 20,
  restart_holds: restart_big ? 1_000_000 : quick ? 20_000 : 100_000,
  fill_concurrency: 256,
  max_seats_per_user: 100,
  purchase_event: 'bench-sale',
  // 200,000 seats, the most one event may have
  purchase_layout: { sections: 4, rows: 50, seats_per_row: 1000 } satisfies Layout,
  stats_wait_ms: 1500,
  // every section, purchase (about 3 min) and cluster (about 6 min) included
  overall_timeout_ms: 25 * 60_000,
  // Section "cluster": 3 brokers, 3 nodes (each --workers 1) against one single node, all with
  // the same partition count, so an event id is on the same partition everywhere.
  cluster_name: 'bench',
  cluster_nodes: 3,
  cluster_partitions: 8,
  /** Load events per partition (every partition gets load); one more per partition is kept for
   *  the failover probes, so a probe never meets a seat the load holds. */
  cluster_events_per_partition: 4,
  /** The 3-node / 1-node rounds: longer than the other sections' (3 s), because on a shared
   *  2-core box a cluster op at 64 in flight took 6-9 s (first run, 1 Dec 2026), and a window
   *  shorter than an op counts nothing. Both sides get the same spec. */
  cluster_warmup_s: quick ? 2 : 5,
  cluster_phase_s: quick ? 4 : 15,
  /** Idle CPU of every process, sampled once before the rounds and taken off their figures. */
  cluster_idle_sample_s: quick ? 2 : 5,
  /** Forwarding cost: calls in flight, light enough that latency is the hop, not a queue. */
  cluster_forward_concurrency: 8,
  /** kill -9 of a node, each node in turn (at least 5, as the issue asks). */
  cluster_kills: quick ? 3 : 6,
  cluster_start_timeout_ms: 120_000,
  /** Bound on a killed node's partitions being served again (the target is 10 s). */
  cluster_failover_bound_ms: 60_000,
  /** Bound on the cluster settling: every partition owned once, nothing recovering. */
  cluster_settle_bound_ms: 120_000,
  // Section "ghz" (issue 13): ghz, a Go load generator (so the generator is not the ceiling),
  // drives ReserveTickets of distinct seats against the no-op server, a grpc-js + Redis Lua
  // front and ours, in rounds that alternate the three; each round is its own event.
  /** Pinned, so every run measures with the same generator; installed with `go install`. */
  ghz_version: 'v0.93.0',
  /** ReserveTickets per round and server, one distinct seat each (at most ghz_layout's seats). */
  ghz_calls: quick ? 4_000 : 40_000,
  /** Calls per server before the rounds, not counted: JIT and connection warm-up. */
  ghz_warmup_calls: quick ? 1_000 : 4_000,
  ghz_rounds: 2,
  /** One HTTP/2 connection, as the node loadgen uses; calls in flight as BENCH_CONCURRENCY. */
  ghz_connections: 1,
  // 50,000 seats per event: room for ghz_calls distinct seats
  ghz_layout: { sections: 5, rows: 10, seats_per_row: 1000 } satisfies Layout,
  /** Users a round's calls rotate over: at most 4 holds each per event, within ours' limit of
   *  10 active holds per user and event (and far within max_seats_per_user). */
  ghz_users: 10_007,
  /** Bound on one ghz run; a run still going then is killed and the section fails. */
  ghz_run_timeout_s: quick ? 120 : 300,
};

export const targets = {
  throughput_ratio: 0.6,
  open_p99_ms: 10,
  hot_ratio: 0.8,
  records_per_commit: 20,
  bytes_per_seat: 64,
  restart_s: 3,
  purchase_rpc_ratio: 0.5,
  kafka_throughput_ratio: 0.9,
  kafka_records_per_send: 50,
  /** Issue 12: every partition of a node killed with kill -9 served by another within 10 s. */
  cluster_failover_max_s: 10,
  /** Issue 13: ours' ReserveTickets calls/s over grpc-js + Redis Lua (`appendfsync always`). */
  ghz_redis_ratio: 1.0,
  ghz_redis_moonshot: 1.2,
  /** Issue 13: ours' server CPU per ReserveTickets over the no-op server's. */
  ghz_cpu_ratio: 1.5,
};

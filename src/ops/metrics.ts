// Prometheus metrics (names: docs/contracts.md "Metric names and logs"). Workers report figures
// to the main thread once a second; this module folds them into the registry. No per-user or
// per-event labels.
import client from 'prom-client';
import { auth_refusal_reasons } from '../auth/errors.js';
import { verified_tokens_max, type VerifiedTokens } from '../auth/token_cache.js';
import type { WorkerPool } from '../runtime/pool.js';
import { assert } from '../util/assert.js';
import type { WorkerStats } from '../runtime/protocol.js';

/** Every `limit` label of ticketing_limit_refusals_total, exported at 0 from the start. */
export const limit_labels = [
  'seats_per_hold', 'max_seats_per_user', 'holds_per_user', 'payments_per_order', 'refunds_per_payment',
  'string_length', 'mailbox_depth', 'deadline', 'rate_user', 'rate_ip',
  'streams_max', 'streams_per_address_max', 'request_arrival',
  'forwards_in_flight_per_peer', 'forward_message_bytes',
  'watch_streams_max', 'watch_stream_backlog_max',
  // ExtendHold past hold_extensions_max or hold_life_seconds_max.
  'hold_extensions',
  // The waiting room: Join past queue_entries_per_event_max; WatchPosition past
  // queue_watch_streams_max.
  'queue_entries', 'queue_watch_streams_max',
] as const;

/** Why a WatchAvailability stream ended: the client left, read too slowly, was refused at
 *  watch_streams_max, the poll failed (event gone, partition not served), or the node stopped. */
export const watch_end_reasons = ['client', 'slow', 'limit', 'error', 'shutdown'] as const;
export type WatchEndReason = typeof watch_end_reasons[number];

const gauges_named_like_counters = [
  'ticketing_nodejs_active_handles_total', 'ticketing_nodejs_active_requests_total', 'ticketing_nodejs_active_resources_total',
] as const;

/** Most methods counted through CallCounts: every method the node serves, with room. */
export const call_counts_max = 256;

/** One method's answered calls by status code, counted as plain integers on the call path (a
 *  prom-client inc per call hashed and checked its labels: 1.5 % of the main thread under ghz,
 *  issue 13) and added to ticketing_grpc_requests_total at every scrape. */
export class CallCounts {
  private readonly counts = new Map<string, number>();
  private readonly seen = new Map<string, number>();
  constructor(readonly service: string, readonly method: string) {}

  inc(code: string): void {
    this.counts.set(code, (this.counts.get(code) ?? 0) + 1);
  }

  /** Counts since the last drain, by code (only codes that grew). */
  drain(): [string, number][] {
    const grown: [string, number][] = [];
    for (const [code, count] of this.counts) {
      const delta = count - (this.seen.get(code) ?? 0);
      if (delta > 0) grown.push([code, delta]);
      this.seen.set(code, count);
    }
    return grown;
  }
}

export class Metrics {
  readonly registry = new client.Registry();
  private readonly call_counts_list: CallCounts[] = [];
  readonly grpc_requests: client.Counter<'service' | 'method' | 'code'> = new client.Counter({
    name: 'ticketing_grpc_requests_total', help: 'gRPC calls answered, by service, method and status code',
    labelNames: ['service', 'method', 'code'] as const, registers: [this.registry],
    collect: (): void => {
      for (const counts of this.call_counts_list) {
        for (const [code, delta] of counts.drain()) {
          this.grpc_requests.inc({ service: counts.service, method: counts.method, code }, delta);
        }
      }
    },
  });
  readonly grpc_duration = new client.Histogram({
    name: 'ticketing_grpc_request_duration_seconds', help: 'gRPC call latency from receipt to answer',
    labelNames: ['service', 'method'] as const, registers: [this.registry],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  });
  readonly holds_active = new client.Gauge({ name: 'ticketing_seat_holds_active', help: 'Active (unexpired, unreleased, unconfirmed) holds', registers: [this.registry] });
  readonly seats_held = new client.Gauge({ name: 'ticketing_seats_held', help: 'Seats currently held', registers: [this.registry] });
  readonly seats_sold = new client.Counter({ name: 'ticketing_seats_sold_total', help: 'Seats sold (allocation confirmed)', registers: [this.registry] });
  private pool: WorkerPool | undefined;
  readonly mailbox_depth = new client.Gauge({
    name: 'ticketing_mailbox_depth', help: 'Requests queued or in flight per worker', labelNames: ['worker'] as const, registers: [this.registry],
    collect: () => {
      this.pool?.mailbox_depths().forEach((depth, worker) => this.mailbox_depth.set({ worker: String(worker) }, depth));
    },
  });
  readonly queue_pace_ratio = new client.Gauge({
    name: 'ticketing_queue_pace_ratio', help: 'The admission governor\'s pace: waiting rooms admit at this part of their rate (1: the admin\'s rate; 0.5 while mailbox depth or commit latency is high)', registers: [this.registry],
  });
  readonly mailbox_rejections = new client.Counter({
    name: 'ticketing_mailbox_rejections_total', help: 'Requests refused because a mailbox was at mailbox_depth_max', registers: [this.registry],
  });
  readonly rate_limited = new client.Counter({
    name: 'ticketing_rate_limited_total', help: 'Calls refused RESOURCE_EXHAUSTED by a rate limit, by scope (user: per customer token; ip: per client address)',
    labelNames: ['scope'] as const, registers: [this.registry],
  });
  readonly commit_duration = new client.Histogram({
    name: 'ticketing_journal_commit_duration_seconds', help: 'LMDB journal commit time including fsync',
    registers: [this.registry], buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
  });
  readonly batch_size = new client.Histogram({
    name: 'ticketing_journal_batch_size', help: 'Journal records per LMDB commit (group commit)',
    registers: [this.registry], buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
  });
  readonly outbox_pending = new client.Gauge({ name: 'ticketing_outbox_pending', help: 'Events in the durable outbox not yet acknowledged by Kafka', registers: [this.registry] });
  readonly outbox_lag = new client.Gauge({ name: 'ticketing_outbox_lag_seconds', help: 'Age of the oldest event still in the outbox', registers: [this.registry] });
  readonly kafka_errors = new client.Counter({ name: 'ticketing_kafka_publish_errors_total', help: 'Failed Kafka producer sends (each is retried; its events stay in the outbox)', registers: [this.registry] });
  readonly kafka_sends_unanswered = new client.Counter({ name: 'ticketing_kafka_sends_unanswered_total', help: 'Kafka producer sends still unanswered after --kafka-send-unanswered-max-ms (each also counts once in ticketing_kafka_publish_errors_total)', registers: [this.registry] });
  readonly kafka_sent = new client.Counter({ name: 'ticketing_kafka_records_sent_total', help: 'Outbox records the Kafka broker acknowledged', registers: [this.registry] });
  readonly kafka_send_records = new client.Histogram({
    name: 'ticketing_kafka_send_records', help: 'Records per acknowledged Kafka producer send (batching efficiency)',
    registers: [this.registry], buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000],
  });
  readonly kafka_send_duration = new client.Histogram({
    name: 'ticketing_kafka_send_duration_seconds', help: 'Kafka producer send until the broker acknowledged it (acks from all in-sync replicas)',
    registers: [this.registry], buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  });
  readonly outbox_dropped = new client.Counter({
    name: 'ticketing_outbox_dropped_total', help: 'Outbox entries deleted unsent at the outbox cap, by reason (count or age)',
    labelNames: ['reason'] as const, registers: [this.registry],
  });
  readonly outbox_parked = new client.Counter({
    name: 'ticketing_outbox_parked_total', help: 'Outbox records set aside unsent because they cannot be encoded, by reason (unknown_type or invalid_payload)',
    labelNames: ['reason'] as const, registers: [this.registry],
  });
  readonly storage_full = new client.Gauge({
    name: 'ticketing_storage_full', help: 'Stores refusing writes for want of space, by reason (disk: the filesystem refused a commit; map: --store-map-bytes reached)',
    labelNames: ['reason'] as const, registers: [this.registry],
  });
  readonly storage_refusals = new client.Counter({
    name: 'ticketing_storage_refusals_total', help: 'Write requests refused UNAVAILABLE because their store had no room (storage-full mode)', registers: [this.registry],
  });
  readonly snapshots = new client.Counter({
    name: 'ticketing_snapshots_total', help: 'Partition snapshots, by result (ok: written; failed: a background one failed, the previous snapshot and journal kept, retried later)',
    labelNames: ['result'] as const, registers: [this.registry],
  });
  readonly snapshot_seconds = new client.Counter({
    name: 'ticketing_snapshot_seconds_total', help: 'Time snapshots spent building and encoding partitions (background: off the partition threads)', registers: [this.registry],
  });
  private readonly storage_by_worker = new Map<number, string[]>();
  readonly worker_restarts = new client.Counter({ name: 'ticketing_worker_restarts_total', help: 'Worker threads that died and were replaced', registers: [this.registry] });

  /** Set by the connection guard (src/grpc/connections.ts). */
  grpc_connections_open_collect: () => number = () => 0;
  grpc_calls_open_collect: () => number = () => 0;
  readonly grpc_connections_open: client.Gauge = new client.Gauge({
    name: 'ticketing_grpc_connections_open', help: 'TCP connections open on the gRPC listener (from accept, before the HTTP/2 preface too)', registers: [this.registry],
    collect: (): void => this.grpc_connections_open.set(this.grpc_connections_open_collect()),
  });
  readonly grpc_calls_open: client.Gauge = new client.Gauge({
    name: 'ticketing_grpc_calls_open', help: 'gRPC calls (HTTP/2 streams) in progress, waiting for their request included', registers: [this.registry],
    collect: (): void => this.grpc_calls_open.set(this.grpc_calls_open_collect()),
  });
  readonly grpc_connections_refused = new client.Counter({
    name: 'ticketing_grpc_connections_refused_total', help: 'gRPC TCP connections closed at accept by a cap, by reason (connections_max, connections_per_address_max)',
    labelNames: ['reason'] as const, registers: [this.registry],
  });
  readonly grpc_connections_closed = new client.Counter({
    name: 'ticketing_grpc_connections_closed_total', help: 'gRPC connections the node closed, by reason (preface_timeout: no HTTP/2 preface in time; bad_preface: not HTTP/2; idle: no calls for idle_timeout_ms)',
    labelNames: ['reason'] as const, registers: [this.registry],
  });

  readonly limit_refusals = new client.Counter({ name: 'ticketing_limit_refusals_total', help: 'Calls refused by a named limit (seats_per_hold, max_seats_per_user, holds_per_user, payments_per_order, refunds_per_payment, string_length, mailbox_depth, deadline, rate_user, rate_ip, streams_max, streams_per_address_max, request_arrival, forwards_in_flight_per_peer, forward_message_bytes, watch_streams_max, watch_stream_backlog_max, hold_extensions, queue_entries, queue_watch_streams_max)', labelNames: ['limit'], registers: [this.registry] });
  readonly auth_refusals = new client.Counter({
    name: 'ticketing_auth_refusals_total', help: `Calls refused UNAUTHENTICATED, by reason (${auth_refusal_reasons.join(', ')})`,
    labelNames: ['reason'] as const, registers: [this.registry],
  });
  // The verified-token cache counts plain integers per call; these read them at scrape time.
  private token_cache: VerifiedTokens | undefined;
  private readonly token_cache_seen = { hits: 0, misses: 0 };
  readonly token_cache_lookups: client.Counter<'result'> = new client.Counter({
    name: 'ticketing_auth_token_cache_lookups_total', help: 'Bearer tokens looked up in the verified-token cache, by result (hit: verified before, still unexpired; miss: its signature and claims were checked now)',
    labelNames: ['result'] as const, registers: [this.registry],
    collect: (): void => this.collect_token_cache(),
  });
  readonly token_cache_entries: client.Gauge = new client.Gauge({
    name: 'ticketing_auth_token_cache_entries', help: `Verified bearer tokens remembered (at most verified_tokens_max, ${verified_tokens_max})`,
    registers: [this.registry],
    collect: (): void => this.token_cache_entries.set(this.token_cache?.size() ?? 0),
  });
  readonly requests_malformed = new client.Counter({
    name: 'ticketing_requests_malformed_total', help: 'Requests refused INVALID_ARGUMENT because their bytes are not a valid encoding of the request message, by service and method',
    labelNames: ['service', 'method'] as const, registers: [this.registry],
  });
  readonly payments_open = new client.Gauge({ name: 'ticketing_payments_open', help: 'Payments with a gateway call still owed (pending authorization, capture, void or refund)', registers: [this.registry] });
  readonly settlements = new client.Counter({ name: 'ticketing_settlements_total', help: 'Gateway calls made by the settlement loop, by outcome', labelNames: ['outcome'], registers: [this.registry] });
  readonly watch_streams = new client.Gauge({ name: 'ticketing_watch_streams', help: 'WatchAvailability streams open on this node', registers: [this.registry] });
  readonly watch_streams_ended = new client.Counter({
    name: 'ticketing_watch_streams_ended_total', help: `WatchAvailability streams ended or refused, by reason (${watch_end_reasons.join(', ')})`,
    labelNames: ['reason'] as const, registers: [this.registry],
  });
  readonly watch_lag = new client.Histogram({
    name: 'ticketing_watch_lag_seconds', help: 'WatchAvailability: from the poll before the one that read a change (an upper bound of its commit) to its message written to every stream',
    registers: [this.registry], buckets: [0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5, 5],
  });

  // The waiting room (docs/contracts.md "Waiting room"): counts over every queue of the node,
  // folded from the partitions' behaviour gauges (absolute figures, summed over the workers).
  readonly queue_length = new client.Gauge({
    name: 'ticketing_queue_length', registers: [this.registry],
    help: 'Buyers waiting in a waiting room (joined, not yet admitted), over every queue',
  });
  readonly queue_admitted = new client.Counter({
    name: 'ticketing_queue_admitted_total', registers: [this.registry],
    help: 'Buyers admitted by a waiting room (rate() of it: admitted per second)',
  });
  readonly queue_tokens_used = new client.Counter({
    name: 'ticketing_queue_admission_tokens_used_total', registers: [this.registry],
    help: 'Admission tokens used up by a hold',
  });
  readonly queue_tokens_expired = new client.Counter({
    name: 'ticketing_queue_admission_tokens_expired_total', registers: [this.registry],
    help: 'Admission tokens that expired unused',
  });
  readonly queue_wait: QueueWaitHistogram = new QueueWaitHistogram(
    this.registry, (name) => this.gauge_total(name),
  );
  readonly queue_watch_streams = new client.Gauge({
    name: 'ticketing_queue_watch_streams', registers: [this.registry],
    help: 'WatchPosition streams open on this node',
  });

  private readonly worker_gauges = new Map<number, Record<string, number>>();
  private readonly sold_seen = new Map<number, number>();
  /** Per worker, the absolute figure each counter grew to at its latest report. */
  private readonly absolute_seen = new Map<string, Map<number, number>>();

  constructor() {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'ticketing_' });
    // prom-client exports three gauges named like counters (…_total), which `promtool check
    // metrics` refuses (exit 3). Each has a per-type twin without the suffix
    // (ticketing_nodejs_active_handles{type} …): sum() over it is the same total.
    for (const name of gauges_named_like_counters) this.registry.removeSingleMetric(name);
    for (const scope of ['user', 'ip'] as const) this.rate_limited.inc({ scope }, 0); // exported as 0 from the start
    for (const limit of limit_labels) this.limit_refusals.inc({ limit }, 0);
    for (const reason of auth_refusal_reasons) this.auth_refusals.inc({ reason }, 0);
    for (const result of ['hit', 'miss'] as const) this.token_cache_lookups.inc({ result }, 0);
    for (const reason of ['connections_max', 'connections_per_address_max'] as const) this.grpc_connections_refused.inc({ reason }, 0);
    for (const reason of ['preface_timeout', 'bad_preface', 'idle'] as const) this.grpc_connections_closed.inc({ reason }, 0);
    for (const reason of ['count', 'age'] as const) this.outbox_dropped.inc({ reason }, 0);
    for (const reason of ['unknown_type', 'invalid_payload'] as const) this.outbox_parked.inc({ reason }, 0);
    for (const reason of ['disk', 'map'] as const) this.storage_full.set({ reason }, 0);
    for (const reason of watch_end_reasons) this.watch_streams_ended.inc({ reason }, 0);
  }

  /** A method's answered-call counts, shown in ticketing_grpc_requests_total from now on. */
  call_counts(service: string, method: string): CallCounts {
    assert(this.call_counts_list.length < call_counts_max, 'within call_counts_max methods');
    const counts = new CallCounts(service, method);
    this.call_counts_list.push(counts);
    return counts;
  }

  /** The edge's verified-token cache, whose hits and misses ticketing_auth_token_cache_* show. */
  attach_tokens(tokens: VerifiedTokens): void {
    this.token_cache = tokens;
  }

  private collect_token_cache(): void {
    const tokens = this.token_cache;
    if (tokens === undefined) return;
    const seen = this.token_cache_seen;
    this.token_cache_lookups.inc({ result: 'hit' }, tokens.hits - seen.hits);
    this.token_cache_lookups.inc({ result: 'miss' }, tokens.misses - seen.misses);
    seen.hits = tokens.hits;
    seen.misses = tokens.misses;
  }

  /** Why writes are refused, as the workers last reported it (empty: writes go). */
  storage_messages(): string[] {
    return [...new Set([...this.storage_by_worker.values()].flat())];
  }

  attach(pool: WorkerPool): void {
    pool.on('stats', (worker, stats) => this.on_stats(worker, stats));
    pool.on('worker_exit', (worker) => {
      this.worker_restarts.inc();
      this.sold_seen.delete(worker);
      for (const seen of this.absolute_seen.values()) seen.delete(worker);
    });
    this.pool = pool;
  }

  /** The sum of one gauge over the workers' latest reports. */
  gauge_total(name: string): number {
    let total = 0;
    for (const g of this.worker_gauges.values()) total += g[name] ?? 0;
    return total;
  }

  private on_stats(worker: number, stats: WorkerStats): void {
    for (const d of stats.commit_durations_s) this.commit_duration.observe(d);
    for (const n of stats.batch_records) this.batch_size.observe(n);
    this.worker_gauges.set(worker, stats.gauges);
    this.storage_by_worker.set(worker, stats.storage);
    this.storage_full.set({ reason: 'disk' }, this.gauge_total('storage_full_disk'));
    this.storage_full.set({ reason: 'map' }, this.gauge_total('storage_full_map'));
    const refused = stats.counters['storage_refusals'] ?? 0;
    if (refused > 0) this.storage_refusals.inc(refused);
    this.on_snapshot_stats(stats.counters);
    // Workers report absolute sold counts; the counter grows by the difference. A restarted
    // worker reports its recovered total, which counts from the recovered value on.
    const sold = stats.gauges['seats_sold'] ?? 0;
    const before = this.sold_seen.get(worker);
    if (before !== undefined && sold > before) this.seats_sold.inc(sold - before);
    this.sold_seen.set(worker, sold);
    const dropped_count = stats.counters['outbox_trimmed_count'] ?? 0;
    const dropped_age = stats.counters['outbox_trimmed_age'] ?? 0;
    if (dropped_count > 0) this.outbox_dropped.inc({ reason: 'count' }, dropped_count);
    if (dropped_age > 0) this.outbox_dropped.inc({ reason: 'age' }, dropped_age);
    let lag_ms = 0;
    // Each worker ages its oldest entry by its own clock (the one that stamped it).
    for (const g of this.worker_gauges.values()) lag_ms = Math.max(lag_ms, g['outbox_lag_ms'] ?? 0);
    this.holds_active.set(this.gauge_total('seat_holds_active'));
    this.payments_open.set(this.gauge_total('payments_open'));
    this.seats_held.set(this.gauge_total('seats_held'));
    this.outbox_pending.set(this.gauge_total('outbox_pending'));
    this.outbox_lag_s = lag_ms / 1000;
    this.outbox_lag.set(this.outbox_lag_s);
    this.on_queue_stats(worker, stats.gauges);
  }

  private on_snapshot_stats(counters: Record<string, number>): void {
    const ok = counters['snapshot_compactions'] ?? 0;
    const failed = counters['snapshot_compaction_failures'] ?? 0;
    if (ok > 0) this.snapshots.inc({ result: 'ok' }, ok);
    if (failed > 0) this.snapshots.inc({ result: 'failed' }, failed);
    const ms = counters['snapshot_compaction_ms'] ?? 0;
    if (ms > 0) this.snapshot_seconds.inc(ms / 1000);
  }

  private on_queue_stats(worker: number, gauges: Record<string, number>): void {
    this.queue_length.set(this.gauge_total('queue_waiting'));
    this.grow(this.queue_admitted, 'queue_admitted_total', worker, gauges);
    this.grow(this.queue_tokens_used, 'queue_tokens_used_total', worker, gauges);
    this.grow(this.queue_tokens_expired, 'queue_tokens_expired_total', worker, gauges);
  }

  /** A counter fed by a worker's absolute figure: it grows by the difference (a restarted
   *  worker reports its recovered total, which counts from there on, as seats_sold). */
  private grow(
    counter: client.Counter, name: string, worker: number, gauges: Record<string, number>,
  ): void {
    let seen = this.absolute_seen.get(name);
    if (seen === undefined) {
      seen = new Map();
      this.absolute_seen.set(name, seen);
    }
    const now = gauges[name] ?? 0;
    const before = seen.get(worker);
    if (before !== undefined && now > before) counter.inc(now - before);
    seen.set(worker, now);
  }

  /** Age of the oldest outbox entry as last reported by the workers (readiness uses it). */
  outbox_lag_s = 0;

  private cluster_metrics: ClusterMetrics | undefined;

  /** Cluster mode's metrics, registered on first use: a single node never shows them. */
  get cluster(): ClusterMetrics {
    this.cluster_metrics ??= new ClusterMetrics(this.registry);
    return this.cluster_metrics;
  }
}

/** The partitions count waits in cumulative buckets (queue_wait_le_<b>): the upper bounds of
 *  ticketing_queue_wait_seconds, in seconds. */
export const queue_wait_buckets_s = [10, 30, 60, 120, 300, 600, 1800, 3600] as const;
const queue_wait_help = 'Waiting-room wait, join to admission, of admitted buyers';

/**
 * ticketing_queue_wait_seconds: from join to admission, per admitted buyer. The partitions
 * keep the histogram themselves (a bucket count per bound, a sum and a count, as gauges), so
 * this collector only reports their sums: nothing is observed on the main thread.
 */
export class QueueWaitHistogram extends client.Histogram {
  constructor(registry: client.Registry, private readonly total: (gauge: string) => number) {
    super({
      name: 'ticketing_queue_wait_seconds', help: queue_wait_help,
      buckets: [...queue_wait_buckets_s], registers: [registry],
    });
  }

  /** An unregistered twin that is never observed: the shape (type, aggregator) prom-client
   *  gives a histogram of this name, for get() to fill with the partitions' figures. */
  private readonly template = new client.Histogram({
    name: 'ticketing_queue_wait_seconds', help: 'template', registers: [],
  });

  override async get(): ReturnType<client.Histogram['get']> {
    return { ...(await this.template.get()), help: queue_wait_help, values: this.values() };
  }

  /** The registry prints what this gives (prom-client's Histogram.get() reads it too). */
  async getForPromString(): ReturnType<client.Histogram['get']> {
    return this.get();
  }

  private values() {
    const name = 'ticketing_queue_wait_seconds';
    type Value = { metricName: string; labels: { le?: number | string }; value: number };
    const values: Value[] = queue_wait_buckets_s.map((b) => ({
      metricName: `${name}_bucket`, labels: { le: b }, value: this.total(`queue_wait_le_${b}`),
    }));
    const count = this.total('queue_wait_seconds_count');
    values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: count });
    const sum = this.total('queue_wait_seconds_sum');
    values.push({ metricName: `${name}_sum`, labels: {}, value: sum });
    values.push({ metricName: `${name}_count`, labels: {}, value: count });
    return values;
  }
}

/** docs/contracts.md "Cluster": ownership, rebalances, forwarding, failover, journal writes. */
export class ClusterMetrics {
  readonly partitions_owned: client.Gauge;
  readonly rebalances: client.Counter;
  readonly forwarded: client.Counter<'code'>;
  readonly failover: client.Histogram;
  readonly journal_write: client.Histogram;
  readonly journal_write_records: client.Histogram;

  constructor(registry: client.Registry) {
    const registers = [registry];
    this.partitions_owned = new client.Gauge({ name: 'ticketing_cluster_partitions_owned', help: 'Partitions this node serves (assigned by the cluster group, fenced, restored)', registers });
    this.rebalances = new client.Counter({ name: 'ticketing_cluster_rebalances_total', help: 'Cluster group rebalances this node took part in (each one revokes and reassigns every partition)', registers });
    this.forwarded = new client.Counter({
      name: 'ticketing_cluster_forwarded_requests_total', help: 'Calls forwarded to the node owning their partition, by outcome (gRPC status name)',
      labelNames: ['code'] as const, registers,
    });
    this.failover = new client.Histogram({
      name: 'ticketing_cluster_failover_seconds', help: 'From the rebalance this node saw to a partition it was assigned being served (fence, restore, replay)',
      registers, buckets: [0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 30],
    });
    this.journal_write = new client.Histogram({
      name: 'ticketing_cluster_journal_write_seconds', help: 'One Kafka transaction of journal records and events, begin to commit (acks from all in-sync replicas)',
      registers, buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
    this.journal_write_records = new client.Histogram({
      name: 'ticketing_cluster_journal_write_records', help: 'Journal records per Kafka transaction (group commit)',
      registers, buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
    });
    this.forwarded.inc({ code: 'OK' }, 0);
  }
}

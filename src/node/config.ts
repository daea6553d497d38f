// What one node is configured with (ServeConfig), and every default of it in one object
// (serve_defaults), as pino keeps its defaultOptions: `ticketing serve` (src/cli/main.ts) starts
// from serve_defaults and lays flags and environment variables over it; tests do the same.
// Where a module below uses a constant as its own fallback (the sink's Kafka timeouts, the
// store's map size, the token lifetime cap), the default here names that constant rather than
// repeating its number, so the two cannot drift apart.
import { availableParallelism } from 'node:os';
import { token_lifetime_seconds_max_default } from '../auth/token.js';
import type { EdgeConfig } from '../grpc/edge.js';
import { kafka_send_unanswered_ms_max } from '../kafka/emitter.js';
import { kafka_ack_timeout_ms, kafka_request_timeout_ms } from '../kafka/sink.js';
import type { OutboxConfig } from '../kafka/start.js';
import type { WebConfig } from '../grpc/web_server.js';
import { storage_probe_interval_ms_default } from '../runtime/storage.js';
import { store_map_bytes_max } from '../runtime/store_env.js';

export interface ServeConfig extends EdgeConfig, OutboxConfig, WebConfig {
  data_dir: string;
  grpc_addr: string;
  http_addr: string;
  kafka_brokers: string | undefined;
  /** --cluster NAME: several nodes sell one inventory through Kafka (src/node/cluster.ts);
   *  undefined: a single node on LMDB. */
  cluster: string | undefined;
  /** --advertise HOST:PORT: where the other nodes forward to; the peer listener binds it. */
  advertise_addr: string | undefined;
  /** The journal topic's replication and min.insync.replicas, checked at start. */
  cluster_replication_factor: number;
  cluster_min_insync_replicas: number;
  /** Partitions of a new cluster's journal topic when --partitions is not given. */
  cluster_partition_count_default: number;
  /** How long a silent node keeps its partitions (the broker's floor is 6000). */
  cluster_session_timeout_ms: number;
  cluster_heartbeat_interval_ms: number;
  /** kafkajs heartbeats only from its fetch loop: this bounds how late a heartbeat goes. */
  cluster_max_wait_ms: number;
  /** How long a dead owner's open transaction can hold read_committed readers back. */
  cluster_transaction_timeout_ms: number;
  workers: number;
  /** undefined: the data directory's count, or partition_count_default for a new one. */
  partitions: number | undefined;
  test_clock: boolean;
  /** With test_clock only: start with the clock this far ahead (restart-after-downtime tests). */
  clock_offset_ms: number;
  /** Whole-message cap for any gRPC request. */
  message_bytes_max: number;
  mailbox_depth_max: number;
  mailbox_batch_size_max: number;
  snapshot_every_records: number;
  drain_ms_max: number;
  /** PEM files. Cert + key: the gRPC listener speaks TLS; plus client CA: mutual TLS.
   *  None: plaintext. */
  tls_cert_file?: string | undefined;
  tls_key_file?: string | undefined;
  tls_client_ca_file?: string | undefined;
  /** JSON {kid: PEM public key}: ES256/RS256 tokens of an identity provider are accepted too. */
  auth_public_keys_file?: string | undefined;
  /** Client ip addresses the fraud rules decline (one per line, # comments). */
  fraud_ip_blocklist_file?: string | undefined;
  /** How often the settlement loop looks for open payments. */
  settle_interval_ms: number;
  /** Longest lifetime of a bearer token accepted (src/auth/token.ts). */
  token_lifetime_seconds_max: number;
  /** The most live data one LMDB store may hold (--store-map-bytes). */
  store_map_bytes: number;
  /** How often a store refusing writes for want of space is checked again. */
  storage_probe_interval_ms: number;
  /** The admission governor (src/node/admission_governor.ts), --queue-pace on|off. undefined:
   *  on, except with test_clock (tests step the clock and assert the admin's exact rate). */
  queue_pace: boolean | undefined;
  /** Overloaded while the deepest mailbox holds more; undefined: half of mailbox_depth_max. */
  queue_pace_mailbox_depth_high: number | undefined;
  /** Overloaded while the p99 of a second's journal commits is above this. */
  queue_pace_commit_ms_high: number;
  /** Healthy seconds in a row before the full rate again. */
  queue_pace_healthy_s: number;
}

/** Every default of ServeConfig (`satisfies`: none missing, none unknown). */
export const serve_defaults = {
  data_dir: './data',
  grpc_addr: '127.0.0.1:50051',
  http_addr: '127.0.0.1:9464',
  workers: Math.max(1, availableParallelism() - 1),
  partitions: undefined,
  test_clock: false,
  clock_offset_ms: 0,
  message_bytes_max: 256 * 1024,
  mailbox_depth_max: 10_000,
  mailbox_batch_size_max: 512,
  snapshot_every_records: 20_000,
  drain_ms_max: 10_000,
  settle_interval_ms: 1_000,
  store_map_bytes: store_map_bytes_max,
  storage_probe_interval_ms: storage_probe_interval_ms_default,
  // The admission governor: half a mailbox is a backlog the workers are not draining; 50 ms is
  // 10× an idle LMDB commit with fsync (commit_duration's buckets); 5 s of health before the
  // full rate again so a sale at the edge of capacity does not flap.
  queue_pace: undefined,
  queue_pace_mailbox_depth_high: undefined,
  queue_pace_commit_ms_high: 50,
  queue_pace_healthy_s: 5,
  // The outbox (src/kafka/start.ts): without a broker it is bounded like a log.
  kafka_brokers: undefined,
  // Cluster mode (src/node/cluster.ts). Session 6 s: the broker's group.min.session.timeout.ms,
  // so a dead node's partitions move after 5.1-6.6 s (measured, spikes/kafka_fencing); the
  // fetch wait stays far below it because kafkajs heartbeats only between fetches (5 s of
  // fetch wait made failover 8.6 s instead of 5.6 s). 16 partitions: 16 transactions in
  // flight per cluster, one producer (three sockets) each per owner.
  cluster: undefined,
  advertise_addr: undefined,
  cluster_replication_factor: 3,
  cluster_min_insync_replicas: 2,
  cluster_partition_count_default: 16,
  cluster_session_timeout_ms: 6_000,
  cluster_heartbeat_interval_ms: 1_000,
  cluster_max_wait_ms: 250,
  cluster_transaction_timeout_ms: 15_000,
  kafka_topic_prefix: '',
  outbox_max_entries: 1_000_000,
  outbox_max_age_s: 7 * 86_400,
  outbox_degraded_after_s: 60,
  kafka_request_timeout_ms,
  kafka_ack_timeout_ms,
  kafka_send_unanswered_ms_max,
  // Per customer: 50/s sustained, bursts of 100 (a person clicking, or a page's fan-out, never
  // gets near). Per ip: 20,000/s, bursts of 40,000 — far above one node's ~4,000 calls/s, so it
  // only bites a single address flooding the node (e.g. unauthenticated), never the 64 bench
  // clients on one address. Behind a proxy every caller shares the proxy's address: keep it high.
  rate_user_per_s: 50,
  rate_user_burst: 100,
  rate_ip_per_s: 20_000,
  rate_ip_burst: 40_000,
  rate_keys_max: 100_000,
  deadline_ms_max: 30_000,
  token_lifetime_seconds_max: token_lifetime_seconds_max_default,
  // Connections: a grpc-js client shares one connection per target, so even the bench's 64
  // clients on one address use a handful; 1,000 per address leaves room for a proxy's pool,
  // 10,000 per node stays well under the usual 64k+ descriptor limit. Streams: one connection
  // carries the bench's 256 calls in flight; 5,000 per address bounds what one silent address pins
  // (each stream ~7 KB: 10,000 cost 73 MB). Timeouts: a healthy client sends the preface, the
  // headers and the request in its first round trips; 10 s covers a slow mobile link many times.
  connections_max: 10_000,
  connections_per_address_max: 1_000,
  preface_timeout_ms: 10_000,
  idle_timeout_ms: 300_000,
  streams_per_connection_max: 1_000,
  streams_max: 20_000,
  streams_per_address_max: 5_000,
  request_arrival_timeout_ms: 10_000,
  // WatchAvailability (src/grpc/watch_hub.ts): a poll per watched event every 100 ms (the
  // issue's "at most every 100 ms"); 10,000 streams per node; a client that lets 32 messages
  // pile up behind a full buffer is ended (a change message is at most 8,192 changes, ~45 KB).
  watch_interval_ms: 100,
  watch_stream_backlog_max: 32,
  watch_streams_max: 10_000,
  // WatchPosition (src/grpc/queue_watch.ts): each stream reads its position once a second (the
  // admission tick is queue_admission_tick_ms 1,000: faster would only re-read the same
  // state); 10,000 streams per node, as WatchAvailability's.
  queue_watch_interval_ms: 1_000,
  queue_watch_streams_max: 10_000,
  // The web listener (src/grpc/web_server.ts): off unless --web is given; CORS closed.
  web_addr: undefined,
  web_cors_origins: [],
  web_dev_tokens: false,
} satisfies ServeConfig;

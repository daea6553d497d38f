// `ticketing` command line (docs/contracts.md "Operator interface"). Flags win over environment
// variables; what neither gives keeps serve_defaults (src/node/config.ts).
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import {
  load_secret, roles, sign_token, token_lifetime_seconds_min,
  token_ttl_seconds_max, type Role,
} from '../auth/token.js';
import { load_definitions } from '../grpc/proto.js';
import { parse_duration_seconds } from '../util/duration.js';
import { load_tls } from '../grpc/tls.js';
import { connection_limit_names, type ConnectionLimitConfig } from '../grpc/connections.js';
import { backup } from '../ops/backup.js';
import { partition_count_max } from '../runtime/partition.js';
import { store_map_bytes_min } from '../runtime/store_env.js';
import { serve_defaults } from '../node/config.js';
import { serve } from '../node/serve.js';
import { flag, int_flag, parse_args } from './args.js';
import { configure_queue, queue_client, split_queue, type QueueWire } from './event_queue.js';
import { cmd_outbox_tail } from './outbox_command.js';
import { outbox_flag_names, outbox_flags } from './outbox_flags.js';

const usage = `usage:
  ticketing serve [--data DIR] [--grpc HOST:PORT] [--http HOST:PORT] [--kafka BROKERS]
                  [--cluster NAME --advertise HOST:PORT] [--replication-factor 3]
                  [--min-insync-replicas 2]
                  (cluster: nodes of NAME share one inventory through Kafka; needs --kafka and
                  TICKETING_AUTH_SECRET shared by every node; --advertise is where the other
                  nodes forward calls to, bound by this node)
                  [--workers N] [--partitions N] [--test-clock [--clock-offset-ms N]]
                  [--rate-user N] [--rate-ip N] [--deadline-max-ms N] [--message-max-bytes N]
                  (requests/s per customer and per ip address, bursts of 2×N, 0: off;
                   cap on every call's deadline)
                  [--connections-max 10000] [--connections-per-address-max 1000]
                  [--preface-timeout-ms 10000] [--idle-timeout-ms 300000]
                  [--streams-per-connection-max 1000] [--streams-max 20000]
                  [--streams-per-address-max 5000] [--request-arrival-timeout-ms 10000]
                  [--watch-streams-max 10000] [--watch-stream-backlog-max 32]
                  [--watch-interval-ms 100]  (WatchAvailability: streams per node, messages
                   waiting for a slow reader before it is ended, batching period)
                  [--queue-watch-streams-max 10000] [--queue-watch-interval-ms 1000]
                  (WatchPosition: streams per node, how often each reads its position)
                  [--queue-pace on|off] [--queue-pace-mailbox-depth-high N]
                  [--queue-pace-commit-ms-high 50] [--queue-pace-healthy-s 5]
                  (waiting rooms admit at half their rate while a mailbox is deeper than N,
                   default half of the mailbox cap, or commit p99 is higher; off: the admin's
                   rate only; default on, off with --test-clock)
                  (silent and greedy clients: connection caps per node and per ip address,
                   time to the HTTP/2 preface, idle connections closed, calls in progress
                   capped, time from a call's headers to its request message)
                  [--web HOST:PORT [--web-cors-origins ORIGIN,...] [--web-dev-tokens]]
                  (the page at / and every RPC over Connect / gRPC-Web, e.g. curl -H
                   'content-type: application/json'; CORS closed unless origins are listed;
                   dev tokens: GET /dev/token?user=NAME, loopback addresses only)
                  [--auth-public-keys FILE]    (JSON {kid: PEM}: also accept ES256/RS256 tokens)
                  [--token-lifetime-max 24h]   (longest token accepted: iat..exp and now..exp)
                  [--fraud-ip-blocklist FILE]   (ip addresses the fraud rules decline, one per line)
                  [--kafka-topic-prefix P] [--outbox-degraded-after 60s]
                  (with --kafka: topic = P + ticketing.events.v1.<Event>; /readyz says degraded
                   while the oldest undelivered event is older than that)
                  [--kafka-request-timeout-ms 15000] [--kafka-ack-timeout-ms 10000]
                  [--kafka-send-unanswered-max-ms 5000]
                  (a send unanswered that long counts as failing at once)
                  [--outbox-max-entries 1000000] [--outbox-max-age 7d]
                  (without --kafka: the outbox keeps at most that many / that old, oldest dropped)
                  [--store-map-bytes N] [--storage-probe-interval-ms 1000]
                  (most live data one LMDB store may hold, default 16 GiB; when it is reached or
                   the disk is full, writes are refused UNAVAILABLE, reads served, /readyz not
                   ready; checked again every interval, writes resume by themselves)
                  [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]
                  (PEM files; cert + key: gRPC over TLS; plus client CA: mutual TLS, client
                   certificates required and verified; none: plaintext)
  ticketing events import FILE.json [--server HOST:PORT] [--token T] [--data DIR]
                  (--server default: TICKETING_SERVER, else TICKETING_GRPC_ADDR, else 127.0.0.1:50051)
                  [--tls-ca FILE [--tls-cert FILE --tls-key FILE]]   (TLS / mutual TLS to the server)
  ticketing token --user ID [--role customer|service|admin] [--ttl 1h] [--data DIR] [--token-lifetime-max 24h]
                  (--ttl above the lifetime cap is refused: the node would refuse the token)
  ticketing backup DEST [--data DIR]      (hot copy of a running or stopped node; DEST new or empty)
  ticketing outbox tail [--data DIR] [--limit 20] [--follow] [--parked] [--kafka-topic-prefix P]
                  (the newest outbox events, decoded, as JSON lines; running or stopped node)
`;

/** Where every command looks by default: serve's own defaults (src/node/config.ts). */
const defaults = {
  data: serve_defaults.data_dir, grpc: serve_defaults.grpc_addr, http: serve_defaults.http_addr,
};

function fail(message: string): never {
  process.stderr.write(`ticketing: ${message}\n`);
  process.exit(2);
}

/** --token-lifetime-max / TICKETING_TOKEN_LIFETIME_MAX: the longest token lifetime serve accepts
 *  and `ticketing token` mints (both read the same flag and variable, so they agree). */
function token_lifetime_flag(args: ReturnType<typeof parse_args>): number {
  const text = flag(args, 'token-lifetime-max', 'TICKETING_TOKEN_LIFETIME_MAX', undefined);
  if (text === undefined) return serve_defaults.token_lifetime_seconds_max;
  const seconds = parse_duration_seconds(text);
  if (seconds < token_lifetime_seconds_min || seconds > token_ttl_seconds_max) {
    throw new Error(`--token-lifetime-max must be ${token_lifetime_seconds_min} s..${token_ttl_seconds_max / 86400}d, got ${text}`);
  }
  return seconds;
}

const storage_flag_names = ['store-map-bytes', 'storage-probe-interval-ms'];

/** --store-map-bytes (TICKETING_STORE_MAP_BYTES) and --storage-probe-interval-ms
 *  (TICKETING_STORAGE_PROBE_INTERVAL_MS); what is not given keeps serve_defaults. */
function storage_flags(args: ReturnType<typeof parse_args>) {
  const store_map_bytes = int_flag(flag(args, 'store-map-bytes', 'TICKETING_STORE_MAP_BYTES', undefined), 'store-map-bytes', store_map_bytes_min, 2 ** 44);
  const probe_ms = int_flag(flag(args, 'storage-probe-interval-ms', 'TICKETING_STORAGE_PROBE_INTERVAL_MS', undefined), 'storage-probe-interval-ms', 10, 600_000);
  return {
    ...(store_map_bytes === undefined ? {} : { store_map_bytes }),
    ...(probe_ms === undefined ? {} : { storage_probe_interval_ms: probe_ms }),
  };
}

/** --connections-max … --request-arrival-timeout-ms: one flag per connection limit, named as
 *  the limit (TICKETING_CONNECTIONS_MAX …); what is not given keeps serve_defaults. */
const connection_flag_names = connection_limit_names.map((key) => key.replace(/_/g, '-'));
const limit_flag_names = ['rate-user', 'rate-ip', 'deadline-max-ms', 'message-max-bytes', ...connection_flag_names];

function connection_flags(args: ReturnType<typeof parse_args>): Partial<ConnectionLimitConfig> {
  const result: Partial<ConnectionLimitConfig> = {};
  for (const key of connection_limit_names) {
    const name = key.replace(/_/g, '-');
    const value = int_flag(flag(args, name, `TICKETING_${key.toUpperCase()}`, undefined), name, 1, key.endsWith('_ms') ? 86_400_000 : 10_000_000);
    if (value !== undefined) result[key] = value;
  }
  return result;
}

/** Abuse limits: --rate-user / --rate-ip N requests per second (burst 2×N; 0: off) and
 *  --deadline-max-ms; what is not given keeps serve_defaults. */
function limit_flags(args: ReturnType<typeof parse_args>) {
  const rate_user = int_flag(flag(args, 'rate-user', 'TICKETING_RATE_USER', undefined), 'rate-user', 0, 1_000_000);
  const rate_ip = int_flag(flag(args, 'rate-ip', 'TICKETING_RATE_IP', undefined), 'rate-ip', 0, 10_000_000);
  const deadline_ms_max = int_flag(flag(args, 'deadline-max-ms', 'TICKETING_DEADLINE_MAX_MS', undefined), 'deadline-max-ms', 1, 3_600_000);
  // Below 4 KiB a CreateEvent of a small venue no longer fits; above 16 MiB one call could pin
  // a core decoding it.
  const message_bytes_max = int_flag(flag(args, 'message-max-bytes', 'TICKETING_MESSAGE_MAX_BYTES', undefined), 'message-max-bytes', 4096, 16 * 1024 * 1024);
  return {
    ...(rate_user === undefined ? {} : { rate_user_per_s: rate_user, rate_user_burst: 2 * rate_user }),
    ...(rate_ip === undefined ? {} : { rate_ip_per_s: rate_ip, rate_ip_burst: 2 * rate_ip }),
    ...(deadline_ms_max === undefined ? {} : { deadline_ms_max }),
    ...(message_bytes_max === undefined ? {} : { message_bytes_max }),
  };
}

/** WatchAvailability's limits (--watch-streams-max, --watch-stream-backlog-max,
 *  --watch-interval-ms, TICKETING_WATCH_…); what is not given keeps serve_defaults. */
const watch_limits = [
  ['watch_streams_max', 1, 1_000_000], ['watch_stream_backlog_max', 1, 10_000],
  // Below 10 ms a hot event's poll alone would keep a worker busy; above 10 s the map is stale.
  ['watch_interval_ms', 10, 10_000],
  // WatchPosition: --queue-watch-streams-max, --queue-watch-interval-ms (TICKETING_QUEUE_…).
  ['queue_watch_streams_max', 1, 1_000_000], ['queue_watch_interval_ms', 100, 60_000],
] as const;
const watch_flag_names = watch_limits.map(([key]) => key.replace(/_/g, '-'));

function watch_flags(args: ReturnType<typeof parse_args>): Partial<Record<typeof watch_limits[number][0], number>> {
  const result: Partial<Record<typeof watch_limits[number][0], number>> = {};
  for (const [key, min, max] of watch_limits) {
    const name = key.replace(/_/g, '-');
    const value = int_flag(flag(args, name, `TICKETING_${key.toUpperCase()}`, undefined), name, min, max);
    if (value !== undefined) result[key] = value;
  }
  return result;
}

const pace_flag_names = [
  'queue-pace', 'queue-pace-mailbox-depth-high', 'queue-pace-commit-ms-high', 'queue-pace-healthy-s',
];

/** The admission governor: --queue-pace on|off (TICKETING_QUEUE_PACE; off: the admin's rate
 *  only) and its thresholds (TICKETING_QUEUE_PACE_…); what is not given keeps serve_defaults. */
function pace_flags(args: ReturnType<typeof parse_args>) {
  const on_off = flag(args, 'queue-pace', 'TICKETING_QUEUE_PACE', undefined);
  if (on_off !== undefined && on_off !== 'on' && on_off !== 'off') fail('--queue-pace: on or off');
  const int = (name: string, max: number) =>
    int_flag(flag(args, name, `TICKETING_${name.replace(/-/g, '_').toUpperCase()}`, undefined), name, 1, max);
  const depth = int('queue-pace-mailbox-depth-high', 10_000_000);
  const commit_ms = int('queue-pace-commit-ms-high', 60_000);
  const healthy_s = int('queue-pace-healthy-s', 3_600);
  return {
    ...(on_off === undefined ? {} : { queue_pace: on_off === 'on' }),
    ...(depth === undefined ? {} : { queue_pace_mailbox_depth_high: depth }),
    ...(commit_ms === undefined ? {} : { queue_pace_commit_ms_high: commit_ms }),
    ...(healthy_s === undefined ? {} : { queue_pace_healthy_s: healthy_s }),
  };
}

const cluster_flag_names = ['cluster', 'advertise', 'replication-factor', 'min-insync-replicas'];

/** --cluster NAME (TICKETING_CLUSTER), --advertise HOST:PORT (TICKETING_ADVERTISE_ADDR),
 *  --replication-factor / --min-insync-replicas of the journal topic; without --cluster, a
 *  single node (the other three are then refused: they would silently mean nothing). */
function cluster_flags(args: ReturnType<typeof parse_args>) {
  const cluster = flag(args, 'cluster', 'TICKETING_CLUSTER', undefined);
  const advertise_addr = flag(args, 'advertise', 'TICKETING_ADVERTISE_ADDR', undefined);
  const rf = int_flag(flag(args, 'replication-factor', 'TICKETING_REPLICATION_FACTOR', undefined), 'replication-factor', 1, 16);
  const isr = int_flag(flag(args, 'min-insync-replicas', 'TICKETING_MIN_INSYNC_REPLICAS', undefined), 'min-insync-replicas', 1, 16);
  if (cluster === undefined) {
    if (advertise_addr !== undefined || rf !== undefined || isr !== undefined) {
      fail('--advertise, --replication-factor and --min-insync-replicas need --cluster');
    }
    return {};
  }
  return {
    cluster, advertise_addr,
    ...(rf === undefined ? {} : { cluster_replication_factor: rf }),
    ...(isr === undefined ? {} : { cluster_min_insync_replicas: isr }),
  };
}

/** --web HOST:PORT (TICKETING_WEB_ADDR), --web-cors-origins A,B (TICKETING_WEB_CORS_ORIGINS),
 *  --web-dev-tokens (TICKETING_WEB_DEV_TOKENS=1). */
function web_flags(args: ReturnType<typeof parse_args>) {
  const origins = flag(args, 'web-cors-origins', 'TICKETING_WEB_CORS_ORIGINS', '');
  const dev = args.flags.get('web-dev-tokens') === true
    || process.env['TICKETING_WEB_DEV_TOKENS'] === '1';
  const web_cors_origins = origins.split(',').map((o) => o.trim()).filter((o) => o !== '');
  for (const origin of web_cors_origins) {
    if (!/^https?:\/\/[^/\s]+$/.test(origin)) fail(`--web-cors-origins: ${origin} is not an origin (scheme://host[:port])`);
  }
  return { web_addr: flag(args, 'web', 'TICKETING_WEB_ADDR', undefined), web_cors_origins, web_dev_tokens: dev };
}

async function cmd_serve(argv: string[]): Promise<void> {
  const args = parse_args(argv, ['test-clock', 'web-dev-tokens'], ['data', 'grpc', 'http', 'web', 'web-cors-origins', ...outbox_flag_names, 'workers', 'partitions', 'clock-offset-ms', 'tls-cert', 'tls-key', 'tls-client-ca', 'fraud-ip-blocklist', 'auth-public-keys', 'token-lifetime-max', ...limit_flag_names, ...storage_flag_names, ...cluster_flag_names, ...watch_flag_names, ...pace_flag_names]);
  const clock_offset_ms = int_flag(flag(args, 'clock-offset-ms', undefined, undefined), 'clock-offset-ms', 0, 10 * 365 * 86400 * 1000);
  if (clock_offset_ms !== undefined && args.flags.get('test-clock') !== true) fail('--clock-offset-ms needs --test-clock');
  const workers = int_flag(flag(args, 'workers', 'TICKETING_WORKERS', undefined), 'workers', 1, 256)
    ?? serve_defaults.workers;
  const tls = {
    tls_cert_file: flag(args, 'tls-cert', 'TICKETING_TLS_CERT', undefined),
    tls_key_file: flag(args, 'tls-key', 'TICKETING_TLS_KEY', undefined),
    tls_client_ca_file: flag(args, 'tls-client-ca', 'TICKETING_TLS_CLIENT_CA', undefined),
  };
  load_tls(tls); // refuse bad combinations and unreadable files before the data dir is touched
  const node = await serve({
    ...serve_defaults,
    data_dir: flag(args, 'data', 'TICKETING_DATA_DIR', defaults.data),
    grpc_addr: flag(args, 'grpc', 'TICKETING_GRPC_ADDR', defaults.grpc),
    http_addr: flag(args, 'http', 'TICKETING_HTTP_ADDR', defaults.http),
    workers,
    partitions: int_flag(flag(args, 'partitions', 'TICKETING_PARTITIONS', undefined), 'partitions', 1, partition_count_max),
    test_clock: args.flags.get('test-clock') === true,
    clock_offset_ms: clock_offset_ms ?? serve_defaults.clock_offset_ms,
    ...limit_flags(args),
    ...storage_flags(args),
    ...connection_flags(args),
    ...watch_flags(args),
    ...pace_flags(args),
    ...outbox_flags(args),
    ...tls,
    fraud_ip_blocklist_file: flag(args, 'fraud-ip-blocklist', 'TICKETING_FRAUD_IP_BLOCKLIST', undefined),
    auth_public_keys_file: flag(args, 'auth-public-keys', 'TICKETING_AUTH_PUBLIC_KEYS', undefined),
    token_lifetime_seconds_max: token_lifetime_flag(args),
    ...cluster_flags(args),
    ...web_flags(args),
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      node.stop().then(() => process.exit(0), (error: unknown) => {
        node.log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
    });
  }
}

function admin_token(args: ReturnType<typeof parse_args>): string {
  const given = flag(args, 'token', 'TICKETING_TOKEN', undefined);
  if (given !== undefined) return given;
  const secret = load_secret(flag(args, 'data', 'TICKETING_DATA_DIR', defaults.data), process.env, false);
  return sign_token(secret, { user_id: 'cli-admin', role: 'admin' }, 300);
}

/** Client side of TLS for commands that call a server: --tls-ca (the server's CA; turns TLS on)
 *  and, for mutual TLS, --tls-cert + --tls-key (this client's certificate). None: plaintext. */
function client_credentials(args: ReturnType<typeof parse_args>): grpc.ChannelCredentials {
  const ca = flag(args, 'tls-ca', 'TICKETING_CLIENT_TLS_CA', undefined);
  const cert = flag(args, 'tls-cert', 'TICKETING_CLIENT_TLS_CERT', undefined);
  const key = flag(args, 'tls-key', 'TICKETING_CLIENT_TLS_KEY', undefined);
  if (ca === undefined && cert === undefined && key === undefined) return grpc.credentials.createInsecure();
  if ((cert === undefined) !== (key === undefined)) fail('--tls-cert and --tls-key go together (a client certificate and its key)');
  // Name the flag and the file, never the content.
  const read = (file: string | undefined, name: string): Buffer | null => {
    if (file === undefined) return null;
    try {
      return readFileSync(file);
    } catch (error) {
      fail(`--${name} ${file}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
    }
  };
  return grpc.credentials.createSsl(read(ca, 'tls-ca'), read(key, 'tls-key'), read(cert, 'tls-cert'));
}

/** Where a command that calls a running server connects: --server, else TICKETING_SERVER, else
 *  the address `serve` listens on, read the way `serve` reads it (TICKETING_GRPC_ADDR, then the
 *  default): after `TICKETING_GRPC_ADDR=… ticketing serve`, the same shell's client commands
 *  reach that node without repeating it. */
function server_addr(args: ReturnType<typeof parse_args>): string {
  const serve_addr = process.env['TICKETING_GRPC_ADDR'];
  return flag(args, 'server', 'TICKETING_SERVER', serve_addr === undefined || serve_addr === '' ? defaults.grpc : serve_addr);
}

async function cmd_events_import(argv: string[]): Promise<void> {
  const args = parse_args(argv, [], ['server', 'token', 'data', 'tls-ca', 'tls-cert', 'tls-key']);
  const file = args.positional[0] ?? fail('events import needs FILE.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    fail(`cannot read ${file}: ${(error as Error).message}`);
  }
  const events = Array.isArray(parsed) ? parsed : [parsed];
  const token = admin_token(args);
  const server = server_addr(args);
  const { grpc_object } = load_definitions();
  const Catalog = (grpc_object as any).ticketing.catalog.v1.CatalogService as grpc.ServiceClientConstructor;
  const client = new Catalog(server, client_credentials(args));
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  const queues = queue_client(grpc_object, server, client_credentials(args));
  let failed = 0;
  for (const file_event of events) {
    // The optional `queue` key: ConfigureQueue once the event exists (src/cli/event_queue.ts).
    const { event, queue } = split_queue(file_event);
    const wire = to_wire_event(event);
    const result = await new Promise<{ event_id: string; created: boolean; seat_count: string }>((resolve, reject) => {
      client['CreateEvent']!({ event: wire }, metadata, { deadline: Date.now() + 30_000 }, (error: grpc.ServiceError | null, reply: any) => (error ? reject(error) : resolve(reply)));
    }).catch((error: grpc.ServiceError) => {
      failed++;
      process.stderr.write(`${String((event as { event_id?: unknown })?.event_id)}: ${grpc.status[error.code]}: ${error.details}\n`);
      return undefined;
    });
    if (result !== undefined) {
      process.stdout.write(`${result.event_id}: ${result.created ? 'created' : 'already exists (same definition)'}, ${result.seat_count} seats\n`);
    }
    if (result !== undefined && queue !== undefined) {
      if (!(await import_queue(queues, queue, metadata))) failed++;
    }
  }
  client.close();
  queues.close();
  if (failed > 0) process.exit(1);
}

/** ConfigureQueue for an imported event's `queue` key; false (said on stderr) if refused. */
async function import_queue(
  queues: Parameters<typeof configure_queue>[0], queue: QueueWire, metadata: grpc.Metadata,
): Promise<boolean> {
  const id = queue.event_id;
  try {
    const r = await configure_queue(queues, queue, metadata);
    const what = r.created ? 'configured' : 'already configured (same settings)';
    process.stdout.write(`${id}: waiting room ${what}, seed commitment ${r.seed_commitment}\n`);
    return true;
  } catch (error) {
    const e = error as grpc.ServiceError;
    process.stderr.write(`${id}: queue: ${grpc.status[e.code]}: ${e.details}\n`);
    return false;
  }
}

/** Event file JSON -> wire Event: int64 fields as strings, so nothing is rounded on the way. */
function to_wire_event(event: unknown): unknown {
  if (typeof event !== 'object' || event === null) return event;
  const e = { ...(event as Record<string, unknown>) };
  const int = (v: unknown) => (typeof v === 'number' ? String(v) : v);
  e['starts_at_unix'] = int(e['starts_at_unix']);
  if (typeof e['price_tiers'] === 'object' && e['price_tiers'] !== null) {
    e['price_tiers'] = Object.fromEntries(Object.entries(e['price_tiers'] as object).map(([k, v]) => [k, int(v)]));
  }
  if (Array.isArray(e['promo_codes'])) {
    e['promo_codes'] = e['promo_codes'].map((p: Record<string, unknown>) => ({ ...p, amount_off_micros: int(p['amount_off_micros']), valid_until_unix: int(p['valid_until_unix']) }));
  }
  return e;
}

function cmd_token(argv: string[]): void {
  const args = parse_args(argv, [], ['user', 'role', 'ttl', 'data', 'token-lifetime-max']);
  const user_id = flag(args, 'user', undefined, undefined) ?? fail('token needs --user ID');
  const role = flag(args, 'role', undefined, 'customer');
  if (!(roles as readonly string[]).includes(role)) fail(`--role must be one of ${roles.join(', ')}`);
  const ttl = parse_duration_seconds(flag(args, 'ttl', undefined, '1h'));
  const lifetime_max = token_lifetime_flag(args);
  if (ttl < 1) fail('--ttl must be at least 1 s');
  if (ttl > lifetime_max) fail(`--ttl ${ttl} s is above the token lifetime cap of ${lifetime_max} s (--token-lifetime-max / TICKETING_TOKEN_LIFETIME_MAX): the node would refuse the token`);
  const secret = load_secret(flag(args, 'data', 'TICKETING_DATA_DIR', defaults.data), process.env, false);
  process.stdout.write(sign_token(secret, { user_id, role: role as Role }, ttl) + '\n');
}

/** Hot backup of --data into DEST; `ticketing serve --data DEST` restores it. */
async function cmd_backup(argv: string[]): Promise<void> {
  const args = parse_args(argv, [], ['data']);
  const dest = args.positional[0] ?? fail('backup needs DEST (a new or empty directory)');
  if (args.positional.length > 1) fail(`backup takes one DEST, got ${args.positional.join(' ')}`);
  await backup(flag(args, 'data', 'TICKETING_DATA_DIR', defaults.data), dest, (line) => process.stdout.write(line + '\n'));
}

export async function main(argv: string[]): Promise<void> {
  const [command, sub, ...rest] = argv;
  try {
    if (command === 'serve') await cmd_serve(argv.slice(1));
    else if (command === 'events' && sub === 'import') await cmd_events_import(rest);
    else if (command === 'token') cmd_token(argv.slice(1));
    else if (command === 'backup') await cmd_backup(argv.slice(1));
    else if (command === 'outbox' && sub === 'tail') await cmd_outbox_tail(rest, defaults.data);
    else if (command === undefined || command === 'help' || command === '--help') process.stdout.write(usage);
    else fail(`unknown command ${[command, sub].filter(Boolean).join(' ')}\n${usage}`);
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
}

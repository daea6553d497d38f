// Assembles the node: data dir, worker pool, gRPC server, HTTP endpoint. Graceful stop on
// SIGTERM/SIGINT: stop accepting, drain in-flight calls (bounded), close workers and LMDB.
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import * as loader from '@grpc/proto-loader';
import { HealthImplementation, protoPath as health_proto_path } from 'grpc-health-check';
import { readFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { revive_domain_error } from '../actors/errors.js';
import { load_public_keys, load_secret, token_lifetime_seconds_max_default } from '../auth/token.js';
import { check_outbox_config, outbox_cap_of, outbox_defaults, start_outbox, type OutboxConfig } from '../kafka/start.js';
import { lock_data_dir } from '../ops/data_lock.js';
import { open_data_dir } from '../ops/data_dir.js';
import { start_http } from '../ops/http.js';
import { create_logger } from '../ops/log.js';
import { Metrics } from '../ops/metrics.js';
import { WorkerPool } from '../runtime/pool.js';
import { storage_probe_interval_ms_default } from '../runtime/storage.js';
import { store_map_bytes_max } from '../runtime/store.js';
import { FraudSignalTracker } from '../purchase/fraud_signals.js';
import { Purchases } from '../purchase/purchases.js';
import { SandboxGateway } from '../purchase/sandbox_gateway.js';
import { start_settlement_loop } from '../purchase/settlement_loop.js';
import { fraud_service } from './fraud_service.js';
import { order_query_service, order_service } from './order_service.js';
import { payment_service } from './payment_service.js';
import { catalog_service } from './catalog_service.js';
import { canonical_map_entries } from './descriptors.js';
import { inventory_service } from './inventory_service.js';
import { load_definitions, service_of } from './proto.js';
import { Router } from '../route/router.js';
import { test_clock_service } from './test_clock_service.js';
import { check_requests_of, refuse_malformed } from './strict_service.js';
import { listener_tls } from './tls.js';
import { ConnectionGuard, connection_defaults, type ConnectionLimitConfig } from './connections.js';
import { edge_limits, type EdgeLimitConfig } from './unary.js';

export interface ServeConfig extends EdgeLimitConfig, OutboxConfig, ConnectionLimitConfig {
  data_dir: string;
  grpc_addr: string;
  http_addr: string;
  kafka_brokers: string | undefined;
  workers: number;
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
  /** PEM files. Cert + key: the gRPC listener speaks TLS; plus client CA: mutual TLS. None: plaintext. */
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
}

/** The fraud ip blocklist file: one address per line; blank lines and # comments ignored. */
export function load_ip_blocklist(file: string | undefined): Set<string> {
  if (file === undefined) return new Set();
  const lines = readFileSync(file, 'utf8').split('\n').map((l) => l.replace(/#.*/, '').trim()).filter((l) => l !== '');
  for (const line of lines) if (isIP(line) === 0) throw new Error(`--fraud-ip-blocklist: ${line} is not an ip address`);
  return new Set(lines);
}

export const serve_defaults = {
  message_bytes_max: 256 * 1024,
  mailbox_depth_max: 10_000,
  mailbox_batch_size_max: 512,
  snapshot_every_records: 20_000,
  drain_ms_max: 10_000,
  settle_interval_ms: 1_000,
  store_map_bytes: store_map_bytes_max,
  storage_probe_interval_ms: storage_probe_interval_ms_default,
  ...outbox_defaults,
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
  ...connection_defaults,
};

export interface RunningNode {
  grpc_port: number;
  http_port: number;
  pool: WorkerPool;
  log: Logger;
  stop(): Promise<void>;
}

export function split_addr(addr: string, flag: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+):([0-9]{1,5})$/.exec(addr);
  if (match === null || Number(match[2]) > 65535) throw new Error(`${flag} must be HOST:PORT, got ${addr}`);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port: Number(match[2]) };
}

export async function serve(config: ServeConfig, log = create_logger()): Promise<RunningNode> {
  const blocklist = load_ip_blocklist(config.fraud_ip_blocklist_file);
  const public_keys = load_public_keys(config.auth_public_keys_file);
  check_outbox_config(config);
  // Before anything in the directory is read or written, and held until LMDB is closed: a
  // second node on the same directory would sell the same seats (src/ops/data_lock.ts).
  const lock = await lock_data_dir(config.data_dir, { command: 'serve' }); // addresses once bound
  const meta = open_data_dir(config.data_dir, config.partitions, config.workers);
  const secret = load_secret(config.data_dir);
  const metrics = new Metrics();
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
    revive: (wire) => revive_domain_error(wire.name, wire.message) ?? Object.assign(new Error(wire.message), { name: wire.name }),
  });
  metrics.attach(pool);
  pool.on('worker_exit', (worker, code) => log.warn({ worker, code }, 'worker stopped; in-flight requests failed with UNAVAILABLE; restarting'));
  pool.on('worker_ready', (worker) => log.info({ worker }, 'worker ready'));
  const started = performance.now();
  await pool.start();
  log.info({ partitions: meta.partition_count, stores: meta.store_count, workers: config.workers, recovery_ms: Math.round(performance.now() - started) }, 'partitions recovered');
  // Beside the request path: a broker outage never fails or slows a call, the outbox grows.
  const outbox = start_outbox(config, pool, metrics, log, meta.node_id);

  const { definition, grpc_object } = load_definitions();
  const guard = new ConnectionGuard(config, metrics, log);
  const guard_options = guard.server_options();
  const server = new grpc.Server({
    'grpc.max_receive_message_length': config.message_bytes_max,
    'grpc.max_send_message_length': 4 * 1024 * 1024,
    ...guard_options,
    // After the guard's caps and arrival bound: a call whose bytes are malformed is refused.
    interceptors: [...(guard_options.interceptors ?? []), refuse_malformed],
  });
  // Before any addService: every request's bytes are checked before protobufjs decodes them.
  check_requests_of(server, (service, method, fault) => {
    metrics.requests_malformed.inc({ service, method });
    metrics.grpc_requests.inc({ service, method, code: 'INVALID_ARGUMENT' });
    log.debug({ service, method, field: fault.field, offset: fault.offset, reason: fault.reason }, 'malformed request refused');
  });
  const deps = { keys: { secret, public_keys, lifetime_seconds_max: config.token_lifetime_seconds_max }, metrics, log, limits: edge_limits(config) };
  const router = new Router(pool, meta.partition_count);
  const served: string[] = [];
  const add = (name: string, implementation: grpc.UntypedServiceImplementation): void => {
    server.addService(service_of(grpc_object, name), implementation);
    served.push(name);
  };
  add('ticketing.inventory.v1.InventoryService', inventory_service(deps, router));
  add('ticketing.catalog.v1.CatalogService', catalog_service(deps, router));
  const gateway = new SandboxGateway();
  const purchases = new Purchases(router, gateway, new FraudSignalTracker(blocklist), log);
  add('ticketing.order.v1.OrderService', order_service(deps, purchases));
  add('ticketing.order.v1.OrderQueryService', order_query_service(deps, purchases));
  add('ticketing.payment.v1.PaymentService', payment_service(deps, purchases));
  add('ticketing.fraud.v1.FraudService', fraud_service(deps, purchases));
  const settlement = start_settlement_loop({
    purchases, interval_ms: config.settle_interval_ms, log,
    // While a store refuses writes, a pass could call the gateway but not record the outcome.
    open_payments: () => (metrics.storage_messages().length > 0 ? 0 : metrics.gauge_total('payments_open')),
    on_pass: (r) => {
      metrics.settlements.inc({ outcome: 'settled' }, r.settled);
      metrics.settlements.inc({ outcome: 'deferred' }, r.due - r.settled);
    },
  });
  if (config.test_clock) {
    add('ticketing.testing.v1.TestClockService', test_clock_service(deps, pool));
    log.warn('TestClockService is enabled (--test-clock): admins can move this node\'s clock forward');
  }
  // grpc.health.v1: '' is the whole node; each served service has its own status. NOT_SERVING
  // while any worker recovers its partitions (as /readyz) and once shutdown starts.
  const health = new HealthImplementation({ '': 'NOT_SERVING' });
  health.addToServer(server);
  const set_health = (status: 'SERVING' | 'NOT_SERVING'): void => {
    for (const name of ['', ...served]) health.setStatus(name, status);
  };
  let shutting_down = false;
  pool.on('worker_exit', () => set_health('NOT_SERVING'));
  pool.on('worker_ready', () => {
    if (!shutting_down && pool.ready()) set_health('SERVING');
  });
  // Reflection lists only what this node actually serves (health included).
  const health_definition = loader.loadSync(health_proto_path, { keepCase: true, longs: String, enums: String, defaults: true });
  new ReflectionService(canonical_map_entries({ ...definition, ...health_definition }), { services: [...served, 'grpc.health.v1.Health'] }).addToServer(server);

  const g = split_addr(config.grpc_addr, '--grpc');
  // The node owns the TCP listener (connection caps, preface timeout: src/grpc/connections.ts).
  const grpc_port = await guard.listen(server, g.host, g.port, listener_tls(config, log));
  const h = split_addr(config.http_addr, '--http');
  let http: HttpServer;
  try {
    http = await start_http(h.host, h.port, metrics, {
      // Storage full: not ready (writes are refused), though reads are still answered.
      ready: () => pool.ready() && metrics.storage_messages().length === 0,
      degraded: () => [...(pool.ready() ? [] : ['a worker is recovering its partitions']), ...metrics.storage_messages(), ...outbox.degraded()],
    });
  } catch (error) {
    await guard.close();
    server.forceShutdown();
    await settlement.stop();
    await outbox.stop();
    await pool.close();
    await lock.release();
    throw error;
  }
  const http_port = (http.address() as { port: number }).port;
  lock.update({ grpc_addr: `${g.host}:${grpc_port}`, http_addr: `${h.host}:${http_port}` });
  set_health('SERVING');
  log.info({ grpc: `${g.host}:${grpc_port}`, http: `${h.host}:${http_port}`, data_dir: config.data_dir }, 'serving');

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      shutting_down = true;
      set_health('NOT_SERVING');
      log.info({ drain_ms_max: config.drain_ms_max }, 'shutting down: draining in-flight calls');
      const listener_closed = guard.close(); // no new connections; open ones drain below
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          log.warn('drain time exceeded; cancelling the remaining calls');
          server.forceShutdown();
          resolve();
        }, config.drain_ms_max);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await listener_closed;
      await settlement.stop();
      // Before the pool: the emitter deletes what the broker acknowledged through the workers.
      await outbox.stop();
      await pool.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await lock.release();
      log.info('stopped');
    })();
    return stopping;
  };
  return { grpc_port, http_port, pool, log, stop };
}

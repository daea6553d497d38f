// The gRPC edge of a node: one grpc.Server behind the connection guard (src/grpc/connections.ts)
// and the strict decoder (strict_service.ts), every service the node serves, grpc.health.v1 and
// reflection, on the node's own TCP listener. It translates, checks transport limits and routes;
// what it routes to is handed in by the composition root (src/node/serve.ts), which also owns
// when it starts and stops.
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import * as loader from '@grpc/proto-loader';
import { HealthImplementation, protoPath as health_proto_path } from 'grpc-health-check';
import type { Logger } from 'pino';
import type { VerificationKeys } from '../auth/token.js';
import { VerifiedTokens, verified_tokens_max } from '../auth/token_cache.js';
import type { Metrics } from '../ops/metrics.js';
import type { Purchases } from '../purchase/purchases.js';
import { assert } from '../util/assert.js';
import type { WorkerPool } from '../runtime/pool.js';
import { catalog_service } from './catalog_service.js';
import { ConnectionGuard, type ConnectionLimitConfig } from './connections.js';
import { canonical_map_entries } from './descriptors.js';
import { fraud_service } from './fraud_service.js';
import { inventory_service } from './inventory_service.js';
import { order_query_service, order_service } from './order_service.js';
import { payment_service } from './payment_service.js';
import { seat_selection_service } from './seat_selection_service.js';
import { load_definitions, service_of } from './proto.js';
import type { Router } from '../route/router.js';
import { check_requests_of, malformed_details } from './strict_service.js';
import { test_clock_service } from './test_clock_service.js';
import { checkout_service, order_admin_service } from './checkout_service.js';
import { listener_tls, type TlsFiles } from './tls.js';
import { edge_limits, type EdgeDeps, type EdgeLimitConfig } from './unary.js';
import { new_watch_hub } from './watch_availability.js';
import type { ServedService } from './web_calls.js';
import type { OnMalformed } from './strict_service.js';
import type { WatchConfig, WatchHub } from './watch_hub.js';
import { position_encoder, queue_service, queue_service_name } from './queue_service.js';
import { QueueWatch, type QueueWatchConfig } from './queue_watch.js';

export interface EdgeConfig
  extends EdgeLimitConfig, ConnectionLimitConfig, TlsFiles, WatchConfig, QueueWatchConfig {
  /** As given: the TLS-off log line says whether it is loopback. */
  grpc_addr: string;
  /** Whole-message cap for any gRPC request. */
  message_bytes_max: number;
  /** Serve TestClockService (admins can move the node's clock forward). */
  test_clock: boolean;
}

export interface EdgeParts {
  config: EdgeConfig;
  keys: VerificationKeys;
  metrics: Metrics;
  log: Logger;
  /** Health follows its workers; TestClockService moves its clock. */
  pool: WorkerPool;
  router: Router;
  purchases: Purchases;
}

export type HealthStatus = 'SERVING' | 'NOT_SERVING';

export interface Edge {
  /** The bound port (the one asked for, or the one chosen for port 0). */
  port: number;
  /** The status of the whole node ('') and of every served service. */
  set_health(status: HealthStatus): void;
  /** Stops accepting and lets the calls in flight finish, for drain_ms_max at most, then
   *  cancels the rest; resolves once the listener has closed too. */
  drain(drain_ms_max: number): Promise<void>;
  /** For a startup that failed after listening: closes at once, cancelling every call. */
  close_now(): Promise<void>;
  /** What the web edge (web_server.ts) serves: these very handlers, over Connect/gRPC-Web. */
  web: WebEdgeParts;
}

export interface WebEdgeParts {
  definition: loader.PackageDefinition;
  services: readonly ServedService[];
  on_malformed: OnMalformed;
}

/** Builds the server, serves on host:port and resolves once listening. */
export async function start_edge(parts: EdgeParts, host: string, port: number): Promise<Edge> {
  assert(Number.isInteger(port) && port >= 0 && port <= 65535, 'port is 0..65535');
  const { config, metrics, log, pool } = parts;
  const { definition, grpc_object } = load_definitions();
  const guard = new ConnectionGuard(config, metrics, log);
  const server = new_server(config, guard, metrics, log);
  // Before the CatalogService is added: it makes WatchAvailability's serializer pass bytes.
  const hub = new_watch_hub(grpc_object, parts.router, config, metrics);
  const queue_watch = new QueueWatch(
    parts.router, config, (open) => metrics.queue_watch_streams.set(open),
  );
  const web_services: ServedService[] = [];
  const served = add_services(server, grpc_object, parts, { hub, queue_watch }, web_services);
  // grpc.health.v1: '' is the whole node; each served service has its own status. NOT_SERVING
  // while any worker recovers its partitions (as /readyz) and once shutdown starts.
  const health = new HealthImplementation({ '': 'NOT_SERVING' });
  health.addToServer(server);
  const set_health = (status: HealthStatus): void => {
    for (const name of ['', ...served]) health.setStatus(name, status);
  };
  let shutting_down = false;
  pool.on('worker_exit', () => set_health('NOT_SERVING'));
  pool.on('worker_ready', () => {
    if (!shutting_down && pool.ready()) set_health('SERVING');
  });
  add_reflection(server, definition, served);
  // The node owns the TCP listener (connection caps, preface timeout: src/grpc/connections.ts).
  const bound_port = await guard.listen(server, host, port, listener_tls(config, log));
  assert(port === 0 || bound_port === port, 'bound to the port asked for');
  const drain = async (drain_ms_max: number): Promise<void> => {
    shutting_down = true;
    set_health('NOT_SERVING');
    log.info({ drain_ms_max }, 'shutting down: draining in-flight calls');
    const listener_closed = guard.close(); // no new connections; open ones drain below
    hub.close(); // open WatchAvailability streams end UNAVAILABLE: they would never finish
    queue_watch.close(); // and so do WatchPosition's
    await drain_calls(server, drain_ms_max, log);
    await listener_closed;
  };
  const close_now = async (): Promise<void> => {
    hub.close();
    queue_watch.close();
    await guard.close();
    server.forceShutdown();
  };
  const web = { definition, services: web_services, on_malformed: malformed_counter(metrics, log) };
  return { port: bound_port, set_health, drain, close_now, web };
}

/** Every service this node serves; returns their full names (for health and reflection). */
function add_services(
  server: grpc.Server, grpc_object: grpc.GrpcObject, parts: EdgeParts,
  streams: { hub: WatchHub; queue_watch: QueueWatch }, web_services: ServedService[],
): string[] {
  const { hub, queue_watch } = streams;
  const { config, metrics, log, router, purchases } = parts;
  const tokens = new VerifiedTokens(parts.keys, verified_tokens_max);
  metrics.attach_tokens(tokens);
  const deps: EdgeDeps = { keys: parts.keys, tokens, metrics, log, limits: edge_limits(config) };
  const served: string[] = [];
  const add = (name: string, implementation: grpc.UntypedServiceImplementation): void => {
    const definition = service_of(grpc_object, name);
    server.addService(definition, implementation);
    served.push(name);
    web_services.push({ name, definition, implementation });
  };
  add('ticketing.inventory.v1.InventoryService', inventory_service(deps, router));
  add('ticketing.catalog.v1.CatalogService', catalog_service(deps, router, hub));
  add('ticketing.order.v1.OrderService', order_service(deps, purchases));
  add('ticketing.order.v1.OrderQueryService', order_query_service(deps, purchases));
  add('ticketing.payment.v1.PaymentService', payment_service(deps, purchases));
  add('ticketing.fraud.v1.FraudService', fraud_service(deps, purchases));
  add('ticketing.inventory.v1.SeatSelectionService', seat_selection_service(deps, router));
  add('ticketing.order.v1.CheckoutService', checkout_service(deps, purchases));
  add('ticketing.order.v1.OrderAdminService', order_admin_service(deps, purchases));
  // Before the QueueService is added: WatchPosition's serializer then passes bytes.
  const encode_position = position_encoder(grpc_object);
  add(queue_service_name, queue_service(deps, router, queue_watch, encode_position));
  if (config.test_clock) {
    add('ticketing.testing.v1.TestClockService', test_clock_service(deps, parts.pool));
    log.warn('TestClockService is enabled (--test-clock): '
      + 'admins can move this node\'s clock forward');
  }
  return served;
}

/** Reflection lists only what this node actually serves (health included). */
function add_reflection(
  server: grpc.Server, definition: loader.PackageDefinition, served: readonly string[],
): void {
  const health_definition = loader.loadSync(health_proto_path, {
    keepCase: true, longs: String, enums: String, defaults: true,
  });
  new ReflectionService(canonical_map_entries({ ...definition, ...health_definition }), {
    services: [...served, 'grpc.health.v1.Health'],
  }).addToServer(server);
}

/** The server with the guard's caps in front and malformed requests refused. */
function new_server(
  config: EdgeConfig, guard: ConnectionGuard, metrics: Metrics, log: Logger,
): grpc.Server {
  // One interceptor for the guard's caps, its arrival bound and the refusal of malformed
  // requests (after the caps, as before: a call over a cap is refused RESOURCE_EXHAUSTED).
  const server = new grpc.Server({
    'grpc.max_receive_message_length': config.message_bytes_max,
    'grpc.max_send_message_length': 4 * 1024 * 1024,
    // No channelz: this node serves no channelz service, and its per-call trackers (four
    // closures and Date.now() per call) were 0.4-0.8 % of the main thread under ghz (issue 13).
    'grpc.enable_channelz': 0,
    ...guard.server_options(malformed_details),
  });
  // Before any addService: every request's bytes are checked before protobufjs decodes them.
  check_requests_of(server, malformed_counter(metrics, log));
  return server;
}

/** Counts and logs a malformed request (either edge's). */
function malformed_counter(metrics: Metrics, log: Logger): OnMalformed {
  return (service, method, fault) => {
    metrics.requests_malformed.inc({ service, method });
    metrics.grpc_requests.inc({ service, method, code: 'INVALID_ARGUMENT' });
    log.debug({
      service, method, field: fault.field, offset: fault.offset, reason: fault.reason,
    }, 'malformed request refused');
  };
}

/** Lets the calls in flight finish; past drain_ms_max, cancels those left. */
function drain_calls(server: grpc.Server, drain_ms_max: number, log: Logger): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      log.warn('drain time exceeded; cancelling the remaining calls');
      server.forceShutdown();
      resolve();
    }, drain_ms_max);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

// Operating the node: gRPC health (Check, Watch), reflection, logs (trace ids from traceparent,
// no secret in any line), /metrics parsed as Prometheus text during traffic, and SIGTERM
// during a stream of holds (exit 0, every acknowledged hold there after restart).
import * as loader from '@grpc/proto-loader';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  arena_file, arena_id, cleanup, clients, code_of, grpc, repo_root, run_cli, start_server, stop, temp_dir, token, type Server,
} from './harness.js';

const require = createRequire(import.meta.url);
const parse_prometheus = require('parse-prometheus-text-format') as (text: string) => { name: string; type: string; metrics: { value?: string; labels?: Record<string, string>; count?: string; sum?: string }[] }[];

const health_proto = join(repo_root, 'node_modules/grpc-health-check/proto/health/v1/health.proto');
const reflection_proto = join(repo_root, 'node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');
const root = grpc.loadPackageDefinition(loader.loadSync([health_proto, reflection_proto], { keepCase: true, longs: String, enums: String, defaults: true })) as any;

function health_client(port: number) {
  return new root.grpc.health.v1.Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, Function>;
}

function check(client: grpc.Client & Record<string, Function>, service: string): Promise<string> {
  return new Promise((resolve, reject) => client['Check']!({ service }, (e: grpc.ServiceError | null, r: { status: string }) => (e ? reject(e) : resolve(r.status))));
}

const design_metric_names = [
  'ticketing_grpc_requests_total', 'ticketing_grpc_request_duration_seconds', 'ticketing_seat_holds_active',
  'ticketing_seats_sold_total', 'ticketing_mailbox_depth', 'ticketing_journal_commit_duration_seconds',
  'ticketing_journal_batch_size', 'ticketing_outbox_pending', 'ticketing_outbox_lag_seconds',
  'ticketing_kafka_publish_errors_total',
];

// A failed assertion must not leave a server running (uvu would never exit): kill leftovers.
const started: Server[] = [];
async function started_server(dir: string, extra: string[], env: Record<string, string> = {}): Promise<Server> {
  const server = await start_server(dir, extra, env);
  started.push(server);
  return server;
}
function kill_leftovers(): void {
  for (const s of started.splice(0)) if (s.process.exitCode === null && s.process.signalCode === null) s.process.kill('SIGKILL');
}

test('health, reflection, logs and metrics of a running node', async () => {
  try {
    await health_reflection_logs_metrics();
  } finally {
    kill_leftovers();
  }
});

async function health_reflection_logs_metrics(): Promise<void> {
  const dir = temp_dir('ops');
  const server = await started_server(dir, ['--workers', '1', '--partitions', '4'], { TICKETING_LOG_LEVEL: 'info' });
  const c = clients(server.grpc_port);
  const svc = token(dir, 'svc', 'service');
  assert.is(run_cli(['events', 'import', arena_file, '--server', `127.0.0.1:${server.grpc_port}`, '--data', dir]).status, 0);

  // grpc.health.v1 Check: the node and each served service; an unknown service is NOT_FOUND.
  const h = health_client(server.grpc_port);
  assert.is(await check(h, ''), 'SERVING');
  assert.is(await check(h, 'ticketing.inventory.v1.InventoryService'), 'SERVING');
  assert.is(await check(h, 'ticketing.catalog.v1.CatalogService'), 'SERVING');
  assert.is(await check(h, 'ticketing.order.v1.OrderService'), 'SERVING');
  assert.is(await check(h, 'ticketing.payment.v1.PaymentService'), 'SERVING');
  assert.is((await code_of(check(h, 'ticketing.testing.v1.TestClockService'))).code, grpc.status.NOT_FOUND, 'not served without --test-clock');
  // Watch streams the current status first.
  const watched = await new Promise<string>((resolve, reject) => {
    const call = h['Watch']!({ service: '' }) as grpc.ClientReadableStream<{ status: string }>;
    call.once('data', (m: { status: string }) => {
      resolve(m.status);
      call.cancel();
    });
    call.once('error', (e: grpc.ServiceError) => (e.code === grpc.status.CANCELLED ? undefined : reject(e)));
  });
  assert.is(watched, 'SERVING');

  // Reflection lists every served service and nothing else, without proto files.
  const reflection = new root.grpc.reflection.v1.ServerReflection(`127.0.0.1:${server.grpc_port}`, grpc.credentials.createInsecure());
  const listed = await new Promise<string[]>((resolve, reject) => {
    const stream = reflection.ServerReflectionInfo();
    stream.on('data', (m: { list_services_response?: { service: { name: string }[] } }) => {
      resolve((m.list_services_response?.service ?? []).map((s) => s.name).sort());
      stream.end();
    });
    stream.on('error', reject);
    stream.write({ list_services: '*' });
  });
  assert.equal(listed, [
    'grpc.health.v1.Health', 'ticketing.catalog.v1.CatalogService', 'ticketing.fraud.v1.FraudService',
    'ticketing.inventory.v1.InventoryService', 'ticketing.inventory.v1.SeatSelectionService',
    'ticketing.order.v1.CheckoutService', 'ticketing.order.v1.OrderAdminService',
    'ticketing.order.v1.OrderQueryService', 'ticketing.order.v1.OrderService',
    'ticketing.payment.v1.PaymentService', 'ticketing.queue.v1.QueueService',
  ]);

  // A client's W3C traceparent becomes the call's trace_id in the state-change log line.
  const trace_id = '4bf92f3577b34da6a3ce929d0e0e4736';
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${svc}`);
  metadata.set('traceparent', `00-${trace_id}-00f067aa0ba902b7-01`);
  const inventory = new (grpc.loadPackageDefinition(loader.loadSync('ticketing/inventory/v1/inventory.proto', { keepCase: true, longs: String, includeDirs: [join(repo_root, 'proto')] })) as any).ticketing.inventory.v1.InventoryService(`127.0.0.1:${server.grpc_port}`, grpc.credentials.createInsecure());
  const traced = await new Promise<{ hold_id: string }>((resolve, reject) => inventory.ReserveTickets(
    { event_id: arena_id, seat_ids: ['101-A-1'], hold_ttl_seconds: 60, user_id: 'traced' }, metadata,
    (e: grpc.ServiceError | null, r: { hold_id: string }) => (e ? reject(e) : resolve(r)),
  ));
  assert.ok(traced.hold_id);

  // Metrics during traffic, parsed as Prometheus text.
  const base = `http://127.0.0.1:${server.http_port}`;
  const scrape = async () => parse_prometheus(await (await fetch(`${base}/metrics`)).text());
  const value = (families: ReturnType<typeof parse_prometheus>, name: string, labels: Record<string, string> = {}) => {
    const family = families.find((f) => f.name === name);
    const metric = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
    return Number(metric?.value ?? metric?.count ?? NaN);
  };
  const first = await scrape();
  const traffic: Promise<unknown>[] = [];
  for (let i = 2; i <= 24; i++) {
    traffic.push(c.reserve({ event_id: arena_id, seat_ids: [`101-A-${i}`], hold_ttl_seconds: 600, user_id: `m${i}` }, svc));
  }
  let during = await scrape();
  await Promise.all(traffic);
  for (let i = 0; i < 100 && !(value(during, 'ticketing_seat_holds_active') >= 24); i++) {
    await new Promise((r) => setTimeout(r, 50));
    during = await scrape();
  }
  for (const name of design_metric_names) assert.ok(during.some((f) => f.name === name), `metric ${name} present`);
  const ok = { service: 'InventoryService', method: 'ReserveTickets', code: 'OK' };
  assert.ok(value(during, 'ticketing_grpc_requests_total', ok) > (value(first, 'ticketing_grpc_requests_total', ok) || 0), 'request counter increased');
  assert.is(during.find((f) => f.name === 'ticketing_grpc_requests_total')!.type, 'COUNTER');
  assert.is(during.find((f) => f.name === 'ticketing_journal_commit_duration_seconds')!.type, 'HISTOGRAM');
  assert.ok(value(during, 'ticketing_seat_holds_active') >= 24, 'workers report active holds');
  assert.ok(value(during, 'ticketing_journal_commit_duration_seconds') > 0, 'workers report commits');
  assert.ok(value(during, 'ticketing_journal_batch_size') > 0, 'workers report batch sizes');
  assert.ok(during.some((f) => f.name === 'ticketing_mailbox_depth' && f.metrics.some((m) => m.labels?.['worker'] === '0')));

  // A refused call with a forged token: the token must not reach the log either.
  const forged = svc.slice(0, -4) + 'AAAA';
  assert.is((await code_of(c.reserve({ event_id: arena_id, seat_ids: ['101-A-30'], hold_ttl_seconds: 60, user_id: 'x' }, forged))).code, grpc.status.UNAUTHENTICATED);

  c.close();
  h.close();
  reflection.close();
  inventory.close();
  assert.is(await stop(server), 0);

  const lines = server.log.join('\n');
  const traced_line = server.log.map((l) => { try { return JSON.parse(l); } catch { return {}; } })
    .find((e: { msg?: string; trace_id?: string; method?: string }) => e.msg === 'state changed' && e.method === 'ReserveTickets' && e.trace_id === trace_id);
  assert.ok(traced_line, 'the traceparent trace id is logged with the state change');
  assert.is(traced_line.user_id, 'svc');
  const secret = readFileSync(join(dir, 'auth.secret'), 'utf8').trim();
  for (const [name, text] of [['secret', secret], ['token', svc], ['token signature', svc.split('.')[2]!], ['forged token', forged]] as const) {
    assert.not.ok(lines.includes(text), `no ${name} in any log line`);
  }
  cleanup(dir);
}

test('SIGTERM during a stream of holds: exit 0, every acknowledged hold is there after restart', async () => {
  try {
    await sigterm_during_holds();
  } finally {
    kill_leftovers();
  }
});

async function sigterm_during_holds(): Promise<void> {
  const dir = temp_dir('sigterm');
  let server = await started_server(dir, ['--workers', '1', '--partitions', '4']);
  let c = clients(server.grpc_port);
  const svc = token(dir, 'svc', 'service');
  await c.create_event({ event: {
    event_id: 'evt-term', name: 'Term', currency: 'EUR', price_tiers: { A: '1' },
    sections: [{ name: '1', rows: [{ name: 'A', seats: 600, tier: 'A' }] }], max_seats_per_user: 1,
  } }, token(dir, 'ops', 'admin'));
  const acknowledged: { hold_id: string; seat: string }[] = [];
  const outcomes: (number | 'ok')[] = [];
  let exit: Promise<number | null> | undefined;
  const calls: Promise<void>[] = [];
  for (let i = 1; i <= 600; i++) {
    const seat = `1-A-${i}`;
    calls.push(c.reserve({ event_id: 'evt-term', seat_ids: [seat], hold_ttl_seconds: 3600, user_id: `t${i}` }, svc).then(
      (hold: { hold_id: string }) => {
        acknowledged.push({ hold_id: hold.hold_id, seat });
        outcomes.push('ok');
        if (acknowledged.length === 50) exit = stop(server);
      },
      (e: grpc.ServiceError) => { outcomes.push(e.code); },
    ));
  }
  await Promise.all(calls);
  assert.is(await (exit ?? stop(server)), 0, 'graceful shutdown exits 0');
  assert.is(outcomes.length, 600, 'every call settled (none hung)');
  assert.ok(outcomes.every((o) => o === 'ok' || o === grpc.status.UNAVAILABLE), `refused calls are UNAVAILABLE: ${[...new Set(outcomes)].join(',')}`);
  c.close();

  server = await started_server(dir, ['--workers', '1']);
  c = clients(server.grpc_port);
  const a = await c.availability({ event_id: 'evt-term' }, svc);
  const free = new Set<string>(a.sections[0].free_seat_ids);
  for (const { seat } of acknowledged) assert.not.ok(free.has(seat), `acknowledged hold on ${seat} survived SIGTERM`);
  // A graceful drain answers every call it applied: held seats are exactly the acknowledged ones.
  assert.is(Number(a.held), acknowledged.length, 'exactly the acknowledged holds: nothing applied unanswered');
  c.close();
  assert.is(await stop(server), 0);
  cleanup(dir);
}

test.run();

// The deadline cap: a call with no deadline, or a later one than deadline_ms_max, is answered
// DEADLINE_EXCEEDED (outcome unknown) when the node has not answered by deadline_ms_max, while
// the work itself may still complete. The node runs in-process so the test can hold requests
// back from the worker (as a blocked worker would) for as long as it likes.
import * as loader from '@grpc/proto-loader';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { serve_defaults } from '../../src/node/config.js';
import { serve } from '../../src/node/serve.js';
import { create_logger } from '../../src/ops/log.js';
import { cleanup, clients, grpc, repo_root, temp_dir, token } from '../e2e/harness.js';

const S = grpc.status;
const deadline_ms_max = 500;

test('no answer within deadline_ms_max: DEADLINE_EXCEEDED, outcome unknown, the work may still complete', async () => {
  const dir = temp_dir('deadline');
  const node = await serve({
    ...serve_defaults, data_dir: dir, grpc_addr: '127.0.0.1:0', http_addr: '127.0.0.1:0', kafka_brokers: undefined,
    workers: 1, partitions: 4, test_clock: false, clock_offset_ms: 0, deadline_ms_max,
  }, create_logger('silent'));
  const c = clients(node.grpc_port);
  // A raw client too, to send a client deadline (the harness's calls send none).
  const definition = loader.loadSync(['ticketing/inventory/v1/inventory.proto'], {
    keepCase: true, longs: String, enums: String, defaults: true, includeDirs: [join(repo_root, 'proto')],
  });
  const Inventory = (grpc.loadPackageDefinition(definition) as any).ticketing.inventory.v1.InventoryService as grpc.ServiceClientConstructor;
  const raw = new Inventory(`127.0.0.1:${node.grpc_port}`, grpc.credentials.createInsecure());
  const svc = token(dir, 'orders', 'service');
  await c.create_event({ event: {
    event_id: 'evt-slow', name: 'Slow', currency: 'EUR', price_tiers: { A: '1' },
    sections: [{ name: '1', rows: [{ name: 'A', seats: 10, tier: 'A' }] }],
  } }, token(dir, 'ops', 'admin'));

  // Hold every request back from the worker until the gate opens.
  let open!: () => void;
  const gate = new Promise<void>((resolve) => { open = resolve; });
  const request = node.pool.request.bind(node.pool);
  node.pool.request = (partition, body) => gate.then(() => request(partition, body));

  const outcome = (p: Promise<unknown>) => p.then(() => 'OK', (e: grpc.ServiceError) => e);
  // No client deadline.
  const read = outcome(c.get_event({ event_id: 'evt-slow' }, svc));
  // A client deadline far beyond the cap.
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${svc}`);
  const reserve = outcome(new Promise((resolve, reject) => {
    raw['ReserveTickets']!({ event_id: 'evt-slow', seat_ids: ['1-A-1'], hold_ttl_seconds: 600, user_id: 'u1' }, metadata,
      { deadline: Date.now() + 60_000 }, (e: grpc.ServiceError | null, r: unknown) => (e ? reject(e) : resolve(r)));
  }));

  const r = await read as grpc.ServiceError;
  assert.is(r.code, S.DEADLINE_EXCEEDED, `read: ${String(r)}`);
  assert.match(r.details, `GetEvent: deadline exceeded: no answer within ${deadline_ms_max} ms`);
  assert.match(r.details, 'retrying it is safe');
  const w = await reserve as grpc.ServiceError;
  assert.is(w.code, S.DEADLINE_EXCEEDED, `reserve: ${String(w)}`);
  assert.match(w.details, 'the outcome is unknown');
  assert.match(w.details, 'Retrying the identical request is safe');

  // The worker gets the requests after all: the hold is made although the client heard
  // DEADLINE_EXCEEDED (that is why the message says the outcome is unknown).
  open();
  node.pool.request = request;
  let held = '0';
  for (let i = 0; i < 200 && held === '0'; i++) {
    held = (await c.availability({ event_id: 'evt-slow' }, svc)).held as string;
    if (held === '0') await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.is(held, '1', 'the capped reserve still took effect');
  const again = await outcome(c.reserve({ event_id: 'evt-slow', seat_ids: ['1-A-1'], hold_ttl_seconds: 600, user_id: 'u1' }, svc)) as grpc.ServiceError;
  assert.is(again.code, S.FAILED_PRECONDITION, 'retrying the identical reserve cannot hold the seat twice');

  const metrics = await (await fetch(`http://127.0.0.1:${node.http_port}/metrics`)).text();
  assert.match(metrics, /ticketing_grpc_requests_total\{service="CatalogService",method="GetEvent",code="DEADLINE_EXCEEDED"\} 1$/m);
  assert.match(metrics, /ticketing_grpc_requests_total\{service="InventoryService",method="ReserveTickets",code="DEADLINE_EXCEEDED"\} 1$/m);
  assert.not.match(metrics, /method="ReserveTickets",code="OK"/, 'each call is answered (and counted) once');

  raw.close();
  c.close();
  await node.stop();
  cleanup(dir);
});

test.run();

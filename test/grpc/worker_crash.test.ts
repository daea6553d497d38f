// A worker thread killed under load: every in-flight gRPC call ends with UNAVAILABLE (none
// hangs), the worker is replaced, recovers its partitions, and serves again with every
// acknowledged hold intact. The node runs in-process so the test can kill one thread.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { serve_defaults } from '../../src/node/config.js';
import { serve } from '../../src/node/serve.js';
import { create_logger } from '../../src/ops/log.js';
import { cleanup, clients, grpc, temp_dir, token } from '../e2e/harness.js';

test('killed worker: in-flight calls fail UNAVAILABLE, then it recovers and serves', async () => {
  const dir = temp_dir('crash');
  const node = await serve({
    ...serve_defaults, data_dir: dir, grpc_addr: '127.0.0.1:0', http_addr: '127.0.0.1:0', kafka_brokers: undefined,
    workers: 1, partitions: 4, test_clock: false, clock_offset_ms: 0,
  }, create_logger('silent'));
  const c = clients(node.grpc_port);
  const svc = token(dir, 'svc', 'service');
  await c.create_event({ event: {
    event_id: 'evt-crash', name: 'Crash', currency: 'EUR', price_tiers: { A: '1' },
    sections: [{ name: '1', rows: [{ name: 'A', seats: 1000, tier: 'A' }] }], max_seats_per_user: 1,
  } }, token(dir, 'ops', 'admin'));

  const outcomes: (string | number)[] = [];
  const acknowledged: string[] = [];
  const calls = Array.from({ length: 300 }, (_, i) => c.reserve(
    { event_id: 'evt-crash', seat_ids: [`1-A-${i + 1}`], hold_ttl_seconds: 600, user_id: `u${i}` }, svc,
  ).then((hold: { hold_id: string }) => {
    outcomes.push('ok');
    acknowledged.push(hold.hold_id);
  }, (e: grpc.ServiceError) => outcomes.push(e.code)));
  // Kill the thread once requests are in its mailbox.
  while (node.pool.mailbox_depths()[0] === 0) await new Promise((r) => setImmediate(r));
  await node.pool.terminate_worker(0);
  await Promise.all(calls);
  assert.is(outcomes.length, 300, 'every call settled');
  assert.ok(outcomes.every((o) => o === 'ok' || o === grpc.status.UNAVAILABLE), `only OK or UNAVAILABLE: ${[...new Set(outcomes)].join(',')}`);
  assert.ok(outcomes.includes(grpc.status.UNAVAILABLE), 'the calls in flight at the kill failed UNAVAILABLE');

  await node.pool.until_ready(0);
  for (const hold_id of acknowledged) {
    const r = await new Promise<{ released: boolean }>((resolve, reject) => c.release({ hold_id }, svc).then(resolve, reject));
    assert.equal(r, { released: true }, `acknowledged hold ${hold_id} survived the worker crash`);
  }
  const a = await c.availability({ event_id: 'evt-crash' }, svc);
  assert.is(a.held, '0');
  c.close();
  await node.stop();
  cleanup(dir);
});

test.run();

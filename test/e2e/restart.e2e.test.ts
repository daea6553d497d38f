// kill -9 of the server process: every acknowledged hold is there after restart, holds that
// expired while the node was down are expired at start and their InventoryHoldExpired event
// is in the durable outbox.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { partition_of } from '../../src/runtime/partition.js';
import { packr } from '../../src/runtime/codec.js';
import type { OutboxRecord } from '../../src/runtime/outbox.js';
import { PartitionStore } from '../../src/runtime/store.js';
import { outbox_entries } from '../runtime/store_helpers.js';
import { cleanup, clients, code_of, grpc, kill9, start_server, stop, temp_dir, token } from './harness.js';

const partitions = 8;
const event = {
  event_id: 'evt-restart', name: 'Restart test', starts_at_unix: '1811836800', currency: 'EUR', price_tiers: { A: '1000000' },
  sections: [{ name: '1', rows: [{ name: 'A', seats: 400, tier: 'A' }] }], max_seats_per_user: 4,
};

test('acknowledged holds survive kill -9 during load; expired-while-down holds expire at start', async () => {
  const dir = temp_dir('restart');
  let server = await start_server(dir, ['--workers', '1', '--partitions', String(partitions)]);
  let c = clients(server.grpc_port);
  const svc = token(dir, 'svc', 'service');
  const admin = token(dir, 'ops', 'admin');
  await c.create_event({ event }, admin);

  // Holds acknowledged before any load: one that will have expired after the restart.
  const short = await c.reserve({ event_id: 'evt-restart', seat_ids: ['1-A-1'], hold_ttl_seconds: 30, user_id: 'u-short' }, svc);
  const long = await c.reserve({ event_id: 'evt-restart', seat_ids: ['1-A-2'], hold_ttl_seconds: 3600, user_id: 'u-long' }, svc);

  // A stream of reservations, killed at a random point while calls are in flight.
  const acknowledged: { hold_id: string; seat: string }[] = [];
  const calls: Promise<void>[] = [];
  const kill_after = 20 + Math.floor(Math.random() * 150);
  let killed: Promise<void> | undefined;
  for (let i = 3; i <= 400; i++) {
    const seat = `1-A-${i}`;
    calls.push(c.reserve({ event_id: 'evt-restart', seat_ids: [seat], hold_ttl_seconds: 3600, user_id: `u${i}` }, svc).then(
      (hold: { hold_id: string }) => {
        acknowledged.push({ hold_id: hold.hold_id, seat });
        if (acknowledged.length === kill_after) killed = kill9(server);
      },
      () => undefined,
    ));
  }
  await Promise.all(calls);
  await (killed ?? kill9(server));
  c.close();
  assert.ok(acknowledged.length >= kill_after, 'load ran until the kill');

  // Restart one minute "later": the 30 s hold expired while the node was down.
  server = await start_server(dir, ['--workers', '1', '--test-clock', '--clock-offset-ms', '60000']);
  c = clients(server.grpc_port);
  const a = await c.availability({ event_id: 'evt-restart' }, svc);
  const free = new Set<string>(a.sections[0].free_seat_ids);
  for (const { seat } of acknowledged) assert.not.ok(free.has(seat), `acknowledged hold on ${seat} survived`);
  assert.ok(free.has('1-A-1'), 'the expired hold released its seat at start');
  assert.not.ok(free.has('1-A-2'), 'the long hold is still held');
  // Whatever was not acknowledged is either wholly there or wholly absent: counts agree.
  assert.is(Number(a.held) + Number(a.free) + Number(a.sold), 400);
  assert.ok(Number(a.held) >= acknowledged.length + 1);
  assert.equal(await c.release({ hold_id: short.hold_id }, svc), { released: false });
  assert.equal(await c.release({ hold_id: long.hold_id }, svc), { released: true });
  for (const { hold_id } of acknowledged.slice(0, 10)) assert.equal(await c.release({ hold_id }, svc), { released: true });
  c.close();
  assert.is(await stop(server), 0);

  // The expiry event is in the partition's durable outbox, exactly once.
  const store = new PartitionStore(partition_of('evt-restart', partitions), dir, 'test');
  const expired: OutboxRecord[] = [];
  for (const { record } of outbox_entries(store)) {
    if (record.type === 'InventoryHoldExpired') expired.push(record);
  }
  await store.close();
  assert.is(expired.length, 1);
  assert.is(expired[0]!.key, 'evt-restart');
  assert.is(expired[0]!.payload['hold_id'], short.hold_id);
  assert.is(expired[0]!.payload['event_id'], 'evt-restart');
  assert.match(String(expired[0]!.payload['trace_id']), /^[0-9a-f]{32}$/);
  cleanup(dir);
});

test('the partition count is fixed at creation', async () => {
  const dir = temp_dir('parts');
  const server = await start_server(dir, ['--partitions', '4', '--workers', '1']);
  assert.is(await stop(server), 0);
  const refused = await start_server(dir, ['--partitions', '8']).then(() => 'started', (e: Error) => e.message);
  assert.match(refused, 'fixed at creation');
  cleanup(dir);
});

test.run();
void code_of;
void grpc;

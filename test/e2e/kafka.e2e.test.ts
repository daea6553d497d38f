// Kafka end to end: a spawned `ticketing serve --kafka` against a real Apache Kafka broker
// (test/kafka/broker.ts). Every event reaches its topic, decodes with the protos, with the right
// key and headers and in per-key order; nothing is lost when the node is killed before the
// broker acknowledged, nor when the broker goes away in the middle of a stream of reservations
// (and no client call fails meanwhile); a consumer counting by event-id sees each event.
//
// The broker starts in guarded_setup: if it cannot be provisioned or started, every test fails
// with that reason (uvu would silently pass a suite whose `before` hook throws).
import { randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { dispose_broker, start_broker, type Broker } from '../kafka/broker.js';
import { start_consumer, type Consumer } from '../kafka/consume.js';
import {
  cleanup, clients, guarded_setup, kill9, start_server, stop, temp_dir, token, type Clients, type Guarded, type Server,
} from './harness.js';
import { assert_per_key_order, by_event_id, create_event, decode, metric, readyz, seat, topic, until, type Decoded } from './kafka_harness.js';
import { guarded_after, guarded_after_each } from '../guard.js';

interface Ctx extends Guarded { broker: Broker; dirs: string[]; servers: Server[]; consumers: Consumer[]; clients: Clients[] }
const t = suite<Ctx>('kafka e2e', { dirs: [], servers: [], consumers: [], clients: [] } as unknown as Ctx);

guarded_setup(t, async (ctx) => {
  ctx.broker = await start_broker();
});

// Whatever a test leaves running is stopped; the broker goes last.
guarded_after_each(t, async (ctx) => {
  for (const c of ctx.clients.splice(0)) c.close();
  for (const consumer of ctx.consumers.splice(0)) await consumer.stop().catch(() => undefined);
  for (const server of ctx.servers.splice(0)) if (server.process.exitCode === null && server.process.signalCode === null) await kill9(server);
  for (const dir of ctx.dirs.splice(0)) cleanup(dir);
});
guarded_after(t, async (ctx) => {
  await dispose_broker(ctx.broker);
});

async function node(ctx: Ctx, dir: string, extra: string[] = []): Promise<{ server: Server; c: Clients; svc: string; admin: string }> {
  const server = await start_server(dir, ['--kafka', ctx.broker.brokers, '--test-clock', '--workers', '2', '--partitions', '8', ...extra]);
  ctx.servers.push(server);
  const c = clients(server.grpc_port);
  ctx.clients.push(c);
  return { server, c, svc: token(dir, 'orders', 'service'), admin: token(dir, 'ops', 'admin') };
}

function fresh_dir(ctx: Ctx, name: string): string {
  const dir = temp_dir(name);
  ctx.dirs.push(dir);
  return dir;
}

async function consumer(ctx: Ctx, types: string[]): Promise<Consumer> {
  const started = await start_consumer(ctx.broker.brokers, types.map(topic));
  ctx.consumers.push(started);
  return started;
}

/** Events of these keys (Kafka keys) decoded, in consumption order. */
function events_of(consumer: Consumer, keys: Set<string>): Decoded[] {
  return consumer.messages.filter((m) => keys.has(m.key)).map(decode);
}

function traceparent(): { traceparent: string; trace_id: string } {
  const trace_id = randomBytes(16).toString('hex');
  return { traceparent: `00-${trace_id}-${randomBytes(8).toString('hex')}-01`, trace_id };
}

t('every HoldCreated, HoldReleased and InventoryHoldExpired arrives on its topic: decoded, keyed, with headers, in per-key order', async (ctx) => {
  const dir = fresh_dir(ctx, 'kafka-flow');
  const { server, c, svc, admin } = await node(ctx, dir);
  const event_ids = ['evt-k-a', 'evt-k-b', 'evt-k-c'];
  for (const id of event_ids) await create_event(c, admin, id);
  const holds: { hold_id: string; event_id: string; seats: string[]; trace_id: string; fate: 'release' | 'expire' | 'keep' }[] = [];
  for (let i = 0; i < 60; i++) {
    const event_id = event_ids[i % 3]!;
    const seats = [seat(2 * i), seat(2 * i + 1)];
    const fate = i % 3 === 0 ? 'release' : i % 3 === 1 ? 'expire' : 'keep';
    const tp = traceparent();
    const hold = await c.reserve({ event_id, seat_ids: seats, hold_ttl_seconds: fate === 'expire' ? 30 : 600, user_id: `u${i}` }, svc, { traceparent: tp.traceparent });
    holds.push({ hold_id: hold.hold_id, event_id, seats, trace_id: tp.trace_id, fate });
  }
  for (const h of holds.filter((h) => h.fate === 'release')) assert.equal(await c.release({ hold_id: h.hold_id }, svc), { released: true });
  await c.advance({ millis: 31_000 }, admin);

  const consume = await consumer(ctx, ['HoldCreated', 'HoldReleased', 'InventoryHoldExpired']);
  const want = { HoldCreated: 60, HoldReleased: 20, InventoryHoldExpired: 20 };
  const keys = new Set(event_ids);
  const count = (type: string) => new Set(events_of(consume, keys).filter((e) => e.type === type).map((e) => e.event_id)).size;
  await consume.until(() => Object.entries(want).every(([type, n]) => count(type) >= n));
  const events = events_of(consume, keys);
  const unique = by_event_id(events);
  for (const [type, n] of Object.entries(want)) assert.is(count(type), n, `${type} events`);
  assert.is(unique.size, 100);
  assert_per_key_order(events);

  for (const h of holds) {
    const created = [...unique.values()].find((e) => e.type === 'HoldCreated' && e.message['hold_id'] === h.hold_id);
    assert.ok(created !== undefined, `HoldCreated of ${h.hold_id}`);
    assert.is(created.key, h.event_id, 'key = event_id');
    assert.is(created.message['event_id'], h.event_id);
    assert.equal(created.message['seat_ids'], h.seats);
    assert.is(created.consumed.headers['trace-id'], h.trace_id, 'the caller\'s traceparent travels with its events');
    assert.ok(Number(created.message['expires_at_unix']) > Number(created.message['created_at_unix']));
    const ended = [...unique.values()].filter((e) => e.type !== 'HoldCreated' && e.message['hold_id'] === h.hold_id);
    const expected_end = h.fate === 'release' ? ['HoldReleased'] : h.fate === 'expire' ? ['InventoryHoldExpired'] : [];
    assert.equal(ended.map((e) => e.type), expected_end, `${h.hold_id} (${h.fate})`);
    for (const e of ended) {
      assert.is(e.key, h.event_id);
      assert.is(e.consumed.headers['trace-id'], h.trace_id);
    }
  }
  // The outbox drains: nothing pending once the broker has everything.
  assert.is(await until(() => metric(server.http_port, 'ticketing_outbox_pending'), (n) => n === 0), 0);
  assert.ok((await metric(server.http_port, 'ticketing_kafka_records_sent_total')) >= 100);
  // (publish errors may be above 0 here: a broker that just started refuses producer ids for a
  // moment while its coordinator loads; those sends are retried and counted, nothing more.)
  assert.equal(await readyz(server.http_port), { status: 200, text: 'ready\n' });
  assert.is(await stop(server), 0, 'SIGTERM exits 0 with the emitter running');
});

t('kill -9 after the events were committed, before the broker acknowledged: after restart every event is delivered', async (ctx) => {
  await ctx.broker.stop();
  const dir = fresh_dir(ctx, 'kafka-kill');
  const first = await node(ctx, dir);
  await create_event(first.c, first.admin, 'evt-k-kill');
  const hold_ids: string[] = [];
  for (let i = 0; i < 40; i++) {
    hold_ids.push((await first.c.reserve({ event_id: 'evt-k-kill', seat_ids: [seat(i)], hold_ttl_seconds: 600, user_id: `k${i}` }, first.svc)).hold_id);
  }
  // Acknowledged means committed, outbox entry included; the emitter has tried and failed.
  assert.is(await until(() => metric(first.server.http_port, 'ticketing_outbox_pending'), (n) => n === 40), 40);
  assert.ok(await until(() => metric(first.server.http_port, 'ticketing_kafka_publish_errors_total'), (n) => n >= 1) >= 1);
  await kill9(first.server);
  await ctx.broker.restart();

  const second = await node(ctx, dir);
  const consume = await consumer(ctx, ['HoldCreated']);
  const keys = new Set(['evt-k-kill']);
  const held = () => new Set(events_of(consume, keys).map((e) => String(e.message['hold_id'])));
  await consume.until(() => hold_ids.every((id) => held().has(id)));
  assert.equal([...held()].sort(), [...hold_ids].sort(), 'every acknowledged hold\'s event, none missing');
  const events = events_of(consume, keys);
  assert.is(by_event_id(events).size, 40, 'duplicates (if any) share their event-id');
  assert_per_key_order(events);
  assert.is(await until(() => metric(second.server.http_port, 'ticketing_outbox_pending'), (n) => n === 0), 0);
  assert.is(await stop(second.server), 0);
});

t('broker stopped in the middle of a stream of reservations: no call fails, /readyz says degraded, every event arrives after it returns', async (ctx) => {
  const dir = fresh_dir(ctx, 'kafka-outage');
  const { server, c, svc, admin } = await node(ctx, dir, ['--outbox-degraded-after', '1s']);
  const event_ids = ['evt-k-o1', 'evt-k-o2'];
  for (const id of event_ids) await create_event(c, admin, id, 20);
  const failures: unknown[] = [];
  const holds: string[] = [];
  let next = 0;
  const total = 400;
  // Four clients, each reserve then release; the broker is stopped, and known to be down, after
  // a quarter of them: the other three quarters run during the outage whatever the machine's
  // speed (started concurrently, a slow stop could let every call finish first).
  const calls = (until_i: number) => Promise.all(Array.from({ length: 4 }, async () => {
    while (next < until_i) {
      const i = next++;
      try {
        const hold = await c.reserve({ event_id: event_ids[i % 2]!, seat_ids: [seat(Math.floor(i / 2))], hold_ttl_seconds: 600, user_id: `o${i}` }, svc);
        holds.push(hold.hold_id);
        assert.equal(await c.release({ hold_id: hold.hold_id }, svc), { released: true });
      } catch (error) {
        failures.push(error);
      }
    }
  }));
  await calls(total / 4);
  await ctx.broker.stop();
  await calls(total);
  assert.equal(failures, [], 'no client call failed');
  assert.is(holds.length, total);
  // Events pile up; after --outbox-degraded-after the node says so (still ready: it serves).
  const degraded = await until(() => readyz(server.http_port), (r) => r.text.includes('degraded'));
  assert.is(degraded.status, 200);
  assert.match(degraded.text, /ready, degraded: oldest outbox event is [0-9]+ s old/);
  assert.ok((await metric(server.http_port, 'ticketing_outbox_pending')) > 0);
  assert.ok((await metric(server.http_port, 'ticketing_kafka_publish_errors_total')) >= 1);
  assert.ok((await metric(server.http_port, 'ticketing_outbox_lag_seconds')) >= 1);

  await ctx.broker.restart();
  const consume = await consumer(ctx, ['HoldCreated', 'HoldReleased']);
  const keys = new Set(event_ids);
  await consume.until(() => by_event_id(events_of(consume, keys)).size >= 2 * total);
  const events = events_of(consume, keys);
  const unique = by_event_id(events);
  // Consumer-side count by event-id: one HoldCreated and one HoldReleased per hold, no more.
  assert.is(unique.size, 2 * total);
  for (const type of ['HoldCreated', 'HoldReleased']) {
    const ids = [...unique.values()].filter((e) => e.type === type).map((e) => String(e.message['hold_id']));
    assert.equal(ids.sort(), [...holds].sort(), `one ${type} per hold`);
  }
  assert_per_key_order(events);
  assert.is(await until(() => metric(server.http_port, 'ticketing_outbox_pending'), (n) => n === 0), 0);
  assert.equal(await until(() => readyz(server.http_port), (r) => r.text === 'ready\n'), { status: 200, text: 'ready\n' });
  assert.is(await stop(server), 0);
});

t('a purchase: OrderConfirmed, PaymentCaptured and OrderRefunded keyed by order_id', async (ctx) => {
  const dir = fresh_dir(ctx, 'kafka-order');
  const { c, svc, admin } = await node(ctx, dir);
  await create_event(c, admin, 'evt-k-order');
  const order = await c.create_draft({ user_id: 'buyer', event_id: 'evt-k-order', seat_ids: [seat(0), seat(1)], promo_code: '', idempotency_key: '' }, svc);
  const amount = { amount_micros: '20000000', currency: 'EUR' };
  const auth = await c.authorize({ order_id: order.id, amount, payment_token: 'tok_visa' }, svc);
  assert.is(auth.status, 'AUTHORIZED');
  assert.is((await c.confirm_order({ order_id: order.id, payment_id: auth.payment_id }, svc)).status, 'CONFIRMED');
  await until(() => c.get_order({ order_id: order.id }, svc), (d) => d.payment_status === 'CAPTURED');
  const refund = await c.refund({ payment_id: auth.payment_id, amount: { amount_micros: '5000000', currency: 'EUR' } }, svc);

  const consume = await consumer(ctx, ['OrderConfirmed', 'PaymentCaptured', 'OrderRefunded']);
  const keys = new Set([order.id as string]);
  const types = () => new Set(events_of(consume, keys).map((e) => e.type));
  await consume.until(() => types().size === 3);
  const events = [...by_event_id(events_of(consume, keys)).values()];
  const of = (type: string) => events.filter((e) => e.type === type);
  assert.is(of('OrderConfirmed').length, 1, 'OrderConfirmed once');
  assert.equal(of('OrderConfirmed')[0]!.message['total'], amount);
  assert.is(of('OrderConfirmed')[0]!.message['user_id'], 'buyer');
  assert.is(of('PaymentCaptured').length, 1);
  assert.equal(of('PaymentCaptured')[0]!.message['amount'], amount);
  assert.is(of('OrderRefunded').length, 1);
  assert.is(of('OrderRefunded')[0]!.message['refund_id'], refund.refund_id);
  assert.is(of('OrderRefunded')[0]!.message['status'], 'PARTIALLY_REFUNDED');
  for (const e of events) assert.is(e.key, order.id);
});

t.run();

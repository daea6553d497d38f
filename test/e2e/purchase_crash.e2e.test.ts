// kill -9 of the server at random points during a stream of purchases (CreateDraft, Authorize,
// ConfirmOrder from many buyers at once), then a restart on the same data dir: every
// acknowledged step is there, nothing is half-applied (sold seats are exactly the seats of
// CONFIRMED orders, held seats exactly those of drafts, money captured exactly for confirmed
// orders), and captures the crash interrupted are finished by the settlement loop. The node
// emits to a real Kafka broker throughout: every confirmed order's OrderConfirmed reaches its
// topic, one event-id per order (a resend after a crash repeats the same event-id).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dispose_broker, start_broker, type Broker } from '../kafka/broker.js';
import { start_consumer } from '../kafka/consume.js';
import { cleanup, clients, start_server, stop, temp_dir, token, type Clients, type Server } from './harness.js';
import { decode, topic, until } from './kafka_harness.js';

const EVENT = 'evt-crash-purchase';
const PRICE = 25_000_000;
const SEATS = 200;
const BUYERS_PER_ROUND = 40;
const ROUNDS = 3;

interface Acked { user: string; seat: string; started?: boolean; finished?: boolean; order_id?: string; payment_id?: string; authorized?: boolean; confirmed?: boolean }

async function buy(c: Clients, bearer: string, a: Acked, round: number): Promise<void> {
  a.started = true;
  const order = await c.create_draft({ user_id: a.user, event_id: EVENT, seat_ids: [a.seat], promo_code: '', idempotency_key: `r${round}` }, bearer);
  a.order_id = order.id;
  const auth = await c.authorize({ order_id: order.id, amount: order.total, payment_token: 'tok_visa' }, bearer, { 'idempotency-key': `pay-${round}` });
  a.payment_id = auth.payment_id;
  a.authorized = auth.status === 'AUTHORIZED';
  const confirmed = await c.confirm_order({ order_id: order.id, payment_id: auth.payment_id }, bearer);
  a.confirmed = confirmed.status === 'CONFIRMED';
  a.finished = true;
}

test('kill -9 during purchases: acknowledged steps survive, nothing half-applied, captures finished, every OrderConfirmed on Kafka', async () => {
  const dir = temp_dir('purchase-crash');
  let server: Server | undefined;
  let c: Clients | undefined;
  let broker: Broker | undefined;
  try {
    broker = await start_broker();
    const serve_args = ['--workers', '2', '--partitions', '8', '--rate-user', '0', '--kafka', broker.brokers];
    server = await start_server(dir, serve_args);
    c = clients(server.grpc_port);
    const admin = token(dir, 'ops', 'admin');
    const svc = token(dir, 'orders', 'service');
    await c.create_event({ event: {
      event_id: EVENT, name: 'Crash test', starts_at_unix: '1900000000', currency: 'EUR', price_tiers: { A: String(PRICE) },
      sections: [{ name: '1', rows: [{ name: 'A', seats: SEATS, tier: 'A' }] }], max_seats_per_user: 4, promo_codes: [],
    } }, admin);
    const all: Acked[] = [];
    let seat = 1;
    for (let round = 0; round < ROUNDS; round++) {
      const buyers: Acked[] = [];
      for (let i = 0; i < BUYERS_PER_ROUND; i++) buyers.push({ user: `buyer-${round}-${i}`, seat: `1-A-${seat++}` });
      all.push(...buyers);
      // Buyers arrive spread over ~300 ms, so at the kill some are drafting, some paying, some
      // confirming, some done.
      const running = Promise.allSettled(buyers.map(async (b, i) => {
        await new Promise((r) => setTimeout(r, i * 8));
        await buy(c!, token(dir, b.user, 'customer'), b, round);
      }));
      // Kill once a random number of drafts is acknowledged while purchases are still under
      // way (a condition, not a sleep: on a busy machine a fixed delay may kill before anything
      // started or after everything finished, and the round would test nothing).
      const drafts_at_kill = 1 + Math.floor(Math.random() * (BUYERS_PER_ROUND / 2));
      const in_flight = () => buyers.filter((b) => b.started === true && b.finished !== true).length;
      const acked = () => buyers.filter((b) => b.order_id !== undefined).length;
      for (let i = 0; i < 100_000 && !(acked() >= drafts_at_kill && in_flight() > 0); i++) await new Promise((r) => setTimeout(r, 1));
      const cut = in_flight();
      server.process.kill('SIGKILL');
      assert.ok(cut > 0, `round ${round}: purchases were in flight at the kill`);
      await server.exited;
      await running;
      if (process.env['CRASH_DEBUG'] === '1') console.log(`round ${round}: drafts ${buyers.filter((b) => b.order_id).length}, authorized ${buyers.filter((b) => b.authorized).length}, confirmed ${buyers.filter((b) => b.confirmed).length} of ${buyers.length} acknowledged at the kill`);
      c.close();
      server = await start_server(dir, serve_args);
      c = clients(server.grpc_port);

      // Every acknowledged step is there.
      for (const a of all) {
        if (a.order_id === undefined) continue;
        const d = await c.get_order({ order_id: a.order_id }, svc);
        if (a.confirmed === true) assert.is(d.order.status, 'CONFIRMED', `acknowledged confirmation of ${a.order_id}`);
        if (a.authorized === true) assert.ok(['AUTHORIZED', 'CAPTURING', 'CAPTURED'].includes(d.payment_status) && d.payment_id !== '', `acknowledged authorization of ${a.order_id}: ${d.payment_status}`);
      }
      // Captures cut off by the crash are finished by the settlement loop.
      const capturing = (found: any[]): boolean => found.some((d) => d.payment_status === 'CAPTURING');
      const orders = await until(async () => {
        const found: any[] = [];
        for (const a of all) {
          const page = await c!.list_orders({ user_id: a.user, page_size: 100, page_token: '' }, svc);
          found.push(...page.orders);
        }
        return found;
      }, (found) => !capturing(found), 200);
      assert.not.ok(capturing(orders), 'no capture left in flight');
      // Nothing half-applied: seats and money agree with order statuses exactly.
      const confirmed = orders.filter((d: any) => d.order.status === 'CONFIRMED');
      const drafts = orders.filter((d: any) => d.order.status === 'DRAFT');
      const availability = await c.availability({ event_id: EVENT }, svc);
      assert.is(Number(availability.sold), confirmed.reduce((n: number, d: any) => n + d.seat_ids.length, 0), 'sold seats are exactly the seats of confirmed orders');
      assert.is(Number(availability.held), drafts.reduce((n: number, d: any) => n + d.seat_ids.length, 0), 'held seats are exactly the seats of drafts');
      for (const d of orders) {
        if (d.order.status === 'CONFIRMED') {
          assert.is(d.payment_status, 'CAPTURED', `confirmed order ${d.order.id} is paid`);
          assert.is(d.captured.amount_micros, String(PRICE));
        } else {
          assert.is(d.captured.amount_micros, '0', `no money for unconfirmed order ${d.order.id}`);
        }
      }
      // The stream goes on after the restart: the unfinished buyers complete their purchase.
      for (const a of all.filter((x) => x.order_id !== undefined && x.confirmed !== true)) {
        const bearer = token(dir, a.user, 'customer');
        const d = await c.get_order({ order_id: a.order_id }, bearer);
        if (d.order.status !== 'DRAFT') continue;
        // The same key as before the crash, as the server tells clients to do: a PENDING
        // authorization is completed, an acknowledged one is returned, none is made twice.
        const auth = await c.authorize({ order_id: a.order_id, amount: d.order.total, payment_token: 'tok_visa' }, bearer, { 'idempotency-key': `pay-${round}` });
        assert.is(auth.status, 'AUTHORIZED', `the same-key retry of ${a.order_id} after the crash authorizes`);
        if (a.payment_id !== undefined) assert.is(auth.payment_id, a.payment_id, 'an acknowledged authorization is the one returned');
        const done = await c.confirm_order({ order_id: a.order_id, payment_id: auth.payment_id }, bearer);
        assert.is(done.status, 'CONFIRMED');
        a.confirmed = true;
      }
    }
    const finished = all.filter((a) => a.confirmed === true).length;
    assert.ok(finished > 0, 'purchases completed');
    // Every confirmed order (acknowledged or not) has its OrderConfirmed on the topic, once per
    // event-id, with the order's user and total.
    const confirmed = new Map<string, any>();
    for (const a of all) {
      const page = await c.list_orders({ user_id: a.user, page_size: 100, page_token: '' }, svc);
      for (const d of page.orders) if (d.order.status === 'CONFIRMED') confirmed.set(d.order.id, d);
    }
    const consumer = await start_consumer(broker.brokers, [topic('OrderConfirmed')]);
    try {
      const keys = (m: { key: string }[]): Set<string> => new Set(m.map((x) => x.key));
      const messages = await consumer.until((m: { key: string }[]) => [...confirmed.keys()].every((id) => keys(m).has(id)));
      const events = messages.map(decode);
      const ids_by_order = new Map<string, Set<string>>();
      for (const e of events) {
        assert.is(e.key, e.message['order_id']);
        const d = confirmed.get(e.key);
        assert.ok(d !== undefined, `OrderConfirmed only for confirmed orders (${e.key})`);
        assert.is(e.message['user_id'], d.user_id);
        assert.is(String((e.message['total'] as { amount_micros: unknown }).amount_micros), String(PRICE));
        if (!ids_by_order.has(e.key)) ids_by_order.set(e.key, new Set());
        ids_by_order.get(e.key)!.add(e.event_id);
      }
      for (const id of confirmed.keys()) assert.is(ids_by_order.get(id)?.size, 1, `order ${id}: one OrderConfirmed event-id (duplicates only as resends)`);
    } finally {
      await consumer.stop();
    }
    assert.is(await stop(server), 0);
  } finally {
    await dispose_broker(broker);
    c?.close();
    if (server !== undefined && server.process.exitCode === null && server.process.signalCode === null) server.process.kill('SIGKILL');
    cleanup(dir);
  }
});

test.run();

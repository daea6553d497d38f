// ReturnSeats through the purchase flow (src/purchase/purchases.ts) over one in-process
// partition and the sandbox gateway, with crashes (a restart from the snapshot) between the
// decision and the gateway, and between the gateway and the settlement: the seats are back on
// sale at once, and the refund is made exactly once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { behaviour } from '../../src/actors/behaviour.js';
import { revive_domain_error } from '../../src/actors/errors.js';
import { check_invariants } from '../../src/actors/invariants.js';
import type { PartitionState } from '../../src/actors/partition_state.js';
import type { TicketingRequest } from '../../src/actors/protocol.js';
import { FraudSignalTracker } from '../../src/purchase/fraud_signals.js';
import { Purchases, type Caller } from '../../src/purchase/purchases.js';
import { SandboxGateway } from '../../src/purchase/sandbox_gateway.js';
import { Router } from '../../src/route/router.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { is_rejection } from '../../src/runtime/errors.js';
import { seeded_random_bytes } from '../../src/runtime/random.js';
import { restart, sample_spec, T0 } from '../actors/helpers.js';

const SEAT_MICROS = 50_000_000;
const alice: Caller = { user_id: 'alice', acting_user: 'alice' };
const bob: Caller = { user_id: 'bob', acting_user: 'bob' };
const service: Caller = { user_id: 'support', acting_user: null };

/** A node whose partition state a test can replace (restart) between calls. */
function node() {
  const clock = new ManualClock(T0);
  const random_bytes = seeded_random_bytes(11);
  const n = { clock, state: behaviour.create(0) as PartitionState };
  const request = async (_partition: number, body: TicketingRequest): Promise<unknown> => {
    let refusal: Error | undefined;
    try {
      const decision = behaviour.decide(n.state, body, { partition: 0, now_ms: clock.now_ms(), random_bytes });
      for (const record of decision.records) behaviour.apply(n.state, record);
      check_invariants(n.state);
      if (decision.refusal === undefined) return decision.reply;
      refusal = decision.refusal;
    } catch (error) {
      if (!is_rejection(error)) throw error;
      refusal = error;
    }
    throw revive_domain_error(refusal.name, refusal.message);
  };
  const route = new Router({ request }, 1);
  const gateway = new SandboxGateway();
  const quiet = { info() {}, warn() {} };
  const purchases = new Purchases(route, gateway, new FraudSignalTracker(new Set()), quiet, () => clock.now_ms());
  return Object.assign(n, { route, gateway, purchases });
}

type Node = ReturnType<typeof node>;

/** `caller` reserves `seats`, drafts from the hold, authorizes and confirms (captured). */
async function buy(n: Node, caller: Caller, seats: string[]) {
  const user_id = caller.user_id;
  const { hold_id } = await n.route.call('reserve', { event_id: 'evt-1', seat_ids: seats, hold_ttl_seconds: 0, user_id, trace_id: 't' });
  const order = await n.purchases.create_draft_from_hold({ hold_id, promo_code: '', idempotency_key: `d-${hold_id}` }, caller, 't');
  const auth = await n.purchases.authorize({ order_id: order.id, amount_micros: order.total.amount_micros, currency: 'EUR', token: 'tok_visa' }, caller, '', '10.0.0.1', 't');
  assert.is(auth.status, 'AUTHORIZED');
  assert.is((await n.purchases.confirm_order({ order_id: order.id, payment_id: auth.payment_id }, caller, 't')).status, 'CONFIRMED');
  return { order_id: order.id, payment_id: auth.payment_id };
}

async function shop(): Promise<Node> {
  const n = node();
  await n.route.call('create_event', { event_id: 'evt-1', spec: sample_spec() });
  return n;
}

test('ReturnSeats with a refund, the gateway up: the order says PARTIALLY_RETURNED, the money went back once', async () => {
  const n = await shop();
  const { order_id, payment_id } = await buy(n, alice, ['101-A-1', '101-A-2']);
  const req = { order_id, seat_ids: ['101-A-1'], refund_amount_micros: SEAT_MICROS, currency: 'EUR', idempotency_key: 'ret-1' };
  const details = await n.purchases.return_seats(req, service, 't');
  assert.equal([details.status, details.returned_seat_ids, details.refunded_micros], ['PARTIALLY_RETURNED', ['101-A-1'], SEAT_MICROS]);
  const retry = await n.purchases.return_seats(req, service, 't');
  assert.equal(retry, details, 'a retry answers the first result');
  assert.is(n.gateway.calls.refund, 1);
  assert.is(n.state.purchase.payments.get(payment_id)!.refunds.length, 1);
  assert.equal(await n.purchases.settle_open(), { due: 0, settled: 0 });
  const empty = await n.purchases.return_seats({ ...req, idempotency_key: '' }, service, 't').then(() => 'answered', (e: Error) => e.name);
  assert.is(empty, 'InvalidArgumentError');
});

test('a crash after the return, before the gateway: seats stay free (bob reserves one), the settlement loop refunds once', async () => {
  const n = await shop();
  const { order_id, payment_id } = await buy(n, alice, ['101-A-1', '101-A-2']);
  n.gateway.outage = true;
  const req = { order_id, seat_ids: [], refund_amount_micros: 2 * SEAT_MICROS, currency: 'EUR', idempotency_key: 'ret-all' };
  const failed = await n.purchases.return_seats(req, service, 't').then(() => 'answered', (e: Error) => e.name);
  assert.is(failed, 'GatewayUnavailableError');
  n.state = restart(n.state);
  check_invariants(n.state);
  assert.is(n.state.purchase.orders.get(order_id)!.status, 'RETURNED');
  const { hold_id } = await n.route.call('reserve', { event_id: 'evt-1', seat_ids: ['101-A-2'], hold_ttl_seconds: 0, user_id: 'bob', trace_id: 't' });
  assert.ok(hold_id.startsWith('hold_'));
  n.gateway.outage = false;
  assert.equal(await n.purchases.settle_open(), { due: 1, settled: 1 });
  const payment = n.state.purchase.payments.get(payment_id)!;
  assert.equal([payment.status, payment.refunded_micros, payment.refunds.length], ['REFUNDED', 2 * SEAT_MICROS, 1]);
  assert.is(n.gateway.entry(payment.refunds[0]!.refund_id)?.amount_micros, 2 * SEAT_MICROS);
  const retry = await n.purchases.return_seats(req, service, 't');
  assert.equal([retry.status, retry.payment_status, retry.refunded_micros], ['RETURNED', 'REFUNDED', 2 * SEAT_MICROS]);
  assert.equal(await n.purchases.settle_open(), { due: 0, settled: 0 }, 'nothing more is owed');
});

test('a crash after the gateway refunded, before it was settled: the loop calls again with the same reference; one refund', async () => {
  const n = await shop();
  const { order_id, payment_id } = await buy(n, alice, ['101-A-1']);
  const r = await n.route.call('return_seats', { order_id, seat_ids: [], refund_amount_micros: 1_000_000, currency: 'EUR', idempotency_key: 'scoped-key', trace_id: 't' });
  assert.is(r.k, 'call');
  if (r.k !== 'call') return;
  await n.gateway.refund({ reference: r.refund_id, gateway_ref: r.gateway_ref, amount_micros: r.amount_micros });
  n.state = restart(n.state);
  assert.equal(await n.purchases.settle_open(), { due: 1, settled: 1 });
  assert.is(n.gateway.calls.refund, 2, 'called again after the crash');
  const payment = n.state.purchase.payments.get(payment_id)!;
  assert.equal([payment.refunded_micros, payment.refunds.length, payment.status], [1_000_000, 1, 'PARTIALLY_REFUNDED']);
  assert.is(n.state.purchase.orders.get(order_id)!.status, 'RETURNED');
  // The seat went back on sale and bob buys it; alice's order keeps saying RETURNED.
  await buy(n, bob, ['101-A-1']);
  assert.is(n.state.purchase.orders.get(order_id)!.status, 'RETURNED');
  check_invariants(n.state);
});

test.run();

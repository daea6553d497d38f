// The purchase flow (src/purchase/purchases.ts) over one in-process partition (decide + apply,
// as a worker does, without threads or LMDB) and the sandbox gateway: paths the model test
// reaches rarely, pinned down.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { behaviour } from '../../src/actors/behaviour.js';
import { OrderStateError, revive_domain_error } from '../../src/actors/errors.js';
import { check_invariants } from '../../src/actors/invariants.js';
import type { PartitionState } from '../../src/actors/partition_state.js';
import type { TicketingRequest } from '../../src/actors/protocol.js';
import { FraudSignalTracker } from '../../src/purchase/fraud_signals.js';
import { Purchases, type Caller } from '../../src/purchase/purchases.js';
import { Router } from '../../src/route/router.js';
import { SandboxGateway } from '../../src/purchase/sandbox_gateway.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { is_rejection } from '../../src/runtime/errors.js';
import { seeded_random_bytes } from '../../src/runtime/random.js';
import { sample_spec, T0 } from '../actors/helpers.js';

function node() {
  const clock = new ManualClock(T0);
  const random_bytes = seeded_random_bytes(7);
  const state = behaviour.create(0) as PartitionState;
  const request = async (_partition: number, body: TicketingRequest): Promise<unknown> => {
    let refusal: Error | undefined;
    try {
      const decision = behaviour.decide(state, body, { partition: 0, now_ms: clock.now_ms(), random_bytes });
      // As the host does: a refusal's records are applied (and journaled) all the same.
      for (const record of decision.records) behaviour.apply(state, record);
      check_invariants(state);
      if (decision.refusal === undefined) return decision.reply;
      refusal = decision.refusal;
    } catch (error) {
      if (!is_rejection(error)) throw error; // a bug would kill the worker: fail the test
      refusal = error;
    }
    throw revive_domain_error(refusal.name, refusal.message);
  };
  const route = new Router({ request }, 1);
  const gateway = new SandboxGateway();
  const quiet = { info() {}, warn() {} };
  const purchases = new Purchases(route, gateway, new FraudSignalTracker(new Set()), quiet, () => clock.now_ms());
  return { clock, state, route, gateway, purchases };
}

const alice: Caller = { user_id: 'alice', acting_user: 'alice' };
const service: Caller = { user_id: 'support', acting_user: null };

async function bought(n: ReturnType<typeof node>, promo_code = '') {
  await n.route.call('create_event', { event_id: 'evt-1', spec: sample_spec({ promo_codes: [{ code: 'FREE', percent_off: 100, amount_off_micros: 0, max_uses: 0, valid_until_unix: 0 }] }) });
  const order = await n.purchases.create_draft({ event_id: 'evt-1', seat_ids: ['101-A-1'], user_id: 'alice', promo_code, idempotency_key: '' }, 't');
  const auth = await n.purchases.authorize({ order_id: order.id, amount_micros: order.total.amount_micros, currency: 'EUR', token: 'tok_visa' }, alice, '', '10.0.0.1', 't');
  assert.is(auth.status, 'AUTHORIZED');
  assert.is((await n.purchases.confirm_order({ order_id: order.id, payment_id: auth.payment_id }, alice, 't')).status, 'CONFIRMED');
  return { order, payment_id: auth.payment_id };
}

test('a refund finished by the settlement loop after an outage: a retry with its key gets that result, and no second refund', async () => {
  const n = node();
  const { payment_id } = await bought(n);
  n.gateway.outage = true;
  const failed = await n.purchases.refund({ payment_id, amount_micros: 10_000_000, currency: 'EUR' }, service, 'refund-1', 't').then(() => 'answered', (e: Error) => e.name);
  assert.is(failed, 'GatewayUnavailableError');
  n.gateway.outage = false;
  assert.equal(await n.purchases.settle_open(), { due: 1, settled: 1 });
  const payment = n.state.purchase.payments.get(payment_id)!;
  assert.equal([payment.status, payment.refunded_micros], ['PARTIALLY_REFUNDED', 10_000_000]);
  const calls = n.gateway.calls.refund;
  const retry = await n.purchases.refund({ payment_id, amount_micros: 10_000_000, currency: 'EUR' }, service, 'refund-1', 't');
  assert.equal(retry, { refund_id: payment.refunds[0]!.refund_id, status: 'PARTIALLY_REFUNDED' });
  assert.is(n.gateway.calls.refund, calls, 'the retry refunded nothing more');
  assert.is(n.state.purchase.payments.get(payment_id)!.refunded_micros, 10_000_000);
});

test('a free order (100 % promo) authorizes 0, confirms and sells its seat; a refund of 0 is refused', async () => {
  const n = node();
  const { order, payment_id } = await bought(n, 'FREE');
  assert.is(order.total.amount_micros, 0);
  assert.is(n.state.purchase.payments.get(payment_id)!.status, 'CAPTURED');
  assert.is(n.state.events.get('evt-1')!.sold, 1);
  const zero = await n.purchases.refund({ payment_id, amount_micros: 0, currency: 'EUR' }, service, '', 't').then(() => 'answered', (e: Error) => e.name);
  assert.is(zero, 'InvalidArgumentError');
});

test('an order cancelled while the gateway authorizes: Authorize is refused OrderStateError, and the journaled void is made', async () => {
  const n = node();
  await n.route.call('create_event', { event_id: 'evt-1', spec: sample_spec() });
  const order = await n.purchases.create_draft({ event_id: 'evt-1', seat_ids: ['101-A-1'], user_id: 'alice', promo_code: '', idempotency_key: '' }, 't');
  const hold_id = n.state.purchase.orders.get(order.id)!.hold_id;
  const authorize = n.gateway.authorize.bind(n.gateway);
  n.gateway.authorize = async (call) => {
    // The buyer releases the seats while the gateway is answering.
    assert.equal(await n.route.call('release', { hold_id, actor_user_id: 'alice' }), { released: true });
    return authorize(call);
  };
  const refused = await n.purchases.authorize({ order_id: order.id, amount_micros: order.total.amount_micros, currency: 'EUR', token: 'tok_visa' }, alice, '', '10.0.0.1', 't')
    .then(() => undefined, (e: unknown) => e);
  assert.instance(refused, OrderStateError, 'the same class a thrown refusal revives to');
  const payment = n.state.purchase.payments.get(n.state.purchase.orders.get(order.id)!.payment_ids[0]!)!;
  assert.is(payment.status, 'VOIDING', 'the authorization and its void were journaled with the refusal');
  assert.equal(await n.purchases.settle_open(), { due: 1, settled: 1 });
  assert.is(n.state.purchase.payments.get(payment.payment_id)!.status, 'VOIDED');
});

test.run();

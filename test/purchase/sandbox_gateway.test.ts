// The sandbox gateway decides by token and treats a repeated reference as the same operation.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GatewayUnavailableError } from '../../src/purchase/errors.js';
import { SandboxGateway } from '../../src/purchase/sandbox_gateway.js';

const call = (reference: string, token: string) => ({ reference, amount_micros: 10, currency: 'EUR', token });

test('tokens decide: visa and mastercard approve, declines say why, timeout is unavailable', async () => {
  const g = new SandboxGateway();
  assert.is((await g.authorize(call('p1', 'tok_visa'))).approved, true);
  assert.is((await g.authorize(call('p2', 'tok_mastercard'))).approved, true);
  assert.equal(await g.authorize(call('p3', 'tok_chargeDeclined')), { approved: false, reason: 'card declined' });
  assert.equal(await g.authorize(call('p4', 'tok_insufficientFunds')), { approved: false, reason: 'insufficient funds' });
  await g.authorize(call('p5', 'tok_gatewayTimeout')).then(() => assert.unreachable(), (e) => assert.instance(e, GatewayUnavailableError));
  const unknown = await g.authorize(call('p6', 'tok_bogus'));
  assert.is(unknown.approved, false);
});

test('a repeated reference is the same authorization; a void by reference pre-empts a late authorize', async () => {
  const g = new SandboxGateway();
  const first = await g.authorize(call('p1', 'tok_visa'));
  assert.equal(await g.authorize(call('p1', 'tok_chargeDeclined')), first);
  await g.void({ reference: 'late', gateway_ref: '', amount_micros: 0 });
  assert.is((await g.authorize(call('late', 'tok_visa'))).approved, false);
  assert.is(g.entry('late')!.voided, true);
});

test('outage: every call fails as unavailable until it ends', async () => {
  const g = new SandboxGateway();
  g.outage = true;
  for (const f of [() => g.authorize(call('p', 'tok_visa')), () => g.capture({ reference: 'p', gateway_ref: '', amount_micros: 1 }), () => g.refund({ reference: 'r', gateway_ref: '', amount_micros: 1 })]) {
    await f().then(() => assert.unreachable(), (e) => assert.instance(e, GatewayUnavailableError));
  }
  g.outage = false;
  await g.refund({ reference: 'r', gateway_ref: 'x', amount_micros: 5 });
  await g.refund({ reference: 'r', gateway_ref: 'x', amount_micros: 5 });
  assert.is(g.entry('r')!.amount_micros, 5, 'a retried refund is one refund');
});

test.run();

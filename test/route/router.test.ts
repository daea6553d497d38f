// The routing table of src/route/router.ts: each request kind reaches the partition that owns
// it (an event's by hash of its id, an issued id's by the partition it encodes), the worker gets
// `{ k, ...request }`, and a malformed id is refused naming its field. The last block holds
// compile-time checks: `npm run build` fails if any of them stops being a type error.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { handlers } from '../../src/actors/behaviour.js';
import { InvalidArgumentError } from '../../src/actors/errors.js';
import { no_signals } from '../../src/actors/fraud.js';
import { make_id } from '../../src/actors/ids.js';
import type { TicketingProtocol, TicketingRequest } from '../../src/actors/protocol.js';
import type { PartitionRecord } from '../../src/actors/inventory.js';
import type { PartitionState } from '../../src/actors/partition_state.js';
import { read, type Handlers } from '../../src/runtime/behaviour.js';
import { partition_of } from '../../src/runtime/partition.js';
import { Router, type BroadcastKind, type RoutedKind } from '../../src/route/router.js';

const PARTITIONS = 8;

/** A sink that records where each body went and answers with `answer`. */
function recording(answer: unknown = 'answer') {
  const sent: [number, TicketingRequest][] = [];
  const sink = {
    request(partition: number, body: TicketingRequest): Promise<unknown> {
      sent.push([partition, body]);
      return Promise.resolve(answer);
    },
  };
  return { sent, router: new Router(sink, PARTITIONS) };
}

const random = (n: number): Uint8Array => new Uint8Array(16).fill(n);
const hold_5 = make_id('hold', 5, random(1));
const order_6 = make_id('order', 6, random(2));
const pay_7 = make_id('pay', 7, random(3));
const ticket_4 = make_id('ticket', 4, random(4));

test('event kinds go to the partition the event id hashes to; the body is { k, ...request }', async () => {
  const { sent, router } = recording();
  const event_id = 'evt-route';
  const expected = partition_of(event_id, PARTITIONS);
  await router.call('get_event', { event_id });
  await router.call('availability', { event_id, section: '' });
  await router.call('create_event', { event_id, spec: { event_id } });
  await router.call('reserve', { event_id, seat_ids: ['101-A-1'], hold_ttl_seconds: 0, user_id: 'u', trace_id: 't' });
  await router.call('create_draft', { event_id, seat_ids: [], user_id: 'u', promo_code: '', idempotency_key: '', trace_id: 't' });
  assert.equal(sent.map(([p]) => p), [expected, expected, expected, expected, expected]);
  assert.equal(sent[1], [expected, { k: 'availability', event_id, section: '' }]);
  assert.equal(sent.map(([, body]) => body.k), ['get_event', 'availability', 'create_event', 'reserve', 'create_draft']);
  // Another event id lands elsewhere for at least one of a few ids (the hash is not constant).
  const others = ['evt-a', 'evt-b', 'evt-c', 'evt-d'].map((id) => partition_of(id, PARTITIONS));
  assert.ok(others.some((p) => p !== expected), 'event ids spread over partitions');
});

test('id kinds go to the partition their issued id encodes, each by its own field', async () => {
  const { sent, router } = recording();
  await router.call('release', { hold_id: hold_5, actor_user_id: null });
  await router.call('confirm', { hold_id: hold_5, order_id: 'o-1' });
  await router.call('score', { order_id: order_6, user_id: 'u', signals: no_signals });
  await router.call('confirm_order', { order_id: order_6, payment_id: pay_7, actor_user_id: null, trace_id: '' });
  await router.call('get_order', { order_id: order_6, actor_user_id: null });
  await router.call('authorize_end', { payment_id: pay_7, outcome: { approved: false, reason: 'no' } });
  await router.call('capture', { payment_id: pay_7, actor_user_id: null });
  await router.call('refund_begin', { payment_id: pay_7, amount_micros: 1, currency: 'EUR', idempotency_key: '', trace_id: '' });
  await router.call('settle', { action: 'captured', payment_id: pay_7, refund_id: '', idempotency_key: '' });
  await router.call('begin_void', { payment_id: pay_7 });
  assert.equal(sent.map(([p]) => p), [5, 5, 6, 6, 6, 7, 7, 7, 7, 7]);
  assert.equal(sent[5], [7, { k: 'authorize_end', payment_id: pay_7, outcome: { approved: false, reason: 'no' } }]);
});

test('a malformed id, an id of another kind, or a partition this node lacks: InvalidArgumentError naming the field, nothing sent', () => {
  const { sent, router } = recording();
  const refusal = (fn: () => unknown): string => {
    try {
      fn();
    } catch (error) {
      assert.instance(error, InvalidArgumentError);
      return (error as Error).message;
    }
    throw new Error('expected a refusal');
  };
  assert.match(refusal(() => router.call('capture', { payment_id: 'nope', actor_user_id: null })), 'payment_id is not a valid pay id');
  assert.match(refusal(() => router.call('capture', { payment_id: order_6, actor_user_id: null })), 'payment_id is not a valid pay id');
  assert.match(refusal(() => router.call('get_order', { order_id: pay_7, actor_user_id: null })), 'order_id is not a valid order id');
  assert.match(refusal(() => router.call('release', { hold_id: make_id('hold', PARTITIONS, random(4)), actor_user_id: null })), 'hold_id names a partition this node does not have');
  assert.equal(sent, []);
});

test('a queue ticket routes to the partition its id encodes (the waiting room)', async () => {
  const { sent, router } = recording();
  await router.call('queue_position', { ticket_id: ticket_4, actor_user_id: null });
  await router.call('join_queue', { event_id: 'evt-q', user_id: 'u', device_id: 'd', trace_id: '' });
  assert.equal(sent[0], [4, { k: 'queue_position', ticket_id: ticket_4, actor_user_id: null }]);
  assert.is(sent[1]![0], partition_of('evt-q', PARTITIONS));
  assert.throws(() => router.call('queue_position', { ticket_id: hold_5, actor_user_id: null }),
    /ticket_id is not a valid ticket id/);
});

test('broadcast kinds are asked of one named partition at a time', async () => {
  const { sent, router } = recording([]);
  for (let p = 0; p < PARTITIONS; p++) await router.call_partition(p, 'open_settlements', { limit: 10 });
  await router.call_partition(3, 'list_orders', { user_id: 'u', before_ms: 9, before_order_id: '', limit: 5 });
  assert.equal(sent.map(([p]) => p), [0, 1, 2, 3, 4, 5, 6, 7, 3]);
  assert.equal(sent[8], [3, { k: 'list_orders', user_id: 'u', before_ms: 9, before_order_id: '', limit: 5 }]);
  assert.throws(() => router.call_partition(PARTITIONS, 'list_orders', { user_id: 'u', before_ms: 9, before_order_id: '', limit: 5 }), /partition of this node/);
});

test('every kind the partition handles is routed or broadcast, and the reply comes back as sent', async () => {
  const broadcast: string[] = ['list_orders', 'open_settlements', 'pace_queues'] satisfies BroadcastKind[];
  const { router } = recording({ released: true });
  for (const kind of Object.keys(handlers)) {
    if (broadcast.includes(kind)) continue;
    // owner_of reads the routing table: a kind missing from it would throw reading its owner.
    const request = {
      event_id: 'evt-x', hold_id: hold_5, order_id: order_6, payment_id: pay_7, ticket_id: ticket_4,
    };
    assert.type(router.owner_of(kind as RoutedKind, request), 'number', kind);
  }
  assert.equal(await router.call('release', { hold_id: hold_5, actor_user_id: null }), { released: true });
});

// ---------------------------------------------------------------------------------------------
// compile-time checks: each line marked below must stay a type error (tsc fails on an expect-
// error directive with no error under it). Never called; tsc checks the body all the same.

export function type_checks(router: Router): void {
  // @ts-expect-error a broadcast kind has no single owner: call_partition it
  void router.call('list_orders', { user_id: 'u', before_ms: 0, before_order_id: '', limit: 1 });
  // @ts-expect-error a routed kind goes by its owner, not a chosen partition
  void router.call_partition(0, 'capture', { payment_id: pay_7, actor_user_id: null });
  // @ts-expect-error the request misses a field of its kind (outcome)
  void router.call('authorize_end', { payment_id: pay_7 });
  void (async () => {
    // @ts-expect-error the reply is typed by kind: release answers { released }, not a hold
    const reply: TicketingProtocol['reserve']['reply'] = await router.call('release', { hold_id: hold_5, actor_user_id: null });
    return reply;
  });
  type Table = Handlers<PartitionState, TicketingProtocol, PartitionRecord>;
  // @ts-expect-error a handler whose reply drifts from the protocol map does not compile
  const drifted: Table['capture'] = (_state, request) => read({ k: 'done', payment_id: request.payment_id, status: 'DONE' });
  void drifted;
}

test.run();

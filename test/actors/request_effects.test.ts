// request_effects.ts: the cluster answers a 'read' kind under its lease, unfenced, so a read must
// journal nothing. Each read kind goes through behaviour.decide (which asserts it) on a partition
// with an event, a hold and a sale, and must leave no record and no event.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { behaviour } from '../../src/actors/behaviour.js';
import type { TicketingRequest } from '../../src/actors/protocol.js';
import { is_read_kind, request_effects } from '../../src/actors/request_effects.js';
import { Harness } from './helpers.js';

function prepared(): Harness {
  const h = new Harness();
  h.create_event();
  const hold = h.reserve('u1', ['101-A-1']);
  h.confirm(hold.reply!.hold_id, 'order-1');
  h.reserve('u2', ['101-A-2']);
  return h;
}

const reads: TicketingRequest[] = [
  { k: 'get_event', event_id: 'evt-1' },
  { k: 'availability', event_id: 'evt-1', section: '' },
  { k: 'list_orders', user_id: 'u1', before_ms: 0, before_order_id: '', limit: 10 },
  { k: 'open_settlements', limit: 10 },
  { k: 'watch_changes', event_id: 'evt-1', epoch: '', since_version: 0 },
];

test('every read kind is exercised here, and each journals nothing', () => {
  const named = Object.entries(request_effects).filter(([, e]) => e === 'read').map(([k]) => k);
  // get_order needs an order of the purchase path, the queue reads a queue: their handlers are
  // read() like the others, and behaviour.decide's assertion covers them wherever their own
  // tests call them through it.
  const elsewhere = ['get_order', 'queue_position', 'queue_fairness'];
  assert.equal(named.filter((k) => !elsewhere.includes(k)).sort(), reads.map((r) => r.k).sort());
  for (const request of reads) {
    const h = prepared();
    const decision = behaviour.decide(h.state, request, h.ctx());
    assert.equal([decision.records.length, decision.outbox.length], [0, 0], request.k);
  }
});

test('is_read_kind: the table\'s reads only, never a prototype name or a non-string', () => {
  assert.not.ok(is_read_kind('reserve'));
  assert.ok(is_read_kind('get_event'));
  for (const odd of ['toString', '__proto__', '', undefined, 7, null]) assert.not.ok(is_read_kind(odd));
  const h = prepared();
  const reserve: TicketingRequest = {
    k: 'reserve', event_id: 'evt-1', seat_ids: ['101-A-3'], hold_ttl_seconds: 0, user_id: 'u3',
    trace_id: 't',
  };
  // A reserve journals: were it classified a read, behaviour.decide's assertion would throw here.
  assert.ok(behaviour.decide(h.state, reserve, h.ctx()).records.length > 0);
});

test.run();

// Outbox record -> Kafka message: topic, key, headers, and a value that decodes with the protos
// (decoded here with @grpc/proto-loader's protobufjs from the same files, as a consumer would).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import protobuf from 'protobufjs';
import { join } from 'node:path';
import { content_type, EventCodec } from '../../src/kafka/encode.js';
import { proto_root } from '../../src/grpc/proto.js';
import type { OutboxRecord } from '../../src/runtime/outbox.js';

const codec = new EventCodec();

function consumer_decode(full_name: string, bytes: Uint8Array): Record<string, unknown> {
  const root = new protobuf.Root();
  root.resolvePath = (_o, target) => join(proto_root, target);
  root.loadSync(['ticketing/events/v1/events.proto', 'ticketing/events/v1/lifecycle.proto'], { keepCase: true });
  const type = root.lookupType(full_name);
  return type.toObject(type.decode(bytes), { longs: String, defaults: true });
}

function record(type: string, key: string, payload: Record<string, unknown>): OutboxRecord {
  return { type, key, payload, event_id: 'node1-p3-42', created_ms: 1_800_000_000_000 };
}

test('every event type of the protos is known, seed and lifecycle', () => {
  assert.equal(codec.known_types(), [
    'HoldCreated', 'HoldExtended', 'HoldReleased', 'InventoryHoldExpired', 'OrderConfirmed', 'OrderExpired', 'OrderRefunded',
    'OrderSeatsReturned', 'PaymentCaptured', 'QueueAdmitted', 'QueueJoined',
  ]);
});

test('the waiting room: QueueJoined and QueueAdmitted, keyed by event, topics by name', () => {
  const joined = { event_id: 'evt-1', ticket_id: 'ticket_3_x', seq: 2 ** 40, joined_at_unix: 1_800_000_000, early: true };
  const e1 = codec.to_message(record('QueueJoined', 'evt-1', joined), 'prod.');
  assert.is(e1.topic, 'prod.ticketing.events.v1.QueueJoined');
  assert.is(e1.key, 'evt-1');
  assert.equal(consumer_decode('ticketing.events.v1.QueueJoined', e1.value), {
    ...joined, seq: String(2 ** 40), joined_at_unix: '1800000000',
  });
  const admitted = { event_id: 'evt-1', from_position: 1, to_position: 100, admitted_total: 100, admitted_at_unix: 1_800_000_060 };
  const e2 = codec.to_message(record('QueueAdmitted', 'evt-1', admitted), '');
  assert.is(e2.topic, 'ticketing.events.v1.QueueAdmitted');
  assert.equal(codec.decode('QueueAdmitted', e2.value), {
    event_id: 'evt-1', from_position: '1', to_position: '100', admitted_total: '100', admitted_at_unix: '1800000060',
  });
});

test('InventoryHoldExpired: topic, key, headers, value', () => {
  const payload = { hold_id: 'hold_3_x', event_id: 'evt-1', expired_at_unix: 1_800_000_000, trace_id: 'trace-1' };
  const event = codec.to_message(record('InventoryHoldExpired', 'evt-1', payload), '');
  assert.is(event.topic, 'ticketing.events.v1.InventoryHoldExpired');
  assert.is(event.key, 'evt-1');
  assert.equal(event.headers, { 'event-id': 'node1-p3-42', 'trace-id': 'trace-1', 'content-type': 'application/x-protobuf' });
  assert.is(content_type, 'application/x-protobuf');
  assert.equal(consumer_decode('ticketing.events.v1.InventoryHoldExpired', event.value), { ...payload, expired_at_unix: '1800000000' });
});

test('OrderConfirmed with Money; OrderRefunded; HoldCreated with repeated seats; with a prefix', () => {
  const confirmed = { order_id: 'ord_1', user_id: 'u', total: { amount_micros: 2 ** 53 - 1, currency: 'EUR' }, confirmed_at_unix: 1, trace_id: 't' };
  const e1 = codec.to_message(record('OrderConfirmed', 'ord_1', confirmed), 'prod.');
  assert.is(e1.topic, 'prod.ticketing.events.v1.OrderConfirmed');
  assert.equal(consumer_decode('ticketing.events.v1.OrderConfirmed', e1.value), {
    ...confirmed, total: { amount_micros: String(2 ** 53 - 1), currency: 'EUR' }, confirmed_at_unix: '1',
  });
  const refunded = {
    order_id: 'ord_1', payment_id: 'pay_1', refund_id: 'ref_1', amount: { amount_micros: 5, currency: 'EUR' },
    refunded_total: { amount_micros: 7, currency: 'EUR' }, status: 'PARTIALLY_REFUNDED', refunded_at_unix: 9, trace_id: 't',
  };
  const decoded = consumer_decode('ticketing.events.v1.OrderRefunded', codec.to_message(record('OrderRefunded', 'ord_1', refunded), '').value);
  assert.equal(decoded['refunded_total'], { amount_micros: '7', currency: 'EUR' });
  assert.is(decoded['status'], 'PARTIALLY_REFUNDED');
  const hold = { hold_id: 'h', event_id: 'e', user_id: 'u', seat_ids: ['1-A-1', '1-A-2'], expires_at_unix: 2, created_at_unix: 1, trace_id: 't' };
  const e3 = codec.to_message(record('HoldCreated', 'e', hold), '');
  assert.equal(consumer_decode('ticketing.events.v1.HoldCreated', e3.value)['seat_ids'], ['1-A-1', '1-A-2']);
  assert.equal(codec.decode('HoldCreated', e3.value), { ...hold, expires_at_unix: '2', created_at_unix: '1' });
});

test('no trace_id: the header is empty, never missing', () => {
  const event = codec.to_message(record('HoldReleased', 'e', { hold_id: 'h', event_id: 'e', released_at_unix: 1 }), '');
  assert.is(event.headers['trace-id'], '');
});

test('unknown type and a payload that does not fit are refused typed', () => {
  for (const type of ['Nope', 'ticketing.events.v1.HoldCreated', 'holdCreated', '', 'Money', 42 as unknown as string]) {
    try {
      codec.to_message(record(type, 'k', {}), '');
      assert.unreachable(`${String(type)} accepted`);
    } catch (error) {
      assert.is((error as Error).name, 'UnknownEventTypeError', String(type));
    }
  }
  try {
    codec.to_message(record('HoldCreated', 'k', { seat_ids: 'not-a-list' }), '');
    assert.unreachable('bad payload accepted');
  } catch (error) {
    assert.is((error as Error).name, 'InvalidEventPayloadError');
    assert.match((error as Error).message, 'seat_ids');
  }
});

test.run();

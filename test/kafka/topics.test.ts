import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidBrokerListError, InvalidTopicPrefixError } from '../../src/kafka/errors.js';
import { check_topic_prefix, parse_brokers, topic_name_length_max, topic_of } from '../../src/kafka/topics.js';

const throws_named = (fn: () => unknown, name: string, match?: RegExp): void => {
  try {
    fn();
  } catch (error) {
    assert.is((error as Error).name, name);
    if (match !== undefined) assert.match((error as Error).message, match);
    return;
  }
  assert.unreachable(`expected ${name}`);
};

test('topic = prefix + the message full name', () => {
  assert.is(topic_of('', 'OrderConfirmed'), 'ticketing.events.v1.OrderConfirmed');
  assert.is(topic_of('', 'InventoryHoldExpired'), 'ticketing.events.v1.InventoryHoldExpired');
  assert.is(topic_of('staging.', 'HoldCreated'), 'staging.ticketing.events.v1.HoldCreated');
});

test('prefix: Kafka topic characters only, and room left for the longest event name', () => {
  for (const ok of ['', 'a.', 'team-a_1.']) assert.is(check_topic_prefix(ok), ok);
  throws_named(() => check_topic_prefix('a/b'), 'InvalidTopicPrefixError', /letters, digits/);
  throws_named(() => check_topic_prefix('spaced out'), 'InvalidTopicPrefixError');
  throws_named(() => check_topic_prefix('x'.repeat(topic_name_length_max)), 'InvalidTopicPrefixError', /at most/);
  // The class callers catch is the one thrown (a renamed plain Error would pass throws_named).
  assert.throws(() => check_topic_prefix('a/b'), (e: unknown) => e instanceof InvalidTopicPrefixError);
});

test('broker list: HOST:PORT[,HOST:PORT...]', () => {
  assert.equal(parse_brokers('127.0.0.1:9092'), ['127.0.0.1:9092']);
  assert.equal(parse_brokers(' kafka-1:9092, kafka-2.example:19092 ,'), ['kafka-1:9092', 'kafka-2.example:19092']);
  assert.equal(parse_brokers('[::1]:9092'), ['[::1]:9092']);
  for (const bad of ['', ',', 'kafka', 'kafka:0', 'kafka:70000', 'kafka:9092;rm', 'http://kafka:9092']) {
    throws_named(() => parse_brokers(bad), 'InvalidBrokerListError');
  }
  // The class callers catch is the one thrown (a renamed plain Error would pass throws_named).
  assert.throws(() => parse_brokers('kafka'), (e: unknown) => e instanceof InvalidBrokerListError);
});

test.run();

// A hung broker (frozen with SIGSTOP: the TCP connection stays open, nothing answers) is
// reported as failing once a send in flight passes --kafka-send-unanswered-max-ms (default
// 5 s), not when kafkajs gives up, which takes (retries + 1) × the request timeout: 45 s with
// the defaults this test keeps. A spawned `ticketing serve --kafka` and a real broker.
//
// The broker starts inside the test (a throwing `before` hook would make uvu pass silently).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dispose_broker, start_broker, type Broker } from '../kafka/broker.js';
import { start_consumer, type Consumer } from '../kafka/consume.js';
import { cleanup, clients, kill9, start_server, stop, temp_dir, token, type Clients, type Server } from './harness.js';
import { by_event_id, create_event, decode, metric, readyz, seat, topic, until } from './kafka_harness.js';

test('a frozen broker: /readyz says failing and the send is counted while it is still unanswered; all delivered once it resumes', async () => {
  let broker: Broker | undefined;
  let server: Server | undefined;
  let c: Clients | undefined;
  let consumer: Consumer | undefined;
  let frozen = false;
  const dir = temp_dir('kafka-hung');
  try {
    broker = await start_broker();
    server = await start_server(dir, ['--kafka', broker.brokers, '--test-clock', '--workers', '1', '--partitions', '2', '--outbox-degraded-after', '1s']);
    const port = server.http_port;
    c = clients(server.grpc_port);
    const svc = token(dir, 'orders', 'service');
    await create_event(c, token(dir, 'ops', 'admin'), 'evt-k-hung');
    await c.reserve({ event_id: 'evt-k-hung', seat_ids: [seat(0)], hold_ttl_seconds: 600, user_id: 'h0' }, svc);
    // Delivered: the producer is connected and the topic exists before the broker freezes.
    assert.is(await until(() => metric(port, 'ticketing_kafka_records_sent_total'), (n) => n >= 1), 1);

    // A send may have failed before (the first one, while the new topic's leader is elected).
    // (Or was slow enough to count as unanswered, on a busy machine.) Counted from here.
    const errors_before = await metric(port, 'ticketing_kafka_publish_errors_total');
    const unanswered_before = await metric(port, 'ticketing_kafka_sends_unanswered_total');
    process.kill(broker.pid!, 'SIGSTOP');
    frozen = true;
    await c.reserve({ event_id: 'evt-k-hung', seat_ids: [seat(1)], hold_ttl_seconds: 600, user_id: 'h1' }, svc);
    const failing = await until(() => readyz(port), (r) => r.text.includes('kafka sends failing'));
    // Read right after: the send is still in flight (kafkajs answers only after 3 × 15 s).
    const unanswered = await metric(port, 'ticketing_kafka_sends_unanswered_total');
    const errors = await metric(port, 'ticketing_kafka_publish_errors_total');
    assert.is(failing.status, 200, 'still ready: it serves');
    assert.match(failing.text, /ready, degraded: oldest outbox event is [0-9]+ s old .*; kafka sends failing: a send of 1 records is unanswered after 5000 ms/);
    assert.is(unanswered - unanswered_before, 1, 'the unanswered send is counted');
    assert.is(errors - errors_before, 1, `and counted once as a failed send (${errors_before} before the freeze)`);

    process.kill(broker.pid!, 'SIGCONT');
    frozen = false;
    assert.equal(await until(() => readyz(port), (r) => r.text === 'ready\n'), { status: 200, text: 'ready\n' });
    consumer = await start_consumer(broker.brokers, [topic('HoldCreated')]);
    const events = () => consumer!.messages.filter((m) => m.key === 'evt-k-hung').map(decode);
    await consumer.until(() => by_event_id(events()).size >= 2);
    assert.is(by_event_id(events()).size, 2, 'both holds are on the topic');
    assert.is(await stop(server), 0);
  } finally {
    if (frozen && broker?.pid !== undefined) process.kill(broker.pid, 'SIGCONT');
    c?.close();
    await consumer?.stop().catch(() => undefined);
    if (server !== undefined && server.process.exitCode === null && server.process.signalCode === null) await kill9(server);
    await dispose_broker(broker);
    cleanup(dir);
  }
});

test.run();

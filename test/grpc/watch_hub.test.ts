// The WatchAvailability hub (src/grpc/watch_hub.ts) against a real partition state read through
// a fake router: one poller per event, each update encoded once for every stream, late streams
// get the hub's picture, slow readers and the stream cap end in RESOURCE_EXHAUSTED errors,
// polling stops with the last stream, poll errors and shutdown end the streams.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { watch_changes, type WatchChangesRequest } from '../../src/actors/change_log.js';
import { WatchReaderTooSlowError, WatchStreamsExceededError } from '../../src/grpc/errors.js';
import {
  WatchHub, type AvailabilityUpdateWire, type WatchConfig, type WatchSink,
} from '../../src/grpc/watch_hub.js';
import { Metrics } from '../../src/ops/metrics.js';
import { seeded_random_bytes } from '../../src/runtime/random.js';
import { Harness, sample_seat_ids } from '../actors/helpers.js';

const ids = sample_seat_ids();

interface Rig {
  h: Harness;
  hub: WatchHub;
  metrics: Metrics;
  calls: WatchChangesRequest[];
  encoded: AvailabilityUpdateWire[];
  /** When set, the next poll fails with it. */
  fail: { error: Error | undefined };
}

function rig(over: Partial<WatchConfig> = {}): Rig {
  const h = new Harness();
  h.create_event();
  const random = seeded_random_bytes(3);
  const calls: WatchChangesRequest[] = [];
  const encoded: AvailabilityUpdateWire[] = [];
  const fail: { error: Error | undefined } = { error: undefined };
  const source = {
    call: async (_kind: 'watch_changes', request: WatchChangesRequest) => {
      calls.push(request);
      if (fail.error !== undefined) throw fail.error;
      return watch_changes(h.state, request, random);
    },
  };
  const metrics = new Metrics();
  const config = { watch_interval_ms: 1, watch_stream_backlog_max: 2, watch_streams_max: 100, ...over };
  const hub = new WatchHub(source, config, metrics, (update) => {
    encoded.push(update);
    return Buffer.from(JSON.stringify({ n: encoded.length }));
  });
  return { h, hub, metrics, calls, encoded, fail };
}

class Sink implements WatchSink {
  readonly messages: Buffer[] = [];
  ended: Error | 'ok' | undefined;
  accept = true;
  write(message: Buffer): boolean {
    assert.is(this.ended, undefined, 'no write after the end');
    this.messages.push(message);
    return this.accept;
  }
  end(error?: Error): void {
    assert.is(this.ended, undefined, 'ended once');
    this.ended = error ?? 'ok';
  }
}

async function until(what: string, condition: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !condition(); i++) await new Promise((r) => setTimeout(r, 2));
  assert.ok(condition(), `timed out waiting for: ${what}`);
}

async function ended_count(metrics: Metrics, reason: string): Promise<number> {
  const got = await metrics.watch_streams_ended.get();
  return got.values.find((v) => v.labels['reason'] === reason)?.value ?? 0;
}

async function gauge(metrics: Metrics): Promise<number> {
  return (await metrics.watch_streams.get()).values[0]?.value ?? -1;
}

test('fan-out: one poller per event, each update encoded once and written to every stream', async () => {
  const r = rig();
  const sinks = [new Sink(), new Sink(), new Sink()];
  const handles = sinks.map((s) => r.hub.subscribe('evt-1', s));
  assert.is(r.hub.events_watched(), 1);
  await until('the whole picture', () => sinks.every((s) => s.messages.length === 1));
  assert.is(r.encoded.length, 1, 'the picture was encoded once');
  assert.ok(r.encoded[0]!.full);
  assert.is(r.encoded[0]!.seat_states.length, 39);
  for (const s of sinks) assert.is(s.messages[0], sinks[0]!.messages[0], 'the same bytes');
  r.h.reserve('u1', [ids[0]!, ids[7]!]);
  await until('the change', () => sinks.every((s) => s.messages.length === 2));
  assert.is(r.encoded.length, 2, 'the change was encoded once');
  const change = r.encoded[1]!;
  assert.is(change.full, false);
  assert.equal(change.changed_seats.sort((a, b) => a - b), [0, 7]);
  assert.equal([...change.changed_states], [1, 1]);
  assert.is(change.held, '2');
  for (const s of sinks) assert.is(s.messages[1], sinks[0]!.messages[1]);
  // A late stream gets the hub's current picture, encoded once for all who join at a version.
  const late = [new Sink(), new Sink()];
  late.forEach((s) => handles.push(r.hub.subscribe('evt-1', s)));
  assert.is(late[0]!.messages.length, 1, 'at once, from the hub\'s picture');
  assert.is(late[1]!.messages[0], late[0]!.messages[0]);
  const picture = r.encoded[2]!;
  assert.ok(picture.full);
  assert.is(picture.version, change.version);
  assert.is(picture.seat_states[7], 1, 'the picture includes the change');
  assert.is(r.encoded.length, 3);
  assert.is(await gauge(r.metrics), 5);
  handles.forEach((h) => h.closed());
  assert.is(await gauge(r.metrics), 0);
  assert.is(await ended_count(r.metrics, 'client'), 5);
});

test('a stream that does not drain gets watch_stream_backlog_max more messages, then it ends', async () => {
  const r = rig({ watch_stream_backlog_max: 2 });
  const slow = new Sink();
  const fine = new Sink();
  slow.accept = false;
  r.hub.subscribe('evt-1', slow);
  r.hub.subscribe('evt-1', fine);
  await until('the picture', () => fine.messages.length === 1);
  for (let n = 0; slow.ended === undefined && n < 20; n++) {
    const before = fine.messages.length;
    r.h.reserve(`u${n}`, [ids[n]!]);
    await until(`change ${n}`, () => fine.messages.length > before);
  }
  assert.instance(slow.ended, WatchReaderTooSlowError);
  assert.match(String((slow.ended as Error).message), /read the WatchAvailability stream too slowly/);
  assert.is(slow.messages.length, 3, 'the write that found it full, then 2 more, no more');
  assert.is(await ended_count(r.metrics, 'slow'), 1);
  assert.is(fine.ended, undefined, 'the other stream goes on');
  assert.is(r.hub.streams(), 1);
  r.hub.close();
});

test('a lone slow stream ended by a poll\'s fan-out stops its poller', async () => {
  const r = rig({ watch_stream_backlog_max: 0 });
  const slow = new Sink();
  slow.accept = false;
  r.hub.subscribe('evt-1', slow);
  await until('the picture', () => slow.messages.length === 1);
  r.h.reserve('u1', [ids[0]!]);
  await until('ended at the next message', () => slow.ended !== undefined);
  assert.instance(slow.ended, WatchReaderTooSlowError);
  assert.is(r.hub.events_watched(), 0, 'no poller is left (and none was rescheduled)');
  assert.is(r.hub.streams(), 0);
});

test('a drain empties the backlog: a reader that catches up is kept', async () => {
  const r = rig({ watch_stream_backlog_max: 1 });
  const sink = new Sink();
  sink.accept = false;
  const handle = r.hub.subscribe('evt-1', sink);
  await until('the picture', () => sink.messages.length === 1);
  for (let n = 0; n < 5; n++) {
    const before = sink.messages.length;
    r.h.reserve(`u${n}`, [ids[n]!]);
    await until(`change ${n}`, () => sink.messages.length > before);
    handle.drained(); // and it is full again at the next write
  }
  assert.is(sink.ended, undefined);
  assert.is(sink.messages.length, 6);
  r.hub.close();
  assert.instance(sink.ended, Error);
  assert.is(await ended_count(r.metrics, 'shutdown'), 1);
});

test('watch_streams_max: one more stream is refused, a freed place is taken again', async () => {
  const r = rig({ watch_streams_max: 2 });
  const a = r.hub.subscribe('evt-1', new Sink());
  r.hub.subscribe('evt-1', new Sink());
  assert.throws(() => r.hub.subscribe('evt-1', new Sink()),
    (e: Error) => e instanceof WatchStreamsExceededError && /watch_streams_max 2/.test(e.message));
  assert.is(await ended_count(r.metrics, 'limit'), 1);
  a.closed();
  r.hub.subscribe('evt-1', new Sink());
  assert.is(r.hub.streams(), 2);
  r.hub.close();
});

test('the last stream closing stops the polling; a new stream starts it again', async () => {
  const r = rig();
  const sinks = [new Sink(), new Sink()];
  const handles = sinks.map((s) => r.hub.subscribe('evt-1', s));
  await until('a few polls', () => r.calls.length >= 5);
  handles[0]!.closed();
  const polls = r.calls.length;
  await until('still polling for the other stream', () => r.calls.length >= polls + 3);
  handles[1]!.closed();
  assert.is(r.hub.events_watched(), 0);
  const stopped_at = r.calls.length;
  // 50 intervals of 1 ms (at least): no poll happens with no stream open.
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(r.calls.length <= stopped_at + 1, 'at most the poll in flight when it closed');
  assert.is(await gauge(r.metrics), 0);
  const again = new Sink();
  const from = r.calls.length;
  r.hub.subscribe('evt-1', again);
  await until('a picture again', () => again.messages.length === 1);
  assert.is(r.calls[from]!.epoch, '', 'a new poller starts from nothing');
  r.hub.close();
});

test('a failed poll ends the event\'s streams with its error; other events go on', async () => {
  const r = rig();
  const gone = new Sink();
  r.hub.subscribe('evt-none', gone);
  await until('the poll fails', () => gone.ended !== undefined);
  assert.is((gone.ended as Error).name, 'EventNotFoundError');
  assert.is(await ended_count(r.metrics, 'error'), 1);
  const ok = new Sink();
  r.hub.subscribe('evt-1', ok);
  await until('picture', () => ok.messages.length === 1);
  r.fail.error = new Error('partition not served');
  await until('the poll fails', () => ok.ended !== undefined);
  assert.is((ok.ended as Error).message, 'partition not served');
  assert.is(r.hub.streams(), 0);
  assert.is(r.hub.events_watched(), 0);
});

test('close: every stream ends (shutdown), new ones are refused', async () => {
  const r = rig();
  const sinks = [new Sink(), new Sink()];
  r.hub.subscribe('evt-1', sinks[0]!);
  r.hub.subscribe('evt-2', sinks[1]!);
  r.hub.close();
  for (const s of sinks) assert.is((s.ended as Error).name, 'ShuttingDownError');
  assert.is(await ended_count(r.metrics, 'shutdown'), 2);
  assert.throws(() => r.hub.subscribe('evt-1', new Sink()), /shutting down/);
  assert.is(await gauge(r.metrics), 0);
});

test.run();

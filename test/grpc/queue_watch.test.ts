// WatchPosition's streams (src/grpc/queue_watch.ts) against a fake partition and fake sinks:
// a message on every change and none without one, the end after `used`, the stream cap, a
// slow reader ended after watch_stream_backlog_max messages, a failed read ending the stream,
// and shutdown.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { QueuePosition, QueuePositionRequest } from '../../src/actors/queue.js';
import { QueueWatchStreamsExceededError, WatchReaderTooSlowError } from '../../src/grpc/errors.js';
import { QueueWatch, type QueueWatchConfig } from '../../src/grpc/queue_watch.js';
import { ShuttingDownError } from '../../src/runtime/errors.js';

const base: QueuePosition = {
  ticket_id: 'ticket_0_x', event_id: 'e', position: 5, admitted: false, admission_token: '',
  admission_expires_at_ms: 0, estimated_wait_seconds: 60, drawn: true, used: false, admitted_count: 0,
};

interface Rig {
  watch: QueueWatch; counts: number[]; set(p: Partial<QueuePosition>): void; fail(e: Error): void;
  reads(): number;
}

function rig(over: Partial<QueueWatchConfig> = {}): Rig {
  let current: QueuePosition = { ...base };
  let failure: Error | undefined;
  let reads = 0;
  const counts: number[] = [];
  const source = {
    call: async (_kind: 'queue_position', _req: QueuePositionRequest) => {
      reads++;
      if (failure !== undefined) throw failure;
      return { ...current };
    },
  };
  const config = { queue_watch_interval_ms: 1, queue_watch_streams_max: 10, watch_stream_backlog_max: 2, ...over };
  return {
    watch: new QueueWatch(source, config, (n) => counts.push(n)), counts,
    set: (p) => { current = { ...current, ...p }; }, fail: (e) => { failure = e; }, reads: () => reads,
  };
}

interface Sink { written: QueuePosition[]; ended: (Error | undefined)[]; full: boolean }

function sink(): Sink & { write(p: QueuePosition): boolean; end(e?: Error): void } {
  const s = {
    written: [] as QueuePosition[], ended: [] as (Error | undefined)[], full: false,
    write(p: QueuePosition) { s.written.push(p); return !s.full; },
    end(e?: Error) { s.ended.push(e); },
  };
  return s;
}

const request = { ticket_id: 'ticket_0_x', actor_user_id: 'u' };
const until = async (what: string, ok: () => boolean): Promise<void> => {
  for (let i = 0; i < 1000 && !ok(); i++) await new Promise((r) => setTimeout(r, 2));
  assert.ok(ok(), what);
};

test('the first read is written, then only changes; a used token ends the stream OK', async () => {
  const r = rig();
  const s = sink();
  r.watch.subscribe(request, s);
  await until('first message', () => s.written.length === 1);
  const reads = r.reads();
  await until('more reads', () => r.reads() >= reads + 5);
  assert.is(s.written.length, 1, 'no message without a change');
  r.set({ admitted: true, admission_token: 'at1.t', admitted_count: 5, position: 5 });
  await until('the admission', () => s.written.length === 2);
  assert.is(s.written[1]!.admission_token, 'at1.t');
  r.set({ used: true, admission_token: '' });
  await until('the end', () => s.ended.length === 1);
  assert.equal(s.ended, [undefined], 'ended OK');
  assert.is(s.written[2]!.used, true);
  assert.is(r.watch.open(), 0);
  const after = r.reads();
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.is(r.reads(), after, 'no read after the end');
});

test('queue_watch_streams_max: one more is refused; a closed stream frees its place', async () => {
  const r = rig({ queue_watch_streams_max: 2 });
  const a = r.watch.subscribe(request, sink());
  r.watch.subscribe(request, sink());
  assert.throws(() => r.watch.subscribe(request, sink()),
    (e: Error) => e instanceof QueueWatchStreamsExceededError && /queue_watch_streams_max 2/.test(e.message));
  a.closed();
  assert.is(r.watch.open(), 1);
  r.watch.subscribe(request, sink());
  assert.is(r.watch.open(), 2);
  assert.equal(r.counts.slice(-3), [2, 1, 2]);
  r.watch.close();
});

test('a reader that does not drain is ended after watch_stream_backlog_max messages', async () => {
  const r = rig({ watch_stream_backlog_max: 2 });
  const s = sink();
  s.full = true;
  r.watch.subscribe(request, s);
  for (let n = 1; n <= 4 && s.ended.length === 0; n++) {
    r.set({ estimated_wait_seconds: 60 - n });
    await until(`change ${n} seen`, () => s.written.length > n || s.ended.length > 0);
  }
  assert.is(s.ended.length, 1);
  assert.ok(s.ended[0] instanceof WatchReaderTooSlowError);
  assert.is(s.written.length, 3, 'the first message, then two more while blocked');
  assert.is(r.watch.open(), 0);
});

test('a drained reader gets every change again', async () => {
  const r = rig({ watch_stream_backlog_max: 1 });
  const s = sink();
  s.full = true;
  const h = r.watch.subscribe(request, s);
  await until('first', () => s.written.length === 1);
  s.full = false;
  h.drained();
  for (let n = 1; n <= 5; n++) {
    r.set({ estimated_wait_seconds: 60 - n });
    await until(`change ${n}`, () => s.written.length === n + 1);
  }
  assert.is(s.ended.length, 0);
  r.watch.close();
});

test('a failed read ends the stream with its error; shutdown ends the rest UNAVAILABLE', async () => {
  const r = rig();
  const s = sink();
  r.watch.subscribe(request, s);
  await until('first', () => s.written.length === 1);
  const t = sink();
  r.watch.subscribe(request, t);
  await until('second stream first', () => t.written.length === 1);
  r.watch.close();
  assert.ok(s.ended[0] instanceof ShuttingDownError && t.ended[0] instanceof ShuttingDownError);
  assert.throws(() => r.watch.subscribe(request, sink()), (e: Error) => e instanceof ShuttingDownError);
  const r2 = rig();
  const u = sink();
  r2.fail(new Error('gone'));
  r2.watch.subscribe(request, u);
  await until('ended', () => u.ended.length === 1);
  assert.is(u.ended[0]?.message, 'gone');
  assert.is(r2.watch.open(), 0);
});

test.run();

// The partition's pace (pace_queues, issue 16 §1): the admission governor scales every queue's
// rate without touching the admin's; a tick admits at floor(rate × pace_pct / 100); the pace is
// journaled only when it changes, folds what was due at the old pace, and survives a restart.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { T0 } from './helpers.js';
import { EVENT, fingerprint, MINUTE_MS, QueueHarness, refused, with_queue } from './queue_helpers.js';

const OPEN = T0 + MINUTE_MS;
const START = T0 + 10 * MINUTE_MS;

/** n early joiners, then the clock at the sale start (the draw). */
function drawn_with(h: QueueHarness, n: number): void {
  h.advance_to(OPEN);
  for (let i = 0; i < n; i++) {
    h.call('join_queue', { event_id: EVENT, user_id: `u${i}`, device_id: 'd', trace_id: 't' });
  }
  h.advance_to(START);
}

function pace(h: QueueHarness, pace_pct: number) {
  return h.call('pace_queues', { pace_pct, trace_id: 't' });
}

test('paced to 50 a tick admits half; back to 100 the full rate; the admin\'s rate untouched', () => {
  const h = with_queue({ admit_per_minute: 120 }); // 2 buyers a second
  drawn_with(h, 100);
  const queue = h.state.queues.by_event.get(EVENT)!;
  h.advance(1000);
  assert.is(queue.admitted, 2, 'the admin\'s rate');
  assert.equal(pace(h, 50), { pace_pct: 50, changed: true });
  h.advance(10_000);
  assert.is(queue.admitted, 2 + 10, 'half: 1 a second');
  const fairness = h.call('queue_fairness', { event_id: EVENT });
  assert.is(fairness.admit_per_minute, 120, 'the admin\'s rate is what it was');
  assert.is(fairness.pace_pct, 50);
  assert.is(queue.settings.admit_per_minute, 120);
  const journal = h.journal.length;
  assert.equal(pace(h, 50), { pace_pct: 50, changed: false });
  assert.is(h.journal.length, journal, 'the same pace again journals nothing');
  pace(h, 100);
  h.advance(10_000);
  assert.is(queue.admitted, 12 + 20, 'full rate again');
  assert.is(h.call('queue_fairness', { event_id: EVENT }).pace_pct, 100);
  h.check();
});

test('a pace change folds what was due at the old pace; the estimate follows the pace', () => {
  const h = with_queue({ admit_per_minute: 60 });
  drawn_with(h, 50);
  const queue = h.state.queues.by_event.get(EVENT)!;
  h.now += 3000; // 3 buyers due at the full rate; the timer has not run
  pace(h, 10); // 6/min from here
  assert.is(queue.admitted, 3, 'the 3 s before the change at the old pace');
  const records = h.journal.length;
  h.advance(10_000);
  assert.is(queue.admitted, 4, '6/min: one buyer in 10 s');
  assert.ok(h.journal.length > records);
  // 60/min paced to 1 %: 0.6/min floors to 1/min, never to a pause.
  pace(h, 1);
  const far = h.call('join_queue', { event_id: EVENT, user_id: 'late', device_id: 'd', trace_id: 't' });
  const pos = h.call('queue_position', { ticket_id: far.ticket_id, actor_user_id: null });
  assert.is(pos.estimated_wait_seconds, (51 - queue.admitted) * 60, 'at 1/min');
  for (const bad of [0, 101, 50.5, -1]) {
    assert.is(refused(h, () => pace(h, bad)).name, 'InvalidArgumentError', String(bad));
  }
  h.check();
});

test('the pace survives kill -9: from a snapshot, from the journal alone, and in a snapshot', () => {
  const h = with_queue({ admit_per_minute: 120 });
  drawn_with(h, 100);
  h.take_snapshot(); // before the pace: the journal after it carries queue_paced
  pace(h, 50);
  h.advance(4000);
  const live = fingerprint(h.state);
  h.restart('snapshot');
  assert.is(h.state.queues.pace_pct, 50, 'snapshot + journal');
  assert.ok(fingerprint(h.state).equals(live));
  h.restart('journal');
  assert.is(h.state.queues.pace_pct, 50, 'journal alone');
  assert.ok(fingerprint(h.state).equals(live));
  h.take_snapshot(); // while paced: the snapshot carries it
  h.restart('snapshot');
  assert.is(h.state.queues.pace_pct, 50, 'a snapshot taken while paced');
  const queue = h.state.queues.by_event.get(EVENT)!;
  const before = queue.admitted;
  h.advance(4000);
  assert.is(queue.admitted, before + 4, 'still half after the restart');
  h.check();
});

test('a partition with no queue records the pace; a new queue admits at it', () => {
  const h = new QueueHarness();
  assert.equal(h.call('pace_queues', { pace_pct: 50, trace_id: 't' }), { pace_pct: 50, changed: true });
  assert.is(h.state.queues.pace_pct, 50);
  h.restart('journal');
  assert.is(h.state.queues.pace_pct, 50);
});

test.run();

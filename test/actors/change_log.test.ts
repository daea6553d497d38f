// WatchAvailability's change log (src/actors/change_log.ts): a whole picture first and whenever
// the watcher's epoch is not the log's or its version is older than the ring keeps; otherwise
// the seats changed since, each once with its current state; counts always equal
// GetAvailability's.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { handlers } from '../../src/actors/behaviour.js';
import { watch_changes, type WatchChangesReply } from '../../src/actors/change_log.js';
import { SEAT_FREE, SEAT_HELD, SEAT_SOLD } from '../../src/actors/partition_state.js';
import { decide_reserve_ga } from '../../src/actors/selection.js';
import { seeded_random_bytes } from '../../src/runtime/random.js';
import { Harness, replied, restart, sample_seat_ids, sample_spec, step } from './helpers.js';

const ids = sample_seat_ids();
const random = seeded_random_bytes(7);

function read(h: Harness, epoch = '', since_version = 0): WatchChangesReply {
  return watch_changes(h.state, { event_id: 'evt-1', epoch, since_version }, random);
}

function full(reply: WatchChangesReply): Extract<WatchChangesReply, { full: true }> {
  if (!reply.full) throw new Error('expected a whole picture');
  return reply;
}

function changes(reply: WatchChangesReply): Extract<WatchChangesReply, { full: false }> {
  if (reply.full) throw new Error('expected changes');
  return reply;
}

/** The reply's counts in GetAvailability's shape (without the free seat ids). */
function same_counts(h: Harness, reply: WatchChangesReply): void {
  const a = h.availability();
  assert.equal({ free: reply.counts.free, held: reply.counts.held, sold: reply.counts.sold },
    { free: a.free, held: a.held, sold: a.sold });
  assert.equal(reply.counts.sections,
    a.sections.map((s) => ({ name: s.name, free: s.free, held: s.held, sold: s.sold })));
  assert.equal(reply.counts.areas, [], 'the sample event has no standing areas');
}

test('the first read is a whole picture: every seat (a copy), counts as GetAvailability', () => {
  const h = new Harness();
  h.create_event();
  const { reply: hold } = h.reserve('u1', [ids[0]!, ids[30]!]);
  h.confirm(hold.hold_id, 'order-1');
  h.reserve('u2', [ids[38]!]);
  const r = full(read(h));
  assert.is(r.epoch.length, 16, 'the log is named by 8 random bytes');
  assert.is(r.version, 5, 'two seats held (2), then sold (2); one more held (1)');
  assert.is(r.seat_count, 39);
  assert.equal([...r.seat_states], [...h.state.events.get('evt-1')!.seat_state]);
  assert.is.not(r.seat_states.buffer, h.state.events.get('evt-1')!.seat_state.buffer, 'a copy');
  assert.is(r.seat_states[0], SEAT_SOLD);
  assert.is(r.seat_states[38], SEAT_HELD);
  same_counts(h, r);
  assert.is(full(read(h)).epoch, r.epoch, 'the epoch stays while the log does');
});

test('changes since a version: each changed seat once, with its current state', () => {
  const h = new Harness();
  h.create_event();
  const first = full(read(h));
  const { reply: a } = h.reserve('u1', [ids[1]!, ids[2]!]);
  h.release(a.hold_id, 'u1');
  h.reserve('u2', [ids[2]!]); // seat 2: held, free, held again
  const r = changes(read(h, first.epoch, first.version));
  assert.is(r.version, first.version + 5);
  const got = [...r.changed].map((index, i) => [index, r.states[i]]).sort((x, y) => x[0]! - y[0]!);
  assert.equal(got, [[1, SEAT_FREE], [2, SEAT_HELD]], 'deduplicated, current states');
  same_counts(h, r);
  const none = changes(read(h, r.epoch, r.version));
  assert.is(none.changed.length, 0, 'nothing since the latest version');
  assert.is(none.version, r.version);
});

test('more changes than the ring keeps: a whole picture; exactly as many: still changes', () => {
  const h = new Harness();
  h.create_event();
  const first = full(read(h));
  const ring = h.state.events.get('evt-1')!.changes!.ring.length;
  assert.is(ring, 39, 'the ring is as long as the event has places (below the cap)');
  let changed = 0;
  for (let user = 0; changed < ring; user++) {
    const { reply } = h.reserve(`u${user}`, [ids[5]!]);
    h.release(reply.hold_id, `u${user}`);
    changed += 2;
  }
  // 40 changes: one more than the ring keeps.
  assert.is(changed, 40);
  const overflowed = full(read(h, first.epoch, first.version));
  assert.is(overflowed.version, first.version + 40);
  same_counts(h, overflowed);
  // From version 1 on, 39 changes are needed: the ring has them all.
  const kept = changes(read(h, first.epoch, first.version + 1));
  assert.equal([...kept.changed], [5]);
  assert.equal([...kept.states], [SEAT_FREE]);
});

test('a rebuilt state (restart from a snapshot) has another epoch: the watcher gets a picture', () => {
  const h = new Harness();
  h.create_event();
  h.reserve('u1', [ids[3]!]);
  const before = full(read(h));
  h.state = restart(h.state);
  const after = full(read(h, before.epoch, before.version));
  assert.is.not(after.epoch, before.epoch);
  assert.equal([...after.seat_states], [...before.seat_states]);
  same_counts(h, after);
  h.reserve('u1', [ids[4]!]);
  const next = changes(read(h, after.epoch, after.version));
  assert.equal([...next.changed], [4]);
});

test('a version newer than the log, a bad version or epoch, an unknown event', () => {
  const h = new Harness();
  h.create_event();
  const first = full(read(h));
  assert.ok(read(h, first.epoch, first.version + 1).full, 'a version from the future: a picture');
  assert.ok(read(h, 'not-the-epoch', 0).full);
  for (const since_version of [-1, 0.5, Number.NaN]) {
    assert.throws(() => read(h, first.epoch, since_version), /since_version/);
  }
  assert.throws(() => read(h, 'x'.repeat(17), 0), /epoch/);
  assert.throws(() => watch_changes(h.state, { event_id: 'evt-none', epoch: '', since_version: 0 }, random),
    (e: Error) => e.name === 'EventNotFoundError');
});

test('counts follow every change (random holds, releases, confirms, expiries)', () => {
  const h = new Harness();
  h.create_event();
  const pick = seeded_random_bytes(99);
  const holds: { id: string; user: string }[] = [];
  let last = full(read(h));
  const picture = [...last.seat_states];
  for (let round = 0; round < 300; round++) {
    const op = pick(1)[0]! % 4;
    if (op === 0 || holds.length === 0) {
      const seat = ids[pick(1)[0]! % ids.length]!;
      const user = `u${round}`;
      try {
        holds.push({ id: h.reserve(user, [seat]).reply.hold_id, user });
      } catch {
        // taken: fine, nothing changed
      }
    } else if (op === 1) {
      const hold = holds.splice(pick(1)[0]! % holds.length, 1)[0]!;
      h.release(hold.id, hold.user);
    } else if (op === 2) {
      const hold = holds.splice(pick(1)[0]! % holds.length, 1)[0]!;
      h.confirm(hold.id, `order-${round}`);
    } else {
      h.advance(1000);
    }
    const r = read(h, last.epoch, last.version);
    if (r.full) picture.splice(0, picture.length, ...r.seat_states);
    else r.changed.forEach((index, i) => { picture[index] = r.states[i]!; });
    assert.equal(picture, [...h.state.events.get('evt-1')!.seat_state], `round ${round}`);
    same_counts(h, r);
    last = r.full ? r : { ...r, full: true, seat_states: new Uint8Array(0) };
  }
  h.check();
});

test('the watch_changes handler is a read: no records', () => {
  const h = new Harness();
  h.create_event();
  const decision = handlers.watch_changes(h.state,
    { k: 'watch_changes', event_id: 'evt-1', epoch: '', since_version: 0 }, h.ctx());
  assert.equal(decision.records, []);
  assert.ok(decision.reply !== undefined && decision.reply.full);
});

test('standing areas: counted apart from the seats, a GA hold changes the area\'s counts only', () => {
  const h = new Harness();
  h.create_event({ ...sample_spec(), areas: [{ name: 'FLOOR', capacity: 5, tier: 'A' }] });
  const first = full(read(h));
  assert.is(first.seat_states.length, 39, 'seat_states: seats only, not the 5 places');
  assert.equal(first.counts.areas, [{ name: 'FLOOR', free: 5, held: 0, sold: 0, capacity: 5 }]);
  const req = {
    event_id: 'evt-1', area: 'FLOOR', quantity: 3, user_id: 'u1', hold_ttl_seconds: 0,
    trace_id: 't',
  };
  replied(step(h.state, decide_reserve_ga(h.state, req, h.ctx())));
  const after = read(h, first.epoch, first.version);
  assert.equal(after.counts.areas, [{ name: 'FLOOR', free: 2, held: 3, sold: 0, capacity: 5 }]);
  assert.equal({ free: after.counts.free, held: after.counts.held }, { free: 39, held: 0 },
    'the seat totals do not count places');
  const a = h.availability();
  assert.equal(after.counts.areas.map(({ capacity: _c, ...rest }) => rest),
    a.areas.map(({ capacity: _c, ...rest }) => rest), 'area counts as GetAvailability\'s');
});

test.run();

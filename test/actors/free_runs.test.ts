// The free-run index (free_runs.ts): per-row masks, lazy rescans of changed rows, the O(1) free
// stack of an area, and a random walk of seat changes after which it agrees with a rebuild.
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { check_runs, runs_flush } from '../../src/actors/free_runs.js';
import { apply, decide_create_event } from '../../src/actors/inventory.js';
import { create_state, SEAT_FREE, SEAT_HELD, SEAT_SOLD, type EventState } from '../../src/actors/partition_state.js';
import { set_seat } from '../../src/actors/seat_change.js';
import { sample_spec } from './helpers.js';

function event_of(spec: unknown): EventState {
  const state = create_state(0);
  for (const record of decide_create_event(state, spec).records) apply(state, record);
  return [...state.events.values()][0]!;
}

const bits = (...ts: number[]): number => ts.reduce((m, t) => m | (1 << t), 0);

test('masks: blocks of plain free seats, and those that strand none', () => {
  const e = event_of(sample_spec({ sections: [{ name: 'S', rows: [
    { name: 'A', seats: 5, tier: 'A' }, { name: 'B', seats: 8, tier: 'A', accessible_seats: [4] },
  ] }] }));
  set_seat(e, 4, SEAT_SOLD, 0); // S-A-5: A is 1 2 3 4 free, a run of 4
  set_seat(e, 5, SEAT_HELD, 0); // S-B-1: B is 2 3 (4 accessible) 5 6 7 8
  assert.equal(e.runs.dirty_rows, [0, 1]);
  runs_flush(e);
  assert.equal(e.runs.dirty_rows, []);
  assert.equal([...e.runs.free], [4, 7]);
  assert.equal([...e.runs.free_accessible], [0, 1]);
  assert.is(e.runs.block_mask[0], bits(1, 2, 3, 4));
  // Three of four always strand the fourth.
  assert.is(e.runs.clean_mask[0], bits(1, 2, 4));
  assert.is(e.runs.block_mask[1], bits(1, 2, 3, 4), 'blocks of plain seats: 2 3 and 5 6 7 8');
  assert.is(e.runs.clean_mask[1], bits(1, 2, 3, 4));
  check_runs(e);
});

test('the check fails on a drifted index (it can fail)', () => {
  const e = event_of(sample_spec());
  e.runs.free[0] = 3;
  assert.throws(() => check_runs(e), /free-run index of row 0/);
  const g = event_of(sample_spec({ areas: [{ name: 'FLOOR', capacity: 4, tier: 'A' }] }));
  g.runs.areas[0]!.top = 3;
  assert.throws(() => check_runs(g), /FLOOR/);
});

test('an area\'s free places: a stack, taken from the top, returned in O(1)', () => {
  const e = event_of(sample_spec({ areas: [{ name: 'FLOOR', capacity: 4, tier: 'A' }] }));
  const first = e.map.area('FLOOR')!.offset;
  const free = e.runs.areas[0]!;
  assert.is(free.top, 4);
  assert.is(free.stack[free.top - 1], first, 'the first place on top');
  set_seat(e, first + 1, SEAT_HELD, 0);
  assert.is(free.top, 3);
  assert.is(free.pos[1], -1);
  set_seat(e, first + 1, SEAT_SOLD, 1);
  assert.is(free.top, 3, 'held to sold takes nothing more');
  set_seat(e, first + 1, SEAT_FREE, -1);
  assert.is(free.top, 4);
  assert.is(free.stack[free.pos[1]!], first + 1);
  check_runs(e);
});

test('random seat and place changes: the index agrees with a rebuild after every change', () => {
  const spec = sample_spec({
    sections: [
      { name: 'S', rows: [{ name: 'A', seats: 12, tier: 'A', accessible_seats: [1, 6] }, { name: 'B', seats: 3, tier: 'B' }] },
      { name: 'T', rows: [{ name: 'A', seats: 7, tier: 'B' }] },
    ],
    areas: [{ name: 'FLOOR', capacity: 6, tier: 'A' }, { name: 'PIT', capacity: 3, tier: 'B' }],
  });
  fc.assert(fc.property(fc.array(fc.tuple(fc.nat(30), fc.integer({ min: 0, max: 2 })), { maxLength: 80 }), (changes) => {
    const e = event_of(spec);
    for (const [index, state] of changes) {
      set_seat(e, index, state, state === SEAT_FREE ? -1 : 0);
      if (index % 3 === 0) check_runs(e); // also between flushes: dirty rows pile up
    }
    check_runs(e);
  }), { numRuns: 300, seed: 3 });
});

test.run();

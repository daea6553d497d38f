// SeatMap: SECTION-ROW-NUMBER <-> dense index, for every seat; malformed ids map to -1.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { validate_event_spec, type EventSpec } from '../../src/actors/event_spec.js';
import { SeatMap } from '../../src/actors/seat_map.js';
import { sample_seat_ids, sample_spec } from './helpers.js';

function ids_of(spec: EventSpec): string[] {
  const ids: string[] = [];
  for (const s of spec.sections) for (const r of s.rows) for (let n = 1; n <= r.seats; n++) ids.push(`${s.name}-${r.name}-${n}`);
  return ids;
}

test('sample event: id_of/index_of round-trip for every seat, in index order', () => {
  const map = new SeatMap(validate_event_spec(sample_spec()));
  const ids = sample_seat_ids();
  assert.is(map.seat_count, 39);
  assert.is(ids.length, 39);
  for (let i = 0; i < ids.length; i++) {
    assert.is(map.id_of(i), ids[i], `id_of(${i})`);
    assert.is(map.index_of(ids[i]!), i, `index_of(${ids[i]})`);
  }
  assert.is(map.index_of('101-A-1'), 0);
  assert.is(map.index_of('101-A-24'), 23);
  assert.is(map.index_of('101-B-1'), 24);
  assert.is(map.index_of('102-A-5'), 38);
});

test('sections are contiguous index ranges', () => {
  const map = new SeatMap(validate_event_spec(sample_spec()));
  const s101 = map.section('101')!;
  const s102 = map.section('102')!;
  assert.equal([s101.offset, s101.seats, s101.rows.length], [0, 34, 2]);
  assert.equal([s102.offset, s102.seats, s102.rows.length], [34, 5, 1]);
  assert.is(map.section('103'), undefined);
});

test('an irregular event: round-trip for every seat (binary search over many sections and rows)', () => {
  const sections = Array.from({ length: 13 }, (_, s) => ({
    name: `S${s}`,
    rows: Array.from({ length: 1 + (s * 7) % 11 }, (_, r) => ({ name: `R${r}`, seats: 1 + ((s + 3) * (r + 5)) % 37, tier: 'A' })),
  }));
  sections.push({ name: 'BIG', rows: [{ name: 'Z', seats: 1000, tier: 'A' }] });
  sections.push({ name: 'ONE', rows: [{ name: 'X', seats: 1, tier: 'A' }] });
  const spec = validate_event_spec({ ...sample_spec(), price_tiers: { A: 1 }, sections });
  const map = new SeatMap(spec);
  const ids = ids_of(spec);
  assert.is(map.seat_count, ids.length);
  assert.is(new Set(ids).size, ids.length);
  for (let i = 0; i < ids.length; i++) {
    assert.is(map.id_of(i), ids[i]);
    assert.is(map.index_of(ids[i]!), i);
  }
  assert.is(map.index_of('BIG-Z-1000'), ids.length - 2);
  assert.is(map.index_of('BIG-Z-1001'), -1);
  assert.is(map.index_of('ONE-X-1'), ids.length - 1);
});

test('malformed and foreign seat ids -> -1', () => {
  const map = new SeatMap(validate_event_spec(sample_spec()));
  const bad = [
    '', '101', '101-A', '101-A-0', '101-A-25', '101-B-11', '102-A-6', '999-A-1', '101-C-1', '101-A-01', 'a-b-c-d',
    '101-a-1', '-A-1', '101--1', '101-A-', '101-A-1-', ' 101-A-1', '101-A-1 ', '101-A-1.0', '101-A-+1', '101-A-1e1',
    '101-A--1', '101-A-00001', '101-A-10000', `101-A-${'1'.repeat(40)}`, '101-A-\u0661', '101_A_1', '101 A 1',
    '101-A-1\n', 'x'.repeat(41),
  ];
  for (const id of bad) assert.is(map.index_of(id), -1, JSON.stringify(id));
});

test('id_of outside the event is an AssertionError (a bug, not a rejection)', () => {
  const map = new SeatMap(validate_event_spec(sample_spec()));
  for (const i of [-1, 39, 1.5, Number.NaN]) {
    assert.throws(() => map.id_of(i), (e: Error) => e.name === 'AssertionError', String(i));
  }
});

test('specs that would make ambiguous seat ids are rejected before a SeatMap exists', () => {
  for (const sections of [
    [{ name: '10-1', rows: [{ name: 'A', seats: 1, tier: 'A' }] }],
    [{ name: '101', rows: [{ name: 'A-1', seats: 1, tier: 'A' }] }],
    [{ name: '101', rows: [{ name: 'A', seats: 1, tier: 'A' }, { name: 'A', seats: 1, tier: 'A' }] }],
    [{ name: '101', rows: [{ name: 'A', seats: 1, tier: 'A' }] }, { name: '101', rows: [{ name: 'B', seats: 1, tier: 'A' }] }],
    [{ name: '101', rows: [{ name: 'A', seats: 0, tier: 'A' }] }],
    [],
  ]) {
    assert.throws(
      () => new SeatMap(validate_event_spec({ ...sample_spec(), price_tiers: { A: 1 }, sections })),
      (e: Error) => e.name === 'InvalidArgumentError',
      JSON.stringify(sections),
    );
  }
});


test('standing places follow the seats: <AREA>-GA-<n>, never found by index_of', () => {
  const map = new SeatMap(validate_event_spec({
    ...sample_spec(), areas: [{ name: 'FLOOR', capacity: 3, tier: 'A' }, { name: 'PIT', capacity: 2, tier: 'B' }],
  }));
  assert.is(map.seat_count, 39);
  assert.is(map.place_count, 44);
  assert.equal(map.areas, [
    { name: 'FLOOR', offset: 39, capacity: 3, tier: 'A' }, { name: 'PIT', offset: 42, capacity: 2, tier: 'B' },
  ]);
  assert.is(map.area('PIT')!.offset, 42);
  assert.is(map.area('101'), undefined);
  const ids = [39, 40, 41, 42, 43].map((i) => map.id_of(i));
  assert.equal(ids, ['FLOOR-GA-1', 'FLOOR-GA-2', 'FLOOR-GA-3', 'PIT-GA-1', 'PIT-GA-2']);
  for (let i = 39; i < 44; i++) {
    assert.is(map.index_of(map.id_of(i)), -1, 'a place is not a seat');
    assert.is(map.place_index_of(map.id_of(i)), i);
  }
  for (const bad of ['FLOOR-GA-0', 'FLOOR-GA-4', 'FLOOR-A-1', 'PIT-GA-01', '101-A-1', 'NOPE-GA-1', 'FLOOR-GA']) {
    assert.is(map.place_index_of(bad), -1, bad);
  }
  assert.is(map.tier_of(40), 'A');
  assert.is(map.tier_of(43), 'B');
  assert.is(map.tier_of(24), 'B', 'row 101-B');
  assert.throws(() => map.id_of(44));
  assert.is(map.rows.length, 3);
  assert.is(map.row_number_of(24), 1);
});

test.run();

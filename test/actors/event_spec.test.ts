// validate_event_spec: normalisation of good specs, InvalidArgumentError for every bad field.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { place_count_of, seat_count_of, validate_event_id, validate_event_spec } from '../../src/actors/event_spec.js';
import * as L from '../../src/actors/limits.js';
import { sample_spec } from './helpers.js';

/** Bad input is InvalidArgumentError, except a string over its length limit: FieldTooLongError
 *  (counted by limit in the metrics). */
function invalid_name(message: string): string {
  return message.includes('is longer than') ? 'FieldTooLongError' : 'InvalidArgumentError';
}

function invalid(input: unknown, what: string, message?: RegExp): void {
  let caught: unknown;
  try {
    validate_event_spec(input);
  } catch (error) {
    caught = error;
  }
  assert.instance(caught, Error, `${what}: should be rejected`);
  assert.is((caught as Error).name, invalid_name((caught as Error).message), `${what}: ${(caught as Error).message}`);
  assert.ok((caught as Error).message.length > 0, what);
  if (message !== undefined) assert.match((caught as Error).message, message, what);
}

function with_rows(rows: unknown[], tiers: Record<string, number> = { A: 1, B: 2 }): Record<string, unknown> {
  return { ...sample_spec(), price_tiers: tiers, sections: [{ name: '101', rows }] };
}

test('sample spec validates to itself, as a copy', () => {
  const input = sample_spec();
  const spec = validate_event_spec(input);
  assert.equal(spec, input);
  assert.is.not(spec, input);
  assert.is(seat_count_of(spec), 39);
});

test('defaults and normalisation', () => {
  const raw: Record<string, unknown> = { ...sample_spec(), price_tiers: { B: 2, A: 1 }, max_seats_per_user: 0 };
  delete raw['promo_codes'];
  delete raw['starts_at_unix'];
  const spec = validate_event_spec(raw);
  assert.equal(Object.keys(spec.price_tiers), ['A', 'B']);
  assert.is(spec.max_seats_per_user, L.max_seats_per_user_default);
  assert.equal(spec.promo_codes, []);
  assert.is(spec.starts_at_unix, 0);
  const missing_msu: Record<string, unknown> = { ...sample_spec() };
  delete missing_msu['max_seats_per_user'];
  assert.is(validate_event_spec(missing_msu).max_seats_per_user, L.max_seats_per_user_default);
  // Unknown extra fields are dropped.
  assert.not.ok('extra' in validate_event_spec({ ...sample_spec(), extra: 1 }));
});

test('the example event file of docs/contracts.md validates', () => {
  const spec = validate_event_spec({
    event_id: 'evt-arena-2027-06-01',
    name: 'Arena, 1 June 2027',
    starts_at_unix: 1811836800,
    currency: 'EUR',
    price_tiers: { A: 89000000, B: 49000000 },
    sections: [{ name: '101', rows: [{ name: 'A', seats: 24, tier: 'A' }] }],
    max_seats_per_user: 8,
    promo_codes: [{ code: 'EARLY10', percent_off: 10, max_uses: 500, valid_until_unix: 1809244800 }],
  });
  assert.equal(spec.promo_codes, [{ code: 'EARLY10', percent_off: 10, amount_off_micros: 0, max_uses: 500, valid_until_unix: 1809244800 }]);
  assert.is(seat_count_of(spec), 24);
});

test('limits at the edge are accepted', () => {
  validate_event_spec(with_rows([{ name: 'A', seats: L.seats_per_row_max, tier: 'A' }]));
  validate_event_spec({ ...sample_spec(), max_seats_per_user: L.max_seats_per_user_max });
  validate_event_spec({ ...sample_spec(), event_id: 'e'.repeat(L.event_id_length_max) });
  validate_event_spec({ ...sample_spec(), price_tiers: { A: Number.MAX_SAFE_INTEGER, B: 0 } });
  const rows = Array.from({ length: 200 }, (_, i) => ({ name: `R${i}`, seats: 1000, tier: 'A' }));
  assert.is(seat_count_of(validate_event_spec(with_rows(rows))), L.seats_per_event_max);
});

test('whole-spec and id rejections', () => {
  invalid(null, 'null');
  invalid(undefined, 'undefined');
  invalid('evt-1', 'a string');
  invalid(42, 'a number');
  invalid({ ...sample_spec(), event_id: undefined }, 'missing event_id', /event_id/);
  invalid({ ...sample_spec(), event_id: '' }, 'empty event_id', /event_id/);
  invalid({ ...sample_spec(), event_id: 'evt 1' }, 'event_id with space', /event_id/);
  invalid({ ...sample_spec(), event_id: 'e'.repeat(L.event_id_length_max + 1) }, 'long event_id', /event_id/);
  invalid({ ...sample_spec(), event_id: 7 }, 'numeric event_id', /event_id/);
  invalid({ ...sample_spec(), name: '' }, 'empty name', /name/);
  invalid({ ...sample_spec(), name: 'a\nb' }, 'name with control character', /name/);
  invalid({ ...sample_spec(), name: 'n'.repeat(L.event_name_length_max + 1) }, 'long name', /name/);
  invalid({ ...sample_spec(), starts_at_unix: -1 }, 'negative start', /starts_at_unix/);
  invalid({ ...sample_spec(), starts_at_unix: 1.5 }, 'fractional start', /starts_at_unix/);
});

test('currency rejections', () => {
  for (const currency of ['eur', 'EURO', 'EU', '', 'E1R', ' EUR', undefined, 978]) {
    invalid({ ...sample_spec(), currency }, `currency ${String(currency)}`, /currency/);
  }
});

test('price tier rejections', () => {
  invalid({ ...sample_spec(), price_tiers: undefined }, 'no price_tiers', /price_tiers/);
  invalid({ ...sample_spec(), price_tiers: null }, 'null price_tiers', /price_tiers/);
  invalid({ ...sample_spec(), price_tiers: {} }, 'empty price_tiers', /price_tiers/);
  const many = Object.fromEntries(Array.from({ length: L.price_tiers_per_event_max + 1 }, (_, i) => [`T${i}`, 1]));
  invalid({ ...sample_spec(), price_tiers: { ...many, A: 1, B: 1 } }, 'too many tiers', /price_tiers/);
  invalid({ ...sample_spec(), price_tiers: { A: -1, B: 1 } }, 'negative price', /price_tiers\.A/);
  invalid({ ...sample_spec(), price_tiers: { A: 1.5, B: 1 } }, 'fractional price', /price_tiers\.A/);
  invalid({ ...sample_spec(), price_tiers: { A: 2 ** 53, B: 1 } }, 'price beyond 2^53', /price_tiers\.A/);
  invalid({ ...sample_spec(), price_tiers: { A: '5', B: 1 } }, 'price as text', /price_tiers\.A/);
  invalid({ ...sample_spec(), price_tiers: { 'A-1': 1, A: 1, B: 1 } }, 'tier name with -', /tier/);
});

test('section and row rejections', () => {
  invalid({ ...sample_spec(), sections: [] }, 'no sections', /sections/);
  invalid({ ...sample_spec(), sections: undefined }, 'sections missing', /sections/);
  invalid({ ...sample_spec(), sections: {} }, 'sections not a list', /sections/);
  const too_many = Array.from({ length: L.sections_per_event_max + 1 }, (_, i) => ({ name: `S${i}`, rows: [{ name: 'A', seats: 1, tier: 'A' }] }));
  invalid({ ...sample_spec(), sections: too_many }, 'too many sections', /sections/);
  invalid({ ...sample_spec(), sections: [null] }, 'null section', /name/);
  invalid({ ...sample_spec(), sections: [{ name: '10-1', rows: [{ name: 'A', seats: 1, tier: 'A' }] }] }, 'section name with -', /name/);
  invalid({ ...sample_spec(), sections: [{ name: '', rows: [{ name: 'A', seats: 1, tier: 'A' }] }] }, 'empty section name', /name/);
  invalid({ ...sample_spec(), sections: [{ name: '1 1', rows: [{ name: 'A', seats: 1, tier: 'A' }] }] }, 'section name with space');
  invalid({ ...sample_spec(), sections: [{ name: 'S'.repeat(L.section_name_length_max + 1), rows: [{ name: 'A', seats: 1, tier: 'A' }] }] }, 'long section name');
  invalid({
    ...sample_spec(),
    sections: [{ name: '101', rows: [{ name: 'A', seats: 1, tier: 'A' }] }, { name: '101', rows: [{ name: 'B', seats: 1, tier: 'A' }] }],
  }, 'duplicate section', /101/);
  invalid({ ...sample_spec(), sections: [{ name: '101', rows: [] }] }, 'section without rows', /101/);
  invalid({ ...sample_spec(), sections: [{ name: '101' }] }, 'section rows missing', /101/);
  const many_rows = Array.from({ length: L.rows_per_section_max + 1 }, (_, i) => ({ name: `R${i}`, seats: 1, tier: 'A' }));
  invalid(with_rows(many_rows), 'too many rows', /rows/);
  invalid(with_rows([{ name: 'A-B', seats: 1, tier: 'A' }]), 'row name with -');
  invalid(with_rows([{ name: '', seats: 1, tier: 'A' }]), 'empty row name');
  invalid(with_rows([{ name: 'R'.repeat(L.row_name_length_max + 1), seats: 1, tier: 'A' }]), 'long row name');
  invalid(with_rows([{ name: 'A', seats: 1, tier: 'A' }, { name: 'A', seats: 2, tier: 'B' }]), 'duplicate row', /A/);
  for (const seats of [0, -1, 1.5, L.seats_per_row_max + 1, '5', undefined]) {
    invalid(with_rows([{ name: 'A', seats, tier: 'A' }]), `seats ${String(seats)}`, /seats/);
  }
  invalid(with_rows([{ name: 'A', seats: 3, tier: 'C' }]), 'unknown tier', /tier C/);
  invalid(with_rows([{ name: 'A', seats: 3, tier: 'a' }]), 'tier names are case sensitive', /tier/);
  invalid(with_rows([{ name: 'A', seats: 3 }]), 'missing tier', /tier/);
  const rows = Array.from({ length: 201 }, (_, i) => ({ name: `R${i}`, seats: 1000, tier: 'A' }));
  invalid(with_rows(rows), 'too many seats', /seats/);
});

test('a row whose tier names an Object.prototype property is an unknown tier', () => {
  // 'toString', 'constructor', ... match the tier name pattern, are not defined in price_tiers,
  // but `tier in price_tiers` (event_spec.ts) finds them on Object.prototype.
  for (const tier of ['toString', 'constructor', 'valueOf', 'hasOwnProperty', '__proto__']) {
    invalid(with_rows([{ name: 'A', seats: 3, tier }]), `tier ${tier}`, /tier/);
  }
});

test('a price tier named __proto__ (from a JSON event file) is not silently dropped', () => {
  const raw = JSON.parse(
    '{"event_id":"e1","name":"n","currency":"EUR","price_tiers":{"__proto__":5,"A":1},' +
    '"sections":[{"name":"1","rows":[{"name":"A","seats":2,"tier":"A"}]}]}',
  ) as unknown;
  let spec: ReturnType<typeof validate_event_spec> | undefined;
  try {
    spec = validate_event_spec(raw);
  } catch (error) {
    assert.is((error as Error).name, invalid_name((error as Error).message));
    return; // rejecting the name is fine
  }
  assert.ok(Object.prototype.hasOwnProperty.call(spec.price_tiers, '__proto__'), 'accepted tier __proto__ must keep its price');
});

test('max_seats_per_user and promo code rejections', () => {
  for (const msu of [-1, L.max_seats_per_user_max + 1, 2.5, '8']) {
    invalid({ ...sample_spec(), max_seats_per_user: msu }, `max_seats_per_user ${String(msu)}`, /max_seats_per_user/);
  }
  const promo = { code: 'EARLY10', percent_off: 10, max_uses: 5, valid_until_unix: 0 };
  invalid({ ...sample_spec(), promo_codes: {} }, 'promo_codes not a list', /promo_codes/);
  invalid({ ...sample_spec(), promo_codes: Array.from({ length: L.promo_codes_per_event_max + 1 }, (_, i) => ({ ...promo, code: `P${i}` })) }, 'too many promos');
  invalid({ ...sample_spec(), promo_codes: [{ ...promo, code: 'early10' }] }, 'lower case code', /code/);
  invalid({ ...sample_spec(), promo_codes: [{ ...promo, code: '' }] }, 'empty code', /code/);
  invalid({ ...sample_spec(), promo_codes: [promo, promo] }, 'duplicate code', /EARLY10/);
  invalid({ ...sample_spec(), promo_codes: [{ ...promo, percent_off: 101 }] }, 'percent > 100', /percent_off/);
  invalid({ ...sample_spec(), promo_codes: [{ ...promo, percent_off: 10, amount_off_micros: 5 }] }, 'both discounts', /exactly one/);
  invalid({ ...sample_spec(), promo_codes: [{ ...promo, percent_off: 0 }] }, 'no discount', /exactly one/);
  invalid({ ...sample_spec(), promo_codes: [{ ...promo, max_uses: -1 }] }, 'negative max_uses', /max_uses/);
  invalid({ ...sample_spec(), promo_codes: [{ ...promo, valid_until_unix: -1 }] }, 'negative valid_until', /valid_until_unix/);
});

test('validate_event_id', () => {
  assert.is(validate_event_id('evt-1.a:b_c'), 'evt-1.a:b_c');
  for (const bad of ['', 'a b', 'é', 'x'.repeat(65), null, 1]) {
    let caught: unknown;
    try {
      validate_event_id(bad);
    } catch (error) {
      caught = error;
    }
    assert.is((caught as Error | undefined)?.name, invalid_name((caught as Error | undefined)?.message ?? ''), String(bad));
  }
});

test('an event name carrying U+FFFD (invalid UTF-8 on the wire) is refused', () => {
  try {
    validate_event_spec(sample_spec({ name: 'Arena \ufffd' }));
    assert.unreachable('expected a refusal');
  } catch (e) {
    assert.is((e as Error).name, invalid_name((e as Error).message));
    assert.match((e as Error).message, 'UTF-8');
  }
});


// Issue 14: priorities, accessible seats, standing areas.

test('an event file without the new fields normalises exactly as before (no new keys)', () => {
  const spec = validate_event_spec({
    ...sample_spec(),
    sections: sample_spec().sections.map((s) => ({
      ...s, priority: 0, rows: s.rows.map((r) => ({ ...r, priority: 0, accessible_seats: [] })),
    })),
    areas: [],
  });
  assert.is(JSON.stringify(spec), JSON.stringify(validate_event_spec(sample_spec())));
  assert.not.ok('areas' in spec);
  assert.not.ok('priority' in spec.sections[0]!);
  assert.not.ok('priority' in spec.sections[0]!.rows[0]! || 'accessible_seats' in spec.sections[0]!.rows[0]!);
});

test('priorities, accessible seats and areas are kept, normalised, after the old keys', () => {
  const spec = validate_event_spec({
    ...sample_spec(),
    sections: [{ name: '101', priority: 5, rows: [{ name: 'A', seats: 10, tier: 'A', accessible_seats: [9, 1], priority: 2 }] }],
    areas: [{ name: 'FLOOR', capacity: 300, tier: 'B' }],
  });
  assert.equal(spec.sections[0], { name: '101', rows: [{ name: 'A', seats: 10, tier: 'A', accessible_seats: [1, 9], priority: 2 }], priority: 5 });
  assert.equal(spec.areas, [{ name: 'FLOOR', capacity: 300, tier: 'B' }]);
  assert.equal(Object.keys(spec).slice(-2), ['promo_codes', 'areas']);
  assert.is(seat_count_of(spec), 10, 'standing places are not seats');
  assert.is(place_count_of(spec), 310);
});

test('bad priorities, accessible seats and areas are refused, naming the field', () => {
  const row = { name: 'A', seats: 10, tier: 'A' };
  invalid(with_rows([{ ...row, priority: -1 }]), 'negative row priority', /priority of row 101-A/);
  invalid(with_rows([{ ...row, priority: L.priority_max + 1 }]), 'row priority over max', /priority of row 101-A/);
  invalid(with_rows([{ ...row, priority: 1.5 }]), 'fractional row priority', /priority of row 101-A/);
  invalid({ ...with_rows([row]), sections: [{ name: '101', rows: [row], priority: 1001 }] }, 'section priority', /sections\[0\]\.priority/);
  invalid(with_rows([{ ...row, accessible_seats: [0] }]), 'accessible seat 0', /accessible_seats of row 101-A/);
  invalid(with_rows([{ ...row, accessible_seats: [11] }]), 'accessible seat past the row', /accessible_seats of row 101-A/);
  invalid(with_rows([{ ...row, accessible_seats: [3, 3] }]), 'accessible seat twice', /twice/);
  invalid(with_rows([{ ...row, accessible_seats: 'all' }]), 'accessible seats not a list', /accessible_seats/);
  const area = { name: 'FLOOR', capacity: 100, tier: 'A' };
  const base = with_rows([row]);
  invalid({ ...base, areas: [{ ...area, name: '101' }] }, 'area named like a section', /already the name/);
  invalid({ ...base, areas: [area, area] }, 'area twice', /already the name/);
  invalid({ ...base, areas: [{ ...area, name: 'FL-1' }] }, 'area name with -', /areas\[0\]\.name/);
  invalid({ ...base, areas: [{ ...area, capacity: 0 }] }, 'area capacity 0', /capacity of area FLOOR/);
  invalid({ ...base, areas: [{ ...area, capacity: L.area_capacity_max + 1 }] }, 'area capacity over max', /capacity of area FLOOR/);
  invalid({ ...base, areas: [{ ...area, tier: 'Z' }] }, 'area tier unknown', /tier Z/);
  invalid({ ...base, areas: [{ ...area, tier: undefined }] }, 'area tier missing', /tier of area FLOOR/);
  invalid({ ...base, areas: 'FLOOR' }, 'areas not a list', /areas must be a list/);
  const many = Array.from({ length: L.areas_per_event_max + 1 }, (_, i) => ({ ...area, name: `A${i}` }));
  invalid({ ...base, areas: many }, 'too many areas', /at most 32/);
  const full = Array.from({ length: 2 }, (_, i) => ({ ...area, name: `A${i}`, capacity: L.area_capacity_max }));
  invalid({ ...base, areas: full }, 'seats and places over seats_per_event_max', /seats and standing places/);
});

test.run();

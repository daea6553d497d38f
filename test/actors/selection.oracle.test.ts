// Best-available quality against a brute-force oracle: over random small maps, partly sold,
// with accessible seats, every choice of `quantity` eligible free seats is enumerated. The
// answer must exist exactly when a choice does, take only free eligible seats with exactly
// accessible_quantity accessible ones, be adjacent whenever an adjacent choice exists, strand
// no seat whenever a choice of the same class (adjacent / not) strands none, and for rule (a)
// be in the best-ranked row that has a clean block.
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { EventSpec } from '../../src/actors/event_spec.js';
import { apply, decide_create_event } from '../../src/actors/inventory.js';
import { create_state, SEAT_FREE, SEAT_SOLD, type EventState } from '../../src/actors/partition_state.js';
import { set_seat } from '../../src/actors/seat_change.js';
import { choose_best } from '../../src/actors/selection.js';
import { check_runs } from '../../src/actors/free_runs.js';

interface Case {
  rows: { section: number; seats: number; accessible: boolean[]; sold: boolean[]; priority: number }[];
  section_priority: number[];
  quantity: number;
  accessible: number;
  allowed_sections: boolean[];
}

const case_arb: fc.Arbitrary<Case> = fc.record({
  section_priority: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 3, maxLength: 3 }),
  rows: fc.array(fc.integer({ min: 1, max: 7 }).chain((seats) => fc.record({
    section: fc.integer({ min: 0, max: 2 }),
    seats: fc.constant(seats),
    accessible: fc.array(fc.integer({ min: 0, max: 9 }).map((x) => x === 0), { minLength: seats, maxLength: seats }),
    sold: fc.array(fc.integer({ min: 0, max: 9 }).map((x) => x < 4), { minLength: seats, maxLength: seats }),
    priority: fc.integer({ min: 0, max: 1 }),
  })), { minLength: 1, maxLength: 4 }),
  quantity: fc.integer({ min: 1, max: 4 }),
  accessible: fc.integer({ min: 0, max: 9 }).map((x) => (x < 7 ? 0 : x - 6)),
  allowed_sections: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
}).map((c) => ({ ...c, accessible: Math.min(c.accessible, c.quantity) }));

/** The event of a case, with its sold seats; `row_of[i]`: the case row of seat index i. */
function build(c: Case): { event: EventState; ranked: number[]; row_ok: (r: number) => boolean } {
  const sections = [0, 1, 2].map((s) => ({
    name: `S${s}`, priority: c.section_priority[s]!,
    rows: c.rows.map((r, i) => ({ r, i })).filter(({ r }) => r.section === s).map(({ r, i }) => ({
      name: `R${i}`, seats: r.seats, tier: 'A', priority: r.priority,
      accessible_seats: r.accessible.flatMap((a, n) => (a ? [n + 1] : [])),
    })),
  })).filter((s) => s.rows.length > 0);
  const spec = {
    event_id: 'e', name: 'n', starts_at_unix: 0, currency: 'EUR', price_tiers: { A: 1 }, sections,
    max_seats_per_user: 100, promo_codes: [],
  };
  const state = create_state(0);
  for (const record of decide_create_event(state, spec).records) apply(state, record);
  const event = state.events.get('e')!;
  // map.rows are in section order; find each one's case row by name.
  event.map.rows.forEach((layout) => {
    const r = c.rows[Number(layout.name.slice(1))]!;
    r.sold.forEach((sold, n) => { if (sold) set_seat(event, layout.offset + n, SEAT_SOLD, 0); });
  });
  const spec_sections = (event.spec as EventSpec).sections;
  const ranked = [...event.runs.ranked_rows];
  const row_ok = (row: number): boolean => {
    const name = spec_sections[event.map.rows[row]!.section]!.name;
    return c.allowed_sections.every((x) => !x) || c.allowed_sections[Number(name.slice(1))] === true;
  };
  return { event, ranked, row_ok };
}

interface Verdict { valid: boolean; adjacent: boolean; clean: boolean; row: number }

function judge(event: EventState, seats: number[], c: Case, row_ok: (r: number) => boolean): Verdict {
  const acc = event.runs.accessible;
  const chosen = new Set(seats);
  const rows = seats.map((s) => event.map.row_number_of(s));
  const valid = chosen.size === c.quantity && seats.every((s, i) => event.seat_state[s] === SEAT_FREE && row_ok(rows[i]!))
    && seats.filter((s) => (acc?.[s] ?? 0) === 1).length === c.accessible;
  const sorted = [...seats].sort((a, b) => a - b);
  const adjacent = rows.every((r) => r === rows[0]) && sorted.every((s, i) => i === 0 || s === sorted[i - 1]! + 1);
  let clean = true;
  for (const layout of event.map.rows) {
    const free = (i: number): boolean => i >= layout.offset && i < layout.offset + layout.seats && event.seat_state[i] === SEAT_FREE;
    for (let i = layout.offset; i < layout.offset + layout.seats; i++) {
      if (!free(i) || chosen.has(i)) continue;
      const before = free(i - 1) || free(i + 1);
      const after = (free(i - 1) && !chosen.has(i - 1)) || (free(i + 1) && !chosen.has(i + 1));
      if (before && !after) clean = false;
    }
  }
  return { valid, adjacent, clean, row: rows[0] ?? -1 };
}

function* subsets(items: number[], k: number, start = 0, acc: number[] = []): Generator<number[]> {
  if (acc.length === k) {
    yield acc;
    return;
  }
  for (let i = start; i <= items.length - (k - acc.length); i++) yield* subsets(items, k, i + 1, [...acc, items[i]!]);
}

test('best available agrees with the brute-force oracle', () => {
  let adjacent_answers = 0;
  let scattered_clean = 0;
  let refusals = 0;
  fc.assert(fc.property(case_arb, (c) => {
    const { event, ranked, row_ok } = build(c);
    check_runs(event);
    const candidates: number[] = [];
    for (let i = 0; i < event.map.seat_count; i++) {
      if (event.seat_state[i] === SEAT_FREE && row_ok(event.map.row_number_of(i))) candidates.push(i);
    }
    const verdicts: Verdict[] = [];
    for (const s of subsets(candidates, c.quantity)) {
      const v = judge(event, s, c, row_ok);
      if (v.valid) verdicts.push(v);
    }
    const answer = choose_best(event, { quantity: c.quantity, accessible: c.accessible, row_ok });
    if (answer === null) {
      refusals++;
      assert.is(verdicts.length, 0, 'refused only when no choice exists');
      return;
    }
    const v = judge(event, answer, c, row_ok);
    assert.ok(v.valid, `a valid choice: ${answer}`);
    const adjacent_exists = verdicts.some((x) => x.adjacent);
    assert.is(v.adjacent, adjacent_exists, 'adjacent exactly when an adjacent choice exists');
    const same_class = verdicts.filter((x) => x.adjacent === v.adjacent);
    if (same_class.some((x) => x.clean)) assert.ok(v.clean, `strands no seat when a choice of its class does not: ${answer}`);
    if (v.adjacent && v.clean) {
      const rank = (row: number): number => ranked.indexOf(row);
      const best = Math.min(...same_class.filter((x) => x.clean).map((x) => rank(x.row)));
      assert.is(rank(v.row), best, 'rule (a): the best-ranked row with a clean block');
      adjacent_answers++;
    }
    if (!v.adjacent && v.clean) scattered_clean++;
  }), { numRuns: 400, seed: 14 });
  // The generator reaches every rule: a change to it cannot silently stop testing one.
  assert.ok(adjacent_answers > 50, `rule (a) answers: ${adjacent_answers}`);
  assert.ok(scattered_clean > 5, `rule (c) clean answers: ${scattered_clean}`);
  assert.ok(refusals > 5, `refusals: ${refusals}`);
});

test.run();

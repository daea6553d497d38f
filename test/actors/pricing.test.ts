// Pricing: tiers per seat, percent and amount promos, caps and expiry, exact integers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { price, usable_promo } from '../../src/actors/pricing.js';
import { SeatMap } from '../../src/actors/seat_map.js';
import { sample_spec } from './helpers.js';

const spec = sample_spec({
  promo_codes: [
    { code: 'TEN', percent_off: 10, amount_off_micros: 0, max_uses: 2, valid_until_unix: 0 },
    { code: 'FIVER', percent_off: 0, amount_off_micros: 5_000_000, max_uses: 0, valid_until_unix: 1_700_000_000 },
    { code: 'HUGE', percent_off: 0, amount_off_micros: 999_000_000, max_uses: 0, valid_until_unix: 0 },
  ],
});
const map = new SeatMap(spec);
const seat = (id: string) => map.index_of(id);

test('seats are priced from their row\'s tier', () => {
  // 101-A is tier A (50 EUR), 101-B and 102-A tier B (30 EUR).
  assert.equal(price(spec, map, [seat('101-A-1'), seat('101-B-1'), seat('102-A-1')], null), { subtotal_micros: 110_000_000, total_micros: 110_000_000 });
});

test('percent off rounds the discount down; amount off never goes below zero', () => {
  const ten = usable_promo(spec, 'TEN', 0, 0);
  assert.equal(price(spec, map, [seat('101-B-1')], ten), { subtotal_micros: 30_000_000, total_micros: 27_000_000 });
  const odd = { ...spec, price_tiers: { A: 50_000_000, B: 33 } };
  assert.is(price(odd, map, [seat('101-B-1')], ten).total_micros, 30, '33 - floor(3.3) = 30');
  assert.is(price(spec, map, [seat('101-A-1')], usable_promo(spec, 'HUGE', 0, 0)).total_micros, 0);
});

test('unknown, used-up and expired promo codes are refused with the reason', () => {
  assert.throws(() => usable_promo(spec, 'NOPE', 0, 0), /does not exist/);
  assert.throws(() => usable_promo(spec, 'TEN', 2, 0), /used up/);
  assert.ok(usable_promo(spec, 'TEN', 1, 0));
  assert.throws(() => usable_promo(spec, 'FIVER', 0, 1_700_000_000_001), /expired/);
  assert.ok(usable_promo(spec, 'FIVER', 10_000, 1_700_000_000_000), 'max_uses 0: no cap; valid through its second');
});

test('a total beyond 2^53 is refused, never rounded', () => {
  const dear = { ...spec, price_tiers: { A: Number.MAX_SAFE_INTEGER, B: 1 } };
  assert.throws(() => price(dear, map, [seat('101-A-1'), seat('101-A-2')], null), /2\^53/);
});

test.run();

// Prices seats from the event's tiers and applies a promo code. Exact integer micros: BigInt
// where a product could pass 2^53, and a total that would not be a safe integer is refused.
import { assert } from '../util/assert.js';
import { InvalidArgumentError, PromoUnavailableError } from './errors.js';
import type { EventSpec, PromoSpec } from './event_spec.js';
import type { SeatMap } from './seat_map.js';

export interface Price { subtotal_micros: number; total_micros: number }

/** The tier of a seat or a standing place (an area's places share the area's tier). */
export function tier_of_seat(spec: EventSpec, map: SeatMap, seat: number): string {
  const tier = map.tier_of(seat);
  assert(Object.hasOwn(spec.price_tiers, tier), 'a seat\'s tier is priced (validated at creation)');
  return tier;
}

/** Whether a promo code may be used now, and why not. */
export type PromoCheck =
  | { k: 'usable'; promo: PromoSpec }
  | { k: 'unknown' | 'expired' | 'used_up'; message: string };

/** The promo rules of CreateDraft and of ConfirmOrder retaking a lapsed draft's seats (a new
 *  hold): the code exists, has not expired, and is not used up. `uses` counts drafts and sales. */
export function check_promo(
  spec: EventSpec, code: string, uses: number, now_ms: number,
): PromoCheck {
  assert(uses >= 0, 'promo uses never negative');
  const promo = spec.promo_codes.find((p) => p.code === code);
  if (promo === undefined) {
    const message = `promo code ${code} does not exist for event ${spec.event_id}`;
    return { k: 'unknown', message };
  }
  if (promo.valid_until_unix !== 0 && now_ms > promo.valid_until_unix * 1000) {
    const until = new Date(promo.valid_until_unix * 1000).toISOString();
    return { k: 'expired', message: `promo code ${code} expired at ${until}` };
  }
  // max_uses 0 means no cap.
  if (promo.max_uses !== 0 && uses >= promo.max_uses) {
    return { k: 'used_up', message: `promo code ${code} is used up (${promo.max_uses} uses)` };
  }
  return { k: 'usable', promo };
}

/** The promo usable now, or PromoUnavailableError saying why not. `uses` counts drafts and sales. */
export function usable_promo(spec: EventSpec, code: string, uses: number, now_ms: number): PromoSpec {
  const check = check_promo(spec, code, uses, now_ms);
  if (check.k !== 'usable') throw new PromoUnavailableError(check.message);
  return check.promo;
}

export function price(spec: EventSpec, map: SeatMap, seats: number[], promo: PromoSpec | null): Price {
  assert(seats.length > 0, 'an order has seats');
  let subtotal = 0n;
  for (const seat of seats) {
    const tier = tier_of_seat(spec, map, seat);
    const tier_price = spec.price_tiers[tier];
    assert(tier_price !== undefined, 'a row\'s tier is priced (validated at event creation)');
    subtotal += BigInt(tier_price);
  }
  let total = subtotal;
  if (promo !== null) {
    // Percent off rounds the discount down: the buyer never pays a fraction of a micro less.
    const discount = promo.percent_off > 0 ? (subtotal * BigInt(promo.percent_off)) / 100n : BigInt(promo.amount_off_micros);
    total = discount >= subtotal ? 0n : subtotal - discount;
  }
  if (subtotal > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new InvalidArgumentError('the order total would exceed 2^53 - 1 micros; order fewer seats');
  }
  assert(total >= 0n && total <= subtotal, 'a promo never raises a price nor makes it negative');
  return { subtotal_micros: Number(subtotal), total_micros: Number(total) };
}

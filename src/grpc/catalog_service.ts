// ticketing.catalog.v1.CatalogService: events and their availability.
import * as L from '../actors/limits.js';
import { InvalidArgumentError } from '../actors/errors.js';
import type { EventView } from '../actors/queries.js';
import { require_role } from '../auth/policy.js';
import { id, int64, str } from './convert.js';
import type { Router } from '../route/router.js';
import { unary, type EdgeDeps } from './unary.js';
import { watch_availability_rpc } from './watch_availability.js';
import type { WatchHub } from './watch_hub.js';

type Wire = Record<string, unknown>;

/** Wire Event (int64 as strings) -> plain spec; structural checks only, the actor validates. */
export function spec_from_wire(event: unknown): unknown {
  if (typeof event !== 'object' || event === null) throw new InvalidArgumentError('event is required');
  const e = event as Wire;
  const tiers: Record<string, number> = {};
  const raw_tiers = (e['price_tiers'] ?? {}) as Wire;
  for (const [tier, price] of Object.entries(raw_tiers)) {
    // Checked before the name is used in a message (it may hold control characters).
    if (tier.length > L.tier_name_length_max || !/^[A-Za-z0-9_]+$/.test(tier)) {
      throw new InvalidArgumentError(`price tier names must be 1..${L.tier_name_length_max} letters, digits and _`);
    }
    tiers[tier] = int64(price, `price_tiers.${tier}`, 0);
  }
  const sections = Array.isArray(e['sections']) ? e['sections'] : [];
  return {
    event_id: e['event_id'],
    name: e['name'],
    starts_at_unix: int64(e['starts_at_unix'] ?? '0', 'starts_at_unix', 0),
    currency: e['currency'],
    price_tiers: tiers,
    sections: sections.map((s: Wire) => ({
      name: s['name'],
      rows: (Array.isArray(s['rows']) ? s['rows'] : []).map((r: Wire) => ({
        name: r['name'], seats: r['seats'], tier: r['tier'],
        accessible_seats: r['accessible_seats'] ?? [], priority: r['priority'] ?? 0,
      })),
      priority: s['priority'] ?? 0,
    })),
    max_seats_per_user: e['max_seats_per_user'] ?? 0,
    promo_codes: (Array.isArray(e['promo_codes']) ? e['promo_codes'] : []).map((p: Wire) => ({
      code: p['code'],
      percent_off: p['percent_off'] ?? 0,
      amount_off_micros: int64(p['amount_off_micros'] ?? '0', 'amount_off_micros', 0),
      max_uses: p['max_uses'] ?? 0,
      valid_until_unix: int64(p['valid_until_unix'] ?? '0', 'valid_until_unix', 0),
    })),
    areas: (Array.isArray(e['areas']) ? e['areas'] : []).map((a: Wire) => ({
      name: a['name'], capacity: a['capacity'], tier: a['tier'],
    })),
  };
}

export function spec_to_wire(spec: EventView): Wire {
  const price_tiers: Record<string, string> = {};
  for (const [tier, price] of Object.entries(spec.price_tiers)) price_tiers[tier] = String(price);
  return {
    ...spec,
    starts_at_unix: String(spec.starts_at_unix),
    price_tiers,
    promo_codes: spec.promo_codes.map((p) => ({ ...p, amount_off_micros: String(p.amount_off_micros), valid_until_unix: String(p.valid_until_unix) })),
    seat_count: String(spec.seat_count),
  };
}

export function catalog_service(deps: EdgeDeps, router: Router, hub: WatchHub) {
  const s = 'CatalogService';
  return {
    CreateEvent: unary(deps, s, 'CreateEvent', async (req: { event: unknown }, ctx) => {
      require_role(ctx.principal, ['admin'], 'CreateEvent');
      const spec = spec_from_wire(req.event) as { event_id: unknown };
      const event_id = id(spec.event_id, 'event.event_id', L.event_id_length_max);
      const reply = await router.call('create_event', { event_id, spec });
      return { ...reply, seat_count: String(reply.seat_count) };
    }, { changes_state: true, retry_note: 'the outcome is unknown: the event may or may not have been created, and may still be. Retrying the identical definition is safe: CreateEvent is idempotent (a repeat answers created=false)' }),
    GetEvent: unary(deps, s, 'GetEvent', async (req: { event_id: unknown }) => {
      const event_id = id(req.event_id, 'event_id', L.event_id_length_max);
      return spec_to_wire(await router.call('get_event', { event_id }));
    }),
    GetAvailability: unary(deps, s, 'GetAvailability', async (req: { event_id: unknown; section: unknown }) => {
      const event_id = id(req.event_id, 'event_id', L.event_id_length_max);
      const section = str(req.section ?? '', 'section', L.section_name_length_max);
      // Section names are letters and digits (event files allow no more): anything else is
      // refused here without echoing it (control characters, invalid UTF-8 as U+FFFD).
      if (section !== '' && !/^[A-Za-z0-9]+$/.test(section)) throw new InvalidArgumentError('section must be a section or area name of letters and digits, e.g. 101 (or empty for every section)');
      const a = await router.call('availability', { event_id, section });
      return {
        event_id: a.event_id, free: String(a.free), held: String(a.held), sold: String(a.sold), truncated: a.truncated,
        sections: a.sections.map((x) => ({ ...x, free: String(x.free), held: String(x.held), sold: String(x.sold) })),
        areas: a.areas.map((x) => ({
          name: x.name, capacity: String(x.capacity), free: String(x.free), held: String(x.held),
          sold: String(x.sold),
        })),
      };
    }),
    WatchAvailability: watch_availability_rpc(deps, router, hub),
  };
}

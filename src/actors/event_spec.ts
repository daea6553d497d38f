// An event's definition (docs/contracts.md "Event file") and its validation. Sections and rows
// may not contain '-', because seat ids are SECTION-ROW-NUMBER.
import { assert } from '../util/assert.js';
import { FieldTooLongError, InvalidArgumentError } from './errors.js';
import * as L from './limits.js';

/** `accessible_seats` (seat numbers, ascending) and `priority` are present only when not the
 *  default (none, 0), so an event file without them normalises exactly as before they existed
 *  (the normalised spec is compared by JSON for idempotent CreateEvent, and is in snapshots). */
export interface RowSpec {
  name: string; seats: number; tier: string; accessible_seats?: number[]; priority?: number;
}
export interface SectionSpec { name: string; rows: RowSpec[]; priority?: number }
/** A standing (general admission) area: `capacity` places sold by quantity at one tier. */
export interface AreaSpec { name: string; capacity: number; tier: string }
export interface PromoSpec {
  code: string;
  percent_off: number;
  amount_off_micros: number;
  max_uses: number;
  valid_until_unix: number;
}
export interface EventSpec {
  event_id: string;
  name: string;
  starts_at_unix: number;
  currency: string;
  price_tiers: Record<string, number>;
  sections: SectionSpec[];
  max_seats_per_user: number;
  promo_codes: PromoSpec[];
  /** Present only when the event has standing areas. */
  areas?: AreaSpec[];
}

const name_pattern = /^[A-Za-z0-9]+$/;
const tier_pattern = /^[A-Za-z0-9_]+$/;

function fail(message: string): never {
  throw new InvalidArgumentError(message);
}

function text(value: unknown, field: string, max: number, pattern?: RegExp): string {
  if (typeof value !== 'string' || value.length === 0) fail(`${field} is required`);
  if (value.length > max) throw new FieldTooLongError(`${field} is longer than ${max} characters`);
  if (pattern !== undefined && !pattern.test(value)) fail(`${field} has characters outside ${pattern.source}`);
  return value;
}

function int(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) fail(`${field} must be an integer`);
  if (value < min || value > max) fail(`${field} must be between ${min} and ${max}, got ${value}`);
  return value;
}

export function validate_event_id(value: unknown, field = 'event_id'): string {
  return text(value, field, L.event_id_length_max, L.id_pattern);
}

/** Checks every field and returns a normalised copy; throws InvalidArgumentError naming the field. */
export function validate_event_spec(input: unknown): EventSpec {
  if (typeof input !== 'object' || input === null) fail('event is required');
  const raw = input as Record<string, unknown>;
  const event_id = validate_event_id(raw['event_id']);
  const name = text(raw['name'], 'name', L.event_name_length_max);
  if (/[\u0000-\u001f\u007f]/.test(name)) fail('name contains control characters');
  // U+FFFD is what invalid UTF-8 on the wire decodes to: refuse rather than store mojibake.
  if (name.includes('\ufffd')) fail('name is not valid UTF-8');
  const starts_at_unix = int(raw['starts_at_unix'] ?? 0, 'starts_at_unix', 0, 32503680000);
  const currency = text(raw['currency'], 'currency', 3, L.currency_pattern);
  const price_tiers = validate_price_tiers(raw['price_tiers']);
  const sections = validate_sections(raw['sections'], price_tiers);
  const msu = raw['max_seats_per_user'] ?? 0;
  const max_seats_per_user = msu === 0
    ? L.max_seats_per_user_default
    : int(msu, 'max_seats_per_user', 1, L.max_seats_per_user_max);
  const promo_codes = validate_promo_codes(raw['promo_codes'] ?? []);
  const spec: EventSpec = {
    event_id, name, starts_at_unix, currency, price_tiers, sections, max_seats_per_user,
    promo_codes,
  };
  const areas = validate_areas(raw['areas'] ?? [], sections, price_tiers);
  if (areas.length > 0) spec.areas = areas;
  assert(place_count_of(spec) <= L.seats_per_event_max, 'a valid event fits seats_per_event_max');
  return spec;
}

function validate_price_tiers(tiers_raw: unknown): Record<string, number> {
  if (typeof tiers_raw !== 'object' || tiers_raw === null) fail('price_tiers is required');
  const tier_names = Object.keys(tiers_raw);
  if (tier_names.length === 0 || tier_names.length > L.price_tiers_per_event_max) {
    fail(`price_tiers must have 1 to ${L.price_tiers_per_event_max} tiers`);
  }
  const price_tiers: Record<string, number> = {};
  for (const tier of tier_names.sort()) {
    text(tier, 'price tier name', L.tier_name_length_max, tier_pattern);
    // Names of Object.prototype would alias inherited members (and __proto__ cannot be a key).
    if (tier === '__proto__' || tier in Object.prototype) fail(`price tier name ${tier} is reserved`);
    const tier_price = (tiers_raw as Record<string, unknown>)[tier];
    price_tiers[tier] = int(tier_price, `price_tiers.${tier}`, 0, L.amount_micros_max);
  }
  return price_tiers;
}

function validate_sections(
  sections_raw: unknown, price_tiers: Record<string, number>,
): SectionSpec[] {
  if (!Array.isArray(sections_raw) || sections_raw.length === 0) fail('sections must list at least one section');
  if (sections_raw.length > L.sections_per_event_max) fail(`at most ${L.sections_per_event_max} sections`);
  const section_names = new Set<string>();
  let seat_count = 0;
  const sections: SectionSpec[] = sections_raw.map((s: unknown, i: number) => {
    const sec = (s ?? {}) as Record<string, unknown>;
    const sname = text(sec['name'], `sections[${i}].name`, L.section_name_length_max, name_pattern);
    if (section_names.has(sname)) fail(`section ${sname} appears twice`);
    section_names.add(sname);
    const rows = validate_rows(sname, sec['rows'], price_tiers);
    for (const row of rows) seat_count += row.seats;
    const priority = int(sec['priority'] ?? 0, `sections[${i}].priority`, 0, L.priority_max);
    return priority === 0 ? { name: sname, rows } : { name: sname, rows, priority };
  });
  if (seat_count > L.seats_per_event_max) fail(`event has ${seat_count} seats; at most ${L.seats_per_event_max}`);
  return sections;
}

function validate_rows(
  sname: string, rows_raw: unknown, price_tiers: Record<string, number>,
): RowSpec[] {
  if (!Array.isArray(rows_raw) || rows_raw.length === 0) fail(`section ${sname} has no rows`);
  if (rows_raw.length > L.rows_per_section_max) {
    fail(`section ${sname} has more than ${L.rows_per_section_max} rows`);
  }
  const row_names = new Set<string>();
  return rows_raw.map((r: unknown, j: number): RowSpec => {
    const row = (r ?? {}) as Record<string, unknown>;
    const rname = text(
      row['name'], `section ${sname} row[${j}].name`, L.row_name_length_max, name_pattern,
    );
    if (row_names.has(rname)) fail(`row ${rname} appears twice in section ${sname}`);
    row_names.add(rname);
    const seats = int(row['seats'], `seats of row ${sname}-${rname}`, 1, L.seats_per_row_max);
    const tier = text(
      row['tier'], `tier of row ${sname}-${rname}`, L.tier_name_length_max, tier_pattern,
    );
    if (!Object.hasOwn(price_tiers, tier)) {
      fail(`row ${sname}-${rname} uses tier ${tier}, which price_tiers does not define`);
    }
    const spec: RowSpec = { name: rname, seats, tier };
    const accessible = validate_accessible(
      row['accessible_seats'] ?? [], `${sname}-${rname}`, seats);
    if (accessible.length > 0) spec.accessible_seats = accessible;
    const priority = int(
      row['priority'] ?? 0, `priority of row ${sname}-${rname}`, 0, L.priority_max);
    if (priority !== 0) spec.priority = priority;
    return spec;
  });
}

/** Seat numbers 1..seats of one row, no duplicates; returned ascending. */
function validate_accessible(raw: unknown, row: string, seats: number): number[] {
  const field = `accessible_seats of row ${row}`;
  if (!Array.isArray(raw) || raw.length > seats) {
    fail(`${field} must list at most ${seats} seat numbers`);
  }
  const numbers = raw.map((n: unknown) => int(n, field, 1, seats));
  const unique = new Set(numbers);
  if (unique.size !== numbers.length) fail(`${field} lists a seat number twice`);
  return numbers.sort((a, b) => a - b);
}

function validate_areas(
  raw: unknown, sections: SectionSpec[], price_tiers: Record<string, number>,
): AreaSpec[] {
  if (!Array.isArray(raw) || raw.length > L.areas_per_event_max) {
    fail(`areas must be a list of at most ${L.areas_per_event_max}`);
  }
  const names = new Set(sections.map((s) => s.name));
  let places = seat_count_of({ sections });
  const areas = raw.map((a: unknown, i: number): AreaSpec => {
    const area = (a ?? {}) as Record<string, unknown>;
    const name = text(area['name'], `areas[${i}].name`, L.section_name_length_max, name_pattern);
    if (names.has(name)) fail(`areas[${i}].name ${name} is already the name of a section or area`);
    names.add(name);
    const capacity = int(area['capacity'], `capacity of area ${name}`, 1, L.area_capacity_max);
    const tier = text(area['tier'], `tier of area ${name}`, L.tier_name_length_max, tier_pattern);
    if (!Object.hasOwn(price_tiers, tier)) {
      fail(`area ${name} uses tier ${tier}, which price_tiers does not define`);
    }
    places += capacity;
    return { name, capacity, tier };
  });
  if (places > L.seats_per_event_max) {
    fail(`event has ${places} seats and standing places; at most ${L.seats_per_event_max}`);
  }
  return areas;
}

function validate_promo_codes(promos_raw: unknown): PromoSpec[] {
  if (!Array.isArray(promos_raw) || promos_raw.length > L.promo_codes_per_event_max) {
    fail(`promo_codes must be a list of at most ${L.promo_codes_per_event_max}`);
  }
  const codes = new Set<string>();
  return promos_raw.map((p: unknown, i: number): PromoSpec => {
    const promo = (p ?? {}) as Record<string, unknown>;
    const code = text(
      promo['code'], `promo_codes[${i}].code`, L.promo_code_length_max, L.promo_code_pattern,
    );
    if (codes.has(code)) fail(`promo code ${code} appears twice`);
    codes.add(code);
    const percent_off = int(promo['percent_off'] ?? 0, `promo ${code} percent_off`, 0, 100);
    const amount_off_micros = int(promo['amount_off_micros'] ?? 0, `promo ${code} amount_off_micros`, 0, L.amount_micros_max);
    if ((percent_off === 0) === (amount_off_micros === 0)) fail(`promo ${code} needs exactly one of percent_off or amount_off_micros`);
    return {
      code,
      percent_off,
      amount_off_micros,
      max_uses: int(promo['max_uses'] ?? 0, `promo ${code} max_uses`, 0, 1_000_000_000),
      valid_until_unix: int(promo['valid_until_unix'] ?? 0, `promo ${code} valid_until_unix`, 0, 32503680000),
    };
  });
}

/** Seats only: standing places are not seats (place_count_of counts both). */
export function seat_count_of(spec: Pick<EventSpec, 'sections'>): number {
  let n = 0;
  for (const s of spec.sections) for (const r of s.rows) n += r.seats;
  return n;
}

/** Seats and standing places: the length of an event's seat arrays. */
export function place_count_of(spec: Pick<EventSpec, 'sections' | 'areas'>): number {
  let n = seat_count_of(spec);
  for (const a of spec.areas ?? []) n += a.capacity;
  return n;
}

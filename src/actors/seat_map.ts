// Seat ids <-> dense seat indices for one event. Seats are numbered section by section, row by
// row, so a section is a contiguous index range and state fits in typed arrays (bytes per seat,
// not objects per seat). Standing places of the event's areas follow the seats, area by area:
// index seat_count + k is a place, with id <AREA>-GA-<n>. index_of never finds a place (seats
// are named, places are not: ReserveTickets and CreateDraft cannot take one); place_index_of does.
import { assert } from '../util/assert.js';
import type { EventSpec } from './event_spec.js';
import { seat_id_length_max } from './limits.js';

export interface RowLayout {
  name: string; offset: number; seats: number; tier: string;
  /** Index of the row's section in `sections`. */
  section: number;
}
interface SectionLayout { name: string; offset: number; seats: number; rows: RowLayout[]; row_by_name: Map<string, RowLayout> }
export interface AreaLayout { name: string; offset: number; capacity: number; tier: string }

/** The row part of a place id: <AREA>-GA-<n>. */
const place_row = 'GA';

export class SeatMap {
  readonly sections: SectionLayout[] = [];
  /** Every row of every section, in index order. */
  readonly rows: RowLayout[] = [];
  readonly areas: AreaLayout[] = [];
  private readonly section_by_name = new Map<string, SectionLayout>();
  private readonly area_by_name = new Map<string, AreaLayout>();
  /** Seats only. */
  readonly seat_count: number;
  /** Seats and standing places: the length of the event's seat arrays. */
  readonly place_count: number;

  constructor(spec: EventSpec) {
    let offset = 0;
    for (const s of spec.sections) {
      const section: SectionLayout = { name: s.name, offset, seats: 0, rows: [], row_by_name: new Map() };
      for (const r of s.rows) {
        const section_number = this.sections.length;
        const row = { name: r.name, offset, seats: r.seats, tier: r.tier, section: section_number };
        section.rows.push(row);
        section.row_by_name.set(r.name, row);
        this.rows.push(row);
        offset += r.seats;
        section.seats += r.seats;
      }
      this.sections.push(section);
      this.section_by_name.set(s.name, section);
    }
    this.seat_count = offset;
    for (const a of spec.areas ?? []) {
      const area = { name: a.name, offset, capacity: a.capacity, tier: a.tier };
      this.areas.push(area);
      this.area_by_name.set(a.name, area);
      offset += a.capacity;
    }
    this.place_count = offset;
    assert(this.seat_count > 0, 'an event has seats');
    assert(this.sections.length === spec.sections.length, 'one layout per section');
    assert(this.areas.length === (spec.areas ?? []).length, 'one layout per area');
  }

  /** Index of `seat_id`, or -1 when it is malformed or not a seat of this event (a place's id
   *  included: its AREA is no section). */
  index_of(seat_id: string): number {
    const parts = split_id(seat_id);
    if (parts === null) return -1;
    const section = this.section_by_name.get(parts.section);
    const row = section?.row_by_name.get(parts.row);
    if (row === undefined || parts.number > row.seats) return -1;
    const index = row.offset + parts.number - 1;
    assert(index >= 0 && index < this.seat_count, 'seat index in range');
    return index;
  }

  /** Index of the standing place `place_id` (<AREA>-GA-<n>), or -1. */
  place_index_of(place_id: string): number {
    const parts = split_id(place_id);
    if (parts === null || parts.row !== place_row) return -1;
    const area = this.area_by_name.get(parts.section);
    if (area === undefined || parts.number > area.capacity) return -1;
    const index = area.offset + parts.number - 1;
    assert(index >= this.seat_count && index < this.place_count, 'place index in range');
    return index;
  }

  id_of(index: number): string {
    assert(Number.isInteger(index) && index >= 0 && index < this.place_count,
      'seat index in range');
    if (index >= this.seat_count) {
      const area = this.area_of_index(index);
      return `${area.name}-${place_row}-${index - area.offset + 1}`;
    }
    const row = this.row_of_index(index);
    return `${this.sections[row.section]!.name}-${row.name}-${index - row.offset + 1}`;
  }

  /** The row of seat `index` (a seat, not a place): binary search over row offsets. */
  row_of_index(index: number): RowLayout {
    return this.rows[this.row_number_of(index)]!;
  }

  /** The position of seat `index`'s row in `rows`. */
  row_number_of(index: number): number {
    assert(Number.isInteger(index) && index >= 0 && index < this.seat_count, 'a seat index');
    let lo = 0;
    let hi = this.rows.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.rows[mid]!.offset <= index) lo = mid;
      else hi = mid - 1;
    }
    const row = this.rows[lo]!;
    assert(index >= row.offset && index < row.offset + row.seats, 'index within found row');
    return lo;
  }

  /** The area of place `index` (a place, not a seat). */
  area_of_index(index: number): AreaLayout {
    assert(index >= this.seat_count && index < this.place_count, 'a place index');
    let found = this.areas[0]!;
    for (const area of this.areas) if (area.offset <= index) found = area;
    assert(index < found.offset + found.capacity, 'index within found area');
    return found;
  }

  /** The tier of a seat or place. */
  tier_of(index: number): string {
    if (index >= this.seat_count) return this.area_of_index(index).tier;
    return this.row_of_index(index).tier;
  }

  section(name: string): SectionLayout | undefined {
    return this.section_by_name.get(name);
  }

  area(name: string): AreaLayout | undefined {
    return this.area_by_name.get(name);
  }
}

/** SECTION-ROW-NUMBER split into its parts, or null when malformed. */
function split_id(id: string): { section: string; row: string; number: number } | null {
  if (id.length === 0 || id.length > seat_id_length_max) return null;
  const first = id.indexOf('-');
  const second = id.indexOf('-', first + 1);
  if (first <= 0 || second <= first + 1 || id.indexOf('-', second + 1) !== -1) return null;
  const number_text = id.slice(second + 1);
  // Up to six digits: an area has up to area_capacity_max (100,000) places.
  if (!/^[1-9][0-9]{0,5}$/.test(number_text)) return null;
  const number = Number(number_text);
  return { section: id.slice(0, first), row: id.slice(first + 1, second), number };
}

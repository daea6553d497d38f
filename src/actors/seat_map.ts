// Seat ids <-> dense seat indices for one event. Seats are numbered section by section, row by
// row, so a section is a contiguous index range and state fits in typed arrays (bytes per seat,
// not objects per seat).
import { assert } from '../util/assert.js';
import type { EventSpec } from './event_spec.js';
import { seat_id_length_max } from './limits.js';

interface RowLayout { name: string; offset: number; seats: number }
interface SectionLayout { name: string; offset: number; seats: number; rows: RowLayout[]; row_by_name: Map<string, RowLayout> }

export class SeatMap {
  readonly sections: SectionLayout[] = [];
  private readonly section_by_name = new Map<string, SectionLayout>();
  readonly seat_count: number;

  constructor(spec: EventSpec) {
    let offset = 0;
    for (const s of spec.sections) {
      const section: SectionLayout = { name: s.name, offset, seats: 0, rows: [], row_by_name: new Map() };
      for (const r of s.rows) {
        const row = { name: r.name, offset, seats: r.seats };
        section.rows.push(row);
        section.row_by_name.set(r.name, row);
        offset += r.seats;
        section.seats += r.seats;
      }
      this.sections.push(section);
      this.section_by_name.set(s.name, section);
    }
    this.seat_count = offset;
    assert(this.seat_count > 0, 'an event has seats');
    assert(this.sections.length === spec.sections.length, 'one layout per section');
  }

  /** Index of `seat_id`, or -1 when it is malformed or not a seat of this event. */
  index_of(seat_id: string): number {
    if (seat_id.length === 0 || seat_id.length > seat_id_length_max) return -1;
    const first = seat_id.indexOf('-');
    const second = seat_id.indexOf('-', first + 1);
    if (first <= 0 || second <= first + 1 || seat_id.indexOf('-', second + 1) !== -1) return -1;
    const section = this.section_by_name.get(seat_id.slice(0, first));
    const row = section?.row_by_name.get(seat_id.slice(first + 1, second));
    const number_text = seat_id.slice(second + 1);
    if (row === undefined || !/^[1-9][0-9]{0,3}$/.test(number_text)) return -1;
    const number = Number(number_text);
    if (number > row.seats) return -1;
    const index = row.offset + number - 1;
    assert(index >= 0 && index < this.seat_count, 'seat index in range');
    return index;
  }

  id_of(index: number): string {
    assert(Number.isInteger(index) && index >= 0 && index < this.seat_count, 'seat index in range');
    // Binary search over sections, then rows: offsets are increasing.
    let lo = 0;
    let hi = this.sections.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.sections[mid]!.offset <= index) lo = mid;
      else hi = mid - 1;
    }
    const section = this.sections[lo]!;
    let rlo = 0;
    let rhi = section.rows.length - 1;
    while (rlo < rhi) {
      const mid = (rlo + rhi + 1) >> 1;
      if (section.rows[mid]!.offset <= index) rlo = mid;
      else rhi = mid - 1;
    }
    const row = section.rows[rlo]!;
    assert(index >= row.offset && index < row.offset + row.seats, 'index within found row');
    return `${section.name}-${row.name}-${index - row.offset + 1}`;
  }

  section(name: string): SectionLayout | undefined {
    return this.section_by_name.get(name);
  }
}

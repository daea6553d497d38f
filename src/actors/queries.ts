// Read-only answers about an event: its definition and its availability.
import { assert } from '../util/assert.js';
import { EventNotFoundError, InvalidArgumentError } from './errors.js';
import { seat_count_of, validate_event_id, type EventSpec } from './event_spec.js';
import { SEAT_FREE, SEAT_HELD, SEAT_SOLD, type EventState, type PartitionState } from './partition_state.js';
import type { AreaLayout } from './seat_map.js';
import { availability_seat_ids_max } from './limits.js';

export interface SectionAvailability { name: string; free: number; held: number; sold: number; free_seat_ids: string[] }
export interface AreaAvailability {
  name: string; capacity: number; free: number; held: number; sold: number;
}
/** The totals count seats only; standing places are counted per area in `areas`. */
export interface Availability {
  event_id: string; free: number; held: number; sold: number; sections: SectionAvailability[];
  truncated: boolean; areas: AreaAvailability[];
}

/** GetEvent's answer: the definition as created, with its seat count. */
export type EventView = EventSpec & { seat_count: number };

export function get_event(state: PartitionState, event_id: string): EventView {
  validate_event_id(event_id);
  const event = state.events.get(event_id);
  if (event === undefined) throw new EventNotFoundError(`event ${event_id} does not exist`);
  return { ...event.spec, seat_count: seat_count_of(event.spec) };
}

export function get_availability(state: PartitionState, event_id: string, section_name: string): Availability {
  validate_event_id(event_id);
  const event = state.events.get(event_id);
  if (event === undefined) throw new EventNotFoundError(`event ${event_id} does not exist`);
  const area = event.map.area(section_name);
  const layouts = section_name === '' ? event.map.sections
    : area !== undefined ? [] : [event.map.section(section_name)];
  if (area === undefined && layouts[0] === undefined) {
    throw new InvalidArgumentError(`event ${event_id} has no section ${section_name}`);
  }
  let ids_left = availability_seat_ids_max;
  let truncated = false;
  const sections: SectionAvailability[] = [];
  const total = { free: 0, held: 0, sold: 0 };
  for (const layout of layouts) {
    const s: SectionAvailability = { name: layout!.name, free: 0, held: 0, sold: 0, free_seat_ids: [] };
    for (const row of layout!.rows) {
      for (let i = row.offset; i < row.offset + row.seats; i++) {
        const seat = event.seat_state[i];
        if (seat === SEAT_FREE) {
          s.free++;
          if (ids_left > 0) {
            s.free_seat_ids.push(`${layout!.name}-${row.name}-${i - row.offset + 1}`);
            ids_left--;
          } else truncated = true;
        } else if (seat === SEAT_HELD) s.held++;
        else s.sold++;
      }
    }
    assert(s.free + s.held + s.sold === layout!.seats, 'every seat of the section counted once');
    total.free += s.free;
    total.held += s.held;
    total.sold += s.sold;
    sections.push(s);
  }
  const areas = (section_name === '' ? event.map.areas : area !== undefined ? [area] : [])
    .map((a) => area_availability(event, a));
  if (section_name === '') {
    const places = areas.reduce(
      (n, a) => ({ held: n.held + a.held, sold: n.sold + a.sold }), { held: 0, sold: 0 });
    assert(total.held + places.held === event.held && total.sold + places.sold === event.sold,
      'availability matches event counters');
  }
  assert(SEAT_SOLD === 2, 'seat states are 0..2');
  return { event_id, ...total, sections, truncated, areas };
}

function area_availability(event: EventState, area: AreaLayout): AreaAvailability {
  const counts = { free: 0, held: 0, sold: 0 };
  for (let i = area.offset; i < area.offset + area.capacity; i++) {
    const place = event.seat_state[i];
    if (place === SEAT_FREE) counts.free++;
    else if (place === SEAT_HELD) counts.held++;
    else counts.sold++;
  }
  return { name: area.name, capacity: area.capacity, ...counts };
}

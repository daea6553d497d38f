// WatchAvailability's change log of one event: a bounded ring of the seat indices whose state
// changed, a version counting the changes, and per-section (and per-area) counters, so that a
// watcher polling every 100 ms reads what changed since its last version in O(changes +
// sections), never a scan of 200,000 seats. Derived (seat_change.ts): not journaled, not in
// snapshots; derive_indices starts a new log, with a new epoch, whenever the event's state is
// built (creation, snapshot restore, a worker restart, a partition taken by another node).
import { assert } from '../util/assert.js';
import { EventNotFoundError, InvalidArgumentError } from './errors.js';
import { validate_event_id } from './event_spec.js';
import { watch_change_log_max } from './limits.js';
import {
  SEAT_FREE, SEAT_HELD, SEAT_SOLD, type ChangeLog, type EventState, type PartitionState,
} from './partition_state.js';

export interface WatchChangesRequest { event_id: string; epoch: string; since_version: number }
export interface GroupCounts { name: string; free: number; held: number; sold: number }
export interface AreaCounts extends GroupCounts { capacity: number }
/** Totals count seats only (as GetAvailability's); areas are counted apart. */
export interface WatchCounts {
  free: number; held: number; sold: number; sections: GroupCounts[]; areas: AreaCounts[];
}
interface WatchHead { epoch: string; version: number; seat_count: number; counts: WatchCounts }
/** A whole picture: every seat's state (seats only, a copy), or the seats changed since the
 *  watcher's version (each once, with its current state). */
export type WatchChangesReply =
  | (WatchHead & { full: true; seat_states: Uint8Array })
  | (WatchHead & { full: false; changed: Int32Array; states: Uint8Array });

const epoch_bytes = 8;

/** A new log for `event`, its counters counted from the seat arrays: O(places), as
 *  derive_indices is anyway. */
export function new_change_log(event: EventState): ChangeLog {
  const groups: ChangeLog['groups'] = event.map.sections.map((s) => (
    { name: s.name, offset: s.offset, size: s.seats, area: false }));
  for (const a of event.map.areas) {
    groups.push({ name: a.name, offset: a.offset, size: a.capacity, area: true });
  }
  const counts = new Int32Array(groups.length * 3);
  let place = 0;
  groups.forEach((g, i) => {
    assert(g.offset === place, 'groups cover the places in order, without gaps');
    for (let p = g.offset; p < g.offset + g.size; p++) counts[i * 3 + event.seat_state[p]!]! += 1;
    place += g.size;
  });
  assert(place === event.seat_state.length, 'every place belongs to one group');
  // More changes than places between two reads: a whole picture (a byte a seat) is smaller
  // than the change list (an index and a state a change), so the ring need not be longer.
  const ring_length = Math.max(16, Math.min(watch_change_log_max, place));
  return { epoch: '', version: 0, ring: new Int32Array(ring_length), groups, counts };
}

/** The group holding place `index` (binary search: O(log groups)). */
function group_of(log: ChangeLog, index: number): number {
  let lo = 0;
  let hi = log.groups.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (log.groups[mid]!.offset <= index) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** set_seat's hook, called BEFORE the seat arrays change: place `index` goes to `next`. */
export function changes_on_change(event: EventState, index: number, next: number): void {
  const log = event.changes;
  assert(log !== undefined, 'derive_indices made the change log before any seat changes');
  const previous = event.seat_state[index]!;
  if (previous === next) return; // an owner change only: nothing a watcher sees
  const g = group_of(log, index);
  log.counts[g * 3 + previous]! -= 1;
  log.counts[g * 3 + next]! += 1;
  log.ring[log.version % log.ring.length] = index;
  log.version += 1;
}

function counts_of(log: ChangeLog): WatchCounts {
  const out: WatchCounts = { free: 0, held: 0, sold: 0, sections: [], areas: [] };
  log.groups.forEach((g, i) => {
    const c = {
      name: g.name, free: log.counts[i * 3 + SEAT_FREE]!, held: log.counts[i * 3 + SEAT_HELD]!,
      sold: log.counts[i * 3 + SEAT_SOLD]!,
    };
    assert(c.free + c.held + c.sold === g.size, 'every place of a group counted once');
    if (g.area) {
      out.areas.push({ ...c, capacity: g.size });
      return;
    }
    out.free += c.free;
    out.held += c.held;
    out.sold += c.sold;
    out.sections.push(c);
  });
  return out;
}

/** The seats changed after `since_version`, each once with its current state; places of
 *  areas show in the counts only. */
function changes_since(event: EventState, log: ChangeLog, since_version: number) {
  const seen = new Set<number>();
  for (let v = since_version; v < log.version; v++) {
    const index = log.ring[v % log.ring.length]!;
    if (index < event.map.seat_count) seen.add(index);
  }
  const changed = Int32Array.from(seen);
  const states = new Uint8Array(changed.length);
  for (let i = 0; i < changed.length; i++) states[i] = event.seat_state[changed[i]!]!;
  return { changed, states };
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * watch_changes: a whole picture when the watcher's epoch is not the log's or its version is
 * older than the ring keeps (or newer than the log: a bogus one), else the changes since it.
 *
 * The epoch: derive_indices cannot draw random bytes (it runs in apply and restore, which have
 * no context), so the log is named by the first read that watches it, from the decide context's
 * random bytes (crypto.randomBytes in the host). It is the one thing a read writes, and it is
 * safe: no record, reply of a write or snapshot holds it, so replay cannot tell. 64 random bits
 * per incarnation: a watcher of a rebuilt log (restart, restore, another node) sees another
 * epoch, barring a 2^-64 chance, and is sent a whole picture.
 */
export function watch_changes(
  state: PartitionState, request: WatchChangesRequest, random_bytes: (count: number) => Uint8Array,
): WatchChangesReply {
  const event_id = validate_event_id(request.event_id);
  const { epoch, since_version } = request;
  if (!Number.isSafeInteger(since_version) || since_version < 0) {
    throw new InvalidArgumentError('since_version must be a non-negative integer');
  }
  if (typeof epoch !== 'string' || epoch.length > epoch_bytes * 2) {
    throw new InvalidArgumentError(`epoch must be at most ${epoch_bytes * 2} characters`);
  }
  const event = state.events.get(event_id);
  if (event === undefined) throw new EventNotFoundError(`event ${event_id} does not exist`);
  const log = event.changes;
  assert(log !== undefined, 'every event has a change log');
  if (log.epoch === '') log.epoch = hex(random_bytes(epoch_bytes));
  assert(log.epoch.length === epoch_bytes * 2, 'an epoch is named');
  const seat_count = event.map.seat_count;
  const head = { epoch: log.epoch, version: log.version, seat_count, counts: counts_of(log) };
  const kept_from = Math.max(0, log.version - log.ring.length);
  if (epoch !== log.epoch || since_version < kept_from || since_version > log.version) {
    return { ...head, full: true, seat_states: event.seat_state.slice(0, seat_count) };
  }
  return { ...head, full: false, ...changes_since(event, log, since_version) };
}

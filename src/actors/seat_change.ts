// The one way a seat's (or a standing place's) state changes. Indices derived from seat_state
// (the free runs best available searches, the change log WatchAvailability reads) are kept here,
// so that no apply path can change a seat without them noticing. Derived means not journaled and
// not in snapshots: derive_indices rebuilds them from the seat arrays.
import { assert } from '../util/assert.js';
import { runs_on_change, runs_rebuild } from './free_runs.js';
import { changes_on_change, new_change_log } from './change_log.js';
import { SEAT_FREE, SEAT_SOLD, type EventState } from './partition_state.js';

/** Sets seat `index` of `event` to `seat_state` (SEAT_FREE | SEAT_HELD | SEAT_SOLD) owned by
 *  `owner` (hold_no when held, order_no when sold, -1 when free). */
export function set_seat(event: EventState, index: number, seat_state: number, owner: number): void {
  assert(index >= 0 && index < event.seat_state.length, 'seat index in range');
  assert(seat_state >= SEAT_FREE && seat_state <= SEAT_SOLD, 'a known seat state');
  assert((seat_state === SEAT_FREE) === (owner === -1), 'a free seat, and only a free seat, has no owner');
  changes_on_change(event, index, seat_state); // before the change: it counts from the old state
  event.seat_state[index] = seat_state;
  event.seat_owner[index] = owner;
  runs_on_change(event, index);
}

/** Builds the derived indices of `event` from its seat arrays: when the event is created, and
 *  when a snapshot is restored. */
export function derive_indices(event: EventState): void {
  assert(event.seat_state.length === event.seat_owner.length, 'seat arrays agree');
  runs_rebuild(event);
  event.changes = new_change_log(event);
}

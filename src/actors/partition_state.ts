// The state of one partition: the seat inventory of its events, their holds, and the orders and
// payments of those events (purchase_state.ts). Only apply() (inventory.ts, purchase_records.ts)
// changes it; snapshot.ts writes and rebuilds it. Types and the empty state only: no rules here.
import { ExpiryHeap } from './expiry_heap.js';
import { HoldTable } from './hold_table.js';
import type { EventSpec } from './event_spec.js';
import { create_purchase_state, type PurchaseState } from './purchase_state.js';
import { create_queues_state, type QueuesState } from './queue_state.js';
import type { SeatMap } from './seat_map.js';
import { UserCounts } from './user_counts.js';

export const SEAT_FREE = 0;
export const SEAT_HELD = 1;
export const SEAT_SOLD = 2;

/** WatchAvailability's change log of one event (change_log.ts keeps it): derived state. */
export interface ChangeLog {
  /** Names this incarnation of the log; '' until the first watch read names it. A watcher
   *  whose epoch differs gets a whole picture. */
  epoch: string;
  /** Changes recorded since the log was created; change number v (1-based) is at
   *  ring[(v-1) % ring.length]. */
  version: number;
  ring: Int32Array;
  /** Runs of places counted together: sections in order, then areas; offsets increasing. */
  groups: { name: string; offset: number; size: number; area: boolean }[];
  /** free, held, sold per group (3 entries each). */
  counts: Int32Array;
}

export type { UserCount } from './user_counts.js';

export interface EventState {
  spec: EventSpec;
  map: SeatMap;
  /** SEAT_FREE | SEAT_HELD | SEAT_SOLD per seat index, then per standing place (seat_map.ts). */
  seat_state: Uint8Array;
  /** hold_no of the holding hold when HELD, order_no when SOLD, -1 when FREE. */
  seat_owner: Int32Array;
  orders: string[];
  order_no_by_id: Map<string, number>;
  next_hold_no: number;
  /** Per user: held seats, sold seats, active holds (user_counts.ts packs them). */
  users: UserCounts;
  held: number;
  sold: number;
  /** Derived (free_runs.ts): free seats per row for best available, free places per area. */
  runs: FreeRuns;
  /** WatchAvailability's change log (change_log.ts): derived, set by derive_indices, which every
   *  path that builds an EventState calls before any seat changes. */
  changes?: ChangeLog;
}

/** The free-run index of an event (free_runs.ts keeps it): derived from seat_state, never
 *  journaled nor in snapshots. */
export interface AreaFree {
  /** Free place indices; stack[0..top) are the free places. */
  stack: Int32Array;
  top: number;
  /** Position in `stack` of place offset + k, or -1 when the place is not free. */
  pos: Int32Array;
}

export interface FreeRuns {
  /** Per row of map.rows: free seats, free accessible seats, and bit t (1..seats_per_hold_max)
   *  when the row has t adjacent free non-accessible seats / such a block stranding no seat. */
  free: Uint16Array;
  free_accessible: Uint16Array;
  block_mask: Uint16Array;
  clean_mask: Uint16Array;
  dirty: Uint8Array;
  dirty_rows: number[];
  /** 1 for an accessible seat; null when the event has none. */
  accessible: Uint8Array | null;
  /** Row numbers in best-available rank: section (priority, listed order), then row (priority,
   *  listed order). */
  ranked_rows: Int32Array;
  /** Per area of map.areas. */
  areas: AreaFree[];
}

export type { Hold, HoldStatus } from './hold_table.js';

export interface PartitionState {
  partition: number;
  events: Map<string, EventState>;
  /** Every hold not yet forgotten, a column per field (hold_table.ts). */
  holds: HoldTable;
  /** Active holds by expiry; stale entries (ended holds) are skipped when popped. */
  expiry: ExpiryHeap;
  /** Ended holds in end order, forgotten after hold_tombstone_retention_ms. */
  tombstones: { hold_id: string; forget_at_ms: number }[];
  active_holds: number;
  /** Orders and payments of this partition's events (purchase_state.ts). */
  purchase: PurchaseState;
  /** The waiting rooms of this partition's events (queue_state.ts). */
  queues: QueuesState;
}

export function create_state(partition: number): PartitionState {
  const holds = new HoldTable(partition);
  return {
    partition, events: new Map(), holds, expiry: new ExpiryHeap(holds), tombstones: [],
    active_holds: 0, purchase: create_purchase_state(), queues: create_queues_state(),
  };
}

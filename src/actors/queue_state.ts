// The waiting rooms of one partition (issue 16): one queue per event, decided by the partition
// that decides the event's holds. Types and the empty state only: queue_records.ts applies the
// records, queue.ts decides, queue_crypto.ts signs and verifies. Entries are columns of typed
// arrays indexed by seq (1-based arrival order), never objects: 1,000,000 entries must fit in
// the memory budget (≤ 200 B per entry; measured in bench/queue_memory.ts).
import type { KeyObject } from 'node:crypto';
import { assert } from '../util/assert.js';

/** The wait-time histogram's upper bounds in seconds (cumulative, then +Inf). */
export const queue_wait_buckets_s = [10, 30, 60, 120, 300, 600, 1800, 3600] as const;

export interface QueueSettings {
  opens_at_ms: number;
  sale_starts_at_ms: number;
  admit_per_minute: number;
  admission_ttl_seconds: number;
  service_bypass: boolean;
}

/** The queue's secrets, drawn at ConfigureQueue (ctx.random_bytes), 32 bytes each. */
export interface QueueKeys {
  /** The draw's seed: its sha256 is published at once, the seed itself at the draw. */
  seed: Uint8Array;
  /** MACs ticket ids (ids.ts make_id('ticket', ...)). */
  ticket_key: Uint8Array;
  /** MACs admission tokens. */
  token_key: Uint8Array;
  /** The Ed25519 private key's seed (receipts). */
  receipt_seed: Uint8Array;
}

/** Columns of a queue's entries; index seq (1..count), index 0 unused. Capacity grows by a
 *  quarter up to queue_entries_per_event_max + 1 (queue_records.ts ensure_capacity). */
export interface QueueEntries {
  /** Join time of entry seq. */
  joined_at_ms: Float64Array;
  /** sha256("<event_id>|<user_id>|<device_id>") of entry seq: 32 bytes at seq × 32. */
  user_hash: Uint8Array;
  /** chain_seq at seq × 32; chain_0 (from the commitment) at 0. */
  chain: Uint8Array;
  /** 1 once entry seq's token made a hold. */
  used: Uint8Array;
  /** The user of entry seq (the same string objects as `seq_of_user`'s keys). */
  user: string[];
}

export interface QueueState {
  event_id: string;
  /** Numbers this partition's queues, in configuration order (ticket ids carry it). */
  queue_no: number;
  settings: QueueSettings;
  keys: QueueKeys;
  /** hex sha256(seed). */
  seed_commitment: string;
  /** Derived from keys.receipt_seed, never journaled. */
  receipt_key: KeyObject;
  /** base64 DER (SPKI) of the receipt key's public half. */
  receipt_public_key: string;
  closed: boolean;
  /** Entries joined so far (the largest seq). */
  count: number;
  entries: QueueEntries;
  /** The current entry of each user (a user whose admission lapsed unused may join again). */
  seq_of_user: Map<string, number>;
  drawn: boolean;
  /** Entries 1..early_count joined before sale_starts_at_ms (0 until the draw). */
  early_count: number;
  /** Position p (1-based) of early joiner order[p-1]; and the inverse: position_of[seq]. */
  order: Int32Array;
  position_of: Int32Array;
  /** Buyers admitted: positions 1..admitted. */
  admitted: number;
  /** Rate × ms not yet a whole buyer (0 ≤ carry < 60,000): exact, no float drift. */
  carry: number;
  /** The last admission tick (or the draw), ms. */
  last_tick_ms: number;
  /** The last tick admitted everyone who had joined: the next tick credits one tick at most, so
   *  a queue that ran dry does not bank admissions for a later burst. */
  caught_up: boolean;
  /** Admission ticks that advanced `admitted`: tick i admitted positions up to tick_to[i] at
   *  tick_at_ms[i]. An entry's token expires ttl after the first tick reaching its position. */
  tick_to: number[];
  tick_at_ms: number[];
  /** Ticks whose tokens have all expired and were counted (tokens_expired). */
  ticks_swept: number;
  tokens_used: number;
  tokens_expired: number;
  wait_sum_s: number;
  /** Admitted buyers whose wait fell in bucket i: ≤ queue_wait_buckets_s[i] and above the bucket
   *  before; the last entry is above every bound. The gauges cumulate them. */
  wait_le: number[];
}

export interface QueuesState {
  by_event: Map<string, QueueState>;
  /** by_no[queue_no] is the queue numbered queue_no. */
  by_no: QueueState[];
  /** The node's pace (pace_queues, the admission governor): every queue of the partition admits
   *  at pace_pct % of its admin's rate. 1..100; 100 = the admin's rate. Journaled (queue_paced). */
  pace_pct: number;
}

/** The pace of a partition nobody paced: the admin's rate as set. */
export const queue_pace_pct_full = 100;

export function create_queues_state(): QueuesState {
  return { by_event: new Map(), by_no: [], pace_pct: queue_pace_pct_full };
}

/** The rate a queue admits at: the admin's rate scaled by the partition's pace, floored, but
 *  never below 1 while the admin's rate is above 0: pacing slows a sale, only the admin pauses
 *  it (a floor of 0 would pause a queue at 1/min paced to 50 %, with no one saying so). */
export function effective_rate_per_minute(queue: QueueState, pace_pct: number): number {
  assert(Number.isInteger(pace_pct) && pace_pct >= 1 && pace_pct <= queue_pace_pct_full,
    'pace is 1..100 %');
  const rate = queue.settings.admit_per_minute;
  if (rate === 0) return 0;
  return Math.max(1, Math.floor((rate * pace_pct) / queue_pace_pct_full));
}

/** Whether the queue gates its event's holds: configured and not closed. */
export function is_active(queue: QueueState | undefined): queue is QueueState {
  return queue !== undefined && !queue.closed;
}

/** Position of entry `seq`: 0 before the draw (every entry before it joined early: a join at
 *  or after the sale start draws first). */
export function position_of_seq(queue: QueueState, seq: number): number {
  if (!queue.drawn) return 0;
  return seq <= queue.early_count ? queue.position_of[seq]! : seq;
}

/** The seq at position `position` (1-based, ≤ count, after the draw). */
export function seq_at(queue: QueueState, position: number): number {
  return position <= queue.early_count ? queue.order[position - 1]! : position;
}

/** When the token of the entry at `position` (admitted) expires. */
export function token_expiry_ms(queue: QueueState, position: number): number {
  // The first tick whose tick_to reaches the position: binary search (tick_to increases).
  let lo = 0;
  let hi = queue.tick_to.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (queue.tick_to[mid]! >= position) hi = mid;
    else lo = mid + 1;
  }
  return queue.tick_at_ms[lo]! + queue.settings.admission_ttl_seconds * 1000;
}
